import {
  assert,
  assertEquals,
  assertGreater,
  assertInstanceOf,
  assertLess,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  BlockingIOError,
  DefaultSelector,
  EVENT_READ,
  EVENT_WRITE,
  fetchAll,
  PollableConn,
  PollableListener,
} from "../mod.ts";
import { kStartTls } from "../selector/_pollable.ts";
import {
  blackhole,
  bytesEqual,
  listenTcp,
  maskOf,
  openSockets,
  readAll,
  readExactly,
  readyFor,
  readyOn,
  Rng,
  runScript,
  selectUntil,
  settledSockets,
  socketsWithin,
  tcpTimer,
  waitFor,
} from "./_net.ts";
import {
  ca,
  cert,
  chainCa,
  chainedCert,
  chainedKey,
  clientCa,
  clientCert,
  clientKey,
  datedCa,
  datedKey,
  expiredCert,
  key,
  listenTls,
  type MtlsServer,
  mtlsServer as startMtlsServer,
  notYetValidCert,
  selfSignedCert,
  selfSignedKey,
  testdata,
} from "./_tls.ts";
import { describeProblem, trustedNames } from "../selector/_tls_socket.ts";
import { createServer, type Socket } from "node:net";
import { TLSSocket } from "node:tls";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The server of the mTLS tests: answers "hi from " and the client's CN. */
function mtlsServer(): Promise<MtlsServer> {
  return startMtlsServer((socket, cn) => socket.write(`hi from ${cn}`));
}

/** A TLS client of `listener`, trusting the test CA. */
function connectTo(listener: Deno.TlsListener): PollableConn {
  return PollableConn.connectTls({
    hostname: "localhost",
    port: listener.addr.port,
    caCerts: [ca],
  });
}

/** Receives from `conn`, registered for reading on `sel`, to end of stream, as text (bounded). */
async function recvToEnd(
  sel: DefaultSelector,
  conn: PollableConn,
): Promise<string> {
  let text = "";
  let eof = false;
  await selectUntil(sel, () => {
    try {
      const chunk = conn.recv();
      if (chunk === null) eof = true;
      else text += decoder.decode(chunk);
    } catch (e) {
      if (!(e instanceof BlockingIOError)) throw e;
    }
    return eof;
  });
  return text;
}

/** Sends all of `data` and receives `expect` bytes through one selector (bounded). */
async function exchange(
  conn: PollableConn,
  data: Uint8Array,
  expect: number,
): Promise<Uint8Array> {
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_READ | EVENT_WRITE);
  let sent = 0;
  const received = new Uint8Array(expect);
  let got = 0;
  await selectUntil(sel, (batch) => {
    const mask = maskOf(batch, conn);
    if (mask & EVENT_WRITE) {
      try {
        while (sent < data.length) sent += conn.send(data.subarray(sent));
      } catch (e) {
        if (!(e instanceof BlockingIOError)) throw e;
      }
      if (sent === data.length) sel.modify(conn, EVENT_READ);
    }
    if (mask & EVENT_READ) {
      const chunk = conn.recv(expect - got || 1);
      if (chunk === null) {
        throw new Error(`EOF after ${got} of ${expect} bytes`);
      }
      received.set(chunk, got);
      got += chunk.length;
    }
    return sent === data.length && got === expect;
  }, { rounds: 100_000, timeout: 10_000 });
  return received;
}

Deno.test("PollableConn.connectTls() becomes write-ready and exchanges data both ways", async () => {
  using listener = listenTls();
  const server = (async () => {
    using peer = await listener.accept();
    const request = await readExactly(peer, 5);
    await peer.write(encoder.encode(`echo:${decoder.decode(request)}`));
    return decoder.decode(request);
  })();
  using conn = connectTo(listener);
  assertEquals(conn.remoteAddr, null);
  assertThrows(() => conn.send("x"), BlockingIOError);
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_WRITE);
  await selectUntil(sel, readyFor(conn, EVENT_WRITE));
  assertEquals(conn.error, null);
  assertEquals((conn.remoteAddr as Deno.NetAddr).port, listener.addr.port);
  const reply = await exchange(conn, encoder.encode("hello"), 10);
  assertEquals(decoder.decode(reply), "echo:hello");
  assertEquals(await server, "hello");
});

Deno.test("PollableConn.connectTls() to 127.0.0.1 checks the certificate's IP address", async () => {
  using listener = listenTls();
  const server = (async () => {
    using peer = await listener.accept();
    await peer.write(encoder.encode("ip ok"));
  })();
  using conn = PollableConn.connectTls({
    hostname: "127.0.0.1",
    port: listener.addr.port,
    caCerts: [ca],
  });
  const got = await exchange(conn, new Uint8Array(), 5);
  assertEquals(decoder.decode(got), "ip ok");
  await server;
});

Deno.test("PollableConn.connectTls() without the CA becomes ready with a certificate error", async () => {
  using listener = listenTls();
  const server = (async () => {
    using peer = await listener.accept();
    // The client rejects our certificate: the handshake fails on this side too.
    try {
      await peer.handshake();
      return "handshake ok";
    } catch (e) {
      return (e as Error).name;
    }
  })();
  using conn = PollableConn.connectTls({
    hostname: "localhost",
    port: listener.addr.port,
  });
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_READ | EVENT_WRITE);
  const batch = await selectUntil(
    sel,
    readyFor(conn, EVENT_READ | EVENT_WRITE),
  );
  assertEquals(maskOf(batch, conn), EVENT_READ | EVENT_WRITE);
  const error = conn.error;
  assert(error instanceof Deno.errors.InvalidData, String(error));
  assertStringIncludes(error.message, "certificate");
  assertThrows(() => conn.recv(), Deno.errors.InvalidData, "certificate");
  assertThrows(() => conn.send("x"), Deno.errors.InvalidData, "certificate");
  assertEquals(conn.remoteAddr, null);
  // Deno 2.9.6's node:tls over a stream (not its own socket) sends no alert
  // when it rejects the certificate: the server sees the connection end.
  const outcome = await server;
  assert(
    outcome === "InvalidData" || outcome === "UnexpectedEof",
    outcome,
  );
});

