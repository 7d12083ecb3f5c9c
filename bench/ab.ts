/**
 * Two versions of this module in one process, run in turn: CPU µs per request
 * of each, for GETs (keep-alive or not, `fetchAll` or `fetchEach`) or streamed
 * uploads. Separate processes of one client land ~15% apart here (each in one
 * of two modes), more than many changes move it; in one process both versions
 * share the machine's state, and the spread of the per-round ratios says how
 * small a difference the run can tell (run a version against itself to see it).
 *
 * Run (the baseline a checkout of another revision):
 *
 * ```sh
 * git archive REV | tar -x -C /tmp/base
 * deno run -A --v8-flags=--expose-gc bench/ab.ts /tmp/base/mod.ts                    # 20,000 GETs of 1 KiB, concurrency 64, nginx
 * deno run -A --v8-flags=--expose-gc bench/ab.ts /tmp/base/mod.ts --keep-alive false --count 5000
 * deno run -A --v8-flags=--expose-gc bench/ab.ts /tmp/base/mod.ts --upload 64x1024 --count 2000
 * deno run -A --v8-flags=--expose-gc bench/ab.ts /tmp/base/mod.ts --upload 400x16384 --count 60 --concurrency 4
 * ```
 *
 * Options: `--path P` (GET: `/1k` or `/64k`), `--count N`, `--concurrency C`,
 * `--keep-alive false`, `--each` (`fetchEach`, counting results as they come,
 * instead of `fetchAll`), `--async-source` (the URLs from an async generator,
 * not an array), `--upload CHUNKSxSIZE` (POSTs of a body streamed in
 * that many chunks, from a producer reusing one buffer, to `bench/_origin.ts`),
 * `--origin nginx|deno` (GETs; nginx by default, `bench/_origin.ts` when nginx
 * is missing), `--rounds R` (24) and `--warmup W` (4, not counted).
 *
 * Each round runs both versions, in alternating order, each run after a full
 * collection when `gc` is exposed (a run must not pay for the garbage of the
 * other's). Prints the median of the per-round ratios (this ÷ base, CPU µs per
 * request: the steadier figure), their range, and each version's median CPU µs
 * per request. Against a copy of itself (`git archive HEAD`), that median
 * read 0.92x to 1.04x here in 20 runs over GETs and uploads: a difference
 * inside that is not one a run can tell.
 *
 * @module
 */
import { cpuUsage } from "node:process";
import { type Origin, PATHS, startDenoOrigin, startNginx } from "./_servers.ts";
import { collectGarbage, median } from "./_util.ts";
import type * as Mod from "../mod.ts";

interface Args {
  base: string;
  path: string;
  count: number;
  concurrency: number;
  keepAlive: boolean;
  each: boolean;
  asyncSource: boolean;
  upload: { chunks: number; size: number } | null;
  origin: "nginx" | "deno";
  rounds: number;
  warmup: number;
}

const USAGE =
  "usage: deno run -A --v8-flags=--expose-gc bench/ab.ts BASE/mod.ts [--path /1k] [--count N] [--concurrency C] [--keep-alive false] [--each] [--async-source] [--upload CHUNKSxSIZE] [--origin nginx|deno] [--rounds R] [--warmup W]";

function usage(problem: string): never {
  console.error(`bench/ab.ts: ${problem}\n${USAGE}`);
  Deno.exit(2);
}

/** `value` as an integer of at least `min` (1: positive, 0: non-negative). */
function integer(name: string, value: string | undefined, min = 1): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    usage(
      `${name} takes a ${
        min > 0 ? "positive" : "non-negative"
      } integer, not ${value}`,
    );
  }
  return n;
}

function parseArgs(argv: string[]): Args {
  const [base, ...rest] = argv;
  if (base === undefined || base.startsWith("--")) usage("BASE/mod.ts first");
  const args: Args = {
    base,
    path: "/1k",
    count: 0,
    concurrency: 0,
    keepAlive: true,
    each: false,
    asyncSource: false,
    upload: null,
    origin: "nginx",
    rounds: 24,
    warmup: 4,
  };
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i]!;
    if (flag === "--each") {
      args.each = true;
      continue;
    }
    if (flag === "--async-source") {
      args.asyncSource = true;
      continue;
    }
    const value = rest[++i];
    if (value === undefined) usage(`${flag} needs a value`);
    switch (flag) {
      case "--path":
        args.path = value;
        break;
      case "--count":
        args.count = integer(flag, value);
        break;
      case "--concurrency":
        args.concurrency = integer(flag, value);
        break;
      case "--keep-alive":
        if (value !== "true" && value !== "false") {
          usage(`--keep-alive takes true or false, not ${value}`);
        }
        args.keepAlive = value === "true";
        break;
      case "--upload": {
        const m = /^(\d+)x(\d+)$/.exec(value);
        if (m === null) usage(`--upload takes CHUNKSxSIZE, not ${value}`);
        args.upload = {
          chunks: integer("--upload", m[1]),
          size: integer("--upload", m[2]),
        };
        break;
      }
      case "--origin":
        if (value !== "nginx" && value !== "deno") {
          usage(`--origin takes nginx or deno, not ${value}`);
        }
        args.origin = value;
        break;
      case "--rounds":
        args.rounds = integer(flag, value);
        break;
      case "--warmup":
        args.warmup = integer(flag, value, 0);
        break;
      default:
        usage(`unknown option ${flag}`);
    }
  }
  if (args.upload !== null && args.each) usage("--each is for GETs");
  if (args.warmup >= args.rounds) usage("--warmup must be below --rounds");
  args.count ||= args.upload === null
    ? (args.keepAlive ? 20_000 : 5_000)
    : 2_000;
  args.concurrency ||= 64;
  return args;
}

