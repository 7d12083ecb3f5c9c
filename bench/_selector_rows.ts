/**
 * The selector scale rows of issue 2:
 *
 * - **Echo round with many idle conns**: the time per `send()` + `select()` until
 *   `EVENT_READ` + `recv()` round on one busy conn, with 10,000 idle registered
 *   conns vs. 10. Each configuration lives in its own child process
 *   (`_selector_child.ts`; the idle peers are held by `_idle_peers.ts`, a third
 *   process, so each side spends its own fd budget). Both children are set up
 *   first; then the parent alternates timed blocks between them, so the load of
 *   this shared 2-core machine hits both alike. Target: ratio <= 1.2x.
 * - **Control**: the same round on plain `Deno.Conn`s, no selector, with a read
 *   pending on every idle conn: what Deno itself charges for 10,000 pending reads.
 * - **Heap growth** over 1,000,000 `select(0)` calls with 1,000 idle registered
 *   conns, measured after `gc()` in a child run with `--v8-flags=--expose-gc`.
 *   Target: < 5 MB.
 *
 * @module
 */
import type { Ratio, Row, Section, Verdict } from "./_report.ts";
import { type Child, fdLimits, median, progress, spawnDeno } from "./_util.ts";

/** The scale of the selector rows. */
export interface SelectorConfig {
  /** Idle conns of the big configuration (the spec: 10,000). */
  idle: number;
  /** Idle conns of the baseline configuration (the spec: 10). */
  baseIdle: number;
  /** Timed blocks per configuration, alternated. */
  blocks: number;
  /** Echo rounds per block. */
  blockSize: number;
  /** Warm-up rounds in each child before timing. */
  warmup: number;
  /** Idle conns and `select(0)` calls of the heap row (the spec: 1,000 and 1,000,000). */
  heapIdle: number;
  heapCalls: number;
}

export const FULL_SELECTOR: SelectorConfig = {
  idle: 10_000,
  baseIdle: 10,
  blocks: 60,
  blockSize: 200,
  warmup: 2_000,
  heapIdle: 1_000,
  heapCalls: 1_000_000,
};

export const QUICK_SELECTOR: SelectorConfig = {
  idle: 1_000,
  baseIdle: 10,
  blocks: 10,
  blockSize: 100,
  warmup: 300,
  heapIdle: 200,
  heapCalls: 100_000,
};

const NET = "--allow-net=127.0.0.1";

async function startPeers(): Promise<
  { peers: Child; holdPort: number; echoPort: number }
> {
  const peers = spawnDeno([NET], "./_idle_peers.ts", [], "idle peers");
  try {
    const { holdPort, echoPort } = await peers.lines.json<
      { holdPort: number; echoPort: number }
    >(30_000);
    return { peers, holdPort, echoPort };
  } catch (e) {
    await peers.stop();
    throw e;
  }
}

/**
 * Runs `mode` in two children (`baseIdle` and `idle` idle conns), alternating
 * timed blocks between them; returns µs per round for each block.
 */
async function alternate(
  mode: string,
  cfg: SelectorConfig,
  idle: number,
): Promise<
  {
    base: number[];
    big: number[];
    baseCpu: number[];
    bigCpu: number[];
    setupMs: number;
  }
> {
  const { peers, holdPort, echoPort } = await startPeers();
  const children: Child[] = [];
  try {
    const common = [
      "--hold-port",
      String(holdPort),
      "--echo-port",
      String(echoPort),
      "--warmup",
      String(cfg.warmup),
      "--deadline-ms",
      "240000",
    ];
    const base = spawnDeno([NET], "./_selector_child.ts", [
      mode,
      "--idle",
      String(cfg.baseIdle),
      ...common,
    ], `${mode} child (${cfg.baseIdle} idle)`);
    children.push(base);
    const big = spawnDeno([NET], "./_selector_child.ts", [
      mode,
      "--idle",
      String(idle),
      ...common,
    ], `${mode} child (${idle} idle)`);
    children.push(big);
    // Set up one after the other: opening 10,000 conns is CPU-bound.
    await base.lines.json(120_000);
    const ready = await big.lines.json<{ setupMs: number }>(180_000);
    const samples = {
      base: [] as number[],
      big: [] as number[],
      baseCpu: [] as number[],
      bigCpu: [] as number[],
    };
    for (let b = 0; b < cfg.blocks; b++) {
      const order: Array<[Child, number[], number[]]> = b % 2 === 0
        ? [[base, samples.base, samples.baseCpu], [
          big,
          samples.big,
          samples.bigCpu,
        ]]
        : [[big, samples.big, samples.bigCpu], [
          base,
          samples.base,
          samples.baseCpu,
        ]];
      for (const [child, wall, cpu] of order) {
        await child.send(`block ${cfg.blockSize}`);
        const r = await child.lines.json<{ us: number; cpuUs: number }>(
          60_000,
        );
        wall.push(r.us);
        cpu.push(r.cpuUs);
      }
    }
    for (const c of children) await c.send("quit");
    return { ...samples, setupMs: ready.setupMs };
  } finally {
    for (const c of children) await c.stop();
    await peers.stop();
  }
}

