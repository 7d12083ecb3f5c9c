import {
  assert,
  assertEquals,
  assertGreater,
  assertInstanceOf,
  assertLess,
  assertStringIncludes,
} from "@std/assert";
import {
  DefaultSelector,
  fetchAll,
  fetchEach,
  type FetchResult,
  HttpClient,
  type HttpClientOptions,
  HttpParseError,
  ProxyError,
} from "../mod.ts";
import { startMiniProxy } from "./_mini_proxy.ts";
import { cannedServer, rawServer, writeSplit } from "./_raw_http.ts";
import { needsTinyproxy, startTinyproxy } from "./_tinyproxy.ts";
import { bytesEqual, listenTcp, Rng } from "./_net.ts";
import { ca, cert, clientCa, key } from "./_tls.ts";
import { failed, ok, withProxyEnv } from "./_client_util.ts";

/** Sizes of the bodies compared: empty, tiny, 1 KiB, one TLS record and more, 3 MB. */
const SIZES = [0, 1, 1024, 20_000, 3_000_000];
const payload = new Rng(5).bytes(Math.max(...SIZES));

/**
 * `Deno.serve` on 127.0.0.1 (over TLS with the test certificate when `tls`):
 * `/length/<n>` answers `n` payload bytes with a `Content-Length`,
 * `/chunked/<n>` the same bytes chunked, `/gzip/<n>` them gzip-coded, chunked.
 * It records each request's `Host` and the conns it saw.
 */
function origin(tls: boolean) {
  const hosts: string[] = [];
  const handler = (req: Request) => {
    hosts.push(req.headers.get("host") ?? "");
    const [, framing = "", size = "0"] = new URL(req.url).pathname.split("/");
    const body = payload.slice(0, Number(size));
    if (framing === "length") return new Response(body);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        const third = Math.max(1, Math.ceil(body.length / 3));
        for (let at = 0; at < body.length; at += third) {
          controller.enqueue(body.slice(at, at + third));
        }
        controller.close();
      },
    });
    if (framing === "gzip") {
      return new Response(
        stream.pipeThrough(
          new CompressionStream("gzip") as unknown as ReadableWritablePair<
            Uint8Array,
            Uint8Array
          >,
        ),
        { headers: { "content-encoding": "gzip" } },
      );
    }
    return new Response(stream);
  };
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    ...(tls ? { cert, key } : {}),
  }, handler);
  const base = `${tls ? "https" : "http"}://127.0.0.1:${server.addr.port}`;
  return { server, base, port: server.addr.port, hosts };
}

function urlsOf(base: string): string[] {
  const urls: string[] = [];
  for (const framing of ["length", "chunked", "gzip"]) {
    for (const size of SIZES) urls.push(`${base}/${framing}/${size}`);
  }
  return urls;
}

/** Fetches `urls` directly and through `proxy`; every status and body must match. */
async function assertSameThroughProxy(
  urls: string[],
  proxy: string,
  concurrency: number,
) {
  const direct = await fetchAll(urls, { caCerts: [ca], concurrency });
  const proxied = await fetchAll(urls, {
    caCerts: [ca],
    proxy,
    concurrency,
  });
  for (let i = 0; i < urls.length; i++) {
    const a = ok(direct[i]);
    const b = ok(proxied[i]);
    assertEquals(b.status, a.status, urls[i]);
    assertEquals(b.body.length, a.body.length, urls[i]);
    assert(bytesEqual(b.body, a.body), `body differs: ${urls[i]}`);
    // A pooled conn the proxy closed is replayed within the attempt.
    assertEquals(proxied[i]!.attempts, 1, urls[i]);
  }
}

Deno.test(
  needsTinyproxy(
    "fetchAll() with proxy sends http URLs through tinyproxy: every body equals the direct fetch",
  ),
  async () => {
    await using server = origin(false).server;
    const base = `http://127.0.0.1:${server.addr.port}`;
    await using tinyproxy = await startTinyproxy();
    // One at a time: tinyproxy closes each conn after its response, so each
    // request after the first meets a pooled conn the proxy closed.
    await assertSameThroughProxy(urlsOf(base), tinyproxy.url, 1);
    await assertSameThroughProxy(urlsOf(base), tinyproxy.url, 8);
    const log = await tinyproxy.log();
    assertStringIncludes(log, `GET http://127.0.0.1:${server.addr.port}/`);
  },
);

