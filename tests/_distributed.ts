/**
 * What the tests of `examples/distributed_crawl.ts` share: its runs as child
 * processes (which a test may freeze and kill), a counting HTTP server, bounded
 * polling, seeding and the workers' summaries.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import type { RedisServer } from "./_redis.ts";

export const SCRIPT =
  new URL("../examples/distributed_crawl.ts", import.meta.url).pathname;

/** `deno run`'s arguments for the example, with only the permissions it needs. */
function runArgs(args: string[]): string[] {
  return [
    "run",
    "--quiet",
    "--no-prompt",
    "--allow-net=127.0.0.1",
    "--allow-read",
    SCRIPT,
    ...args,
  ];
}

/** A `deno run` of the example, with only the permissions it needs. */
export class Run implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #output: Promise<[string, string]>;
  #exited = false;
  readonly #piped: boolean;
  #stdin: WritableStreamDefaultWriter<Uint8Array> | null = null;

  /** @param options.stdin `true`: a pipe, which {@linkcode write} feeds. */
  constructor(args: string[], options: { stdin?: boolean } = {}) {
    this.#piped = options.stdin ?? false;
    this.#child = new Deno.Command(Deno.execPath(), {
      args: runArgs(args),
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.#child.status.then(() => this.#exited = true);
    this.#output = Promise.all([
      new Response(this.#child.stdout).text(),
      new Response(this.#child.stderr).text(),
    ]);
  }

  /** Writes `text` to its stdin (a `stdin: true` run). */
  async write(text: string): Promise<void> {
    this.#stdin ??= this.#child.stdin.getWriter();
    await this.#stdin.write(new TextEncoder().encode(text));
  }

  /** Closes its stdin (a `stdin: true` run): the end of its input. */
  async closeStdin(): Promise<void> {
    this.#stdin ??= this.#child.stdin.getWriter();
    await this.#stdin.close().catch(() => {});
  }

  kill(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** Waits for the exit, killing the process after `timeout` ms. */
  async finished(
    timeout = 20_000,
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    const timer = setTimeout(() => {
      if (!this.#exited) {
        try {
          this.#child.kill("SIGCONT");
        } catch { /* exited meanwhile */ }
        this.#child.kill("SIGKILL");
      }
    }, timeout);
    try {
      const { code } = await this.#child.status;
      const [stdout, stderr] = await this.#output;
      return { code, stdout, stderr };
    } finally {
      clearTimeout(timer);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#exited) {
      try {
        this.#child.kill("SIGCONT");
        this.#child.kill("SIGKILL");
      } catch { /* exited meanwhile */ }
    }
    if (this.#piped) await this.closeStdin();
    await this.#child.status;
    await this.#output;
  }
}

/**
 * The example under `/bin/sh -c shell` (a script whose `"$0" "$@"` is the
 * command, with the permissions {@linkcode Run} gives), for a stdout sent to
 * `/dev/full` or into a slow pipe; stdin and the shell's stdout are null, its
 * stderr piped. Killed after `timeout` ms.
 */
export function spawnInShell(
  shell: string,
  args: string[],
  timeout = 40_000,
): Deno.ChildProcess {
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", shell, Deno.execPath(), ...runArgs(args)],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), timeout);
  child.status.finally(() => clearTimeout(timer));
  return child;
}

/** Runs the example to its end; fails the test if it takes over `timeout` ms. */
export async function run(
  args: string[],
  timeout = 20_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  await using child = new Run(args);
  const started = performance.now();
  const out = await child.finished(timeout);
  assert(
    performance.now() - started < timeout,
    `distributed_crawl.ts ${
      args[0]
    } did not end within ${timeout} ms: ${out.stderr}`,
  );
  return out;
}

/**
 * {@linkcode run} of each of `list`, up to `limit` at a time (each a process
 * that mostly starts up: together they take about as long as a few in a row);
 * the outputs in `list`'s order.
 */
export async function runEach(
  list: string[][],
  limit = 4,
): Promise<{ code: number; stdout: string; stderr: string }[]> {
  const outs: { code: number; stdout: string; stderr: string }[] = [];
  let next = 0;
  const lane = async () => {
    while (next < list.length) {
      const i = next++;
      outs[i] = await run(list[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, list.length) }, lane));
  return outs;
}

/** An HTTP server on 127.0.0.1 counting hits per path. */
export function countingServer(
  handler: (path: string) => Response | Promise<Response>,
): Deno.HttpServer<Deno.NetAddr> & { hits: Map<string, number>; base: string } {
  const hits = new Map<string, number>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      const path = new URL(req.url).pathname;
      hits.set(path, (hits.get(path) ?? 0) + 1);
      return handler(path);
    },
  );
  return Object.assign(server, {
    hits,
    base: `http://127.0.0.1:${server.addr.port}`,
  });
}

