import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertLess,
  assertLessOrEqual,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { Buffer } from "node:buffer";
import zlib from "node:zlib";
import {
  ACCEPT_ENCODING,
  ContentDecoder,
  decodeBody,
} from "../client/_decode.ts";
import { HttpParseError } from "../client/http_parse_error.ts";
import { concat, textLike as sample } from "./_net.ts";
import { readHead, scriptedServer, writeAll } from "./_client_util.ts";
import { fetchAll } from "../mod.ts";

const encoder = new TextEncoder();

const C = zlib.constants as unknown as Record<string, number>;
const zstdCompressSync = (
  zlib as unknown as {
    zstdCompressSync(data: Uint8Array, options?: object): Uint8Array;
  }
).zstdCompressSync;
const crc32 = (zlib as unknown as {
  crc32(data: Uint8Array, value?: number): number;
}).crc32;

const MiB = 1024 * 1024;

/** node:zlib hands out Buffers that may view a shared pool: copy them out. */
const own = (bytes: Uint8Array): Uint8Array => new Uint8Array(bytes);

/** Every coding decoded, as [label, Content-Encoding, encoder]. */
const CODINGS: [string, string, (data: Uint8Array) => Uint8Array][] = [
  ["gzip", "gzip", (d) => own(zlib.gzipSync(d))],
  ["x-gzip", "x-gzip", (d) => own(zlib.gzipSync(d))],
  ["zlib deflate", "deflate", (d) => own(zlib.deflateSync(d))],
  ["raw deflate", "deflate", (d) => own(zlib.deflateRawSync(d))],
  ["br", "br", (d) => own(zlib.brotliCompressSync(d))],
  ["zstd", "zstd", (d) => own(zstdCompressSync(d))],
];

/** Feeds `coded` in pieces of `step` bytes, reading `max` at a time after each. */
function decodeInPieces(
  coding: string,
  coded: Uint8Array,
  step: number,
  max: number,
  maxBytes = Infinity,
): Uint8Array {
  const decoder = ContentDecoder.for(coding, maxBytes)!;
  const parts: Uint8Array[] = [];
  const drain = () => {
    for (let chunk; (chunk = decoder.read(max)) !== null;) {
      assertLessOrEqual(chunk.length, max);
      parts.push(chunk);
    }
  };
  for (let at = 0; at < coded.length; at += step) {
    decoder.write(coded.subarray(at, at + step));
    drain();
  }
  decoder.end();
  drain();
  assert(decoder.finished, "finished after the last read");
  assertStrictEquals(decoder.read(), null);
  return concat(parts);
}

function assertInvalid(fn: () => unknown, what: string): HttpParseError {
  let error: unknown = null;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  assertInstanceOf(error, HttpParseError, `${what}: ${error}`);
  assertEquals(error.code, "invalid-content-encoding", what);
  return error;
}

Deno.test("ACCEPT_ENCODING advertises gzip, deflate, br and zstd", () => {
  assertEquals(ACCEPT_ENCODING, "gzip, deflate, br, zstd");
});

Deno.test("ContentDecoder.read() decodes every coding fed whole and byte by byte", () => {
  for (const [label, coding, encode] of CODINGS) {
    // Zeros too: zstd codes them as RLE blocks, brotli as long repeats.
    const inputs = [0, 1, 1000, 300_000].map((n) => sample(n, n + 1));
    inputs.push(new Uint8Array(600_000));
    for (const data of inputs) {
      const length = data.length;
      const coded = encode(data);
      assertEquals(
        decodeInPieces(coding, coded, coded.length, 256 * 1024),
        data,
        `${label} ${length} whole`,
      );
      if (length <= 1000) {
        assertEquals(
          decodeInPieces(coding, coded, 1, 7),
          data,
          `${label} ${length} byte by byte`,
        );
      }
      assertEquals(
        decodeInPieces(coding, coded, 4093, 10_000),
        data,
        `${label} ${length} in 4093-byte pieces`,
      );
    }
  }
});

