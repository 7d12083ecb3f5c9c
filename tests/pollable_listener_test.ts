import {
  assert,
  assertEquals,
  assertGreater,
  assertLess,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { delay } from "@std/async";
import {
  BlockingIOError,
  DefaultSelector,
  EVENT_READ,
  EVENT_WRITE,
  PollableConn,
  PollableListener,
} from "../mod.ts";
import {
  closeQuietly,
  listen,
  maskOf,
  portOf,
  readAll,
  readExactly,
  readyFor,
  selectUntil,
  tempDir,
  within,
} from "./_net.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Waits (bounded) until `listener` has a connection waiting, then accepts it. */
async function acceptOne(
  sel: DefaultSelector,
  listener: PollableListener,
): Promise<PollableConn> {
  await selectUntil(sel, readyFor(listener, EVENT_READ));
  return listener.accept();
}

/** `n` clients connected to `port`, one after the other (each in the backlog). */
async function connectMany(port: number, n: number): Promise<Deno.Conn[]> {
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < n; i++) {
    conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
  }
  return conns;
}

// ---------------------------------------------------------------------------
// listen / from / constructor

Deno.test("PollableListener.listen() listens on TCP with addr and a unique fd", () => {
  using a = listen();
  using b = listen();
  const addr = a.addr as Deno.NetAddr;
  assertEquals(addr.transport, "tcp");
  assertEquals(addr.hostname, "127.0.0.1");
  assertGreater(addr.port, 0);
  assert(Number.isInteger(a.fd) && a.fd > 2);
  assert(a.fd !== b.fd);
  assertStrictEquals(a.closed, false);
});

Deno.test("PollableListener.listen() listens on a Unix socket", async () => {
  using dir = tempDir();
  const path = dir.path("l.sock");
  using listener = PollableListener.listen({ transport: "unix", path });
  assertEquals(listener.addr, { transport: "unix", path });
  using sel = new DefaultSelector();
  sel.register(listener, EVENT_READ);
  using client = await Deno.connect({ transport: "unix", path });
  using conn = await acceptOne(sel, listener);
  assertEquals(conn.remoteAddr?.transport, "unix");
  await client.write(encoder.encode("unix hello"));
  sel.register(conn, EVENT_READ);
  await selectUntil(sel, readyFor(conn, EVENT_READ));
  let got = "";
  await selectUntil(sel, () => {
    try {
      got += decoder.decode(conn.recv()!);
    } catch (e) {
      if (!(e instanceof BlockingIOError)) throw e;
    }
    return got.length === 10;
  });
  assertEquals(got, "unix hello");
});

Deno.test("PollableListener.listen() throws for an address in use", () => {
  using a = listen();
  assertThrows(
    () => PollableListener.listen({ hostname: "127.0.0.1", port: portOf(a) }),
    Deno.errors.AddrInUse,
  );
});

Deno.test("PollableListener.from() wraps a Deno listener", async () => {
  const inner = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  using listener = PollableListener.from(inner);
  assertEquals(listener.addr, inner.addr);
  using sel = new DefaultSelector();
  sel.register(listener, EVENT_READ);
  using client = await Deno.connect({
    hostname: "127.0.0.1",
    port: inner.addr.port,
  });
  using conn = await acceptOne(sel, listener);
  assertEquals(conn.localAddr, client.remoteAddr);
  assertEquals(conn.remoteAddr, client.localAddr);
});

Deno.test("new PollableListener() throws TypeError for anything but a Deno.Listener", async () => {
  using server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  using conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
  });
  using _peer = await server.accept();
  for (const value of [{}, null, undefined, 5, "listener", conn]) {
    assertThrows(
      () => new PollableListener(value as unknown as Deno.Listener),
      TypeError,
      "Deno.Listener",
    );
    assertThrows(
      () => PollableListener.from(value as unknown as Deno.Listener),
      TypeError,
      "Deno.Listener",
    );
  }
});

// ---------------------------------------------------------------------------
// accept

