import { setImmediate } from "node:timers";

const EMPTY = new Uint8Array(0);
/** When a turn last made the runtime poll the OS for I/O (performance.now()). */
let lastIoPoll = 0;

/**
 * Resolves after one turn of the event loop, and at least once a millisecond after
 * one in which Deno polled the OS for I/O. setImmediate alone does not poll it:
 * tokio polls its I/O driver only when the runtime parks or every ~61 ticks, so a
 * loop of select(0) or of select()s that find keys ready saw bytes already in the
 * kernel ~60 calls late. A digest of nothing runs on the blocking pool (no
 * permission needed): the runtime parks once and polls the driver (~12 µs).
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => {
    const now = performance.now();
    if (now - lastIoPoll < 1) {
      setImmediate(resolve);
      return;
    }
    lastIoPoll = now;
    let digest: Promise<unknown>;
    try {
      digest = crypto.subtle.digest("SHA-256", EMPTY);
    } catch {
      // No Web Crypto here: a plain turn, as before.
      setImmediate(resolve);
      return;
    }
    digest.then(() => setImmediate(resolve), () => setImmediate(resolve));
  });
}
