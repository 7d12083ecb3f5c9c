/**
 * Tests of the crawl CLI's WARC writer (examples/crawl/warc.ts): exchanges with a
 * raw HTTP/1.1 server on 127.0.0.1 (content-length, chunked with extensions and
 * trailers, gzip-encoded, 5 MiB, interim 100, HEAD, read-to-close, POST) recorded
 * byte for byte, then read back with Webrecorder's warcio.js (its parser and its
 * `warcio index` CLI), digests recomputed independently (WebCrypto SHA-1 and the
 * `base32-encode` package), and files cut short by a kill or a full disk.
 *
 * @module
 */
import {
  assert,
  assertEquals,
  assertGreater,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { gunzipSync, gzipSync } from "node:zlib";
import { WARCParser } from "npm:warcio@2.4.11";
import { WarcWriter } from "../examples/crawl/warc.ts";
import { warcTap } from "../examples/crawl/warc_tap.ts";
import { fetchAll, type HttpParseError } from "../mod.ts";
import { DiskError } from "../examples/crawl/disk_error.ts";
import { concat, latin1Bytes as latin1, splitEvery } from "./_net.ts";
import { sha1, warcioIndex } from "./_warc.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A seeded PRNG (mulberry32), so a failure is reproducible. */
function randomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = (t ^ (t >>> 14)) >>> 24;
  }
  return out;
}

function chunked(
  entity: Uint8Array,
  size: number,
  extension = "",
  trailer = "",
): Uint8Array {
  const parts = [];
  for (let i = 0; i < entity.length; i += size) {
    const piece = entity.subarray(i, i + size);
    parts.push(
      latin1(`${piece.length.toString(16)}${extension}\r\n`),
      piece,
      latin1("\r\n"),
    );
  }
  parts.push(latin1(`0\r\n${trailer}\r\n`));
  return concat(parts);
}

/** What the server sends for a path, and what a reader must find in the WARC. */
interface Page {
  method?: string;
  requestBody?: Uint8Array;
  /** The response bytes on the wire, in the pieces the server writes. */
  wire: Uint8Array[];
  /** The entity body (transfer coding removed, content coding kept). */
  entity: Uint8Array;
  /** The content after all decoding, as warcio.js gives it (see its quirk below). */
  content: Uint8Array;
}

function pages(): Record<string, Page> {
  const small = encoder.encode("hello, warc");
  const chunkedEntity = encoder.encode("Hello, chunked world");
  const text = encoder.encode("gzip me ".repeat(5000));
  const gzipped = new Uint8Array(gzipSync(text));
  const big = randomBytes(5 * 1024 * 1024, 7);
  const page = (
    head: string,
    body: Uint8Array,
    entity: Uint8Array,
    content = entity,
    size = 65_536,
  ) => ({
    wire: [latin1(head), ...splitEvery(body, size)],
    entity,
    content,
  });
  return {
    "/small": page(
      `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${small.length}\r\n\r\n`,
      small,
      small,
    ),
    "/chunked": page(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      chunked(chunkedEntity, 7, ";name=value"),
      chunkedEntity,
      chunkedEntity,
      5,
    ),
    "/chunked-trailer": {
      ...page(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        chunked(chunkedEntity, 4, "", "X-Trailer: yes\r\n"),
        chunkedEntity,
      ),
      // warcio.js 2.4.11's de-chunker keeps the trailer section as content.
      content: concat([chunkedEntity, latin1("X-Trailer: yes\r\n\r\n")]),
    },
    "/gzip": page(
      `HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ${gzipped.length}\r\n\r\n`,
      gzipped,
      gzipped,
      text,
    ),
    "/gzip-chunked": page(
      "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
      chunked(gzipped, 1000),
      gzipped,
      text,
    ),
    "/big": page(
      `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${big.length}\r\n\r\n`,
      big,
      big,
    ),
    "/big-chunked": page(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      chunked(big, 100_000),
      big,
    ),
    "/interim": page(
      `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: ${small.length}\r\n\r\n`,
      small,
      small,
    ),
    "/head": {
      method: "HEAD",
      ...page(
        "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
        new Uint8Array(0),
        new Uint8Array(0),
      ),
    },
    "/to-close": page(
      "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n",
      small,
      small,
    ),
    "/post": {
      method: "POST",
      requestBody: encoder.encode("a=1&b=2"),
      ...page(
        `HTTP/1.1 201 Created\r\nContent-Length: ${small.length}\r\n\r\n`,
        small,
        small,
      ),
    },
  };
}

