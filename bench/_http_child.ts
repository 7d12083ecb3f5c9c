/**
 * One HTTP client of the bench, alone in its own process, so that its CPU time
 * (`process.cpuUsage()`: user + sys of every thread, V8's GC helpers included),
 * its GC trace and its peak RSS are its own.
 *
 * Started by `_child_runner.ts` with `--v8-flags=--expose-gc,--trace-gc-nvp` and
 * stdout redirected to a file: V8 writes the GC trace there (buffered, flushed
 * at exit). The protocol is on stdin (commands) and stderr (JSON lines):
 *
 * 1. After building its workload it measures its idle CPU for `--idle-ms` and
 *    prints `{ "ready": true, "idleCpuUs": n, "idleMs": n, "readyRss": n }`
 *    (`readyRss`: its peak RSS before any run, bytes).
 * 2. Each `run` line on stdin runs the workload once between two forced
 *    scavenges, `gc({ type: "minor" })`, the markers of the GC trace (with
 *    `--gc-between full`, a `gc()` before the first and instead of the
 *    second); it prints `{ "ok",
 *    "bytes", "seconds", "cpuUs", "peakRss"?, "latency"?, "firstError"? }`
 *    (`peakRss`: the peak RSS during the run, bytes, on Linux; `latency`, with
 *    `--latency`: the run's per-request latency percentiles, ms, `{ "p50",
 *    "p99", "p999", "max" }`). The forced collections are the
 *    markers (reason `testing` in the trace) that tell the parent which
 *    collections belong to which run.
 * 3. At the end of stdin it exits (which flushes the trace).
 *
 * Every run is bounded by `--max-run-ms` (the process exits with code 3).
 *
 * It runs with `--allow-all`: Deno grants `/proc/self/status` (the peak RSS) and
 * `/proc/self/clear_refs` (its reset) to nothing less.
 *
 * Usage: `deno run --v8-flags=--expose-gc,--trace-gc-nvp -A bench/_http_child.ts
 * --client raw|raw-keep|raw-read|raw-close|raw-close-keep|raw-sink|fetch-all|fetch-all-sink|fetch-each|fetch
 * --ports P[,P...] --path /1k --count N --concurrency C --expect-length L
 * [--keep-alive false] [--per-origin N] [--proxy URL] [--sink-file PATH]
 * [--tls-ca PATH] [--mod PATH] [--max-run-ms N] [--idle-ms N]
 * [--gc-between minor|full] [--upload CHUNKSxSIZE] [--latency]`
 *
 * `--tls-ca` (a PEM file) makes it https: URLs `https://localhost:PORT/...`,
 * the raw loop over `Deno.connectTls`, `fetchAll`/`fetchEach` with `caCerts`,
 * and `fetch` through `Deno.createHttpClient({ caCerts })`, a new one each run
 * (closed after it), so that every client's run pays for its own handshakes.
 * Only `raw`, `raw-keep`, `fetch-all`, `fetch-each` and `fetch` take it.
 *
 * `--mod` takes `fetchAll` and `fetchEach` from another checkout's `mod.ts`
 * (the bench's `--baseline`) instead of this one's: the child imports one or the
 * other, never both (see `engine` below).
 *
 * `--upload 64x1024` makes every request a POST of a body streamed in 64
 * chunks of 1,024 bytes (chunked on the wire; the raw loop writes it prebuilt
 * with its head). Only `raw`, `fetch-all` and `fetch` take it.
 *
 * `--latency` records each request's latency in a `Float64Array` allocated
 * once, before the first run (`RunOptions.latency`: the raw loop and `fetch`
 * read `performance.now()` once per request, `fetchAll` and `fetchEach` copy
 * `result.timings.total`), and sorts it in place after the run's end marker,
 * outside the run's CPU time and GC figures. Only `raw`, `raw-keep`,
 * `fetch-all`, `fetch-each` and `fetch` take it.
 *
 * @module
 */
