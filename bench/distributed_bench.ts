/**
 * The distributed crawl row: `examples/distributed_crawl.ts` with 1 and then 2
 * worker processes on this machine, over the same number of URLs of the bench's
 * origin server (`_origin.ts`, 1 KiB bodies, one origin), through a
 * `redis-server` started for the run (`tests/_redis.ts`).
 *
 * Throughput is URLs over the span between the first and the last result, read
 * from the results stream's entry ids (Redis's clock), so process start-up and
 * `--idle-exit` are not counted. Rounds alternate 1 and 2 workers; the ratio is
 * the median of per-round ratios. Also reported: the workers' Redis round trips
 * per URL (as they count them) and the commands Redis processed per URL.
 *
 * ```sh
 * deno run --allow-net --allow-run --allow-read --allow-write --allow-env bench/distributed_bench.ts [--urls 20000] [--rounds 3] [--json]
 * ```
 *
 * {@linkcode distributedSection} is the section for `main.ts`.
 *
 * @module
 */
import type { Ratio, Row, Section } from "./_report.ts";
import { fmt } from "./_report.ts";
import { startDenoOrigin } from "./_servers.ts";
import { median, progress } from "./_util.ts";
import { RespClient, startRedis } from "../tests/_redis.ts";

const SCRIPT =
  new URL("../examples/distributed_crawl.ts", import.meta.url).pathname;

/** Options of {@linkcode distributedSection}. */
export interface DistributedOptions {
  /** URLs per run. @default {20000} */
  urls?: number;
  /** Rounds, each running 1 then 2 workers (order alternating). @default {3} */
  rounds?: number;
  /** `--concurrency` of each worker. @default {64} */
  concurrency?: number;
}

interface RunResult {
  urlsPerSecond: number;
  roundTripsPerUrl: number;
  commandsPerUrl: number;
  /** CPU time of all workers from the start of their crawl loop, per URL. */
  workerCpuUs: number;
  /** CPU time of redis-server per URL. */
  redisCpuUs: number;
}

async function deno(
  args: string[],
  timeout: number,
  stdin?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-net=127.0.0.1",
      SCRIPT,
      ...args,
    ],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeout),
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return {
    code,
    stdout: decoder.decode(stdout),
    stderr: decoder.decode(stderr),
  };
}

/** Commands processed so far, and CPU seconds used, by the Redis server. */
async function redisCounters(
  client: RespClient,
): Promise<{ commands: number; cpu: number }> {
  const info = String(await client.call("INFO", "all"));
  const field = (name: string) =>
    Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? NaN);
  return {
    commands: field("total_commands_processed"),
    cpu: field("used_cpu_user") + field("used_cpu_sys"),
  };
}

/** One run: seed `urls` under a fresh prefix, run `workers` workers to the end. */
async function runOnce(
  redisUrl: string,
  client: RespClient,
  /** The URLs, one a line. */
  list: string,
  urls: number,
  workers: number,
  concurrency: number,
  prefix: string,
): Promise<RunResult> {
  const seeded = await deno(
    ["seed", "--redis", redisUrl, "--prefix", prefix, "-i", "-"],
    60_000,
    list,
  );
  if (seeded.code !== 0) throw new Error(`Cannot seed: ${seeded.stderr}`);
  const before = await redisCounters(client);
  const outs = await Promise.all(
    Array.from({ length: workers }, (_, i) =>
      deno([
        "work",
        "--redis",
        redisUrl,
        "--prefix",
        prefix,
        "--name",
        `w${i}`,
        "--concurrency",
        String(concurrency),
        "--idle-exit",
        "300",
        "--json",
      ], 300_000)),
  );
  const after = await redisCounters(client);
  let roundTrips = 0;
  let cpu = 0;
  for (const out of outs) {
    if (out.code !== 0) throw new Error(`A worker failed: ${out.stderr}`);
    const summary = JSON.parse(out.stdout.trim().split("\n").at(-1)!);
    roundTrips += summary.roundTrips;
    cpu += summary.crawlCpuSeconds;
  }
  const results = prefix + "results";
  const count = Number(await client.call("XLEN", results));
  if (count !== urls) throw new Error(`${count} results of ${urls} URLs`);
  const first = await client.call("XRANGE", results, "-", "+", "COUNT", 1) as [
    string,
  ][];
  const last = await client.call(
    "XREVRANGE",
    results,
    "+",
    "-",
    "COUNT",
    1,
  ) as [
    string,
  ][];
  const ms = Number(last[0]![0].split("-")[0]) -
    Number(first[0]![0].split("-")[0]);
  await client.call("DEL", results, prefix + "seen", prefix + "frontier");
  return {
    urlsPerSecond: urls / (Math.max(ms, 1) / 1000),
    roundTripsPerUrl: roundTrips / urls,
    // The two INFO calls are ours; the rest were the workers'.
    commandsPerUrl: (after.commands - before.commands - 1) / urls,
    workerCpuUs: cpu / urls * 1e6,
    redisCpuUs: (after.cpu - before.cpu) / urls * 1e6,
  };
}

