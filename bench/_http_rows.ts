/**
 * The HTTP rows of issues 8, 9 and 10. Every client runs in its own process
 * (`_http_child.ts`, scheduled by `_child_runner.ts`), so each row reports,
 * beside its throughput, the client process's CPU µs, V8 heap bytes allocated
 * and promoted, and GC pause per request (or per MiB for single-body rows).
 *
 * Rows (ids for `--only`):
 *
 * - `1k`, `64k`: N GETs at concurrency 64: the raw keep-alive loop, `fetchAll`,
 *   `fetchEach`, a Deno `fetch` pool;
 * - `64m`: one 64 MiB body: the raw loops (copying, and reading into place),
 *   `fetchAll`, `fetch`;
 * - `close`: `fetchAll({ keepAlive: false })` vs a raw connect/write/read/close loop;
 * - `cold`: the first N requests of a fresh process, `fetchAll` vs raw;
 * - `sink`: a 1 GiB body streamed to a file, `fetchAll` with a `RequestSpec` sink
 *   vs a raw `conn.read` → `file.write` loop, MiB/s and peak RSS;
 * - `origins`: 100,000 URLs over 100 origins (ports of one server),
 *   `perOrigin: { concurrency: 4 }` vs the flat crawl;
 * - `proxy`: N GETs through tinyproxy, `fetchAll({ proxy })` vs `fetch` with
 *   `Deno.createHttpClient({ proxy })`;
 * - `tls`: N GETs over https (nginx only), keep-alive: a raw loop over
 *   `Deno.connectTls`, `fetchAll` with `caCerts`, `fetch` with
 *   `Deno.createHttpClient({ caCerts })`;
 * - `upload`: N POSTs of a body streamed in 64 chunks of 1 KiB, to the Deno
 *   origin (started for the row when the others run on nginx, whose static
 *   files take no POST): `fetchAll` and `fetch` given a
 *   `ReadableStream`, and the raw loop writing the same bytes prebuilt;
 * - `upload-64k`: N POSTs of 6.25 MiB streamed in 100 chunks of 64 KiB (a
 *   file's `readable` yields chunks of that size), concurrency 4;
 * - `upload-16k`: the same bytes in 400 chunks of 16 KiB (a TLS record's
 *   size: a body piped from a download).
 *
 * Ratios are medians of per-round ratios between clients of one row, measured in
 * the same rounds: `A ÷ B` of throughput (> 1: A is faster) or of CPU per
 * request (< 1: A is cheaper).
 *
 * @module
 */
import type { ClientOutcome, ClientSpec, Schedule } from "./_child_runner.ts";
import { runFresh, runInterleaved } from "./_child_runner.ts";
import { fetchAll, type FetchAllOptions } from "../mod.ts";
import type {
  Costs,
  Latency,
  Ratio,
  Row,
  Section,
  Spread,
  Verdict,
} from "./_report.ts";
import {
  type Origin,
  PATHS,
  type Proxy,
  startDenoOrigin,
  startTinyproxy,
  TEST_CA,
} from "./_servers.ts";
import { cleanupOnKill, median, progress } from "./_util.ts";

/** The scale of the HTTP rows. */
export interface HttpConfig {
  rounds: number;
  /** Warm-up runs per client before the rounds of the many-request rows. */
  warmupRuns: number;
  /**
   * At least this many warm-up requests per client in the keep-alive
   * many-request rows (more runs when a run is short): V8 optimizes a function
   * after enough calls, and the per-conn code runs once per conn, 64 times a
   * run, so a 2,000-request run is still compiling it after 10 runs.
   */
  warmupRequests: number;
  /** Rounds of the single-body rows (64 MiB, sink): cheap and noisier. */
  bigRounds: number;
  concurrency: number;
  smallCount: number;
  mediumCount: number;
  closeCount: number;
  coldCount: number;
  /** Requests per run of the one-at-a-time row (`c1`). */
  serialCount: number;
  /** The path of the sink row's body. */
  sinkPath: keyof typeof PATHS;
  originsCount: number;
  origins: number;
  proxyCount: number;
  /** Requests per run of the https row. */
  tlsCount: number;
  /** Requests per run of the upload row. */
  uploadCount: number;
  /** Requests per run of the upload-64k and upload-16k rows (6.25 MiB each). */
  uploadLargeCount: number;
}

export const FULL_HTTP: HttpConfig = {
  rounds: 3,
  warmupRuns: 2,
  warmupRequests: 40_000,
  bigRounds: 5,
  concurrency: 64,
  smallCount: 20_000,
  mediumCount: 2_000,
  closeCount: 10_000,
  coldCount: 20_000,
  serialCount: 5_000,
  sinkPath: "/1g",
  originsCount: 100_000,
  origins: 100,
  proxyCount: 20_000,
  tlsCount: 20_000,
  uploadCount: 4_000,
  uploadLargeCount: 400,
};

export const QUICK_HTTP: HttpConfig = {
  rounds: 3,
  warmupRuns: 1,
  warmupRequests: 0,
  bigRounds: 3,
  concurrency: 64,
  smallCount: 4_000,
  mediumCount: 400,
  closeCount: 1_000,
  coldCount: 4_000,
  serialCount: 1_000,
  sinkPath: "/64m",
  originsCount: 5_000,
  origins: 100,
  proxyCount: 500,
  tlsCount: 4_000,
  uploadCount: 400,
  uploadLargeCount: 40,
};

/** The row ids, in the order they run. */
export const HTTP_ROWS = [
  "1k",
  "64k",
  "64m",
  "close",
  "cold",
  "c1",
  "sink",
  "origins",
  "proxy",
  "tls",
  "tls-64m",
  "upload",
  "upload-64k",
  "upload-16k",
] as const;
export type HttpRow = typeof HTTP_ROWS[number];

const MiB = 1024 * 1024;

function fmtN(n: number): string {
  return n.toLocaleString("en-US");
}

function fmt2(n: number): string {
  return Number.isFinite(n) ? n.toFixed(2) : "n/a";
}