Deno.test("ContentDecoder.read() decodes consecutive gzip members and zstd frames", () => {
  const a = sample(5000, 1), b = sample(7000, 2);
  for (const coding of ["gzip", "x-gzip"]) {
    const coded = concat([own(zlib.gzipSync(a)), own(zlib.gzipSync(b))]);
    assertEquals(
      decodeInPieces(coding, coded, coded.length, 4096),
      concat([a, b]),
    );
    assertEquals(decodeInPieces(coding, coded, 3, 4096), concat([a, b]));
  }
  // A skippable frame (RFC 8878 section 3.1.2) between two zstd frames.
  const skippable = new Uint8Array([0x5a, 0x2a, 0x4d, 0x18, 2, 0, 0, 0, 7, 7]);
  const coded = concat([
    own(zstdCompressSync(a)),
    skippable,
    own(zstdCompressSync(b)),
  ]);
  assertEquals(
    decodeInPieces("zstd", coded, coded.length, 4096),
    concat([a, b]),
  );
  assertEquals(decodeInPieces("zstd", coded, 1, 4096), concat([a, b]));
  // A frame of one RLE block (RFC 8878 section 3.1.1.2): 100 times "A" from one
  // byte, whose header gives the decoded size, not the size on the wire.
  const rle = new Uint8Array([
    0x28,
    0xb5,
    0x2f,
    0xfd,
    0x20,
    100,
    0x23,
    3,
    0,
    0x41,
  ]);
  assertEquals(
    decodeInPieces("zstd", rle, 1, 4096),
    new Uint8Array(100).fill(0x41),
  );
  assertInvalid(
    () => decodeBody(rle.subarray(0, 9), "zstd", Infinity),
    "rle cut",
  );
});

/**
 * A gzip member built field by field (RFC 1952 section 2.3): `flags` of FEXTRA
 * (4), FNAME (8), FCOMMENT (16), FHCRC (2), in the RFC's order, and `method`.
 */
function gzipMember(
  data: Uint8Array,
  { flags = 0, method = 8, extra = 0 } = {},
): Uint8Array {
  const parts: Uint8Array[] = [
    new Uint8Array([0x1f, 0x8b, method, flags, 1, 2, 3, 4, 0, 3]),
  ];
  if (flags & 4) {
    // XLEN, then that many seeded bytes (the subfields are not read).
    const field = sample(extra, 7);
    parts.push(new Uint8Array([extra & 0xff, extra >> 8]), field);
  }
  const text = new TextEncoder();
  if (flags & 8) parts.push(text.encode("index.html\0"));
  if (flags & 16) parts.push(text.encode("a comment, gzip -c style\0"));
  if (flags & 2) {
    const crc16 = crc32(concat(parts)) & 0xffff;
    parts.push(new Uint8Array([crc16 & 0xff, crc16 >> 8]));
  }
  const trailer = new Uint8Array(8);
  new DataView(trailer.buffer).setUint32(0, crc32(data), true);
  new DataView(trailer.buffer).setUint32(4, data.length, true);
  parts.push(own(zlib.deflateRawSync(data)), trailer);
  return concat(parts);
}

Deno.test("ContentDecoder.read() skips every optional gzip header field, however the pieces split it", () => {
  const data = sample(2000, 4);
  // Every combination of the four fields, an empty and a long FEXTRA.
  for (let flags = 0; flags < 32; flags += 2) {
    for (const extra of flags & 4 ? [0, 3, 65_535] : [0]) {
      const member = gzipMember(data, { flags, extra });
      const what = `FLG ${flags}, XLEN ${extra}`;
      // The fixture is a member zlib's own gzip reader takes.
      assertEquals(own(zlib.gunzipSync(member)), data, `${what}: zlib`);
      for (const step of [member.length, 1, 2, 7, 4093]) {
        if (step === 1 && extra > 3) continue; // 65 KiB byte by byte: slow
        assertEquals(
          decodeInPieces("gzip", member, step, 4096),
          data,
          `${what} in ${step}-byte pieces`,
        );
      }
      // Then a second member with the same fields.
      const two = concat([member, member]);
      assertEquals(
        decodeInPieces("gzip", two, 3, 4096),
        concat([data, data]),
        `${what}, two members`,
      );
    }
  }
});