/**
 * A TLS server of `cert` that counts the connections it accepts and the
 * application bytes any of them sent (reading each until it ends).
 */
function countingTlsServer(cert: string, key: string) {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert,
    key,
  });
  const stats = { connections: 0, bytes: 0 };
  const conns: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      stats.connections++;
      conns.push((async () => {
        const buf = new Uint8Array(1024);
        try {
          for (let n; (n = await conn.read(buf)) !== null;) stats.bytes += n;
        } catch {
          // The client rejected the certificate, or hung up.
        } finally {
          conn.close();
        }
      })());
    }
  })();
  return {
    port: listener.addr.port,
    stats,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting.catch(() => {});
      await Promise.all(conns);
    },
  };
}

Deno.test("fetchAll over https says why a certificate was rejected (expired, not yet valid, untrusted issuer, an expired intermediate, self-signed), and sends no request byte", async () => {
  // [case, certificate, key, caCerts, what the error says, looked again]
  const cases: Array<
    [string, string, string, string[] | undefined, string, boolean]
  > = [
    [
      "expired",
      expiredCert,
      datedKey,
      [datedCa],
      "unable to verify the first certificate: the server's certificate expired on 2021-01-01 00:00:00 UTC",
      true,
    ],
    [
      "not yet valid",
      notYetValidCert,
      datedKey,
      [datedCa],
      "unable to verify the first certificate: the server's certificate is not valid before 2100-01-01 00:00:00 UTC",
      true,
    ],
    [
      "untrusted issuer",
      cert,
      key,
      undefined,
      "unable to verify the first certificate: the server's certificate was issued by CN=selectors test CA, which is not a trusted root",
      true,
    ],
    // Rejected as for an unknown issuer, though the root is trusted.
    [
      "expired intermediate",
      chainedCert,
      chainedKey,
      [chainCa],
      "unable to verify the first certificate: the certificate of CN=selectors test expired intermediate in the server's chain expired on 2021-01-01 00:00:00 UTC",
      true,
    ],
    // node:tls names this one itself: no second look.
    [
      "self-signed",
      selfSignedCert,
      selfSignedKey,
      undefined,
      "self-signed certificate",
      false,
    ],
  ];
  for (const [name, serverCert, serverKey, caCerts, says, looked] of cases) {
    await using server = countingTlsServer(serverCert, serverKey);
    const [result] = await fetchAll(
      [`https://localhost:${server.port}/`],
      caCerts !== undefined ? { caCerts } : {},
    );
    assert(!result!.ok, name);
    const error = result!.error as Error;
    assert(error instanceof Deno.errors.InvalidData, `${name}: ${error}`);
    assertStringIncludes(error.message, says, name);
    // caCerts are tried, then the default roots (see connectTlsSocket), then
    // the look at the certificate: one more handshake, and no request.
    const tries = caCerts !== undefined ? 2 : 1;
    assertEquals(server.stats.connections, tries + (looked ? 1 : 0), name);
    assertEquals(server.stats.bytes, 0, name);
  }
});

Deno.test("describeProblem() words the dates of a certificate or of one in its chain, and where the chain ends, and says nothing without them", () => {
  const now = Date.UTC(2030, 0, 1);
  const cert = {
    valid_from: "Jan  1 00:00:00 2029 GMT",
    valid_to: "Jan  1 00:00:00 2031 GMT",
    subject: { CN: "a.example", O: "A" },
    issuer: { CN: "B CA", O: "B" },
  };
  assertEquals(
    describeProblem(cert, now),
    "the server's certificate was issued by CN=B CA, O=B, which is not a trusted root (nor did the server send a chain that leads to one)",
  );
  assertEquals(
    describeProblem(cert, Date.UTC(2032, 0, 1)),
    "the server's certificate expired on 2031-01-01 00:00:00 UTC",
  );
  assertEquals(
    describeProblem({ ...cert, issuer: cert.subject }, now),
    "the server's certificate is self-signed (CN=a.example, O=A)",
  );
  // A chain: the first certificate out of its dates, else where it ends.
  const intermediate = {
    valid_from: "Jan  1 00:00:00 2020 GMT",
    valid_to: "Jan  1 00:00:00 2021 GMT",
    subject: { CN: "B CA" },
    issuer: { CN: "Root" },
  };
  assertEquals(
    describeProblem({
      ...cert,
      issuer: { CN: "B CA" },
      issuerCertificate: intermediate,
    }, now),
    "the certificate of CN=B CA in the server's chain expired on 2021-01-01 00:00:00 UTC",
  );
  const valid = { ...intermediate, valid_to: cert.valid_to };
  const chain = { ...cert, issuer: { CN: "B CA" }, issuerCertificate: valid };
  assertEquals(
    describeProblem(chain, now),
    "the server's chain ends at a certificate issued by CN=Root, which is not a trusted root",
  );
  assertEquals(
    describeProblem(chain, now, new Set(["CN=Root"])),
    "the server's chain leads to CN=Root, a root trusted here, and was rejected all the same (a constraint of a certificate in it, or its length)",
  );
  // A root sent along points at itself: the walk ends there.
  const root: Record<string, unknown> = {
    valid_from: cert.valid_from,
    valid_to: cert.valid_to,
    subject: { CN: "Root" },
    issuer: { CN: "Root" },
  };
  root.issuerCertificate = root;
  assertEquals(
    describeProblem({
      ...chain,
      issuerCertificate: { ...valid, issuerCertificate: root },
    }, now),
    "the server's chain ends at a certificate issued by CN=Root, which is not a trusted root",
  );
  assertEquals(describeProblem(null, now), null);
  assertEquals(describeProblem({ valid_to: cert.valid_to }, now), null);
  assertEquals(describeProblem({ ...cert, issuer: undefined }, now), null);
});