/**
 * A ratio on a verdict line: 3 decimals where 2 would read as the limit itself
 * (1.996 against >= 2.0 is missed, and "2.00x" would not say why).
 */
export function fmtVerdict(n: number, limit: number): string {
  return fmt2(n) === fmt2(limit) && n !== limit ? n.toFixed(3) : fmt2(n);
}

/** A ratio between two clients of a row, optionally with a target. */
interface RatioSpec {
  a: string;
  b: string;
  /** `speed`: throughput of a ÷ b; `cpu`: CPU per request of a ÷ b. */
  kind: "speed" | "cpu";
  label: string;
  target?: { op: ">=" | "<="; limit: number; text: string };
}

/** `fetchAll` against `fetch`, speed and CPU, where no target is set on them. */
const FETCH_RATIOS: RatioSpec[] = [
  {
    a: "fetchAll",
    b: "fetch",
    kind: "speed",
    label: "fetchAll ÷ fetch (req/s)",
  },
  {
    a: "fetchAll",
    b: "fetch",
    kind: "cpu",
    label: "fetchAll ÷ fetch (CPU µs/req)",
  },
];

/**
 * The ratios of a row with the raw loop keeping its bodies (`rawKeep`), a
 * reference for what holding the bodies costs with no client at all.
 */
const KEEP_RATIOS: RatioSpec[] = [
  {
    a: "rawKeep",
    b: "raw",
    kind: "speed",
    label: "raw keeping bodies ÷ raw (req/s)",
  },
  {
    a: "fetchAll",
    b: "rawKeep",
    kind: "speed",
    label: "fetchAll ÷ raw keeping bodies (req/s)",
  },
];

/** Another checkout's `mod.ts`, whose clients run beside this one's (`--baseline`). */
export interface Baseline {
  /** Absolute path of its `mod.ts`. */
  mod: string;
  /** What to call it in the table, e.g. `main`. */
  name: string;
}

/** What one row measures, and how to report it. */
interface RowDef {
  id: string;
  title: string;
  notes: string[];
  clients: ClientSpec[];
  /** Requests per run. */
  count: number;
  /** Body bytes per request (the request's, for the upload row). */
  bodyLength: number;
  schedule: Schedule;
  fresh?: boolean;
  ratios: RatioSpec[];
  /** Extra checks on the measured rows (promotion, RSS). */
  extraVerdicts?: (
    rows: Map<string, Row>,
    outcomes: Map<string, ClientOutcome>,
  ) => Verdict[];
}

/**
 * The schedule of a many-request row of `count` requests a run: warm-up runs
 * until `cfg.warmupRequests` requests (at least `cfg.warmupRuns` runs).
 */
function warmSchedule(cfg: HttpConfig, count: number): Schedule {
  return {
    rounds: cfg.rounds,
    warmupRuns: Math.max(cfg.warmupRuns, Math.ceil(cfg.warmupRequests / count)),
    expectOk: count,
    runTimeoutMs: 180_000,
  };
}

function clientArgs(
  client: string,
  ports: number[],
  path: keyof typeof PATHS,
  count: number,
  cfg: HttpConfig,
  more: string[] = [],
): string[] {
  return [
    "--client",
    client,
    "--ports",
    ports.join(","),
    "--path",
    path,
    "--count",
    String(count),
    "--concurrency",
    String(cfg.concurrency),
    "--expect-length",
    String(PATHS[path]),
    // One big body: a clean heap before each run keeps the peak RSS that run's;
    // the many-request rows keep their JIT warm instead (see _http_child.ts).
    ...(count === 1 ? ["--gc-between", "full"] : []),
    ...more,
  ];
}

function costsOf(o: ClientOutcome, per: number): Costs {
  const s = o.samples;
  const gcs = s.flatMap((x) => x.gc ? [x.gc] : []);
  const gcMedian = (f: (g: NonNullable<typeof s[0]["gc"]>) => number) =>
    gcs.length === s.length ? median(gcs.map(f)) / per : NaN;
  const rss = s.flatMap((x) => x.peakRss !== undefined ? [x.peakRss] : []);
  return {
    cpuUs: median(s.map((x) => x.cpuUs)) / per,
    allocated: gcMedian((g) => g.allocated),
    promoted: gcMedian((g) => g.promoted),
    gcPauseUs: gcMedian((g) => g.pauseMs * 1000),
    peakRss: rss.length > 0 ? Math.max(...rss) : NaN,
  };
}

/**
 * Each latency percentile of the rounds, as median and spread; none unless
 * every round recorded them.
 */
function latencyOf(o: ClientOutcome): Latency | undefined {
  const runs = o.samples.flatMap((x) => x.latency ? [x.latency] : []);
  if (runs.length === 0 || runs.length !== o.samples.length) return undefined;
  const spread = (f: (l: typeof runs[0]) => number): Spread => {
    const xs = runs.map(f);
    return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
  };
  return {
    p50: spread((l) => l.p50),
    p99: spread((l) => l.p99),
    p999: spread((l) => l.p999),
    max: spread((l) => l.max),
  };
}

function pairRatios(
  spec: RatioSpec,
  outcomes: Map<string, ClientOutcome>,
): Ratio | null {
  const a = outcomes.get(spec.a)?.samples ?? [];
  const b = outcomes.get(spec.b)?.samples ?? [];
  const n = Math.min(a.length, b.length);
  if (n === 0) return null;
  const rs: number[] = [];
  for (let i = 0; i < n; i++) {
    rs.push(
      spec.kind === "speed"
        ? b[i]!.seconds / a[i]!.seconds
        : a[i]!.cpuUs / b[i]!.cpuUs,
    );
  }
  return {
    label: spec.label,
    median: median(rs),
    min: Math.min(...rs),
    max: Math.max(...rs),
  };
}

/**
 * With a baseline: every client of this library gets a twin on the baseline's
 * `mod.ts`, run in the same rounds, and paired ratios against it.
 */