/** A raw HTTP server: reads a request head (and Content-Length body), writes the page's bytes, closes. */
function rawServer(site: Record<string, Page>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received: Uint8Array[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      (async () => {
        try {
          let buffered = new Uint8Array(0);
          const buffer = new Uint8Array(65_536);
          let headEnd = -1;
          while (headEnd < 0) {
            const n = await conn.read(buffer);
            if (n === null) return;
            buffered = concat([buffered, buffer.subarray(0, n)]);
            headEnd = decoder.decode(buffered).indexOf("\r\n\r\n");
          }
          const head = decoder.decode(buffered.subarray(0, headEnd));
          const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
          while (buffered.length < headEnd + 4 + length) {
            const n = await conn.read(buffer);
            if (n === null) break;
            buffered = concat([buffered, buffer.subarray(0, n)]);
          }
          received.push(buffered);
          const path = head.split(" ")[1]!;
          for (
            const piece of site[path]?.wire ??
              [latin1("HTTP/1.1 404 Not Found\r\n\r\n")]
          ) {
            // write() may take part of a piece: loop, or the rest is lost.
            let rest = piece;
            while (rest.length > 0) {
              rest = rest.subarray(await conn.write(rest));
            }
          }
        } finally {
          conn.close();
        }
      })();
    }
  })();
  return {
    port: listener.addr.port,
    received,
    [Symbol.asyncDispose]: async () => {
      listener.close();
      await serving;
    },
  };
}

function requestBytes(port: number, path: string, page: Page): Uint8Array {
  const body = page.requestBody ?? new Uint8Array(0);
  const head =
    `${page.method ?? "GET"} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
    `User-Agent: crawl_warc_test\r\nAccept-Encoding: gzip\r\n` +
    (body.length > 0 ? `Content-Length: ${body.length}\r\n` : "") +
    "Connection: close\r\n\r\n";
  return concat([latin1(head), body]);
}

/** Fetches over a raw TCP conn, handing the response to the writer as it arrives. */
async function record(
  warc: WarcWriter,
  port: number,
  path: string,
  page: Page,
) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const sent = requestBytes(port, path, page);
    // write() may take part of a large request body: send every byte.
    for (let at = 0; at < sent.length;) {
      at += await conn.write(sent.subarray(at));
    }
    const received: Uint8Array[] = [];
    const response = async function* () {
      const buffer = new Uint8Array(16_384);
      for (;;) {
        const n = await conn.read(buffer);
        if (n === null) return;
        received.push(buffer.slice(0, n));
        // The same buffer is reused at once: the writer must have copied it.
        yield buffer.subarray(0, n);
      }
    };
    const ids = await warc.writeExchange({
      url: `http://127.0.0.1:${port}${path}#fragment`,
      ipAddress: "127.0.0.1",
      date: new Date("2026-11-27T10:00:00.123Z"),
      request: sent,
      response: response(),
    });
    return { ids, sent, received: concat(received) };
  } finally {
    conn.close();
  }
}

interface ReadRecord {
  type: string;
  headers: Map<string, string>;
  http: { statusline: string } | null;
  raw: Uint8Array;
  content: Uint8Array;
}

/** Every record of a WARC file as warcio.js parses it. */
async function readWarc(bytes: Uint8Array): Promise<ReadRecord[]> {
  const parser = new WARCParser(ReadableStream.from([bytes]));
  const records: ReadRecord[] = [];
  for await (const r of parser) {
    const headers = new Map<string, string>([
      ...r.warcHeaders.headers.entries(),
    ]);
    const http = r.httpHeaders
      ? { statusline: r.httpHeaders.statusline }
      : null;
    // warcio.js reads a record once: raw payload, then decoding it ourselves is
    // circular, so the content comes from a second parse below.
    records.push({
      type: r.warcType!,
      headers,
      http,
      raw: await r.readFully(false),
      content: new Uint8Array(),
    });
  }
  const again = new WARCParser(ReadableStream.from([bytes]));
  let i = 0;
  for await (const r of again) records[i++]!.content = await r.readFully(true);
  return records;
}

async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "crawl_warc_" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