Deno.test(
  needsTinyproxy(
    "fetchAll() with proxy sends https URLs through a CONNECT tunnel of tinyproxy: every body equals the direct fetch",
  ),
  async () => {
    const site = origin(true);
    await using _server = site.server;
    await using tinyproxy = await startTinyproxy({ connectPorts: [site.port] });
    await assertSameThroughProxy(urlsOf(site.base), tinyproxy.url, 1);
    await assertSameThroughProxy(urlsOf(site.base), tinyproxy.url, 8);
    assertStringIncludes(
      await tinyproxy.log(),
      `CONNECT 127.0.0.1:${site.port}`,
    );
  },
);

Deno.test(
  needsTinyproxy(
    "fetchAll() with a proxy requiring BasicAuth: 407 without credentials is a ProxyError, with them 200",
  ),
  async () => {
    const plain = origin(false);
    const tls = origin(true);
    await using _a = plain.server;
    await using _b = tls.server;
    await using tinyproxy = await startTinyproxy({
      basicAuth: ["alice", "s3cret"],
    });
    const urls = [`${plain.base}/length/10`, `${tls.base}/length/10`];
    const refused = await fetchAll(urls, {
      caCerts: [ca],
      proxy: tinyproxy.url,
      retry: { limit: 0 },
    });
    for (const result of refused) {
      const error = failed(result);
      assertInstanceOf(error, ProxyError);
      assertEquals(error.status, 407);
      assertEquals(error.proxy, `127.0.0.1:${tinyproxy.port}`);
    }
    const withAuth = tinyproxy.url.replace("//", "//alice:s3cret@");
    const allowed = await fetchAll(urls, { caCerts: [ca], proxy: withAuth });
    for (const result of allowed) {
      assert(bytesEqual(ok(result).body, payload.subarray(0, 10)));
    }
    // Wrong credentials: the message shows the proxy, never the password.
    const wrong = await fetchAll(urls, {
      caCerts: [ca],
      proxy: tinyproxy.url.replace("//", "//alice:wrong-pw@"),
      retry: { limit: 0 },
    });
    // tinyproxy answers 401 (sic) to wrong credentials: the origin's status
    // for an http URL, a refused tunnel for https.
    assertEquals(ok(wrong[0]).status, 401);
    const error = failed(wrong[1]);
    assertInstanceOf(error, ProxyError);
    assertEquals(error.status, 401);
    assert(!error.message.includes("wrong-pw"), error.message);
  },
);

Deno.test(
  needsTinyproxy(
    "fetchAll() with proxy fails a CONNECT tinyproxy refuses with a ProxyError naming the proxy, and the other URLs go on",
  ),
  async () => {
    const tls = origin(true);
    await using _ = tls.server;
    // Port 1 only: the tunnel to the server's port is refused with 403.
    await using tinyproxy = await startTinyproxy({ connectPorts: [1] });
    const results = await fetchAll([
      { url: `${tls.base}/length/5`, proxy: tinyproxy.url },
      `${tls.base}/length/6`,
    ], { caCerts: [ca], retry: { limit: 0 } });
    const error = failed(results[0]);
    assertInstanceOf(error, ProxyError);
    assertEquals(error.status, 403);
    assertStringIncludes(error.message, `proxy 127.0.0.1:${tinyproxy.port}`);
    assertEquals(ok(results[1]).body.length, 6);
  },
);

