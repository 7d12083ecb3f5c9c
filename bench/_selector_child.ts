/**
 * One measurement of the selector scale rows, in a fresh process so that every
 * configuration starts from the same state (idle conns keep a read pending that
 * only closing them ends, so a process cannot go back from 10,000 to 10).
 *
 * Modes (one JSON line on stdout, progress and errors on stderr):
 *
 * - `round --idle N --hold-port P --echo-port E --warmup W`: opens N idle conns
 *   to the hold port (peers in `_idle_peers.ts`), registers them for `EVENT_READ`
 *   with one selector together with one busy conn to the echo port, warms up, then
 *   serves timing requests from the parent (see `serve`): each times K rounds of
 *   send() + select() until `EVENT_READ` + recv() of the echo.
 * - `raw-round ... [--pending 0]`: the control, the same round on plain
 *   `Deno.Conn`s with no selector, each idle conn with a `read()` pending.
 * - `heap --idle N --hold-port P --calls C`: registers N idle conns, then calls
 *   `select(0)` C times and prints the heap growth (after `gc()`, so run with
 *   `--v8-flags=--expose-gc`): `{ idle, calls, heapBefore, heapAfter, rssBefore,
 *   rssAfter, usPerSelect, gc }`.
 *
 * @module
 */
import { cpuUsage } from "node:process";
import { readLines } from "./_lines.ts";
import { DefaultSelector, EVENT_READ, PollableConn } from "../mod.ts";

const args = Deno.args;
function arg(name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v)) throw new RangeError(`Invalid --${name}`);
  return v;
}

const mode = args[0];
const IDLE = arg("idle", 10);
const HOLD_PORT = arg("hold-port", 0);
const ECHO_PORT = arg("echo-port", 0);
/** A hard stop for the whole child, whatever happens. */
const DEADLINE_MS = arg("deadline-ms", 120_000);
const deadline = setTimeout(() => {
  console.error(`_selector_child: deadline of ${DEADLINE_MS} ms reached`);
  Deno.exit(3);
}, DEADLINE_MS);
Deno.unrefTimer(deadline);

const gc = (globalThis as { gc?: () => void }).gc;
function collect(): void {
  if (gc) { for (let i = 0; i < 3; i++) gc(); }
}

/** Opens `n` loopback conns to the hold port, `batch` connects in flight at a time. */
async function openIdle(n: number, batch = 256): Promise<Deno.Conn[]> {
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < n; i += batch) {
    const k = Math.min(batch, n - i);
    const opened = await Promise.all(
      Array.from(
        { length: k },
        () => Deno.connect({ hostname: "127.0.0.1", port: HOLD_PORT }),
      ),
    );
    conns.push(...opened);
  }
  return conns;
}

/**
 * Reports `{ ready: true, setupMs }`, then runs one block per stdin line
 * `block K` (K rounds, answering `{ us, cpuUs }`: wall-clock and CPU µs per round
 * of this process) until `quit` or EOF. CPU time barely moves when other
 * processes compete for the cores, so it tells cost from contention.
 * The parent alternates blocks between children, so the machine's load (others
 * share its 2 cores) hits every configuration alike.
 */
async function serve(round: () => Promise<void>, setupMs: number) {
  console.log(JSON.stringify({ ready: true, idle: IDLE, setupMs }));
  for await (const line of readLines(Deno.stdin.readable)) {
    const [cmd, count] = line.trim().split(/\s+/);
    if (cmd === "quit") break;
    if (cmd !== "block") throw new TypeError(`Unknown command "${line}"`);
    const k = Number(count);
    const cpu0 = cpuUsage();
    const start = performance.now();
    for (let i = 0; i < k; i++) await round();
    const us = (performance.now() - start) * 1000 / k;
    const cpu = cpuUsage(cpu0);
    console.log(JSON.stringify({ us, cpuUs: (cpu.user + cpu.system) / k }));
  }
}

