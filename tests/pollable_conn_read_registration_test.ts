import { assertEquals, assertThrows } from "@std/assert";
import { delay } from "@std/async";
import {
  BlockingIOError,
  DefaultSelector,
  EVENT_READ,
  EVENT_WRITE,
  PollableConn,
} from "../mod.ts";
import { kReadBufferSize } from "../selector/_pollable.ts";
import { listenTcp, maskOf, selectUntil } from "./_net.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// API.md: "Reads from the network are issued only while the conn is registered
// for EVENT_READ". A single select() would return at once (the conn is
// write-ready), before any read could land: real time passes here, with the
// loop running, while it is registered for EVENT_WRITE.
Deno.test("PollableConn registered for EVENT_WRITE only issues no read while 50 ms pass with the loop running", async () => {
  using listener = listenTcp();
  using client = await Deno.connect({
    hostname: "127.0.0.1",
    port: listener.addr.port,
  });
  using conn = PollableConn.from(await listener.accept());
  await client.write(encoder.encode("held in the kernel"));
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_WRITE);
  const until = performance.now() + 50;
  while (performance.now() < until) {
    const batch = await sel.select(10);
    assertEquals(maskOf(batch, conn), EVENT_WRITE);
    await delay(5);
  }
  assertThrows(() => conn.recv(), BlockingIOError);
  assertEquals(conn[kReadBufferSize](), 0); // no read buffer taken either
  sel.modify(conn, EVENT_READ);
  const batch = await selectUntil(sel, (b) => maskOf(b, conn) !== 0);
  assertEquals(maskOf(batch, conn), EVENT_READ);
  assertEquals(decoder.decode(conn.recv()!), "held in the kernel");
});

// Selector.close() JSDoc: "every registration is dropped" (registered pollables
// stay open). A conn that was registered for EVENT_READ on a closed selector is
// registered nowhere: no read is issued for it, as after unregister().
Deno.test("PollableConn registered for EVENT_READ on a selector that is then closed issues no read; a new selector gets the bytes", async () => {
  using listener = listenTcp();
  using client = await Deno.connect({
    hostname: "127.0.0.1",
    port: listener.addr.port,
  });
  using conn = PollableConn.from(await listener.accept());
  const first = new DefaultSelector();
  first.register(conn, EVENT_READ);
  assertEquals(await first.select(0), []); // nothing sent yet
  first.close();
  // A read issued at registration may still be in flight; it lands these bytes
  // in the buffer, and nothing after them may be read.
  await client.write(encoder.encode("first"));
  await delay(30);
  const early = conn.recv(); // the in-flight read's bytes, if it got them
  assertEquals(decoder.decode(early ?? new Uint8Array()), "first");
  await client.write(encoder.encode("second"));
  await delay(50);
  assertThrows(() => conn.recv(), BlockingIOError);
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_READ);
  await selectUntil(sel, (b) => maskOf(b, conn) === EVENT_READ);
  assertEquals(decoder.decode(conn.recv()!), "second");
});

// The same with two selectors: what a conn reads for is the union of what it is
// registered for now. Unregistered from the selector that wanted EVENT_READ, and
// still registered for EVENT_WRITE on another, it issues no further read.
Deno.test("PollableConn registered for EVENT_READ on one selector and EVENT_WRITE on another issues no read once unregistered from the first", async () => {
  using listener = listenTcp();
  using client = await Deno.connect({
    hostname: "127.0.0.1",
    port: listener.addr.port,
  });
  using conn = PollableConn.from(await listener.accept());
  using reader = new DefaultSelector();
  using writer = new DefaultSelector();
  reader.register(conn, EVENT_READ);
  writer.register(conn, EVENT_WRITE);
  reader.unregister(conn);
  // The read issued at registration may still land these bytes.
  await client.write(encoder.encode("first"));
  await delay(30);
  assertEquals(decoder.decode(conn.recv() ?? new Uint8Array()), "first");
  await client.write(encoder.encode("second"));
  const until = performance.now() + 50;
  while (performance.now() < until) {
    assertEquals(maskOf(await writer.select(10), conn), EVENT_WRITE);
    await delay(5);
  }
  assertThrows(() => conn.recv(), BlockingIOError);
  reader.register(conn, EVENT_READ);
  await selectUntil(reader, (b) => maskOf(b, conn) === EVENT_READ);
  assertEquals(decoder.decode(conn.recv()!), "second");
});
