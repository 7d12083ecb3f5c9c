/**
 * Shared helpers of the selector tests: loopback listener/peer pairs, Unix-socket
 * temp paths, a seeded PRNG and bounded select loops. Every loop here is bounded in
 * rounds and in time, and throws rather than hanging.
 *
 * @module
 */
import {
  BlockingIOError,
  DefaultSelector,
  EVENT_WRITE,
  PollableConn,
  PollableListener,
  type Selector,
  type SelectorKey,
} from "../mod.ts";

/** A batch as `select()` resolves it. */
export type Batch<T = unknown> = Array<[SelectorKey<T>, number]>;

/** Options of the bounded loops. */
export interface BoundOptions {
  /** The most `select()` calls. @default {1000} */
  rounds?: number;
  /** The most milliseconds in all. @default {5000} */
  timeout?: number;
}

/**
 * Calls `sel.select()` until `pred` holds for a batch, and returns that batch.
 * Each call waits at most for the time left. Throws after `rounds` calls or
 * `timeout` ms without a match.
 */
export async function selectUntil<T>(
  sel: Selector<T>,
  pred: (batch: Batch<T>) => boolean,
  { rounds = 1000, timeout = 5000 }: BoundOptions = {},
): Promise<Batch<T>> {
  const deadline = performance.now() + timeout;
  for (let round = 0; round < rounds; round++) {
    const left = deadline - performance.now();
    if (left <= 0) break;
    const batch = await sel.select(left);
    if (pred(batch)) return batch;
  }
  throw new Error(
    `selectUntil: no matching batch within ${rounds} rounds or ${timeout} ms`,
  );
}

/** Sends `size`-byte chunks on `conn` (registered on `sel` for writing) until a send fails; that error. */
export async function sendUntilFails<T>(
  sel: Selector<T>,
  conn: PollableConn,
  size: number,
): Promise<Error> {
  let sendError: unknown = null;
  await selectUntil(sel, () => {
    try {
      for (let i = 0; i < 16; i++) conn.send(new Uint8Array(size));
      return false;
    } catch (e) {
      if (e instanceof BlockingIOError) return false;
      sendError = e;
      return true;
    }
  }, { rounds: 10_000 });
  if (!(sendError instanceof Error)) {
    throw new Error(`sendUntilFails: ended with ${String(sendError)}`);
  }
  return sendError;
}

/** The mask reported for `fileobj` in `batch`, or 0. */
export function maskOf<T>(batch: Batch<T>, fileobj: unknown): number {
  for (const [key, mask] of batch) if (key.fileobj === fileobj) return mask;
  return 0;
}

/** A predicate for {@linkcode selectUntil}: `fileobj` reported with every bit of `mask`. */
export function readyFor(
  fileobj: unknown,
  mask: number,
): (batch: Batch<unknown>) => boolean {
  return (batch) => (maskOf(batch, fileobj) & mask) === mask;
}

/** Waits (bounded) until `conn` reports `mask` on a private selector. */
export async function readyOn(
  conn: PollableConn,
  mask: number,
): Promise<void> {
  using sel = new DefaultSelector();
  sel.register(conn, mask);
  await selectUntil(sel, readyFor(conn, mask));
  sel.unregister(conn);
}

