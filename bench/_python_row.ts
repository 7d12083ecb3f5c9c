/**
 * The Python row of issue 4: the seed crawler's design (`_seed_crawler.py`)
 * against `fetchAll` and a `fetch` pool, all clients in this process (Python in
 * its own, timed inside Python), interleaved rounds, a full GC before every run
 * when `gc()` is exposed.
 *
 * @module
 */
import { fetchAll, fetchEach } from "../mod.ts";
import {
  type Engine,
  runFetchAll,
  runFetchPool,
  type RunOptions,
  type RunResult,
} from "./_http_clients.ts";
import type { Ratio, Row, Section } from "./_report.ts";
import {
  collectGarbage,
  gcAvailable,
  median,
  progress,
  rotate,
  spawnProgram,
} from "./_util.ts";

/** The scale of the Python row. */
export interface PythonConfig {
  rounds: number;
  /** GETs per run. */
  count: number;
  concurrency: number;
}

export const FULL_PYTHON: PythonConfig = {
  rounds: 3,
  count: 2_000,
  concurrency: 64,
};

export const QUICK_PYTHON: PythonConfig = {
  rounds: 3,
  count: 300,
  concurrency: 64,
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

/** The note that says whether clients ran after a forced GC. */
function gcNote(): string {
  return gcAvailable
    ? "A full GC (globalThis.gc, --v8-flags=--expose-gc) runs before every run, outside the timed region."
    : "No GC between runs: gc() is not exposed (run with --v8-flags=--expose-gc, as deno task bench does), so each client may pay for the previous one's garbage.";
}

/** The Python row of issue 4: the seed crawler's design against fetchAll and fetch. */
export async function runPythonRow(
  cfg: PythonConfig,
  port: number,
  originName: string,
): Promise<Section> {
  const base = `http://127.0.0.1:${port}`;
  const w: Workload = {
    id: "python",
    title: `${cfg.count.toLocaleString("en-US")} GETs of 1 KiB`,
    path: "/1k",
    count: cfg.count,
    bodyLength: 1024,
  };
  const urls = Array.from({ length: w.count }, () => base + w.path);
  const opts: RunOptions = {
    concurrency: cfg.concurrency,
    expectedLength: w.bodyLength,
  };
  const python = await findPython();
  const engine: Engine = { fetchAll, fetchEach };
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
      run: () => runFetchAll(urls, opts, { keepAlive: false }, engine),
    },
    {
      id: "fetchAll",
      label: "fetchAll (keep-alive)",
      run: () => runFetchAll(urls, opts, {}, engine),
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
      `Origin: ${originName}.`,
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
