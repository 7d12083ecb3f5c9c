/**
 * Paths of the selector core that the behaviour tests do not reach on their own:
 * the conn protocol the HTTP client uses (`kPeek`, `kConsume`, `kReadInto`,
 * `kTakeDirect`, `kSendOwned`), and callbacks whose order a test cannot force
 * with sockets alone (a connection that arrives after `close()`, a 0-byte read, a
 * write that settles after the conn was released). Those use real sockets whose
 * `read`/`write`/`accept` are wrapped on the instance to control when they settle.
 */
import {
  assert,
  assertEquals,
  assertGreaterOrEqual,
  assertInstanceOf,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  BlockingIOError,
  DefaultSelector,
  EVENT_READ,
  EVENT_WRITE,
  PollableConn,
  PollableListener,
} from "../mod.ts";
import {
  kConsume,
  kPeek,
  kReadInto,
  kReady,
  kSendOwned,
  kTakeDirect,
} from "../selector/_pollable.ts";
import { allocate, Arena, fieldArena } from "../selector/_slab.ts";
import {
  closeQuietly,
  listen,
  listenTcp,
  maskOf,
  needsIpv6,
  readAll,
  readExactly,
  readyFor,
  readyOn,
  selectUntil,
  tcpPair,
  within,
} from "./_net.ts";
import { ca, cert, key, listenTls } from "./_tls.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A plain Deno TCP conn and the peer it is connected to. */
async function rawPair(): Promise<
  { tcp: Deno.TcpConn; peer: Deno.Conn } & Disposable
> {
  const listener = listenTcp();
  const tcp = await Deno.connect({ port: listener.addr.port });
  const peer = await listener.accept();
  listener.close();
  return {
    tcp,
    peer,
    [Symbol.dispose]() {
      closeQuietly(tcp);
      closeQuietly(peer);
    },
  };
}

// ---------------------------------------------------------------------------
// The conn protocol of the HTTP client

Deno.test("PollableConn[kPeek]() views the buffered bytes until [kConsume]() takes them", async () => {
  using pair = await tcpPair();
  const { conn, peer } = pair;
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_READ);
  assertStrictEquals(conn[kPeek](), undefined); // nothing buffered yet
  await peer.write(encoder.encode("head+body"));
  await selectUntil(sel, readyFor(conn, EVENT_READ));
  const view = conn[kPeek]()!;
  assertEquals(decoder.decode(view), "head+body");
  conn[kConsume](5); // part of it: the rest stays, no new read
  assertEquals(decoder.decode(conn[kPeek]()!), "body");
  conn[kConsume](4);
  peer.close();
  await selectUntil(sel, readyFor(conn, EVENT_READ));
  assertStrictEquals(conn[kPeek](), null); // end of stream
  sel.unregister(conn);
  conn.close();
  assertThrows(() => conn[kPeek](), Deno.errors.BadResource, "closed");
});

Deno.test("PollableConn[kConsume]() with readOn false starts no read", async () => {
  using pair = await tcpPair();
  const { conn, peer } = pair;
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_READ);
  await peer.write(encoder.encode("one"));
  await selectUntil(sel, readyFor(conn, EVENT_READ));
  conn[kConsume](conn[kPeek]()!.length, false);
  await peer.write(encoder.encode("two"));
  // No read was issued: "two" waits in the kernel, the conn is not ready.
  assertEquals(await sel.select(30), []);
  sel.modify(conn, EVENT_READ); // watching again starts the read
  await selectUntil(sel, readyFor(conn, EVENT_READ));
  assertEquals(decoder.decode(conn.recv()!), "two");
});

Deno.test("PollableConn[kPeek]() throws the conn's error once the buffer is drained", async () => {
  using listener = listenTcp();
  const port = listener.addr.port;
  listener.close();
  using conn = PollableConn.connect({ hostname: "127.0.0.1", port });
  await readyOn(conn, EVENT_WRITE);
  assertInstanceOf(conn.error, Deno.errors.ConnectionRefused);
  assertStrictEquals(assertThrows(() => conn[kPeek]()), conn.error);
});