/** Polls `cond` once per macrotask-ish step (`delay`) until it holds, bounded. */
export async function waitFor(
  cond: () => boolean,
  { rounds = 1000, timeout = 5000 }: BoundOptions = {},
): Promise<void> {
  const deadline = performance.now() + timeout;
  for (let round = 0; round < rounds && performance.now() < deadline; round++) {
    if (cond()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  if (!cond()) {
    throw new Error(`waitFor: condition false after ${rounds} rounds`);
  }
}

/**
 * Resolves as `p` does, or rejects with an Error naming `what` if `p` has not
 * settled within `ms`; the timer is always cleared. For a wait that only an event
 * ends (a `select()` with no timeout, an accept, a read): it stays the wait under
 * test, and a regression fails the test instead of hanging it.
 */
export async function within<T>(
  p: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${what}: not settled within ${ms} ms`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A TCP listener on an ephemeral loopback port. */
/** A pollable TCP listener on an ephemeral loopback port. */
export function listen(): PollableListener {
  return PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
}

/** The port a TCP pollable listener is bound to. */
export function portOf(listener: PollableListener): number {
  return (listener.addr as Deno.NetAddr).port;
}

/**
 * Whether this machine has an IPv6 loopback: containers and CI runners with
 * IPv6 turned off have no `::1`, and `Deno.listen` there fails with
 * `AddrNotAvailable`.
 */
export const hasIpv6Loopback: boolean = (() => {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
})();

/**
 * `Deno.test` options for a test that needs {@linkcode hasIpv6Loopback}:
 * ignored, with its name marked, on a machine without one.
 *
 * @example
 * ```ts ignore
 * Deno.test({ ...needsIpv6("fetchAll() reaches [::1]"), async fn() {} });
 * ```
 */
export function needsIpv6(name: string): { name: string; ignore: boolean } {
  return hasIpv6Loopback
    ? { name, ignore: false }
    : { name: `${name} [needs IPv6 loopback ::1]`, ignore: true };
}

export function listenTcp(hostname = "127.0.0.1"): Deno.TcpListener {
  return Deno.listen({ hostname, port: 0 });
}

/** A connected pair: our `PollableConn` and the plain Deno peer, plus the listener. */
export interface Pair extends Disposable {
  listener: Deno.Listener;
  conn: PollableConn;
  peer: Deno.Conn;
}

/**
 * A `PollableConn.connect` to a fresh loopback listener and the peer it accepted.
 * Disposing closes all three (the conn first).
 */
export async function tcpPair(hostname = "127.0.0.1"): Promise<Pair> {
  const listener = listenTcp(hostname);
  const conn = PollableConn.connect({ hostname, port: listener.addr.port });
  return pairOf(listener, conn, await acceptPeer(listener, conn));
}

/** As {@linkcode tcpPair}, over a Unix socket in a temp dir. */
export async function unixPair(dir: TempDir): Promise<Pair> {
  const path = dir.path("pair.sock");
  const listener = Deno.listen({ transport: "unix", path });
  const conn = PollableConn.connect({ transport: "unix", path });
  return pairOf(listener, conn, await acceptPeer(listener, conn));
}

/** The peer of `conn`'s connect, bounded: on a timeout both are closed. */
async function acceptPeer(
  listener: Deno.Listener,
  conn: PollableConn,
): Promise<Deno.Conn> {
  try {
    return await within(
      listener.accept(),
      5_000,
      "the accept of PollableConn.connect()",
    );
  } catch (e) {
    conn.close();
    closeQuietly(listener);
    throw e;
  }
}

function pairOf(
  listener: Deno.Listener,
  conn: PollableConn,
  peer: Deno.Conn,
): Pair {
  return {
    listener,
    conn,
    peer,
    [Symbol.dispose]() {
      conn.close();
      closeQuietly(peer);
      closeQuietly(listener);
    },
  };
}

/** Closes a Deno resource that may be closed already. */
export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // already closed
  }
}

/** A temp dir for Unix sockets, removed on dispose. */
export interface TempDir extends Disposable {
  /** The dir. */
  readonly dir: string;
  /** A path inside it. */
  path(name: string): string;
}

/** Makes a temp dir with a short path (Unix socket paths are limited to ~100 bytes). */
export function tempDir(): TempDir {
  const dir = Deno.makeTempDirSync({ prefix: "sel-" });
  return {
    dir,
    path: (name) => `${dir}/${name}`,
    [Symbol.dispose]() {
      Deno.removeSync(dir, { recursive: true });
    },
  };
}

/** mulberry32: a tiny seeded PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seeded helpers on top of {@linkcode mulberry32}. */
export class Rng {
  readonly next: () => number;
  constructor(readonly seed: number) {
    this.next = mulberry32(seed);
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  /** An integer in [1, max], log-uniform: small and large sizes alike. */
  size(max: number): number {
    return Math.min(
      max,
      Math.max(1, Math.floor(Math.exp(this.next() * Math.log(max + 1)))),
    );
  }
  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** `n` pseudo-random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = (this.next() * 4294967296) >>> 0;
      out[i] = v & 0xff;
      if (i + 1 < n) out[i + 1] = (v >>> 8) & 0xff;
      if (i + 2 < n) out[i + 2] = (v >>> 16) & 0xff;
      if (i + 3 < n) out[i + 3] = v >>> 24;
    }
    return out;
  }
}

/** Reads `conn` to end of stream (bounded by `limit` bytes) and returns the bytes. */
export async function readAll(
  conn: Deno.Conn,
  limit = 64 * 1024 * 1024,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(64 * 1024);
  while (total <= limit) {
    const n = await conn.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    total += n;
  }
  return concat(chunks);
}

/** Reads exactly `n` bytes from `conn` (throws on early end of stream). */
export async function readExactly(
  conn: Deno.Conn,
  n: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await conn.read(out.subarray(got));
    if (r === null) {
      throw new Error(`readExactly: EOF after ${got} of ${n} bytes`);
    }
    got += r;
  }
  return out;
}

/** Concatenates byte arrays. */
export function concat(chunks: Uint8Array[]): Uint8Array<ArrayBuffer> {
  let total = 0;
  for (const c of chunks) total += c.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/** `bytes` cut into pieces of `size` bytes (the last one shorter), as views. */
export function splitEvery(bytes: Uint8Array, size: number): Uint8Array[] {
  const chunks = [];
  for (let i = 0; i < bytes.length; i += size) {
    chunks.push(bytes.subarray(i, i + size));
  }
  return chunks;
}

/** `bytes` cut at each offset of `cuts` (in any order), as views. */
export function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  let from = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    pieces.push(bytes.subarray(from, cut));
    from = cut;
  }
  pieces.push(bytes.subarray(from));
  return pieces;
}

/** Latin1 string to bytes (one char, one byte), as the corpora are written. */
export function latin1Bytes(s: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Chunks as latin1 text, one character per byte. */
export function latin1Text(chunks: Uint8Array[]): string {
  let s = "";
  for (const c of chunks) for (const b of c) s += String.fromCharCode(b);
  return s;
}

/** Where `needle` first starts in `haystack`, or -1. */
export function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}

/** Whether two byte arrays are equal (fast path for large arrays). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Sends into `conn` until its write buffer stays full: the peer is not reading, so
 * the kernel buffers fill too. Uses a private registration on `sel` for
 * `EVENT_WRITE` and unregisters it before returning. Returns the bytes accepted.
 */
export async function fillUntilBlocked(
  sel: Selector,
  conn: PollableConn,
  { rounds = 10_000, timeout = 10_000 }: BoundOptions = {},
): Promise<number> {
  const chunk = new Uint8Array(64 * 1024).fill(0x61);
  let total = 0;
  sel.register(conn, EVENT_WRITE);
  try {
    const deadline = performance.now() + timeout;
    for (let round = 0; round < rounds; round++) {
      if (performance.now() > deadline) break;
      try {
        while (true) total += conn.send(chunk);
      } catch (e) {
        if (!(e instanceof BlockingIOError)) throw e;
      }
      // Still blocked after a generous wait: kernel buffers are full.
      const batch = await sel.select(250);
      if (batch.length === 0) return total;
    }
    throw new Error(`fillUntilBlocked: still writable after ${total} bytes`);
  } finally {
    sel.unregister(conn);
  }
}

/**
 * The seeds a property test runs with: the `SEED` env var alone when it is set
 * (to replay a failure), otherwise `defaults`.
 */
export function seeds(defaults: number[]): number[] {
  const env = Deno.env.get("SEED");
  return env !== undefined && env !== "" ? [Number(env) >>> 0] : defaults;
}

/** Prints the seed of a property test, so a failure can be replayed. */
export function logSeed(name: string, seed: number): void {
  console.log(`${name}: seed ${seed} (replay with SEED=${seed})`);
}

/**
 * How many sockets this process has open now: the fds in `/proc/<pid>/fd` that
 * link to a socket, as `ls -l` lists them (Deno lets only `--allow-all` read
 * /proc/self; `--allow-run` does here). Sockets only, because Deno opens and
 * closes pipes and event fds of its own at any time. About 1 ms a call.
 */
export function openSockets(): number {
  // `ls -l` fails when an fd closes between listing and reading its link: then
  // the count was taken mid-change, so take it again.
  for (let attempt = 0; attempt < 10; attempt++) {
    const { stdout, success } = new Deno.Command("ls", {
      args: ["-l", `/proc/${Deno.pid}/fd`],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    if (success) {
      return new TextDecoder().decode(stdout).split("\n")
        .filter((line) => line.includes("socket:[")).length;
    }
  }
  throw new Error("openSockets: cannot list /proc/<pid>/fd");
}

/**
 * {@linkcode openSockets} once it has settled (the same count 10 ms apart), so a
 * socket still closing from earlier work does not shift a baseline. Bounded.
 */
export async function settledSockets(): Promise<number> {
  let last = openSockets();
  for (let round = 0; round < 100; round++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    const n = openSockets();
    if (n === last) return n;
    last = n;
  }
  throw new Error("settledSockets: the count of open sockets keeps changing");
}

/** Polls {@linkcode openSockets} until it is at most `target`; returns the last count. */
export async function socketsWithin(
  target: number,
  ms: number,
): Promise<number> {
  const deadline = performance.now() + ms;
  let n = openSockets();
  while (n > target && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 2));
    n = openSockets();
  }
  return n;
}

/**
 * A loopback TCP listener that never accepts and whose backlog is full, so a new
 * connect to it stays pending (the kernel drops its SYNs): a blackhole. Disposing
 * closes the listener and the connections that filled the backlog.
 */
export interface Blackhole extends Disposable {
  readonly port: number;
  /** How many connections it took to fill the backlog. */
  readonly filled: number;
}

/** Builds a {@linkcode Blackhole}: connects until a connect stays pending for 100 ms. */
export async function blackhole(maxConns = 5_000): Promise<Blackhole> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const dispose = () => {
    for (const conn of conns) closeQuietly(conn);
    closeQuietly(listener);
  };
  try {
    while (conns.length < maxConns) {
      const signal = AbortSignal.timeout(100);
      try {
        conns.push(
          await Deno.connect({
            hostname: "127.0.0.1",
            port: listener.addr.port,
            signal,
          }),
        );
      } catch (e) {
        if (signal.aborted) {
          return {
            port: listener.addr.port,
            filled: conns.length,
            [Symbol.dispose]: dispose,
          };
        }
        throw e;
      }
    }
    throw new Error(`blackhole: backlog not full after ${maxConns} connects`);
  } catch (e) {
    dispose();
    throw e;
  }
}

/**
 * The kernel's timer on `conn`'s established TCP socket, from /proc/net/tcp
 * (or /proc/net/tcp6), found by its local and remote ports (a local port
 * alone may be another socket's too, to another peer): `"keepalive"` while
 * `SO_KEEPALIVE` is on and the conn is idle, `"none"` without a timer,
 * `"other"` for a retransmit or probe timer, `null` when no such socket exists.
 * Read with `cat`, as Deno reads /proc only with `--allow-all`.
 */
export function tcpTimer(
  conn: { localAddr: Deno.Addr | null; remoteAddr: Deno.Addr | null },
): "keepalive" | "none" | "other" | null {
  const hex = (addr: Deno.Addr | null) =>
    `:${
      (addr as Deno.NetAddr).port.toString(16).toUpperCase().padStart(4, "0")
    }`;
  const local = hex(conn.localAddr);
  const remote = hex(conn.remoteAddr);
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const { stdout } = new Deno.Command("cat", {
      args: [file],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    for (const line of new TextDecoder().decode(stdout).split("\n")) {
      // sl local rem st tx:rx tr:when ...; st 01 is ESTABLISHED.
      const [, from, to, state, , timer] = line.trim().split(/\s+/);
      if (from?.endsWith(local) && to?.endsWith(remote) && state === "01") {
        const active = timer?.split(":")[0];
        return active === "02"
          ? "keepalive"
          : active === "00"
          ? "none"
          : "other";
      }
    }
  }
  return null;
}

/**
 * Deterministic text-like bytes (words, markup, some binary) that gzip 4:1 to
 * 7:1: the content-decoding tests' and bench's input.
 */
export function textLike(length: number, seed = 1): Uint8Array {
  const words = ["alpha", "beta", "gamma", "selector", "deno", "<div>", "\n"];
  const out = new Uint8Array(length);
  let x = seed >>> 0;
  for (let p = 0; p < length;) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    if (x >>> 28 === 0) {
      out[p++] = x & 0xff;
      continue;
    }
    const word = words[(x >>> 8) % words.length]!;
    for (let i = 0; i < word.length && p < length; i++) {
      out[p++] = word.charCodeAt(i);
    }
    if (p < length) out[p++] = 0x20;
  }
  return out;
}

/** What a child Deno printed, and whether it exited with 0. */
export interface ChildOutput {
  stdout: string;
  stderr: string;
  success: boolean;
}

/**
 * Runs `script` in a child `deno run` (from stdin) with `flags` (permissions,
 * `--v8-flags`), bounded by `timeoutMs`: for what needs a process of its own
 * (`--expose-gc`, a fresh TLS root store).
 */
export async function runScript(
  script: string,
  flags: string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ChildOutput> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, "-"],
    ...(options.env ? { env: options.env } : {}),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(script));
  await writer.close();
  const output = child.output();
  const out = await within(output, options.timeoutMs ?? 60_000, "child")
    .catch(async (e) => {
      child.kill();
      await output.catch(() => {});
      throw e;
    });
  const decoder = new TextDecoder();
  return {
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
    success: out.success,
  };
}

/** The durations of the timers (`setTimeout`) armed while `run` runs. */
export async function timersArmed(
  run: () => Promise<unknown>,
): Promise<number[]> {
  const armed: number[] = [];
  const original = globalThis.setTimeout;
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    armed.push(ms ?? 0);
    return original(fn, ms);
  }) as typeof setTimeout;
  try {
    await run();
  } finally {
    globalThis.setTimeout = original;
  }
  return armed;
}