Deno.test("fetchAll() with proxy keeps one conn to an http proxy for requests to several origins", async () => {
  const a = origin(false);
  const b = origin(false);
  await using _a = a.server;
  await using _b = b.server;
  await using proxy = startMiniProxy();
  const urls = [
    `${a.base}/length/1024`,
    `${b.base}/chunked/1024`,
    `${a.base}/gzip/1024`,
    `${b.base}/length/0`,
    `${a.base}/length/1024`,
  ];
  const results = await fetchAll(urls, { proxy: proxy.url, concurrency: 1 });
  for (const [i, result] of results.entries()) {
    const size = Number(urls[i]!.split("/").at(-1));
    assert(bytesEqual(ok(result).body, payload.subarray(0, size)), urls[i]);
  }
  assertEquals(proxy.connections, 1);
  assertEquals(
    proxy.requests,
    urls.map((url) => `GET ${url} HTTP/1.1`),
  );
  // Host comes from the URL, as in origin-form.
  assertEquals(a.hosts, Array(3).fill(new URL(a.base).host));
});

Deno.test("fetchAll() with proxy keeps a CONNECT tunnel alive per https origin", async () => {
  const a = origin(true);
  const b = origin(true);
  await using _a = a.server;
  await using _b = b.server;
  await using proxy = startMiniProxy();
  const urls = [
    `${a.base}/length/1024`,
    `${a.base}/chunked/20000`,
    `${b.base}/length/1024`,
    `${a.base}/gzip/1024`,
    `${b.base}/length/1`,
  ];
  const results = await fetchAll(urls, {
    proxy: proxy.url,
    concurrency: 1,
    caCerts: [ca],
  });
  for (const [i, result] of results.entries()) {
    const size = Number(urls[i]!.split("/").at(-1));
    assert(bytesEqual(ok(result).body, payload.subarray(0, size)), urls[i]);
  }
  // One tunnel per origin, each carrying all of that origin's requests.
  assertEquals(proxy.requests, [
    `CONNECT 127.0.0.1:${a.port} HTTP/1.1`,
    `CONNECT 127.0.0.1:${b.port} HTTP/1.1`,
  ]);
  assertEquals(proxy.connections, 2);
});

Deno.test("fetchAll() with proxy sends the proxy URL's credentials as Proxy-Authorization; a 407 to an http URL is a ProxyError", async () => {
  const site = origin(false);
  await using _ = site.server;
  const authorization = `Basic ${btoa("bob:p@ss")}`;
  await using proxy = startMiniProxy({ authorization });
  const url = `${site.base}/length/3`;
  const port = proxy.port;
  const [good, bad] = await fetchAll([
    { url, proxy: `http://bob:p%40ss@127.0.0.1:${port}` },
    { url, proxy: `http://bob:nope@127.0.0.1:${port}` },
  ], { retry: { limit: 0 } });
  assertEquals(ok(good).body.length, 3);
  const error = failed(bad);
  assertInstanceOf(error, ProxyError);
  assertEquals(error.status, 407);
  assertEquals(error.proxy, `127.0.0.1:${port}`);
  assert(!error.message.includes("nope"));
});

Deno.test("fetchAll() sends a Proxy-Authorization header of the caller's to the proxy only: in the CONNECT of an https URL, never through the tunnel to the origin", async () => {
  const seen: Array<string | null> = [];
  await using server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    cert,
    key,
  }, (req) => {
    seen.push(req.headers.get("proxy-authorization"));
    return new Response("ok");
  });
  const authorization = `Basic ${btoa("bob:p@ss")}`;
  await using proxy = startMiniProxy({ authorization });
  const [result] = await fetchAll([`https://127.0.0.1:${server.addr.port}/`], {
    caCerts: [ca],
    proxy: proxy.url, // no credentials of its own: the header's are the ones
    headers: { "Proxy-Authorization": authorization },
    retry: { limit: 0 },
  });
  assertEquals(new TextDecoder().decode(ok(result).body), "ok");
  assertEquals(seen, [null], "the proxy's credentials reached the origin");
});