Deno.test("trustedNames() words caCerts' subjects as describeProblem() words a chain's, a repeated field (two OUs) as one listing both", () => {
  // A self-signed root, O=Org, OU=A, OU=B, CN=Dup Root (generated once with
  // openssl req -x509; its key discarded).
  const dupRoot = "-----BEGIN CERTIFICATE-----\n" +
    "MIIByDCCAW+gAwIBAgIUA6fl3lXwgkIEtASrScPEvHDxfyAwCgYIKoZIzj0EAwIw\n" +
    "OTEMMAoGA1UECgwDT3JnMQowCAYDVQQLDAFBMQowCAYDVQQLDAFCMREwDwYDVQQD\n" +
    "DAhEdXAgUm9vdDAgFw0yNjExMjkxNjIzNThaGA8yMTI2MTEwNTE2MjM1OFowOTEM\n" +
    "MAoGA1UECgwDT3JnMQowCAYDVQQLDAFBMQowCAYDVQQLDAFCMREwDwYDVQQDDAhE\n" +
    "dXAgUm9vdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABPYeaYJVhN1UitslWTCt\n" +
    "OG1UaxK/GEVjJEiTbmO7RbDbRX5M79jc59uEsGyYVXqR7rMjfq2DarWyPyHJJXWN\n" +
    "E7qjUzBRMB0GA1UdDgQWBBQBzLaw92mdRRe6O/Wx5h/lMg9ZODAfBgNVHSMEGDAW\n" +
    "gBQBzLaw92mdRRe6O/Wx5h/lMg9ZODAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49\n" +
    "BAMCA0cAMEQCIGQyuKbqsElSxy+j/bPwADPtQShI7eT9pn1h4AX4LvEqAiB7t6mu\n" +
    "GRZ/Twr/DNdK8+CjAGHhirRmKU5cf4KyTCV4+A==\n" +
    "-----END CERTIFICATE-----\n";
  // getPeerCertificate() gives such a name as { OU: ["A", "B"] }.
  assertEquals([...trustedNames([dupRoot, ca, "not a PEM"])], [
    "O=Org, OU=A,B, CN=Dup Root",
    "CN=selectors test CA",
  ]);
  const leaf = {
    valid_from: "Jan  1 00:00:00 2020 GMT",
    valid_to: "Jan  1 00:00:00 2120 GMT",
    subject: { CN: "localhost" },
    issuer: { O: "Org", OU: ["A", "B"], CN: "Dup Root" },
  };
  assertStringIncludes(
    describeProblem(leaf, Date.UTC(2030, 0, 1), trustedNames([dupRoot]))!,
    "a root trusted here",
  );
});

Deno.test("describeProblem() follows the chain by issuer, not in the order the server sent it, and stops at a root trusted here", () => {
  const now = Date.UTC(2030, 0, 1);
  const dates = {
    valid_from: "Jan  1 00:00:00 2020 GMT",
    valid_to: "Jan  1 00:00:00 2120 GMT",
  };
  const expired = {
    valid_from: "Jan  1 00:00:00 2020 GMT",
    valid_to: "Jan  1 00:00:00 2021 GMT",
  };
  // Sent: leaf, an unrelated expired certificate, the intermediate (Deno
  // links them in that order).
  const intermediate = {
    ...dates,
    subject: { CN: "Int" },
    issuer: { CN: "Root" },
  };
  const stray = {
    ...expired,
    subject: { CN: "other" },
    issuer: { CN: "Other CA" },
    issuerCertificate: intermediate,
  };
  const leaf = {
    ...dates,
    subject: { CN: "localhost" },
    issuer: { CN: "Int" },
    issuerCertificate: stray,
  };
  assertEquals(
    describeProblem(leaf, now),
    "the server's chain ends at a certificate issued by CN=Root, which is not a trusted root",
  );
  // An expired cross-sign sent past a root trusted here is not looked at.
  const crossSign = {
    ...expired,
    subject: { CN: "Root" },
    issuer: { CN: "Old Root" },
  };
  const viaCross = {
    ...leaf,
    issuerCertificate: { ...intermediate, issuerCertificate: crossSign },
  };
  assertEquals(
    describeProblem(viaCross, now),
    "the certificate of CN=Root in the server's chain expired on 2021-01-01 00:00:00 UTC",
  );
  assertStringIncludes(
    describeProblem(viaCross, now, new Set(["CN=Root"]))!,
    "a root trusted here",
  );
});

Deno.test("PollableConn.connectTls() to a refused port sets error", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  using conn = PollableConn.connectTls({
    hostname: "localhost",
    port,
    caCerts: [ca],
  });
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_WRITE);
  await selectUntil(sel, readyFor(conn, EVENT_WRITE));
  assert(
    conn.error instanceof Deno.errors.ConnectionRefused,
    String(conn.error),
  );
  assertThrows(() => conn.recv(), Deno.errors.ConnectionRefused);
});

