/**
 * The bench's results: what every row module fills in, and how `main.ts` prints it
 * (a plain-text table, or JSON with `--json`).
 *
 * @module
 */

/** One measured configuration or client of a section. */
export interface Row {
  /** What ran, e.g. `fetchAll (keep-alive)` or `10,000 idle conns`. */
  label: string;
  /** The median of `samples`, in `unit`. */
  median: number;
  /** One value per interleaved round (or block), in `unit`. */
  samples: number[];
  unit: string;
  /** A second figure worth printing (e.g. MB/s next to req/s). */
  extra?: string;
  /** Why the row did not run, when it did not. */
  skipped?: string;
  /**
   * Per-unit costs of the client process (medians over the rounds), for rows
   * whose client ran in its own process; the unit is the section's `per`.
   */
  costs?: Costs;
  /** Per-request latency percentiles, ms, for clients that recorded them. */
  latency?: Latency;
}

/** A figure over the rounds: its median and its spread. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

/**
 * A client's per-request latency, ms: each percentile of each run, as a median
 * over the rounds with its spread.
 */
export interface Latency {
  p50: Spread;
  p99: Spread;
  /** p99.9 */
  p999: Spread;
  max: Spread;
}

/** What a client process spent per request (or per MiB), medians over the rounds. */
export interface Costs {
  /** CPU time, user + sys of every thread, idle rate subtracted, µs. */
  cpuUs: number;
  /** V8 heap bytes allocated (`--trace-gc-nvp` `allocated`), or NaN. */
  allocated: number;
  /** Bytes promoted to the old generation by scavenges, or NaN. */
  promoted: number;
  /** Main-thread GC pause, µs, or NaN. */
  gcPauseUs: number;
  /** Peak RSS of the process during the run, bytes (not per unit), or NaN. */
  peakRss: number;
}

/** A ratio between two rows, from paired rounds. */
export interface Ratio {
  label: string;
  /** The median of the per-round ratios. */
  median: number;
  /** The smallest and largest per-round ratio. */
  min: number;
  max: number;
}

/** A target of the issues, and whether this run met it. */
export interface Verdict {
  target: string;
  /** `null` when it could not be measured (see `why`). */
  met: boolean | null;
  why: string;
  /** Measured at reduced scale (`--quick`): a hint, not a verdict on the target. */
  provisional?: boolean;
}

/** One table of the report. */
export interface Section {
  id: string;
  title: string;
  /** What the numbers mean (unit, better direction, how rounds were run). */
  notes: string[];
  rows: Row[];
  ratios: Ratio[];
  verdicts: Verdict[];
  /** What the rows' `costs` are per: `req` or `MiB`. */
  per?: string;
}

/** The whole report. */
export interface Report {
  date: string;
  machine: { cores: number; os: string; deno: string; v8: string };
  quick: boolean;
  /**
   * Whether the HTTP rows ran a full GC before every client run (`gc()` exposed by
   * `--v8-flags=--expose-gc`).
   */
  gcBetweenRuns: boolean;
  /** The HTTP origin, when HTTP rows ran. */
  origin?: string;
  /** Notes on the whole run (e.g. nginx missing). */
  notes?: string[];
  sections: Section[];
}