function withBaseline(def: RowDef, base: Baseline | undefined): RowDef {
  if (base === undefined) return def;
  const clients: ClientSpec[] = [];
  const ratios: RatioSpec[] = [...def.ratios];
  for (const c of def.clients) {
    clients.push(c);
    if (!c.lib) continue;
    const id = `${c.id}@base`;
    clients.push({
      id,
      label: `${c.label} [${base.name}]`,
      args: [...c.args, "--mod", base.mod],
    });
    ratios.push({
      a: c.id,
      b: id,
      kind: "speed",
      label: `${c.id} ÷ ${base.name} (speed)`,
      target: {
        op: ">=",
        limit: 0.95,
        text:
          `http ${def.id}: ${c.id} not slower than ${base.name} beyond noise (>= 0.95)`,
      },
    }, {
      a: c.id,
      b: id,
      kind: "cpu",
      label: `${c.id} ÷ ${base.name} (CPU)`,
    });
  }
  return {
    ...def,
    clients,
    ratios,
    notes: [
      ...def.notes,
      `[${base.name}]: the same client on ${base.mod}, in the same rounds.`,
    ],
  };
}

async function runRow(
  plain: RowDef,
  quick: boolean,
  base?: Baseline,
): Promise<Section> {
  const def = withBaseline(plain, base);
  progress(
    `http ${def.id}: ${def.title}: ${def.schedule.rounds} rounds of ${def.clients.length} clients${
      def.fresh ? ", each run in a fresh process" : ""
    }`,
  );
  const outcomes = def.fresh
    ? await runFresh(def.clients, def.schedule)
    : await runInterleaved(def.clients, def.schedule);
  const single = def.count === 1;
  const per = single ? def.bodyLength / MiB : def.count;
  const byId = new Map<string, Row>();
  const rows: Row[] = def.clients.map((c) => {
    const o = outcomes.get(c.id)!;
    if (o.samples.length === 0) {
      return {
        label: c.label,
        median: NaN,
        samples: [],
        unit: "",
        skipped: o.error ?? "no rounds",
      };
    }
    const mibps = o.samples.map((s) =>
      def.count * def.bodyLength / MiB / s.seconds
    );
    const row: Row = single
      ? {
        label: c.label,
        median: median(mibps),
        samples: mibps,
        unit: "MiB/s",
        extra: `${
          (median(o.samples.map((s) => s.seconds)) * 1000).toFixed(0)
        } ms per body`,
        costs: costsOf(o, per),
      }
      : {
        label: c.label,
        median: median(o.samples.map((s) => def.count / s.seconds)),
        samples: o.samples.map((s) => def.count / s.seconds),
        unit: "req/s",
        extra: `${median(mibps).toFixed(0)} MiB/s`,
        costs: costsOf(o, per),
      };
    const latency = latencyOf(o);
    if (latency !== undefined) row.latency = latency;
    if (o.error !== undefined) {
      row.extra = `${row.extra}; stopped: ${o.error}`;
    }
    byId.set(c.id, row);
    return row;
  });
  const ratios: Ratio[] = [];
  const verdicts: Verdict[] = [];
  for (const spec of def.ratios) {
    const q = pairRatios(spec, outcomes);
    if (q !== null) ratios.push(q);
    if (spec.target === undefined) continue;
    const t = spec.target;
    if (q === null) {
      verdicts.push({
        target: t.text,
        met: null,
        why: outcomes.get(spec.a)?.error ?? outcomes.get(spec.b)?.error ??
          "not measured",
      });
      continue;
    }
    verdicts.push({
      target: t.text,
      met: t.op === ">=" ? q.median >= t.limit : q.median <= t.limit,
      provisional: quick,
      why:
        `${fmtVerdict(q.median, t.limit)}x (per-round ${fmt2(q.min)}..${
          fmt2(q.max)
        })` +
        (quick ? "; quick run, not the spec scale" : ""),
    });
  }
  verdicts.push(...(def.extraVerdicts?.(byId, outcomes) ?? []).map((v) => ({
    ...v,
    ...(quick && v.met !== null ? { provisional: true } : {}),
  })));
  return {
    id: `http-${def.id}`,
    title: def.title,
    notes: def.notes,
    rows,
    ratios,
    verdicts,
    per: single ? "MiB" : "req",
  };
}

const METHOD_NOTE =
  "Each client in its own process; ratios are medians of per-round ratios (speed: A ÷ B req/s, > 1 = A faster; CPU: A ÷ B µs/req, < 1 = A cheaper).";

const LATENCY_NOTE =
  "Latency: each request's, start to last byte, in the same runs (raw loops, fetch: performance.now() at each request's end, its start the end of the one before on its conn; fetchAll, fetchEach: result.timings.total); a run's percentiles, median (min..max) over the rounds.";

function roundsNote(s: Schedule, fresh = false): string {
  return fresh
    ? `${s.rounds} rounds, clients in rotated order, every run in a fresh process with nothing before it.`
    : `${s.rounds} interleaved rounds (client order rotated each round) after ${
      (s.warmupRuns ?? 1) === 1
        ? "one warm-up run"
        : `${s.warmupRuns} warm-up runs`
    } per client.`;
}