Deno.test("PollableConn.connectTls() to a host --allow-net leaves out fails with NotCapable naming the flag, by name and by address", async () => {
  // Refused before any lookup (node:net would word a name's refusal as a
  // failed lookup, "getaddrinfo EPERM").
  const script = `
    import { DefaultSelector, EVENT_WRITE, PollableConn } from "${
    new URL("../mod.ts", import.meta.url).href
  }";
    const errors = [];
    for (const hostname of ["localhost", "127.0.0.1"]) {
      const conn = PollableConn.connectTls({ hostname, port: 1 });
      const sel = new DefaultSelector();
      sel.register(conn, EVENT_WRITE);
      for (let i = 0; i < 100 && (await sel.select(5_000)).length === 0; i++);
      errors.push(conn.error?.name + ": " + conn.error?.message);
      sel.close();
      conn.close();
    }
    console.log(JSON.stringify(errors));
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-config",
      "--allow-net=127.0.0.2",
      `--allow-read=${new URL("..", import.meta.url).pathname}`,
      "-",
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdin = child.stdin.getWriter();
  await stdin.write(encoder.encode(script));
  await stdin.close();
  const { code, stdout, stderr } = await child.output();
  assertEquals(code, 0, decoder.decode(stderr));
  const errors: string[] = JSON.parse(decoder.decode(stdout));
  assertEquals(errors, [
    'NotCapable: Requires net access to "localhost:1", run again with the --allow-net flag',
    'NotCapable: Requires net access to "127.0.0.1:1", run again with the --allow-net flag',
  ]);
});

Deno.test("PollableConn.close() during the TLS handshake releases the socket at once", async () => {
  // The server accepts the TCP connection and reads the ClientHello, but never
  // answers: the handshake stays pending until the client gives up.
  using listener = listenTcp();
  const baseline = await settledSockets();
  const conn = PollableConn.connectTls({
    hostname: "127.0.0.1",
    port: listener.addr.port,
    caCerts: [ca],
  });
  using peer = await listener.accept();
  const hello = new Uint8Array(5);
  assertEquals(await peer.read(hello), 5);
  assertEquals(hello[0], 22); // a TLS handshake record: the handshake started
  assertEquals(openSockets(), baseline + 2); // our socket and the accepted one
  const start = performance.now();
  conn.close();
  assert(conn.closed);
  assertThrows(() => conn.recv(), Deno.errors.BadResource);
  assertEquals(await socketsWithin(baseline + 1, 100), baseline + 1);
  assertLess(performance.now() - start, 100);
  // The peer sees the connection end: it was really closed, not abandoned.
  const buf = new Uint8Array(64 * 1024);
  let outcome: number | null | string;
  try {
    do outcome = await peer.read(buf); while (outcome !== null);
  } catch (e) {
    outcome = (e as Error).name;
  }
  assert(outcome === null || outcome === "ConnectionReset", String(outcome));
});

Deno.test("PollableConn.close() during a TCP connect releases the socket at once (connect and connectTls)", async () => {
  using hole = await blackhole();
  assertGreater(hole.filled, 0);
  const baseline = await settledSockets();
  const conns = [
    PollableConn.connect({ hostname: "127.0.0.1", port: hole.port }),
    PollableConn.connectTls({
      hostname: "127.0.0.1",
      port: hole.port,
      caCerts: [ca],
    }),
  ];
  using sel = new DefaultSelector();
  for (const conn of conns) sel.register(conn, EVENT_WRITE);
  // Both stay connecting: the listener's backlog is full.
  assertEquals(await sel.select(100), []);
  assertEquals(openSockets(), baseline + 2);
  for (const conn of conns) {
    assertEquals(conn.remoteAddr, null);
    sel.unregister(conn);
  }
  const start = performance.now();
  for (const conn of conns) conn.close();
  // Held to the connect's end, the sockets would stay for the kernel's SYN
  // retries (minutes); on a loaded machine their release took over 100 ms
  // (2 of 522 left in one full run).
  assertEquals(await socketsWithin(baseline, 500), baseline);
  assertLess(performance.now() - start, 500);
  for (const conn of conns) assertEquals(conn.error, null);
});

Deno.test("PollableConn.connectTls() with cert and key authenticates to a server that requires client certificates", async () => {
  await using server = await mtlsServer();
  using conn = PollableConn.connectTls({
    hostname: "localhost",
    port: server.port,
    caCerts: [ca],
    cert: clientCert,
    key: clientKey,
  });
  const reply = await exchange(conn, encoder.encode("hi"), 29);
  assertEquals(decoder.decode(reply), "hi from selectors test client");
  assertEquals(await server.peer, "selectors test client");
});

Deno.test("PollableConn.connectTls() without a client certificate is refused by a server that requires one", async () => {
  await using server = await mtlsServer();
  using conn = PollableConn.connectTls({
    hostname: "localhost",
    port: server.port,
    caCerts: [ca],
  });
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_READ | EVENT_WRITE);
  // TLS 1.3: the client's handshake completes before the server checks the
  // certificate, so the refusal arrives as the first read's error.
  let failure: unknown = null;
  await selectUntil(sel, (batch) => {
    if ((maskOf(batch, conn) & EVENT_READ) === 0) return false;
    try {
      conn.recv();
    } catch (e) {
      if (e instanceof BlockingIOError) return false;
      failure = e;
      return true;
    }
    return false;
  });
  assert(failure instanceof Deno.errors.InvalidData, String(failure));
  assertStringIncludes(failure.message.toLowerCase(), "certificate");
  assertStrictEquals(conn.error, failure);
  assertEquals(await server.peer, "refused");
});

Deno.test("PollableConn.connectTls() trusts caCerts in addition to the default roots", async () => {
  // The default roots are made to include the test CA with DENO_CERT, in a child
  // process (Deno reads it once); caCerts name another CA. The server's chain
  // leads to the default roots only, so it must still be trusted.
  using listener = listenTls();
  const server = (async () => {
    // The first handshake fails on the client (not anchored in caCerts); the
    // client tries again with the default roots.
    const outcomes: string[] = [];
    for (let i = 0; i < 2; i++) {
      using peer = await listener.accept();
      try {
        await peer.write(encoder.encode("trusted"));
        outcomes.push("ok");
      } catch (e) {
        outcomes.push((e as Error).name);
      }
    }
    return outcomes;
  })();
  const mod = new URL("../mod.ts", import.meta.url).href;
  const script = `
    import { DefaultSelector, EVENT_READ, PollableConn } from "${mod}";
    const conn = PollableConn.connectTls({
      hostname: "localhost",
      port: ${listener.addr.port},
      caCerts: [${JSON.stringify(clientCa)}],
    });
    const sel = new DefaultSelector();
    sel.register(conn, EVENT_READ);
    let out = "";
    for (let i = 0; i < 100 && out.length < 7; i++) {
      await sel.select(5000);
      try {
        out += new TextDecoder().decode(conn.recv() ?? new Uint8Array());
      } catch (e) {
        out = String(e);
        break;
      }
    }
    sel.close();
    conn.close();
    console.log(out);
  `;
  const { stdout, stderr } = await runScript(
    script,
    ["--allow-net", "--allow-read"],
    {
      env: { DENO_CERT: new URL("ca.crt", testdata).pathname, NO_COLOR: "1" },
      timeoutMs: 20_000,
    },
  );
  assertEquals(stdout.trim(), "trusted", stderr);
  await server;
});

Deno.test("PollableConn.close() over TLS lets the process exit at once when the server keeps the connection open", async () => {
  using listener = listenTls();
  const { promise: childDone, resolve: childExited } = Promise.withResolvers<
    void
  >();
  const server = (async () => {
    using peer = await listener.accept();
    const buf = new Uint8Array(64);
    await peer.read(buf);
    await peer.write(encoder.encode("hi"));
    // Sees the client's close and does not close in turn, as a keep-alive
    // server with allowHalfOpen may: until the client's process has exited.
    while (await peer.read(buf) !== null);
    await childDone;
  })();
  const mod = new URL("../mod.ts", import.meta.url).href;
  const script = `
    import { DefaultSelector, EVENT_READ, EVENT_WRITE, PollableConn } from "${mod}";
    const conn = PollableConn.connectTls({
      hostname: "localhost",
      port: ${listener.addr.port},
      caCerts: [${JSON.stringify(ca)}],
    });
    const sel = new DefaultSelector();
    sel.register(conn, EVENT_WRITE);
    await sel.select(5000);
    conn.send("hello");
    sel.modify(conn, EVENT_READ);
    let out = "";
    for (let i = 0; i < 100 && out.length < 2; i++) {
      await sel.select(5000);
      out += new TextDecoder().decode(conn.recv() ?? new Uint8Array());
    }
    sel.close();
    conn.close();
    const closed = performance.now();
    globalThis.addEventListener("unload", () => {
      console.log(out, Math.round(performance.now() - closed));
    });
  `;
  try {
    const { stdout, stderr } = await runScript(script, ["--allow-net"], {
      env: { NO_COLOR: "1" },
      timeoutMs: 30_000,
    });
    const [reply, ms] = stdout.trim().split(" ");
    assertEquals(reply, "hi", stderr);
    assertLess(Number(ms), 2_000, "the process stayed for the server's close");
  } finally {
    childExited();
  }
  await server;
});

Deno.test("PollableConn.connectTls() throws TypeError for cert without key or key without cert", () => {
  for (const options of [{ cert: clientCert }, { key: clientKey }]) {
    assertThrows(
      () =>
        PollableConn.connectTls({ hostname: "localhost", port: 1, ...options }),
      TypeError,
      "cert and key must be given together",
    );
  }
});

Deno.test("PollableConn.closeWrite() over TLS: the server sees end of stream and its reply still arrives", async () => {
  using listener = listenTls();
  const server = (async () => {
    using peer = await listener.accept();
    const request = decoder.decode(await readAll(peer));
    await peer.write(encoder.encode(`reply to ${request}`));
    return request;
  })();
  using conn = connectTo(listener);
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_WRITE);
  await selectUntil(sel, readyFor(conn, EVENT_WRITE));
  conn.setNoDelay(true); // TLS over TCP: the options reach the socket
  conn.setKeepAlive(true);
  // Right after the handshake a retransmit timer may still run (session
  // tickets in flight); the keep-alive timer shows once the socket is idle.
  await waitFor(() => tcpTimer(conn) === "keepalive", { timeout: 2_000 });
  assertEquals(conn.send("request"), 7);
  conn.closeWrite();
  assertThrows(() => conn.send("more"), Deno.errors.BrokenPipe);
  sel.modify(conn, EVENT_READ);
  assertEquals(await recvToEnd(sel, conn), "reply to request");
  assertEquals(await server, "request");
});

Deno.test("PollableConn over TLS carries 8 MiB each way in order", async () => {
  using listener = listenTls();
  const size = 8 * 1024 * 1024;
  const upload = new Rng(7).bytes(size);
  const download = new Rng(8).bytes(size);
  const server = (async () => {
    using peer = await listener.accept();
    const [got] = await Promise.all([
      readExactly(peer, size),
      (async () => {
        let sent = 0;
        while (sent < size) sent += await peer.write(download.subarray(sent));
      })(),
    ]);
    return got;
  })();
  using conn = connectTo(listener);
  const got = await exchange(conn, upload, size);
  assert(bytesEqual(got, download), "download differs");
  assert(bytesEqual(await server, upload), "upload differs");
});

Deno.test("PollableConn.recv() over TLS returns null after the server closes", async () => {
  using listener = listenTls();
  const server = (async () => {
    const peer = await listener.accept();
    await peer.write(encoder.encode("bye"));
    peer.close();
  })();
  using conn = connectTo(listener);
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_READ);
  let text = "";
  let eof = false;
  await selectUntil(sel, (batch) => {
    if (maskOf(batch, conn) & EVENT_READ) {
      const chunk = conn.recv();
      if (chunk === null) eof = true;
      else text += decoder.decode(chunk);
    }
    return eof;
  });
  assertEquals(text, "bye");
  assertEquals(conn.recv(), null);
  await server;
});

Deno.test("PollableListener.from(Deno.listenTls()) accepts TLS clients served by one selector", async () => {
  using listener = PollableListener.from(listenTls());
  const port = (listener.addr as Deno.NetAddr).port;
  using sel = new DefaultSelector<string>();
  sel.register(listener, EVENT_READ, "listener");
  const seed = 42;
  const payloads = [1, 1000, 300_000].map((n, i) => new Rng(seed + i).bytes(n));

  // Clients: one plain Deno TLS client, the others PollableConns on the same selector.
  const plain = (async () => {
    using c = await Deno.connectTls({
      hostname: "localhost",
      port,
      caCerts: [ca],
    });
    await c.write(payloads[0]!);
    return await readExactly(c, payloads[0]!.length);
  })();
  const tlsClients = [1, 2].map(() =>
    PollableConn.connectTls({ hostname: "localhost", port, caCerts: [ca] })
  );
  const clientState = tlsClients.map((conn, j) => ({
    conn,
    data: payloads[j + 1]!,
    sent: 0,
    got: [] as Uint8Array[],
    gotLen: 0,
  }));
  for (const [j, s] of clientState.entries()) {
    sel.register(s.conn, EVENT_READ | EVENT_WRITE, `client${j}`);
  }

  // The server echoes on every accepted conn, keeping what it cannot send yet.
  const served = new Map<PollableConn, Uint8Array[]>();
  try {
    await selectUntil(sel, (batch) => {
      for (const [key, mask] of batch) {
        if (key.data === "listener") {
          const conn = listener.accept();
          served.set(conn, []);
          sel.register(conn, EVENT_READ, "server");
          continue;
        }
        const conn = key.fileobj as PollableConn;
        if (key.data === "server") {
          const queue = served.get(conn)!;
          if (mask & EVENT_READ) {
            const data = conn.recv();
            if (data === null) {
              sel.unregister(conn);
              continue;
            }
            queue.push(data);
          }
          while (queue.length > 0) {
            try {
              const n = conn.send(queue[0]!);
              if (n === queue[0]!.length) queue.shift();
              else queue[0] = queue[0]!.subarray(n);
            } catch (e) {
              if (e instanceof BlockingIOError) break;
              throw e;
            }
          }
          sel.modify(
            conn,
            queue.length > 0 ? EVENT_READ | EVENT_WRITE : EVENT_READ,
            "server",
          );
          continue;
        }
        const s = clientState[Number(key.data!.slice(6))]!;
        assertEquals(s.conn.error, null);
        if (mask & EVENT_WRITE) {
          try {
            while (s.sent < s.data.length) {
              s.sent += s.conn.send(s.data.subarray(s.sent));
            }
          } catch (e) {
            if (!(e instanceof BlockingIOError)) throw e;
          }
          if (s.sent === s.data.length) {
            sel.modify(s.conn, EVENT_READ, key.data);
          }
        }
        if (mask & EVENT_READ) {
          const chunk = s.conn.recv()!;
          s.got.push(chunk);
          s.gotLen += chunk.length;
          if (s.gotLen === s.data.length) {
            sel.unregister(s.conn);
            s.conn.close();
          }
        }
      }
      return clientState.every((s) => s.conn.closed) && served.size === 3 &&
        [...served.keys()].every((c) => !sel.getMap().has(c));
    }, { rounds: 100_000, timeout: 10_000 });

    assertEquals(await plain, payloads[0]);
    for (const s of clientState) {
      const got = new Uint8Array(s.gotLen);
      let offset = 0;
      for (const c of s.got) {
        got.set(c, offset);
        offset += c.length;
      }
      assertEquals(got.length, s.data.length);
      assert(got.every((b, i) => b === s.data[i]), "echo differs");
    }
    assertEquals(served.size, 3);
  } finally {
    for (const s of clientState) s.conn.close();
    for (const c of served.keys()) c.close();
  }
});

Deno.test("PollableConn.recv() over TLS returns null after 3 MiB then the server's close, whether or not the reader kept up", async () => {
  const size = 3 * 1024 * 1024;
  for (const lagMs of [0, 300]) {
    using listener = listenTls();
    const server = (async () => {
      const peer = await listener.accept();
      const data = new Uint8Array(size).fill(0x41);
      for (let sent = 0; sent < size;) {
        sent += await peer.write(data.subarray(sent));
      }
      peer.close();
    })();
    using conn = connectTo(listener);
    using sel = new DefaultSelector();
    sel.register(conn, EVENT_READ);
    // Not reading for a while: the server's close arrives while the socket has
    // stopped reading on a full buffer (Deno 2.9.6's node:tls dialing by
    // itself lost the end of stream then).
    await new Promise((r) => setTimeout(r, lagMs));
    let got = 0;
    let eof = false;
    await selectUntil(sel, (batch) => {
      if (maskOf(batch, conn) & EVENT_READ) {
        const chunk = conn.recv();
        if (chunk === null) eof = true;
        else got += chunk.length;
      }
      return eof;
    }, { rounds: 100_000, timeout: 10_000 });
    assertEquals(got, size, `lag ${lagMs} ms`);
    await server;
  }
});

Deno.test("PollableConn over TLS (connectTls and [kStartTls]) stops reading a fast peer while nobody reads: the peer's writes block, and every byte arrives after", async () => {
  // Far more than the kernel's loopback buffers and the conn's read-ahead hold,
  // and far less than unbounded read-ahead takes in the time the test waits.
  const size = 48 * 1024 * 1024;
  for (const path of ["connectTls", "kStartTls"]) {
    using listener = listenTls();
    let written = 0;
    const server = (async () => {
      using peer = await listener.accept();
      const chunk = new Uint8Array(256 * 1024);
      while (written < size) {
        // Each byte its offset's 4 KiB page number: order is checked on arrival.
        for (let i = 0; i < chunk.length; i += 4096) {
          chunk[i] = ((written + i) >>> 12) & 0xff;
        }
        written += await peer.write(
          chunk.subarray(0, Math.min(chunk.length, size - written)),
        );
      }
    })();
    let conn: PollableConn;
    if (path === "connectTls") {
      conn = connectTo(listener);
    } else {
      conn = PollableConn.connect({
        hostname: "127.0.0.1",
        port: listener.addr.port,
      });
      await readyOn(conn, EVENT_WRITE);
      conn[kStartTls]({ hostname: "localhost", caCerts: [ca] });
    }
    try {
      await readyOn(conn, EVENT_WRITE);
      assertEquals(conn.error, null);
      // Connected, not registered for reading: the server writes what fits.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      assertLess(written, 16 * 1024 * 1024, `${path}: read ahead unbounded`);
      using sel = new DefaultSelector();
      sel.register(conn, EVENT_READ);
      let got = 0;
      await selectUntil(sel, (batch) => {
        if (maskOf(batch, conn) & EVENT_READ) {
          const chunk = conn.recv()!;
          for (let i = -got & 4095; i < chunk.length; i += 4096) {
            const at = got + i;
            if (chunk[i] !== ((at >>> 12) & 0xff)) {
              throw new Error(`${path}: byte ${at} differs`);
            }
          }
          got += chunk.length;
        }
        return got === size;
      }, { rounds: 100_000, timeout: 10_000 });
      await server;
    } finally {
      conn.close();
    }
  }
});

/**
 * A TLS server (node:tls over node:net) that answers any request with a
 * close-delimited 200 of `size` bytes, then resets the connection (RST) 200 ms
 * later: mid-way, with no close_notify (a cut no framing tells), or after
 * ending the stream (close_notify and FIN), as servers that close with
 * SO_LINGER 0 do.
 */
async function resettingServer(size: number, endFirst: boolean) {
  const raws = new Set<Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const server = createServer((raw) => {
    raws.add(raw);
    raw.on("error", () => {});
    raw.on("close", () => raws.delete(raw));
    const tls = new TLSSocket(raw, { isServer: true, key, cert });
    tls.on("error", () => {});
    tls.once("data", () => {
      const response = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" +
        "a".repeat(size);
      if (endFirst) tls.end(response);
      else tls.write(response);
      const timer = setTimeout(() => {
        timers.delete(timer);
        raw.resetAndDestroy();
      }, 200);
      timers.add(timer);
    });
  });
  await new Promise<void>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve())
  );
  const { port } = server.address() as { port: number };
  return {
    port,
    async [Symbol.asyncDispose]() {
      for (const timer of timers) clearTimeout(timer);
      for (const raw of raws) raw.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Sends a GET on a new TLS conn to `port`, reads to the end: bytes, and the error if any. */
async function readReset(port: number) {
  using conn = PollableConn.connectTls({
    hostname: "localhost",
    port,
    caCerts: [ca],
  });
  await readyOn(conn, EVENT_WRITE);
  conn.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_READ);
  let got = 0;
  let error: unknown = null;
  await selectUntil(sel, (batch) => {
    if (!(maskOf(batch, conn) & EVENT_READ)) return false;
    try {
      const chunk = conn.recv();
      if (chunk === null) return true;
      got += chunk.length;
      return false;
    } catch (e) {
      error = e;
      return true;
    }
  });
  return { got, error };
}

Deno.test("PollableConn.recv() and fetchAll over TLS fail a close-delimited body the server resets mid-way with ConnectionReset, after the bytes that came", async () => {
  const size = 100_000;
  await using server = await resettingServer(size, false);
  const [result] = await fetchAll([`https://localhost:${server.port}/`], {
    caCerts: [ca],
    retry: { limit: 0 },
  });
  assert(result !== undefined && !result.ok, "a reset passed for the end");
  assertInstanceOf(result.error, Deno.errors.ConnectionReset);
  const { got, error } = await readReset(server.port);
  assertInstanceOf(error, Deno.errors.ConnectionReset);
  assertGreater(got, size, "the head and body before the reset");
});