Deno.test("PollableListener.accept() throws BlockingIOError when no connection waits", async () => {
  using listener = listen();
  assertThrows(() => listener.accept(), BlockingIOError, "no connection");
  using sel = new DefaultSelector();
  sel.register(listener, EVENT_READ);
  assertEquals(await sel.select(20), []);
  assertThrows(() => listener.accept(), BlockingIOError, "no connection");
});

Deno.test("PollableListener.accept() takes nothing while not registered for EVENT_READ", async () => {
  using listener = listen();
  using client = await Deno.connect({
    hostname: "127.0.0.1",
    port: portOf(listener),
  });
  await delay(20);
  // The kernel holds the connection until a selector asks for it.
  assertThrows(() => listener.accept(), BlockingIOError);
  using sel = new DefaultSelector();
  sel.register(listener, EVENT_WRITE); // a listener is never writable
  assertEquals(await sel.select(20), []);
  assertThrows(() => listener.accept(), BlockingIOError);
  sel.modify(listener, EVENT_READ);
  using conn = await acceptOne(sel, listener);
  assertEquals(conn.remoteAddr, client.localAddr);
});

Deno.test("PollableListener is read-ready while a connection waits, and each accept() takes one", async () => {
  using listener = listen();
  using sel = new DefaultSelector();
  sel.register(listener, EVENT_READ);
  const clients: Deno.Conn[] = [];
  const accepted: PollableConn[] = [];
  try {
    clients.push(...await connectMany(portOf(listener), 10));
    await selectUntil(sel, (batch) => {
      const mask = maskOf(batch, listener);
      if (mask !== 0) {
        assertEquals(mask, EVENT_READ);
        // Level-triggered: ready until accepted.
        accepted.push(listener.accept());
      }
      return accepted.length === 10;
    });
    const ports = new Set(
      accepted.map((c) => (c.remoteAddr as Deno.NetAddr).port),
    );
    assertEquals(
      ports,
      new Set(clients.map((c) => (c.localAddr as Deno.NetAddr).port)),
    );
    assertEquals(await sel.select(20), []);
    assertThrows(() => listener.accept(), BlockingIOError);
  } finally {
    for (const c of accepted) c.close();
    for (const c of clients) c.close();
  }
});

Deno.test("PollableListener takes a burst 4 at a time: accept() until BlockingIOError gets 4 waiting connections in one select() round, the next 4 in the next", async () => {
  using listener = listen();
  using sel = new DefaultSelector();
  sel.register(listener, EVENT_READ);
  const clients: Deno.Conn[] = [];
  const accepted: PollableConn[] = [];
  try {
    clients.push(...await connectMany(portOf(listener), 8));
    await selectUntil(sel, readyFor(listener, EVENT_READ));
    // The loop runs meanwhile, as a server's work between selects lets it.
    await delay(200);
    assertEquals(maskOf(await sel.select(0), listener), EVENT_READ);
    const round = () => {
      const before = accepted.length;
      while (true) {
        try {
          accepted.push(listener.accept());
        } catch (e) {
          assert(e instanceof BlockingIOError, String(e));
          return accepted.length - before;
        }
      }
    };
    // Before: 1 a round (each accept() issued the next one only then).
    assertEquals(round(), 4);
    await delay(200);
    assertEquals(maskOf(await sel.select(0), listener), EVENT_READ);
    assertEquals(round(), 4);
  } finally {
    for (const c of accepted) c.close();
    for (const c of clients) c.close();
  }
});

Deno.test("PollableListener.close() closes every connection accepted ahead and not taken", async () => {
  const listener = listen();
  using sel = new DefaultSelector();
  sel.register(listener, EVENT_READ);
  const clients: Deno.Conn[] = [];
  try {
    clients.push(...await connectMany(portOf(listener), 4));
    await selectUntil(sel, readyFor(listener, EVENT_READ));
    await delay(50);
    listener.close();
    // Each client sees its connection end.
    for (const client of clients) {
      const outcome = await within(readAll(client), 5000, "client read").then(
        (bytes) => bytes.length === 0 ? "eof" : "data",
        (e) => e instanceof Deno.errors.ConnectionReset ? "reset" : String(e),
      );
      assert(outcome === "eof" || outcome === "reset", outcome);
    }
    sel.unregister(listener);
  } finally {
    for (const c of clients) c.close();
  }
});

