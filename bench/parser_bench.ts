/**
 * Micro-benchmark of the response parser on what a crawl sees most: nginx's
 * response head (8 fields) and a 1 KiB body, framed by `Content-Length`.
 *
 * Time per parse:
 *
 * ```sh
 * deno bench bench/parser_bench.ts
 * ```
 *
 * Bytes allocated per parse (young-generation heap growth over 2,000 parses with
 * a young generation large enough that no collection runs in between):
 *
 * ```sh
 * deno run --v8-flags=--expose-gc,--min-semi-space-size=64,--max-semi-space-size=64 bench/parser_bench.ts
 * ```
 *
 * @module
 */
import { ResponseParser } from "../client/_response_parser.ts";

const HEAD = "HTTP/1.1 200 OK\r\n" +
  "Server: nginx/1.24.0 (Ubuntu)\r\n" +
  "Date: Fri, 27 Nov 2026 11:00:00 GMT\r\n" +
  "Content-Type: application/octet-stream\r\n" +
  "Content-Length: 1024\r\n" +
  "Last-Modified: Fri, 27 Nov 2026 10:00:00 GMT\r\n" +
  "Connection: keep-alive\r\n" +
  'ETag: "6566f2a0-400"\r\n' +
  "Accept-Ranges: bytes\r\n" +
  "\r\n";

/** One response as a read would hand it over: head and body in one array. */
const RESPONSE = new Uint8Array(HEAD.length + 1024);
for (let i = 0; i < HEAD.length; i++) RESPONSE[i] = HEAD.charCodeAt(i);
RESPONSE.fill(120, HEAD.length);

/** The same response cut as a slow peer might send it. */
const PIECES = [
  RESPONSE.subarray(0, 50),
  RESPONSE.subarray(50, 200),
  RESPONSE.subarray(200, 700),
  RESPONSE.subarray(700),
];

let sink = 0;

type Read = "none" | "field" | "headers";

/**
 * What the client does with a response: status and body, and then nothing else
 * (`"none"`), one field looked up without `Headers` (`"field"`, as for
 * `Content-Encoding`), or one field from `head.headers` (`"headers"`).
 */
function parse(pieces: Uint8Array[], read: Read): void {
  const parser = new ResponseParser({ method: "GET" });
  for (const piece of pieces) {
    parser.receive(piece);
    for (const chunk of parser.takeBody()) sink += chunk.length;
  }
  if (!parser.done || !parser.keepAlive) throw new Error("bench: not parsed");
  const head = parser.head!;
  sink += head.status + head.statusText.length;
  if (read === "field") sink += head.field("content-encoding")?.length ?? 1;
  if (read === "headers") sink += head.headers.get("content-type")!.length;
}

const WHOLE = [RESPONSE];

const ROWS: Array<[string, Uint8Array[], Read]> = [
  ["status and body", WHOLE, "none"],
  ["status, body and head.field()", WHOLE, "field"],
  ["status, body and head.headers", WHOLE, "headers"],
  ["in 4 pieces, status and body", PIECES, "none"],
];

for (const [name, pieces, read] of ROWS) {
  Deno.bench(`ResponseParser: nginx 1 KiB response, ${name}`, () => {
    parse(pieces, read);
  });
}

if (import.meta.main) {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    console.error("Run with --v8-flags=--expose-gc (see the module doc)");
    Deno.exit(2);
  }
  const N = 2_000;
  for (const [name, pieces, read] of ROWS) {
    for (let i = 0; i < N; i++) parse(pieces, read); // warm up
    const samples: number[] = [];
    for (let round = 0; round < 5; round++) {
      gc();
      const before = Deno.memoryUsage().heapUsed;
      for (let i = 0; i < N; i++) parse(pieces, read);
      const grown = Deno.memoryUsage().heapUsed - before;
      // A collection inside the loop would shrink the heap: drop such rounds.
      if (grown > 0) samples.push(grown / N);
    }
    samples.sort((a, b) => a - b);
    const median = samples[samples.length >> 1];
    console.log(
      `${name}: ${median === undefined ? "?" : median.toFixed(0)} bytes/parse` +
        ` (${samples.length} of 5 rounds without a collection)`,
    );
  }
  if (sink === 0) console.log(sink);
}
