/**
 * The raw-bytes tap (`tap` of HttpClient / fetchAll / RequestSpec), checked on the
 * wire: what the tap reports is compared with the bytes a raw server really read
 * and really wrote. Also the crawl's sink across redirects and retries, and
 * `perOrigin.delay` as a function of the origin.
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
} from "@std/assert";
import {
  fetchAll,
  type HttpExchangeEnd,
  type HttpExchangeInfo,
  HttpParseError,
  type HttpTap,
} from "../mod.ts";
import { startMiniProxy } from "./_mini_proxy.ts";
import { ca, cert, key } from "./_tls.ts";
import { concat, indexOf } from "./_net.ts";
import { rawServer as keepAliveServer, writeSplit } from "./_raw_http.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A server that reads one request per connection (head plus Content-Length
 * body), keeps its exact bytes, writes the reply for its path in the pieces
 * given (a short pause between them, so they arrive in separate reads) and
 * closes the connection.
 */
function rawServer(reply: (path: string) => (string | Uint8Array)[]) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received: Uint8Array[] = [];
  const tasks: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      tasks.push(serve(conn));
    }
  })();
  async function serve(conn: Deno.Conn): Promise<void> {
    try {
      let data: Uint8Array = new Uint8Array(0);
      const buf = new Uint8Array(65536);
      let end = -1;
      for (;;) {
        end = indexOf(data, encoder.encode("\r\n\r\n"));
        if (end >= 0) {
          const head = decoder.decode(data.subarray(0, end));
          const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
          if (data.length >= end + 4 + length) break;
        }
        const n = await conn.read(buf);
        if (n === null) return;
        data = concat([data, buf.subarray(0, n)]);
      }
      received.push(data);
      const path = /^\S+ (\S+)/.exec(
        decoder.decode(data.subarray(0, 200)),
      )![1]!;
      const pieces = reply(path);
      for (const [i, piece] of pieces.entries()) {
        if (i > 0) await new Promise((r) => setTimeout(r, 15));
        let bytes = typeof piece === "string" ? encoder.encode(piece) : piece;
        while (bytes.length > 0) {
          bytes = bytes.subarray(await conn.write(bytes));
        }
      }
    } catch {
      // The client closed first: nothing to check here.
    } finally {
      conn.close();
    }
  }
  return {
    base: `http://127.0.0.1:${listener.addr.port}`,
    received,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting.catch(() => {});
      await Promise.all(tasks);
    },
  };
}

interface Recorded {
  info: HttpExchangeInfo;
  request: Uint8Array[];
  response: Uint8Array[];
  end: HttpExchangeEnd | null;
}

/** A tap that copies everything into `exchanges`. */
function recorder(): { tap: HttpTap; exchanges: Recorded[] } {
  const exchanges: Recorded[] = [];
  const tap: HttpTap = (info) => {
    const recorded: Recorded = { info, request: [], response: [], end: null };
    exchanges.push(recorded);
    return {
      request: (bytes) => void recorded.request.push(bytes.slice()),
      response: (bytes) => void recorded.response.push(bytes.slice()),
      end: (end) => {
        assertEquals(recorded.end, null, "end is called once");
        recorded.end = end;
      },
    };
  };
  return { tap, exchanges };
}

