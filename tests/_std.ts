/**
 * Runs a `deno` subcommand with the `@std` packages resolved as a user gets them:
 * from JSR when it is reachable, and otherwise from a local copy of JSR's registry
 * (the `shared/jsr/` folder beside this repository, or `$SELECTORS_JSR_MIRROR`),
 * served on 127.0.0.1 for the run and named to Deno with `JSR_URL`. Either way the
 * tests run against the real `@std/assert`, `@std/async` and `@std/testing`.
 *
 * Usage: `deno run ... tests/_std.ts <subcommand> [args...]`
 *
 * `test --lanes [flags...]` (what `deno task test` runs) runs the few test files
 * that mostly wait in a second `deno test` beside the others, and ends with one
 * summary line of both. With a file or a flag's value after a space among the
 * arguments (`--filter=x` is fine), or `SELECTORS_TEST_LANES=1`, it runs one
 * `deno test`, as before.
 *
 * @module
 */
const [subcommand, ...rest] = Deno.args;
if (!subcommand) {
  console.error("Usage: tests/_std.ts <deno subcommand> [args...]");
  Deno.exit(2);
}

/**
 * A fixed port first, so Deno's cache (keyed by registry URL) is reused from run to
 * run; any free port when another run holds it.
 */
const PREFERRED_PORT = 47_011;

