import {
  assert,
  assertEquals,
  assertGreaterOrEqual,
  assertLess,
} from "@std/assert";
import { DefaultSelector, EVENT_READ, EVENT_WRITE } from "../mod.ts";
import { listen, readyFor, selectUntil, tcpPair, timersArmed } from "./_net.ts";

// Fairness (Selector JSDoc): "every select() lets at least one turn of the event
// loop run before it resolves: ... a poll (timeout <= 0) ... yield a turn first".
// Here nothing is ready, so the poll takes the "nothing ready" path: without its
// turn, `while (!fired) await sel.select(0)` is a microtask loop a timer never
// gets into.
Deno.test("Selector.select(0) with a key registered and nothing ready lets a timer fire in a polling loop", async () => {
  using sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ); // nobody connects: never ready
  let fired = false;
  const timer = setTimeout(() => fired = true, 5);
  const start = performance.now();
  let rounds = 0;
  try {
    while (!fired && rounds < 200_000 && performance.now() - start < 1_500) {
      assertEquals(await sel.select(0), []);
      rounds++;
    }
  } finally {
    clearTimeout(timer);
  }
  assert(fired, `a 5 ms timer never fired in ${rounds} polls`);
});

// API.md: "with nothing ready, a positive timeout resolves no earlier than the
// timeout (timer granularity aside) and not much later". A timeout that is not a
// power of two must not be rounded up to the next one (1,100 ms -> 2,048 ms);
// the upper bound leaves 700 ms for a loaded machine.
Deno.test("Selector.select(1100) with nothing ready resolves [] after ~1,100 ms, not at the next power of two", async () => {
  using sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ);
  const start = performance.now();
  assertEquals(await sel.select(1100), []);
  const elapsed = performance.now() - start;
  assertGreaterOrEqual(elapsed, 1099);
  assertLess(elapsed, 1800);
});

Deno.test("Selector.select(1000) with nothing ready waits on 2 or 3 timers, not one per halving of the wait", async () => {
  using sel = new DefaultSelector();
  using listener = listen();
  sel.register(listener, EVENT_READ); // nobody connects: never ready
  let batch: unknown[] | null = null;
  const armed = await timersArmed(async () => batch = await sel.select(1_000));
  assertEquals(batch, []);
  // Powers of two (512, 256, ... 1) woke the loop ~10 times for one wait.
  assertLess(armed.length, 4, `${armed}`);
});

/**
 * Whether `sel.select(1000)` arms its wait's timer within the call, that is
 * without a turn of the event loop first; a wakeup() then ends it with `[]`.
 */
async function waitsAtOnce(sel: DefaultSelector): Promise<boolean> {
  let armed = 0;
  const original = globalThis.setTimeout;
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    armed++;
    return original(fn, ms);
  }) as typeof setTimeout;
  let pending: Promise<unknown>;
  try {
    pending = sel.select(1_000);
  } finally {
    globalThis.setTimeout = original;
  }
  const atOnce = armed > 0;
  sel.wakeup();
  assertEquals(await pending, []);
  return atOnce;
}

// The turn before reporting is for something ready. A conn reported ready and
// since drained by recv(), or modified to events it is not ready for, is not:
// with a conn per request, its turn (and, once a millisecond, a ~40 µs digest)
// came on top of the wait in every select() between the request's write and
// its response.
Deno.test("Selector.select(timeout) waits at once, with no turn first, when the conn reported has been drained or modified to events it is not ready for", async () => {
  using pair = await tcpPair();
  const { conn, peer } = pair;
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_WRITE);
  await selectUntil(sel, readyFor(conn, EVENT_WRITE)); // connected
  sel.modify(conn, EVENT_READ); // nothing sent yet: not ready
  assert(await waitsAtOnce(sel), "after modify()");
  await peer.write(new TextEncoder().encode("hi"));
  await selectUntil(sel, readyFor(conn, EVENT_READ));
  assertEquals(new TextDecoder().decode(conn.recv()!), "hi"); // drained
  assert(await waitsAtOnce(sel), "after recv()");
});
