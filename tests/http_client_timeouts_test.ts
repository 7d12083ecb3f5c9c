import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertStringIncludes,
} from "@std/assert";
import { DefaultSelector, HttpClient } from "../mod.ts";
import {
  delay,
  drive,
  latin1,
  readHead,
  scriptedServer,
  untilClosed,
  writeAll,
} from "./_client_util.ts";
import { ca } from "./_tls.ts";
import { stub } from "@std/testing/mock";

Deno.test("HttpClient fails with TimedOut naming 'connect' when a TLS handshake never completes, and closes the conn", async () => {
  // A TCP server that accepts and never answers the ClientHello.
  await using server = scriptedServer(async (conn) => {
    await untilClosed(conn);
  });
  const client = new HttpClient(`https://localhost:${server.port}/`, {
    connectTimeout: 100,
    timeout: 5_000,
    caCerts: [ca],
  });
  const deadline = client.deadline;
  assert(deadline <= performance.now() + 100);
  await drive(client);
  const elapsed = client.timings.end - client.timings.start;
  assertEquals(client.state, "failed");
  assertInstanceOf(client.error, Deno.errors.TimedOut);
  assertStringIncludes(client.error.message, "connect timeout of 100 ms");
  assert(elapsed >= 100 && elapsed < 1_000, `took ${elapsed} ms`);
  assert(client.pollable.closed);
  assert(Number.isNaN(client.timings.connected));
  // Deno's TLS conn keeps a pending handshake until the peer closes (what the
  // selector's cancellable connectTls fixes): close the server's side and give
  // that handshake time to settle before the op sanitizer looks.
  await server[Symbol.asyncDispose]();
  await delay(250);
});

