/**
 * The crawl loop's clock, as libuv's loop time: one `performance.now()` read per
 * turn of the loop instead of one per step of every request (a request read the
 * clock seven times, about 1 µs of a 1 KiB request's 15).
 *
 * The loop freezes the clock around each synchronous span of work (pulling URLs,
 * starting them, dispatching a ready batch, expiring timers) and thaws it before
 * it awaits or yields. Outside a span, in promise callbacks and for a standalone
 * `HttpClient` on a caller's selector, {@linkcode loopNow} reads the real clock, so a
 * wait that ends later never sees the time it began at.
 *
 * @module
 */

/** The frozen time, or -1 while the clock runs. */
let frozenAt = -1;

/** The current time in `performance.now()` terms: the span's, inside one. */
export function loopNow(): number {
  return frozenAt >= 0 ? frozenAt : performance.now();
}

/** Starts a span: every {@linkcode loopNow} until {@linkcode thaw} returns this time. */
export function freeze(): number {
  return frozenAt = performance.now();
}

/**
 * Moves a span's time on to the real clock's after a caller's code ran in it
 * (a source's `next()`, `onProgress`, a sink function, a tap, a delay
 * function): what starts after it must not be stamped with a time from before
 * (its timeout would begin in the past, its origin's delay would be short).
 */
export function refresh(): void {
  if (frozenAt >= 0) frozenAt = performance.now();
}

/** Ends the span. */
export function thaw(): void {
  frozenAt = -1;
}
