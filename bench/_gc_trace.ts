/**
 * Reads V8's `--trace-gc-nvp` output (one `GC: {json}` line per collection, as
 * this V8 prints it) and splits it into the runs of a bench child.
 *
 * Each run of `_http_child.ts` is bracketed by forced collections (reason
 * `testing`): it starts after `gc({ type: "minor" })` (one scavenge, the start
 * marker; with `--gc-between full` a `gc()` before it, one or more
 * mark-compacts: V8 repeats one that freed much external memory) and ends with
 * the next forced collection (a scavenge, or `gc()` with `--gc-between full`).
 * The collections after a start marker up to that end marker, included, are
 * the run's. Per run:
 *
 * - `allocated`: the sum of each collection's `allocated` (V8 heap object bytes
 *   allocated since the previous collection ended; ArrayBuffer backing stores are
 *   outside the V8 heap and not counted), the closing anchor included, since its
 *   `allocated` covers the run's tail;
 * - `promoted`: the sum of `promoted` (bytes moved from the young generation to
 *   the old one) over every collection from the start marker to the next run's
 *   start marker, both markers' included: scavenges, and mark-compacts, which
 *   move the young generation's survivors too; the end marker's and the next
 *   start marker's promote what the run still held when it ended (the objects
 *   of its last scavenge intervals, which a longer crawl promotes as it goes).
 *   The child ends its trace with one more start marker, so the last run has
 *   its closing one; without it the run's promotion is counted to the trace's
 *   end;
 * - `pauseMs`: main-thread pause of the collections the run itself triggered
 *   (the anchors excluded);
 * - `scavenges` and `fullGcs` (mark-compacts, the anchors excluded).
 *
 * @module
 */

/** One collection, the fields the bench reads. */
export interface GcEvent {
  gc: string;
  reason: string;
  pause: number;
  allocated: number;
  promoted: number;
}

/** What the collections of one run add up to. */
export interface GcRun {
  allocated: number;
  promoted: number;
  pauseMs: number;
  scavenges: number;
  fullGcs: number;
}

const MARK = " GC: {";

/** The collections in a trace, in order; lines that are not collections are skipped. */
export function parseGcTrace(text: string): GcEvent[] {
  const events: GcEvent[] = [];
  for (const line of text.split("\n")) {
    const at = line.indexOf(MARK);
    if (at < 0) continue;
    try {
      const e = JSON.parse(line.slice(at + MARK.length - 1)) as Partial<
        GcEvent
      >;
      events.push({
        gc: String(e.gc ?? ""),
        reason: String(e.reason ?? ""),
        pause: Number(e.pause ?? 0),
        allocated: Number(e.allocated ?? 0),
        promoted: Number(e.promoted ?? 0),
      });
    } catch {
      // A line cut short (the process was killed mid-write): not counted.
    }
  }
  return events;
}

/**
 * The trace's collections split into `runs` runs by the forced-GC markers, or
 * `null` when the markers do not give exactly `runs` complete runs.
 */
export function splitRuns(events: GcEvent[], runs: number): GcRun[] | null {
  const forced = (e: GcEvent) => e.reason === "testing";
  const out: GcRun[] = [];
  for (let i = 0; i < events.length; i++) {
    if (!forced(events[i]!) || events[i]!.gc !== "s") continue;
    const run: GcRun = {
      allocated: 0,
      promoted: 0,
      pauseMs: 0,
      scavenges: 0,
      fullGcs: 0,
    };
    let j = i + 1;
    for (; j < events.length; j++) {
      const e = events[j]!;
      run.allocated += e.allocated;
      run.promoted += e.promoted;
      if (forced(e)) break; // the closing gc(): its `allocated` is the run's tail
      run.pauseMs += e.pause;
      if (e.gc === "s") run.scavenges++;
      else run.fullGcs++;
    }
    // A start marker with no end: the trailing one (or a run cut short, which
    // leaves fewer complete runs than asked).
    if (j === events.length) break;
    // What survived the end marker is promoted by the next collections, up to
    // and including the next start marker: the run's objects, not the next run's.
    for (let k = j + 1; k < events.length; k++) {
      const e = events[k]!;
      run.promoted += e.promoted;
      if (forced(e) && e.gc === "s") break;
    }
    out.push(run);
    i = j;
  }
  return out.length === runs ? out : null;
}
