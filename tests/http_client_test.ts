import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import {
  DefaultSelector,
  EVENT_READ,
  EVENT_WRITE,
  HttpClient,
  type HttpClientOptions,
  type HttpClientState,
  HttpParseError,
  PollableConn,
} from "../mod.ts";
import { cannedServer, rawServer, writeSplit } from "./_raw_http.ts";
import { drive as driveWaiting } from "./_client_util.ts";
import { runScript } from "./_net.ts";
import { ca, cert as tlsCert, key as tlsKey } from "./_tls.ts";

const LENGTH = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello";

/** Drives one client to the end; returns the states it went through. */
async function drive(
  client: HttpClient,
  rounds = 1_000,
): Promise<HttpClientState[]> {
  using sel = new DefaultSelector();
  const states: HttpClientState[] = [client.state];
  let registered = client.pollable;
  sel.register(registered, client.events);
  for (let i = 0; i < rounds && client.events !== 0; i++) {
    const batch = await sel.select(
      Math.max(0, client.deadline - performance.now()),
    );
    client.handle(batch[0]?.[1] ?? 0);
    if (states.at(-1) !== client.state) states.push(client.state);
    if (client.pollable !== registered) {
      sel.unregister(registered);
      registered = client.pollable;
      sel.register(registered, client.events);
    } else if (client.events !== 0) {
      sel.modify(registered, client.events);
    }
  }
  sel.unregister(registered);
  return states;
}

Deno.test("HttpClient goes connecting → sending → receiving → done with events WRITE, WRITE, READ, 0", async () => {
  await using server = cannedServer(LENGTH);
  const client = new HttpClient(server.url("/"));
  assertEquals([client.state, client.events], ["connecting", EVENT_WRITE]);
  const seen: Array<[HttpClientState, number]> = [];
  using sel = new DefaultSelector();
  sel.register(client.pollable, client.events);
  for (let i = 0; i < 100 && client.events !== 0; i++) {
    for (const [, mask] of await sel.select(1_000)) client.handle(mask);
    seen.push([client.state, client.events]);
    if (client.events !== 0) sel.modify(client.pollable, client.events);
  }
  sel.unregister(client.pollable);
  assertEquals(seen.at(-1), ["done", 0]);
  assert(seen.some(([s, e]) => s === "receiving" && e === EVENT_READ));
  const response = client.response!;
  assertEquals(response.status, 200);
  assertEquals(response.statusText, "OK");
  assertEquals(response.headers.get("x-a"), "1");
  assertEquals(new TextDecoder().decode(response.body), "hello");
  assertEquals(response.url, server.url("/"));
  assertStrictEquals(client.error, null);
});

Deno.test("HttpClient.handle() never throws: a malformed response ends in failed with HttpParseError", async () => {
  await using server = cannedServer("HTTP/1.1 200 OK\r\nBad : x\r\n\r\n");
  const client = new HttpClient(server.url("/"));
  const states = await drive(client);
  assertEquals(states.at(-1), "failed");
  assertEquals(client.events, 0);
  assertInstanceOf(client.error, HttpParseError);
  assertEquals(client.error.code, "header-whitespace-before-colon");
  assert(client.pollable.closed);
  client.handle(EVENT_READ | EVENT_WRITE); // still nothing thrown
});

Deno.test("HttpClient.handle(0) past the deadline fails with Deno.errors.TimedOut", async () => {
  await using server = rawServer(async () => {
    await new Promise((r) => setTimeout(r, 200));
    return "close";
  });
  const client = new HttpClient(server.url("/"), { timeout: 50 });
  assert(client.deadline <= performance.now() + 50);
  await drive(client);
  assertEquals(client.state, "failed");
  assertInstanceOf(client.error, Deno.errors.TimedOut);
});

Deno.test("HttpClient fails a refused connection with its error", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const client = new HttpClient(`http://127.0.0.1:${port}/`);
  await drive(client);
  assertEquals(client.state, "failed");
  assertInstanceOf(client.error, Deno.errors.ConnectionRefused);
});

