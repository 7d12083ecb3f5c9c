/**
 * Client paths that no other test reached (found with `deno test --coverage`):
 * each test names the path it takes, and takes it through the public API on
 * loopback sockets, or through the internal symbol the code is for.
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { stub } from "@std/testing/mock";
import zlib from "node:zlib";
import {
  DefaultSelector,
  EVENT_READ,
  EVENT_WRITE,
  fetchAll,
  HttpClient,
  HttpParseError,
} from "../mod.ts";
import { ContentDecoder, decodeBody } from "../client/_decode.ts";
import { ENGINES } from "../client/_decode_engines.ts";
import { ZstdFrames } from "../client/_decode_zstd_frames.ts";
import { matchesNoProxy } from "../client/_proxy.ts";
import { rawServer, writeSplit } from "./_raw_http.ts";
import {
  failed,
  ok,
  readHead,
  text,
  withProxyEnv,
  writeAll,
} from "./_client_util.ts";
import { Rng, selectUntil, tempDir } from "./_net.ts";

const own = (bytes: Uint8Array): Uint8Array => new Uint8Array(bytes);
const zstdCompressSync = (
  zlib as unknown as {
    zstdCompressSync(data: Uint8Array, options?: object): Uint8Array;
  }
).zstdCompressSync;
const C = zlib.constants as unknown as Record<string, number>;
const LENGTH = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello, world";

// --- fetchAll(): the source, routes, retries and redirects -----------------------

Deno.test("fetchAll() fails a null item of the source with TypeError naming null", async () => {
  const [result] = await fetchAll([null as unknown as string]);
  const error = failed(result);
  assertInstanceOf(error, TypeError);
  assertStringIncludes(error.message, "received null");
});

Deno.test('fetchAll() with proxy "env" fails only the URL whose environment proxy cannot be used, with TypeError', async () => {
  await using server = rawServer(async ({ conn }) => {
    await writeSplit(conn, LENGTH);
    return "keep";
  });
  const results = await withProxyEnv(
    { http_proxy: "https://127.0.0.1:1", no_proxy: "localhost" },
    () =>
      fetchAll([
        server.url("/"),
        server.url("/").replace("127.0.0.1", "localhost"),
      ], {
        proxy: "env",
      }),
  );
  const error = failed(results[0]);
  assertInstanceOf(error, TypeError);
  assertStringIncludes(error.message, "Cannot use");
  assertEquals(text(ok(results[1]).body), "hello, world");
  assertEquals(server.requests, 1);
});

Deno.test("fetchAll() retries a GET whose redirect led to a 503, from its first URL, and counts the attempt", async () => {
  const lines: string[] = [];
  let next = 0;
  await using server = rawServer(async ({ conn, path, head }) => {
    lines.push(head.split("\r\n")[0]!);
    if (path === "/start") {
      await writeSplit(
        conn,
        "HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 0\r\n\r\n",
      );
    } else if (next++ === 0) {
      await writeSplit(
        conn,
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
      );
    } else {
      await writeSplit(conn, LENGTH);
    }
    return "keep";
  });
  const [result] = await fetchAll([server.url("/start")], {
    retry: { limit: 1, baseDelay: 0 },
  });
  assertEquals(text(ok(result).body), "hello, world");
  assertEquals(result!.attempts, 2);
  assertEquals(lines, [
    "GET /start HTTP/1.1",
    "GET /next HTTP/1.1",
    "GET /start HTTP/1.1",
    "GET /next HTTP/1.1",
  ]);
});

Deno.test("fetchAll() fails a redirect with TimedOut when the clock passes the total timeout between reading the 3xx and following it", async () => {
  await using server = rawServer(async ({ conn }) => {
    await writeSplit(
      conn,
      "HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 0\r\n\r\n",
    );
    return "keep";
  });
  // The client read the 302 in time; the crawl's own clock, read after, is past
  // the deadline: the jump stands for a loop held up between the two.
  const now = performance.now.bind(performance);
  let skew = 0;
  using _clock = stub(performance, "now", () => now() + skew);
  const handle = HttpClient.prototype.handle;
  using _handle = stub(
    HttpClient.prototype,
    "handle",
    function (this: HttpClient, mask: number) {
      handle.call(this, mask);
      if (this.state === "done" && this.response?.status === 302) {
        skew += 10_000;
      }
    },
  );
  const [result] = await fetchAll([server.url("/r")], { timeout: 5_000 });
  const error = failed(result);
  assertInstanceOf(error, Deno.errors.TimedOut);
  assertStringIncludes(error.message, "passed before redirect 1");
  assertEquals(server.requests, 1, "the next hop was never sent");
});

Deno.test("fetchAll() sends a RequestSpec's unixSocket or proxy when the crawl sets neither", async () => {
  using dir = tempDir();
  const path = dir.path("s.sock");
  const unix = Deno.listen({ transport: "unix", path });
  const unixServed = (async () => {
    const conn = await unix.accept();
    await readHead(conn);
    await writeAll(conn, LENGTH);
    conn.close();
  })();
  // The proxy is a raw server: an absolute-form request line shows it was used.
  let proxiedLine = "";
  await using proxy = rawServer(async ({ conn, head }) => {
    proxiedLine = head.split("\r\n")[0]!;
    await writeSplit(conn, LENGTH);
    return "keep";
  });
  try {
    const results = await fetchAll([
      { url: "http://over.unix/a", unixSocket: path },
      { url: "http://via.proxy/b", proxy: proxy.url() },
    ], { keepAlive: false });
    assertEquals(text(ok(results[0]).body), "hello, world");
    assertEquals(text(ok(results[1]).body), "hello, world");
    assertEquals(proxiedLine, "GET http://via.proxy/b HTTP/1.1");
  } finally {
    unix.close();
    await unixServed;
  }
});

Deno.test("fetchAll() sends a RequestSpec with headers but no method with the crawl's method", async () => {
  let line = "";
  await using server = rawServer(async ({ conn, head }) => {
    line = head.split("\r\n")[0]!;
    await writeSplit(conn, LENGTH);
    return "keep";
  });
  const [result] = await fetchAll([
    { url: server.url("/x"), headers: { "x-a": "1" } },
  ], { method: "DELETE" });
  ok(result);
  assertEquals(line, "DELETE /x HTTP/1.1");
});

Deno.test("HttpClient throws TypeError for a proxy or unixSocket option that is not a string", () => {
  assertThrows(
    () => new HttpClient("http://127.0.0.1:1/", { proxy: 42 as never }),
    TypeError,
    'expected a URL string, a URL or "env", received number',
  );
  assertThrows(
    () => new HttpClient("http://127.0.0.1:1/", { unixSocket: 42 as never }),
    TypeError,
    "expected a non-empty path, received number",
  );
});

Deno.test("HttpClient, fetchAll() and a RequestSpec throw TypeError for a tap that is not a function, naming what it is", async () => {
  assertThrows(
    () => new HttpClient("http://127.0.0.1:1/", { tap: 42 as never }),
    TypeError,
    "Cannot fetch: tap must be a function",
  );
  const cases: [unknown, string][] = [
    [null, "received null"],
    ["x", "received string"],
    [{}, "received an object (Object)"],
    [Object.create(null), "received an object (no prototype)"],
  ];
  for (const [tap, named] of cases) {
    const error = await assertRejects(
      () => fetchAll([], { tap: tap as never }),
      TypeError,
      "Cannot fetch: tap must be a function",
    );
    assertStringIncludes(error.message, named);
    // A RequestSpec's own tap fails its URL only.
    const [result] = await fetchAll([
      { url: "http://127.0.0.1:1/", tap: tap as never },
    ]);
    const failure = failed(result);
    assertInstanceOf(failure, TypeError);
    assertStringIncludes(failure.message, named);
  }
});

// --- HttpClient through a CONNECT tunnel, step by step ----------------------------

/** A proxy on loopback whose every move the test makes. */
function scriptedProxy() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  return {
    url: `http://127.0.0.1:${listener.addr.port}`,
    accepted,
    async [Symbol.asyncDispose]() {
      listener.close();
      try {
        (await accepted).close();
      } catch {
        // Never accepted, or closed already.
      }
    },
  };
}

