import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  BlockingIOError,
  DefaultSelector,
  EVENT_READ,
  EVENT_WRITE,
  PollableConn,
} from "../mod.ts";
import { kStartTls } from "../selector/_pollable.ts";
import { isUnknownIssuer } from "../selector/_tls_socket.ts";
import {
  bytesEqual,
  concat,
  listenTcp,
  maskOf,
  readExactly,
  readyFor,
  readyOn,
  Rng,
  selectUntil,
  within,
} from "./_net.ts";
import {
  ca,
  clientCa,
  clientCert,
  clientKey,
  listenTls,
  mtlsServer,
} from "./_tls.ts";

/** Connects a plain TCP conn and waits until it is established. */
async function connected(port: number): Promise<PollableConn> {
  const conn = PollableConn.connect({ hostname: "127.0.0.1", port });
  await readyOn(conn, EVENT_WRITE);
  assertEquals(conn.error, null);
  return conn;
}

/** Sends `data`, then reads until the peer closes (bounded). */
async function roundTrip(
  conn: PollableConn,
  data: Uint8Array,
): Promise<Uint8Array> {
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_WRITE);
  await selectUntil(sel, readyFor(conn, EVENT_WRITE));
  let sent = 0;
  const chunks: Uint8Array[] = [];
  sel.modify(conn, EVENT_READ | EVENT_WRITE);
  await selectUntil(sel, (batch) => {
    const mask = maskOf(batch, conn);
    if (mask & EVENT_WRITE && sent < data.length) {
      try {
        while (sent < data.length) sent += conn.send(data.subarray(sent));
      } catch (e) {
        if (!(e instanceof BlockingIOError)) throw e;
      }
      if (sent === data.length) sel.modify(conn, EVENT_READ);
    }
    if (mask & EVENT_READ) {
      const chunk = conn.recv();
      if (chunk === null) return true;
      chunks.push(chunk);
    }
    return false;
  }, { rounds: 10_000 });
  sel.unregister(conn);
  return concat(chunks);
}

Deno.test("PollableConn[kStartTls]() upgrades an open conn in place; bytes both ways arrive intact", async () => {
  // An echo server over TLS; the client first connects in plain TCP, as through
  // a proxy's tunnel, then starts TLS on the same conn.
  using server = listenTls();
  const data = new Rng(9).bytes(300_000);
  const served = server.accept().then(async (peer) => {
    try {
      const got = await readExactly(peer, data.length);
      for (let sent = 0; sent < got.length;) {
        sent += await peer.write(got.subarray(sent));
      }
    } finally {
      peer.close();
    }
  });
  const conn = await connected(server.addr.port);
  try {
    const before = conn.remoteAddr as Deno.NetAddr;
    conn[kStartTls]({ hostname: "localhost", caCerts: [ca] });
    // Connecting again until the handshake ends: not ready meanwhile.
    await readyOn(conn, EVENT_WRITE);
    assertEquals(conn.error, null);
    assertEquals((conn.remoteAddr as Deno.NetAddr).port, before.port);
    const echoed = await roundTrip(conn, data);
    assertEquals(echoed.length, data.length);
    assert(bytesEqual(echoed, data), "echo differs");
  } finally {
    conn.close();
    await served;
  }
});

Deno.test("PollableConn[kStartTls]() refuses a conn holding received bytes, which would be lost", async () => {
  using server = listenTcp();
  const served = server.accept().then(async (peer) => {
    await peer.write(new Uint8Array([1, 2, 3]));
    return peer;
  });
  const conn = PollableConn.connect(server.addr);
  try {
    await readyOn(conn, EVENT_READ);
    const error = assertThrows(
      () => conn[kStartTls]({ hostname: "localhost", caCerts: [ca] }),
      Deno.errors.InvalidData,
    );
    assertStringIncludes(
      error.message,
      "3 bytes received before the handshake",
    );
    // Nothing was taken: the bytes are still there.
    assertEquals(conn.recv(), new Uint8Array([1, 2, 3]));
  } finally {
    conn.close();
    (await served).close();
  }
});

Deno.test("PollableConn[kStartTls]() on a closed or unconnected conn throws", async () => {
  using server = listenTcp();
  const accepted = server.accept();
  const conn = PollableConn.connect(server.addr);
  assertThrows(
    () => conn[kStartTls]({ hostname: "localhost" }),
    Deno.errors.NotConnected,
  );
  conn.close();
  assertThrows(
    () => conn[kStartTls]({ hostname: "localhost" }),
    Deno.errors.BadResource,
  );
  (await accepted).close();
});

Deno.test("PollableConn.close() during a started handshake releases the socket at once", async () => {
  // The peer accepts and never answers the ClientHello.
  using server = listenTcp();
  const accepted = server.accept();
  const conn = await connected(server.addr.port);
  const peer = await accepted;
  try {
    conn[kStartTls]({ hostname: "localhost", caCerts: [ca] });
    // The ClientHello comes, then nothing: close while the handshake waits.
    const hello = new Uint8Array(4096);
    assert((await within(peer.read(hello), 5_000, "ClientHello"))! > 0);
    conn.close();
    // The socket is gone: the peer sees the end of stream, not a hang.
    const buf = new Uint8Array(4096);
    let end: number | null = 0;
    for (let i = 0; i < 10 && end !== null; i++) {
      end = await within(peer.read(buf), 2_000, "end of stream");
    }
    assertEquals(end, null);
  } finally {
    peer.close();
  }
});

Deno.test("PollableConn[kStartTls]() with caCerts the chain does not lead to fails as InvalidData, an unknown issuer", async () => {
  using server = listenTls();
  const served = server.accept().then((peer) =>
    peer.handshake().catch(() => {}).finally(() => peer.close())
  );
  const conn = await connected(server.addr.port);
  try {
    // The client CA did not sign the server's certificate.
    conn[kStartTls]({ hostname: "localhost", caCerts: [clientCa] });
    await readyOn(conn, EVENT_WRITE);
    assertInstanceOf(conn.error, Deno.errors.InvalidData);
    assert(isUnknownIssuer(conn.error));
  } finally {
    conn.close();
    await served;
  }
});

Deno.test("PollableConn[kStartTls]() presents a client certificate to a server that requires one", async () => {
  await using server = await mtlsServer((socket) => socket.end("ok"));
  const conn = await connected(server.port);
  try {
    conn[kStartTls]({
      hostname: "localhost",
      caCerts: [ca],
      cert: clientCert,
      key: clientKey,
    });
    const reply = await roundTrip(conn, new TextEncoder().encode("hello"));
    assertEquals(new TextDecoder().decode(reply), "ok");
    assertEquals(await server.peer, "selectors test client");
  } finally {
    conn.close();
  }
});