Deno.test("fetchAll() tap reports the request bytes sent and the response bytes received before decoding, chunked framing kept", async () => {
  const gzipped = new Uint8Array(
    await new Response(
      new Blob(["hello tap ".repeat(50)]).stream().pipeThrough(
        new CompressionStream("gzip"),
      ),
    ).arrayBuffer(),
  );
  const head = "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n" +
    "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
  const half = gzipped.length >> 1;
  const framed = [
    head,
    concat([
      encoder.encode(`${half.toString(16)};ext=1\r\n`),
      gzipped.subarray(0, half),
      encoder.encode("\r\n"),
    ]),
    concat([
      encoder.encode(`${(gzipped.length - half).toString(16)}\r\n`),
      gzipped.subarray(half),
      encoder.encode("\r\n0\r\nX-Trailer: 1\r\n\r\n"),
    ]),
  ];
  await using server = rawServer(() => framed);
  const { tap, exchanges } = recorder();
  const [result] = await fetchAll([{
    url: `${server.base}/post`,
    method: "POST",
    body: "a=1&b=2",
  }], { tap, keepAlive: false });
  assert(result?.ok);
  assertEquals(decoder.decode(result.response.body), "hello tap ".repeat(50));
  assertEquals(exchanges.length, 1);
  const [exchange] = exchanges;
  assertEquals(concat(exchange!.request), server.received[0]);
  assertEquals(
    concat(exchange!.response),
    concat(framed.map((p) => typeof p === "string" ? encoder.encode(p) : p)),
  );
  assertEquals(exchange!.info.url, `${server.base}/post`);
  const addr = exchange!.info.remoteAddr as Deno.NetAddr;
  assertEquals(addr.hostname, "127.0.0.1");
  assertEquals(exchange!.info.viaProxy, false);
  assertEquals(exchange!.end, {
    url: `${server.base}/post`,
    remoteAddr: exchange!.info.remoteAddr,
    ok: true,
    error: null,
  });
  assert(Math.abs(exchange!.info.date.getTime() - Date.now()) < 10_000);
});

Deno.test("fetchAll() tap says an exchange went through a proxy, whose address remoteAddr then is", async () => {
  await using server = rawServer(() => [
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
  ]);
  await using proxy = startMiniProxy();
  const { tap, exchanges } = recorder();
  const [result] = await fetchAll([`${server.base}/p`], {
    tap,
    proxy: proxy.url,
  });
  assert(result?.ok, String(!result?.ok && result?.error));
  assertEquals(proxy.requests, [`GET ${server.base}/p HTTP/1.1`]);
  assertEquals(exchanges.length, 1);
  assertEquals(exchanges[0]!.info.viaProxy, true);
  assertEquals(
    (exchanges[0]!.info.remoteAddr as Deno.NetAddr).port,
    proxy.port,
  );
});

Deno.test("fetchAll() tap says an https exchange went through a proxy's CONNECT tunnel", async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {}, cert, key },
    () => new Response("ok"),
  );
  await using proxy = startMiniProxy();
  const { tap, exchanges } = recorder();
  const url = `https://127.0.0.1:${server.addr.port}/t`;
  const [result] = await fetchAll([url], {
    tap,
    proxy: proxy.url,
    caCerts: [ca],
  });
  assert(result?.ok, String(!result?.ok && result?.error));
  assertEquals(proxy.requests, [
    `CONNECT 127.0.0.1:${server.addr.port} HTTP/1.1`,
  ]);
  assertEquals(exchanges.length, 1);
  assertEquals(exchanges[0]!.info.viaProxy, true);
  assertEquals(
    (exchanges[0]!.info.remoteAddr as Deno.NetAddr).port,
    proxy.port,
  );
});

Deno.test("fetchAll() tap leaves interim 1xx heads out of the response bytes, however they are split", async () => {
  const final =
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
  const interim =
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n";
  const whole = interim + final;
  for (
    const cut of [10, interim.length - 3, interim.length, interim.length + 8]
  ) {
    await using server = rawServer(
      () => [whole.slice(0, cut), whole.slice(cut)],
    );
    const { tap, exchanges } = recorder();
    const [result] = await fetchAll([`${server.base}/`], { tap });
    assert(result?.ok, `cut at ${cut}`);
    assertEquals(decoder.decode(concat(exchanges[0]!.response)), final);
  }
});

