/**
 * Shared pieces of the bench: statistics, child processes, progress output.
 *
 * @module
 */
import { LineReader } from "./_lines.ts";

/** The median of `xs` (NaN when empty). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** `xs` rotated left by `n`: how each round changes the order of the clients. */
export function rotate<T>(xs: readonly T[], n: number): T[] {
  const k = ((n % xs.length) + xs.length) % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

/**
 * V8's `gc()`, present when Deno runs with `--v8-flags=--expose-gc` (as
 * `deno task bench` does), else `undefined`.
 */
const v8gc: (() => void) | undefined = (globalThis as { gc?: () => void }).gc;

/** Whether {@linkcode collectGarbage} can force a full collection in this process. */
export const gcAvailable: boolean = typeof v8gc === "function";

/**
 * A full garbage collection, when `gc()` is exposed (else nothing): called between
 * client runs, outside the timed region, so no client pays for the garbage the
 * previous one left.
 */
export function collectGarbage(): void {
  v8gc?.();
}

/** Progress for the person running the bench; stderr, so stdout stays the table. */
export function progress(message: string): void {
  console.error(`bench: ${message}`);
}

/** The soft and hard limits on open files of processes started from here. */
export async function fdLimits(): Promise<{ soft: number; hard: number }> {
  const out = await new Deno.Command("sh", {
    args: ["-c", "ulimit -Sn; ulimit -Hn"],
    stdout: "piped",
    stderr: "null",
  }).output();
  const [soft, hard] = new TextDecoder().decode(out.stdout).trim().split(
    /\s+/,
  ).map((v) => v === "unlimited" ? Infinity : Number(v));
  return { soft: soft ?? NaN, hard: hard ?? NaN };
}

/** A child process with a line reader over its stdout. */
export interface Child {
  process: Deno.ChildProcess;
  lines: LineReader;
  /** Sends one line on its stdin. */
  send(line: string): Promise<void>;
  /** Closes its stdin (which tells our helpers to exit), waits a little, then kills it. */
  stop(): Promise<void>;
}

const encoder = new TextEncoder();

/**
 * Starts `deno run <denoArgs> <script> <args>` with the open-files soft limit
 * raised to the hard limit (through `sh`), stdin and stdout piped, stderr
 * inherited.
 */
export function spawnDeno(
  denoArgs: string[],
  script: string,
  args: string[],
  what: string,
): Child {
  const process = new Deno.Command("sh", {
    args: [
      "-c",
      'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"',
      "sh",
      Deno.execPath(),
      "run",
      ...denoArgs,
      new URL(script, import.meta.url).pathname,
      ...args,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  return wrap(process, what);
}

/** Starts any program with stdin and stdout piped, stderr inherited. */
export function spawnProgram(
  program: string,
  args: string[],
  what: string,
): Child {
  const process = new Deno.Command(program, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  return wrap(process, what);
}

function wrap(process: Deno.ChildProcess, what: string): Child {
  const writer = process.stdin.getWriter();
  let stopped = false;
  return {
    process,
    lines: new LineReader(process.stdout, what),
    send: (line) => writer.write(encoder.encode(line + "\n")),
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await writer.close();
      } catch {
        // Already gone.
      }
      const timer = setTimeout(() => {
        try {
          process.kill("SIGKILL");
        } catch {
          // Exited meanwhile.
        }
      }, 5_000);
      try {
        await process.status;
      } finally {
        clearTimeout(timer);
      }
      try {
        await process.stdout.cancel();
      } catch {
        // Already read to the end or released.
      }
    },
  };
}

/** What must be undone if the bench is killed: servers to stop, temp dirs to remove. */
const cleanups = new Set<() => Promise<void>>();

/**
 * Registers `undo` for {@linkcode runCleanups}; returns a function that runs it
 * once and unregisters it (the normal way out).
 */
export function cleanupOnKill(
  undo: () => Promise<void>,
): () => Promise<void> {
  let done: Promise<void> | undefined;
  const once = () => {
    cleanups.delete(once);
    return done ??= undo();
  };
  cleanups.add(once);
  return once;
}

/** Runs every registered cleanup (on SIGINT/SIGTERM of the bench). */
export async function runCleanups(): Promise<void> {
  await Promise.allSettled([...cleanups].map((undo) => undo()));
}
