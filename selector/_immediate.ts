import { setImmediate } from "node:timers";

const EMPTY = new Uint8Array(0);
/** When a turn last made the runtime poll the OS for I/O (performance.now()). */
let lastIoPoll = 0;
/** When {@linkcode timerTurnDue} last said yes (performance.now()). */
let lastTimerTurn = 0;
/**
 * When a turn last surely polled the OS (performance.now()): a wait that I/O or
 * a timer ended, or a zero-delay timer's turn.
 */
let lastSurePoll = 0;
/**
 * The longest a loop of select()s that never wait goes without a turn that
 * surely polls the OS: forced polls can miss many in a row.
 */
const SURE_POLL_MS = 50;

/**
 * Records that select() has just waited, and that I/O or a timer ended the
 * wait (not a wakeup(): that can come from a microtask, with no park between).
 * Such a wait parked the runtime, and a park polls the OS, so the next
 * millisecond of turns needs no digest: a busy crawl's selects wait often, and
 * a digest costs ~30 µs of CPU (thread hand-offs), ~3% of a crawl's CPU at one
 * a millisecond.
 */
export function waited(): void {
  lastIoPoll = lastSurePoll = performance.now();
}

/**
 * Resolves after one turn of the event loop, and at least once a millisecond after
 * one in which Deno polled the OS for I/O. setImmediate alone does not poll it:
 * tokio polls its I/O driver only when the runtime parks or every ~61 ticks, so a
 * loop of select(0) or of select()s that find keys ready saw bytes already in the
 * kernel ~58 calls late. A digest of nothing runs on the blocking pool (no
 * permission needed): the runtime parks while it waits, and a park polls the
 * driver. Not always: when the pool's thread is done before the runtime gets to
 * park, it does not. Most reports come at the next forced poll; at times the
 * forced polls miss for a while and the report comes at tokio's own (measured
 * quiet, a loop of select(0) and 1 ms of work: half of them in 5 turns, 13 of
 * 60 past 15). Tried and left: a digest of 64 KiB misses as often (1 MiB does
 * not, at ~0.8 ms of a core each); two or three digests in a row miss less, at
 * 2-3x the cost; a 1 ms timer as a witness of polls proves nothing, as Deno
 * fires timers without a turn of the I/O driver. Only waiting for a timer
 * cannot miss, and that costs a millisecond or more each time: a turn waits
 * for one when no select() has waited for {@linkcode SURE_POLL_MS}.
 *
 * @param poll Force the poll even within the millisecond: a turn after long
 *   synchronous work, whose due timers a plain setImmediate turn does not run.
 */
export function nextTurn(poll = false): Promise<void> {
  return new Promise((resolve) => {
    const now = performance.now();
    if (!poll && now - lastIoPoll < 1) {
      setImmediate(resolve);
      return;
    }
    if (!poll && now - lastSurePoll >= SURE_POLL_MS) {
      // No select() waited for SURE_POLL_MS (every one found a key ready, or
      // was select(0)), and forced polls can miss many turns in a row after
      // synchronous work: bytes in the kernel went unseen for ~60 turns (5 ms
      // of work each: 300 ms). A timer's wait parks the runtime, which cannot
      // miss, for ~1-2 ms: a few percent of such a loop's time.
      lastIoPoll = lastSurePoll = now;
      setTimeout(resolve, 0);
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

/**
 * Whether a turn after long synchronous work should wait for a zero-delay
 * timer rather than take {@linkcode nextTurn}`(true)`: yes once none was
 * waited for within `maxMs`. Forced polls can miss many in a row after such
 * work (with 5 ms of work a turn, bytes stayed unseen in the kernel for up to
 * ~230-380 ms, audit171); a timer's wait, ~2 ms in Deno, cannot miss. Its own
 * clock: a select woken by a read that found its bytes at once polled nothing.
 */
export function timerTurnDue(maxMs: number): boolean {
  const now = performance.now();
  if (now - lastTimerTurn < maxMs) return false;
  lastTimerTurn = now;
  return true;
}