Deno.test("fetchAll() tap whose end() throws: the exception is ignored, the result stands and the next hop is tapped", async () => {
  await using server = rawServer((path) =>
    path === "/start"
      ? [
        "HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
      ]
      : ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"]
  );
  const ended: HttpExchangeEnd[] = [];
  const tap: HttpTap = () => ({
    end: (end) => {
      ended.push(end);
      throw new Error("from end()");
    },
  });
  const [result] = await fetchAll([`${server.base}/start`], { tap });
  assert(result?.ok, String(!result?.ok && result?.error));
  assertEquals(decoder.decode(result.response.body), "ok");
  assertEquals(ended.map((e) => [e.url, e.ok]), [
    [`${server.base}/start`, true],
    [`${server.base}/next`, true],
  ]);
});

Deno.test("fetchAll() tap with async callbacks that reject: the rejections are ignored (not unhandled), and the results stand", async () => {
  await using server = rawServer(() => [
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
  ]);
  const calls: string[] = [];
  const reject = (name: string) => async () => {
    calls.push(name);
    await Promise.resolve();
    throw new Error(`from ${name}`);
  };
  const exchangeTap: HttpTap = () => ({
    request: reject("request"),
    response: reject("response"),
    end: reject("end"),
  });
  // Typed to return the exchange's callbacks; an async tap returns a promise.
  const asyncTap = reject("tap") as unknown as HttpTap;
  for (const tap of [exchangeTap, asyncTap]) {
    const [result] = await fetchAll([`${server.base}/a`], { tap });
    assert(result?.ok, String(!result?.ok && result?.error));
    assertEquals(decoder.decode(result.response.body), "ok");
  }
  // A rejection left unhandled would fail this test (and end a process).
  await new Promise((r) => setTimeout(r, 10));
  assertEquals(calls, ["request", "response", "end", "tap"]);
});