async function jsrReachable(): Promise<boolean> {
  try {
    const res = await fetch("https://jsr.io/@std/assert/meta.json", {
      signal: AbortSignal.timeout(5_000),
    });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

function mirrorRoot(): string | null {
  const candidates = [
    Deno.env.get("SELECTORS_JSR_MIRROR"),
    new URL("../../shared/jsr/", import.meta.url).pathname,
  ];
  for (const dir of candidates) {
    if (!dir) continue;
    try {
      if (Deno.statSync(`${dir}/@std/assert/meta.json`).isFile) return dir;
    } catch {
      // Not there: try the next one.
    }
  }
  return null;
}

const CONTENT_TYPES: Record<string, string> = {
  ".ts": "application/typescript",
  ".mts": "application/typescript",
  ".tsx": "text/tsx",
  ".js": "application/javascript",
  ".mjs": "application/javascript",
  ".json": "application/json",
};

function serveMirror(root: string): Deno.HttpServer<Deno.NetAddr> {
  const handler = async (req: Request): Promise<Response> => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (path.split("/").includes("..")) {
      return new Response("Bad path", { status: 400 });
    }
    try {
      const body = await Deno.readFile(`${root}${path}`);
      const ext = path.slice(path.lastIndexOf("."));
      return new Response(body, {
        headers: {
          "content-type": CONTENT_TYPES[ext] ?? "application/octet-stream",
        },
      });
    } catch {
      return new Response("Not found", { status: 404 });
    }
  };
  const options = { hostname: "127.0.0.1", onListen() {} };
  try {
    return Deno.serve({ ...options, port: PREFERRED_PORT }, handler);
  } catch (e) {
    if (!(e instanceof Deno.errors.AddrInUse)) throw e;
    return Deno.serve({ ...options, port: 0 }, handler);
  }
}

const env: Record<string, string> = {};
let server: Deno.HttpServer<Deno.NetAddr> | null = null;
if (!Deno.env.get("JSR_URL") && !(await jsrReachable())) {
  const root = mirrorRoot();
  if (root === null) {
    console.error(
      "Cannot run: jsr.io is not reachable and no local JSR mirror was found (../shared/jsr or $SELECTORS_JSR_MIRROR)",
    );
    Deno.exit(1);
  }
  server = serveMirror(root);
  env.JSR_URL = `http://127.0.0.1:${server.addr.port}/`;
  console.error(`jsr.io is not reachable: @std from ${env.JSR_URL} (${root})`);
}

/**
 * The test files that spend their time waiting: on worker processes, on Redis
 * outages and stalls, on `--claim-idle` (a run of the file alone: 61 s, 13 s of
 * CPU in all its processes). `test --lanes` runs them in a second `deno test`
 * beside the rest (separate processes, so no test sees another's descriptors,
 * RSS or CPU time, as `--parallel`'s workers in one process would). Files run
 * in name order, so it overlaps the first minute or so of the main lane (its
 * type check and the `crawl_*` files): measured together, no test slower
 * beyond noise but crawl_cli_test.ts by ~5 s in all, and none failed.
 * `distributed_crawl_test.ts` would save another ~70 s here but uses three
 * times the CPU a second (5,000-URL crawls, four `deno run`s at once), over
 * the main lane's timing tests: not without measuring their flakiness first.
 */
const SIDE_LANE = ["distributed_crawl_faults_test.ts"].map((file) =>
  new URL(file, import.meta.url).pathname
);

const lanes = subcommand === "test" && rest.includes("--lanes");
const args = rest.filter((arg) => arg !== "--lanes");
const code = lanes && twoLanesFit(args)
  ? await testInTwoLanes(args, env)
  : (await new Deno.Command(Deno.execPath(), {
    args: [subcommand, ...args],
    env,
  }).spawn().status).code;
await server?.shutdown();
Deno.exit(code);

/**
 * Whether `args` (the task's flags and the user's) run the whole suite: all
 * flags (no files, no flag's value after a space), and none that a second
 * `deno test` would clash on (`--junit-path=file` is fine: the side lane's
 * report goes to `file.side.xml`). Otherwise one `deno test`, as without `--lanes`.
 */
function twoLanesFit(args: string[]): boolean {
  if (Deno.env.get("SELECTORS_TEST_LANES") === "1") return false;
  return args.every((arg) =>
    arg.startsWith("-") &&
    !/^--(watch|coverage|reporter|parallel)\b/.test(arg) &&
    arg !== "--junit-path"
  );
}

/**
 * `deno test args` in two processes at once: the {@linkcode SIDE_LANE} files,
 * and all others (with the docs). The main lane's output streams; the side
 * lane's follows it whole, then one summary line of both in Deno's format (the
 * one CI reads). Resolves the exit code: 0 when both lanes passed.
 */
async function testInTwoLanes(
  args: string[],
  env: Record<string, string>,
): Promise<number> {
  const started = performance.now();
  const childEnv = { ...env };
  if (Deno.stdout.isTerminal() && !Deno.noColor) childEnv.FORCE_COLOR = "1";
  const side = new Deno.Command(Deno.execPath(), {
    args: [
      "test",
      ...args.filter((arg) => arg !== "--doc").map((arg) =>
        arg.startsWith("--junit-path=") ? `${arg}.side.xml` : arg
      ),
      ...SIDE_LANE,
    ],
    env: childEnv,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let sideDone = false;
  side.status.then(() => sideDone = true);
  // Kept as it comes, so that what the side lane said so far is shown if the
  // run is stopped (a CI timeout, Ctrl-C) while it hangs.
  const sideErrChunks: Uint8Array[] = [];
  const sideOutChunks: Uint8Array[] = [];
  const drain = async (
    stream: ReadableStream<Uint8Array>,
    to: Uint8Array[],
  ) => {
    for await (const chunk of stream) to.push(chunk);
  };
  const sideOutput = Promise.all([
    drain(side.stderr, sideErrChunks),
    drain(side.stdout, sideOutChunks),
  ]);
  const main = new Deno.Command(Deno.execPath(), {
    // `--ignore` replaces deno.json's `exclude` rather than adding to it.
    args: [
      "test",
      ...args,
      `--ignore=${[...SIDE_LANE, ...excluded()].join(",")}`,
    ],
    env: childEnv,
    stdout: "piped",
  }).spawn();
  // Stopped (SIGTERM from a CI timeout, SIGINT): both lanes stop too, and the
  // side lane's output so far is shown.
  const stop = (signal: "SIGINT" | "SIGTERM") => {
    for (const child of [main, side]) {
      try {
        child.kill("SIGTERM");
      } catch {
        // Exited already.
      }
    }
    console.log("\n--- side lane (stopped) ---");
    for (const bytes of [concat(sideErrChunks), concat(sideOutChunks)]) {
      for (let n = 0; n < bytes.length;) {
        n += Deno.stdout.writeSync(bytes.subarray(n));
      }
    }
    Deno.exit(signal === "SIGINT" ? 130 : 143);
  };
  const listeners = (["SIGINT", "SIGTERM"] as const).map((signal) => {
    const listener = () => stop(signal);
    Deno.addSignalListener(signal, listener);
    return [signal, listener] as const;
  });
  // The main lane's output as it comes, its tail kept for the summary.
  let mainTail = "";
  const decoder = new TextDecoder();
  for await (const chunk of main.stdout) {
    await writeAll(Deno.stdout, chunk);
    mainTail = (mainTail + decoder.decode(chunk, { stream: true })).slice(
      -4_096,
    );
  }
  const mainCode = (await main.status).code;
  if (!sideDone) {
    console.error(
      "\n(waiting for the side lane: " + SIDE_LANE.length + " files)",
    );
  }
  const sideCode = (await side.status).code;
  await sideOutput;
  for (const [signal, listener] of listeners) {
    Deno.removeSignalListener(signal, listener);
  }
  const sideErr = concat(sideErrChunks);
  const sideOut = concat(sideOutChunks);
  console.log("\n--- side lane ---");
  await writeAll(Deno.stdout, sideErr);
  await writeAll(Deno.stdout, sideOut);
  const counts = [mainTail, decoder.decode(sideOut)].map(summaryCounts);
  const sum = (key: keyof Counts) =>
    counts.reduce((n, c) => n + (c?.[key] ?? 0), 0);
  // A lane without a summary (it did not get to run its tests) failed.
  const failed = sum("failed") + counts.filter((c) => c === null).length;
  const ok = mainCode === 0 && sideCode === 0 && failed === 0;
  const parts = [`${ok ? "ok" : "FAILED"} | ${sum("passed")} passed`];
  parts.push(`${failed} failed`);
  if (sum("ignored") > 0) parts.push(`${sum("ignored")} ignored`);
  if (sum("filtered") > 0) parts.push(`${sum("filtered")} filtered out`);
  const seconds = Math.round((performance.now() - started) / 1_000);
  const time = seconds >= 60
    ? `${Math.floor(seconds / 60)}m${seconds % 60}s`
    : `${seconds}s`;
  console.log(`\nBoth lanes:\n${parts.join(" | ")} (${time})\n`);
  return ok ? 0 : mainCode || sideCode || 1;
}

interface Counts {
  passed: number;
  failed: number;
  ignored: number;
  filtered: number;
}

/** The counts of the last `ok | 3 passed | 0 failed ...` line of `output`. */
function summaryCounts(output: string): Counts | null {
  // deno-lint-ignore no-control-regex -- the colors of a FORCE_COLOR run
  const lines = output.replace(/\x1b\[[0-9;]*m/g, "").split("\n");
  const line = lines.findLast((l) => /^(ok|FAILED) \| \d+ passed/.test(l));
  if (line === undefined) return null;
  const count = (word: string) =>
    Number(new RegExp(`(\\d+) ${word}`).exec(line)?.[1] ?? 0);
  return {
    passed: count("passed"),
    failed: count("failed"),
    ignored: count("ignored"),
    filtered: count("filtered out"),
  };
}

async function writeAll(
  w: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  for (let n = 0; n < bytes.length;) n += await w.write(bytes.subarray(n));
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** deno.json's `exclude` entries (the main lane's `--ignore` replaces them). */
function excluded(): string[] {
  const config = new URL("../deno.json", import.meta.url);
  const { exclude = [], test = {} } = JSON.parse(Deno.readTextFileSync(config));
  return [...exclude, ...(test.exclude ?? [])].map((entry: string) =>
    new URL(entry, config).pathname
  );
}