Deno.test("WarcWriter.writeExchange() records exchanges warcio.js reads back with valid digests", async () => {
  const site = pages();
  await using server = rawServer(site);
  await using dir = await tempDir();
  const path = `${dir.path}/crawl.warc.gz`;
  const warc = await WarcWriter.create(path, {
    info: { isPartOf: "crawl_warc_test" },
  });
  const exchanges = [];
  for (const [urlPath, page] of Object.entries(site)) {
    exchanges.push({
      urlPath,
      page,
      ...(await record(warc, server.port, urlPath, page)),
    });
  }
  await warc.close();
  await warc.close();
  assertEquals(server.received.length, exchanges.length);

  const file = await Deno.readFile(path);
  const records = await readWarc(file);
  assertEquals(records.length, 1 + 2 * exchanges.length);
  const [info, ...rest] = records;
  assertEquals(info!.type, "warcinfo");
  assertEquals(info!.headers.get("warc-record-id"), warc.warcinfoId);
  assertEquals(info!.headers.get("content-type"), "application/warc-fields");
  assertEquals(info!.headers.get("warc-filename"), "crawl.warc.gz");
  assertStringIncludes(
    decoder.decode(info!.raw),
    "format: WARC File Format 1.1\r\n",
  );
  assertStringIncludes(
    decoder.decode(info!.raw),
    "isPartOf: crawl_warc_test\r\n",
  );

  for (const [i, exchange] of exchanges.entries()) {
    const response = rest[2 * i]!;
    const request = rest[2 * i + 1]!;
    const where = exchange.urlPath;
    const url = `http://127.0.0.1:${server.port}${where}`;
    // The response: the bytes received, exactly.
    assertEquals(response.type, "response", where);
    assertEquals(
      response.headers.get("warc-record-id"),
      exchange.ids.responseId,
    );
    assertEquals(response.headers.get("warc-target-uri"), url);
    assertEquals(response.headers.get("warc-date"), "2026-11-27T10:00:00Z");
    assertEquals(response.headers.get("warc-ip-address"), "127.0.0.1");
    assertEquals(response.headers.get("warc-warcinfo-id"), warc.warcinfoId);
    assertEquals(
      response.headers.get("content-type"),
      "application/http;msgtype=response",
    );
    assertEquals(exchange.received, concat(exchange.page.wire), where);
    assertEquals(
      Number(response.headers.get("content-length")),
      exchange.received.length,
      where,
    );
    assertEquals(
      response.headers.get("warc-block-digest"),
      await sha1(exchange.received),
      where,
    );
    assertEquals(
      response.headers.get("warc-payload-digest"),
      await sha1(exchange.page.entity),
      where,
    );
    // warcio.js's raw payload is the body as received (framing included), its
    // content the body decoded: both must be what the server sent.
    if (where === "/interim") {
      // warcio.js takes the interim 100 head for the message head and stops there
      // (the block itself is checked byte for byte below).
      assertEquals(response.http?.statusline, "HTTP/1.1 100 Continue");
    } else {
      assertEquals(response.raw, concat(exchange.page.wire.slice(1)), where);
      assertEquals(response.content, exchange.page.content, where);
    }
    // The request: the bytes sent, linked to the response.
    assertEquals(request.type, "request", where);
    assertEquals(request.headers.get("warc-record-id"), exchange.ids.requestId);
    assertEquals(
      request.headers.get("warc-concurrent-to"),
      exchange.ids.responseId,
    );
    assertEquals(request.headers.get("warc-target-uri"), url);
    assertEquals(
      request.headers.get("content-type"),
      "application/http;msgtype=request",
    );
    assertEquals(
      request.headers.get("warc-block-digest"),
      await sha1(exchange.sent),
      where,
    );
    assertEquals(
      request.headers.get("warc-payload-digest"),
      await sha1(exchange.page.requestBody ?? new Uint8Array(0)),
      where,
    );
    assertEquals(
      request.http?.statusline.split(" ")[0],
      exchange.page.method ?? "GET",
    );
  }
  // The 5 MiB bodies went through whole.
  const big = exchanges.find((e) => e.urlPath === "/big")!;
  assertEquals(big.received.length > 5 * 1024 * 1024, true);

  // warcio.js's own CLI indexes the file: one gzip member per record, each holding
  // exactly one record whose block is the bytes sent or received.
  const index = await warcioIndex(path);
  assertEquals(index.map((r) => r["warc-type"]), records.map((r) => r.type));
  for (const [i, entry] of index.entries()) {
    const member = file.subarray(
      Number(entry.offset),
      Number(entry.offset) + Number(entry.length),
    );
    const text = new Uint8Array(gunzipSync(member));
    const headerEnd =
      decoder.decode(text.subarray(0, 4096)).indexOf("\r\n\r\n") + 4;
    const length = Number(
      /Content-Length: (\d+)\r\n/.exec(
        decoder.decode(text.subarray(0, headerEnd)),
      )![1],
    );
    assertEquals(
      text.length,
      headerEnd + length + 4,
      `record ${i}: one record per member`,
    );
    assert(decoder.decode(text.subarray(0, 10)).startsWith("WARC/1.1\r\n"));
    if (i === 0) continue;
    const exchange = exchanges[Math.floor((i - 1) / 2)]!;
    assertEquals(
      text.subarray(headerEnd, headerEnd + length),
      i % 2 === 1 ? exchange.received : exchange.sent,
    );
  }
  assertEquals(
    Number(index.at(-1)!.offset) + Number(index.at(-1)!.length),
    file.length,
  );
});