Deno.test("fetchAll() tap over a reused keep-alive conn the server closed unanswered: the stale exchange ends ok false, the replay is an exchange of its own", async () => {
  await using server = keepAliveServer(
    async ({ conn, connIndex, requestOnConn }) => {
      // The first conn answers its first request, then closes on the second
      // without a byte: that request is replayed on a new conn.
      if (connIndex === 0 && requestOnConn === 1) return "close";
      const body = connIndex === 0 ? "first" : "second";
      await writeSplit(
        conn,
        `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
      return "keep";
    },
  );
  const { tap, exchanges } = recorder();
  const results = await fetchAll([server.url("/a"), server.url("/b")], {
    tap,
    concurrency: 1,
  });
  assertEquals(
    results.map((r) => r.ok && decoder.decode(r.response.body)),
    ["first", "second"],
  );
  assertEquals(server.connections, 2);
  assertEquals(exchanges.map((e) => [e.info.url, e.end?.ok]), [
    [server.url("/a"), true],
    [server.url("/b"), false],
    [server.url("/b"), true],
  ]);
  assertInstanceOf(exchanges[1]!.end?.error, HttpParseError);
  assertEquals(exchanges[1]!.response, []);
  // The same request went out twice, whole each time.
  assertEquals(concat(exchanges[1]!.request), concat(exchanges[2]!.request));
  assertEquals(
    decoder.decode(concat(exchanges[2]!.response)),
    "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond",
  );
});

Deno.test("fetchAll() tap sees a large Content-Length body whole, and opens one exchange per redirect hop", async () => {
  const big = new Uint8Array(300_000).map((_, i) => i % 251);
  await using server = rawServer((path) =>
    path === "/start"
      ? [
        "HTTP/1.1 302 Found\r\nLocation: /big\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
      ]
      : [
        `HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\nConnection: close\r\n\r\n`,
        big.subarray(0, 100_000),
        big.subarray(100_000),
      ]
  );
  const { tap, exchanges } = recorder();
  const [result] = await fetchAll([`${server.base}/start`], { tap });
  assert(result?.ok);
  assertEquals(result.response.body, big);
  assertEquals(exchanges.map((e) => e.info.url), [
    `${server.base}/start`,
    `${server.base}/big`,
  ]);
  assertEquals(exchanges.map((e) => e.end?.ok), [true, true]);
  assertEquals(concat(exchanges[0]!.request), server.received[0]);
  assertEquals(concat(exchanges[1]!.request), server.received[1]);
  const response = concat(exchanges[1]!.response);
  const headEnd = indexOf(response, encoder.encode("\r\n\r\n")) + 4;
  assertEquals(response.subarray(headEnd), big);
});

/**
 * What a tap is handed, taken by a consumer slower than loopback: 256 KiB
 * every `everyMs`. Its `ready()` gives a promise past 512 KiB queued, settled
 * once the consumer is back within 256 KiB.
 */
function slowConsumer(everyMs: number) {
  let drained: (() => void) | null = null;
  const consumer = {
    queued: 0,
    peak: 0,
    asked: 0,
    handed(bytes: Uint8Array): void {
      consumer.queued += bytes.length;
      consumer.peak = Math.max(consumer.peak, consumer.queued);
    },
    ready(): Promise<void> | null {
      consumer.asked++;
      if (consumer.queued <= 512 * 1024) return null;
      return new Promise<void>((resolve) => drained = resolve);
    },
    [Symbol.dispose](): void {
      clearInterval(timer);
    },
  };
  const timer = setInterval(() => {
    consumer.queued = Math.max(0, consumer.queued - 256 * 1024);
    if (consumer.queued <= 256 * 1024 && drained !== null) {
      drained();
      drained = null;
    }
  }, everyMs);
  return consumer;
}

Deno.test("fetchAll() tap whose ready() returns a promise holds the reads: a consumer draining 256 KiB per 60 ms keeps under 1 MiB of a 2 MiB body, and the 40 ms idle timeout does not fire while it waits", async () => {
  const size = 2 * 1024 * 1024;
  const body = new Uint8Array(size).map((_, i) => (i * 7) % 251);
  await using server = rawServer(() => [
    `HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`,
    body,
  ]);
  const kept: Uint8Array[] = [];
  // ~4 MiB/s.
  using consumer = slowConsumer(60);
  const tap: HttpTap = () => ({
    response: (bytes) => {
      kept.push(bytes.slice());
      consumer.handed(bytes);
    },
    ready: consumer.ready,
  });
  const [result] = await fetchAll([`${server.base}/`], {
    tap,
    idleTimeout: 40,
  });
  assert(result?.ok, String((result as { error?: unknown }).error));
  assertEquals(result.response.body, body);
  const response = concat(kept);
  const headEnd = indexOf(response, encoder.encode("\r\n\r\n")) + 4;
  assertEquals(response.subarray(headEnd), body);
  // One read past the threshold at most: the conn reads up to 64 KiB at a time.
  assert(
    consumer.peak < 1024 * 1024,
    `${consumer.peak} bytes queued at the peak`,
  );
  assert(consumer.asked > 0, "ready() was asked");
});

Deno.test("fetchAll() tap whose ready() returns a promise holds a streamed upload: a consumer draining 256 KiB per 30 ms keeps under 1 MiB of a 4 MiB body queued, and the server gets it whole", async () => {
  const size = 4 * 1024 * 1024;
  const piece = 64 * 1024;
  const upload = new Uint8Array(size).map((_, i) => (i * 13) % 251);
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      const got = new Uint8Array(await req.arrayBuffer());
      const same = got.length === size && got.every((b, i) => b === upload[i]);
      return new Response(`${got.length} ${same}`);
    },
  );
  let offset = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= size) return controller.close();
      controller.enqueue(upload.slice(offset, offset += piece));
    },
  }, { highWaterMark: 0 });
  let requestBytes = 0;
  // ~8 MiB/s.
  using consumer = slowConsumer(30);
  const tap: HttpTap = () => ({
    request: (bytes) => {
      requestBytes += bytes.length;
      consumer.handed(bytes);
    },
    ready: consumer.ready,
  });
  const [result] = await fetchAll([
    { url: `http://127.0.0.1:${server.addr.port}/`, method: "POST", body },
  ], { tap, timeout: 20_000 });
  assert(result?.ok, String((result as { error?: unknown }).error));
  assertEquals(decoder.decode(result.response.body), `${size} true`);
  assert(requestBytes > size, "the tap saw the whole upload, framed");
  // A piece taken while at most 512 KiB was queued is at most 256 KiB.
  assert(
    consumer.peak < 1024 * 1024,
    `${consumer.peak} bytes queued at the peak`,
  );
  assert(consumer.asked > 0, "ready() was asked");
});

Deno.test("fetchAll() tap whose ready() throws fails that URL with the error; the crawl goes on", async () => {
  const size = 1024 * 1024;
  await using server = rawServer((path) =>
    path === "/big"
      ? [
        `HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`,
        new Uint8Array(size),
      ]
      : ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"]
  );
  const boom = new Error("tap behind");
  const tap: HttpTap = (info) => ({
    ready: () => {
      if (info.url.endsWith("/big")) throw boom;
      return null;
    },
  });
  const [big, small] = await fetchAll(
    [`${server.base}/big`, `${server.base}/small`],
    { tap },
  );
  assert(big !== undefined && !big.ok);
  assertEquals(big.error, boom);
  assert(small?.ok);
});

Deno.test("fetchAll() tap ends a failed exchange with ok false and the error", async () => {
  await using server = rawServer(() => [
    "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part",
  ]);
  const { tap, exchanges } = recorder();
  const [result] = await fetchAll([`${server.base}/`], { tap });
  assert(result !== undefined && !result.ok);
  assertEquals(exchanges.length, 1);
  assertEquals(exchanges[0]!.end?.ok, false);
  assertEquals(exchanges[0]!.end?.error, result.error);
  assertEquals(
    decoder.decode(concat(exchanges[0]!.response)),
    "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part",
  );
});

Deno.test("fetchAll() tap gets the bytes a failing parse took, up to the byte that failed, even in the read that brought the head", async () => {
  const head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  const sent: Record<string, string> = {
    // The chunk after the first has a size that is not hex.
    "/bad-chunk": head + "3\r\nabc\r\n4z\r\nnope\r\n0\r\n\r\n",
    // Read to close, past the 100-byte limit.
    "/too-large": "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" +
      "x".repeat(300),
  };
  await using server = rawServer((path) => [sent[path]!]);
  const { tap, exchanges } = recorder();
  const results = await fetchAll(
    Object.keys(sent).map((path) => `${server.base}${path}`),
    { tap, maxResponseBytes: 100 },
  );
  assertEquals(
    results.map((r) => !r.ok && (r.error as HttpParseError).code),
    ["invalid-chunk-size", "body-too-large"],
  );
  const errors = results.map((r) => (r as { error: HttpParseError }).error);
  // Past the head: within the body, in the one read that brought it all.
  assertEquals(errors.map((e) => e.offset), [
    head.length + "3\r\nabc\r\n4".length,
    sent["/too-large"]!.length - 200,
  ]);
  for (const [i, path] of Object.keys(sent).entries()) {
    const exchange = exchanges.find((e) => e.info.url.endsWith(path))!;
    assertEquals(
      decoder.decode(concat(exchange.response)),
      sent[path]!.slice(0, errors[i]!.offset),
    );
    assertEquals(exchange.end?.error, errors[i]);
  }
});

Deno.test("fetchAll() tap gets nothing of a read whose first byte is the one a parse failed on: the bytes before it, which came in earlier reads, only", async () => {
  const head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  // The second read starts with a chunk size that is not hex.
  const pieces = [head + "3\r\nabc\r\n", "z\r\nnope\r\n0\r\n\r\n"];
  await using server = rawServer(() => pieces);
  const { tap, exchanges } = recorder();
  const [result] = await fetchAll([`${server.base}/`], { tap });
  assert(result !== undefined && !result.ok);
  assertInstanceOf(result.error, HttpParseError);
  assertEquals(result.error.code, "invalid-chunk-size");
  assertEquals(result.error.offset, pieces[0]!.length);
  assertEquals(decoder.decode(concat(exchanges[0]!.response)), pieces[0]);
  assertEquals(exchanges[0]!.end?.error, result.error);
});

Deno.test("fetchAll() RequestSpec.tap replaces the crawl's tap for its URL", async () => {
  await using server = rawServer(() => [
    "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
  ]);
  const crawl = recorder();
  const own = recorder();
  await fetchAll([`${server.base}/a`, {
    url: `${server.base}/b`,
    tap: own.tap,
  }], {
    tap: crawl.tap,
  });
  assertEquals(crawl.exchanges.map((e) => e.info.url), [`${server.base}/a`]);
  assertEquals(own.exchanges.map((e) => e.info.url), [`${server.base}/b`]);
});

Deno.test("fetchAll() sink gets the final body only, across a redirect and a retried status", async () => {
  let calls = 0;
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/moved") {
        return new Response("moved body", {
          status: 301,
          headers: { location: "/busy" },
        });
      }
      return ++calls === 1
        ? new Response("busy body", { status: 503 })
        : new Response("final body");
    },
  );
  const chunks: Uint8Array[] = [];
  let closed = false;
  const sink = new WritableStream<Uint8Array>({
    write: (chunk) => void chunks.push(chunk.slice()),
    close: () => void (closed = true),
  });
  const [result] = await fetchAll([{
    url: `http://127.0.0.1:${server.addr.port}/moved`,
    sink,
  }], { retry: { limit: 1, baseDelay: 1 } });
  assert(result?.ok, String(!result?.ok && result?.error));
  assertEquals(result.response.status, 200);
  assertEquals(result.attempts, 2);
  assertEquals(result.response.body.length, 0);
  assertEquals(decoder.decode(concat(chunks)), "final body");
  assert(closed);
});

