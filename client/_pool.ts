/**
 * The keep-alive pool, pure: idle connections by origin, at most `maxIdle` per
 * origin and `maxTotal` in all. Entries keep their own position, so dropping one
 * that the server closed costs O(1), and taking one is a pop (the most recently
 * used conn, which is the least likely to have been closed by the server). Past
 * `maxTotal`, the entry pooled longest ago goes (a crawl over many hosts would
 * otherwise keep a socket open per host it met, until each server closed it).
 *
 * @module
 */

/** What the pool holds: an entry that knows its origin and its position. */
export interface Poolable {
  /** The origin it is idle for; set by the pool. */
  poolOrigin: string;
  /** Its index in its origin's list, `-1` while not pooled. Owned by the pool. */
  poolIndex: number;
  /** The entry pooled just before it and just after it, over all origins. Owned by the pool. */
  poolOlder: Poolable | null;
  poolNewer: Poolable | null;
}

/**
 * Idle entries by origin. An origin with nothing idle is forgotten, so a crawl
 * over many hosts keeps no list per host it ever met.
 */
export class IdlePool<T extends Poolable> {
  readonly #maxIdle: number;
  readonly #maxTotal: number;
  readonly #evict: (entry: T) => void;
  readonly #byOrigin = new Map<string, T[]>();
  #size = 0;
  /** Every entry in the order pooled: the oldest first, to evict. */
  #oldest: T | null = null;
  #newest: T | null = null;

  /**
   * @param maxIdle The most entries per origin.
   * @param maxTotal The most entries over all origins.
   * @param evict Given each entry `put` pushes out past `maxTotal` (it is
   *   removed already).
   */
  constructor(
    maxIdle: number,
    maxTotal = Infinity,
    evict: (entry: T) => void = () => {},
  ) {
    this.#maxIdle = maxIdle;
    this.#maxTotal = maxTotal;
    this.#evict = evict;
  }

  /** How many entries are idle, over all origins. */
  get size(): number {
    return this.#size;
  }

  /** The entry pooled longest ago, over all origins, or `null`. */
  get oldest(): T | null {
    return this.#oldest;
  }

  /** Adds `entry` as idle for `origin`; `false` (not added) when that origin's list is full. */
  put(origin: string, entry: T): boolean {
    let list = this.#byOrigin.get(origin);
    if (list === undefined) {
      if (this.#maxIdle < 1) return false;
      this.#byOrigin.set(origin, list = []);
    }
    if (list.length >= this.#maxIdle) return false;
    entry.poolOrigin = origin;
    entry.poolIndex = list.length;
    list.push(entry);
    this.#size++;
    entry.poolOlder = this.#newest;
    entry.poolNewer = null;
    if (this.#newest === null) this.#oldest = entry;
    else this.#newest.poolNewer = entry;
    this.#newest = entry;
    while (this.#size > this.#maxTotal) {
      const oldest = this.#oldest!;
      this.remove(oldest);
      this.#evict(oldest);
    }
    return entry.poolIndex >= 0;
  }

  /** Whether `origin` has an idle entry. */
  has(origin: string): boolean {
    return this.#byOrigin.has(origin);
  }

  /** Takes the most recently pooled entry of `origin`, if any. */
  take(origin: string): T | undefined {
    const list = this.#byOrigin.get(origin);
    const entry = list?.pop();
    if (entry === undefined) return undefined;
    entry.poolIndex = -1;
    this.#size--;
    this.#unlink(entry);
    if (list!.length === 0) this.#byOrigin.delete(origin);
    return entry;
  }

  /** Removes `entry` (a conn the server closed while idle); O(1). */
  remove(entry: T): void {
    const list = this.#byOrigin.get(entry.poolOrigin);
    const index = entry.poolIndex;
    if (list === undefined || list[index] !== entry) return;
    const last = list.pop()!;
    if (last !== entry) {
      list[index] = last;
      last.poolIndex = index;
    }
    entry.poolIndex = -1;
    this.#size--;
    this.#unlink(entry);
    if (list.length === 0) this.#byOrigin.delete(entry.poolOrigin);
  }

  #unlink(entry: T): void {
    const older = entry.poolOlder as T | null;
    const newer = entry.poolNewer as T | null;
    if (older === null) this.#oldest = newer;
    else older.poolNewer = newer;
    if (newer === null) this.#newest = older;
    else newer.poolOlder = older;
    entry.poolOlder = entry.poolNewer = null;
  }

  /** Removes and returns every entry. */
  drain(): T[] {
    const all: T[] = [];
    for (const list of this.#byOrigin.values()) {
      for (const entry of list) {
        entry.poolIndex = -1;
        entry.poolOlder = entry.poolNewer = null;
        all.push(entry);
      }
    }
    this.#byOrigin.clear();
    this.#size = 0;
    this.#oldest = this.#newest = null;
    return all;
  }
}
