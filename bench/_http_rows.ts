/**
 * The HTTP rows of issue 3 and the Python row of issue 4, against one origin
 * server in its own process (`_origin.ts`, raw `Deno.listen`, which served the raw
 * client about 1.4x (1 KiB) and 2x (64 KiB) faster than `Deno.serve` here).
 *
 * Every row runs all its clients in each round, in an order rotated per round,
 * after one warm-up run each; it reports medians over the rounds and the medians
 * of per-round time ratios. Before every run (outside the timed region) a full GC
 * runs when `gc()` is exposed (`--v8-flags=--expose-gc`, as `deno task bench`
 * passes), so no client pays for the previous client's garbage; the notes say
 * whether it was.
 *
 * @module
 */
import {
  runFetchAll,
  runFetchEach,
  runFetchPool,
  type RunOptions,
  runRawKeepAlive,
  runRawRead,
  type RunResult,
} from "./_http_clients.ts";
import type { Ratio, Row, Section, Verdict } from "./_report.ts";
import {
  type Child,
  collectGarbage,
  gcAvailable,
  median,
  progress,
  rotate,
  spawnDeno,
  spawnProgram,
} from "./_util.ts";

/** The scale of the HTTP rows. */
export interface HttpConfig {
  rounds: number;
  /** Rounds of the 64 MiB row (one request each: cheap, and noisier). */
  bigRounds: number;
  smallCount: number;
  mediumCount: number;
  concurrency: number;
  /** GETs of the Python row. */
  pythonCount: number;
}

export const FULL_HTTP: HttpConfig = {
  rounds: 7,
  bigRounds: 15,
  smallCount: 20_000,
  mediumCount: 2_000,
  concurrency: 64,
  pythonCount: 2_000,
};

export const QUICK_HTTP: HttpConfig = {
  rounds: 2,
  bigRounds: 2,
  smallCount: 2_000,
  mediumCount: 200,
  concurrency: 64,
  pythonCount: 300,
};

/** A client of a row: runs the whole workload once. */
interface Client {
  label: string;
  id: string;
  run(): Promise<RunResult>;
}

interface Workload {
  id: string;
  title: string;
  path: string;
  count: number;
  bodyLength: number;
}

/** The origin server, started once for all HTTP rows. */
export async function startOrigin(): Promise<{ origin: Child; port: number }> {
  const origin = spawnDeno(
    ["--allow-net=127.0.0.1"],
    "./_origin.ts",
    ["--impl", "raw"],
    "origin",
  );
  try {
    const { port } = await origin.lines.json<{ port: number }>(30_000);
    return { origin, port };
  } catch (e) {
    await origin.stop();
    throw e;
  }
}

/** Runs `clients` for `rounds` interleaved rounds; returns seconds per run. */
async function measure(
  clients: Client[],
  rounds: number,
  warmup: boolean,
  expectOk: number,
): Promise<Map<string, { seconds: number[]; error?: string }>> {
  const out = new Map<string, { seconds: number[]; error?: string }>();
  for (const c of clients) out.set(c.id, { seconds: [] });
  if (warmup) {
    for (const c of clients) {
      collectGarbage();
      try {
        await c.run();
      } catch (e) {
        out.get(c.id)!.error = String(e);
      }
    }
  }
  for (let r = 0; r < rounds; r++) {
    for (const c of rotate(clients, r)) {
      const slot = out.get(c.id)!;
      if (slot.error !== undefined) continue;
      collectGarbage(); // outside the timed region
      const start = performance.now();
      let result: RunResult;
      try {
        result = await c.run();
      } catch (e) {
        slot.error = String(e);
        continue;
      }
      const seconds = result.seconds ?? (performance.now() - start) / 1000;
      if (result.ok !== expectOk) {
        slot.error = `${expectOk - result.ok} of ${expectOk} requests failed` +
          (result.firstError ? ` (first: ${result.firstError})` : "");
        continue;
      }
      slot.seconds.push(seconds);
    }
  }
  return out;
}

function pairedTimeRatio(
  label: string,
  a: number[] | undefined,
  b: number[] | undefined,
): Ratio | null {
  if (!a || !b || a.length === 0 || a.length !== b.length) return null;
  const rs = a.map((x, i) => x / b[i]!);
  return {
    label,
    median: median(rs),
    min: Math.min(...rs),
    max: Math.max(...rs),
  };
}

const MiB = 1024 * 1024;

function workloadRows(
  w: Workload,
  clients: Client[],
  times: Map<string, { seconds: number[]; error?: string }>,
): Row[] {
  return clients.map((c) => {
    const t = times.get(c.id)!;
    if (t.error !== undefined || t.seconds.length === 0) {
      return {
        label: c.label,
        median: NaN,
        samples: [],
        unit: "",
        skipped: t.error ?? "no rounds",
      };
    }
    const mbps = t.seconds.map((s) => w.count * w.bodyLength / MiB / s);
    if (w.count === 1) {
      return {
        label: c.label,
        median: median(mbps),
        samples: mbps,
        unit: "MiB/s",
        extra: `${(median(t.seconds) * 1000).toFixed(0)} ms per body`,
      };
    }
    const rps = t.seconds.map((s) => w.count / s);
    return {
      label: c.label,
      median: median(rps),
      samples: rps,
      unit: "req/s",
      extra: `${median(mbps).toFixed(0)} MiB/s`,
    };
  });
}