import { cpuUsage } from "node:process";
import {
  connectPlain,
  connectTls,
  type Engine,
  type ExtraOptions,
  runFetchAll,
  runFetchAllSink,
  runFetchEach,
  runFetchPool,
  type RunOptions,
  runRawClose,
  runRawKeepAlive,
  runRawRead,
  runRawSink,
  type RunResult,
} from "./_http_clients.ts";
import { readLines } from "./_lines.ts";

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

function num(name: string, fallback?: number): number {
  const raw = flag(name);
  if (raw === undefined) {
    if (fallback === undefined) throw new TypeError(`Missing --${name}`);
    return fallback;
  }
  const v = Number(raw);
  if (!Number.isFinite(v)) throw new RangeError(`Invalid --${name} "${raw}"`);
  return v;
}

const CLIENT = flag("client") ?? "";
const PORTS = (flag("ports") ?? "").split(",").filter((p) => p !== "").map(
  Number,
);
const PATH = flag("path") ?? "/1k";
const COUNT = num("count");
const UPLOAD = flag("upload");
const OPTIONS: RunOptions = {
  concurrency: num("concurrency", 64),
  expectedLength: num("expect-length"),
};
if (UPLOAD !== undefined) {
  const m = /^(\d+)x(\d+)$/.exec(UPLOAD);
  if (m === null || Number(m[1]) < 1 || Number(m[2]) < 1) {
    throw new RangeError(`Invalid --upload "${UPLOAD}": expected CHUNKSxSIZE`);
  }
  OPTIONS.upload = { chunks: Number(m[1]), size: Number(m[2]) };
}
const MAX_RUN_MS = num("max-run-ms", 300_000);
const IDLE_MS = num("idle-ms", 200);
const PROXY = flag("proxy");
const SINK_FILE = flag("sink-file");
const PER_ORIGIN = flag("per-origin");
const MOD = flag("mod");
const FULL_GC = flag("gc-between") === "full";
const TLS_CA = flag("tls-ca");
/** Each request's latency, ms, of the last run (`--latency`), else undefined. */
const LATENCY = Deno.args.includes("--latency")
  ? new Float64Array(COUNT)
  : undefined;
if (LATENCY !== undefined) OPTIONS.latency = LATENCY;

const gc = (globalThis as { gc?: (options?: { type: string }) => void }).gc;
if (gc === undefined) {
  throw new Error("_http_child: run with --v8-flags=--expose-gc");
}
if (PORTS.length === 0) throw new TypeError("Missing --ports");
const CLIENTS = [
  "raw",
  "raw-keep",
  "raw-read",
  "raw-close",
  "raw-close-keep",
  "raw-sink",
  "fetch-all",
  "fetch-all-sink",
  "fetch-each",
  "fetch",
];
if (!CLIENTS.includes(CLIENT)) {
  throw new TypeError(
    `Unknown --client "${CLIENT}": expected ${CLIENTS.join(", ")}`,
  );
}

const extra: ExtraOptions = {};
if (flag("keep-alive") === "false") extra.keepAlive = false;
if (PER_ORIGIN !== undefined) {
  extra.perOrigin = { concurrency: Number(PER_ORIGIN) };
}
if (PROXY !== undefined) extra.proxy = PROXY;
/** The CA of the https origin (`--tls-ca`), one array reused by every run. */
const caCerts = TLS_CA !== undefined
  ? [await Deno.readTextFile(TLS_CA)]
  : undefined;
if (UPLOAD !== undefined && !["raw", "fetch-all", "fetch"].includes(CLIENT)) {
  throw new TypeError(`--client ${CLIENT} does not take --upload`);
}
if (
  LATENCY !== undefined &&
  !["raw", "raw-keep", "fetch-all", "fetch-each", "fetch"].includes(CLIENT)
) {
  throw new TypeError(`--client ${CLIENT} does not take --latency`);
}
if (caCerts !== undefined) {
  if (
    !["raw", "raw-keep", "fetch-all", "fetch-each", "fetch"].includes(CLIENT)
  ) {
    throw new TypeError(`--client ${CLIENT} does not take --tls-ca`);
  }
  if (PROXY !== undefined) throw new TypeError("--tls-ca with --proxy");
  extra.caCerts = caCerts;
}

