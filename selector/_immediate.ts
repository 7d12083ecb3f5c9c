import { setImmediate } from "node:timers";

/**
 * Resolves after one turn of the event loop. A microtask would not do: Deno only
 * delivers finished I/O ops and fired timers between macrotasks, so a `select()`
 * that finds keys ready at once awaits this to let them in before it reports (the
 * fairness rule of API.md); one that has to wait lets them in by waiting.
 * `setTimeout(0)` costs about 2 ms here; this costs about 2 µs, and Deno still polls
 * the OS for I/O every few dozen turns of a busy loop.
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