/** The keep-alive rows (1 KiB, 64 KiB, 64 MiB) against one origin. */
function keepAliveRows(
  origin: Origin,
  cfg: HttpConfig,
): Record<"1k" | "64k" | "64m", RowDef> {
  const port = [origin.port];
  const c = cfg.concurrency;
  const many = (
    id: "1k" | "64k",
    path: "/1k" | "/64k",
    count: number,
    what: string,
  ): RowDef => {
    const schedule = warmSchedule(cfg, count);
    // Per-request latency, in the same runs: the 1 KiB row only.
    const lat = id === "1k" ? ["--latency"] : [];
    return {
      id,
      title: `HTTP: ${
        fmtN(count)
      } GETs of ${what}, concurrency ${c}, keep-alive (req/s, higher is better)`,
      notes: [
        `Origin: ${origin.describe}.`,
        roundsNote(schedule),
        METHOD_NOTE,
        ...(id === "1k" ? [LATENCY_NOTE] : []),
      ],
      count,
      bodyLength: PATHS[path],
      schedule,
      clients: [
        {
          id: "raw",
          label: `raw keep-alive loop (${c} conns)`,
          args: clientArgs("raw", port, path, count, cfg, lat),
        },
        {
          // fetchAll returns every body: what keeping them costs a client
          // that does nothing else (a reference, not a target's baseline).
          id: "rawKeep",
          label: "raw loop keeping its bodies",
          args: clientArgs("raw-keep", port, path, count, cfg, lat),
        },
        {
          id: "fetchAll",
          label: "fetchAll",
          lib: true,
          args: clientArgs("fetch-all", port, path, count, cfg, lat),
        },
        {
          id: "fetchEach",
          label: "fetchEach (results dropped)",
          lib: true,
          args: clientArgs("fetch-each", port, path, count, cfg, lat),
        },
        {
          id: "fetch",
          label: `Deno fetch pool (${c} workers)`,
          args: clientArgs("fetch", port, path, count, cfg, lat),
        },
      ],
      ratios: [
        {
          a: "fetchAll",
          b: "raw",
          kind: "speed",
          label: "fetchAll ÷ raw (req/s)",
          target: {
            op: ">=",
            limit: 0.9,
            text: `http ${id}: fetchAll ÷ raw keep-alive >= 0.90`,
          },
        },
        {
          a: "fetchAll",
          b: "raw",
          kind: "cpu",
          label: "fetchAll ÷ raw (CPU µs/req)",
          ...(id === "1k"
            ? {
              target: {
                op: "<=" as const,
                limit: 1.25,
                text: "http 1k: fetchAll CPU µs/req ÷ raw's <= 1.25",
              },
            }
            : {}),
        },
        {
          a: "fetchAll",
          b: "fetch",
          kind: "speed",
          label: "fetchAll ÷ fetch (req/s)",
          target: {
            op: ">=",
            limit: 2.0,
            text: `http ${id}: fetchAll ÷ Deno fetch >= 2.0`,
          },
        },
        {
          a: "fetchEach",
          b: "raw",
          kind: "speed",
          label: "fetchEach ÷ raw (req/s)",
        },
        {
          a: "fetch",
          b: "raw",
          kind: "speed",
          label: "fetch ÷ raw (req/s)",
        },
        ...KEEP_RATIOS,
      ],
      ...(id === "1k"
        ? {
          extraVerdicts: (rows: Map<string, Row>): Verdict[] => {
            const p = rows.get("fetchAll")?.costs?.promoted ?? NaN;
            return [{
              target:
                "http 1k: fetchAll heap promoted per request <= 0.3 KB (300 B)",
              met: Number.isFinite(p) ? p <= 300 : null,
              why: Number.isFinite(p)
                ? `${p.toFixed(0)} B/req (raw: ${
                  (rows.get("raw")?.costs?.promoted ?? NaN).toFixed(0)
                })`
                : "no GC trace",
            }];
          },
        }
        : {}),
    };
  };
  const bigSchedule: Schedule = {
    rounds: cfg.bigRounds,
    expectOk: 1,
    runTimeoutMs: 120_000,
  };
  return {
    "1k": many("1k", "/1k", cfg.smallCount, "1 KiB"),
    "64k": many("64k", "/64k", cfg.mediumCount, "64 KiB"),
    "64m": {
      id: "64m",
      title: "HTTP: one GET of 64 MiB (MiB/s, higher is better)",
      notes: [
        `Origin: ${origin.describe}.`,
        roundsNote(bigSchedule),
        METHOD_NOTE,
      ],
      count: 1,
      bodyLength: PATHS["/64m"],
      schedule: bigSchedule,
      clients: [
        {
          id: "raw",
          label: "raw keep-alive loop (copying the body)",
          args: clientArgs("raw", port, "/64m", 1, cfg),
        },
        {
          id: "rawRead",
          label: "raw conn.read into the body buffer",
          args: clientArgs("raw-read", port, "/64m", 1, cfg),
        },
        {
          id: "fetchAll",
          label: "fetchAll",
          lib: true,
          args: clientArgs("fetch-all", port, "/64m", 1, cfg),
        },
        {
          id: "fetch",
          label: "Deno fetch",
          args: clientArgs("fetch", port, "/64m", 1, cfg),
        },
      ],
      ratios: [
        {
          a: "fetchAll",
          b: "rawRead",
          kind: "speed",
          label: "fetchAll ÷ raw conn.read (MiB/s)",
        },
        {
          a: "fetchAll",
          b: "raw",
          kind: "speed",
          label: "fetchAll ÷ raw copying (MiB/s)",
        },
        {
          a: "fetchAll",
          b: "fetch",
          kind: "speed",
          label: "fetchAll ÷ fetch (MiB/s)",
          target: {
            op: ">=",
            limit: 2.0,
            text: "http 64m: fetchAll ÷ Deno fetch >= 2.0",
          },
        },
      ],
    },
  };
}

function closeRow(origin: Origin, cfg: HttpConfig): RowDef {
  const n = cfg.closeCount;
  const port = [origin.port];
  const schedule: Schedule = {
    rounds: cfg.rounds,
    warmupRuns: cfg.warmupRuns,
    expectOk: n,
    runTimeoutMs: 180_000,
  };
  return {
    id: "close",
    title: `HTTP: ${
      fmtN(n)
    } GETs of 1 KiB, one connection each, concurrency ${cfg.concurrency} (req/s, higher is better)`,
    notes: [`Origin: ${origin.describe}.`, roundsNote(schedule), METHOD_NOTE],
    count: n,
    bodyLength: PATHS["/1k"],
    schedule,
    clients: [
      {
        id: "raw",
        label: "raw connect/write/read/close loop",
        args: clientArgs("raw-close", port, "/1k", n, cfg),
      },
      {
        // As in the keep-alive rows: what keeping every body costs the raw
        // loop (a reference, not the target's baseline).
        id: "rawKeep",
        label: "raw close loop keeping its bodies",
        args: clientArgs("raw-close-keep", port, "/1k", n, cfg),
      },
      {
        id: "fetchAll",
        label: "fetchAll (keepAlive: false)",
        lib: true,
        args: clientArgs("fetch-all", port, "/1k", n, cfg, [
          "--keep-alive",
          "false",
        ]),
      },
    ],
    ratios: [
      {
        a: "fetchAll",
        b: "raw",
        kind: "speed",
        label: "fetchAll ÷ raw (req/s)",
        target: {
          op: ">=",
          limit: 0.95,
          text: "http close: fetchAll keepAlive:false ÷ raw close loop >= 0.95",
        },
      },
      {
        a: "fetchAll",
        b: "raw",
        kind: "cpu",
        label: "fetchAll ÷ raw (CPU µs/req)",
      },
      ...KEEP_RATIOS,
    ],
  };
}