Deno.test("PollableConn[kReadInto]() puts the next read straight into the target, counted by [kTakeDirect]()", async () => {
  using pair = await tcpPair();
  const { conn, peer } = pair;
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_READ);
  await peer.write(encoder.encode("head"));
  await selectUntil(sel, readyFor(conn, EVENT_READ));
  const target = new Uint8Array(8);
  conn[kConsume](conn[kPeek]()!.length, false);
  conn[kReadInto](target);
  conn[kConsume](0); // now the read goes out, into the target
  await peer.write(encoder.encode("12345678"));
  await selectUntil(sel, readyFor(conn, EVENT_READ));
  assertStrictEquals(conn[kPeek](), undefined); // nothing in the conn's buffer
  const n = conn[kTakeDirect]();
  assert(n >= 1 && n <= 8, String(n));
  assertEquals(decoder.decode(target.subarray(0, n)), "12345678".slice(0, n));
  assertEquals(conn[kTakeDirect](), 0);
  conn[kConsume](0); // the next read goes to the conn's buffer again
  const rest = n < 8 ? decoder.decode(await recvN(sel, conn, 8 - n)) : "";
  assertEquals(rest, "12345678".slice(n));
});

Deno.test("PollableConn[kReadInto]() sees end of stream when the peer closes", async () => {
  using pair = await tcpPair();
  const { conn, peer } = pair;
  using sel = new DefaultSelector();
  conn[kReadInto](new Uint8Array(16));
  sel.register(conn, EVENT_READ);
  peer.close();
  await selectUntil(sel, readyFor(conn, EVENT_READ));
  assertEquals(conn[kTakeDirect](), 0);
  assertStrictEquals(conn[kPeek](), null);
});

async function recvN(
  sel: DefaultSelector,
  conn: PollableConn,
  n: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  await selectUntil(sel, () => {
    try {
      while (got < n) {
        const chunk = conn.recv(n - got)!;
        out.set(chunk, got);
        got += chunk.length;
      }
    } catch (e) {
      if (!(e instanceof BlockingIOError)) throw e;
    }
    return got === n;
  });
  return out;
}

Deno.test("PollableConn[kSendOwned]() queues the caller's bytes up to its own high-water mark (1 MiB, send()'s is 64 KiB), without a copy", async () => {
  using pair = await tcpPair();
  const { conn, peer } = pair;
  using connecting = PollableConn.connect(pair.listener.addr as Deno.NetAddr);
  assertThrows(
    () => connecting[kSendOwned](new Uint8Array(1)),
    BlockingIOError,
    "not established",
  );
  await readyOn(conn, EVENT_WRITE);
  const big = new Uint8Array(1536 * 1024).map((_, i) => i % 253);
  const first = conn[kSendOwned](big);
  assertEquals(first, 1024 * 1024); // part of it: a view, not a copy
  await readyOn(conn, EVENT_WRITE);
  let sent = first;
  while (sent < big.length) {
    try {
      sent += conn[kSendOwned](big.subarray(sent));
    } catch (e) {
      if (!(e instanceof BlockingIOError)) throw e;
      await readyOn(conn, EVENT_WRITE);
    }
  }
  assertEquals(await readExactly(peer, big.length), big);
  conn.closeWrite();
  assertThrows(() => conn[kSendOwned](big), Deno.errors.BrokenPipe);
  conn.close();
  assertThrows(() => conn[kSendOwned](big), Deno.errors.BadResource);
});

Deno.test("PollableConn[kSendOwned]() throws the conn's error after a failed connect", async () => {
  using listener = listenTcp();
  const port = listener.addr.port;
  listener.close();
  using conn = PollableConn.connect({ hostname: "127.0.0.1", port });
  await readyOn(conn, EVENT_WRITE);
  assertStrictEquals(
    assertThrows(() => conn[kSendOwned](new Uint8Array(1))),
    conn.error,
  );
});

// ---------------------------------------------------------------------------
// Callbacks in an order only injection can force

Deno.test("new PollableConn() closes a connection that arrives after close()", async () => {
  using pair = await rawPair();
  const { promise, resolve } = Promise.withResolvers<Deno.Conn>();
  const conn = new PollableConn(promise);
  conn.close();
  resolve(pair.tcp);
  // The late conn was closed for us: the peer sees end of stream.
  assertEquals((await within(readAll(pair.peer), 5_000, "peer EOF")).length, 0);
});