/**
 * `fetchAll` and `fetchEach`: of this checkout's `mod.ts`, or of another
 * checkout's (`--mod path/to/mod.ts`). Every child, whatever its client, loads
 * exactly one `mod.ts`, and the same way: a child that statically imported this
 * one's and also loaded the baseline's ran its cold crawl (the first 20,000
 * requests of the process) ~4% faster than a child of this one's alone, and an
 * A/A of the `cold` row read 0.93x (bench/README.md, "Comparing with another
 * version").
 */
const engine = await import(
  MOD === undefined
    ? new URL("../mod.ts", import.meta.url).href
    : new URL(MOD, `file://${Deno.cwd()}/`).href
) as Engine;

// The URLs, round-robin over the ports: built once, outside every timed run.
// The https origin's certificate is for localhost (and 127.0.0.1).
const schemeHost = caCerts !== undefined
  ? "https://localhost"
  : "http://127.0.0.1";
const urls = Array.from(
  { length: COUNT },
  (_, i) => `${schemeHost}:${PORTS[i % PORTS.length]}${PATH}`,
);
const paths = Array.from({ length: COUNT }, () => PATH);
const port = PORTS[0]!;
const rawTarget = caCerts !== undefined
  ? connectTls("localhost", port, caCerts)
  : connectPlain(port);
// No pooled conns through the proxy: tinyproxy closes each one after its
// response, and a pooled one then fails the next request ("fetch failed").
const httpClient = PROXY !== undefined && CLIENT === "fetch"
  ? Deno.createHttpClient({ proxy: { url: PROXY }, poolMaxIdlePerHost: 0 })
  : undefined;

async function withFile(
  run: (file: Deno.FsFile) => Promise<RunResult>,
): Promise<RunResult> {
  if (SINK_FILE === undefined) throw new TypeError("Missing --sink-file");
  const file = await Deno.open(SINK_FILE, {
    write: true,
    create: true,
    truncate: true,
  });
  try {
    return await run(file);
  } finally {
    file.close();
    // Gone before the next run: dirty pages never pile up into disk writeback.
    await Deno.remove(SINK_FILE);
  }
}

/**
 * The `fetch` pool over https through a client of its own, as fetchAll's crawl
 * and the raw loop open their conns afresh each run: HTTP/1.1 only (the origin
 * offers nothing else; `http2: false` makes sure).
 */
async function withTlsClient(caCerts: string[]): Promise<RunResult> {
  const client = Deno.createHttpClient({ caCerts, http2: false });
  try {
    return await runFetchPool(urls, OPTIONS, client);
  } finally {
    client.close();
  }
}

function workload(): Promise<RunResult> {
  switch (CLIENT) {
    case "raw":
      return runRawKeepAlive(rawTarget, paths, OPTIONS);
    case "raw-keep":
      return runRawKeepAlive(rawTarget, paths, OPTIONS, true);
    case "raw-read":
      return runRawRead(port, PATH, OPTIONS);
    case "raw-close":
      return runRawClose(port, paths, OPTIONS);
    case "raw-close-keep":
      return runRawClose(port, paths, OPTIONS, true);
    case "raw-sink":
      return withFile((file) => runRawSink(port, PATH, OPTIONS, file));
    case "fetch-all":
      return runFetchAll(urls, OPTIONS, extra, engine);
    case "fetch-all-sink":
      return withFile((file) =>
        runFetchAllSink(urls[0]!, OPTIONS, file, engine)
      );
    case "fetch-each":
      return runFetchEach(urls, OPTIONS, extra, engine);
    case "fetch":
      return caCerts !== undefined
        ? withTlsClient(caCerts)
        : runFetchPool(urls, OPTIONS, httpClient);
    default:
      throw new TypeError(`Unknown --client "${CLIENT}"`);
  }
}

function say(message: object): void {
  console.error(JSON.stringify(message));
}

function cpuNow(): number {
  const u = cpuUsage();
  return u.user + u.system;
}