Deno.test("HttpClient.handle() during a CONNECT waits on a mask without its event, an empty read and a split answer", async () => {
  await using proxy = scriptedProxy();
  using sel = new DefaultSelector();
  const client = new HttpClient("https://127.0.0.1:1/", {
    proxy: proxy.url,
    timeout: 10_000,
  });
  try {
    // Connecting to the proxy: a mask without EVENT_WRITE changes nothing.
    client.handle(0);
    assertEquals([client.state, client.events], ["connecting", EVENT_WRITE]);
    sel.register(client.pollable, client.events);
    await selectUntil(sel, (batch) => batch.length > 0);
    client.handle(EVENT_WRITE); // sends the CONNECT
    assertEquals([client.state, client.events], ["connecting", EVENT_READ]);
    const peer = await proxy.accepted;
    assertStringIncludes(await readHead(peer), "CONNECT 127.0.0.1:1 HTTP/1.1");
    // Waiting for the answer: a write mask, and a read mask with nothing read.
    client.handle(EVENT_WRITE);
    client.handle(EVENT_READ);
    assertEquals([client.state, client.events], ["connecting", EVENT_READ]);
    // The first half of the answer alone: not enough to go on.
    await writeAll(peer, "HTTP/1.1 200 Connection");
    sel.modify(client.pollable, client.events);
    await selectUntil(sel, (batch) => batch.length > 0);
    client.handle(EVENT_READ);
    assertEquals([client.state, client.events], ["connecting", EVENT_READ]);
    // The rest: TLS starts, and waits for its handshake.
    await writeAll(peer, " established\r\n\r\n");
    await selectUntil(sel, (batch) => batch.length > 0);
    client.handle(EVENT_READ);
    assertEquals([client.state, client.events], ["connecting", EVENT_WRITE]);
    client.handle(0);
    assertEquals([client.state, client.events], ["connecting", EVENT_WRITE]);
  } finally {
    sel.unregister(client.pollable);
    client.close();
  }
  assertInstanceOf(client.error, Deno.errors.Interrupted);
});

