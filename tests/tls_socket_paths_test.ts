/**
 * Paths of the TLS-over-a-connection layer (`selector/_tls_socket.ts`) and of
 * `PollableConn[kStartTls]()` that no other test reached (found with
 * `deno test --coverage`), on loopback sockets.
 */
import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { assertSpyCall, assertSpyCalls, spy } from "@std/testing/mock";
import {
  DefaultSelector,
  EVENT_READ,
  EVENT_WRITE,
  PollableConn,
} from "../mod.ts";
import { kStartTls } from "../selector/_pollable.ts";
import { isUnknownIssuer, startTlsSocket } from "../selector/_tls_socket.ts";
import type { Transport } from "../selector/_transport.ts";
import {
  listenTcp,
  readyFor,
  readyOn,
  selectUntil,
  sendUntilFails,
} from "./_net.ts";
import { ca, listenTls } from "./_tls.ts";

Deno.test("startTlsSocket() reads on after a 0-byte read, passes setNoDelay/setKeepAlive to the conn under it, and ends the stream on closeWrite()", async () => {
  using server = listenTls();
  const served = server.accept().then(async (peer) => {
    try {
      const buf = new Uint8Array(64);
      const n = await peer.read(buf);
      await peer.write(buf.subarray(0, n ?? 0));
      // The client's closeWrite() reaches here as the end of stream.
      return await peer.read(buf);
    } finally {
      peer.close();
    }
  });
  const tcp = await Deno.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
  });
  // Deno.Conn's contract allows a 0-byte read that is not the end: the first read
  // under the TLS socket returns one.
  let zeroReads = 0;
  const under: Transport = {
    localAddr: tcp.localAddr,
    remoteAddr: tcp.remoteAddr,
    read: (p) => zeroReads++ === 0 ? Promise.resolve(0) : tcp.read(p),
    write: (p) => tcp.write(p),
    closeWrite: spy(() => tcp.closeWrite()),
    close: () => tcp.close(),
    setNoDelay: spy((_on?: boolean) => {}),
    setKeepAlive: spy((_on?: boolean) => {}),
  };
  const tls = await startTlsSocket(under, {
    hostname: "localhost",
    caCerts: [ca],
  })
    .promise;
  try {
    assert(zeroReads > 1, "the handshake read past the 0-byte read");
    tls.setNoDelay!(true);
    tls.setKeepAlive!(false);
    assertSpyCall(under.setNoDelay as never, 0, { args: [true] });
    assertSpyCall(under.setKeepAlive as never, 0, { args: [false] });
    assertEquals(tls.localAddr, tcp.localAddr);
    await tls.write(new TextEncoder().encode("ping"));
    const buf = new Uint8Array(16);
    const n = await tls.read(buf);
    assertEquals(new TextDecoder().decode(buf.subarray(0, n!)), "ping");
    await tls.closeWrite();
    // The server reads the end of stream (TLS close_notify), and the conn under
    // it is half-closed after it, as node:tls does to a socket of its own.
    assertEquals(await served, null);
    assertSpyCalls(under.closeWrite as never, 1);
  } finally {
    // The conn under it closed first (by its owner, say): closing the TLS
    // socket then must not throw for it.
    tcp.close();
    tls.close();
  }
  // Let the TLS socket's 'close' run its (now no-op) close of the conn under it.
  await new Promise((r) => setTimeout(r, 0));
});

Deno.test("isUnknownIssuer() is false for a value that is not an object", () => {
  for (const value of [null, undefined, "UNABLE_TO_GET_ISSUER_CERT", 20]) {
    assertFalse(isUnknownIssuer(value));
  }
  assert(isUnknownIssuer({ code: "UNABLE_TO_GET_ISSUER_CERT_LOCALLY" }));
});

Deno.test("PollableConn[kStartTls]() after a failed connect throws the connect's error", async () => {
  const listener = listenTcp();
  const port = listener.addr.port;
  listener.close();
  const conn = PollableConn.connect({ hostname: "127.0.0.1", port });
  try {
    await readyOn(conn, EVENT_WRITE);
    assertInstanceOf(conn.error, Deno.errors.ConnectionRefused);
    const error = assertThrows(() =>
      conn[kStartTls]({ hostname: "localhost" })
    );
    assertEquals(error, conn.error);
  } finally {
    conn.close();
  }
});