Deno.test("PollableListener.accept() returns a connected PollableConn with the client's early bytes", async () => {
  using listener = listen();
  using sel = new DefaultSelector();
  sel.register(listener, EVENT_READ);
  using client = await Deno.connect({
    hostname: "127.0.0.1",
    port: portOf(listener),
  });
  await client.write(encoder.encode("early"));
  using conn = await acceptOne(sel, listener);
  assert(conn instanceof PollableConn);
  assertStrictEquals(conn.error, null);
  assertEquals(conn.remoteAddr, client.localAddr);
  sel.register(conn, EVENT_READ | EVENT_WRITE);
  // Connected already: write-ready in the very first select.
  assert((maskOf(await sel.select(0), conn) & EVENT_WRITE) !== 0);
  let got = "";
  await selectUntil(sel, (batch) => {
    if (maskOf(batch, conn) & EVENT_READ) got += decoder.decode(conn.recv()!);
    return got.length >= 5;
  });
  assertEquals(got, "early");
  assertEquals(conn.send("reply"), 5);
  assertEquals(decoder.decode(await readExactly(client, 5)), "reply");
});

Deno.test("PollableListener accepts many concurrent clients through one selector", async () => {
  using listener = listen();
  using sel = new DefaultSelector<string>();
  sel.register(listener, EVENT_READ, "listener");
  const N = 25;
  const clients = Array.from({ length: N }, async (_, i) => {
    using conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: portOf(listener),
    });
    await conn.write(encoder.encode(`client ${String(i).padStart(2, "0")}`));
    return decoder.decode(await readAll(conn));
  });
  const server = new Map<PollableConn, string>();
  const echoed: string[] = [];
  try {
    await selectUntil(sel, (batch) => {
      for (const [key, mask] of batch) {
        if (key.data === "listener") {
          const conn = listener.accept();
          server.set(conn, "");
          sel.register(conn, EVENT_READ, "conn");
        } else if (mask & EVENT_READ) {
          const conn = key.fileobj as PollableConn;
          const data = conn.recv(9 - server.get(conn)!.length);
          if (data === null) throw new Error("early end of stream");
          const text = server.get(conn)! + decoder.decode(data);
          server.set(conn, text);
          if (text.length < 9) continue; // the rest comes later
          echoed.push(text);
          assertEquals(conn.send(text), 9);
          sel.unregister(conn);
          conn.close(); // flushes the reply, then the client sees EOF
        }
      }
      return echoed.length === N;
    }, { rounds: 10_000 });
    const replies = await within(Promise.all(clients), 5000, "clients");
    assertEquals(
      replies.sort(),
      Array.from(
        { length: N },
        (_, i) => `client ${String(i).padStart(2, "0")}`,
      ),
    );
  } finally {
    for (const c of server.keys()) c.close();
  }
});

// ---------------------------------------------------------------------------
// close

Deno.test("PollableListener.close() with an accept in flight does not hang or leak", async () => {
  const listener = listen();
  const port = portOf(listener);
  using sel = new DefaultSelector();
  sel.register(listener, EVENT_READ);
  assertEquals(await sel.select(10), []); // an accept is in flight now
  listener.close();
  assert(listener.closed);
  assertThrows(() => listener.accept(), Deno.errors.BadResource, "closed");
  assertEquals(await sel.select(10), []);
  sel.unregister(listener);
  // The port is released: connecting is refused.
  using conn = PollableConn.connect({ hostname: "127.0.0.1", port });
  sel.register(conn, EVENT_WRITE);
  await selectUntil(sel, readyFor(conn, EVENT_WRITE));
  assert(
    conn.error instanceof Deno.errors.ConnectionRefused,
    String(conn.error),
  );
});