function coldRow(origin: Origin, cfg: HttpConfig): RowDef {
  const n = cfg.coldCount;
  const port = [origin.port];
  const schedule: Schedule = {
    rounds: cfg.rounds,
    expectOk: n,
    runTimeoutMs: 180_000,
  };
  return {
    id: "cold",
    title: `HTTP cold: the first ${
      fmtN(n)
    } GETs of 1 KiB of a fresh process, concurrency ${cfg.concurrency} (req/s, higher is better)`,
    notes: [
      `Origin: ${origin.describe}.`,
      roundsNote(schedule, true),
      METHOD_NOTE,
    ],
    count: n,
    bodyLength: PATHS["/1k"],
    schedule,
    fresh: true,
    clients: [
      {
        id: "raw",
        label: `raw keep-alive loop (${cfg.concurrency} conns)`,
        args: clientArgs("raw", port, "/1k", n, cfg),
      },
      {
        // A reference, as in the keep-alive rows: the raw loop keeping every
        // body, in a fresh process too.
        id: "rawKeep",
        label: "raw loop keeping its bodies",
        args: clientArgs("raw-keep", port, "/1k", n, cfg),
      },
      {
        id: "fetchAll",
        label: "fetchAll",
        lib: true,
        args: clientArgs("fetch-all", port, "/1k", n, cfg),
      },
    ],
    ratios: [
      {
        a: "fetchAll",
        b: "raw",
        kind: "speed",
        label: "fetchAll ÷ raw (req/s)",
        target: {
          op: ">=",
          limit: 0.7,
          text:
            "http cold: fetchAll ÷ raw, first requests of a fresh process >= 0.70",
        },
      },
      {
        a: "fetchAll",
        b: "raw",
        kind: "cpu",
        label: "fetchAll ÷ raw (CPU µs/req)",
      },
      ...KEEP_RATIOS,
    ],
  };
}

/**
 * One request at a time over one kept conn: a request's latency, where the
 * other rows measure throughput. Each request waits for the one before, so
 * every microsecond of the client's own work is on the request's path.
 */
function serialRow(origin: Origin, cfg: HttpConfig): RowDef {
  const n = cfg.serialCount;
  const port = [origin.port];
  const one = { ...cfg, concurrency: 1 };
  const schedule = warmSchedule(cfg, n);
  return {
    id: "c1",
    title: `HTTP: ${
      fmtN(n)
    } GETs of 1 KiB, one at a time (concurrency 1), keep-alive (req/s, higher is better)`,
    notes: [
      `Origin: ${origin.describe}.`,
      roundsNote(schedule),
      METHOD_NOTE,
      LATENCY_NOTE,
    ],
    count: n,
    bodyLength: PATHS["/1k"],
    schedule,
    clients: [
      {
        id: "raw",
        label: "raw keep-alive loop (1 conn)",
        args: clientArgs("raw", port, "/1k", n, one, ["--latency"]),
      },
      {
        id: "fetchAll",
        label: "fetchAll",
        lib: true,
        args: clientArgs("fetch-all", port, "/1k", n, one, ["--latency"]),
      },
      {
        id: "fetchEach",
        label: "fetchEach (results dropped)",
        lib: true,
        args: clientArgs("fetch-each", port, "/1k", n, one, ["--latency"]),
      },
      {
        id: "fetch",
        label: "Deno fetch (1 worker)",
        args: clientArgs("fetch", port, "/1k", n, one, ["--latency"]),
      },
    ],
    ratios: [
      {
        a: "fetchAll",
        b: "raw",
        kind: "speed",
        label: "fetchAll ÷ raw (req/s)",
      },
      {
        a: "fetchAll",
        b: "raw",
        kind: "cpu",
        label: "fetchAll ÷ raw (CPU µs/req)",
      },
      {
        a: "fetchAll",
        b: "fetch",
        kind: "speed",
        label: "fetchAll ÷ fetch (req/s)",
      },
      {
        a: "fetchEach",
        b: "raw",
        kind: "speed",
        label: "fetchEach ÷ raw (req/s)",
      },
    ],
  };
}

/**
 * Where the sink row writes: Deno's temp dir (`TMPDIR`); each file is removed
 * after its run, so 1 GiB of dirty pages never turns into disk writeback.
 */
function sinkDir(): Promise<string> {
  return Deno.makeTempDir({ prefix: "bench-sink-" });
}