Deno.test("PollableConn fails with the error of a socket option it could not set on connect", async () => {
  using pair = await rawPair();
  const failure = new Deno.errors.BadResource("option refused");
  pair.tcp.setNoDelay = () => {
    throw failure;
  };
  const { promise, resolve } = Promise.withResolvers<Deno.Conn>();
  using conn = new PollableConn(promise);
  conn.setNoDelay(true); // kept until connected
  resolve(pair.tcp);
  await readyOn(conn, EVENT_WRITE);
  assertStrictEquals(conn.error, failure);
});

Deno.test("PollableConn treats a 0-byte read as no data, not end of stream", async () => {
  using pair = await rawPair();
  const read = pair.tcp.read.bind(pair.tcp);
  const target = new Uint8Array(4);
  // The first read into the conn's buffer and the first into the target get 0.
  const zeroed = new Set<"buffer" | "target">();
  pair.tcp.read = (p: Uint8Array) => {
    const into = p === target ? "target" : "buffer";
    if (zeroed.has(into)) return read(p);
    zeroed.add(into);
    return Promise.resolve(0);
  };
  using conn = PollableConn.from(pair.tcp);
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_READ);
  await pair.peer.write(encoder.encode("a"));
  await selectUntil(sel, readyFor(conn, EVENT_READ));
  // As the HTTP client does: aim the next read, then release the view.
  const view = conn[kPeek]()!;
  assertEquals(decoder.decode(view), "a");
  conn[kReadInto](target);
  conn[kConsume](view.length);
  await pair.peer.write(encoder.encode("b"));
  await selectUntil(sel, readyFor(conn, EVENT_READ));
  assertEquals(zeroed.size, 2);
  // The direct read came back empty; the read after it (into the conn's own
  // buffer, as every read after a direct one) brought the byte.
  assertEquals(conn[kTakeDirect](), 0);
  assertEquals(decoder.decode(conn[kPeek]()!), "b");
});

Deno.test("PollableConn.close() with a direct read in flight ignores its late result", async () => {
  using pair = await rawPair();
  const target = new Uint8Array(4);
  const late = Promise.withResolvers<number | null>();
  const read = pair.tcp.read.bind(pair.tcp);
  pair.tcp.read = (p: Uint8Array) => p === target ? late.promise : read(p);
  const conn = PollableConn.from(pair.tcp);
  using sel = new DefaultSelector();
  conn[kReadInto](target);
  sel.register(conn, EVENT_READ); // the direct read goes out
  sel.unregister(conn);
  conn.close();
  late.resolve(3); // after close: not counted, nothing reported
  await new Promise((resolve) => setTimeout(resolve, 10));
  assertEquals(conn[kTakeDirect](), 0);
  assertEquals(conn[kReady](), 0);
});

Deno.test("PollableConn turns a read rejected with a non-Error into an Error", async () => {
  using pair = await rawPair();
  pair.tcp.read = () => Promise.reject("boom");
  using conn = PollableConn.from(pair.tcp);
  await readyOn(conn, EVENT_READ);
  assertInstanceOf(conn.error, Error);
  assertEquals(conn.error.message, "boom");
});

Deno.test("PollableConn.close() after a failure releases at once; a write settling later is ignored", async () => {
  for (const outcome of ["resolve", "reject"] as const) {
    using pair = await rawPair();
    const write = Promise.withResolvers<number>();
    pair.tcp.write = () => write.promise;
    const read = Promise.withResolvers<number | null>();
    pair.tcp.read = () => read.promise;
    const conn = PollableConn.from(pair.tcp);
    using sel = new DefaultSelector();
    sel.register(conn, EVENT_READ);
    assertEquals(conn.send("pending"), 7); // the write stays in flight
    read.reject(new Deno.errors.ConnectionReset("reset by peer"));
    await selectUntil(sel, readyFor(conn, EVENT_READ));
    sel.unregister(conn);
    conn.close(); // failed: nothing to flush, released now
    if (outcome === "resolve") write.resolve(7);
    else write.reject(new Deno.errors.BrokenPipe("broken pipe"));
    await new Promise((resolve) => setTimeout(resolve, 10));
    // Released: the peer sees the end of the connection.
    assertEquals((await within(readAll(pair.peer), 5_000, "EOF")).length, 0);
  }
});