Deno.test("fetchAll() perOrigin.delay as a function spaces each origin's starts by its own delay", async () => {
  const starts = new Map<string, number[]>();
  const serve = (name: string) =>
    Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
      const list = starts.get(name) ?? [];
      list.push(performance.now());
      starts.set(name, list);
      return new Response("x");
    });
  await using slow = serve("slow");
  await using fast = serve("fast");
  const slowOrigin = `http://127.0.0.1:${slow.addr.port}`;
  const fastOrigin = `http://127.0.0.1:${fast.addr.port}`;
  const asked = new Set<string>();
  const urls = [0, 1, 2].flatMap((i) => [
    `${slowOrigin}/${i}`,
    `${fastOrigin}/${i}`,
  ]);
  const results = await fetchAll(urls, {
    perOrigin: {
      delay: (origin) => {
        asked.add(origin);
        return origin === slowOrigin ? 150 : 0;
      },
    },
  });
  assert(results.every((r) => r.ok));
  assertEquals(asked, new Set([slowOrigin, fastOrigin]));
  const slowStarts = starts.get("slow")!;
  const fastStarts = starts.get("fast")!;
  for (let i = 1; i < 3; i++) {
    // 150 ms at the client; at the server, the first request's connect (later
    // ones reuse the conn) may eat into the first gap.
    assert(slowStarts[i]! - slowStarts[i - 1]! >= 100, `slow gap ${i}`);
  }
  assert(slowStarts[2]! - slowStarts[0]! >= 2 * 150 - 40, "slow span");
  // The fast origin did not wait for the slow one's delay.
  assert(fastStarts[2]! - fastStarts[0]! < 140);
});