Deno.test("ContentDecoder.read() fails a gzip header with another method or a reserved flag", () => {
  const data = sample(100, 4);
  for (const method of [0, 7, 9]) {
    const error = assertInvalid(
      () => decodeBody(gzipMember(data, { method }), "gzip", Infinity),
      `method ${method}`,
    );
    assert(
      error.message.includes("unknown compression method"),
      error.message,
    );
  }
  for (const flags of [0x20, 0x40, 0x80, 0x28]) {
    const error = assertInvalid(
      () => decodeBody(gzipMember(data, { flags }), "gzip", Infinity),
      `FLG ${flags}`,
    );
    assert(error.message.includes("unknown header flags set"), error.message);
  }
  // Not the first member only: a second one's header is checked as well.
  const second = concat([gzipMember(data), gzipMember(data, { method: 7 })]);
  assertInvalid(() => decodeBody(second, "gzip", Infinity), "second member");
});

Deno.test("ContentDecoder.read() fails every truncation of every coding with invalid-content-encoding", () => {
  for (const [label, coding, encode] of CODINGS) {
    for (const data of [sample(0), sample(700, 9)]) {
      const coded = encode(data);
      for (let cut = 1; cut < coded.length; cut++) {
        const what =
          `${label} of ${data.length} bytes cut at ${cut}/${coded.length}`;
        assertInvalid(
          () => decodeInPieces(coding, coded.subarray(0, cut), cut, 1 << 20),
          what,
        );
        assertInvalid(
          () => decodeInPieces(coding, coded.subarray(0, cut), 1, 64),
          `${what}, byte by byte`,
        );
      }
    }
  }
});

Deno.test("ContentDecoder.read() fails garbage under every coding with invalid-content-encoding", () => {
  const garbage = [
    new TextEncoder().encode(
      "this body was never compressed at all\n".repeat(40),
    ),
    // Seeded noise, as a corrupt body would look.
    Uint8Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24),
  ];
  for (const [label, coding] of CODINGS) {
    for (const [i, body] of garbage.entries()) {
      assertInvalid(() => decodeBody(body, coding, Infinity), `${label} #${i}`);
    }
  }
});

Deno.test("ContentDecoder.read() fails a changed byte in checksummed gzip, zlib and zstd data", () => {
  const data = sample(600, 5);
  const checked: [string, string, Uint8Array, number][] = [
    // gzip: from the end of the 10-byte header; the CRC-32 covers the rest.
    ["gzip", "gzip", own(zlib.gzipSync(data)), 10],
    ["zlib deflate", "deflate", own(zlib.deflateSync(data)), 0],
    [
      "zstd with a checksum",
      "zstd",
      own(zstdCompressSync(data, { params: { [C.ZSTD_c_checksumFlag!]: 1 } })),
      0,
    ],
  ];
  for (const [label, coding, coded, from] of checked) {
    for (let at = from; at < coded.length; at++) {
      const corrupt = coded.slice();
      corrupt[at]! ^= 0xff;
      assertInvalid(
        () => decodeBody(corrupt, coding, Infinity),
        `${label}, byte ${at} of ${coded.length} changed`,
      );
    }
  }
});

Deno.test("ContentDecoder.read() drops bytes after the end of the coded data, even ones that start a gzip or zstd magic", () => {
  const data = sample(3000, 3);
  for (const [label, coding, encode] of CODINGS) {
    const coded = encode(data);
    for (const tail of [[0], [0, 0, 0, 0], [0x1f], [1, 2, 3], [0x28, 0xb5]]) {
      const body = concat([coded, new Uint8Array(tail)]);
      const what = `${label} followed by ${tail}`;
      assertEquals(
        decodeInPieces(coding, body, body.length, 1 << 20),
        data,
        what,
      );
      assertEquals(decodeInPieces(coding, body, 1, 1 << 20), data, what);
    }
  }
});

Deno.test("ContentDecoder.read() fails a zstd frame after a good one that is cut short or has a reserved header bit", () => {
  const data = sample(3000, 5);
  const first = own(zstdCompressSync(data));
  const second = own(zstdCompressSync(data));
  const reserved = second.slice();
  reserved[4]! |= 0x08; // the frame header descriptor's reserved bit
  for (
    const [what, tail] of [
      ["cut short", second.subarray(0, second.length >> 1)],
      ["reserved bit", reserved],
    ] as const
  ) {
    const body = concat([first, tail]);
    assertInvalid(
      () => decodeInPieces("zstd", body, body.length, 1 << 20),
      what,
    );
    assertInvalid(() => decodeInPieces("zstd", body, 1, 1 << 20), what);
  }
});

