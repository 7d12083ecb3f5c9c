import {
  assert,
  assertEquals,
  assertGreaterOrEqual,
  assertLess,
} from "@std/assert";
import { DefaultSelector, EVENT_READ } from "../mod.ts";
import { listen, timersArmed } from "./_net.ts";

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