Deno.test("fetchAll() perOrigin.delay as a function whose answer is not a finite non-negative number (a string, negative, NaN, Infinity, null, an object) waits 0, as documented", async () => {
  const starts: number[] = [];
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => {
      starts.push(performance.now());
      return new Response("x");
    },
  );
  const answers: unknown[] = ["1000", -1000, NaN, Infinity, null, {
    valueOf: () => 1000,
  }];
  let asked = 0;
  const urls = answers.map((_, i) =>
    `http://127.0.0.1:${server.addr.port}/${i}`
  );
  const began = performance.now();
  const results = await fetchAll(urls, {
    concurrency: 1,
    perOrigin: { delay: () => answers[asked++ % answers.length] as number },
  });
  const took = performance.now() - began;
  assert(results.every((r) => r.ok));
  assertEquals(starts.length, answers.length);
  assert(asked >= answers.length - 1, `asked ${asked} times`);
  // Any of these read as 1000 ms would hold the crawl for a second or more.
  assert(took < 1000, `took ${took.toFixed(0)} ms`);
});

Deno.test("fetchAll() perOrigin.delay: a number that is Infinity is a RangeError before connecting; a function that throws fails the URL that was to start, and the crawl goes on", async () => {
  let served = 0;
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => {
      served++;
      return new Response("x");
    },
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  await assertRejects(
    () => fetchAll([`${base}/`], { perOrigin: { delay: Infinity } }),
    RangeError,
    "perOrigin.delay must be a finite non-negative number",
  );
  assertEquals(served, 0);
  const failure = new Error("robots lookup failed");
  let asked = 0;
  const results = await fetchAll([`${base}/0`, `${base}/1`, `${base}/2`], {
    concurrency: 1,
    perOrigin: {
      delay: () => {
        // The second start's answer throws.
        if (asked++ === 1) throw failure;
        return 0;
      },
    },
  });
  assert(results[0]?.ok);
  assertEquals(results[1]?.ok === false && results[1].error, failure);
  assert(results[2]?.ok);
  assertEquals(served, 2);
});