Deno.test("HttpClient fails with TimedOut naming 'idle' when a server sends headers then stalls", async () => {
  await using server = scriptedServer(async (conn) => {
    await readHead(conn);
    await writeAll(conn, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    await untilClosed(conn);
  });
  const client = new HttpClient(server.url("/"), {
    idleTimeout: 150,
    timeout: 5_000,
  });
  await drive(client);
  assertEquals(client.state, "failed");
  assertInstanceOf(client.error, Deno.errors.TimedOut);
  assertStringIncludes(client.error.message, "idle timeout of 150 ms");
  // The bytes came at firstByte (one write), then silence until the idle deadline.
  const silence = client.timings.end - client.timings.firstByte;
  assert(silence >= 150 && silence < 1_000, `idle fired after ${silence} ms`);
});

Deno.test("HttpClient idleTimeout counts silence, not duration: a slow drip finishes", async () => {
  await using server = scriptedServer(async (conn) => {
    await readHead(conn);
    await writeAll(conn, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
    for (const byte of "abcdefghij") {
      await delay(60);
      await writeAll(conn, byte);
    }
  });
  // 10 gaps of 60 ms: the whole body takes longer than the idle limit, no
  // single silence comes near it (a wide margin for a loaded machine).
  const client = new HttpClient(server.url("/"), {
    idleTimeout: 400,
    timeout: 5_000,
  });
  await drive(client);
  assertEquals(client.state, "done", String(client.error));
  assertEquals(new TextDecoder().decode(client.response!.body), "abcdefghij");
  assert(client.timings.end - client.timings.firstByte > 400);
});

Deno.test("HttpClient fails with TimedOut naming 'total' when the whole attempt takes too long", async () => {
  await using server = scriptedServer(async (conn) => {
    await readHead(conn);
    await writeAll(conn, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
    for (let i = 0; i < 20; i++) {
      await delay(20);
      await writeAll(conn, "x");
    }
  });
  const client = new HttpClient(server.url("/"), {
    timeout: 150,
    idleTimeout: 100,
  });
  await drive(client);
  const elapsed = client.timings.end - client.timings.start;
  assertEquals(client.state, "failed");
  assertInstanceOf(client.error, Deno.errors.TimedOut);
  assertStringIncludes(client.error.message, "total timeout of 150 ms");
  assert(elapsed >= 150 && elapsed < 1_000, `took ${elapsed} ms`);
});

Deno.test("HttpClient.deadline is the connect deadline while connecting, then total or last bytes + idle", async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  await using server = scriptedServer(async (conn) => {
    await readHead(conn);
    await writeAll(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\na");
    await released;
    await writeAll(conn, "b");
  });
  const before = performance.now();
  const client = new HttpClient(server.url("/"), {
    timeout: 10_000,
    connectTimeout: 1_000,
    idleTimeout: 2_000,
  });
  const start = client.timings.start;
  assert(start >= before);
  // Counted from when the connect left (after start, by the time the call took).
  assert(client.deadline >= start + 1_000);
  assert(client.deadline <= performance.now() + 1_000);
  using sel = new DefaultSelector();
  sel.register(client.pollable, client.events);
  for (let i = 0; i < 100 && client.state !== "receiving"; i++) {
    const ready = await sel.select(1_000);
    client.handle(ready[0]?.[1] ?? 0);
    sel.modify(client.pollable, client.events);
  }
  assertEquals(client.state, "receiving");
  // Receiving: the sooner of total and (last activity + idle).
  assert(client.deadline <= performance.now() + 2_000);
  assert(client.deadline > performance.now() + 1_000);
  for (let i = 0; i < 100 && Number.isNaN(client.timings.firstByte); i++) {
    const ready = await sel.select(1_000);
    client.handle(ready[0]?.[1] ?? 0);
  }
  assertEquals(client.deadline, client.timings.firstByte + 2_000);
  release();
  for (let i = 0; i < 100 && client.events !== 0; i++) {
    const ready = await sel.select(1_000);
    client.handle(ready[0]?.[1] ?? 0);
  }
  sel.unregister(client.pollable);
  assertEquals(client.state, "done");
  assertEquals(client.deadline, Infinity);
});

Deno.test("HttpClient's documented loop (select until deadline, then handle(0)) ends with TimedOut against a silent server", async () => {
  await using server = scriptedServer(async (conn) => {
    await readHead(conn);
    await untilClosed(conn);
  });
  // The loop of the HttpClient doc example, as written there.
  using sel = new DefaultSelector();
  const client = new HttpClient(server.url("/"), { timeout: 100 });
  sel.register(client.pollable, client.events);
  let rounds = 0;
  while (client.events !== 0 && rounds++ < 1_000) {
    const ready = await sel.select(
      Math.max(0, client.deadline - performance.now()),
    );
    client.handle(ready.length > 0 ? ready[0]![1] : 0);
    if (client.events !== 0) sel.modify(client.pollable, client.events);
  }
  sel.unregister(client.pollable);
  assertEquals(client.state, "failed");
  assertInstanceOf(client.error, Deno.errors.TimedOut);
  assertStringIncludes(client.error.message, "total");
});

Deno.test("HttpClient constructor throws RangeError for a negative or NaN connectTimeout or idleTimeout", async () => {
  const { assertThrows } = await import("@std/assert");
  for (const bad of [-1, NaN]) {
    assertThrows(
      () => new HttpClient("http://127.0.0.1:1/", { connectTimeout: bad }),
      RangeError,
      "connectTimeout",
    );
    assertThrows(
      () => new HttpClient("http://127.0.0.1:1/", { idleTimeout: bad }),
      RangeError,
      "idleTimeout",
    );
  }
});

Deno.test("HttpClient timeout messages never show the URL's password", async () => {
  await using server = scriptedServer(async (conn) => {
    await readHead(conn);
    await untilClosed(conn);
  });
  const client = new HttpClient(
    `http://user:hunter2@127.0.0.1:${server.port}/`,
    { timeout: 50 },
  );
  await drive(client);
  assertInstanceOf(client.error, Deno.errors.TimedOut);
  assertEquals(client.error.message.includes("hunter2"), false);
  assertStringIncludes(client.error.message, "user:***@");
});

Deno.test("HttpClient reports a connect that settled while its loop did not run past connectTimeout as it ended: refused, or connected and fetched", async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("ok"),
  );
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (closed.addr as Deno.NetAddr).port;
  closed.close();
  const options = { connectTimeout: 100 };
  const refused = new HttpClient(`http://127.0.0.1:${closedPort}/`, options);
  const fine = new HttpClient(`http://127.0.0.1:${server.addr.port}/`, options);
  // Not driven (the caller awaits other work) while both connects settle.
  await delay(300);
  await drive(refused);
  await drive(fine);
  assertInstanceOf(refused.error, Deno.errors.ConnectionRefused);
  assertEquals(fine.state, "done", String(fine.error));
  assertEquals(fine.response?.status, 200);
});

Deno.test("HttpClient counts connectTimeout from when the connect left: a permission prompt inside Deno.connect is not the connect's time", async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("ok"),
  );
  const connect = Deno.connect;
  // As a prompt does: the loop held inside the call, until the user answers.
  using _ = stub(
    Deno,
    "connect",
    ((options: Deno.ConnectOptions) => {
      const until = performance.now() + 300;
      while (performance.now() < until) { /* answering */ }
      return connect(options);
    }) as typeof Deno.connect,
  );
  const client = new HttpClient(`http://127.0.0.1:${server.addr.port}/`, {
    connectTimeout: 100,
  });
  await drive(client);
  assertEquals(client.state, "done", String(client.error));
  assertEquals(client.response?.status, 200);
});

