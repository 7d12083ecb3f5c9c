/**
 * One large body of unknown length kept in memory (no sink): how long
 * `fetchAll` takes to have it, and the event loop's longest pause meanwhile (a
 * 1 ms timer chain), for this checkout and optionally another version. A body
 * whose length is not known ahead (chunked, or decoded) used to grow by
 * doubling copies, each made at once; it now grows in place.
 *
 * Run (the baseline a checkout of another revision):
 *
 * ```sh
 * git archive REV | tar -x -C /tmp/base
 * deno run -A bench/body_pause.ts                                   # 512 MiB gzip, then chunked; this checkout
 * deno run -A bench/body_pause.ts --base /tmp/base/mod.ts --mib 256 --rounds 3
 * ```
 *
 * Each run is a process of its own (a body that large must not share a heap
 * with the previous one); the origin is `Deno.serve` in that process, serving
 * the gzip body prebuilt or the chunked one from a stream of 1 MiB pieces.
 * Prints, per version and framing, the median of the runs' totals and longest
 * pauses, with their range.
 *
 * @module
 */
import { gzipSync } from "node:zlib";
import { median } from "./_util.ts";

const USAGE =
  "usage: deno run -A bench/body_pause.ts [--base BASE/mod.ts] [--mib N] [--rounds R]";

interface Run {
  total: number;
  pause: number;
}

/** The child: one body through `mod`'s `fetchAll`, printed as JSON. */
async function child(mod: string, mib: number, framing: string): Promise<void> {
  const { fetchAll } = await import(mod) as typeof import("../mod.ts");
  const piece = new Uint8Array(1 << 20).map((_, i) =>
    (i * 7 + (i >> 12)) & 255
  );
  let gz: Uint8Array<ArrayBuffer> | null = null;
  if (framing === "gzip") {
    const whole = new Uint8Array(mib << 20);
    for (let i = 0; i < mib; i++) whole.set(piece, i << 20);
    gz = new Uint8Array(gzipSync(whole, { level: 1 }));
  }
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => {
      if (gz !== null) {
        return new Response(gz, { headers: { "content-encoding": "gzip" } });
      }
      let sent = 0;
      return new Response(
        new ReadableStream({
          pull(c) {
            if (sent++ < mib) c.enqueue(piece);
            else c.close();
          },
        }),
      );
    },
  );
  let pause = 0;
  let last = performance.now();
  let stop = false;
  const tick = () => {
    const now = performance.now();
    pause = Math.max(pause, now - last);
    last = now;
    if (!stop) setTimeout(tick, 1);
  };
  setTimeout(tick, 1);
  const start = performance.now();
  const [result] = await fetchAll([`http://127.0.0.1:${server.addr.port}/`]);
  const total = performance.now() - start;
  stop = true;
  await server.shutdown();
  if (!result!.ok || result!.response.body.length !== mib << 20) {
    throw new Error(`the body did not arrive whole: ${Deno.inspect(result)}`);
  }
  console.log(JSON.stringify({ total, pause }));
}

async function run(mod: string, mib: number, framing: string): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "--child",
      mod,
      String(mib),
      framing,
    ],
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`${mod} ${framing}: the child failed`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

function usage(problem: string): never {
  console.error(`bench/body_pause.ts: ${problem}\n${USAGE}`);
  Deno.exit(2);
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === "--child") {
    return await child(argv[1]!, Number(argv[2]), argv[3]!);
  }
  const versions = [new URL("../mod.ts", import.meta.url).href];
  let mib = 512;
  let rounds = 3;
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) usage(`${flag} takes a value`);
    if (flag === "--base") {
      versions.push(new URL(value, `file://${Deno.cwd()}/`).href);
    } else if (flag === "--mib" || flag === "--rounds") {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) {
        usage(`${flag} takes a positive integer, not ${value}`);
      }
      if (flag === "--mib") mib = n;
      else rounds = n;
    } else usage(`unknown option ${flag}`);
  }
  const fmt = (xs: number[]) =>
    `${median(xs).toFixed(0)} ms (${Math.min(...xs).toFixed(0)}..${
      Math.max(...xs).toFixed(0)
    })`;
  for (const framing of ["gzip", "chunked"]) {
    const runs = versions.map(() => [] as Run[]);
    for (let r = 0; r < rounds; r++) {
      // Alternating order: neither version always runs on a warmer machine.
      const order = r % 2 === 0
        ? versions.keys()
        : [...versions.keys()].reverse();
      for (const v of order) {
        runs[v]!.push(await run(versions[v]!, mib, framing));
      }
    }
    versions.forEach((version, v) => {
      const name = v === 0 ? "this checkout" : version;
      console.log(
        `${mib} MiB ${framing}, ${name}: total ${
          fmt(runs[v]!.map((x) => x.total))
        }, longest pause ${fmt(runs[v]!.map((x) => x.pause))}`,
      );
    });
  }
}

await main(Deno.args);
