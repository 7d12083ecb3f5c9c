/**
 * Runs the bench's HTTP clients, each in its own `_http_child.ts` process, in
 * interleaved rounds, and gathers per run: wall time, the client process's CPU
 * time (user + sys, its idle rate subtracted), its GC figures from the V8 trace
 * (`_gc_trace.ts`) and its peak RSS.
 *
 * Two schedules:
 *
 * - {@linkcode runInterleaved}: one long-lived child per client; each runs the
 *   workload once as warm-up, then the rounds, the order of the clients rotated
 *   each round, so that a load change on the machine hits every client alike.
 * - {@linkcode runFresh}: a new child for every run, nothing before it: the cold
 *   start of a process (rounds interleaved the same way).
 *
 * @module
 */
import { type GcRun, parseGcTrace, splitRuns } from "./_gc_trace.ts";
import { LineReader } from "./_lines.ts";
import { cleanupOnKill, rotate } from "./_util.ts";

/** One client of a row: its `_http_child.ts` arguments. */
export interface ClientSpec {
  id: string;
  label: string;
  /** Arguments after `_http_child.ts`, e.g. `["--client", "raw", ...]`. */
  args: string[];
  /** Whether it runs this library (`fetchAll`/`fetchEach`): `--baseline` pairs those. */
  lib?: boolean;
}

/** One measured run. */
export interface Sample {
  seconds: number;
  /** CPU µs of the client process during the run, its idle rate subtracted. */
  cpuUs: number;
  /** Peak RSS during the run, when the OS tells it (Linux). */
  peakRss?: number;
  /** Per-request latency percentiles of the run, ms (`--latency`). */
  latency?: LatencyPercentiles;
  /** The run's collections, when the trace could be split. */
  gc?: GcRun;
}

/** What a client gave over the whole row. */
export interface ClientOutcome {
  samples: Sample[];
  /** The child's peak RSS before its first run (the runtime and the workload's setup). */
  readyRss?: number;
  /** Why it stopped early, if it did. */
  error?: string;
}

/** How to run a row. */
export interface Schedule {
  rounds: number;
  /** Responses every run must bring back intact. */
  expectOk: number;
  /** The longest one run may take. */
  runTimeoutMs: number;
  /** For {@linkcode runInterleaved}: warm-up runs per client first (default 1). */
  warmupRuns?: number;
}

/** One run's per-request latency percentiles, ms (nearest rank). */
export interface LatencyPercentiles {
  p50: number;
  p99: number;
  /** p99.9 */
  p999: number;
  max: number;
}

interface RunReply {
  ok: number;
  bytes: number;
  seconds: number;
  cpuUs: number;
  peakRss?: number;
  latency?: LatencyPercentiles;
  firstError?: string;
}

const CHILD = new URL("./_http_child.ts", import.meta.url).pathname;
const encoder = new TextEncoder();

/** A `_http_child.ts` process and its protocol. */
class ClientChild {
  #process: Deno.ChildProcess;
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #lines: LineReader;
  #trace: string;
  #tail: string[] = [];
  #what: string;
  /** Whether each run so far is kept (not a warm-up). */
  readonly kept: boolean[] = [];
  #idleUsPerMs = 0;
  /** Its peak RSS before its first run, once ready. */
  readyRss: number | undefined;

  constructor(spec: ClientSpec, trace: string, runTimeoutMs: number) {
    this.#trace = trace;
    this.#what = spec.label;
    this.#process = new Deno.Command("sh", {
      args: [
        "-c",
        'ulimit -n "$(ulimit -Hn)" 2>/dev/null; f=$1; shift; exec "$@" >"$f"',
        "sh",
        trace,
        Deno.execPath(),
        "run",
        "--v8-flags=--expose-gc,--trace-gc-nvp",
        // All: Deno grants /proc/self/status and clear_refs (peak RSS) to
        // nothing less. This process can already run anything (--allow-run).
        "--allow-all",
        CHILD,
        ...spec.args,
        // The child's own bound, so that it exits even if this process is gone.
        "--max-run-ms",
        String(runTimeoutMs),
      ],
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.#stdin = this.#process.stdin.getWriter();
    this.#lines = new LineReader(this.#process.stderr, spec.label);
  }

