/**
 * Content decoding speed: {@linkcode ContentDecoder} (incremental, in 256 KiB
 * slices) against `node:zlib`'s one-shot `gunzipSync`, on one 64 MiB gzip body
 * and on 10,000 small (1 KiB) ones.
 *
 * Run: `deno bench --allow-read bench/decode_bench.ts`. MB/s for the large body
 * is 64 MiB divided by the time per iteration; for the small bodies the time
 * per iteration is the time per body.
 *
 * @module
 */
import zlib from "node:zlib";
import { ContentDecoder, decodeBody } from "../client/_decode.ts";
import { textLike as sample } from "../tests/_net.ts";

const MiB = 1024 * 1024;

const large = new Uint8Array(zlib.gzipSync(sample(64 * MiB, 1)));
const small = Array.from(
  { length: 10_000 },
  (_, i) => new Uint8Array(zlib.gzipSync(sample(1024, i + 2))),
);
let next = 0;
const nextSmall = () => small[next++ % small.length]!;

/** Decodes `coded` fed in `piece`-byte writes, reading after each; returns the size. */
function streamed(coded: Uint8Array, piece: number): number {
  const decoder = ContentDecoder.for("gzip", Infinity)!;
  let total = 0;
  for (let at = 0; at < coded.length; at += piece) {
    decoder.write(coded.subarray(at, at + piece));
    for (let chunk; (chunk = decoder.read()) !== null;) total += chunk.length;
  }
  decoder.end();
  for (let chunk; (chunk = decoder.read()) !== null;) total += chunk.length;
  return total;
}

Deno.bench({
  name: "gunzipSync, 64 MiB body",
  group: "64 MiB",
  baseline: true,
  fn: () => {
    zlib.gunzipSync(large);
  },
});

Deno.bench({
  name: "ContentDecoder, 64 MiB body in 64 KiB writes",
  group: "64 MiB",
  fn: () => {
    streamed(large, 64 * 1024);
  },
});

Deno.bench({
  name: "decodeBody (ContentDecoder, one write), 64 MiB body",
  group: "64 MiB",
  fn: () => {
    decodeBody(large, "gzip", Infinity);
  },
});

Deno.bench({
  name: "gunzipSync, one 1 KiB body",
  group: "1 KiB",
  baseline: true,
  fn: () => {
    zlib.gunzipSync(nextSmall());
  },
});

Deno.bench({
  name: "ContentDecoder, one 1 KiB body",
  group: "1 KiB",
  fn: () => {
    const decoder = ContentDecoder.for("gzip", Infinity)!;
    decoder.write(nextSmall());
    decoder.end();
    while (decoder.read() !== null);
  },
});

Deno.bench({
  name: "decodeBody, one 1 KiB body",
  group: "1 KiB",
  fn: () => {
    decodeBody(nextSmall(), "gzip", Infinity);
  },
});