Deno.test("HttpClient constructor throws TypeError for bad URLs, methods and headers, RangeError for bad limits", () => {
  assertThrows(() => new HttpClient("not a url"), TypeError, "invalid URL");
  assertThrows(() => new HttpClient("file:///etc/passwd"), TypeError, "scheme");
  assertThrows(
    () =>
      new HttpClient("http://127.0.0.1/", { method: "GET /x HTTP/1.1\r\n" }),
    TypeError,
  );
  assertThrows(
    () => new HttpClient("http://127.0.0.1/", { method: "" }),
    TypeError,
  );
  assertThrows(
    () => new HttpClient("http://127.0.0.1/", { headers: { a: "b\nc" } }),
    TypeError,
  );
  assertThrows(
    () => new HttpClient("http://127.0.0.1/", { headers: { "a b": "c" } }),
    TypeError,
  );
  assertThrows(
    () => new HttpClient("http://127.0.0.1/", { timeout: -5 }),
    RangeError,
  );
  assertThrows(
    () => new HttpClient("http://127.0.0.1/", { maxResponseBytes: NaN }),
    RangeError,
  );
  assertThrows(
    () => new HttpClient("http://127.0.0.1/", { maxResponseBytes: 1.5 }),
    RangeError,
    "maxResponseBytes must be a non-negative integer or Infinity",
  );
});

Deno.test("HttpClient constructor throws TypeError for a conn that is no PollableConn or is closed, and reads null options as none", async () => {
  assertThrows(
    () =>
      new HttpClient("http://127.0.0.1/", {
        conn: {} as unknown as PollableConn,
      }),
    TypeError,
    "conn must be a PollableConn, received an object (Object)",
  );
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conn = await PollableConn.connect({
    hostname: "127.0.0.1",
    port: listener.addr.port,
  });
  const accepted = await listener.accept();
  conn.close();
  accepted.close();
  assertThrows(
    () => new HttpClient(`http://127.0.0.1:${listener.addr.port}/`, { conn }),
    TypeError,
    "conn is closed",
  );
  assertThrows(
    () =>
      new HttpClient("http://127.0.0.1/", 7 as unknown as HttpClientOptions),
    TypeError,
    "options must be an object",
  );
  const client = new HttpClient(
    `http://127.0.0.1:${listener.addr.port}/`,
    null as unknown as HttpClientOptions,
  );
  assertEquals(client.method, "GET");
  client.close();
});

Deno.test("HttpClient with keepAlive: true hands its connection on with detach() for a second request", async () => {
  await using server = rawServer(async ({ conn }) => {
    await writeSplit(conn, LENGTH);
    return "keep";
  });
  const first = new HttpClient(server.url("/1"), { keepAlive: true });
  await drive(first);
  const conn = first.detach();
  assert(conn !== null && !conn.closed);
  const second = new HttpClient(server.url("/2"), { keepAlive: true, conn });
  assertEquals(second.state, "sending");
  await drive(second);
  assertEquals(second.state, "done");
  assertEquals(server.connections, 1);
  assertEquals(server.requests, 2);
  second.close();
  assert(conn.closed);
});

const EXTRA = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!";

Deno.test("HttpClient.detach() gives null, the conn closed, when the response ended where a read filling the conn's 4 KiB buffer did: bytes past it may wait unread", async () => {
  // Head and body fill the conn's first read, of 4 KiB, to its last byte.
  const head = "HTTP/1.1 200 OK\r\nContent-Length: 4055\r\n\r\n";
  assertEquals(head.length + 4055, 4096);
  await using server = rawServer(async ({ conn }) => {
    await writeSplit(conn, head + "x".repeat(4055) + EXTRA);
    return "keep";
  });
  const first = new HttpClient(server.url("/1"), { keepAlive: true });
  await drive(first);
  assertEquals(first.response?.body.length, 4055);
  assertStrictEquals(first.detach(), null);
  assert(first.pollable.closed);
});