Deno.test("PollableConn.close() of a conn whose Deno.Conn was closed elsewhere does not throw", async () => {
  using pair = await rawPair();
  const conn = PollableConn.from(pair.tcp);
  pair.tcp.close();
  conn.close();
  assert(conn.closed);
});

Deno.test("Selector.modify() of a closed conn leaves it unwatched", async () => {
  using pair = await tcpPair();
  using sel = new DefaultSelector();
  sel.register(pair.conn, EVENT_WRITE);
  pair.conn.close();
  const key = sel.modify(pair.conn, EVENT_READ);
  assertEquals(key.events, EVENT_READ);
  assertEquals(pair.conn[kReady](), 0);
  assertEquals(await sel.select(0), []);
});

Deno.test("Selector.select() leaves out a conn drained between the call and its batch, and waits on for its next bytes", async () => {
  using pair = await tcpPair();
  const { conn, peer } = pair;
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_READ);
  await peer.write(encoder.encode("one"));
  await selectUntil(sel, readyFor(conn, EVENT_READ));
  // select(0) found it ready when called; another task drained it before the
  // batch: neither reported with an empty mask nor with READ.
  const poll = sel.select(0);
  assertEquals(decoder.decode(conn.recv()!), "one");
  assertEquals(await poll, []);
  await peer.write(encoder.encode("two"));
  await selectUntil(sel, readyFor(conn, EVENT_READ));
  // With a timeout, the select does not end on the drained conn: it waits
  // for the next bytes and reports those.
  const started = performance.now();
  const waiting = sel.select(2_000);
  assertEquals(decoder.decode(conn.recv()!), "two");
  const timer = setTimeout(() => peer.write(encoder.encode("three")), 20);
  const batch = await waiting;
  clearTimeout(timer);
  assertGreaterOrEqual(performance.now() - started, 15);
  assertEquals(batch.length, 1);
  assertEquals(maskOf(batch, conn), EVENT_READ);
  assertEquals(decoder.decode(conn.recv()!), "three");
});

Deno.test("PollableListener.accept() throws an accept error once, then accepts again", async () => {
  const raw = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accept = raw.accept.bind(raw);
  let failures = 1;
  raw.accept = () =>
    failures-- > 0
      ? Promise.reject(new Deno.errors.ConnectionAborted("aborted"))
      : accept();
  using listener = PollableListener.from(raw);
  using sel = new DefaultSelector();
  sel.register(listener, EVENT_READ);
  await selectUntil(sel, readyFor(listener, EVENT_READ));
  assertThrows(() => listener.accept(), Deno.errors.ConnectionAborted);
  using _client = await Deno.connect({ port: raw.addr.port });
  await selectUntil(sel, readyFor(listener, EVENT_READ));
  using conn = listener.accept();
  assert(conn.remoteAddr !== null);
});

Deno.test("PollableListener closes a connection accepted after close()", async () => {
  const raw = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const late = Promise.withResolvers<Deno.TcpConn>();
  raw.accept = () => late.promise;
  const listener = PollableListener.from(raw);
  using sel = new DefaultSelector();
  sel.register(listener, EVENT_READ);
  const other = listenTcp();
  using client = await Deno.connect({ port: other.addr.port });
  const accepted = await other.accept();
  other.close();
  sel.unregister(listener);
  listener.close();
  late.resolve(accepted); // arrives after close(): closed for us
  assertEquals((await within(readAll(client), 5_000, "EOF")).length, 0);
});

Deno.test("PollableListener.close() after its Deno listener was closed elsewhere does not throw", () => {
  const raw = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const listener = PollableListener.from(raw);
  raw.close();
  listener.close();
  assert(listener.closed);
});

Deno.test("Selector.register() names a prototype-less object as an object in its TypeError", () => {
  using sel = new DefaultSelector();
  assertThrows(
    () => sel.register(Object.create(null), EVENT_READ),
    TypeError,
    "received object",
  );
  using listener = listen();
  assertThrows(
    () => sel.register(listener, (() => 1) as unknown as number),
    RangeError,
    "received Function",
  );
});