for (
  const [what, answer, code] of [
    ["closes before answering", "", "empty-response"],
    [
      "closes in the middle of its answer",
      "HTTP/1.1 200 Conn",
      "truncated-head",
    ],
    ["answers with garbage", "garbage\r\n\r\n", "invalid-status-line"],
  ] as const
) {
  Deno.test(`fetchAll() through a proxy that ${what} to CONNECT fails with HttpParseError`, async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const served = (async () => {
      const conn = await listener.accept();
      await readHead(conn);
      if (answer !== "") await writeAll(conn, answer);
      if (code !== "invalid-status-line") conn.close();
      else {
        // Held open: the client closes it once the answer failed to parse.
        await conn.read(new Uint8Array(16)).catch(() => null);
        conn.close();
      }
    })();
    try {
      const [result] = await fetchAll(["https://127.0.0.1:1/"], {
        proxy: `http://127.0.0.1:${listener.addr.port}`,
        timeout: 10_000,
      });
      const error = failed(result);
      assertInstanceOf(error, HttpParseError);
      assertEquals(error.code, code);
    } finally {
      listener.close();
      await served;
    }
  });
}

// --- Content decoding ---------------------------------------------------------------

Deno.test("fetchAll() decodes a zstd body with a content checksum, as the zstd CLI writes it", async () => {
  const data = new Rng(3).bytes(50_000);
  const coded = own(
    zstdCompressSync(data, { params: { [C.ZSTD_c_checksumFlag!]: 1 } }),
  );
  // The frame header's descriptor has the checksum flag.
  assertEquals(coded[4]! & 0x04, 0x04);
  await using server = rawServer(async ({ conn }) => {
    await writeSplit(
      conn,
      `HTTP/1.1 200 OK\r\nContent-Encoding: zstd\r\nContent-Length: ${coded.length}\r\n\r\n`,
    );
    await writeSplit(conn, coded, 1000);
    return "keep";
  });
  const [result] = await fetchAll([server.url()]);
  assertEquals(ok(result).body, data);
});

Deno.test("fetchAll() fails with body-too-large when the outer of two codings decodes past maxResponseBytes", async () => {
  // gzip then br: br is undone first, and its output (stored gzip blocks of
  // 300 KB) passes the limit before gzip gets to decode it, while the wire
  // carries a few hundred bytes.
  const inner = own(zlib.gzipSync(new Uint8Array(300_000), { level: 0 }));
  const coded = own(zlib.brotliCompressSync(inner));
  const limit = 200_000;
  assert(coded.length < 1_000 && inner.length > limit);
  await using server = rawServer(async ({ conn }) => {
    await writeSplit(
      conn,
      `HTTP/1.1 200 OK\r\nContent-Encoding: gzip, br\r\nContent-Length: ${coded.length}\r\n\r\n`,
    );
    await writeSplit(conn, coded);
    return "close";
  });
  const [result] = await fetchAll([server.url()], {
    maxResponseBytes: 400_000,
  });
  assertEquals(ok(result).body, new Uint8Array(300_000));
  const [limited] = await fetchAll([server.url()], { maxResponseBytes: limit });
  assertInstanceOf(failed(limited), HttpParseError);
  const error = failed(limited) as HttpParseError;
  assertEquals(error.code, "body-too-large");
  assertStringIncludes(error.message, `br body decodes to more than ${limit}`);
});