/** Per-pair ratios `a[i] / b[i]`, summarised. */
function pairedRatio(label: string, a: number[], b: number[]): Ratio {
  const rs = a.map((x, i) => x / b[i]!);
  return {
    label,
    median: median(rs),
    min: Math.min(...rs),
    max: Math.max(...rs),
  };
}

/** Runs the selector rows; returns their sections. */
export async function runSelectorRows(
  cfg: SelectorConfig,
  quick: boolean,
): Promise<Section[]> {
  const limits = await fdLimits();
  // Our side needs `idle` fds plus stdio, the busy conn and Deno's own handful.
  const room = Math.min(limits.hard, Number.MAX_SAFE_INTEGER) - 200;
  const idle = Math.min(cfg.idle, room);
  const scaleNote = idle < cfg.idle
    ? `the open-files hard limit (${limits.hard}) allows only ${idle} idle conns, not ${cfg.idle}`
    : "";
  const fmtN = (n: number) => n.toLocaleString("en-US");

  progress(
    `selector: echo round, ${fmtN(cfg.baseIdle)} vs ${
      fmtN(idle)
    } idle conns (${cfg.blocks} alternated blocks of ${cfg.blockSize})`,
  );
  const sel = await alternate("round", cfg, idle);
  progress("selector: control, plain Deno.Conn round with pending reads");
  const raw = await alternate("raw-round", cfg, idle);

  const rows: Row[] = [
    row(`selector, ${fmtN(cfg.baseIdle)} idle conns`, sel.base),
    row(`selector, ${fmtN(idle)} idle conns`, sel.big),
    row(`  its CPU time, ${fmtN(cfg.baseIdle)} idle`, sel.baseCpu, "CPU µs"),
    row(`  its CPU time, ${fmtN(idle)} idle`, sel.bigCpu, "CPU µs"),
    row(`plain Deno.Conn, ${fmtN(cfg.baseIdle)} idle reads`, raw.base),
    row(`plain Deno.Conn, ${fmtN(idle)} idle reads`, raw.big),
    row(`  its CPU time, ${fmtN(cfg.baseIdle)} idle`, raw.baseCpu, "CPU µs"),
    row(`  its CPU time, ${fmtN(idle)} idle`, raw.bigCpu, "CPU µs"),
  ];
  const selRatio = pairedRatio(
    `selector ${fmtN(idle)} / ${fmtN(cfg.baseIdle)}`,
    sel.big,
    sel.base,
  );
  const rawRatio = pairedRatio(
    `plain ${fmtN(idle)} / ${fmtN(cfg.baseIdle)}`,
    raw.big,
    raw.base,
  );
  const selCpuRatio = pairedRatio(
    `selector CPU ${fmtN(idle)} / ${fmtN(cfg.baseIdle)}`,
    sel.bigCpu,
    sel.baseCpu,
  );
  const rawCpuRatio = pairedRatio(
    `plain CPU ${fmtN(idle)} / ${fmtN(cfg.baseIdle)}`,
    raw.bigCpu,
    raw.baseCpu,
  );
  const ratioMed = median(sel.big) / median(sel.base);
  // Load from other processes only ever adds time: the fastest blocks are the
  // closest this machine gets to a quiet run.
  const ratioMin = Math.min(...sel.big) / Math.min(...sel.base);
  const met = selRatio.median <= 1.2;
  const verdicts: Verdict[] = [{
    target: `selector: round with ${
      fmtN(cfg.idle)
    } idle conns <= 1.2x the round with ${cfg.baseIdle}`,
    met,
    provisional: quick || scaleNote !== "",
    why:
      `${fmt2(selRatio.median)}x (median of ${sel.big.length} paired blocks; ` +
      `ratio of medians ${fmt2(ratioMed)}x, of fastest blocks ${
        fmt2(ratioMin)
      }x; CPU time ${fmt2(selCpuRatio.median)}x; plain-Deno control ${
        fmt2(rawRatio.median)
      }x, CPU ${fmt2(rawCpuRatio.median)}x)` +
      (scaleNote ? `; ${scaleNote}` : "") +
      (quick ? `; quick run with ${fmtN(idle)} idle conns` : "") +
      (!met && !quick
        ? rawRatio.median > 1.2
          ? "; Deno itself slows down by the control's ratio with that many pending reads"
          : "; the selector adds cost beyond Deno's own (see the control)"
        : ""),
  }];
  const scale: Section = {
    id: "selector-scale",
    title:
      `Selector: send + select() + recv echo round, idle registered conns (µs/round, lower is better)`,
    notes: [
      `Each configuration in its own process; idle peers in a third; ${cfg.blocks} timed blocks of ${cfg.blockSize} rounds alternated between them.`,
      `Setup of ${fmtN(idle)} idle conns took ${
        fmt2(sel.setupMs / 1000)
      } s. Ratios are medians of per-block pairs.`,
      `Control: the same round on plain Deno.Conn, no selector, with one read() pending per idle conn (as a registered PollableConn has).`,
      `CPU time: user + system time of the measuring process per round (process.cpuUsage), which other processes' load barely moves.`,
    ],
    rows,
    ratios: [selRatio, selCpuRatio, rawRatio, rawCpuRatio],
    verdicts,
  };

  progress(
    `selector: heap growth over ${fmtN(cfg.heapCalls)} select(0) calls, ${
      fmtN(cfg.heapIdle)
    } idle conns`,
  );
  const heap = await heapRow(cfg);
  const growthMB = (heap.heapAfter - heap.heapBefore) / 1e6;
  const rssMB = (heap.rssAfter - heap.rssBefore) / 1e6;
  const heapSection: Section = {
    id: "selector-heap",
    title: `Selector: memory after ${fmtN(heap.calls)} select(0) calls over ${
      fmtN(heap.idle)
    } idle registered conns`,
    notes: [
      `heapUsed after gc() (child run with --v8-flags=--expose-gc${
        heap.gc ? "" : ", but gc() was not available"
      }), before and after the calls.`,
    ],
    rows: [
      {
        label: "heap growth",
        median: growthMB,
        samples: [growthMB],
        unit: "MB",
        extra: `${fmt2(heap.heapBefore / 1e6)} -> ${
          fmt2(heap.heapAfter / 1e6)
        } MB heapUsed`,
      },
      {
        label: "rss growth",
        median: rssMB,
        samples: [rssMB],
        unit: "MB",
        extra: "informational",
      },
      {
        label: "select(0) cost",
        median: heap.usPerSelect,
        samples: [heap.usPerSelect],
        unit: "µs/call",
      },
    ],
    ratios: [],
    verdicts: [{
      target: `selector: heap growth after ${
        fmtN(FULL_SELECTOR.heapCalls)
      } select(0) over ${fmtN(FULL_SELECTOR.heapIdle)} idle conns < 5 MB`,
      met: growthMB < 5,
      provisional: quick,
      why: `${fmt2(growthMB)} MB` +
        (quick
          ? ` (quick run: ${fmtN(heap.calls)} calls over ${
            fmtN(heap.idle)
          } conns)`
          : ""),
    }],
  };
  return [scale, heapSection];
}

interface HeapResult {
  idle: number;
  calls: number;
  heapBefore: number;
  heapAfter: number;
  rssBefore: number;
  rssAfter: number;
  usPerSelect: number;
  gc: boolean;
}

async function heapRow(cfg: SelectorConfig): Promise<HeapResult> {
  const { peers, holdPort } = await startPeers();
  const child = spawnDeno(
    [NET, "--v8-flags=--expose-gc"],
    "./_selector_child.ts",
    [
      "heap",
      "--idle",
      String(cfg.heapIdle),
      "--hold-port",
      String(holdPort),
      "--calls",
      String(cfg.heapCalls),
      "--deadline-ms",
      "180000",
    ],
    "heap child",
  );
  try {
    return await child.lines.json<HeapResult>(180_000);
  } finally {
    await child.stop();
    await peers.stop();
  }
}

function row(label: string, samples: number[], unit = "µs/round"): Row {
  return { label, median: median(samples), samples, unit };
}

function fmt2(n: number): string {
  return Number.isFinite(n) ? n.toFixed(2) : "n/a";
}
