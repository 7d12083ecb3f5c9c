import {
  assert,
  assertEquals,
  assertGreaterOrEqual,
  assertLess,
  fail,
} from "@std/assert";
import { ResponseParser } from "../client/_response_parser.ts";
import { HttpParseError } from "../client/http_parse_error.ts";
import { ACCEPTED, MALFORMED } from "./_malformed_corpus.ts";
import {
  concat,
  latin1Bytes,
  latin1Text,
  mulberry32,
  splitAt,
  splitEvery,
} from "./_net.ts";

/** Fixed so that a failure reproduces; override with PARSER_FUZZ_SEED. */
const SEED = Number(Deno.env.get("PARSER_FUZZ_SEED") ?? 0xc0ffee);
const MUTATIONS = 20_000;

const BASES = [
  "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
  '5;ext=1;q="a\\"b"\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n',
  "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nread until the peer closes",
  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
  "HTTP/1.1 204 No Content\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n",
  'HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: "v1"\r\n\r\n',
  "HTTP/1.0 200 OK\nConnection: keep-alive\nContent-Length: 3\n\nabc",
  "HTTP/1.1 404 \r\nContent-Length: 5, 5\r\nX-Empty:\r\n\r\nnope!",
  "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" +
  "3\r\nabc\r\n0\r\n\r\n",
  "HTTP/1.1 200 OK\r\nX-A: 1 \r\n\t 2\r\nContent-Length:\r\n 3\r\n\r\nabc",
].map(latin1Bytes);

/** Bytes that steer a parser into its interesting branches. */
const INTERESTING = [...'\r\n\0 \t:;=",0123456789abcdefABCDEF-+x'].map((c) =>
  c.charCodeAt(0)
).concat([0x7f, 0x80, 0xff, 0x01]);

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

function int(random: () => number, n: number): number {
  return Math.floor(random() * n);
}

function mutate(random: () => number, input: Uint8Array): Uint8Array {
  let b = input;
  for (let n = 1 + int(random, 3); n > 0; n--) {
    const at = int(random, b.length + 1);
    switch (int(random, 7)) {
      case 0: { // bit flip
        if (b.length === 0) break;
        b = b.slice();
        const i = Math.min(at, b.length - 1);
        b[i] = b[i]! ^ (1 << int(random, 8));
        break;
      }
      case 1: // insert an interesting or random byte
        b = concat([
          b.subarray(0, at),
          Uint8Array.of(
            random() < 0.8 ? pick(random, INTERESTING) : int(random, 256),
          ),
          b.subarray(at),
        ]);
        break;
      case 2: // delete a few bytes
        b = concat([b.subarray(0, at), b.subarray(at + 1 + int(random, 4))]);
        break;
      case 3: // truncate
        b = b.subarray(0, at);
        break;
      case 4: { // splice with another response
        const other = pick(random, BASES);
        b = concat([
          b.subarray(0, at),
          other.subarray(int(random, other.length)),
        ]);
        break;
      }
      case 5: { // duplicate a slice
        const len = 1 + int(random, 16);
        b = concat([
          b.subarray(0, at),
          b.subarray(at, at + len),
          b.subarray(at),
        ]);
        break;
      }
      default: // append a second response (pipelining, trailing junk)
        b = concat([b, pick(random, BASES)]);
    }
  }
  return b;
}

type Outcome =
  | {
    kind: "done";
    status: number;
    statusText: string;
    version: string;
    headers: [string, string][];
    /** The body as latin1 text: the bytes themselves, not just their count. */
    body: string;
    consumed: number;
    keepAlive: boolean;
    trailers: [string, string][] | null;
  }
  | { kind: "error"; code: string; offset: number; message: string };

/** Parses `pieces` then EOF; any exception but HttpParseError fails the test. */
function run(pieces: Uint8Array[], method: string, total: number): Outcome {
  const parser = new ResponseParser({ method, maxHeadBytes: 4096 });
  const body: Uint8Array[] = [];
  let used = 0;
  try {
    for (const piece of pieces) {
      used += parser.receive(piece);
      body.push(...parser.takeBody());
    }
    if (!parser.done) parser.receive(null);
    body.push(...parser.takeBody());
  } catch (e) {
    if (!(e instanceof HttpParseError)) throw e;
    assert(e.offset >= 0 && e.offset <= total, `offset ${e.offset} in range`);
    return {
      kind: "error",
      code: e.code,
      offset: e.offset,
      message: e.message,
    };
  }
  assert(parser.done && parser.head !== null, "complete response");
  assertEquals(used, parser.bytesConsumed);
  const text = latin1Text(body);
  assert(parser.bytesConsumed <= total && text.length <= parser.bytesConsumed);
  return {
    kind: "done",
    status: parser.head.status,
    statusText: parser.head.statusText,
    version: parser.head.version,
    headers: [...parser.head.headers],
    body: text,
    consumed: parser.bytesConsumed,
    keepAlive: parser.keepAlive,
    trailers: parser.trailers ? [...parser.trailers] : null,
  };
}

/**
 * Asserts that `input` gives the same outcome (the same events, or the same
 * error: code, offset and message) fed whole, one byte at a time, and in
 * `splits` random pieces; returns that outcome.
 */