/** Runs the rounds and returns the section (rows for 1 and 2 workers, their ratio). */
export async function distributedSection(
  { urls = 20_000, rounds = 3, concurrency = 64 }: DistributedOptions = {},
): Promise<Section> {
  const title = `Distributed crawl: 1 vs 2 worker processes, ${
    fmt(urls)
  } URLs of 1 KiB, one origin`;
  const notes = [
    "URLs/s between the first and the last result (Redis stream ids), higher is better",
    `redis-server on loopback, no persistence; each worker --concurrency ${concurrency}`,
    "round trips/URL: as the workers count them; Redis commands/URL: its total_commands_processed",
    "CPU/URL: user+system time of the workers' crawl loops (start-up left out) and of redis-server",
    `${navigator.hardwareConcurrency} cores shared by the workers, the origin server and Redis`,
  ];
  let redis;
  try {
    redis = await startRedis();
  } catch (e) {
    const skipped = (e as Error).message;
    return {
      id: "distributed",
      title,
      notes,
      rows: [1, 2].map((n) => ({
        label: `${n} worker${n > 1 ? "s" : ""}`,
        median: NaN,
        samples: [],
        unit: "URLs/s",
        skipped,
      })),
      ratios: [],
      verdicts: [],
    };
  }
  const origin = await startDenoOrigin(0);
  const port = origin.port;
  const warmUrls = Math.max(1, Math.floor(urls / 10));
  const samples: Record<1 | 2, RunResult[]> = { 1: [], 2: [] };
  try {
    const lines = Array.from(
      { length: urls },
      (_, i) => `http://127.0.0.1:${port}/1k?i=${i}\n`,
    );
    const list = lines.join("");
    const warmList = lines.slice(0, warmUrls).join("");
    await using client = await RespClient.connect(redis.port, 30_000);
    // A small warm-up run: module cache, Redis scripts, the origin's connections.
    await runOnce(redis.url, client, warmList, warmUrls, 1, concurrency, "w:");
    for (let round = 0; round < rounds; round++) {
      const order: (1 | 2)[] = round % 2 === 0 ? [1, 2] : [2, 1];
      for (const workers of order) {
        const result = await runOnce(
          redis.url,
          client,
          list,
          urls,
          workers,
          concurrency,
          `r${round}w${workers}:`,
        );
        samples[workers].push(result);
        progress(
          `distributed round ${round + 1}/${rounds}, ${workers} worker(s): ${
            fmt(result.urlsPerSecond)
          } URLs/s`,
        );
      }
    }
  } finally {
    await origin.stop();
    await redis.stop();
  }
  const rows: Row[] = ([1, 2] as const).map((n) => {
    const runs = samples[n];
    return {
      label: `${n} worker${n > 1 ? "s" : ""}`,
      median: median(runs.map((r) => r.urlsPerSecond)),
      samples: runs.map((r) => r.urlsPerSecond),
      unit: "URLs/s",
      extra: [
        `${fmt(median(runs.map((r) => r.roundTripsPerUrl)))} round trips/URL`,
        `${fmt(median(runs.map((r) => r.commandsPerUrl)))} Redis commands/URL`,
        `CPU/URL: workers ${
          fmt(median(runs.map((r) => r.workerCpuUs)))
        } µs, Redis ${fmt(median(runs.map((r) => r.redisCpuUs)))} µs`,
      ].join(", "),
    };
  });
  const perRound = samples[2].map((r, i) =>
    r.urlsPerSecond / samples[1][i]!.urlsPerSecond
  );
  const ratios: Ratio[] = [{
    label: "2 workers / 1 worker (URLs/s)",
    median: median(perRound),
    min: Math.min(...perRound),
    max: Math.max(...perRound),
  }];
  return { id: "distributed", title, notes, rows, ratios, verdicts: [] };
}

function flag(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const n = Number(Deno.args[i + 1]);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`distributed_bench.ts: --${name} must be a positive integer`);
    Deno.exit(2);
  }
  return n;
}

if (import.meta.main) {
  const section = await distributedSection({
    urls: flag("urls", 20_000),
    rounds: flag("rounds", 3),
    concurrency: flag("concurrency", 64),
  });
  if (Deno.args.includes("--json")) {
    console.log(JSON.stringify(section, null, 2));
  } else {
    console.log(section.title);
    for (const note of section.notes) console.log(`  ${note}`);
    console.log();
    console.log(`  ${"workers".padEnd(10)}${"URLs/s".padStart(10)}  samples`);
    for (const row of section.rows) {
      const samples = row.skipped ?? row.samples.map(fmt).join(", ");
      console.log(
        `  ${row.label.padEnd(10)}${fmt(row.median).padStart(10)}  ${samples}`,
      );
      if (row.extra) console.log(`  ${"".padEnd(20)}  ${row.extra}`);
    }
    for (const ratio of section.ratios) {
      console.log(
        `\n  ${ratio.label}: ${ratio.median.toFixed(2)} (min ${
          ratio.min.toFixed(2)
        }, max ${ratio.max.toFixed(2)})`,
      );
    }
  }
}