Deno.test("fetchAll() sink still gets the body of a redirect that turns out to be the answer (an unusable Location)", async () => {
  await using server = rawServer(() => [
    "HTTP/1.1 302 Found\r\nLocation: http://[bad\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot moved",
  ]);
  const chunks: Uint8Array[] = [];
  const { promise: closed, resolve } = Promise.withResolvers<void>();
  const sink = new WritableStream<Uint8Array>({
    write: (chunk) => void chunks.push(chunk.slice()),
    close: () => resolve(),
  });
  const [result] = await fetchAll([{ url: `${server.base}/`, sink }]);
  assert(result?.ok);
  assertEquals(result.response.status, 302);
  assertEquals(result.response.body.length, 0);
  await closed;
  assertEquals(decoder.decode(concat(chunks)), "not moved");
});

Deno.test("fetchAll() sink outlives an attempt that failed before its body, and is aborted once the URL fails for good", async () => {
  let connections = 0;
  // The first connection closes without a byte (a transient error, retried);
  // the second answers.
  await using server = rawServer(() =>
    ++connections === 1 ? [] : [
      "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecond",
    ]
  );
  const chunks: Uint8Array[] = [];
  const sink = new WritableStream<Uint8Array>({
    write: (chunk) => void chunks.push(chunk.slice()),
  });
  const [result] = await fetchAll([{ url: `${server.base}/`, sink }], {
    retry: { limit: 1, baseDelay: 1 },
  });
  assert(result?.ok, String(!result?.ok && result?.error));
  assertEquals(result.attempts, 2);
  assertEquals(decoder.decode(concat(chunks)), "second");

  const aborted: unknown[] = [];
  const failing = new WritableStream<Uint8Array>({
    abort: (reason) => void aborted.push(reason),
  });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const refused = `http://127.0.0.1:${listener.addr.port}/`;
  listener.close();
  const [failed] = await fetchAll([{ url: refused, sink: failing }], {
    retry: { limit: 1, baseDelay: 1 },
  });
  assert(failed !== undefined && !failed.ok);
  assertEquals(failed.attempts, 2);
  assertEquals(aborted, [failed.error]);
});
