import { assertEquals } from "@std/assert";
import {
  DefaultSelector,
  EVENT_READ,
  EVENT_WRITE,
  PollableConn,
} from "../mod.ts";
import { kReady } from "../selector/_pollable.ts";
import { listen, selectUntil } from "./_net.ts";

// API.md: "one select() costs in proportion to the keys that are ready, not to
// the keys registered". A key that was ready once and no longer is must drop out
// of what select() looks at: after 100 conns were write-ready and were switched
// to EVENT_READ with nothing to read, a select() asks none of them again.
Deno.test("Selector.select() stops looking at keys that were ready once and are no longer ready", async () => {
  using sel = new DefaultSelector();
  using listener = listen(); // never accepts: the kernel's backlog completes the connects
  const conns: PollableConn[] = [];
  try {
    for (let i = 0; i < 100; i++) {
      const conn = PollableConn.connect(listener.addr as Deno.NetAddr);
      conns.push(conn);
      sel.register(conn, EVENT_WRITE);
    }
    const seen = new Set<number>();
    await selectUntil(sel, (batch) => {
      for (const [key] of batch) seen.add(key.fd);
      return seen.size === conns.length;
    });
    let asked = 0;
    for (const conn of conns) {
      sel.modify(conn, EVENT_READ); // nothing will come: never ready again
      const ready = conn[kReady].bind(conn);
      Object.defineProperty(conn, kReady, {
        value: () => (asked++, ready()),
        configurable: true,
      });
    }
    assertEquals(await sel.select(0), []); // may look at each once more
    asked = 0;
    for (let i = 0; i < 5; i++) assertEquals(await sel.select(0), []);
    assertEquals(asked, 0, `5 selects asked idle conns ${asked} times`);
  } finally {
    for (const conn of conns) conn.close();
  }
});