Deno.test("PollableConn.recv() and fetchAll over TLS take a close-delimited body whole when the server ends the stream, then resets the connection", async () => {
  const size = 100_000;
  await using server = await resettingServer(size, true);
  // A sink that takes its time: the end of stream still comes before the reset.
  const [result] = await fetchAll([`https://localhost:${server.port}/`], {
    caCerts: [ca],
    retry: { limit: 0 },
    sink: () =>
      new WritableStream({
        write: () => new Promise((resolve) => setTimeout(resolve, 5)),
      }),
  });
  assert(result?.ok, String((result as { error?: unknown }).error));
  assertEquals(result.response.status, 200);
  const { got, error } = await readReset(server.port);
  assertEquals(error, null);
  assertGreater(got, size);
});

Deno.test("PollableConn over TLS still sends after the server half-closed, as over TCP", async () => {
  using listener = listenTls();
  const server = (async () => {
    using peer = await listener.accept();
    await peer.write(encoder.encode("question"));
    await peer.closeWrite();
    return decoder.decode(await readAll(peer));
  })();
  using conn = connectTo(listener);
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_READ);
  assertEquals(await recvToEnd(sel, conn), "question");
  sel.modify(conn, EVENT_WRITE);
  await selectUntil(sel, readyFor(conn, EVENT_WRITE));
  assertEquals(conn.send("answer"), 6);
  conn.closeWrite();
  assertEquals(await server, "answer");
  assertEquals(conn.error, null);
});

