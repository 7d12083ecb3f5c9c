/**
 * Two versions of this module in one process, run in turn: CPU µs per
 * streamed upload of each. Separate processes of one client differ by up to
 * ~15% here (each lands in one of two modes), more than a change to the upload
 * path may move it; in one process both versions share the machine's state.
 *
 * Run (the baseline a checkout of another revision):
 * `git archive REV | tar -x -C /tmp/base` then
 * `deno run -A bench/upload_ab.ts /tmp/base/mod.ts [CHUNKSxSIZE] [UPLOADS] [CONCURRENCY]`,
 * by default `64x1024 2000 64` (the `upload` row's bodies).
 *
 * Each of 24 rounds runs both versions, in alternating order; the first 4
 * rounds are warm-up. Prints the median CPU µs per upload of each and their
 * ratio. The server is `bench/_origin.ts` in a process of its own.
 */
import { cpuUsage } from "node:process";
import { startDenoOrigin } from "./_servers.ts";
import type * as Mod from "../mod.ts";

const ROUNDS = 24;
const WARMUP = 4;

const [basePath, shape = "64x1024", uploadsArg = "2000", concArg = "64"] =
  Deno.args;
const m = /^(\d+)x(\d+)$/.exec(shape);
if (basePath === undefined || m === null) {
  console.error(
    "usage: deno run -A bench/upload_ab.ts BASE/mod.ts [CHUNKSxSIZE] [UPLOADS] [CONCURRENCY]",
  );
  Deno.exit(2);
}
const chunks = Number(m[1]);
const chunk = new Uint8Array(Number(m[2])).fill(97);
const uploads = Number(uploadsArg);
const concurrency = Number(concArg);

const versions: [string, typeof Mod][] = [
  ["this", await import("../mod.ts")],
  ["base", await import(new URL(basePath, `file://${Deno.cwd()}/`).href)],
];
const origin = await startDenoOrigin(0);
try {
  const cpu = new Map<string, number[]>(versions.map(([name]) => [name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? versions : versions.toReversed();
    for (const [name, mod] of order) {
      // A producer reusing one buffer, as a file reader does.
      const requests = Array.from({ length: uploads }, () => ({
        url: `http://127.0.0.1:${origin.port}/upload`,
        method: "POST",
        body: ReadableStream.from(
          (function* () {
            for (let i = 0; i < chunks; i++) yield chunk;
          })(),
        ),
      }));
      const before = cpuUsage();
      const results = await mod.fetchAll(requests, { concurrency });
      const used = cpuUsage(before);
      const failed = results.find((r) => !r.ok);
      if (failed !== undefined && !failed.ok) throw failed.error;
      if (round >= WARMUP) {
        cpu.get(name)!.push((used.user + used.system) / uploads);
      }
    }
  }
  const median = (xs: number[]) =>
    xs.toSorted((a, b) => a - b)[xs.length >> 1]!;
  const mine = median(cpu.get("this")!);
  const base = median(cpu.get("base")!);
  console.log(
    `${uploads} uploads of ${chunks} x ${chunk.length} B, concurrency ${concurrency}, ${
      ROUNDS - WARMUP
    } rounds: this ${mine.toFixed(1)} µs/upload, base ${
      base.toFixed(1)
    }, this ÷ base ${(mine / base).toFixed(3)}x`,
  );
} finally {
  await origin.stop();
}