Deno.test("fetchAll() with proxy down fails only the proxied URLs, with the connection's error naming the proxy", async () => {
  const site = origin(false);
  const tls = origin(true);
  await using _a = site.server;
  await using _b = tls.server;
  // A port nobody listens on.
  const closed = listenTcp();
  const deadPort = closed.addr.port;
  closed.close();
  const dead = `http://127.0.0.1:${deadPort}`;
  const results = await fetchAll([
    { url: `${site.base}/length/1`, proxy: dead },
    `${site.base}/length/2`,
    { url: `${tls.base}/length/3`, proxy: dead },
    `${tls.base}/length/4`,
  ], { caCerts: [ca], retry: { limit: 0 } });
  for (const i of [0, 2]) {
    const error = failed(results[i]);
    assertInstanceOf(error, Deno.errors.ConnectionRefused);
    // Whose connection it was: the proxy's, not the origin's.
    assertStringIncludes(
      error.message,
      `Cannot connect to proxy 127.0.0.1:${deadPort}: `,
    );
    assertInstanceOf(error.cause, Deno.errors.ConnectionRefused);
  }
  assertEquals(ok(results[1]).body.length, 2);
  assertEquals(ok(results[3]).body.length, 4);
});

Deno.test('fetchAll() with a proxy whose name does not resolve says so once, naming the proxy: no second "Cannot connect to"', async () => {
  const [plain, tunnel] = await fetchAll([
    "http://127.0.0.1:1/",
    "https://127.0.0.1:1/",
  ], { proxy: "http://selectors-test.invalid:3128", retry: { limit: 0 } });
  for (const result of [plain, tunnel]) {
    const error = failed(result) as Error;
    assert(
      error.message.startsWith(
        "Cannot connect to proxy selectors-test.invalid:3128: ",
      ),
      error.message,
    );
    assertEquals(
      error.message.split("Cannot connect to").length,
      2,
      error.message,
    );
  }
});

Deno.test("fetchAll() through a proxy that dies mid-tunnel fails that URL with a typed error", async () => {
  const tls = origin(true);
  await using _ = tls.server;
  await using proxy = startMiniProxy({ dieAfter: 100_000 });
  const [cut, whole] = await fetchAll([
    { url: `${tls.base}/length/3000000`, proxy: proxy.url },
    `${tls.base}/length/5`,
  ], { caCerts: [ca], retry: { limit: 0 } });
  const error = failed(cut);
  // The tunnel ends without TLS close_notify, inside the body: a truncated
  // body (or a reset, if the kernel saw unread bytes at the proxy's close).
  assert(
    (error instanceof HttpParseError && error.code === "truncated-body") ||
      error instanceof Deno.errors.ConnectionReset,
    `unexpected ${error}`,
  );
  assertEquals(ok(whole).body.length, 5);
});

Deno.test('fetchAll() with proxy "env" follows http_proxy and bypasses NO_PROXY hosts', async () => {
  const a = origin(false);
  const b = origin(false);
  await using _a = a.server;
  await using _b = b.server;
  await using proxy = startMiniProxy();
  const urls = [`${a.base}/length/7`, `${b.base}/length/8`];
  const results = await withProxyEnv(
    // Only b's port bypasses the proxy (an entry with a port).
    { http_proxy: proxy.url, NO_PROXY: `example.com, 127.0.0.1:${b.port}` },
    () => fetchAll(urls, { proxy: "env" }),
  );
  assertEquals(ok(results[0]).body.length, 7);
  assertEquals(ok(results[1]).body.length, 8);
  assertEquals(proxy.requests, [`GET ${urls[0]} HTTP/1.1`]);
});

Deno.test('fetchAll() with proxy "env" follows an upper-case HTTP_PROXY too', async () => {
  const a = origin(false);
  await using _a = a.server;
  await using proxy = startMiniProxy();
  const url = `${a.base}/length/9`;
  const [result] = await withProxyEnv(
    { HTTP_PROXY: proxy.url },
    () => fetchAll([url], { proxy: "env" }),
  );
  assertEquals(ok(result).body.length, 9);
  assertEquals(proxy.requests, [`GET ${url} HTTP/1.1`]);
});

Deno.test('fetchAll() with proxy "env" reads no HTTP_PROXY over an http_proxy set to "", as curl', async () => {
  const a = origin(false);
  await using _a = a.server;
  await using upper = startMiniProxy();
  await using all = startMiniProxy();
  const url = `${a.base}/length/6`;
  const results = await withProxyEnv(
    { http_proxy: "", HTTP_PROXY: upper.url, all_proxy: all.url },
    () => fetchAll([url], { proxy: "env" }),
  );
  assertEquals(ok(results[0]).body.length, 6);
  const direct = await withProxyEnv(
    { http_proxy: "", HTTP_PROXY: upper.url },
    () => fetchAll([url], { proxy: "env" }),
  );
  assertEquals(ok(direct[0]).body.length, 6);
  assertEquals(all.requests, [`GET ${url} HTTP/1.1`]);
  assertEquals(upper.requests, []);
  assertEquals(a.hosts.length, 2);
});