function sinkRow(origin: Origin, cfg: HttpConfig, dir: string): RowDef {
  const path = cfg.sinkPath;
  const size = PATHS[path];
  const port = [origin.port];
  const schedule: Schedule = {
    rounds: cfg.bigRounds,
    expectOk: 1,
    runTimeoutMs: 300_000,
  };
  const what = size >= 1024 * MiB
    ? `${size / 1024 / MiB} GiB`
    : `${size / MiB} MiB`;
  return {
    id: "sink",
    title:
      `HTTP sink: one ${what} body streamed to a file (MiB/s, higher is better; peak RSS)`,
    notes: [
      `Origin: ${origin.describe}.`,
      `The file is in ${dir}, removed after each run (the page cache absorbs the writes: the disk's speed is not measured).`,
      "Peak RSS: the client process's VmHWM during each run (reset at its start), the largest over the rounds, the runtime's own included; the verdict is on its growth over the process's peak before its first run (runtime, module, setup).",
      roundsNote(schedule),
      METHOD_NOTE,
    ],
    count: 1,
    bodyLength: size,
    schedule,
    clients: [
      {
        id: "raw",
        label: "raw conn.read (64 KiB) → file.write loop",
        args: clientArgs("raw-sink", port, path, 1, cfg, [
          "--sink-file",
          `${dir}/raw.out`,
        ]),
      },
      {
        id: "fetchAll",
        label: "fetchAll, RequestSpec sink → FsFile",
        lib: true,
        args: clientArgs("fetch-all-sink", port, path, 1, cfg, [
          "--sink-file",
          `${dir}/fetch-all.out`,
        ]),
      },
    ],
    ratios: [
      {
        a: "fetchAll",
        b: "raw",
        kind: "speed",
        label: "fetchAll ÷ raw (MiB/s)",
        target: {
          op: ">=",
          limit: 0.9,
          text: `http sink: fetchAll with a sink ÷ raw read→write loop >= 0.90`,
        },
      },
      {
        a: "fetchAll",
        b: "raw",
        kind: "cpu",
        label: "fetchAll ÷ raw (CPU µs/MiB)",
      },
    ],
    extraVerdicts: (rows, outcomes) => {
      const peak = rows.get("fetchAll")?.costs?.peakRss ?? NaN;
      const ready = outcomes.get("fetchAll")?.readyRss ?? NaN;
      const growth = peak - ready;
      const mib = (n: number | undefined) =>
        `${((n ?? NaN) / MiB).toFixed(1)} MiB`;
      return [{
        target:
          "http sink: fetchAll's RSS while streaming < 64 MiB (peak over the process's RSS before its first run)",
        met: Number.isFinite(growth) ? growth < 64 * MiB : null,
        why: Number.isFinite(growth)
          ? `+${mib(growth)}: peak ${mib(peak)}, ${
            mib(ready)
          } before (raw loop: peak ${mib(rows.get("raw")?.costs?.peakRss)}, ${
            mib(outcomes.get("raw")?.readyRss)
          } before)`
          : "no peak RSS",
      }];
    },
  };
}

function originsRow(origin: Origin, cfg: HttpConfig): RowDef | string {
  const ports = [origin.port, ...origin.extraPorts].slice(0, cfg.origins);
  if (ports.length < cfg.origins) {
    return `the origin has ${ports.length} ports, ${cfg.origins} needed`;
  }
  const n = cfg.originsCount;
  const schedule: Schedule = {
    rounds: cfg.rounds,
    warmupRuns: cfg.warmupRuns,
    expectOk: n,
    runTimeoutMs: 300_000,
  };
  return {
    id: "origins",
    title: `HTTP: ${
      fmtN(n)
    } GETs of 1 KiB over ${cfg.origins} origins, concurrency ${cfg.concurrency} (req/s, higher is better)`,
    notes: [
      `Origins: ${cfg.origins} ports of one server: ${origin.describe}. URLs round-robin over the origins.`,
      roundsNote(schedule),
      METHOD_NOTE,
    ],
    count: n,
    bodyLength: PATHS["/1k"],
    schedule,
    clients: [
      {
        id: "flat",
        label: "fetchAll, flat",
        lib: true,
        args: clientArgs("fetch-all", ports, "/1k", n, cfg),
      },
      {
        id: "perOrigin",
        label: "fetchAll, perOrigin { concurrency: 4 }",
        lib: true,
        args: clientArgs("fetch-all", ports, "/1k", n, cfg, [
          "--per-origin",
          "4",
        ]),
      },
    ],
    ratios: [
      {
        a: "perOrigin",
        b: "flat",
        kind: "speed",
        label: "perOrigin ÷ flat (req/s)",
      },
      {
        a: "perOrigin",
        b: "flat",
        kind: "cpu",
        label: "perOrigin ÷ flat (CPU µs/req)",
      },
    ],
  };
}

/**
 * The https row: the 1 KiB keep-alive crawl over TLS against nginx's https
 * port, or why it cannot run (the Deno origin serves plain http only).
 */
function tlsRow(origin: Origin, cfg: HttpConfig): RowDef | string {
  if (origin.tlsPort === undefined) {
    return origin.kind === "nginx"
      ? "nginx was started without its https port"
      : "the Deno origin serves plain http only (the row needs nginx)";
  }
  const n = cfg.tlsCount;
  const port = [origin.tlsPort];
  const c = cfg.concurrency;
  const schedule = warmSchedule(cfg, n);
  const tls = ["--tls-ca", TEST_CA];
  return {
    id: "tls",
    title: `HTTPS: ${
      fmtN(n)
    } GETs of 1 KiB, concurrency ${c}, keep-alive (req/s, higher is better)`,
    notes: [
      `Origin: ${origin.describe}; https on its own port (ssl_protocols TLSv1.2 TLSv1.3, HTTP/1.1), certificate tests/testdata/localhost.crt, URLs https://localhost:${origin.tlsPort}/1k.`,
      `Each run opens its ${c} conns (${c} handshakes): the raw loop and fetchAll connect afresh, fetch gets a new Deno.createHttpClient({ caCerts }) per run.`,
      roundsNote(schedule),
      METHOD_NOTE,
    ],
    count: n,
    bodyLength: PATHS["/1k"],
    schedule,
    clients: [
      {
        id: "raw",
        label: `raw keep-alive loop, Deno.connectTls (${c} conns)`,
        args: clientArgs("raw", port, "/1k", n, cfg, tls),
      },
      {
        id: "fetchAll",
        label: "fetchAll({ caCerts })",
        lib: true,
        args: clientArgs("fetch-all", port, "/1k", n, cfg, tls),
      },
      {
        id: "fetch",
        label: `Deno fetch pool, createHttpClient({ caCerts }) (${c} workers)`,
        args: clientArgs("fetch", port, "/1k", n, cfg, tls),
      },
    ],
    // References only: issue 10's targets are for the plain http rows.
    ratios: [
      {
        a: "fetchAll",
        b: "raw",
        kind: "speed",
        label: "fetchAll ÷ raw TLS (req/s)",
      },
      {
        a: "fetchAll",
        b: "raw",
        kind: "cpu",
        label: "fetchAll ÷ raw TLS (CPU µs/req)",
      },
      ...FETCH_RATIOS,
      {
        a: "fetch",
        b: "raw",
        kind: "speed",
        label: "fetch ÷ raw TLS (req/s)",
      },
    ],
  };
}