function sameHoweverSplit(
  random: () => number,
  input: Uint8Array,
  method: string,
  splits: number,
): Outcome {
  const whole = run([input], method, input.length);
  assertEquals(
    run(splitEvery(input, 1), method, input.length),
    whole,
    "bytewise",
  );
  for (let i = 0; i < splits; i++) {
    const pieces = randomPieces(random, input);
    assertEquals(
      run(pieces, method, input.length),
      whole,
      `split at ${pieces.map((p) => p.length).join("+")}`,
    );
  }
  return whole;
}

function randomPieces(random: () => number, b: Uint8Array): Uint8Array[] {
  const cuts = Array.from(
    { length: int(random, 6) },
    () => int(random, b.length + 1),
  );
  return splitAt(b, cuts);
}

Deno.test(
  `ResponseParser.receive() ends every mutated response in the same response or HttpParseError however split (seed ${SEED})`,
  () => {
    console.log(`parser fuzz seed: ${SEED} (set PARSER_FUZZ_SEED to change)`);
    const random = mulberry32(SEED);
    const tally = new Map<string, number>();
    const start = performance.now();
    for (let i = 0; i < MUTATIONS; i++) {
      const input = mutate(random, pick(random, BASES));
      const method = random() < 0.1 ? "HEAD" : "GET";
      let whole: Outcome;
      try {
        whole = sameHoweverSplit(random, input, method, 1);
      } catch (e) {
        fail(
          `seed ${SEED}, mutation ${i}, method ${method}: ${
            JSON.stringify(String.fromCharCode(...input))
          }: ${e instanceof Error ? e.stack : e}`,
        );
      }
      const key = whole.kind === "done" ? "complete" : whole.code;
      tally.set(key, (tally.get(key) ?? 0) + 1);
    }
    const elapsed = performance.now() - start;
    console.log(
      `${MUTATIONS} mutations in ${elapsed.toFixed(0)} ms:`,
      Object.fromEntries([...tally].sort((a, b) => b[1] - a[1])),
    );
    // Both outcomes must be common, or the mutations are not exercising much.
    assertGreaterOrEqual(tally.get("complete") ?? 0, MUTATIONS / 20);
    assertGreaterOrEqual(tally.size, 15);
    assertLess(elapsed, 20_000);
  },
);

Deno.test("ResponseParser.receive() gives every corpus response the same outcome however split", () => {
  const random = mulberry32(SEED);
  const corpus = [
    ...BASES.map((bytes, i) => ({ name: `base ${i}`, bytes, method: "GET" })),
    ...[...MALFORMED, ...ACCEPTED].map((c) => ({
      name: c.name,
      bytes: latin1Bytes(c.bytes),
      method: "method" in c ? c.method ?? "GET" : "GET",
    })),
  ];
  for (const { name, bytes, method } of corpus) {
    try {
      sameHoweverSplit(random, bytes, method, 8);
    } catch (e) {
      fail(`${name}: ${e instanceof Error ? e.stack : e}`);
    }
  }
});

Deno.test("ResponseParser.receive() fails a long first line that is not HTTP the same way however split", () => {
  // Longer than maxHeadBytes (4096) and without an LF: the first byte decides.
  for (const first of ["X", "\0", "h", "HTTP/1.1 200 OK"]) {
    const input = latin1Bytes(first + "a".repeat(5000));
    const outcome = sameHoweverSplit(mulberry32(SEED), input, "GET", 8);
    assert(outcome.kind === "error");
    assertEquals(
      outcome.code,
      first === "\0"
        ? "nul-byte"
        : first.startsWith("HTTP")
        ? "head-too-large"
        : "invalid-status-line",
    );
  }
});

Deno.test("ResponseParser.receive() reads a last field line ending around the head limit, or longer than its field buffer, the same way however split", () => {
  const random = mulberry32(SEED);
  const before = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: ";
  // The field's line ends 3 bytes before to 3 bytes after the 4096-byte limit
  // (then the empty line), or far from it with a value longer than the 512-byte
  // field buffer a head starts with.
  for (const end of [4093, 4094, 4095, 4096, 4097, 4099, 900]) {
    for (const eol of ["\r\n", "\n"]) {
      const pad = end - before.length - eol.length;
      const input = latin1Bytes(`${before}${"v".repeat(pad)}${eol}${eol}ok`);
      const outcome = sameHoweverSplit(random, input, "GET", 8);
      const fits = end + eol.length <= 4096;
      assertEquals(
        outcome.kind === "done" ? "done" : outcome.code,
        fits ? "done" : "head-too-large",
        `line ending at ${end} with ${JSON.stringify(eol)}`,
      );
      if (outcome.kind === "done") {
        assertEquals(outcome.headers[1], ["x-pad", "v".repeat(pad)]);
      }
      // Cut after the field's line: past the limit, the limit is the error.
      const cut = sameHoweverSplit(random, input.subarray(0, end), "GET", 8);
      assert(cut.kind === "error");
      if (end > 4096) assertEquals(cut.code, "head-too-large");
      else assert(cut.code !== "head-too-large", cut.code);
    }
  }
});