Deno.test("ContentDecoder.read() undoes two codings whose middle stream fills whole 256 KiB slices", () => {
  const data = new Rng(4).bytes(700_000);
  const coded = own(zlib.gzipSync(own(zlib.gzipSync(data))));
  assertEquals(decodeBody(coded, "gzip, gzip", Infinity), data);
});

Deno.test("ContentDecoder.read() fails a corrupt inner coding of two with invalid-content-encoding", () => {
  const coded = own(zlib.gzipSync(new TextEncoder().encode("not deflate")));
  const error = assertThrows(
    () => decodeBody(coded, "br, gzip", Infinity),
    HttpParseError,
  );
  assertEquals(error.code, "invalid-content-encoding");
  assertStringIncludes(error.message, "br content");
});

Deno.test("ContentDecoder.read() fails a deflate coding whose input, another coding's output, is empty", () => {
  const coded = own(zlib.gzipSync(new Uint8Array(0)));
  const error = assertThrows(
    () => decodeBody(coded, "deflate, gzip", Infinity),
    HttpParseError,
  );
  assertEquals(error.code, "invalid-content-encoding");
  assertStringIncludes(error.message, "deflate content");
});

Deno.test("ContentDecoder.end() is idempotent, and does nothing after close()", () => {
  const coded = own(zlib.gzipSync(new TextEncoder().encode("hello")));
  const decoder = ContentDecoder.for("gzip", Infinity)!;
  decoder.write(coded);
  decoder.end();
  decoder.end();
  assertEquals(text(decoder.read()!), "hello");
  assertEquals(decoder.read(), null);
  assert(decoder.finished);
  const closed = ContentDecoder.for("gzip", Infinity)!;
  closed.write(coded.subarray(0, 5));
  closed.close();
  closed.end();
  assertEquals(closed.read(), null);
  assertEquals(closed.finished, false);
});

Deno.test("ContentDecoder.read() fails a zstd frame header with the reserved bit, fed byte by byte", () => {
  const coded = own(zstdCompressSync(new TextEncoder().encode("x".repeat(99))));
  coded[4]! |= 0x08;
  const decoder = ContentDecoder.for("zstd", Infinity)!;
  const error = assertThrows(() => {
    for (const byte of coded) {
      decoder.write(new Uint8Array([byte]));
      while (decoder.read()?.length) { /* drain */ }
    }
  }, HttpParseError);
  assertEquals(error.code, "invalid-content-encoding");
});

Deno.test("ENGINES engines: close() is idempotent, run() after it throws, and deflate is not complete before any input", () => {
  // deflate picks its native engine on its first input: nothing to close before.
  for (const name of ["gzip", "x-gzip", "br", "zstd"]) {
    const engine = ENGINES[name]!();
    engine.close();
    engine.close();
    const out = new Uint8Array(16);
    assertThrows(
      () => engine.run(new Uint8Array(4), 0, 4, out, 0, 16, false),
      Error,
      "the decoder is closed",
    );
  }
  assertEquals(ENGINES.deflate!().complete(), false);
});

Deno.test("ZstdFrames.feed() throws for an unknown magic and a reserved block type", () => {
  assertThrows(
    () => new ZstdFrames().feed(new Uint8Array([1, 2, 3, 4])),
    Error,
    "unknown frame magic number",
  );
  const coded = own(zstdCompressSync(new TextEncoder().encode("x".repeat(99))));
  // Magic (4), descriptor 0 and window byte: the block header starts at 6.
  assertEquals(coded[4], 0);
  coded[6]! |= 0b110;
  assertThrows(
    () => new ZstdFrames().feed(coded),
    Error,
    "reserved block type",
  );
});

// --- NO_PROXY -------------------------------------------------------------------------

Deno.test("matchesNoProxy() matches a full IPv6 address, and a port-less URL of a scheme without a default port", () => {
  assert(
    matchesNoProxy(new URL("http://[1:2:3:4:5:6:7:8]/"), "1:2:3:4:5:6:7:8"),
  );
  assert(
    !matchesNoProxy(new URL("http://[1:2:3:4:5:6:7:8]/"), "1:2:3:4:5:6:7:9"),
  );
  assert(matchesNoProxy(new URL("foo://example.com/"), "example.com"));
  assert(!matchesNoProxy(new URL("foo://example.com/"), "example.com:80"));
});