/** One 64 MiB body over https: a bulk transfer through the module's TLS. */
function tls64mRow(origin: Origin, cfg: HttpConfig): RowDef | string {
  if (origin.tlsPort === undefined) {
    return origin.kind === "nginx"
      ? "nginx was started without its https port"
      : "the Deno origin serves plain http only (the row needs nginx)";
  }
  const port = [origin.tlsPort];
  const schedule: Schedule = {
    rounds: cfg.bigRounds,
    expectOk: 1,
    runTimeoutMs: 120_000,
  };
  const tls = ["--tls-ca", TEST_CA];
  return {
    id: "tls-64m",
    title: "HTTPS: one GET of 64 MiB (MiB/s, higher is better)",
    notes: [
      `Origin: ${origin.describe}; https as in the tls row, URL https://localhost:${origin.tlsPort}/64m.`,
      roundsNote(schedule),
      METHOD_NOTE,
    ],
    count: 1,
    bodyLength: PATHS["/64m"],
    schedule,
    clients: [
      {
        id: "raw",
        label: "raw Deno.connectTls read loop (copying the body)",
        args: clientArgs("raw", port, "/64m", 1, cfg, tls),
      },
      {
        id: "fetchAll",
        label: "fetchAll({ caCerts })",
        lib: true,
        args: clientArgs("fetch-all", port, "/64m", 1, cfg, tls),
      },
      {
        id: "fetch",
        label: "Deno fetch, createHttpClient({ caCerts })",
        args: clientArgs("fetch", port, "/64m", 1, cfg, tls),
      },
    ],
    // References, as the tls row's.
    ratios: [
      {
        a: "fetchAll",
        b: "raw",
        kind: "speed",
        label: "fetchAll ÷ raw TLS (MiB/s)",
      },
      {
        a: "fetchAll",
        b: "fetch",
        kind: "speed",
        label: "fetchAll ÷ fetch (MiB/s)",
      },
    ],
  };
}

/** The upload rows' bodies, streamed: chunks and their size. */
const UPLOADS = {
  upload: { chunks: 64, size: 1024, label: "64 chunks of 1 KiB" },
  "upload-64k": { chunks: 100, size: 64 * 1024, label: "100 chunks of 64 KiB" },
  "upload-16k": { chunks: 400, size: 16 * 1024, label: "400 chunks of 16 KiB" },
};

/** An upload row, against `origin` (a Deno origin: it reads each body whole before it answers). */
function uploadRow(
  origin: Origin,
  cfg: HttpConfig,
  id: keyof typeof UPLOADS,
): RowDef {
  const upload = UPLOADS[id];
  const small = id === "upload";
  const n = small ? cfg.uploadCount : cfg.uploadLargeCount;
  // A few files at a time, as a crawler uploads them; a run is GiBs, and
  // three warm-up runs are 1,200 uploads.
  const c = small ? cfg.concurrency : 4;
  const schedule = small
    ? warmSchedule(cfg, n)
    : { ...warmSchedule(cfg, n), warmupRuns: 3 };
  const args = (client: string) => [
    "--client",
    client,
    "--ports",
    String(origin.port),
    "--path",
    "/upload",
    "--count",
    String(n),
    "--concurrency",
    String(c),
    "--expect-length",
    "2",
    "--upload",
    `${upload.chunks}x${upload.size}`,
  ];
  return {
    id,
    title: `HTTP ${id}: ${
      fmtN(n)
    } POSTs of a body streamed in ${upload.label}, concurrency ${c}, keep-alive (req/s, higher is better)`,
    notes: [
      `Origin: ${origin.describe}; /upload reads the body whole (chunked), then answers "ok".`,
      `fetchAll and fetch get a fresh ReadableStream per request (ReadableStream.from over a generator yielding one reused ${
        upload.size / 1024
      } KiB buffer); the raw loop writes the same bytes, head and chunked body prebuilt in one buffer: the wire's cost without a stream.`,
      roundsNote(schedule),
      METHOD_NOTE,
    ],
    count: n,
    // Uploaded: the MiB/s beside req/s is the upload's.
    bodyLength: upload.chunks * upload.size,
    schedule,
    clients: [
      {
        id: "raw",
        label: `raw keep-alive loop, body prebuilt (${c} conns)`,
        args: args("raw"),
      },
      {
        id: "fetchAll",
        label: "fetchAll, ReadableStream bodies",
        lib: true,
        args: args("fetch-all"),
      },
      {
        id: "fetch",
        label: `Deno fetch pool, ReadableStream bodies (${c} workers)`,
        args: args("fetch"),
      },
    ],
    // References only: issue 10's targets are for the GET rows.
    ratios: [
      ...FETCH_RATIOS,
      {
        a: "fetchAll",
        b: "raw",
        kind: "speed",
        label: "fetchAll ÷ raw prebuilt (req/s)",
      },
      {
        a: "fetch",
        b: "raw",
        kind: "speed",
        label: "fetch ÷ raw prebuilt (req/s)",
      },
    ],
  };
}

/** A section with one skipped row: what a row that cannot run prints. */
function skippedSection(
  id: string,
  title: string,
  label: string,
  why: string,
): Section {
  return {
    id: `http-${id}`,
    title,
    notes: [],
    rows: [{
      label,
      median: NaN,
      samples: [],
      unit: "",
      skipped: why,
    }],
    ratios: [],
    verdicts: [],
  };
}

