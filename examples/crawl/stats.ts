/**
 * The crawl CLI's counters and its summary table, in memory that does not grow
 * with the number of URLs: times go into log-scale histograms, not arrays.
 *
 * @module
 */
import type { FetchTimings } from "../../mod.ts";

/** Buckets per doubling: a percentile is within about 2% of the true value. */
const PER_OCTAVE = 32;
/** Times below this (ms) share bucket 0. */
const FLOOR = 0.001;

/**
 * Percentiles of non-negative numbers (milliseconds) in a fixed-size histogram.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { Histogram } from "./stats.ts";
 *
 * const h = new Histogram();
 * for (let i = 1; i <= 100; i++) h.add(i);
 * assert(Math.abs(h.percentile(0.5) - 50) < 2);
 * ```
 */
export class Histogram {
  #counts = new Float64Array(PER_OCTAVE * 40);
  #count = 0;
  #max = 0;

  /** How many values were added. */
  get count(): number {
    return this.#count;
  }

  /** The largest value added. */
  get max(): number {
    return this.#max;
  }

  /** Adds one value. */
  add(ms: number): void {
    if (!(ms >= 0)) return;
    const bucket = ms <= FLOOR ? 0 : Math.min(
      this.#counts.length - 1,
      Math.ceil(Math.log2(ms / FLOOR) * PER_OCTAVE),
    );
    this.#counts[bucket]!++;
    this.#count++;
    if (ms > this.#max) this.#max = ms;
  }

  /** The value at rank `p` (0..1): the upper bound of its bucket, at most the max. */
  percentile(p: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(p * this.#count));
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) {
        return Math.min(this.#max, FLOOR * 2 ** (i / PER_OCTAVE));
      }
    }
    return this.#max;
  }
}

/** Everything the summary reports. */
export class Stats {
  requests = 0;
  ok = 0;
  failed = 0;
  bytes = 0;
  files = 0;
  robotsExcluded = 0;
  warcRecords = 0;
  readonly statuses = new Map<string, number>();
  readonly errors = new Map<string, number>();
  readonly origins = new Map<string, number>();
  readonly connect = new Histogram();
  readonly firstByte = new Histogram();
  readonly total = new Histogram();
  readonly queued = new Histogram();
  readonly started = performance.now();

  /** Counts one finished URL. */
  add(
    origin: string,
    ok: boolean,
    statusOrError: string,
    bytes: number,
    timings: FetchTimings,
  ): void {
    this.requests++;
    bump(this.origins, origin);
    if (ok) {
      this.ok++;
      this.bytes += bytes;
      bump(this.statuses, statusOrError);
      this.total.add(timings.total);
      if (timings.connect > 0) this.connect.add(timings.connect);
      this.firstByte.add(timings.firstByte);
      this.queued.add(timings.queued);
    } else {
      this.failed++;
      bump(this.errors, statusOrError);
    }
  }

  /** The summary table: a blank line, "Summary", one row per line. */
  summary(interrupted: boolean, extra: [string, string][] = []): string {
    const seconds = (performance.now() - this.started) / 1000;
    const p = (h: Histogram) =>
      h.count === 0
        ? "none"
        : `p50 ${formatMs(h.percentile(0.5))}, p95 ${
          formatMs(h.percentile(0.95))
        }`;
    const rows: [string, string][] = [
      [
        "requests",
        `${this.requests} (${this.ok} ok, ${this.failed} failed)${
          interrupted ? ", interrupted" : ""
        }`,
      ],
      ["statuses", counts(this.statuses, false)],
      ["errors", counts(this.errors, false)],
      ["bytes", `${formatBytes(this.bytes)} (${this.bytes} B of bodies)`],
      [
        "total",
        this.total.count === 0
          ? "no responses"
          : `${p(this.total)}, max ${formatMs(this.total.max)}`,
      ],
      ["connect", p(this.connect)],
      ["first byte", p(this.firstByte)],
      ["queued", p(this.queued)],
      [
        "throughput",
        `${
          (seconds > 0 ? this.requests / seconds : 0).toFixed(1)
        } requests/s, ${
          formatBytes(seconds > 0 ? this.bytes / seconds : 0)
        }/s (${seconds.toFixed(2)} s in all)`,
      ],
      ["origins", counts(this.origins, true)],
      ...extra,
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    return [
      "",
      "Summary",
      ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`),
    ]
      .join("\n");
  }
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/** `key: n, ...`: sorted by key, or (`top`) the 5 largest counts first. */
function counts(map: Map<string, number>, top: boolean): string {
  if (map.size === 0) return "none";
  const entries = [...map];
  if (top) {
    entries.sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1));
    const shown = entries.slice(0, 5).map(([k, v]) => `${k}: ${v}`);
    if (entries.length > 5) shown.push(`${entries.length - 5} more`);
    return shown.join(", ");
  }
  return entries.sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
    .map(([k, v]) => `${k}: ${v}`).join(", ");
}

/**
 * A byte count for people: `512 B`, `1.5 KiB`, `3.2 MiB`, `1.10 GiB`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { formatBytes } from "./stats.ts";
 *
 * assertEquals(formatBytes(1536), "1.5 KiB");
 * ```
 */
export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/**
 * Milliseconds for people: two decimals under 10 ms, one above.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { formatMs } from "./stats.ts";
 *
 * assertEquals(formatMs(3.14159), "3.14 ms");
 * ```
 */
export function formatMs(ms: number): string {
  return ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(1)} ms`;
}