Deno.test("ContentDecoder.read() rejects zstd windows above 8 MiB", () => {
  const coded = own(
    zstdCompressSync(new Uint8Array(16 * MiB), {
      params: { [C.ZSTD_c_windowLog!]: 24, [C.ZSTD_c_compressionLevel!]: 1 },
    }),
  );
  const error = assertInvalid(
    () => decodeBody(coded, "zstd", Infinity),
    "zstd",
  );
  assert(/memory/i.test(error.message), error.message);
});

Deno.test("ContentDecoder.read() returns standalone arrays of at most max bytes", () => {
  const cases: [length: number, max: number][] = [
    [10, 256 * 1024],
    [5000, 1000],
    [600_000, 256 * 1024],
    [600_000, 300_000],
  ];
  for (const [label, coding, encode] of CODINGS) {
    for (const [length, max] of cases) {
      const data = sample(length, 4);
      const decoder = ContentDecoder.for(coding, Infinity)!;
      decoder.write(encode(data));
      decoder.end();
      let total = 0;
      for (let chunk; (chunk = decoder.read(max)) !== null;) {
        const what = `${label}: a ${chunk.length}-byte slice of ${length}`;
        assertLessOrEqual(chunk.length, max, what);
        assertEquals(chunk.byteOffset, 0, what);
        assertEquals(chunk.buffer.byteLength, chunk.length, what);
        assertStrictEquals(Object.getPrototypeOf(chunk), Uint8Array.prototype);
        const expected = data.subarray(total, total + chunk.length);
        assert(Buffer.compare(chunk, expected) === 0, `${what}: other bytes`);
        total += chunk.length;
      }
      assertEquals(total, length);
    }
  }
});

Deno.test("ContentDecoder.read() decodes a br body as it arrives on a TCP connection", async () => {
  const data = sample(2 * MiB, 21);
  const coded = own(
    zlib.brotliCompressSync(data, { params: { [C.BROTLI_PARAM_QUALITY!]: 5 } }),
  );
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serve = (async () => {
    using conn = await listener.accept();
    // Small writes with pauses, so the body arrives over many reads.
    for (let at = 0, n = 0; at < coded.length; at += 1000, n++) {
      await conn.write(coded.subarray(at, at + 1000));
      if (n % 20 === 0) await new Promise((r) => setTimeout(r, 1));
    }
  })();
  using conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: listener.addr.port,
  });
  const decoder = ContentDecoder.for("br", Infinity)!;
  const buf = new Uint8Array(4096); // reused by every read, as a client's would be
  const parts: Uint8Array[] = [];
  let received = 0;
  let decodedBeforeLastByte = 0;
  const started = performance.now();
  for (let reads = 0;; reads++) {
    assert(reads < 100_000 && performance.now() - started < 10_000, "bounded");
    const n = await conn.read(buf);
    if (n === null) break;
    received += n;
    decoder.write(buf.subarray(0, n));
    for (let chunk; (chunk = decoder.read()) !== null;) {
      parts.push(chunk);
      if (received < coded.length) decodedBeforeLastByte += chunk.length;
    }
  }
  decoder.end();
  for (let chunk; (chunk = decoder.read()) !== null;) parts.push(chunk);
  await serve;
  assert(decoder.finished);
  assert(Buffer.compare(concat(parts), data) === 0, "the bytes sent");
  assertLess(0, decodedBeforeLastByte, "decoded before the body was complete");
});

Deno.test("ContentDecoder.write() copies its input", () => {
  const data = sample(2000, 6);
  const coded = own(zlib.gzipSync(data));
  const decoder = ContentDecoder.for("gzip", Infinity)!;
  const reused = coded.slice();
  decoder.write(reused);
  reused.fill(0); // the caller's read buffer, reused before the decoder reads
  decoder.end();
  assertEquals(decoder.read(), data);
});