/**
 * Whether `fetchAll` sends through `proxy`: one request with a unique query,
 * which tinyproxy's log must then show. A string says why not.
 */
async function fetchAllUsesProxy(
  proxy: Proxy,
  origin: string,
): Promise<true | string> {
  const url = `${origin}/1k?bench-proxy-probe-${crypto.randomUUID()}`;
  try {
    const [r] = await fetchAll([url], {
      proxy: proxy.url,
      timeout: 10_000,
    } as FetchAllOptions);
    if (r !== undefined && !r.ok) {
      return `fetchAll through the proxy failed: ${String(r.error)}`;
    }
  } catch (e) {
    return `fetchAll rejected the proxy option: ${String(e)}`;
  }
  // tinyproxy may write its log line a moment later.
  for (let i = 0; i < 20; i++) {
    if ((await proxy.log()).includes(url)) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return "fetchAll ignores the proxy option on this branch (the request went around tinyproxy): row skipped";
}

async function proxyRow(
  origin: Origin,
  cfg: HttpConfig,
  quick: boolean,
): Promise<Section> {
  const n = cfg.proxyCount;
  const title = `HTTP proxy: ${
    fmtN(n)
  } GETs of 1 KiB through tinyproxy, concurrency ${cfg.concurrency} (req/s, higher is better)`;
  const proxy = await startTinyproxy();
  if (typeof proxy === "string") {
    return {
      id: "http-proxy",
      title,
      notes: [],
      rows: [{
        label: "tinyproxy row",
        median: NaN,
        samples: [],
        unit: "",
        skipped: proxy,
      }],
      ratios: [],
      verdicts: [],
    };
  }
  try {
    const port = [origin.port];
    const uses = await fetchAllUsesProxy(
      proxy,
      `http://127.0.0.1:${origin.port}`,
    );
    const clients: ClientSpec[] = [
      {
        id: "fetch",
        label: "Deno fetch, createHttpClient({ proxy })",
        args: clientArgs("fetch", port, "/1k", n, cfg, ["--proxy", proxy.url]),
      },
    ];
    if (uses === true) {
      clients.unshift({
        id: "fetchAll",
        label: "fetchAll({ proxy })",
        args: clientArgs("fetch-all", port, "/1k", n, cfg, [
          "--proxy",
          proxy.url,
        ]),
      });
    }
    const schedule: Schedule = {
      rounds: cfg.rounds,
      expectOk: n,
      runTimeoutMs: 300_000,
    };
    const section = await runRow({
      id: "proxy",
      title,
      notes: [
        `Origin: ${origin.describe}; proxy: tinyproxy (its own config in a temp dir), which closes the client connection after every response.`,
        roundsNote(schedule),
        METHOD_NOTE,
      ],
      count: n,
      bodyLength: PATHS["/1k"],
      schedule,
      clients,
      ratios: [...FETCH_RATIOS],
    }, quick);
    if (uses !== true) {
      section.rows.unshift({
        label: "fetchAll({ proxy })",
        median: NaN,
        samples: [],
        unit: "",
        skipped: uses,
      });
    }
    return section;
  } finally {
    await proxy.stop();
  }
}

/**
 * Runs the HTTP rows in `only`, against `origin`; with `base`, each library
 * client also on the baseline's `mod.ts` (the proxy row excepted: a baseline
 * without `proxy` would go around the proxy).
 */
export async function runHttpRows(
  cfg: HttpConfig,
  origin: Origin,
  only: ReadonlySet<HttpRow>,
  quick: boolean,
  base?: Baseline,
): Promise<Section[]> {
  const sections: Section[] = [];
  const keep = keepAliveRows(origin, cfg);
  for (const id of HTTP_ROWS) {
    if (!only.has(id)) continue;
    switch (id) {
      case "1k":
      case "64k":
      case "64m":
        sections.push(await runRow(keep[id], quick, base));
        break;
      case "close":
        sections.push(await runRow(closeRow(origin, cfg), quick, base));
        break;
      case "cold":
        sections.push(await runRow(coldRow(origin, cfg), quick, base));
        break;
      case "c1":
        sections.push(await runRow(serialRow(origin, cfg), quick, base));
        break;
      case "sink": {
        const dir = await sinkDir();
        const removeDir = cleanupOnKill(() =>
          Deno.remove(dir, { recursive: true })
        );
        try {
          sections.push(
            await runRow(sinkRow(origin, cfg, dir), quick, base),
          );
        } finally {
          await removeDir();
        }
        break;
      }
      case "origins": {
        const def = originsRow(origin, cfg);
        sections.push(
          typeof def === "string"
            ? {
              id: "http-origins",
              title: "HTTP: many origins",
              notes: [],
              rows: [{
                label: "many origins",
                median: NaN,
                samples: [],
                unit: "",
                skipped: def,
              }],
              ratios: [],
              verdicts: [],
            }
            : await runRow(def, quick, base),
        );
        break;
      }
      case "proxy":
        sections.push(await proxyRow(origin, cfg, quick));
        break;
      case "tls": {
        const def = tlsRow(origin, cfg);
        sections.push(
          typeof def === "string"
            ? skippedSection(
              "tls",
              "HTTPS: keep-alive over TLS",
              "https row",
              def,
            )
            : await runRow(def, quick, base),
        );
        break;
      }
      case "tls-64m": {
        const def = tls64mRow(origin, cfg);
        sections.push(
          typeof def === "string"
            ? skippedSection(
              "tls-64m",
              "HTTPS: one GET of 64 MiB",
              "https 64 MiB row",
              def,
            )
            : await runRow(def, quick, base),
        );
        break;
      }
      case "upload":
      case "upload-64k":
      case "upload-16k": {
        // nginx's static files take no POST (405): the row has a server of its own.
        const own = origin.kind === "deno" ? null : await startDenoOrigin(0);
        try {
          sections.push(
            await runRow(uploadRow(own ?? origin, cfg, id), quick, base),
          );
        } finally {
          await own?.stop();
        }
        break;
      }
    }
  }
  return sections;
}
