/**
 * Bytes already in the kernel are reported by the next `select()`s, not ~60
 * calls later, whatever the loop does between them (Python's `select()` asks
 * the kernel each time): a loop of `select(0)` with work per tick, and one whose
 * `select()` always finds another key ready. Found translating CPython's
 * test_selectors.py.
 */
import { assertEquals, assertLess, assertLessOrEqual } from "@std/assert";
import { DefaultSelector, EVENT_READ, EVENT_WRITE } from "../mod.ts";
import { maskOf, tcpPair } from "./_net.ts";

const encoder = new TextEncoder();

/** Synchronous work, as a Python loop does between two select() calls. */
function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // work
  }
}

Deno.test("Selector.select(0) in a loop with synchronous work reports bytes already received within a few ticks", async () => {
  using pair = await tcpPair();
  const { conn, peer } = pair;
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_READ);
  for (let trial = 0; trial < 3; trial++) {
    await peer.write(encoder.encode("ping")); // in conn's kernel buffer now
    const start = performance.now();
    let ticks = 0;
    while (ticks < 200) { // bounded: 200 × 5 ms
      ticks++;
      if (maskOf(await sel.select(0), conn) & EVENT_READ) break;
      busy(5);
    }
    const elapsed = performance.now() - start;
    assertLessOrEqual(ticks, 3, `reported after ${ticks} ticks (Python: 1)`);
    assertLess(elapsed, 50);
    assertEquals(conn.recv()?.length, 4);
  }
});

Deno.test("Selector.select() with an always-writable key and synchronous work per batch still reports bytes received within a few batches", async () => {
  using pair = await tcpPair();
  const { conn, peer } = pair;
  using other = await tcpPair();
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_READ);
  sel.register(other.conn, EVENT_WRITE); // always ready: select() never waits
  for (let trial = 0; trial < 3; trial++) {
    await peer.write(encoder.encode("ping"));
    let batches = 0;
    while (batches < 200) {
      batches++;
      if (maskOf(await sel.select(), conn) & EVENT_READ) break;
      busy(5);
    }
    assertLessOrEqual(
      batches,
      3,
      `reported after ${batches} batches (Python: 1)`,
    );
    assertEquals(conn.recv()?.length, 4);
  }
});