Deno.test("WarcWriter.writeExchange() keeps each exchange's two records together when written concurrently", async () => {
  const site = pages();
  await using server = rawServer(site);
  await using dir = await tempDir();
  const path = `${dir.path}/concurrent.warc.gz`;
  const warc = await WarcWriter.create(path, { memoryLimit: 10_000 });
  const paths = [
    "/small",
    "/chunked",
    "/gzip",
    "/big-chunked",
    "/gzip-chunked",
    "/small",
    "/interim",
    "/big",
  ];
  const results = await Promise.all(
    paths.map((p) => record(warc, server.port, p, site[p]!)),
  );
  await warc.close();
  const records = await readWarc(await Deno.readFile(path));
  assertEquals(records.length, 1 + 2 * paths.length);
  const byResponseId = new Map(
    results.map((
      r,
      i,
    ) => [r.ids.responseId, { ...r, path: paths[i]!, page: site[paths[i]!]! }]),
  );
  for (let i = 1; i < records.length; i += 2) {
    const response = records[i]!;
    const request = records[i + 1]!;
    const exchange = byResponseId.get(response.headers.get("warc-record-id")!)!;
    assertEquals(
      request.headers.get("warc-concurrent-to"),
      exchange.ids.responseId,
    );
    assertEquals(
      response.headers.get("warc-block-digest"),
      await sha1(exchange.received),
    );
    assertEquals(
      response.headers.get("warc-payload-digest"),
      await sha1(exchange.page.entity),
    );
    if (exchange.path !== "/interim") {
      assertEquals(response.content, exchange.page.content);
    }
    byResponseId.delete(exchange.ids.responseId);
  }
  assertEquals(byResponseId.size, 0);
  // No temporary file is left beside the WARC.
  assertEquals([...Deno.readDirSync(dir.path)].map((e) => e.name), [
    "concurrent.warc.gz",
  ]);
});

Deno.test("WarcWriter.writeExchange() spools a body past memoryLimit through a temporary file", async () => {
  await using dir = await tempDir();
  const warc = await WarcWriter.create(`${dir.path}/spool.warc.gz`);
  const body = randomBytes(5 * 1024 * 1024, 3);
  const spoolsSeen: string[] = [];
  async function* response() {
    yield latin1(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
    for (let i = 0; i < body.length; i += 65_536) {
      yield body.subarray(i, i + 65_536);
      if (i === 2 * 1024 * 1024) {
        // Past the default 1 MiB: the block is on disk, not in memory.
        for (const entry of Deno.readDirSync(dir.path)) {
          spoolsSeen.push(entry.name);
        }
      }
    }
  }
  await warc.writeExchange({
    url: "http://a.test/big",
    request: latin1("GET /big HTTP/1.1\r\nHost: a.test\r\n\r\n"),
    response: response(),
  });
  await warc.close();
  assertEquals(
    spoolsSeen.filter((name) => name.startsWith(".warc-spool-")).length,
    1,
  );
  assertEquals([...Deno.readDirSync(dir.path)].map((e) => e.name), [
    "spool.warc.gz",
  ]);
  const [, response_] = await readWarc(
    await Deno.readFile(`${dir.path}/spool.warc.gz`),
  );
  assertEquals(response_!.content, body);
  assertEquals(response_!.headers.get("warc-payload-digest"), await sha1(body));
});

Deno.test("WarcWriter.create() on Windows spools in the folder of a WARC path with backslashes (C:\\crawls\\x.warc)", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/sub`);
  // On Windows `<dir>/sub\x.warc` is x.warc in sub, as `C:\crawls\x.warc` is
  // in C:\crawls (the old code took "." there). Here (Linux) it is a file
  // named "sub\x.warc" in <dir>: enough to see which folder the writer takes.
  const build = Deno.build;
  Object.defineProperty(Deno, "build", { value: { ...build, os: "windows" } });
  let warc: WarcWriter;
  try {
    warc = await WarcWriter.create(`${dir.path}/sub\\x.warc`, {
      memoryLimit: 1000,
    });
  } finally {
    Object.defineProperty(Deno, "build", { value: build });
  }
  const spools = (folder: string) =>
    [...Deno.readDirSync(folder)].filter((e) =>
      e.name.startsWith(".warc-spool-")
    ).length;
  const seen: number[] = [];
  async function* response() {
    yield latin1("HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n");
    yield new Uint8Array(2000);
    // Past memoryLimit: the block is in a spool file now.
    seen.push(spools(`${dir.path}/sub`), spools(dir.path));
    yield new Uint8Array(2000);
  }
  await warc.writeExchange({
    url: "http://a.test/big",
    request: latin1("GET /big HTTP/1.1\r\nHost: a.test\r\n\r\n"),
    response: response(),
  });
  await warc.close();
  assertEquals(seen, [1, 0], "spool files in sub/, in the WARC's folder");
  assert(Deno.build === build, "Deno.build restored");
});

Deno.test("WarcWriter.writeExchange() keeps memory below the size of a 128 MiB body", async () => {
  await using dir = await tempDir();
  const warc = await WarcWriter.create(`${dir.path}/flat.warc.gz`);
  const piece = randomBytes(64 * 1024, 11);
  const pieces = 2048;
  const before = Deno.memoryUsage().rss;
  let peak = before;
  async function* response() {
    yield latin1(
      `HTTP/1.1 200 OK\r\nContent-Length: ${pieces * piece.length}\r\n\r\n`,
    );
    for (let i = 0; i < pieces; i++) {
      yield piece;
      peak = Math.max(peak, Deno.memoryUsage().rss);
    }
  }
  await warc.writeExchange({
    url: "http://a.test/huge",
    request: latin1("GET /huge HTTP/1.1\r\n\r\n"),
    response: response(),
  });
  peak = Math.max(peak, Deno.memoryUsage().rss);
  await warc.close();
  const growth = (peak - before) / 1024 / 1024;
  // Measured: about 40-60 MiB of garbage awaiting GC whatever the body size (64 MiB
  // to 640 MiB); holding the body in memory instead grows by 160 MiB here.
  assert(growth < 100, `rss grew by ${growth.toFixed(1)} MiB`);
  assertGreater(
    (await Deno.stat(`${dir.path}/flat.warc.gz`)).size,
    pieces * piece.length,
  );
});

Deno.test("WarcWriter.create() with gzip: false writes a plain WARC warcio.js reads", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/plain.warc`;
  const warc = await WarcWriter.create(path, {
    gzip: false,
    software: "test-suite",
  });
  const response = latin1(
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
  );
  await warc.writeExchange({
    url: "http://a.test/",
    request: latin1("GET / HTTP/1.1\r\n\r\n"),
    response,
  });
  await warc.close();
  const bytes = await Deno.readFile(path);
  assert(
    decoder.decode(bytes).startsWith("WARC/1.1\r\nWARC-Type: warcinfo\r\n"),
  );
  const records = await readWarc(bytes);
  assertEquals(records.map((r) => r.type), ["warcinfo", "response", "request"]);
  assertStringIncludes(
    decoder.decode(records[0]!.raw),
    "software: test-suite\r\n",
  );
  assertEquals(
    records[1]!.headers.get("warc-payload-digest"),
    await sha1(encoder.encode("abc")),
  );
});

