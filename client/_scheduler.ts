/**
 * The crawl's scheduler, pure: per-origin queues under a global concurrency
 * limit, a per-origin limit, a minimum gap between starts to one origin, and
 * origin-wide pauses. No I/O, and no clock but for the time a `perOrigin.delay`
 * function takes (added to `now`): the crawl passes `now` in, and origins
 * waiting for a time sit in the crawl's one {@linkcode DeadlineQueue}, which hands
 * them back through {@linkcode Scheduler.wake}.
 *
 * An origin with queued jobs is in exactly one place: the ready ring (it may
 * start one now), the deadline queue (it may start at its `due` time), or nowhere
 * while it has as many jobs in flight as allowed (a finished job puts it back).
 * Taking a job is O(1) however many origins wait, and a slow or paused origin
 * never holds back the others.
 *
 * @module
 */
import { refresh } from "./_clock.ts";
import type { DeadlineQueue, Timed } from "./_deadlines.ts";

/** The limits the scheduler enforces. */
export interface SchedulerLimits {
  /** Jobs in flight at once, over all origins. */
  concurrency: number;
  /** Jobs in flight at once per origin. */
  perOrigin: number;
  /** Least ms between two starts to one origin, or a function of its key. */
  delay: number | ((origin: string) => number);
}

/**
 * A first-in first-out queue over a ring of slots that is reused: emptying it
 * keeps the ring (a new array would allocate it again on the next push: ~150
 * bytes per job when a queue empties and refills, as an origin's does), and
 * both ends take an item in O(1), so a redirect hop put first costs what a push
 * costs. `remove()` leaves a hole that `shift()` skips, and looks from both ends
 * at once: the items it takes out are the ones whose time ran out, the oldest,
 * which sit at one end or the other (pushed last, or put first).
 */
export class Fifo<T> {
  #ring: Array<T | typeof HOLE | undefined> = [];
  /** Ring length - 1; the length is 0 or a power of two. */
  #mask = -1;
  /** Where the first slot is. */
  #head = 0;
  /** Slots from the first to the last, holes included. */
  #slots = 0;
  /** Items, holes not counted. */
  #length = 0;

  get length(): number {
    return this.#length;
  }

  /** Slots the ring has now (for tests: it is bounded by the items held). */
  get capacity(): number {
    return this.#ring.length;
  }