Deno.test("ContentDecoder.for() decodes stacked codings last first, and nothing of a list with an unknown coding", () => {
  const data = sample(4000, 8);
  const gz = own(zlib.gzipSync(data));
  const gzThenBr = own(zlib.brotliCompressSync(gz));
  assertEquals(decodeBody(gzThenBr, "gzip, br", Infinity), data);
  assertEquals(decodeInPieces("GZIP ,BR", gzThenBr, 5, 333), data);
  assertEquals(decodeBody(gz, "identity, gzip, identity", Infinity), data);
  // A list with an unknown coding anywhere is not decoded at all, as fetch
  // does: bytes with only some layers undone would match no header.
  assertStrictEquals(decodeBody(gz, "foo, gzip", Infinity), gz);
  assertStrictEquals(ContentDecoder.for("x-foo, gzip", Infinity), null);
  assertStrictEquals(decodeBody(gz, "gzip, foo", Infinity), gz);
  assertStrictEquals(ContentDecoder.for("gzip, foo", Infinity), null);
  assertStrictEquals(ContentDecoder.for("identity", Infinity), null);
  assertStrictEquals(ContentDecoder.for("", Infinity), null);
  assertStrictEquals(ContentDecoder.for(null, Infinity), null);
  assertStrictEquals(ContentDecoder.for("compress", Infinity), null);
  assertThrows(() => ContentDecoder.for("gzip", -1), RangeError);
  assertThrows(() => ContentDecoder.for("gzip", NaN), RangeError);
});

Deno.test("ContentDecoder.end() on a body of zero bytes finishes with no output", () => {
  for (const [label, coding] of CODINGS) {
    const decoder = ContentDecoder.for(coding, 0)!;
    assertStrictEquals(decoder.read(), null, label);
    assert(!decoder.finished, label);
    decoder.write(new Uint8Array(0));
    decoder.end();
    assertStrictEquals(decoder.read(), null, label);
    assert(decoder.finished, label);
  }
  const empty = new Uint8Array(0);
  assertStrictEquals(decodeBody(empty, "br", 0), empty);
});

Deno.test("ContentDecoder.read() throws the same error again, and write() after end() throws", () => {
  const decoder = ContentDecoder.for("br", Infinity)!;
  decoder.write(new TextEncoder().encode("not brotli"));
  decoder.end();
  const first = assertInvalid(() => decoder.read(), "first read");
  const again = assertThrows(() => decoder.read(), HttpParseError);
  assertStrictEquals(again, first);
  assertThrows(() => decoder.write(new Uint8Array(1)), TypeError, "ended");
  assertThrows(() => decoder.read(0), RangeError);
});

Deno.test("ContentDecoder.close() frees the native state of a decoder abandoned mid-body", () => {
  // Each brotli decoder holds a window of a few MiB until it is closed.
  const data = Uint8Array.from(
    { length: 4 * MiB },
    (_, i) => (i * 31) ^ (i >> 9),
  );
  const coded = own(
    zlib.brotliCompressSync(data, { params: { [C.BROTLI_PARAM_QUALITY!]: 4 } }),
  );
  const half = coded.subarray(0, coded.length >> 1);
  const rssBefore = Deno.memoryUsage().rss;
  for (let i = 0; i < 100; i++) {
    using decoder = ContentDecoder.for("br", Infinity)!;
    decoder.write(half);
    assert(decoder.read() !== null);
    if (i % 2 === 0) decoder.close(); // and `using` closes the others
    assertStrictEquals(decoder.read(), null);
    assert(!decoder.finished);
  }
  const grown = Deno.memoryUsage().rss - rssBefore;
  assertLess(grown, 96 * MiB, `resident memory grew by ${grown} bytes`);
});

Deno.test("ContentDecoder.read() returns an empty array when its input budget runs out before any output", () => {
  // A gzip header with a 3 MiB comment: input that decodes to nothing.
  const data = sample(1000, 2);
  const deflated = own(zlib.deflateRawSync(data));
  const comment = new Uint8Array(3 * MiB).fill(0x61);
  const trailer = new Uint8Array(8);
  new DataView(trailer.buffer).setUint32(0, crc32(data), true);
  new DataView(trailer.buffer).setUint32(4, data.length, true);
  const coded = concat([
    new Uint8Array([0x1f, 0x8b, 8, 0x10, 0, 0, 0, 0, 0, 0xff]),
    comment,
    new Uint8Array([0]),
    deflated,
    trailer,
  ]);
  const decoder = ContentDecoder.for("gzip", Infinity)!;
  decoder.write(coded);
  decoder.end();
  const results: (number | null)[] = [];
  for (let chunk; (chunk = decoder.read()) !== null;) {
    results.push(chunk.length);
  }
  assertEquals(results, [0, 0, 0, 1000]);
  assert(decoder.finished);
});