async function roundMode(): Promise<void> {
  const warmup = arg("warmup", 1000);
  const t0 = performance.now();
  const sel = new DefaultSelector();
  const idle = (await openIdle(IDLE)).map((c) => PollableConn.from(c));
  for (const p of idle) sel.register(p, EVENT_READ);
  const raw = await Deno.connect({ hostname: "127.0.0.1", port: ECHO_PORT });
  raw.setNoDelay(true);
  const busy = PollableConn.from(raw);
  const busyKey = sel.register(busy, EVENT_READ);
  // Let every idle conn's first read get in flight before timing.
  for (let i = 0; i < 10; i++) await sel.select(0);
  const setupMs = performance.now() - t0;

  const msg = new Uint8Array(32).fill(120);
  /** One round: send, select until the busy conn is readable, recv the echo. */
  async function round(): Promise<void> {
    busy.send(msg);
    let got = 0;
    for (let spins = 0; got < msg.length; spins++) {
      if (spins > 1000) throw new Error("Echo did not come back");
      const ready = await sel.select(5_000);
      for (const [key, mask] of ready) {
        if (key !== busyKey) {
          throw new Error(`Idle conn fd ${key.fd} reported ready (${mask})`);
        }
        const data = busy.recv();
        if (data === null) throw new Error("Echo peer closed");
        got += data.length;
      }
    }
  }

  for (let i = 0; i < warmup; i++) await round();
  await serve(round, setupMs);
  sel.close();
  busy.close();
  for (const p of idle) p.close();
}

/**
 * The control for `round`: the same echo round with plain `Deno.Conn` calls and no
 * selector, while each idle conn has a `read()` pending, as a registered
 * `PollableConn` has. With `--pending 0` the idle conns are open but not read.
 */
async function rawRoundMode(): Promise<void> {
  const warmup = arg("warmup", 1000);
  const pending = arg("pending", 1) !== 0;
  const t0 = performance.now();
  const idle = await openIdle(IDLE);
  if (pending) {
    for (const c of idle) {
      c.read(new Uint8Array(16 * 1024)).catch(() => {});
    }
  }
  const busy = await Deno.connect({ hostname: "127.0.0.1", port: ECHO_PORT });
  busy.setNoDelay(true);
  const setupMs = performance.now() - t0;
  const msg = new Uint8Array(32).fill(120);
  const buf = new Uint8Array(64 * 1024);
  async function round(): Promise<void> {
    await busy.write(msg);
    let got = 0;
    while (got < msg.length) {
      const n = await busy.read(buf);
      if (n === null) throw new Error("Echo peer closed");
      got += n;
    }
  }
  for (let i = 0; i < warmup; i++) await round();
  await serve(round, setupMs);
  busy.close();
  for (const c of idle) c.close();
}

async function heapMode(): Promise<void> {
  const calls = arg("calls", 1_000_000);
  const sel = new DefaultSelector();
  const idle = (await openIdle(IDLE)).map((c) => PollableConn.from(c));
  for (const p of idle) sel.register(p, EVENT_READ);
  // Warm up (JIT, first reads in flight), then take the baseline.
  for (let i = 0; i < 10_000; i++) {
    if ((await sel.select(0)).length !== 0) {
      throw new Error("An idle conn was reported ready");
    }
  }
  collect();
  const heapBefore = Deno.memoryUsage().heapUsed;
  const rssBefore = Deno.memoryUsage().rss;
  const start = performance.now();
  let reported = 0;
  for (let i = 0; i < calls; i++) reported += (await sel.select(0)).length;
  const elapsed = performance.now() - start;
  collect();
  const heapAfter = Deno.memoryUsage().heapUsed;
  const rssAfter = Deno.memoryUsage().rss;
  if (reported !== 0) throw new Error(`${reported} idle keys reported ready`);
  console.log(JSON.stringify({
    idle: IDLE,
    calls,
    heapBefore,
    heapAfter,
    rssBefore,
    rssAfter,
    usPerSelect: elapsed * 1000 / calls,
    gc: gc !== undefined,
  }));
  sel.close();
  for (const p of idle) p.close();
}

if (mode === "round") await roundMode();
else if (mode === "raw-round") await rawRoundMode();
else if (mode === "heap") await heapMode();
else throw new TypeError(`Unknown mode "${mode}": expected round or heap`);
Deno.exit(0);