/** Formats `n` with a precision that suits its size. */
export function fmt(n: number): string {
  if (!Number.isFinite(n)) return "n/a";
  const a = Math.abs(n);
  if (a >= 1000) return Math.round(n).toLocaleString("en-US");
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

/** Milliseconds to the µs below 1 ms, else 3 significant digits. */
function fmtMs(n: number): string {
  if (!Number.isFinite(n)) return "n/a";
  return n.toFixed(n < 10 ? (n < 1 ? 3 : 2) : n < 100 ? 1 : 0);
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

/** The report as the table that `deno task bench` prints. */
export function formatReport(report: Report): string {
  const out: string[] = [];
  out.push(
    `selectors for Deno: bench (${
      report.quick ? "QUICK smoke run, not the spec scale" : "full run"
    })`,
  );
  out.push(
    `${report.date} · ${report.machine.cores} cores · ${report.machine.os} · Deno ${report.machine.deno} (V8 ${report.machine.v8})`,
    `GC between Python-row client runs: ${
      report.gcBetweenRuns
        ? "yes (--v8-flags=--expose-gc)"
        : "no (gc() not exposed; run with --v8-flags=--expose-gc)"
    }`,
  );
  if (report.origin !== undefined) out.push(`HTTP origin: ${report.origin}`);
  for (const n of report.notes ?? []) out.push(`NOTE: ${n}`);
  for (const s of report.sections) {
    out.push("", `## ${s.title}`);
    for (const n of s.notes) out.push(`   ${n}`);
    const w = Math.max(
      24,
      ...s.rows.map((r) => r.label.length),
      ...s.ratios.map((q) => q.label.length + 6),
    ) + 2;
    out.push(
      `   ${pad("", w)}${pad("median", 12, true)}  ${
        pad("unit", 10)
      }  rounds  ${"min..max"}`,
    );
    for (const r of s.rows) {
      if (r.skipped) {
        out.push(
          `   ${pad(r.label, w)}${pad("-", 12, true)}  skipped: ${r.skipped}`,
        );
        continue;
      }
      const lo = Math.min(...r.samples);
      const hi = Math.max(...r.samples);
      out.push(
        `   ${pad(r.label, w)}${pad(fmt(r.median), 12, true)}  ${
          pad(r.unit, 10)
        }  ${pad(String(r.samples.length), 6, true)}  ${fmt(lo)}..${fmt(hi)}${
          r.extra ? `  (${r.extra})` : ""
        }`,
      );
    }
    const costed = s.rows.filter((r) => r.costs !== undefined && !r.skipped);
    if (costed.length > 0) {
      const per = s.per ?? "req";
      const cols = [
        `CPU µs/${per}`,
        `alloc B/${per}`,
        `promoted B/${per}`,
        `GC pause µs/${per}`,
        "peak RSS MiB",
      ];
      out.push(
        `   ${pad("client process costs (medians)", w)}${
          cols.map((c) => pad(c, 18, true)).join("")
        }`,
      );
      for (const r of costed) {
        const c = r.costs!;
        out.push(
          `   ${pad(r.label, w)}${
            [
              c.cpuUs,
              c.allocated,
              c.promoted,
              c.gcPauseUs,
              c.peakRss / (1024 * 1024),
            ].map((v) => pad(fmt(v), 18, true)).join("")
          }`,
        );
      }
    }
    const timed = s.rows.filter((r) => r.latency !== undefined && !r.skipped);
    if (timed.length > 0) {
      out.push(
        `   ${pad("latency ms: median (min..max)", w)}${
          ["p50", "p99", "p99.9", "max"].map((c) => pad(c, 24, true)).join("")
        }`,
      );
      for (const r of timed) {
        const l = r.latency!;
        out.push(
          `   ${pad(r.label, w)}${
            [l.p50, l.p99, l.p999, l.max].map((v) =>
              pad(
                `${fmtMs(v.median)} (${fmtMs(v.min)}..${fmtMs(v.max)})`,
                24,
                true,
              )
            ).join("")
          }`,
        );
      }
    }
    for (const q of s.ratios) {
      out.push(
        `   ratio ${pad(q.label, w - 6)}${
          pad(fmt(q.median) + "x", 12, true)
        }  (per-round ${fmt(q.min)}..${fmt(q.max)})`,
      );
    }
  }
  out.push("", "## Verdicts");
  for (const s of report.sections) {
    for (const v of s.verdicts) {
      const tag = v.met === null
        ? "NOT RUN"
        : `${v.provisional ? "quick: " : ""}${v.met ? "met" : "MISSED"}`;
      out.push(`   [${tag}] ${v.target}: ${v.why}`);
    }
  }
  return out.join("\n");
}