Deno.test("HttpClient.detach() gives null, the conn closed, when bytes past the response came while it stayed registered", async () => {
  await using server = rawServer(async ({ conn }) => {
    await writeSplit(conn, LENGTH);
    await new Promise((resolve) => setTimeout(resolve, 20));
    await writeSplit(conn, EXTRA);
    return "keep";
  });
  const first = new HttpClient(server.url("/1"), { keepAlive: true });
  await drive(first);
  using sel = new DefaultSelector();
  sel.register(first.pollable, EVENT_READ);
  assertEquals((await sel.select(5_000)).length, 1, "the extra bytes came");
  sel.unregister(first.pollable);
  assertStrictEquals(first.detach(), null);
  assert(first.pollable.closed);
});

Deno.test("HttpClients chained on one kept conn by detach() each send their own method and headers", async () => {
  const heads: string[] = [];
  await using server = rawServer(async ({ conn, head }) => {
    heads.push(head);
    const body = head.startsWith("HEAD ") ? "" : "x";
    await writeSplit(
      conn,
      `HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n${body}`,
    );
    return "keep";
  });
  const requests: HttpClientOptions[] = [
    { headers: { "x-a": "1" } },
    { headers: [["X-A", " 1"]] },
    { headers: { "x-a": "2" } },
    { method: "HEAD", headers: { "x-a": "2" } },
    { headers: { "x-a": "2" } },
    {},
  ];
  let conn: PollableConn | undefined;
  for (const [i, request] of requests.entries()) {
    const client = new HttpClient(server.url(`/${i}`), {
      ...request,
      keepAlive: true,
      ...(conn ? { conn } : {}),
    });
    await drive(client);
    assertEquals(client.state, "done", String(client.error));
    conn = client.detach()!;
    assert(conn !== null);
  }
  conn!.close();
  assertEquals(server.connections, 1);
  assertEquals(
    heads.map((head) =>
      `${head.split(" ", 2).join(" ")} ${/\r\nx-a: (.*)/i.exec(head)?.[1]}`
    ),
    [
      "GET /0 1",
      "GET /1 1",
      "GET /2 2",
      "HEAD /3 2",
      "GET /4 2",
      "GET /5 undefined",
    ],
  );
});

Deno.test("HttpClient.close() after detach() leaves the conn it handed over open", async () => {
  await using server = rawServer(async ({ conn }) => {
    await writeSplit(conn, LENGTH);
    return "keep";
  });
  const first = new HttpClient(server.url("/1"), { keepAlive: true });
  await drive(first);
  const conn = first.detach()!;
  first.close();
  assert(!conn.closed);
  const second = new HttpClient(server.url("/2"), { keepAlive: true, conn });
  await drive(second);
  assertEquals(second.state, "done");
  assertEquals(server.connections, 1);
  second.close();
});

/** The README's loop for one `HttpClient`, as written there. */
async function readmeLoop(client: HttpClient): Promise<void> {
  using sel = new DefaultSelector();
  let conn = client.pollable; // the conn registered
  let registered = 0; // the events it is registered for
  let woken: Promise<void> | null = null; // the wait a wakeup() is set for
  while (client.state !== "done" && client.state !== "failed") {
    if (client.pollable !== conn) {
      if (registered !== 0) sel.unregister(conn);
      conn = client.pollable;
      registered = 0;
    }
    const events = client.events;
    if (events !== registered) {
      if (registered === 0) sel.register(conn, events);
      else if (events === 0) sel.unregister(conn);
      else sel.modify(conn, events);
      registered = events;
    }
    const waiting = client.waiting;
    if (waiting !== null && waiting !== woken) {
      woken = waiting;
      waiting.then(() => sel.wakeup());
    }
    const ready = await sel.select(client.deadline - performance.now());
    if (ready.length === 0) client.handle(0);
    for (const [, mask] of ready) client.handle(mask);
  }
  if (registered !== 0) sel.unregister(conn);
}