Deno.test("WarcWriter.writeExchange() unfolds a folded Transfer-Encoding as the client does: the payload digest is the unchunked body's", async () => {
  await using dir = await tempDir();
  const warc = await WarcWriter.create(`${dir.path}/fold.warc`);
  await warc.writeExchange({
    url: "http://a.test/",
    request: latin1("GET / HTTP/1.1\r\n\r\n"),
    response: latin1(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n chunked\r\nX-Other: a\r\n\t b\r\n\r\n" +
        "5\r\nhello\r\n0\r\n\r\n",
    ),
  });
  await warc.close();
  const records = await readWarc(await Deno.readFile(`${dir.path}/fold.warc`));
  assertEquals(
    records[1]!.headers.get("warc-payload-digest"),
    await sha1(encoder.encode("hello")),
  );
});

Deno.test("WarcWriter.writeExchange() digests the framed body with rawChunkedPayloadDigest", async () => {
  await using dir = await tempDir();
  const warc = await WarcWriter.create(`${dir.path}/raw.warc.gz`, {
    rawChunkedPayloadDigest: true,
  });
  const framed = "3\r\nabc\r\n0\r\n\r\n";
  await warc.writeExchange({
    url: "http://a.test/",
    request: latin1("GET / HTTP/1.1\r\n\r\n"),
    response: latin1(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + framed,
    ),
  });
  await warc.close();
  const records = await readWarc(
    await Deno.readFile(`${dir.path}/raw.warc.gz`),
  );
  assertEquals(
    records[1]!.headers.get("warc-payload-digest"),
    await sha1(latin1(framed)),
  );
});

Deno.test("WarcWriter.writeExchange() leaves out the payload digest of a block that is not HTTP", async () => {
  await using dir = await tempDir();
  const warc = await WarcWriter.create(`${dir.path}/odd.warc.gz`);
  await warc.writeExchange({
    url: "http://a.test/",
    request: latin1("GET / HTTP/1.1\r\n\r\n"),
    response: latin1("SSH-2.0-OpenSSH\r\n\r\nnot http"),
  });
  await warc.writeExchange({
    url: "http://a.test/bad-chunks",
    request: latin1("GET / HTTP/1.1\r\n\r\n"),
    response: latin1(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
    ),
  });
  await warc.close();
  const records = await readWarc(
    await Deno.readFile(`${dir.path}/odd.warc.gz`),
  );
  assertEquals(records[1]!.headers.has("warc-payload-digest"), false);
  assertEquals(
    records[1]!.headers.get("warc-block-digest"),
    await sha1(latin1("SSH-2.0-OpenSSH\r\n\r\nnot http")),
  );
  assertEquals(records[2]!.headers.has("warc-payload-digest"), true);
  assertEquals(records[3]!.headers.has("warc-payload-digest"), false);
});