/**
 * A gzip body of `copies` times `block`, built without ever holding the
 * decoded size: each copy is deflated once with a full flush (no reference
 * to earlier bytes), so the same compressed piece can be repeated.
 */
function repeatedGzip(block: Uint8Array, copies: number) {
  const piece = own(
    zlib.deflateRawSync(block, { finishFlush: C.Z_FULL_FLUSH, level: 6 }),
  );
  let crc = 0;
  for (let i = 0; i < copies; i++) crc = crc32(block, crc);
  const tail = new Uint8Array(10);
  tail.set([0x03, 0x00]); // an empty final block
  new DataView(tail.buffer).setUint32(2, crc, true);
  new DataView(tail.buffer).setUint32(6, (block.length * copies) >>> 0, true);
  return {
    head: new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]),
    piece,
    copies,
    tail,
    codedLength: 20 + piece.length * copies,
  };
}

Deno.test("ContentDecoder.read() stops a 1 GiB gzip bomb as soon as the decoded count passes maxBytes", () => {
  const bomb = repeatedGzip(new Uint8Array(MiB), 1024);
  assertLess(bomb.codedLength, 1.1 * MiB, "small on the wire");
  const maxBytes = 8 * MiB;
  const rssBefore = Deno.memoryUsage().rss;
  const started = performance.now();
  const decoder = ContentDecoder.for("gzip", maxBytes)!;
  decoder.write(bomb.head);
  for (let i = 0; i < bomb.copies; i++) decoder.write(bomb.piece);
  decoder.write(bomb.tail);
  decoder.end();
  let decoded = 0;
  const error = assertThrows(() => {
    for (let chunk; (chunk = decoder.read()) !== null;) decoded += chunk.length;
  }, HttpParseError);
  const elapsed = performance.now() - started;
  assertEquals(error.code, "body-too-large");
  assertEquals(
    decoded,
    maxBytes,
    "every byte up to the limit came out, none past it",
  );
  assertLess(elapsed, 1000, `stopped after ${elapsed.toFixed(0)} ms`);
  const grown = Deno.memoryUsage().rss - rssBefore;
  assertLess(grown, 128 * MiB, `resident memory grew by ${grown} bytes`);
});

Deno.test("ContentDecoder.read() stops a bomb under every coding at maxBytes", () => {
  const zeros = new Uint8Array(32 * MiB);
  const maxBytes = MiB + 1;
  for (const [label, coding, encode] of CODINGS) {
    const coded = encode(zeros);
    assertLess(coded.length, 64 * 1024, label);
    for (const step of [coded.length, 100]) {
      let decoded = 0;
      const error = assertThrows(
        () => decodeInPieces(coding, coded, step, 100_000, maxBytes),
        HttpParseError,
      );
      assertEquals(error.code, "body-too-large", label);
      // decodeInPieces only sees the error: count again up to it.
      const decoder = ContentDecoder.for(coding, maxBytes)!;
      decoder.write(coded);
      decoder.end();
      assertThrows(() => {
        for (let chunk; (chunk = decoder.read(100_000)) !== null;) {
          decoded += chunk.length;
        }
      }, HttpParseError);
      // The read that passes the limit throws instead of returning.
      assertLessOrEqual(decoded, maxBytes, label);
      assertLess(maxBytes - decoded, 100_000, label);
    }
  }
  // The one-shot path keeps the limit too.
  const gz = own(zlib.gzipSync(zeros));
  assertThrows(() => decodeBody(gz, "gzip", MiB), HttpParseError, "more than");
  assertEquals(decodeBody(gz, "gzip", 32 * MiB).length, 32 * MiB);
});