function fmt2(n: number): string {
  return Number.isFinite(n) ? n.toFixed(2) : "n/a";
}

/** The note that says whether clients ran after a forced GC. */
function gcNote(): string {
  return gcAvailable
    ? "A full GC (globalThis.gc, --v8-flags=--expose-gc) runs before every run, outside the timed region."
    : "No GC between runs: gc() is not exposed (run with --v8-flags=--expose-gc, as deno task bench does), so each client may pay for the previous one's garbage.";
}

/** Runs the three HTTP rows of issue 3. */
export async function runHttpRows(
  cfg: HttpConfig,
  port: number,
  quick: boolean,
): Promise<Section[]> {
  const base = `http://127.0.0.1:${port}`;
  const workloads: Workload[] = [
    {
      id: "http-1k",
      title: `${cfg.smallCount.toLocaleString("en-US")} GETs of 1 KiB`,
      path: "/1k",
      count: cfg.smallCount,
      bodyLength: 1024,
    },
    {
      id: "http-64k",
      title: `${cfg.mediumCount.toLocaleString("en-US")} GETs of 64 KiB`,
      path: "/64k",
      count: cfg.mediumCount,
      bodyLength: 64 * 1024,
    },
    {
      id: "http-64m",
      title: "one GET of 64 MiB",
      path: "/64m",
      count: 1,
      bodyLength: 64 * MiB,
    },
  ];
  const sections: Section[] = [];
  for (const w of workloads) {
    const urls = Array.from({ length: w.count }, () => base + w.path);
    const paths = Array.from({ length: w.count }, () => w.path);
    const opts: RunOptions = {
      concurrency: cfg.concurrency,
      expectedLength: w.bodyLength,
    };
    const clients: Client[] = [
      {
        id: "fetchAll",
        label: "fetchAll (keep-alive)",
        run: () => runFetchAll(urls, opts),
      },
    ];
    if (w.count > 1) {
      clients.push({
        id: "fetchEach",
        label: "fetchEach (results streamed, dropped)",
        run: () => runFetchEach(urls, opts),
      });
    }
    clients.push(
      {
        id: "fetch",
        label: `fetch pool (${cfg.concurrency} workers)`,
        run: () => runFetchPool(urls, opts),
      },
      {
        id: "raw",
        label: w.count === 1
          ? "raw Deno.connect keep-alive (1 conn)"
          : `raw Deno.connect keep-alive (${cfg.concurrency} conns)`,
        run: () => runRawKeepAlive(port, paths, opts),
      },
    );
    if (w.count === 1) {
      clients.push({
        id: "rawRead",
        label: "raw conn.read into the body buffer",
        run: () => runRawRead(port, w.path, opts),
      });
    }
    const rounds = w.count === 1 ? cfg.bigRounds : cfg.rounds;
    progress(
      `http: ${w.title}, concurrency ${cfg.concurrency}, ${rounds} rounds of ${clients.length} clients`,
    );
    const times = await measure(clients, rounds, true, w.count);
    const rows = workloadRows(w, clients, times);
    const fa = times.get("fetchAll")?.seconds;
    const ratios: Ratio[] = [];
    const verdicts: Verdict[] = [];
    const baselines: Array<[string, string, number, string]> = [
      ["raw", "raw keep-alive", 1.25, "within 1.25x of"],
      ["fetch", "fetch", 1.0, "not slower than"],
    ];
    if (w.count === 1) {
      baselines.splice(1, 0, [
        "rawRead",
        "raw conn.read",
        1.25,
        "within 1.25x of",
      ]);
    }
    for (const [id, name, limit, phrase] of baselines) {
      const q = pairedTimeRatio(
        `time fetchAll / ${name}`,
        fa,
        times.get(id)?.seconds,
      );
      const target = `http ${w.title}: fetchAll ${phrase} ${name}`;
      if (q === null) {
        verdicts.push({
          target,
          met: null,
          why: times.get("fetchAll")?.error ?? times.get(id)?.error ??
            "not measured",
        });
        continue;
      }
      ratios.push(q);
      verdicts.push({
        target,
        met: q.median <= limit,
        provisional: quick,
        why:
          `time ratio ${fmt2(q.median)} (limit ${fmt2(limit)}; per-round ${
            fmt2(q.min)
          }..${fmt2(q.max)})` +
          (quick ? "; quick run, not the spec scale" : ""),
      });
    }
    // Information only, no target: the engine without fetchAll's retention of
    // every response, and fetch against the raw loop.
    const info: Array<[string, string, string]> = [
      ["fetchEach", "raw", "time fetchEach / raw keep-alive"],
      ["fetchEach", "fetch", "time fetchEach / fetch"],
      ["fetchAll", "fetchEach", "time fetchAll / fetchEach"],
      ["fetch", "raw", "time fetch / raw keep-alive"],
    ];
    for (const [a, b, label] of info) {
      const q = pairedTimeRatio(
        label,
        times.get(a)?.seconds,
        times.get(b)?.seconds,
      );
      if (q !== null) ratios.push(q);
    }
    sections.push({
      id: w.id,
      title: `HTTP: ${w.title}${
        w.count === 1 ? "" : `, concurrency ${cfg.concurrency}`
      } (${w.count === 1 ? "MiB/s" : "req/s"}, higher is better)`,
      notes: [
        `Origin: raw Deno.listen HTTP/1.1 keep-alive server in its own process, Content-Length bodies.`,
        `${rounds} interleaved rounds after one warm-up run per client; ratios are medians of per-round time ratios (< 1 means the first is faster).`,
        ...(w.count > 1
          ? [
            "fetchEach: the same engine, each result counted and dropped as it is yielded, none held: information only, the targets are on fetchAll.",
          ]
          : []),
        gcNote(),
      ],
      rows,
      ratios,
      verdicts,
    });
  }
  return sections;
}