/**
 * This process's peak RSS since it started or since the last
 * {@linkcode resetPeakRss} (Linux `VmHWM`), or `undefined` elsewhere. Not
 * `ru_maxrss`: after fork + exec that starts at the parent's peak.
 */
function peakRss(): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(
      Deno.readTextFileSync("/proc/self/status"),
    );
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Resets `VmHWM` to the current RSS (Linux >= 4.0). */
function resetPeakRss(): void {
  try {
    Deno.writeTextFileSync("/proc/self/clear_refs", "5");
  } catch {
    // Not Linux: peakRss() is undefined there anyway.
  }
}

/**
 * The last run's latency percentiles, ms: one object of double fields, updated
 * in place. An object made per run, still referenced when the next run starts,
 * was promoted in it: ~250 B a run, 0.05 B/req of the `c1` row's figure.
 */
const PERCENTILES = { p50: 0.5, p99: 0.5, p999: 0.5, max: 0.5 };

/**
 * Sorts `latency` in place and puts its percentiles (nearest rank) in
 * {@linkcode PERCENTILES}; false when a request has no latency (NaN, sorted
 * last: a run with failures).
 */
function percentiles(latency: Float64Array): boolean {
  latency.sort();
  const n = latency.length;
  const at = (p: number) => latency[Math.max(0, Math.ceil(p * n) - 1)]!;
  PERCENTILES.p50 = at(0.5);
  PERCENTILES.p99 = at(0.99);
  PERCENTILES.p999 = at(0.999);
  PERCENTILES.max = latency[n - 1]!;
  return !Number.isNaN(PERCENTILES.max);
}

async function runOnce(): Promise<object> {
  const guard = setTimeout(() => {
    console.error(`_http_child ${CLIENT}: run longer than ${MAX_RUN_MS} ms`);
    Deno.exit(3);
  }, MAX_RUN_MS);
  try {
    LATENCY?.fill(NaN);
    if (FULL_GC) gc!();
    gc!({ type: "minor" }); // the start marker: the run's collections follow it
    resetPeakRss();
    const cpu0 = cpuNow();
    const t0 = performance.now();
    // A client that throws (a raw loop on a refused conn) fails the run, not the child.
    const r = await workload().catch((e): RunResult => ({
      ok: 0,
      bytes: 0,
      firstError: String(e),
    }));
    const t1 = performance.now();
    let cpu1 = cpuNow();
    const peak = peakRss();
    // The end marker: its `allocated` counts the run's tail.
    if (FULL_GC) gc!();
    else {
      gc!({ type: "minor" });
      // Its scavenge copies what the run still holds (fetchAll's results), work
      // the run's next natural scavenge would do: the run's CPU.
      cpu1 = cpuNow();
    }
    const latency = LATENCY !== undefined && percentiles(LATENCY);
    return {
      ok: r.ok,
      bytes: r.bytes,
      seconds: (t1 - t0) / 1000,
      cpuUs: cpu1 - cpu0,
      ...(peak !== undefined ? { peakRss: peak } : {}),
      ...(latency ? { latency: PERCENTILES } : {}),
      ...(r.firstError !== undefined ? { firstError: r.firstError } : {}),
    };
  } finally {
    clearTimeout(guard);
  }
}

// Idle CPU: what this process burns doing nothing, to subtract per second.
await new Promise((resolve) => setTimeout(resolve, 20));
const idle0 = cpuNow();
const i0 = performance.now();
await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
say({
  ready: true,
  idleCpuUs: cpuNow() - idle0,
  idleMs: performance.now() - i0,
  ...(peakRss() !== undefined ? { readyRss: peakRss() } : {}),
});

for await (const line of readLines(Deno.stdin.readable)) {
  if (line === "run") say(await runOnce());
  else if (line !== "") throw new TypeError(`Unknown command "${line}"`);
}
// One more start marker: the last run's closing one, whose promotion (what
// survived its end marker) is that run's (`_gc_trace.ts`).
gc({ type: "minor" });
httpClient?.close();