Deno.test({
  name:
    "ContentDecoder.read() keeps a timer firing every 100 ms while a 256 MiB gzip body decodes between event-loop turns",
  async fn() {
    const body = repeatedGzip(sample(MiB, 11), 256);
    const turn = () => new Promise((resolve) => setTimeout(resolve, 0));
    let last = performance.now();
    const gaps: number[] = [];
    let ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      gaps.push(now - last);
      last = now;
      ticks++;
    }, 10);
    const rssBefore = Deno.memoryUsage().rss;
    let rssPeak = rssBefore;
    let decoded = 0;
    let reads = 0;
    let longestRead = 0;
    try {
      const decoder = ContentDecoder.for("gzip", Infinity)!;
      const drain = async () => {
        for (;;) {
          const started = performance.now();
          const chunk = decoder.read();
          longestRead = Math.max(longestRead, performance.now() - started);
          if (chunk === null) return;
          decoded += chunk.length;
          if (++reads % 64 === 0) {
            rssPeak = Math.max(rssPeak, Deno.memoryUsage().rss);
          }
          await turn();
        }
      };
      decoder.write(body.head);
      for (let i = 0; i < body.copies; i++) {
        decoder.write(body.piece);
        await drain();
      }
      decoder.write(body.tail);
      decoder.end();
      await drain();
      assert(decoder.finished);
    } finally {
      clearInterval(timer);
    }
    assertEquals(decoded, 256 * MiB);
    assert(ticks > 10, `the timer fired ${ticks} times`);
    // Nearly every gap is within 100 ms; the few longest may hold a major GC
    // (256 MiB of output went through the heap) or another process's turn on a
    // loaded machine, which no slicing can prevent. The bound on one read() below
    // is what keeps the loop live.
    gaps.sort((a, b) => a - b);
    const p99 = gaps[Math.floor(gaps.length * 0.99)]!;
    const worst = gaps[gaps.length - 1]!;
    assertLessOrEqual(
      p99,
      100,
      `99th percentile timer gap ${p99.toFixed(1)} ms`,
    );
    assertLessOrEqual(worst, 400, `worst timer gap ${worst.toFixed(1)} ms`);
    assertLess(longestRead, 50, `longest read() ${longestRead.toFixed(1)} ms`);
    const grown = rssPeak - rssBefore;
    assertLess(grown, 128 * MiB, `resident memory grew by ${grown} bytes`);
  },
});

Deno.test("decodeBody() returns the body itself when nothing applies and a standalone array otherwise", () => {
  const data = sample(70_000, 12);
  const body = new Uint8Array(data);
  assertStrictEquals(decodeBody(body, null, Infinity), body);
  assertStrictEquals(decodeBody(body, "identity", Infinity), body);
  for (const [label, coding, encode] of CODINGS) {
    const decoded = decodeBody(encode(data), coding, Infinity);
    assertEquals(decoded, data, label);
    assertEquals(decoded.buffer.byteLength, decoded.length, label);
    assertStrictEquals(Object.getPrototypeOf(decoded), Uint8Array.prototype);
    const small = decodeBody(encode(data.subarray(0, 5)), coding, Infinity);
    assertEquals(small.buffer.byteLength, 5, label);
  }
  const error = assertThrows(
    () => decodeBody(own(zlib.gzipSync(data)), "gzip", 1000),
    HttpParseError,
  );
  assertEquals(error.code, "body-too-large");
  assertInstanceOf(error, Error);
});

Deno.test("ContentDecoder.read() hands out every byte the input so far decodes to, before end(), for every coding", () => {
  // 3,000,000 bytes that code to a few dozen: the decoder's first run fills its
  // output slice and holds the rest, which a streaming reader wants at once.
  const size = 3_000_000;
  const data = new Uint8Array(size).fill(97);
  for (const [name, coding, encode] of CODINGS) {
    const decoder = ContentDecoder.for(coding, Infinity)!;
    decoder.write(encode(data));
    let before = 0;
    for (let chunk; (chunk = decoder.read()) !== null;) before += chunk.length;
    assertEquals(before, size, `${name}: decoded before end()`);
    decoder.end();
    assertEquals(decoder.read(), null);
    assert(decoder.finished, name);
    decoder.close();
  }
});

