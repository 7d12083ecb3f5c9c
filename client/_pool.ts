/**
 * The keep-alive pool, pure: idle connections by origin, at most `maxIdle` per
 * origin. Entries keep their own position, so dropping one that the server
 * closed costs O(1), and taking one is a pop (the most recently used conn, which
 * is the least likely to have been closed by the server).
 *
 * @module
 */

/** What the pool holds: an entry that knows its origin and its position. */
export interface Poolable {
  /** The origin it is idle for; set by the pool. */
  poolOrigin: string;
  /** Its index in its origin's list, `-1` while not pooled. Owned by the pool. */
  poolIndex: number;
}

/**
 * Idle entries by origin. An origin with nothing idle is forgotten, so a crawl
 * over many hosts keeps no list per host it ever met.
 */
export class IdlePool<T extends Poolable> {
  readonly #maxIdle: number;
  readonly #byOrigin = new Map<string, T[]>();
  #size = 0;

  constructor(maxIdle: number) {
    this.#maxIdle = maxIdle;
  }

  /** How many entries are idle, over all origins. */
  get size(): number {
    return this.#size;
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
    return true;
  }

  /** Takes the most recently pooled entry of `origin`, if any. */
  take(origin: string): T | undefined {
    const list = this.#byOrigin.get(origin);
    const entry = list?.pop();
    if (entry === undefined) return undefined;
    entry.poolIndex = -1;
    this.#size--;
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
    if (list.length === 0) this.#byOrigin.delete(entry.poolOrigin);
  }

  /** Removes and returns every entry. */
  drain(): T[] {
    const all: T[] = [];
    for (const list of this.#byOrigin.values()) {
      for (const entry of list) {
        entry.poolIndex = -1;
        all.push(entry);
      }
    }
    this.#byOrigin.clear();
    this.#size = 0;
    return all;
  }
}