  push(item: T): void {
    if (this.#slots === this.#ring.length) this.#grow();
    this.#ring[(this.#head + this.#slots) & this.#mask] = item;
    this.#slots++;
    this.#length++;
  }

  /** Puts `item` first. */
  unshift(item: T): void {
    if (this.#slots === this.#ring.length) this.#grow();
    this.#head = (this.#head - 1) & this.#mask;
    this.#ring[this.#head] = item;
    this.#slots++;
    this.#length++;
  }

  /** Takes the first item; only while `length > 0`. */
  shift(): T {
    const ring = this.#ring;
    const item = ring[this.#head] as T;
    // Drop the reference at once: a taken item must not be kept alive from here.
    ring[this.#head] = undefined;
    this.#head = (this.#head + 1) & this.#mask;
    this.#slots--;
    this.#length--;
    this.#trimHead();
    return item;
  }

  /**
   * Takes `item` out wherever it is; whether it was there. O(1) at either end,
   * O(distance to the nearer end) inside.
   */
  remove(item: T): boolean {
    const ring = this.#ring;
    const mask = this.#mask;
    const head = this.#head;
    const last = this.#slots - 1;
    for (let i = 0, j = last; i <= j; i++, j--) {
      let at: number;
      if (ring[(head + i) & mask] === item) at = i;
      else if (ring[(head + j) & mask] === item) at = j;
      else continue;
      this.#length--;
      if (at === 0) {
        ring[head] = undefined;
        this.#head = (head + 1) & mask;
        this.#slots--;
        this.#trimHead();
      } else if (at === last) {
        ring[(head + at) & mask] = undefined;
        this.#slots--;
        // The last slot is never a hole: drop the ones it leaves at the end.
        while (this.#slots > 0) {
          const tail = (head + this.#slots - 1) & mask;
          if (ring[tail] !== HOLE) break;
          ring[tail] = undefined;
          this.#slots--;
        }
      } else {
        ring[(head + at) & mask] = HOLE;
      }
      return true;
    }
    return false;
  }

  /** Empties it, returning what it held, first first. */
  drain(): T[] {
    const items = this.#items();
    this.#ring = [];
    this.#mask = -1;
    this.#head = this.#slots = this.#length = 0;
    return items;
  }

  /** The first slot is never a hole: drop the ones a shift or remove uncovered. */
  #trimHead(): void {
    const ring = this.#ring;
    while (this.#slots > 0 && ring[this.#head] === HOLE) {
      ring[this.#head] = undefined;
      this.#head = (this.#head + 1) & this.#mask;
      this.#slots--;
    }
    if (this.#slots === 0) this.#head = 0;
  }

  /** The items in order, holes left out. */
  #items(): T[] {
    const items: T[] = [];
    const ring = this.#ring;
    for (let i = 0; i < this.#slots; i++) {
      const item = ring[(this.#head + i) & this.#mask];
      if (item !== HOLE) items.push(item as T);
    }
    return items;
  }

  /**
   * A full ring: holes are dropped, and the ring doubles only when at least
   * half of it holds items, so holes never make it grow.
   */
  #grow(): void {
    const items = this.#items();
    let size = Math.max(8, this.#ring.length);
    if (items.length * 2 >= size) size *= 2;
    const ring: Array<T | typeof HOLE | undefined> = new Array(size);
    for (let i = 0; i < items.length; i++) ring[i] = items[i];
    ring.fill(undefined, items.length);
    this.#ring = ring;
    this.#mask = size - 1;
    this.#head = 0;
    this.#slots = items.length;
  }
}

/** A slot whose item was removed from inside the queue. */
const HOLE: unique symbol = Symbol("hole");

const IDLE = 0;
const READY = 1;
const TIMED = 2;
const FULL = 3;
/**
 * Nothing queued, nothing in flight, but a delay or a pause still to honour:
 * remembered until then (a timer), then forgotten.
 */
const LINGER = 4;

/**
 * A per-origin delay function's answer; one that is not a finite delay counts
 * as 0 (Infinity would hold the origin's URLs for ever). A throw is kept on the
 * origin, for the crawl to fail the URL that was to start with it.
 */
function originDelay<J>(
  delay: (origin: string) => number,
  origin: Origin<J>,
): number {
  let ms: unknown;
  try {
    ms = delay(origin.key);
  } catch (error) {
    origin.delayError = { error };
    return 0;
  }
  return typeof ms === "number" && ms >= 0 && ms !== Infinity ? ms : 0;
}

/** One origin's queue and counters. */
export class Origin<J> implements Timed {
  due = 0;
  heapIndex = -1;
  /** Jobs in flight to this origin. */
  inFlight = 0;
  /** What the delay function threw at the last start, for the crawl to report. */
  delayError: { error: unknown } | null = null;
  /** No start before this time (politeness delay). */
  nextStart = -Infinity;
  /** The delay taken at its last start, counted again once its request is sent. */
  delay = 0;
  /**
   * When its last request was sent (the crawl's): the next waits for
   * `lastSendDelay` after, the delay taken at that request's start (the gap
   * after it, as a delay function answered then; not `delay`, which a later
   * start may have changed).
   */
  lastSend = -Infinity;
  lastSendDelay = 0;
  /** No start before this time (origin-wide backoff). */
  pausedUntil = -Infinity;
  /** Where it is: IDLE (nothing queued), READY, TIMED, FULL or LINGER. */
  place = IDLE;
  /** Waiting jobs, first to start first. */
  readonly #jobs = new Fifo<J>();

  constructor(readonly key: string) {}

  /** How many jobs wait. */
  get queued(): number {
    return this.#jobs.length;
  }

  push(job: J): void {
    this.#jobs.push(job);
  }

  unshift(job: J): void {
    this.#jobs.unshift(job);
  }

  /** Takes the first waiting job; call it only while `queued > 0`. */
  shift(): J {
    return this.#jobs.shift();
  }

  /** Takes `job` out of the queue; whether it was queued. */
  remove(job: J): boolean {
    return this.#jobs.remove(job);
  }

  /** Empties the queue, returning what waited. */
  drain(): J[] {
    return this.#jobs.drain();
  }
}

/**
 * Per-origin queues under global and per-origin limits.
 *
 * Guarantees: `take()` never exceeds `concurrency` jobs in flight overall nor
 * `perOrigin` to one origin; it starts two jobs of one origin at least `delay` ms
 * apart and none before the origin's pause ends; origins with jobs take turns
 * (round robin); within an origin jobs start in queue order.
 */
export class Scheduler<J> {
  readonly #limits: SchedulerLimits;
  readonly #timers: DeadlineQueue<Timed>;
  readonly #origins = new Map<string, Origin<J>>();
  /** Origins that may start a job now, in turn order. */
  #ready = new Fifo<Origin<J>>();
  #running = 0;
  #queued = 0;

  constructor(limits: SchedulerLimits, timers: DeadlineQueue<Timed>) {
    this.#limits = limits;
    this.#timers = timers;
  }

  /** Jobs in flight (taken and not released). */
  get running(): number {
    return this.#running;
  }

  /** Jobs waiting in origin queues. */
  get queued(): number {
    return this.#queued;
  }

  /** Origins remembered: with jobs, or with a delay or pause still to honour. */
  get origins(): number {
    return this.#origins.size;
  }

  /** The origin with this key, created on first use. */
  origin(key: string): Origin<J> {
    let origin = this.#origins.get(key);
    if (origin === undefined) {
      origin = new Origin<J>(key);
      this.#origins.set(key, origin);
    }
    return origin;
  }

  /** Queues `job` for `origin`: at the back, or at the front (a retry). */
  push(origin: Origin<J>, job: J, now: number, front = false): void {
    if (front) origin.unshift(job);
    else origin.push(job);
    this.#queued++;
    if (origin.place === IDLE || origin.place === LINGER) {
      this.#place(origin, now);
    }
  }

  /**
   * The next job to start, or `undefined` when none may start now. The caller
   * then owns one slot for it until {@linkcode Scheduler.release}.
   */
  take(now: number): J | undefined {
    while (
      this.#running < this.#limits.concurrency &&
      this.#ready.length > 0
    ) {
      const origin = this.#ready.shift();
      // Only origins with queued jobs are in the ring, each at most once.
      origin.place = IDLE;
      const job = origin.shift();
      if (origin.pausedUntil > now || origin.nextStart > now) {
        // Paused since it became ready: wait again.
        origin.unshift(job);
        this.#place(origin, now);
        continue;
      }
      this.#queued--;
      this.#running++;
      origin.inFlight++;
      const delay = this.#limits.delay;
      let start = now;
      if (typeof delay === "number") origin.delay = delay;
      else {
        const before = performance.now();
        origin.delay = originDelay(delay, origin);
        // The caller's function took its time: the delay counts from after
        // it, and so does what the crawl's loop starts next.
        start = now + (performance.now() - before);
        refresh();
      }
      origin.nextStart = start + origin.delay;
      this.#place(origin, start);
      return job;
    }
    return undefined;
  }

  /**
   * A job taken from `origin` sent its request at `at` and its conn is kept:
   * the `delay` taken at its start counts from then too (a later start may have
   * taken another, for the gap after it). A new conn's connect comes between a start
   * and its request, so counting from the start alone let the server see the
   * next request, on the kept conn at once, less than the delay after it.
   */
  sent(origin: Origin<J>, at: number, delay: number, now: number): void {
    const next = at + delay;
    if (next <= origin.nextStart) return;
    origin.nextStart = next;
    // A ready origin is checked again at its turn; a full or idle one when a
    // job ends.
    if (origin.place === TIMED) this.#place(origin, now);
  }

  /**
   * Takes a queued `job` out of `origin`'s queue before its turn (a redirect's
   * hop whose time ran out while it waited); whether it was queued there.
   */
  unqueue(origin: Origin<J>, job: J, now: number): boolean {
    if (!origin.remove(job)) return false;
    this.#queued--;
    if (origin.queued > 0) return true;
    // Only origins with queued jobs may be in the ring.
    if (origin.place === READY) this.#ready.remove(origin);
    this.#place(origin, now);
    this.#settle(origin, now);
    return true;
  }

  /** A job taken from `origin` finished (or gave its slot back to wait). */
  release(origin: Origin<J>, now: number): void {
    this.#running--;
    origin.inFlight--;
    if (origin.place === FULL) this.#place(origin, now);
    else this.#settle(origin, now);
  }

  /** No job of `origin` starts before `until` (origin-wide backoff). */
  pause(origin: Origin<J>, until: number, now: number): void {
    // A job may hold an origin forgotten since: the one known now is paused.
    origin = this.#origins.get(origin.key) ?? origin;
    if (until <= origin.pausedUntil) return;
    origin.pausedUntil = until;
    if (origin.place === READY) {
      // Left in the ring, `take()` re-places it when its turn comes.
      return;
    }
    if (origin.place === TIMED) this.#place(origin, now);
    // Keep it known (with its pause) even while nothing is queued.
    this.#origins.set(origin.key, origin);
    this.#settle(origin, now);
  }

  /** The deadline queue says `origin` is due: it may start again. */
  wake(origin: Origin<J>, now: number): void {
    if (origin.place === LINGER) {
      origin.place = IDLE;
      this.#settle(origin, now);
      return;
    }
    if (origin.place !== TIMED) return;
    origin.place = IDLE;
    this.#place(origin, now);
  }

  /**
   * An origin with nothing queued and nothing in flight is forgotten, at once
   * or, while a delay or a pause is still to honour, once it ends: a crawl over
   * many hosts keeps nothing per host it is done with.
   */
  #settle(origin: Origin<J>, now: number): void {
    if (
      (origin.place !== IDLE && origin.place !== LINGER) ||
      origin.inFlight > 0
    ) return;
    const until = Math.max(origin.nextStart, origin.pausedUntil);
    if (until <= now) {
      if (origin.place === LINGER) this.#timers.delete(origin);
      origin.place = IDLE;
      // The map may hold a newer origin of the same key: leave that one.
      if (this.#origins.get(origin.key) === origin) {
        this.#origins.delete(origin.key);
      }
      return;
    }
    origin.place = LINGER;
    this.#timers.set(origin, until);
  }

  /** Empties every queue (an abort), returning the jobs that waited. */
  drain(): J[] {
    const jobs: J[] = [];
    for (const origin of this.#origins.values()) {
      for (const job of origin.drain()) jobs.push(job);
      this.#timers.delete(origin);
      origin.place = IDLE;
    }
    this.#ready = new Fifo();
    this.#queued = 0;
    return jobs;
  }

  /** Puts an origin where its state says: ready, timed, full or idle. */
  #place(origin: Origin<J>, now: number): void {
    if (origin.place === TIMED || origin.place === LINGER) {
      this.#timers.delete(origin);
    }
    if (origin.queued === 0) {
      origin.place = IDLE;
      return;
    }
    const at = Math.max(origin.nextStart, origin.pausedUntil);
    if (at > now) {
      origin.place = TIMED;
      this.#timers.set(origin, at);
    } else if (origin.inFlight >= this.#limits.perOrigin) {
      origin.place = FULL;
    } else {
      origin.place = READY;
      this.#ready.push(origin);
    }
  }
}