const args = parseArgs(Deno.args);
if (typeof (globalThis as { gc?: unknown }).gc !== "function") {
  console.error(
    "bench/ab.ts: run with --v8-flags=--expose-gc, or each run may pay for the other's garbage",
  );
}

const versions: [string, typeof Mod][] = [
  ["this", await import("../mod.ts")],
  ["base", await import(new URL(args.base, `file://${Deno.cwd()}/`).href)],
];

async function startOrigin(): Promise<Origin> {
  if (args.upload === null && args.origin === "nginx") {
    const nginx = await startNginx(0);
    if (typeof nginx !== "string") return nginx;
    console.error(`bench/ab.ts: ${nginx}; using bench/_origin.ts`);
  }
  return await startDenoOrigin(0);
}

/** One run of `mod`'s client over the workload: its CPU µs per request. */
async function runOnce(mod: typeof Mod, url: string): Promise<number> {
  const { count, concurrency, keepAlive, upload } = args;
  let source:
    | Iterable<string | Mod.RequestSpec>
    | AsyncIterable<string | Mod.RequestSpec>;
  if (upload === null) {
    source = Array.from({ length: count }, () => url);
  } else {
    const chunk = new Uint8Array(upload.size).fill(97);
    source = Array.from({ length: count }, () => ({
      url,
      method: "POST",
      body: ReadableStream.from((function* () {
        for (let i = 0; i < upload.chunks; i++) yield chunk;
      })()),
    }));
  }
  if (args.asyncSource) {
    // Items that come as promises settle: the crawl's wakeup() ends its
    // pending select() (a job queue or a frontier feeding the crawl).
    const items = source;
    source = (async function* () {
      yield* items;
    })();
  }
  // A GET's body has its file's size; an upload's answer, whatever it is, one
  // size for all. A response that is not that is no success to time.
  let size: number | undefined = upload === null
    ? PATHS[args.path as keyof typeof PATHS]
    : undefined;
  collectGarbage();
  const before = cpuUsage();
  let ok = 0;
  let firstError: unknown;
  const tally = (result: Mod.FetchResult) => {
    if (!result.ok) firstError ??= result.error;
    else if (result.response.status !== 200) {
      firstError ??= new Error(`status ${result.response.status}`);
    } else if (
      result.response.body.length !== (size ??= result.response.body.length)
    ) {
      firstError ??= new Error(
        `a body of ${result.response.body.length} bytes, not ${size}`,
      );
    } else ok++;
  };
  const options = { concurrency, keepAlive };
  if (args.each) {
    for await (const { result } of mod.fetchEach(source, options)) {
      tally(result);
    }
  } else {
    for (const result of await mod.fetchAll(source, options)) tally(result);
  }
  const used = cpuUsage(before);
  if (ok !== count) throw firstError ?? new Error(`${ok} of ${count} ok`);
  return (used.user + used.system) / count;
}

const origin = await startOrigin();
try {
  const url = `http://127.0.0.1:${origin.port}${
    args.upload === null ? args.path : "/upload"
  }`;
  const cpu = new Map<string, number[]>(versions.map(([name]) => [name, []]));
  const ratios: number[] = [];
  for (let round = 0; round < args.rounds; round++) {
    const order = round % 2 === 0 ? versions : versions.toReversed();
    const got = new Map<string, number>();
    for (const [name, mod] of order) got.set(name, await runOnce(mod, url));
    if (round < args.warmup) continue;
    for (const [name, us] of got) cpu.get(name)!.push(us);
    ratios.push(got.get("this")! / got.get("base")!);
  }
  const mine = median(cpu.get("this")!);
  const base = median(cpu.get("base")!);
  const what = args.upload === null
    ? `${args.count} GETs of ${args.path} (${
      args.each ? "fetchEach" : "fetchAll"
    }, keepAlive ${args.keepAlive})`
    : `${args.count} uploads of ${args.upload.chunks} x ${args.upload.size} B`;
  const range = `${Math.min(...ratios).toFixed(3)}..${
    Math.max(...ratios).toFixed(3)
  }`;
  console.log(
    `${what}, concurrency ${args.concurrency}, ${
      args.rounds - args.warmup
    } rounds, ${origin.kind}: CPU µs/req this ÷ base ${
      median(ratios).toFixed(3)
    }x (rounds ${range}); this ${mine.toFixed(1)} µs/req, base ${
      base.toFixed(1)
    }`,
  );
} finally {
  await origin.stop();
}