/** The Python row of issue 4: the seed crawler's design against fetchAll and fetch. */
export async function runPythonRow(
  cfg: HttpConfig,
  port: number,
): Promise<Section> {
  const base = `http://127.0.0.1:${port}`;
  const w: Workload = {
    id: "python",
    title: `${cfg.pythonCount.toLocaleString("en-US")} GETs of 1 KiB`,
    path: "/1k",
    count: cfg.pythonCount,
    bodyLength: 1024,
  };
  const urls = Array.from({ length: w.count }, () => base + w.path);
  const opts: RunOptions = {
    concurrency: cfg.concurrency,
    expectedLength: w.bodyLength,
  };
  const python = await findPython();
  const clients: Client[] = [];
  if (python !== null) {
    clients.push({
      id: "python",
      label: "Python seed crawler (selectors, Connection: close)",
      run: () => runPython(python, port, w, cfg.concurrency),
    });
  }
  clients.push(
    {
      id: "fetchAllClose",
      label: "fetchAll (keepAlive: false)",
      run: () => runFetchAll(urls, opts, { keepAlive: false }),
    },
    {
      id: "fetchAll",
      label: "fetchAll (keep-alive)",
      run: () => runFetchAll(urls, opts),
    },
  );
  clients.push({
    id: "fetch",
    label: `fetch pool (${cfg.concurrency} workers)`,
    run: () => runFetchPool(urls, opts),
  });
  progress(
    `python: ${w.title}, ${cfg.rounds} rounds of ${clients.length} clients`,
  );
  const times = await measure(clients, cfg.rounds, true, w.count);
  const rows = workloadRows(w, clients, times);
  if (python === null) {
    rows.unshift({
      label: "Python seed crawler",
      median: NaN,
      samples: [],
      unit: "",
      skipped: "python3 not found",
    });
  }
  const ratios: Ratio[] = [];
  const py = times.get("python")?.seconds;
  for (
    const [id, name] of [
      ["fetchAllClose", "fetchAll (close)"],
      ["fetchAll", "fetchAll (keep-alive)"],
      ["fetch", "fetch"],
    ] as const
  ) {
    const q = pairedTimeRatio(
      `time python / ${name}`,
      py,
      times.get(id)?.seconds,
    );
    if (q !== null) ratios.push(q);
  }
  return {
    id: "python",
    title:
      `Python row: the seed crawler's design vs. fetchAll and fetch, ${w.title}, concurrency ${cfg.concurrency} (req/s, higher is better)`,
    notes: [
      `bench/_seed_crawler.py: selectors.DefaultSelector, non-blocking sockets, one state machine per URL, Connection: close, at most ${cfg.concurrency} URLs in flight; timed inside Python (interpreter start excluded).`,
      `Ratios > 1 mean Python takes longer. No target: the row is for the README.`,
      gcNote(),
    ],
    rows,
    ratios,
    verdicts: [],
  };
}

async function findPython(): Promise<string | null> {
  try {
    const out = await new Deno.Command("python3", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success ? "python3" : null;
  } catch {
    return null;
  }
}

async function runPython(
  python: string,
  port: number,
  w: Workload,
  concurrency: number,
): Promise<RunResult> {
  const child = spawnProgram(python, [
    new URL("./_seed_crawler.py", import.meta.url).pathname,
    "--port",
    String(port),
    "--path",
    w.path,
    "--count",
    String(w.count),
    "--concurrency",
    String(concurrency),
    "--expect-length",
    String(w.bodyLength),
    "--max-seconds",
    "120",
  ], "python seed crawler");
  try {
    const r = await child.lines.json<
      { ok: number; bytes: number; seconds: number; firstError?: string }
    >(150_000);
    return {
      ok: r.ok,
      bytes: r.bytes,
      seconds: r.seconds,
      ...(r.firstError ? { firstError: r.firstError } : {}),
    };
  } finally {
    await child.stop();
  }
}