Deno.test("HttpClient driven by the README's loop on a kept conn the server closed meanwhile follows the request to its new conn", async () => {
  await using server = rawServer(async ({ conn, connIndex }) => {
    await writeSplit(
      conn,
      `HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n${connIndex}`,
    );
    return "close"; // after one response, without saying so
  });
  const first = new HttpClient(server.url("/1"), { keepAlive: true });
  await readmeLoop(first);
  const conn = first.detach();
  assert(conn !== null);
  await new Promise((r) => setTimeout(r, 20)); // the server has closed it by now
  const second = new HttpClient(server.url("/2"), { keepAlive: true, conn });
  await readmeLoop(second);
  assertEquals(second.state, "done", String(second.error));
  assertEquals(new TextDecoder().decode(second.response!.body), "1");
  assert(second.pollable !== conn && conn.closed);
  second.close();
});

Deno.test("HttpClient on a kept conn sends its request on handle(EVENT_WRITE) before any select, as the README says", async () => {
  await using server = rawServer(async ({ conn, requestOnConn }) => {
    await writeSplit(
      conn,
      `HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n${requestOnConn}`,
    );
    return "keep";
  });
  const first = new HttpClient(server.url("/1"), { keepAlive: true });
  await readmeLoop(first);
  const conn = first.detach()!;
  const second = new HttpClient(server.url("/2"), { keepAlive: true, conn });
  assertEquals(second.state, "sending");
  second.handle(EVENT_WRITE);
  assertEquals([second.state, second.events], ["receiving", EVENT_READ]);
  await readmeLoop(second);
  assertEquals(new TextDecoder().decode(second.response!.body), "1");
  assertEquals(server.connections, 1);
  second.close();
  conn.close();
});

Deno.test("HttpClient driven by the README's loop sends a streamed upload whose chunks come slowly, and fails on its timeout with a sink that is never ready", async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => new Response(`${(await req.arrayBuffer()).byteLength}`),
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  let sent = 0;
  const upload = new HttpClient(`${base}/up`, {
    method: "POST",
    timeout: 5_000,
    body: new ReadableStream<Uint8Array>({
      async pull(controller) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        if (sent++ === 20) controller.close();
        else controller.enqueue(new Uint8Array(1024));
      },
    }),
  });
  await readmeLoop(upload);
  assertEquals(upload.state, "done", String(upload.error));
  assertEquals(new TextDecoder().decode(upload.response?.body), "20480");

  const started = performance.now();
  const stuck = new HttpClient(`${base}/`, {
    timeout: 300,
    sink: new WritableStream<Uint8Array>(
      { write: () => new Promise(() => {}) }, // never ready again
      { highWaterMark: 1 },
    ),
  });
  await readmeLoop(stuck);
  assertInstanceOf(stuck.error, Deno.errors.TimedOut);
  assert(performance.now() - started < 2_000);
  stuck.close();
});

Deno.test("HttpClient without keepAlive closes its connection when done; detach() gives null", async () => {
  await using server = cannedServer(LENGTH);
  const client = new HttpClient(server.url("/"));
  await drive(client);
  assertEquals(client.state, "done");
  assert(client.pollable.closed);
  assertStrictEquals(client.detach(), null);
});

Deno.test("HttpClient.close() fails a pending request and closes the connection", async () => {
  await using server = rawServer(async () => {
    await new Promise((r) => setTimeout(r, 50));
    return "close";
  });
  const client = new HttpClient(server.url("/"));
  client.close();
  assertEquals(client.state, "failed");
  assertEquals(client.events, 0);
  assert(client.pollable.closed);
  await new Promise((r) => setTimeout(r, 60));
});