Deno.test("fetchAll over TLS releases a failed upload's socket at once, and keeps none of what arrives after", async () => {
  using listener = listenTls();
  const server = (async () => {
    const peer = await listener.accept();
    try {
      await peer.read(new Uint8Array(16 * 1024)); // the head; the body never
      // Long enough for the upload to fill every buffer on the way.
      await new Promise((r) => setTimeout(r, 300));
      await peer.write(
        encoder.encode("HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n"),
      );
      const chunk = new Uint8Array(256 * 1024);
      const until = performance.now() + 5_000;
      while (performance.now() < until) await peer.write(chunk);
    } catch {
      // The client went away: what this test waits for.
    } finally {
      peer.close();
    }
  })();
  const before = await settledSockets();
  const [result] = await fetchAll(
    [`https://localhost:${listener.addr.port}/`],
    {
      method: "POST",
      body: new Uint8Array(32 * 1024 * 1024),
      maxResponseBytes: 1024 * 1024,
      caCerts: [ca],
    },
  );
  assert(!result!.ok);
  // The server's side may linger a moment; the client's is gone at once.
  assertLess(await socketsWithin(before, 200), before + 1);
  await server;
});

/**
 * A TLS server that writes to its first client for up to 5 s, after `opening`
 * (given the conn), until a write fails: `stopped(ms)` says whether it stopped
 * within `ms`, and how much it wrote.
 */