  /** The next JSON line on its stderr; other lines are kept for error messages. */
  async #json<T>(timeoutMs: number): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    for (let i = 0; i < 10_000; i++) {
      let line: string;
      try {
        line = await this.#lines.next(
          Math.max(1, deadline - performance.now()),
        );
      } catch (e) {
        // The first lines: Deno's "error: Uncaught ..." and where.
        const tail = this.#tail.length > 0
          ? `; its stderr: ${this.#tail.slice(0, 2).join(" | ")}`
          : "";
        throw new Error(`${(e as Error).message}${tail}`);
      }
      if (line.startsWith("{")) return JSON.parse(line) as T;
      this.#tail.push(line);
      if (this.#tail.length > 12) this.#tail.shift();
    }
    throw new Error(`${this.#what}: no JSON line`);
  }

  async ready(): Promise<void> {
    const r = await this.#json<
      { idleCpuUs: number; idleMs: number; readyRss?: number }
    >(90_000);
    this.#idleUsPerMs = r.idleMs > 0 ? r.idleCpuUs / r.idleMs : 0;
    this.readyRss = r.readyRss;
  }

  async run(keep: boolean, timeoutMs: number): Promise<RunReply> {
    await this.#stdin.write(encoder.encode("run\n"));
    const r = await this.#json<RunReply>(timeoutMs);
    this.kept.push(keep);
    r.cpuUs = Math.max(0, r.cpuUs - this.#idleUsPerMs * r.seconds * 1000);
    return r;
  }

  /** Ends it (stdin closed, SIGKILL after 10 s) and returns the kept runs' GC figures. */
  async finish(): Promise<(GcRun | undefined)[]> {
    try {
      await this.#stdin.close();
    } catch {
      // Already gone.
    }
    const timer = setTimeout(() => {
      try {
        this.#process.kill("SIGKILL");
      } catch {
        // Exited meanwhile.
      }
    }, 10_000);
    try {
      await this.#process.status;
    } finally {
      clearTimeout(timer);
    }
    try {
      await this.#process.stderr.cancel();
    } catch {
      // Released or read to the end.
    }
    let text = "";
    try {
      text = await Deno.readTextFile(this.#trace);
      await Deno.remove(this.#trace);
    } catch {
      // No trace: the GC columns stay empty.
    }
    const runs = splitRuns(parseGcTrace(text), this.kept.length);
    return this.kept.flatMap((keep, i) => keep ? [runs?.[i]] : []);
  }
}

function check(r: RunReply, expectOk: number): string | undefined {
  if (r.ok === expectOk) return undefined;
  return `${expectOk - r.ok} of ${expectOk} requests failed` +
    (r.firstError ? ` (first: ${r.firstError})` : "");
}

function sample(r: RunReply): Sample {
  return {
    seconds: r.seconds,
    cpuUs: r.cpuUs,
    ...(r.peakRss !== undefined ? { peakRss: r.peakRss } : {}),
    ...(r.latency !== undefined ? { latency: r.latency } : {}),
  };
}

function attach(samples: Sample[], gcs: (GcRun | undefined)[]): void {
  samples.forEach((s, i) => {
    const gc = gcs[i];
    if (gc !== undefined) s.gc = gc;
  });
}

/**
 * Runs every client in its own long-lived child: `warmupRuns` warm-up runs each
 * (default 1), then `rounds` rounds in rotated order.
 */
export async function runInterleaved(
  clients: ClientSpec[],
  schedule: Schedule,
): Promise<Map<string, ClientOutcome>> {
  const dir = await Deno.makeTempDir({ prefix: "bench-gc-" });
  const removeDir = cleanupOnKill(() => Deno.remove(dir, { recursive: true }));
  const out = new Map<string, ClientOutcome>();
  const children = new Map<string, ClientChild>();
  try {
    for (const c of clients) {
      out.set(c.id, { samples: [] });
      children.set(
        c.id,
        new ClientChild(c, `${dir}/${c.id}.trace`, schedule.runTimeoutMs),
      );
    }
    for (const c of clients) {
      try {
        const child = children.get(c.id)!;
        await child.ready();
        if (child.readyRss !== undefined) {
          out.get(c.id)!.readyRss = child.readyRss;
        }
      } catch (e) {
        out.get(c.id)!.error = (e as Error).message;
      }
    }
    const step = async (c: ClientSpec, keep: boolean): Promise<void> => {
      const o = out.get(c.id)!;
      if (o.error !== undefined) return;
      try {
        const r = await children.get(c.id)!.run(keep, schedule.runTimeoutMs);
        const failed = check(r, schedule.expectOk);
        if (failed !== undefined) o.error = failed;
        else if (keep) o.samples.push(sample(r));
      } catch (e) {
        o.error = (e as Error).message;
      }
    };
    for (let w = 0; w < (schedule.warmupRuns ?? 1); w++) {
      for (const c of rotate(clients, w)) await step(c, false);
    }
    for (let r = 0; r < schedule.rounds; r++) {
      for (const c of rotate(clients, r)) await step(c, true);
    }
  } finally {
    for (const c of clients) {
      const child = children.get(c.id);
      if (child === undefined) continue;
      const gcs = await child.finish();
      const o = out.get(c.id)!;
      // A failed run is not a sample: keep GC figures aligned with the samples.
      attach(o.samples, gcs.slice(0, o.samples.length));
    }
    await removeDir();
  }
  return out;
}

/** Runs every client `rounds` times, each run in a fresh child, rotated per round. */
export async function runFresh(
  clients: ClientSpec[],
  schedule: Schedule,
): Promise<Map<string, ClientOutcome>> {
  const dir = await Deno.makeTempDir({ prefix: "bench-gc-" });
  const removeDir = cleanupOnKill(() => Deno.remove(dir, { recursive: true }));
  const out = new Map<string, ClientOutcome>();
  for (const c of clients) out.set(c.id, { samples: [] });
  try {
    for (let r = 0; r < schedule.rounds; r++) {
      for (const c of rotate(clients, r)) {
        const o = out.get(c.id)!;
        if (o.error !== undefined) continue;
        const child = new ClientChild(
          c,
          `${dir}/${c.id}-${r}.trace`,
          schedule.runTimeoutMs,
        );
        let reply: RunReply | undefined;
        try {
          await child.ready();
          if (child.readyRss !== undefined) o.readyRss = child.readyRss;
          reply = await child.run(true, schedule.runTimeoutMs);
          const failed = check(reply, schedule.expectOk);
          if (failed !== undefined) o.error = failed;
        } catch (e) {
          o.error = (e as Error).message;
        } finally {
          const [gc] = await child.finish();
          if (reply !== undefined && o.error === undefined) {
            const s = sample(reply);
            if (gc !== undefined) s.gc = gc;
            o.samples.push(s);
          }
        }
      }
    }
  } finally {
    await removeDir();
  }
  return out;
}