Deno.test("allocate() starts a new slab when the current one is full", () => {
  const first = allocate(4096);
  let other = first;
  for (let i = 0; i < 40 && other.buffer === first.buffer; i++) {
    other = allocate(4096);
  }
  assert(other.buffer !== first.buffer, "no new slab after 160 KiB");
  assertEquals(allocate(8192).buffer.byteLength, 8192); // large: its own buffer
});

Deno.test("Arena.giveBack() returns the unused end of the last slab buffer, and nothing of an earlier one", () => {
  const arena = new Arena(4096, 2048);
  arena.allocate(8); // the first slab
  const head = arena.allocate(512);
  arena.giveBack(head, 100);
  // The next buffer starts right after the 100 bytes kept (8-byte aligned).
  const next = arena.allocate(16);
  assertStrictEquals(next.buffer, head.buffer);
  assertEquals(next.byteOffset, head.byteOffset + 104);
  // `next` was cut after it: giving back from `head` again changes nothing.
  arena.giveBack(head, 50);
  assertEquals(arena.allocate(16).byteOffset, next.byteOffset + 16);
  // Past its max, a buffer of its own; past the slab's end, a new slab.
  assertEquals(arena.allocate(2049).buffer.byteLength, 2049);
  assertStrictEquals(arena.allocate(2048).buffer, head.buffer);
  const last = arena.allocate(2048);
  assert(last.buffer !== head.buffer);
  assertEquals(last.buffer.byteLength, 4096);
});

Deno.test("fieldArena, where response heads' field bytes are cut, has slabs of 4 KiB: a kept response keeps no more", () => {
  assertEquals(fieldArena.allocate(512).buffer.byteLength, 4096);
  assertEquals(fieldArena.allocate(4096).buffer.byteLength, 4096); // its own
});

// ---------------------------------------------------------------------------
// TLS options and failures

Deno.test("PollableConn.connectTls() with an out-of-range port fails through error, not a throw", async () => {
  using conn = PollableConn.connectTls({ hostname: "localhost", port: 70_000 });
  await readyOn(conn, EVENT_WRITE);
  assertInstanceOf(conn.error, RangeError);
  // Closed before the failure is seen: nothing to cancel, nothing thrown.
  const closed = PollableConn.connectTls({ hostname: "localhost", port: -1 });
  closed.close();
  assert(closed.closed);
});

Deno.test("PollableConn.connectTls() with a hostname that is not a string fails through error with TypeError, before connecting", async () => {
  using listener = listenTcp();
  using conn = PollableConn.connectTls({
    hostname: 2130706433 as unknown as string, // 127.0.0.1, as a number
    port: listener.addr.port,
  });
  await readyOn(conn, EVENT_WRITE);
  assertInstanceOf(conn.error, TypeError);
  assertStringIncludes(conn.error.message, "hostname must be a string");
  // Nothing reached the server: a connect would be accepted at once.
  const accepted = await Promise.race([
    listener.accept().then((peer) => (peer.close(), true)),
    new Promise<false>((resolve) => setTimeout(() => resolve(false), 50)),
  ]);
  assertEquals(accepted, false);
});

Deno.test("PollableConn.connectTls() without hostname connects to 127.0.0.1", async () => {
  using listener = listenTls();
  const served = listener.accept().then(async (peer) => {
    await peer.write(encoder.encode("local"));
    peer.close();
  });
  using conn = PollableConn.connectTls({
    port: listener.addr.port,
    caCerts: [ca],
  });
  await readyOn(conn, EVENT_READ);
  assertEquals(decoder.decode(conn.recv()!), "local");
  assertEquals((conn.remoteAddr as Deno.NetAddr).hostname, "127.0.0.1");
  await served;
});

Deno.test({
  ...needsIpv6(
    'PollableConn.connectTls() to "[::1]" checks the certificate for the address ::1, as connect() takes the bracketed form',
  ),
  async fn() {
    using listener = Deno.listenTls({ hostname: "::1", port: 0, cert, key });
    const served = listener.accept().then(async (peer) => {
      await peer.write(encoder.encode("six"));
      peer.close();
    });
    using conn = PollableConn.connectTls({
      hostname: "[::1]",
      port: listener.addr.port,
      caCerts: [ca],
    });
    await readyOn(conn, EVENT_READ);
    assertEquals(conn.error, null);
    assertEquals(decoder.decode(conn.recv()!), "six");
    await served;
  },
});