/** Drives one `HttpClient` to its end. */
async function drive(url: string, options: HttpClientOptions) {
  using sel = new DefaultSelector();
  const client = new HttpClient(url, { timeout: 10_000, ...options });
  let registered = client.pollable;
  sel.register(registered, client.events);
  for (let i = 0; i < 10_000 && client.events !== 0; i++) {
    const ready = await sel.select(
      Math.max(0, client.deadline - performance.now()),
    );
    client.handle(ready.length > 0 ? ready[0]![1] : 0);
    if (client.pollable !== registered) {
      sel.unregister(registered);
      registered = client.pollable;
      if (client.events !== 0) sel.register(registered, client.events);
    } else if (client.events !== 0) sel.modify(registered, client.events);
  }
  sel.unregister(registered);
  client.close();
  return client;
}

Deno.test("HttpClient with proxy sends an http URL in absolute-form and an https URL through CONNECT", async () => {
  const plain = origin(false);
  const tls = origin(true);
  await using _a = plain.server;
  await using _b = tls.server;
  await using proxy = startMiniProxy();
  const http = await drive(`${plain.base}/chunked/20000`, { proxy: proxy.url });
  assertEquals(http.state, "done");
  assert(bytesEqual(http.response!.body, payload.subarray(0, 20000)));
  const https = await drive(`${tls.base}/length/20000`, {
    proxy: new URL(proxy.url),
    caCerts: [ca],
  });
  assertEquals(https.state, "done", String(https.error));
  assert(bytesEqual(https.response!.body, payload.subarray(0, 20000)));
  assertEquals(proxy.requests, [
    `GET ${plain.base}/chunked/20000 HTTP/1.1`,
    `CONNECT 127.0.0.1:${tls.port} HTTP/1.1`,
  ]);
});

Deno.test("HttpClient with proxy refuses a proxy URL it cannot use, before connecting", () => {
  for (
    const proxy of ["https://127.0.0.1:1", "127.0.0.1:8080", "http://h:1/path"]
  ) {
    let error: unknown;
    try {
      new HttpClient("http://127.0.0.1:1/", { proxy });
    } catch (e) {
      error = e;
    }
    assertInstanceOf(error, TypeError, proxy);
    assertStringIncludes((error as Error).message, "Cannot use proxy");
  }
});

/** A fake proxy answering every `CONNECT` with `answer`, then holding the conn. */
function fakeProxy(answer: string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.push(conn);
        const buf = new Uint8Array(4096);
        conn.read(buf).then(async (n) => {
          if (n !== null && answer !== "") {
            await conn.write(new TextEncoder().encode(answer));
          }
        }).catch(() => {});
      }
    } catch {
      // Closed.
    }
  })();
  return {
    url: `http://127.0.0.1:${listener.addr.port}`,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Closed by the client already.
        }
      }
      await accepting;
    },
  };
}

Deno.test("HttpClient through a proxy that sends bytes after its 200 to CONNECT fails, not mixing them into TLS", async () => {
  await using proxy = fakeProxy(
    "HTTP/1.1 200 Connection established\r\n\r\nnot TLS",
  );
  const client = await drive("https://127.0.0.1:1/", {
    proxy: proxy.url,
    caCerts: [ca],
  });
  assertEquals(client.state, "failed");
  assertInstanceOf(client.error, Deno.errors.InvalidData);
  assertStringIncludes(
    (client.error as Error).message,
    "7 bytes received before the handshake",
  );
});

Deno.test("HttpClient through a proxy that never answers CONNECT fails at the connect timeout", async () => {
  await using proxy = fakeProxy("");
  const client = await drive("https://127.0.0.1:1/", {
    proxy: proxy.url,
    connectTimeout: 200,
  });
  assertEquals(client.state, "failed");
  assertInstanceOf(client.error, Deno.errors.TimedOut);
  assertStringIncludes((client.error as Error).message, "connect timeout");
});