Deno.test("WarcWriter.writeExchange() marks a response cut short with WARC-Truncated", async () => {
  await using dir = await tempDir();
  const warc = await WarcWriter.create(`${dir.path}/cut.warc.gz`);
  const partial = latin1(
    "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this",
  );
  await warc.writeExchange({
    url: "http://a.test/cut",
    request: latin1("GET /cut HTTP/1.1\r\n\r\n"),
    response: partial,
    truncated: "disconnect",
  });
  await warc.close();
  const records = await readWarc(
    await Deno.readFile(`${dir.path}/cut.warc.gz`),
  );
  assertEquals(records[1]!.headers.get("warc-truncated"), "disconnect");
  assertEquals(
    records[1]!.headers.get("warc-block-digest"),
    await sha1(partial),
  );
  // WARC 1.1 §6.3.2: the payload of a truncated record is truncated at the same place.
  assertEquals(
    records[1]!.headers.get("warc-payload-digest"),
    await sha1(latin1("only this")),
  );
  assertEquals(records[2]!.headers.has("warc-truncated"), false);
});

Deno.test("warcTap() records a body cut at maxResponseBytes with WARC-Truncated: length, and leaves out a malformed response", async () => {
  const chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  // Read to close, past the limit.
  const big = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" +
    "x".repeat(1024);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of listener) {
      const buf = new Uint8Array(4096);
      const n = await conn.read(buf) ?? 0;
      const bad = decoder.decode(buf.subarray(0, n)).startsWith("GET /bad");
      // The bad response's chunk size is not hex.
      await conn.write(latin1(bad ? chunked + "4z\r\nnope\r\n" : big))
        .catch(() => 0);
      await new Promise((resolve) => setTimeout(resolve, 200));
      conn.close();
    }
  })();
  await using dir = await tempDir();
  const writer = await WarcWriter.create(`${dir.path}/limit.warc.gz`);
  const archive = warcTap(writer, () => {});
  const base = `http://127.0.0.1:${listener.addr.port}`;
  const results = await fetchAll([`${base}/big`, `${base}/bad`], {
    tap: archive.tap,
    maxResponseBytes: 100,
    keepAlive: false,
  });
  listener.close();
  await serving;
  await archive.settled();
  await writer.close();
  assertEquals(
    results.map((r) => !r.ok && (r.error as HttpParseError).code),
    ["body-too-large", "invalid-chunk-size"],
  );
  assertEquals([archive.written, archive.truncated], [1, 1]);
  const records = await readWarc(
    await Deno.readFile(`${dir.path}/limit.warc.gz`),
  );
  const response = records.find((r) => r.type === "response")!;
  assertEquals(response.headers.get("warc-target-uri"), `${base}/big`);
  assertEquals(response.headers.get("warc-truncated"), "length");
  // The head, and the body up to the limit.
  assertEquals(response.http?.statusline, "HTTP/1.1 200 OK");
  assertEquals(decoder.decode(response.raw), "x".repeat(100));
  assertEquals(
    response.headers.get("warc-payload-digest"),
    await sha1(response.raw),
  );
});

/**
 * Hands a warcTap exchange a 1.5 MiB `side` (a download, or an upload), the
 * first 256 KiB then the rest in one turn, and checks that `ready()` holds the
 * connection only while more than 512 KiB wait for the writer; returns the
 * record of that side, once written.
 */
async function heldUntilSpooled(side: "request" | "response") {
  await using dir = await tempDir();
  const writer = await WarcWriter.create(`${dir.path}/held.warc.gz`);
  const archive = warcTap(writer, () => {});
  const url = "http://127.0.0.1:9/held";
  const exchange = archive.tap({
    url,
    remoteAddr: null,
    viaProxy: false,
    date: new Date(),
  })!;
  const body = randomBytes(1536 * 1024, side === "request" ? 5 : 7);
  const hand = side === "request" ? exchange.request! : exchange.response!;
  if (side === "response") {
    exchange.request!(
      latin1("GET /held HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n"),
    );
  }
  hand(latin1(
    side === "request"
      ? `POST /held HTTP/1.1\r\nHost: 127.0.0.1:9\r\nContent-Length: ${body.length}\r\n\r\n`
      : `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`,
  ));
  hand(body.subarray(0, 256 * 1024));
  // Within 512 KiB of the writer: go on.
  assertEquals(exchange.ready!(), null);
  // Handed in the same turn, before the writer took any of it.
  hand(body.subarray(256 * 1024));
  const held = exchange.ready!();
  assert(held instanceof Promise, "a promise while the writer is behind");
  let settled = false;
  held.then(() => settled = true);
  await Promise.resolve();
  assertEquals(settled, false);
  await held;
  assertEquals(exchange.ready!(), null);
  if (side === "request") {
    exchange.response!(latin1("HTTP/1.1 204 No Content\r\n\r\n"));
  }
  exchange.end!({ url, remoteAddr: null, ok: true, error: null });
  await archive.settled();
  await writer.close();
  assertEquals(archive.written, 1);
  const records = await readWarc(
    await Deno.readFile(`${dir.path}/held.warc.gz`),
  );
  assertEquals(records.find((r) => r.type === side)!.raw, body);
}

