/**
 * The crawl's one deadline structure: a binary min-heap of everything that must
 * happen at a time (a request's timeout, the end of a retry's backoff, an origin
 * allowed to start again). The crawl loop waits in `select()` until the earliest
 * of them, so a crawl has one timer however many requests it runs.
 *
 * Each entry carries its own heap position, so re-keying or removing it costs
 * O(log n) with no search, and an entry is in the queue at most once.
 *
 * @module
 */

/** What the queue holds: an object that keeps its key and its heap position. */
export interface Timed {
  /** The `performance.now()` time it is due; meaningful only while queued. */
  due: number;
  /** Its index in the heap, `-1` while not queued. Owned by the queue. */
  heapIndex: number;
}

/**
 * A min-heap of {@linkcode Timed} entries keyed by `due`.
 *
 * Guarantees: `peek()` is an entry with the smallest `due`; `set()` on a queued
 * entry moves it, never duplicates it; `delete()` of an entry not queued does
 * nothing. Not guaranteed: the order of entries with equal `due`.
 */
export class DeadlineQueue<T extends Timed> {
  #heap: T[] = [];

  /** How many entries are queued. */
  get size(): number {
    return this.#heap.length;
  }

  /** The earliest `due`, or `Infinity` when empty. */
  get nextDue(): number {
    return this.#heap[0]?.due ?? Infinity;
  }

  /** The entry due first, without removing it. */
  peek(): T | undefined {
    return this.#heap[0];
  }

  /** Whether `entry` is queued. */
  has(entry: T): boolean {
    return entry.heapIndex >= 0 && this.#heap[entry.heapIndex] === entry;
  }

  /**
   * Queues `entry` at `due`, or moves it there if it is queued already. An
   * infinite `due` removes it: nothing is ever due then.
   */
  set(entry: T, due: number): void {
    if (due === Infinity) {
      this.delete(entry);
      return;
    }
    if (this.has(entry)) {
      const before = entry.due;
      entry.due = due;
      if (due < before) this.#up(entry.heapIndex);
      else if (due > before) this.#down(entry.heapIndex);
      return;
    }
    entry.due = due;
    entry.heapIndex = this.#heap.length;
    this.#heap.push(entry);
    this.#up(entry.heapIndex);
  }

  /** Removes `entry` if it is queued. */
  delete(entry: T): void {
    if (!this.has(entry)) return;
    const heap = this.#heap;
    const index = entry.heapIndex;
    const last = heap.pop()!;
    entry.heapIndex = -1;
    if (last === entry) return;
    heap[index] = last;
    last.heapIndex = index;
    this.#up(index);
    this.#down(last.heapIndex);
  }

  /** Removes and returns the earliest entry if it is due at `now` or before. */
  popDue(now: number): T | undefined {
    const first = this.#heap[0];
    if (first === undefined || first.due > now) return undefined;
    this.delete(first);
    return first;
  }

  /** Removes every entry. */
  clear(): void {
    for (const entry of this.#heap) entry.heapIndex = -1;
    this.#heap = [];
  }

  #up(index: number): void {
    const heap = this.#heap;
    const entry = heap[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex]!;
      if (parent.due <= entry.due) break;
      heap[index] = parent;
      parent.heapIndex = index;
      index = parentIndex;
    }
    heap[index] = entry;
    entry.heapIndex = index;
  }

  #down(index: number): void {
    const heap = this.#heap;
    const length = heap.length;
    const entry = heap[index]!;
    while (true) {
      const left = 2 * index + 1;
      if (left >= length) break;
      const right = left + 1;
      let child = left;
      if (right < length && heap[right]!.due < heap[left]!.due) child = right;
      const smallest = heap[child]!;
      if (smallest.due >= entry.due) break;
      heap[index] = smallest;
      smallest.heapIndex = index;
      index = child;
    }
    heap[index] = entry;
    entry.heapIndex = index;
  }
}