Deno.test("HttpClient through a tunnel keeps one connectTimeout across the second tunnel it opens for the default roots", async () => {
  const tls = origin(true);
  await using _ = tls.server;
  // The first CONNECT is answered after 600 ms, with a chain caCerts do not
  // anchor; the second, for the default roots, is never answered.
  await using proxy = startMiniProxy({ connectDelays: [600, Infinity] });
  const started = performance.now();
  const client = await drive(`${tls.base}/length/1`, {
    proxy: proxy.url,
    caCerts: [clientCa],
    connectTimeout: 1_000,
  });
  const took = performance.now() - started;
  assertEquals(client.state, "failed");
  assertInstanceOf(client.error, Deno.errors.TimedOut);
  assertStringIncludes((client.error as Error).message, "connect timeout");
  assertEquals(proxy.requests.length, 2, "the second tunnel was asked for");
  assertLess(took, 1_400, "not a second connectTimeout for the second tunnel");
});

Deno.test("fetchAll() through a proxy does not reuse a conn whose answer says Proxy-Connection: close", async () => {
  // An HTTP/1.0-era proxy: it says it closes in its own field, then closes a
  // moment later, while a reused conn's next POST (never replayed) is on its way.
  await using proxy = rawServer(async ({ conn }) => {
    await writeSplit(
      conn,
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nProxy-Connection: close\r\n\r\nok",
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    return "close";
  });
  const results = await fetchAll(
    [1, 2, 3].map((i) => ({
      url: `http://origin.test/${i}`,
      method: "POST",
      body: "x",
    })),
    { proxy: proxy.url(), concurrency: 1 },
  );
  assertEquals(results.map((r) => r.ok), [true, true, true]);
  assertEquals(proxy.connections, 3);
});

Deno.test("fetchAll() through a proxy that refuses as Squid does (a CONNECT 503, a 407 to an http URL) shows its X-Squid-Error in the ProxyError's message", async () => {
  const cases: [string, number, string, string][] = [
    [
      "https://origin.test/",
      503,
      "Service Unavailable",
      "ERR_CONNECT_FAIL 111",
    ],
    [
      "http://origin.test/",
      407,
      "Proxy Authentication Required",
      "ERR_CACHE_ACCESS_DENIED 0",
    ],
  ];
  for (const [url, status, text, why] of cases) {
    await using proxy = cannedServer(
      `HTTP/1.1 ${status} ${text}\r\nX-Squid-Error: ${why}\r\nContent-Length: 0\r\n\r\n`,
    );
    const [result] = await fetchAll([url], { proxy: proxy.url() });
    const error = failed(result);
    assertInstanceOf(error, ProxyError);
    assertEquals(error.status, status);
    assertStringIncludes(
      error.message,
      `it answered ${status} ${text} (${why})`,
    );
  }
});

Deno.test("fetchAll() retries an https URL whose tunnel the proxy refused with a status retry lists, and not one refused 407", async () => {
  const tls = origin(true);
  await using _ = tls.server;
  await using proxy = startMiniProxy({ refuseConnects: 1 });
  const result = await retriedOnce(`${tls.base}/length/3`, proxy.url);
  assertEquals(result.ok, true, String(result.ok ? "" : result.error));
  assertEquals(result.attempts, 2);
  assertEquals(proxy.requests.length, 2);
  await using strict = startMiniProxy({ authorization: "Basic x" });
  const denied = await retriedOnce(`${tls.base}/length/3`, strict.url);
  assertInstanceOf(failed(denied), ProxyError);
  assertEquals(denied.attempts, 1);
});

/** A GET of `url` through `proxy`, retried once at once (1 ms of backoff). */
async function retriedOnce(url: string, proxy: string): Promise<FetchResult> {
  const [result] = await fetchAll([url], {
    proxy,
    caCerts: [ca],
    retry: { limit: 1, baseDelay: 1 },
  });
  return result!;
}

Deno.test("fetchAll() retries an https URL whose tunnel the proxy refused 429 after its Retry-After, and pauses its origin as long", async () => {
  const tls = origin(true);
  await using _ = tls.server;
  await using proxy = startMiniProxy({
    refuseConnects: 1,
    refusal:
      "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
  });
  const started = performance.now();
  const result = await retriedOnce(`${tls.base}/length/3`, proxy.url);
  assertEquals(result.ok, true, String(result.ok ? "" : result.error));
  assertEquals(result.attempts, 2);
  // Not the 1 ms backoff: the second of its Retry-After.
  assertGreater(performance.now() - started, 1_000 - 20);
  // Another URL of the origin, its slot free, waits out the pause too.
  await using again = startMiniProxy({
    refuseConnects: 1,
    refusal:
      "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
  });
  const second = performance.now();
  const done: number[] = [];
  for await (
    const { result } of fetchEach(
      [`${tls.base}/length/1`, `${tls.base}/length/2`],
      { proxy: again.url, caCerts: [ca], concurrency: 1 },
    )
  ) {
    assertEquals(result.ok, result.url.endsWith("/2"));
    done.push(performance.now() - second);
  }
  assertGreater(done[1]!, 1_000 - 20, `done at ${done}`);
});

Deno.test("fetchAll() keeps a tunnel to the requests with the Proxy-Authorization its CONNECT had", async () => {
  const tls = origin(true);
  await using _ = tls.server;
  const bob = "Basic " + btoa("bob:pw");
  await using proxy = startMiniProxy({ authorization: bob });
  const spec = (auth: string | null) => ({
    url: `${tls.base}/length/3`,
    ...(auth === null ? {} : { headers: { "proxy-authorization": auth } }),
  });
  const results = await fetchAll([
    spec(bob),
    spec("Basic " + btoa("mallory:guess")),
    spec(null),
    spec(bob),
  ], { proxy: proxy.url, caCerts: [ca], concurrency: 1 });
  assertEquals(
    results.map((r) => r.ok ? r.response.status : (failed(r) as Error).name),
    [200, "ProxyError", "ProxyError", 200],
  );
  assertEquals(proxy.requests.length, 3, "bob's tunnel kept for bob");
});

Deno.test("HttpClient through a tunnel tries the default roots on a new tunnel when caCerts do not anchor the chain", async () => {
  const tls = origin(true);
  await using _ = tls.server;
  await using proxy = startMiniProxy();
  // The client CA did not sign the server's certificate, and the test CA is no
  // default root: both tunnels fail, as a direct connect would.
  const client = await drive(`${tls.base}/length/1`, {
    proxy: proxy.url,
    caCerts: [clientCa],
  });
  assertEquals(client.state, "failed");
  assertInstanceOf(client.error, Deno.errors.InvalidData);
  assertEquals(proxy.requests, [
    `CONNECT 127.0.0.1:${tls.port} HTTP/1.1`,
    `CONNECT 127.0.0.1:${tls.port} HTTP/1.1`,
  ]);
});

Deno.test("HttpClient whose TLS handshake through a tunnel fails names the origin's host:port, not the proxy, with the error's kind and code and it as cause", async () => {
  const tls = origin(true);
  await using _ = tls.server;
  await using proxy = startMiniProxy();
  // No caCerts: the test CA is no default root, one tunnel fails.
  const client = await drive(`${tls.base}/length/1`, { proxy: proxy.url });
  assertEquals(client.state, "failed");
  const error = client.error as Error & { code?: string };
  assertInstanceOf(error, Deno.errors.InvalidData);
  assert(
    error.message.startsWith(`Cannot connect to 127.0.0.1:${tls.port}: `),
    error.message,
  );
  assertInstanceOf(error.cause, Deno.errors.InvalidData);
  assertEquals(
    error.message,
    `Cannot connect to 127.0.0.1:${tls.port}: ${
      (error.cause as Error).message
    }`,
  );
  assertEquals(error.code, (error.cause as { code?: string }).code);
  assert(error.code !== undefined);
  assertEquals(proxy.requests, [`CONNECT 127.0.0.1:${tls.port} HTTP/1.1`]);
});