Deno.test("HttpClient.response has the fields of a plain object, headers an own enumerable property built on first read", async () => {
  await using server = cannedServer(LENGTH);
  const client = new HttpClient(server.url("/"));
  await drive(client);
  const response = client.response!;
  assertEquals(Object.keys(response), [
    "url",
    "status",
    "statusText",
    "headers",
    "body",
  ]);
  const descriptor = Object.getOwnPropertyDescriptor(response, "headers")!;
  assert(descriptor.enumerable && typeof descriptor.get === "function");
  // A spread copy keeps the headers, as it did with an object literal.
  const copy = { ...response };
  assertEquals(copy.headers.get("x-a"), "1");
  assertStrictEquals(response.headers, response.headers);
});

Deno.test("HttpClient.detach() leaves nothing of the client on the conn it hands over: a kept conn holds no last response", async () => {
  const mod = new URL("../mod.ts", import.meta.url).href;
  const code = `
    import { DefaultSelector, HttpClient } from ${JSON.stringify(mod)};
    await using server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response("x".repeat(1 << 20)),
    );
    async function fetched() {
      const client = new HttpClient("http://127.0.0.1:" + server.addr.port + "/", { keepAlive: true });
      using sel = new DefaultSelector();
      sel.register(client.pollable, client.events);
      for (let i = 0; i < 1000 && client.events !== 0; i++) {
        const ready = await sel.select(5000);
        client.handle(ready[0]?.[1] ?? 0);
        if (client.events !== 0) sel.modify(client.pollable, client.events);
      }
      sel.unregister(client.pollable);
      return [new WeakRef(client.response.body), client.detach()];
    }
    const [body, conn] = await fetched();
    // No deref() before a gc(): it keeps its target alive to the job's end.
    for (let i = 0; i < 5; i++) {
      globalThis.gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    console.log(JSON.stringify({ kept: conn !== null, alive: body.deref() !== undefined }));
    conn?.close();
  `;
  const { stdout, stderr, success } = await runScript(code, [
    "--allow-net",
    "--v8-flags=--expose-gc",
  ]);
  assert(success, stderr);
  // Before: the conn's owner entry held the client, its response and its
  // 1 MiB body for as long as the conn lived.
  assertEquals(JSON.parse(stdout), {
    kept: true,
    alive: false,
  });
});

Deno.test("HttpClient refuses a conn another HttpClient still uses, and a second detach() leaves the conn it handed over alone", async () => {
  await using server = rawServer(async ({ conn, requestOnConn }) => {
    await writeSplit(
      conn,
      `HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nr${requestOnConn}`,
    );
    return "keep";
  });
  const first = new HttpClient(server.url("/0"), { keepAlive: true });
  await drive(first);
  // Not detached: first.close() would close it under the second client.
  assertThrows(
    () => new HttpClient(server.url("/x"), { conn: first.pollable }),
    TypeError,
    "another HttpClient's",
  );
  const conn = first.detach()!;
  const second = new HttpClient(server.url("/1"), { keepAlive: true, conn });
  // Two requests in flight on one conn would each read the other's response.
  assertThrows(
    () => new HttpClient(server.url("/x"), { keepAlive: true, conn }),
    TypeError,
    "another HttpClient's",
  );
  second.handle(EVENT_WRITE);
  using sel = new DefaultSelector();
  sel.register(conn, EVENT_READ);
  assertEquals((await sel.select(5_000)).length, 1, "the answer came");
  sel.unregister(conn);
  assertStrictEquals(first.detach(), null);
  assert(!conn.closed, "the second client's conn is left open");
  await drive(second);
  assertEquals(new TextDecoder().decode(second.response?.body), "r1");
  second.close();
  assertEquals(server.connections, 1);
});

/** An https server on 127.0.0.1 (the test CA's localhost certificate) answering `text`. */
function tlsServer(text: string): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: tlsCert,
    key: tlsKey,
    onListen() {},
  }, () => new Response(text));
}