Deno.test("ContentDecoder.for() takes up to 5 stacked codings and fails more with invalid-content-encoding, as curl does", () => {
  const five = ContentDecoder.for(Array(5).fill("gzip").join(", "), Infinity);
  assert(five !== null);
  five.end();
  const error = assertThrows(
    () => ContentDecoder.for(Array(6).fill("gzip").join(","), Infinity),
    HttpParseError,
    "more than 5 content codings (6)",
  );
  assertEquals(error.code, "invalid-content-encoding");
  // identity is no coding.
  assert(
    ContentDecoder.for(
      ["identity", ...Array(5).fill("br"), "identity"].join(","),
      Infinity,
    ) !== null,
  );
});

Deno.test("fetchAll(): a response listing 12,000 gzip codings fails alone with invalid-content-encoding; the crawl goes on", async () => {
  await using server = scriptedServer(async (conn) => {
    const head = await readHead(conn);
    const evil = head.startsWith("GET /evil ");
    const body = evil
      ? new Uint8Array([0x1f, 0x8b, 8, 0])
      : encoder.encode("ok");
    await writeAll(
      conn,
      encoder.encode(
        `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n${
          evil
            ? `Content-Encoding: ${Array(12_000).fill("gzip").join(",")}\r\n`
            : ""
        }\r\n`,
      ),
    );
    await writeAll(conn, body);
  });
  const results = await fetchAll(
    [server.url("/good"), server.url("/evil"), server.url("/good?2")],
    { keepAlive: false },
  );
  assertEquals(results.map((r) => r.ok), [true, false, true]);
  const evil = results[1]!;
  assert(!evil.ok);
  assertInstanceOf(evil.error, HttpParseError);
  assertEquals(evil.error.code, "invalid-content-encoding");
});

Deno.test("fetchAll(): a response with no body stands though it lists more than 5 codings: 204, 304, a HEAD's answer, Content-Length: 0", async () => {
  const codings = Array(6).fill("gzip").join(",");
  await using server = scriptedServer(async (conn) => {
    const head = await readHead(conn);
    const path = head.split(" ")[1];
    const status = path === "/204"
      ? "204 No Content"
      : path === "/304"
      ? "304 Not Modified"
      : "200 OK";
    const length = path === "/204" || path === "/304"
      ? ""
      : path === "/head"
      ? "Content-Length: 50\r\n"
      : "Content-Length: 0\r\n";
    await writeAll(
      conn,
      encoder.encode(
        `HTTP/1.1 ${status}\r\n${length}Content-Encoding: ${codings}\r\nConnection: close\r\n\r\n`,
      ),
    );
  });
  const results = await fetchAll([
    server.url("/204"),
    server.url("/304"),
    { url: server.url("/head"), method: "HEAD" },
    server.url("/empty"),
  ], { keepAlive: false });
  assertEquals(
    results.map((r) => r.ok ? r.response.status : String(r.error)),
    [204, 304, 200, 200],
  );
});

Deno.test("fetchAll(): a body announced with more than 5 codings fails at its head, none of it in the sink, though the server sends it slowly", async () => {
  await using server = scriptedServer(async (conn) => {
    await readHead(conn);
    await writeAll(
      conn,
      encoder.encode(
        `HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nContent-Encoding: ${
          Array(6).fill("gzip").join(",")
        }\r\n\r\n`,
      ),
    );
    // The head alone first (the client then reads the body straight into
    // its sink's room), 100 KB later, the rest never: a fail at the body's
    // end would not come.
    await new Promise((resolve) => setTimeout(resolve, 100));
    await writeAll(conn, new Uint8Array(100_000)).catch(() => {});
    await readHead(conn).catch(() => {});
  });
  let sunk = 0;
  const started = performance.now();
  const [result] = await fetchAll([{
    url: server.url("/slow"),
    sink: new WritableStream({
      write(chunk) {
        sunk += chunk.length;
      },
    }),
  }], { timeout: 5_000 });
  assert(result !== undefined && !result.ok);
  assertInstanceOf(result.error, HttpParseError);
  assertEquals(result.error.code, "invalid-content-encoding");
  // Before: the raw bytes went to the sink, and the URL failed at its end.
  assertEquals(sunk, 0);
  assertLess(performance.now() - started, 1_000);
});