function floodingServer(
  listener: Deno.TlsListener,
  opening: (peer: Deno.TlsConn) => Promise<void> = () => Promise.resolve(),
) {
  let written = 0;
  let writing = true;
  const done = (async () => {
    const peer = await listener.accept();
    try {
      await opening(peer);
      const chunk = new Uint8Array(256 * 1024);
      const until = performance.now() + 5_000;
      while (performance.now() < until) written += await peer.write(chunk);
    } catch {
      // The client let go: what the tests wait for.
    } finally {
      writing = false;
      peer.close();
    }
  })();
  return {
    done,
    async stopped(ms: number): Promise<{ stopped: boolean; written: number }> {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        done,
        new Promise((r) => timer = setTimeout(r, ms)),
      ]).finally(() => clearTimeout(timer));
      return { stopped: !writing, written };
    },
  };
}

Deno.test("fetchAll over TLS stops reading a response it cut short at once: the server's writes fail, it is not drained", async () => {
  using listener = listenTls();
  const server = floodingServer(listener, async (peer) => {
    await peer.read(new Uint8Array(16 * 1024));
    await peer.write(
      encoder.encode("HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n"),
    );
  });
  const [result] = await fetchAll(
    [`https://localhost:${listener.addr.port}/`],
    { maxResponseBytes: 1024 * 1024, caCerts: [ca] },
  );
  assert(!result!.ok);
  const { stopped, written } = await server.stopped(1_000);
  assert(stopped, `the server was still writing: ${written} bytes`);
  assertLess(written, 64 * 1024 * 1024);
  await server.done;
});