Deno.test("HttpClient refuses a plain conn for an https: URL, where its request and credentials would go in cleartext, and takes a wrapped Deno.TlsConn", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conn = PollableConn.connect(listener.addr);
  using peer = await listener.accept();
  const url = `https://user:secret@127.0.0.1:${listener.addr.port}/`;
  assertThrows(
    () => new HttpClient(url, { keepAlive: true, conn }),
    TypeError,
    "conn is not TLS, and the URL is https:",
  );
  assert(!conn.closed, "the caller's conn is left as it was");
  conn.close();
  // Nothing went out: before, the request and its Authorization header did.
  const got = new Uint8Array(1024);
  assertEquals(await peer.read(got), null);

  await using server = tlsServer("over TLS");
  const tls = await Deno.connectTls({
    hostname: "localhost",
    port: server.addr.port,
    caCerts: [ca],
  });
  const client = new HttpClient(`https://localhost:${server.addr.port}/`, {
    conn: PollableConn.from(tls),
    caCerts: [ca],
  });
  await drive(client);
  assertEquals(new TextDecoder().decode(client.response?.body), "over TLS");
});

Deno.test("HttpClient refuses for an https: URL a conn over a caller's promise that has not settled: it may be a plain one", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conn = new PollableConn(
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
  );
  try {
    assertThrows(
      () =>
        new HttpClient(`https://user:secret@127.0.0.1:${listener.addr.port}/`, {
          keepAlive: true,
          conn,
        }),
      TypeError,
      "not established yet",
    );
  } finally {
    using peer = await listener.accept();
    conn.close();
    // Nothing went out: before, the request and its Authorization header did,
    // queued at once and sent as the plain conn connected.
    assertEquals(await peer.read(new Uint8Array(1024)), null);
  }
});

Deno.test("HttpClient takes for an https: URL a conn over a caller's promise of a Deno.TlsConn once it settled", async () => {
  await using server = tlsServer("over a promised TlsConn");
  const promise = Deno.connectTls({
    hostname: "localhost",
    port: server.addr.port,
    caCerts: [ca],
  });
  using conn = new PollableConn(promise);
  await promise;
  const client = new HttpClient(`https://localhost:${server.addr.port}/`, {
    conn,
    caCerts: [ca],
  });
  await drive(client);
  assertEquals(
    new TextDecoder().decode(client.response?.body),
    "over a promised TlsConn",
  );
});

Deno.test("HttpClient.handle() called again from inside a sink's write is ignored: the body reaches the sink once", async () => {
  const body = "x".repeat(3_000);
  await using server = rawServer(async ({ conn }) => {
    await writeSplit(
      conn,
      `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    return "close";
  });
  let written = 0;
  const client: HttpClient = new HttpClient(server.url("/"), {
    sink: new WritableStream({
      write(chunk) {
        written += chunk.length;
        client.handle(EVENT_READ);
      },
    }, new CountQueuingStrategy({ highWaterMark: 16 })),
  });
  await driveWaiting(client, { rounds: 100 });
  assertEquals(client.state, "done");
  assertEquals(written, body.length);
});

Deno.test("HttpClient.close() from inside a tap's callback fails the request with its reason at once", async () => {
  await using server = rawServer(async ({ conn }) => {
    await writeSplit(conn, LENGTH);
    return "close";
  });
  const reason = new Error("archive full");
  const client: HttpClient = new HttpClient(server.url("/"), {
    timeout: 1_000, // it went on as "receiving" on the closed conn till then
    tap: () => ({ request: () => client.close(reason) }),
  });
  await drive(client, 10);
  assertEquals([client.state, client.events], ["failed", 0]);
  assertStrictEquals(client.error, reason);
  assert(client.pollable.closed);
});

Deno.test("HttpClient.handle(EVENT_WRITE) before its connect settled stays connecting: the connect's own error and timeout stand", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const client = new HttpClient(`http://127.0.0.1:${port}/`);
  client.handle(EVENT_WRITE);
  assertEquals([client.state, client.events], ["connecting", EVENT_WRITE]);
  await drive(client);
  assertInstanceOf(client.error, Deno.errors.ConnectionRefused);
  assert(
    client.error.message.startsWith(`Cannot connect to 127.0.0.1:${port}`),
  );
});