Deno.test("PollableConn.connect() to a name that does not resolve fails with the resolver's error, naming the host", async () => {
  // As over TLS: Deno's own message says only "failed to lookup address
  // information" (a plain Error), not which name.
  using conn = PollableConn.connect({
    hostname: "selectors-test.invalid",
    port: 80,
  });
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_WRITE);
  await selectUntil(sel, readyFor(conn, EVENT_WRITE), { timeout: 20_000 });
  assert(conn.error !== null);
  assertStringIncludes(
    conn.error.message,
    'Cannot connect to "selectors-test.invalid": ',
  );
  assert(conn.error.cause instanceof Error);
  assert(
    !Object.values(Deno.errors).some((c) => conn.error instanceof c),
    String(conn.error),
  );
});

Deno.test("PollableConn.connectTls() to a name that does not resolve fails with the resolver's error", async () => {
  // .invalid never resolves (RFC 6761). Deno.connect reports this with a plain
  // Error too: no Deno.errors class names a failed lookup.
  using conn = PollableConn.connectTls({
    hostname: "selectors-test.invalid",
    port: 443,
  });
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_WRITE);
  await selectUntil(sel, readyFor(conn, EVENT_WRITE), { timeout: 20_000 });
  assert(conn.error !== null);
  assertStringIncludes(conn.error.message, "selectors-test.invalid");
  assert(
    !Object.values(Deno.errors).some((c) => conn.error instanceof c),
    String(conn.error),
  );
});

Deno.test("PollableConn.connectTls() checks the host name unless unsafelyDisableHostnameVerification", async () => {
  // 127.0.0.2 is loopback too, but the certificate names only 127.0.0.1.
  using listener = Deno.listenTls({
    hostname: "127.0.0.2",
    port: 0,
    cert,
    key,
  });
  const served = (async () => {
    for (let i = 0; i < 2; i++) {
      using peer = await listener.accept();
      try {
        await peer.write(encoder.encode("ok"));
      } catch {
        // the first client refuses the certificate
      }
    }
  })();
  // Awaited at the end; if the test fails first, the listener's close ends the
  // accept, and that rejection must not end the whole file as uncaught.
  served.catch(() => {});
  const options = {
    hostname: "127.0.0.2",
    port: listener.addr.port,
    caCerts: [ca],
    alpnProtocols: ["http/1.1"],
    autoSelectFamily: false,
    autoSelectFamilyAttemptDelay: 100,
  };
  using strict = PollableConn.connectTls(options);
  await readyOn(strict, EVENT_WRITE);
  assertInstanceOf(strict.error, Deno.errors.InvalidData);
  assertStringIncludes(strict.error.message, "127.0.0.2");
  using lax = PollableConn.connectTls({
    ...options,
    unsafelyDisableHostnameVerification: true,
  });
  await readyOn(lax, EVENT_READ);
  assertEquals(lax.error, null);
  assertEquals(decoder.decode(lax.recv()!), "ok");
  await served;
});

Deno.test("PollableConn.send() over TLS fails with ConnectionReset or BrokenPipe after the peer resets", async () => {
  using listener = listenTls();
  using conn = PollableConn.connectTls({
    hostname: "127.0.0.1",
    port: listener.addr.port,
    caCerts: [ca],
  });
  const peer = await listener.accept();
  await peer.handshake();
  await readyOn(conn, EVENT_WRITE);
  assertEquals(conn.send("unread"), 6);
  await new Promise((resolve) => setTimeout(resolve, 20));
  peer.close(); // unread bytes: the kernel resets the connection
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_WRITE);
  let failure: unknown = null;
  await selectUntil(sel, () => {
    try {
      conn.send(new Uint8Array(16 * 1024));
    } catch (e) {
      if (!(e instanceof BlockingIOError)) failure = e;
    }
    return failure !== null;
  }, { rounds: 10_000 });
  assert(
    failure instanceof Deno.errors.ConnectionReset ||
      failure instanceof Deno.errors.BrokenPipe,
    String(failure),
  );
  assertStrictEquals(conn.error, failure);
});