Deno.test("PollableListener.close() closes a connection that was waiting, not accepted", async () => {
  const listener = listen();
  using sel = new DefaultSelector();
  sel.register(listener, EVENT_READ);
  using client = await Deno.connect({
    hostname: "127.0.0.1",
    port: portOf(listener),
  });
  await selectUntil(sel, readyFor(listener, EVENT_READ));
  listener.close();
  // Reported no more, and the client sees its connection end.
  assertEquals(await sel.select(0), []);
  let outcome: string;
  try {
    outcome = (await within(readAll(client), 5000, "client read")).length === 0
      ? "eof"
      : "data";
  } catch (e) {
    outcome = e instanceof Deno.errors.ConnectionReset ? "reset" : String(e);
  }
  assert(outcome === "eof" || outcome === "reset", outcome);
  sel.unregister(listener);
});

Deno.test("PollableListener.close() is idempotent, works with `using` and leaves accepted conns open", async () => {
  let outer: PollableListener;
  let accepted: PollableConn;
  using sel = new DefaultSelector();
  const client = await (async () => {
    using listener = listen();
    outer = listener;
    sel.register(listener, EVENT_READ);
    const client = await Deno.connect({
      hostname: "127.0.0.1",
      port: portOf(listener),
    });
    accepted = await acceptOne(sel, listener);
    sel.unregister(listener);
    listener.close();
    listener.close();
    return client;
  })();
  try {
    assert(outer!.closed);
    outer!.close();
    assertThrows(() => outer.accept(), Deno.errors.BadResource);
    assertThrows(() => sel.register(outer, EVENT_READ), RangeError, "closed");
    // The accepted conn outlives its listener.
    assertEquals(accepted!.send("alive"), 5);
    assertEquals(decoder.decode(await readExactly(client, 5)), "alive");
  } finally {
    accepted!.close();
    closeQuietly(client);
  }
});

Deno.test("PollableListener over a Unix socket: close() with an accept in flight", async () => {
  using dir = tempDir();
  const path = dir.path("c.sock");
  const listener = PollableListener.listen({ transport: "unix", path });
  using sel = new DefaultSelector();
  sel.register(listener, EVENT_READ);
  assertEquals(await sel.select(10), []);
  listener.close();
  assertEquals(await sel.select(10), []);
  assertThrows(() => listener.accept(), Deno.errors.BadResource);
});

Deno.test("PollableListener backs off accepting while the process is out of descriptors (EMFILE), and serves again once it is not", async () => {
  const inner = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const real = inner.accept.bind(inner);
  let calls = 0;
  let short = true;
  // As Deno's accept fails under `ulimit -n` with a connection waiting.
  inner.accept = () => {
    calls++;
    return short
      ? Promise.reject(
        Object.assign(new Error("Too many open files (os error 24)"), {
          code: "EMFILE",
        }),
      )
      : real();
  };
  using listener = PollableListener.from(inner);
  using sel = new DefaultSelector();
  sel.register(listener, EVENT_READ);
  let failures = 0;
  const until = performance.now() + 400;
  while (performance.now() < until) {
    if ((await sel.select(20)).length === 0) continue;
    try {
      listener.accept().close();
    } catch (error) {
      assertEquals((error as { code?: string }).code, "EMFILE");
      failures++;
    }
  }
  // 5, 10, 20, 40, 80, 160 ms apart: a handful, not a core's worth.
  assertLess(calls, 12, `${calls} accepts in 400 ms`);
  assertGreater(failures, 3);
  short = false;
  using client = await Deno.connect({
    hostname: "127.0.0.1",
    port: inner.addr.port,
  });
  using conn = await acceptOne(sel, listener);
  assertEquals(conn.remoteAddr, client.localAddr);
  // From now on it holds one connection ahead, not 4: each is a descriptor.
  const more: Deno.Conn[] = [];
  try {
    more.push(...await connectMany(inner.addr.port, 3));
    await delay(200);
    assertEquals(maskOf(await sel.select(0), listener), EVENT_READ);
    listener.accept().close();
    assertThrows(() => listener.accept(), BlockingIOError);
  } finally {
    for (const c of more) c.close();
  }
});