Deno.test("fetchAll() with a crawl-wide unixSocket sends a RequestSpec that names its own proxy over the socket still (a Unix socket wins, as in curl)", async () => {
  using dir = tempDir();
  const path = dir.path("s.sock");
  const unix = Deno.listen({ transport: "unix", path });
  const lines: string[] = [];
  const unixServed = (async () => {
    for (let i = 0; i < 3; i++) {
      const conn = await unix.accept();
      lines.push((await readHead(conn)).split("\r\n")[0]!);
      await writeAll(conn, LENGTH);
      conn.close();
    }
  })();
  await using proxy = rawServer(async ({ conn }) => {
    await writeSplit(conn, LENGTH);
    return "keep";
  });
  try {
    const results = await fetchAll([
      { url: "http://a.test/spec-proxy", proxy: proxy.url() },
      { url: "http://a.test/plain" },
    ], { unixSocket: path, keepAlive: false, concurrency: 1 });
    for (const r of results) ok(r);
    assertEquals(lines, ["GET /spec-proxy HTTP/1.1", "GET /plain HTTP/1.1"]);
    assertEquals(proxy.requests, 0);
    // And the other way round: a crawl-wide proxy, a RequestSpec's unixSocket.
    const [viaSocket] = await fetchAll([
      { url: "http://b.test/spec-socket", unixSocket: path },
    ], { proxy: proxy.url(), keepAlive: false });
    ok(viaSocket);
    assertEquals(lines[2], "GET /spec-socket HTTP/1.1");
    assertEquals(proxy.requests, 0);
  } finally {
    unix.close();
    await unixServed.catch(() => {});
  }
});

Deno.test("fetchAll() writes a br body to a slow sink in order, waiting on the sink for the output br held back until the body ended", async () => {
  // Brotli keeps output back when one run takes all the input and fills the
  // output slice: the 982 bytes on the wire give one 256 KiB slice, and the
  // rest of the 3 MB only once the body ended. That rest then fills the sink
  // past its 512 KiB mark, and the client waits for it before finishing.
  const data = new Uint8Array(3_000_000);
  for (let i = 0; i < data.length; i++) {
    data[i] = (i * 7919) % 251 < 50 ? i & 255 : 65;
  }
  const coded = own(zlib.brotliCompressSync(data));
  assert(coded.length < 4096, `${coded.length} bytes on the wire`);
  await using server = rawServer(async ({ conn }) => {
    await writeSplit(
      conn,
      `HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: ${coded.length}\r\n\r\n`,
    );
    await writeSplit(conn, coded);
    return "keep";
  });
  const chunks: Uint8Array[] = [];
  const sink = new WritableStream<Uint8Array>({
    async write(chunk) {
      await new Promise((r) => setTimeout(r, 1));
      chunks.push(chunk.slice());
    },
  }, new ByteLengthQueuingStrategy({ highWaterMark: 512 * 1024 }));
  const [result] = await fetchAll([{ url: server.url(), sink }]);
  assertEquals(ok(result).body.length, 0);
  const got = new Uint8Array(data.length);
  let at = 0;
  for (const chunk of chunks) {
    got.set(chunk, at);
    at += chunk.length;
  }
  assertEquals(at, data.length);
  assert(got.every((byte, i) => byte === data[i]), "the bytes differ");
});

Deno.test("ContentDecoder abandoned without close() has its native state freed once collected", async () => {
  // In a child with gc() exposed: count the native brotli handles closed while
  // decoders that were never closed are collected.
  const decode = new URL("../client/_decode.ts", import.meta.url).href;
  const code = `
    import zlib from "node:zlib";
    import { ContentDecoder } from ${JSON.stringify(decode)};
    const proto = Object.getPrototypeOf(zlib.createBrotliDecompress()._handle);
    let closed = 0;
    const close = proto.close;
    proto.close = function () { closed++; return close.call(this); };
    const coded = new Uint8Array(zlib.brotliCompressSync(new Uint8Array(1e5)));
    (() => {
      for (let i = 0; i < 20; i++) {
        const decoder = ContentDecoder.for("br", Infinity);
        decoder.write(coded.subarray(0, 20));
        decoder.read();
      }
    })();
    const before = closed;
    for (let i = 0; i < 50 && closed - before < 20; i++) {
      globalThis.gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    console.log(closed - before);
  `;
  const { code: status, stdout, stderr } = await new Deno.Command(
    Deno.execPath(),
    {
      args: ["eval", "--v8-flags=--expose-gc", code],
      stdout: "piped",
      stderr: "piped",
    },
  ).output();
  assertEquals(status, 0, new TextDecoder().decode(stderr));
  const freed = Number(new TextDecoder().decode(stdout).trim());
  assert(freed > 0, `${freed} of 20 abandoned decoders freed`);
});