Deno.test("PollableConn[kStartTls]() after a failed send throws that send's error", async () => {
  using server = listenTcp();
  const accepted = server.accept();
  const conn = PollableConn.connect(server.addr);
  try {
    await readyOn(conn, EVENT_WRITE);
    // The peer closes with nothing unread: a FIN; what this side sends after
    // is answered with a reset, and a later send fails.
    (await accepted).close();
    using sel = new DefaultSelector();
    sel.register(conn, EVENT_WRITE);
    const sendError = await sendUntilFails(sel, conn, 64 * 1024);
    sel.unregister(conn);
    assert(
      sendError instanceof Deno.errors.BrokenPipe ||
        sendError instanceof Deno.errors.ConnectionReset,
      String(sendError),
    );
    const error = assertThrows(() =>
      conn[kStartTls]({ hostname: "localhost" })
    );
    assertEquals(error, sendError);
  } finally {
    conn.close();
  }
});

Deno.test("PollableConn[kStartTls]() refuses a conn with a read in flight", async () => {
  using server = listenTcp();
  const accepted = server.accept();
  const conn = PollableConn.connect(server.addr);
  try {
    using sel = new DefaultSelector();
    sel.register(conn, EVENT_WRITE);
    await selectUntil(sel, readyFor(conn, EVENT_WRITE));
    // Watching for reads starts one; nothing has arrived.
    sel.modify(conn, EVENT_READ);
    await sel.select(0);
    const error = assertThrows(
      () => conn[kStartTls]({ hostname: "localhost" }),
      Deno.errors.InvalidData,
    );
    assertStringIncludes(error.message, "a read in flight");
    sel.unregister(conn);
  } finally {
    conn.close();
    (await accepted).close();
  }
});

Deno.test("startTlsSocket() over a conn without socket options (as a Unix socket) ignores setNoDelay and setKeepAlive", async () => {
  using server = listenTls();
  const served = server.accept().then((peer) =>
    peer.handshake().finally(() => peer.close())
  );
  const tcp = await Deno.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
  });
  const under: Transport = {
    localAddr: tcp.localAddr,
    remoteAddr: tcp.remoteAddr,
    read: (p) => tcp.read(p),
    write: (p) => tcp.write(p),
    closeWrite: () => tcp.closeWrite(),
    close: () => tcp.close(),
  };
  const tls = await startTlsSocket(under, {
    hostname: "localhost",
    caCerts: [ca],
  }).promise;
  try {
    tls.setNoDelay!(true);
    tls.setKeepAlive!(true);
  } finally {
    tls.close();
    await served;
  }
});

Deno.test("PollableConn[kStartTls]() refuses a conn whose peer ended the stream", async () => {
  using server = listenTcp();
  const accepted = server.accept();
  const conn = PollableConn.connect(server.addr);
  try {
    (await accepted).close();
    using sel = new DefaultSelector();
    sel.register(conn, EVENT_READ);
    await selectUntil(sel, readyFor(conn, EVENT_READ));
    assertEquals(conn.recv(), null);
    sel.unregister(conn);
    const error = assertThrows(
      () => conn[kStartTls]({ hostname: "localhost" }),
      Deno.errors.InvalidData,
    );
    assertStringIncludes(error.message, "end of stream");
  } finally {
    conn.close();
  }
});

Deno.test("PollableConn[kStartTls]() refuses a conn with bytes accepted by send() and not yet written", async () => {
  using server = listenTcp();
  const accepted = server.accept();
  const conn = PollableConn.connect(server.addr);
  try {
    await readyOn(conn, EVENT_WRITE);
    // The write runs on a later turn: in this one the bytes are still waiting.
    assertEquals(conn.send("hello"), 5);
    const error = assertThrows(
      () => conn[kStartTls]({ hostname: "localhost" }),
      Deno.errors.InvalidData,
    );
    assertStringIncludes(error.message, "bytes waiting to be sent");
  } finally {
    conn.close();
    (await accepted).close();
  }
});