Deno.test("HttpClient idleTimeout does not fire while a server that sent only a 100 Continue holds the upload, as it does not without one", async () => {
  // More than the loopback socket buffers hold: the upload stalls while the
  // server does not read.
  const BODY = 16 * 1024 * 1024;
  await using server = scriptedServer(async (conn) => {
    const buf = new Uint8Array(256 * 1024);
    let head = "";
    let body = 0;
    while (!head.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) return;
      head += latin1(buf.subarray(0, n));
      const end = head.indexOf("\r\n\r\n");
      if (end >= 0) body = head.length - (end + 4);
    }
    // An interim answer (RFC 9110 section 15.2: the client may ignore it),
    // then a pause longer than the idle limit before taking the body.
    await writeAll(conn, "HTTP/1.1 100 Continue\r\n\r\n");
    await delay(250);
    while (body < BODY) {
      const n = await conn.read(buf);
      if (n === null) return;
      body += n;
    }
    await writeAll(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  const client = new HttpClient(server.url("/upload"), {
    method: "PUT",
    body: new Uint8Array(BODY),
    idleTimeout: 100,
    timeout: 5_000,
  });
  await drive(client);
  assertEquals(client.state, "done", String(client.error));
  assertEquals(new TextDecoder().decode(client.response!.body), "ok");
});

Deno.test("HttpClient idleTimeout runs once a final head came while the upload still goes out: a response body that stalls then fails as idle", async () => {
  const BODY = 16 * 1024 * 1024;
  const finished = Promise.withResolvers<void>();
  await using server = scriptedServer(async (conn) => {
    await readHead(conn);
    // An early final answer, part of its body, then silence; the upload is
    // not read, so it stalls in the socket buffers.
    await writeAll(conn, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    await finished.promise;
  });
  const client = new HttpClient(server.url("/upload"), {
    method: "PUT",
    body: new Uint8Array(BODY),
    idleTimeout: 100,
    timeout: 5_000,
  });
  const started = performance.now();
  try {
    await drive(client);
  } finally {
    finished.resolve();
  }
  assertEquals(client.state, "failed");
  assertInstanceOf(client.error, Deno.errors.TimedOut);
  assertStringIncludes(String(client.error), "idle");
  assert(performance.now() - started < 2_000, "not the total timeout");
});