Deno.test("warcTap() holds a response more than 512 KiB ahead of the writer (ready() gives a promise) until the writer has spooled it, and records it whole", async () => {
  await heldUntilSpooled("response");
});

Deno.test("warcTap() holds an upload more than 512 KiB ahead of the writer (ready() gives a promise) until the writer has spooled it, and records the request whole", async () => {
  await heldUntilSpooled("request");
});

Deno.test("WarcWriter.abort() cuts the record being appended: the file ends at its last whole record, the exchange rejects and no temporary file is left", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/cut.warc.gz`;
  const warc = await WarcWriter.create(path);
  const request = latin1("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
  const head = "HTTP/1.1 200 OK\r\nContent-Length: ";
  await warc.writeExchange({
    url: "http://a.test/small",
    request,
    response: latin1(`${head}2\r\n\r\nok`),
  });
  const whole = (await Deno.stat(path)).size;
  // Random bytes gzip slowly: long enough a record to abort mid-way.
  const big = randomBytes(24 * 1024 * 1024, 11);
  const writing = warc.writeExchange({
    url: "http://a.test/big",
    request,
    response: (async function* () {
      yield latin1(`${head}${big.length}\r\n\r\n`);
      yield* splitEvery(big, 1 << 20);
    })(),
  });
  writing.catch(() => {});
  // Until the big record's first bytes are in the file (bounded: ~10 s).
  for (let i = 0; i < 10_000 && (await Deno.stat(path)).size === whole; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  assertGreater((await Deno.stat(path)).size, whole, "the record was begun");
  await warc.abort();
  await assertRejects(() => writing, Error, "the writer is closed");
  assertEquals((await Deno.stat(path)).size, whole);
  const records = await readWarc(await Deno.readFile(path));
  assertEquals(records.map((r) => r.type), ["warcinfo", "response", "request"]);
  const left: string[] = [];
  for await (const entry of Deno.readDir(dir.path)) left.push(entry.name);
  assertEquals(left, ["cut.warc.gz"]);
  // Idempotent, and close() after it resolves too.
  await warc.abort();
  await warc.close();
});

Deno.test("WarcWriter.writeExchange() rejects bad input and a closed writer", async () => {
  await using dir = await tempDir();
  const warc = await WarcWriter.create(`${dir.path}/x.warc.gz`);
  const base = { request: new Uint8Array(0), response: new Uint8Array(0) };
  await assertRejects(
    () => warc.writeExchange({ ...base, url: "ftp://a.test/" }),
    TypeError,
    "not an http(s) URL",
  );
  await assertRejects(
    () =>
      warc.writeExchange({
        ...base,
        url: "http://a.test/",
        ipAddress: "1.2.3.4\r\nX: y",
      }),
    TypeError,
    "invalid IP address",
  );
  await warc.writeExchange({ ...base, url: "http://user:secret@a.test/p#f" });
  await warc.close();
  const records = await readWarc(await Deno.readFile(`${dir.path}/x.warc.gz`));
  assertEquals(records[1]!.headers.get("warc-target-uri"), "http://a.test/p");
  await assertRejects(
    () => warc.writeExchange({ ...base, url: "http://a.test/" }),
    Error,
    "the writer is closed",
  );
  await assertRejects(
    () => WarcWriter.create(`${dir.path}/missing/x.warc.gz`),
    DiskError,
    "Cannot create WARC file",
  );
});

Deno.test("WarcWriter.writeExchange() output stays readable up to the cut wherever the file is cut", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/cut-anywhere.warc.gz`;
  const warc = await WarcWriter.create(path);
  for (let i = 0; i < 3; i++) {
    await warc.writeExchange({
      url: `http://a.test/${i}`,
      request: latin1(`GET /${i} HTTP/1.1\r\n\r\n`),
      response: [
        latin1("HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n"),
        randomBytes(3000, i),
      ],
    });
  }
  await warc.close();
  const bytes = await Deno.readFile(path);
  const ends = (await warcioIndex(path)).map((r) =>
    Number(r.offset) + Number(r.length)
  );
  assertEquals(ends.length, 7);
  // Every cut point, as a crash may leave the file: the records wholly before it
  // are read, the one cut is not, and warcio.js stops without error.
  for (let cut = 0; cut <= bytes.length; cut += 13) {
    const whole = ends.filter((end) => end <= cut).length;
    const records = await readWarc(bytes.subarray(0, cut));
    assertEquals(records.length, whole, `cut at ${cut}`);
  }
});

