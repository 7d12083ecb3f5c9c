import { assertEquals, fail } from "@std/assert";
import zlib from "node:zlib";
import { ContentDecoder, decodeBody } from "../client/_decode.ts";
import { HttpParseError } from "../client/http_parse_error.ts";
import { fetchAll } from "../mod.ts";
import { cannedServer } from "./_raw_http.ts";
import { concat, textLike as sample } from "./_net.ts";

const zstdCompressSync = (
  zlib as unknown as { zstdCompressSync(data: Uint8Array): Uint8Array }
).zstdCompressSync;
const own = (bytes: Uint8Array): Uint8Array => new Uint8Array(bytes);
const text = (s: string) => new TextEncoder().encode(s);

/**
 * Bytes some servers put after a complete coded body: a hosting provider's
 * analytics snippet written after the gzip stream, a stray newline, zero padding.
 * Chromium drops them ("matches the behavior of other browsers",
 * net/filter/gzip_source_stream.h STATE_IGNORING_EXTRA_BYTES; brotli and zstd
 * streams likewise once DECODING_DONE), as do gzip(1) ("trailing garbage
 * ignored") and undici for br.
 */
const TAILS: [string, Uint8Array][] = [
  ["LF", text("\n")],
  ["CRLF", text("\r\n")],
  ["zeros", new Uint8Array(8)],
  ["an HTML comment", text("<!-- Hosting24 Analytics Code -->\n")],
];

/** Decodes `body` fed in `step`-byte pieces, reading after each. */
function decodeInPieces(coding: string, body: Uint8Array, step: number) {
  const decoder = ContentDecoder.for(coding, Infinity)!;
  const parts: Uint8Array[] = [];
  const drain = () => {
    for (let chunk; (chunk = decoder.read()) !== null;) parts.push(chunk);
  };
  for (let at = 0; at < body.length; at += step) {
    decoder.write(body.subarray(at, at + step));
    drain();
  }
  decoder.end();
  drain();
  return concat(parts);
}

function outcome(fn: () => Uint8Array): Uint8Array | string {
  try {
    return fn();
  } catch (e) {
    return e instanceof HttpParseError ? `${e.code}: ${e.message}` : `${e}`;
  }
}

/** Every case's failure at once, each with its error, rather than a byte diff. */
function expectAll(cases: [string, () => Uint8Array, Uint8Array][]): void {
  const failures: string[] = [];
  for (const [what, fn, want] of cases) {
    const got = outcome(fn);
    if (typeof got === "string") failures.push(`${what}: ${got}`);
    else if (got.length !== want.length || got.some((b, i) => b !== want[i])) {
      failures.push(
        `${what}: ${got.length} bytes, not the ${want.length} sent`,
      );
    }
  }
  if (failures.length > 0) {
    fail(`${failures.length} of ${cases.length}:\n${failures.join("\n")}`);
  }
}

Deno.test("ContentDecoder ignores bytes after the end of a complete gzip, deflate, br or zstd stream, as browsers do", () => {
  const data = sample(3000, 3);
  const coded: [string, string, Uint8Array][] = [
    ["gzip", "gzip", own(zlib.gzipSync(data))],
    [
      "two gzip members",
      "gzip",
      concat([
        own(zlib.gzipSync(data.subarray(0, 1000))),
        own(zlib.gzipSync(data.subarray(1000))),
      ]),
    ],
    ["x-gzip", "x-gzip", own(zlib.gzipSync(data))],
    ["zlib deflate", "deflate", own(zlib.deflateSync(data))],
    ["br", "br", own(zlib.brotliCompressSync(data))],
    ["zstd", "zstd", own(zstdCompressSync(data))],
  ];
  const cases: [string, () => Uint8Array, Uint8Array][] = [];
  for (const [label, coding, body] of coded) {
    for (const [tailName, tail] of TAILS) {
      const sent = concat([body, tail]);
      const what = `${label} followed by ${tailName}`;
      cases.push([what, () => decodeBody(sent, coding, Infinity), data]);
      cases.push([
        `${what}, byte by byte`,
        () => decodeInPieces(coding, sent, 1),
        data,
      ]);
    }
  }
  expectAll(cases);
});

Deno.test("ContentDecoder still fails a gzip member that is corrupt after a good one", () => {
  // What follows starts like a member (1f 8b 08): it is decoded, and must be whole.
  const data = sample(3000, 4);
  const second = own(zlib.gzipSync(data));
  second[second.length - 8]! ^= 0xff; // wrong CRC-32
  const sent = concat([own(zlib.gzipSync(data)), second]);
  const got = outcome(() => decodeBody(sent, "gzip", Infinity));
  assertEquals(
    typeof got === "string" && got.startsWith("invalid-content-encoding"),
    true,
    `${got}`,
  );
});

Deno.test("fetchAll() returns a gzip page whose server appended bytes after the gzip stream, as a browser shows it", async () => {
  const page = text(
    "<html><body>" + "hello, crawler. ".repeat(500) + "</body></html>\n",
  );
  const sent = concat([
    own(zlib.gzipSync(page)),
    text("<!-- Hosting24 Analytics Code -->\n"),
  ]);
  await using server = cannedServer(concat([
    text(
      `HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nContent-Length: ${sent.length}\r\n\r\n`,
    ),
    sent,
  ]));
  const [result] = await fetchAll([server.url("/")], { timeout: 5_000 });
  if (!result!.ok) fail(`the page was lost: ${result!.error}`);
  assertEquals(result!.response.body, page);
});