/** Polls `cond` every 10 ms until it holds; throws after `timeout` ms. */
export async function until(
  cond: () => Promise<boolean>,
  what: string,
  timeout = 20_000,
): Promise<void> {
  const deadline = performance.now() + timeout;
  while (performance.now() < deadline) {
    if (await cond()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`Timed out after ${timeout} ms waiting for ${what}`);
}

/**
 * A counting server whose answers (`body`) all wait for its `release()`: the
 * requests to it stay in flight for as long as a test needs. Dispose of it
 * after `release()`.
 */
export function heldServer(
  body: string,
): ReturnType<typeof countingServer> & { release: () => void } {
  let release!: () => void;
  const held = new Promise<void>((resolve) => release = resolve);
  const server = countingServer(async () => {
    await held;
    return new Response(body);
  });
  return Object.assign(server, { release });
}

/**
 * A {@linkcode heldServer} answering "slow", with its URL `/slow` seeded: an
 * entry a worker holds for as long as a test needs.
 */
export async function seedHeld(
  redis: RedisServer,
): Promise<ReturnType<typeof heldServer>> {
  const server = heldServer("slow");
  try {
    await seedUrl(redis, `${server.base}/slow`);
  } catch (error) {
    server.release();
    await server[Symbol.asyncDispose]();
    throw error;
  }
  return server;
}

/** `seed` of one URL, which must succeed. */
export async function seedUrl(redis: RedisServer, url: string): Promise<void> {
  const seeded = await run(["seed", "--redis", redis.url, url]);
  assertEquals(seeded.code, 0, seeded.stderr);
}

export async function seedFile(
  redis: RedisServer,
  urls: string[],
): Promise<void> {
  const file = await Deno.makeTempFile({ suffix: ".txt" });
  try {
    await Deno.writeTextFile(file, urls.join("\n") + "\n");
    const out = await run(["seed", "--redis", redis.url, "-i", file]);
    assertEquals(out.code, 0, out.stderr);
    assert(out.stdout.startsWith(`seeded ${urls.length} new URLs`), out.stdout);
  } finally {
    await Deno.remove(file);
  }
}

/** `count` URLs of `base` under `/prefix/`, seeded into the frontier. */
export async function seedPaths(
  redis: RedisServer,
  base: string,
  count: number,
  prefix: string,
): Promise<string[]> {
  const urls = Array.from(
    { length: count },
    (_, i) => `${base}/${prefix}/${i}`,
  );
  await seedFile(redis, urls);
  return urls;
}

/**
 * The arguments of `work` on `redis` as worker `name`, with `flags` in their
 * order (`true` for a flag without a value) and `--json` last.
 */
export function workArgs(
  redis: RedisServer,
  name: string,
  flags: Record<string, string | number | true>,
): string[] {
  const args = ["work", "--redis", redis.url, "--name", name];
  for (const [flag, value] of Object.entries(flags)) {
    args.push(`--${flag}`);
    if (value !== true) args.push(String(value));
  }
  args.push("--json");
  return args;
}

export interface Summary {
  worker: string;
  crawlCpuSeconds: number;
  seconds: number;
  fetched: number;
  committed: number;
  lost: number;
  claimed: number;
  recovered: number;
  released: number;
  roundTrips: number;
}

export function summaryOf(
  out: { code: number; stdout: string; stderr: string },
) {
  assertEquals(out.code, 0, out.stderr);
  const last = out.stdout.trim().split("\n").at(-1) ?? "";
  return JSON.parse(last) as Summary;
}