Deno.test("PollableConn.close() over TLS drops at most a bounded amount of what a peer goes on sending, then lets go", async () => {
  using listener = listenTls();
  const server = floodingServer(listener);
  const conn = connectTo(listener);
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_READ);
  await selectUntil(sel, readyFor(conn, EVENT_READ));
  conn.close();
  const { stopped, written } = await server.stopped(1_500);
  assert(stopped, `the server was still writing: ${written} bytes`);
  await server.done;
});

Deno.test("PollableConn.close() over TLS right after send() delivers every byte the send took, then a clean end", async () => {
  const size = 1024 * 1024;
  using listener = listenTls();
  const server = (async () => {
    using peer = await listener.accept();
    return (await readAll(peer)).length;
  })();
  const conn = connectTo(listener);
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_WRITE);
  const data = new Uint8Array(size).fill(0x41);
  let sent = 0;
  await selectUntil(sel, () => {
    try {
      sent += conn.send(data.subarray(sent));
    } catch (e) {
      if (!(e instanceof BlockingIOError)) throw e;
    }
    return sent === size;
  }, { rounds: 100_000, timeout: 10_000 });
  sel.unregister(conn);
  conn.close(); // at once: what send() took is still on its way
  assertEquals(await server, size);
});

Deno.test("fetchAll() over https resolves with its kept conns released, though the server ignores close_notify: no socket, read or timer outlives it", async () => {
  // One keep-alive answer, then the server neither reads nor closes.
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert,
    key,
  });
  const held: Deno.Conn[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      held.push(conn);
      await conn.read(new Uint8Array(4096));
      await conn.write(
        new TextEncoder().encode(
          "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi",
        ),
      );
    }
  })().catch(() => {});
  const port = listener.addr.port;
  const before = openSockets();
  const [result] = await fetchAll([`https://localhost:${port}/`], {
    caCerts: [ca],
  });
  assert(result?.ok, String(result?.ok === false && result.error));
  // The server's end alone. (The test's sanitizers fail it too if the
  // client's pending read or a close timer is left: they waited up to 10 s
  // for the peer's close.)
  assertEquals(openSockets(), before + 1);
  listener.close();
  for (const conn of held) conn.close();
  await serving;
});

Deno.test("fetchAll() with perOrigin.delay sends requests on new conns its delay apart, though their TLS handshakes take different times", async () => {
  const arrivals: number[] = [];
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert, key, onListen() {} },
    () => {
      arrivals.push(performance.now());
      return new Response("ok");
    },
  );
  const urls = Array.from(
    { length: 5 },
    (_, i) => `https://localhost:${server.addr.port}/${i}`,
  );
  const results = await fetchAll(urls, {
    caCerts: [ca],
    perOrigin: { concurrency: 5, delay: 30 },
  });
  assert(results.every((r) => r.ok));
  arrivals.sort((a, b) => a - b);
  for (let i = 1; i < arrivals.length; i++) {
    // Before: the first handshake (~30 ms, the process's first) let the
    // second request, started 30 ms later on a quicker one, in 0.5 ms after.
    assertGreater(arrivals[i]! - arrivals[i - 1]!, 25, `${arrivals}`);
  }
});

Deno.test("fetchAll() over https offers HTTP/1.1 by ALPN: a server that speaks only h2 fails the handshake with a clear InvalidData, one that takes http/1.1 answers", async () => {
  // Without the offer an h2-only server answered 403, or nothing until the
  // total timeout (node:http2 with allowHTTP1: false).
  using h2Only = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert,
    key,
    alpnProtocols: ["h2"],
  });
  const refused = (async () => {
    using conn = await h2Only.accept();
    await conn.handshake().catch(() => {});
  })();
  using both = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert,
    key,
    alpnProtocols: ["h2", "http/1.1"],
  });
  const served = (async () => {
    using conn = await both.accept();
    const { alpnProtocol } = await conn.handshake();
    const buf = new Uint8Array(4096);
    await conn.read(buf);
    await conn.write(
      new TextEncoder().encode(
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
      ),
    );
    return alpnProtocol;
  })();
  const [noH1, h1] = await fetchAll([
    `https://localhost:${h2Only.addr.port}/`,
    `https://localhost:${both.addr.port}/`,
  ], { caCerts: [ca] });
  assert(!noH1!.ok);
  assertInstanceOf(noH1!.error, Deno.errors.InvalidData);
  assertStringIncludes(
    noH1!.error.message,
    "the server takes none of the protocols offered (ALPN)",
  );
  assert(h1!.ok, String(!h1!.ok && h1!.error));
  assertEquals(new TextDecoder().decode(h1!.response.body), "ok");
  assertEquals(await served, "http/1.1");
  await refused;
});