/** Runs a script in a child `deno` that writes exchanges; returns the child. */
function writerChild(path: string, shellPrefix = "") {
  const module = new URL("../examples/crawl/warc.ts", import.meta.url).href;
  const script = `
    const { WarcWriter } = await import(${JSON.stringify(module)});
    const warc = await WarcWriter.create(${JSON.stringify(path)});
    const body = new Uint8Array(20_000).map((_, i) => (i * 7919) % 251);
    const head = new TextEncoder().encode("HTTP/1.1 200 OK\\r\\nContent-Length: 20000\\r\\n\\r\\n");
    try {
      for (let i = 0; i < 100_000; i++) {
        await warc.writeExchange({ url: "http://a.test/" + i, request: new TextEncoder().encode("GET /" + i + " HTTP/1.1\\r\\n\\r\\n"), response: [head, body] });
        console.log(i);
      }
    } catch (error) {
      console.log(JSON.stringify({ name: error.name, message: error.message }));
    }
  `;
  const deno = `${Deno.execPath()} eval --no-config -A '${
    script.replaceAll("'", "'\\''")
  }'`;
  return new Deno.Command("sh", {
    args: ["-c", `${shellPrefix}exec ${deno}`],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test("WarcWriter.writeExchange() leaves the file readable up to the last whole record when the process is killed", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/killed.warc.gz`;
  const child = writerChild(path);
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let written = -1;
  let text = "";
  const deadline = Date.now() + 30_000;
  while (written < 40 && Date.now() < deadline) {
    const { value, done } = await lines.read();
    if (done) break;
    text += value;
    written = Number(text.trim().split("\n").at(-1));
  }
  child.kill("SIGKILL");
  await lines.cancel();
  await child.stderr.cancel();
  await child.status;
  assert(written >= 40, `only ${written + 1} exchanges before the deadline`);
  const records = await readWarc(await Deno.readFile(path));
  // Every exchange reported written is there, whole, digests valid.
  assert(records.length >= 1 + 2 * (written + 1), `${records.length} records`);
  for (const r of records.slice(1)) {
    if (r.type !== "response") continue;
    assertEquals(r.headers.get("warc-payload-digest"), await sha1(r.content));
  }
});

Deno.test("WarcWriter.writeExchange() rejects with one DiskError when the disk is full and cuts the file back to whole records", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/full.warc.gz`;
  // A file size limit (ulimit -f, in 512-byte blocks) with SIGXFSZ ignored makes a
  // write past it fail with EFBIG, as a full disk fails with ENOSPC.
  const child = writerChild(path, "trap '' XFSZ; ulimit -f 1000; ");
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const output = await child.output().finally(() => clearTimeout(timer));
  const lines = decoder.decode(output.stdout).trim().split("\n");
  const error = JSON.parse(lines.at(-1)!);
  assertEquals(error.name, "DiskError");
  assertStringIncludes(
    error.message,
    `Cannot write WARC file '${path}': File too large`,
  );
  const exchanges = lines.length - 1;
  assertGreater(exchanges, 5);
  // Cut back to the last whole record: warcio.js reads every exchange written and
  // the file ends exactly at a member's end.
  const bytes = await Deno.readFile(path);
  assert(bytes.length <= 1000 * 512);
  const records = await readWarc(bytes);
  assertEquals(records.length, 1 + 2 * exchanges);
  const index = await warcioIndex(path);
  assertEquals(
    Number(index.at(-1)!.offset) + Number(index.at(-1)!.length),
    bytes.length,
  );
});

/** Writes one exchange with `response` as its block; the response record's WARC headers. */
async function responseRecord(response: string): Promise<Map<string, string>> {
  const dir = await Deno.makeTempDir({ prefix: "crawl_warc_edges_" });
  try {
    const path = `${dir}/one.warc.gz`;
    const warc = await WarcWriter.create(path);
    await warc.writeExchange({
      url: "http://a.test/",
      request: latin1("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"),
      response: latin1(response),
    });
    await warc.close();
    const parser = new WARCParser(
      ReadableStream.from([await Deno.readFile(path)]),
    );
    for await (const record of parser) {
      if (record.warcType === "response") {
        return new Map([...record.warcHeaders.headers.entries()]);
      }
    }
    throw new Error("no response record");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("WarcWriter.writeExchange() finds the payload after a head ended by bare LF LF (RFC 9112 §2.2)", async () => {
  const headers = await responseRecord(
    "HTTP/1.1 200 OK\nContent-Length: 5\n\nhello",
  );
  assertEquals(
    headers.get("warc-payload-digest"),
    await sha1(latin1("hello")),
  );
});

Deno.test("WarcWriter.writeExchange() leaves bytes after a Content-Length body out of the payload digest", async () => {
  const headers = await responseRecord(
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA",
  );
  assertEquals(
    headers.get("warc-payload-digest"),
    await sha1(latin1("hello")),
  );
  assertEquals(
    headers.get("warc-block-digest"),
    await sha1(
      latin1("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA"),
    ),
  );
});
