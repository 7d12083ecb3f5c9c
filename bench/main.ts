/**
 * `deno task bench`: the performance targets of issues 2, 3, 4, 8, 9 and 10,
 * measured on this machine, with medians, ratios against baselines measured in
 * the same rounds, and a verdict per target. The method and how to read the
 * table: `bench/README.md`.
 *
 * ```sh
 * deno task bench                     # every row (3-5 minutes on 2 cores)
 * deno task bench --quick             # a smoke run at reduced scale (under a minute)
 * deno task bench --only http         # or selector, python, or HTTP rows:
 *                                     # 1k 64k 64m close cold c1 sink origins proxy tls tls-64m upload upload-64k upload-16k
 * deno task bench --origin deno       # the Deno origin instead of nginx
 * deno task bench --baseline main     # library clients also on another version
 * deno task bench --json              # machine-readable results on stdout
 * ```
 *
 * Rows: the selector's echo round with 10,000 vs. 10 idle registered conns (and a
 * plain-Deno control) and its heap growth over 1,000,000 `select(0)`; the HTTP
 * rows (`_http_rows.ts`), each client in its own process with its CPU, GC and
 * RSS figures, against nginx (or `_origin.ts`); the Python seed crawler's design.
 * Servers and peers run in separate processes on 127.0.0.1; every loop is
 * bounded in count and time.
 *
 * Exit code: 0 when every row ran (targets may be missed: the verdicts say so),
 * 1 when the bench itself failed, 2 on a bad command line.
 *
 * @module
 */
import { distributedSection } from "./distributed_bench.ts";
import { formatReport, type Report, type Section } from "./_report.ts";
import {
  FULL_SELECTOR,
  QUICK_SELECTOR,
  runSelectorRows,
} from "./_selector_rows.ts";
import {
  type Baseline,
  FULL_HTTP,
  HTTP_ROWS,
  type HttpRow,
  QUICK_HTTP,
  runHttpRows,
} from "./_http_rows.ts";
import { FULL_PYTHON, QUICK_PYTHON, runPythonRow } from "./_python_row.ts";
import { type Origin, startDenoOrigin, startNginx } from "./_servers.ts";
import { cleanupOnKill, gcAvailable, progress, runCleanups } from "./_util.ts";

/** Names `--only` takes: groups, and single HTTP rows. */
const GROUPS = [
  "selector",
  "http",
  "python",
  "distributed",
  ...HTTP_ROWS,
] as const;
type Group = typeof GROUPS[number];

const HELP =
  `Usage: deno task bench [--quick] [--only NAME]... [--origin nginx|deno]
                       [--baseline REV|DIR] [--rounds N] [--json]

  --quick          reduced scale smoke run (under a minute); verdicts only hints ("quick:")
  --only NAME      run only these rows (repeatable, or comma-separated):
                   selector, http (every HTTP row), python, distributed
                   (1 vs 2 Redis workers), or one HTTP row:
                   ${HTTP_ROWS.join(", ")}
  --origin KIND    the HTTP origin: nginx (default; falls back to deno when
                   nginx is missing) or deno (bench/_origin.ts)
  --baseline REV   also run every fetchAll/fetchEach client on another version
                   of the library, in the same rounds, with paired ratios: a
                   git revision of this repository (exported with git archive
                   to a temp dir) or a directory holding a mod.ts
  --rounds N       rounds of every HTTP row (default 3, 5 for the single-body
                   rows): a verdict is the median of the per-round ratios,
                   and one noisy round of 3 can turn it
  --json           print the results as JSON instead of the table
  --help           this text

See bench/README.md for what each row measures and how to read the table.`;

function parseArgs(argv: string[]): {
  quick: boolean;
  json: boolean;
  only: Set<Group>;
  origin: "nginx" | "deno";
  baseline?: string;
  rounds?: number;
} {
  let baseline: string | undefined;
  let rounds: number | undefined;
  let quick = false;
  let json = false;
  let origin: "nginx" | "deno" = "nginx";
  const only = new Set<Group>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--quick") quick = true;
    else if (a === "--json") json = true;
    else if (a === "--help" || a === "-h") {
      console.log(HELP);
      Deno.exit(0);
    } else if (a === "--origin" || a.startsWith("--origin=")) {
      const value = a === "--origin" ? argv[++i] : a.slice("--origin=".length);
      if (value !== "nginx" && value !== "deno") {
        usage(`unknown origin "${value}": expected nginx or deno`);
      }
      origin = value;
    } else if (a === "--baseline" || a.startsWith("--baseline=")) {
      baseline = a === "--baseline" ? argv[++i] : a.slice("--baseline=".length);
      if (!baseline) usage("--baseline needs a git revision or a directory");
    } else if (a === "--rounds" || a.startsWith("--rounds=")) {
      const value = a === "--rounds" ? argv[++i] : a.slice("--rounds=".length);
      rounds = Number(value);
      if (!Number.isInteger(rounds) || rounds < 1 || rounds > 1_000) {
        usage(
          value === undefined
            ? "--rounds needs a number"
            : `--rounds needs a whole number from 1 to 1000, not "${value}"`,
        );
      }
    } else if (a === "--only" || a.startsWith("--only=")) {
      const value = a === "--only" ? argv[++i] : a.slice("--only=".length);
      if (value === undefined) usage("--only needs a name");
      for (const g of value.split(",")) {
        if (!(GROUPS as readonly string[]).includes(g)) {
          usage(
            `unknown name "${g}" for --only: expected ${GROUPS.join(", ")}`,
          );
        }
        only.add(g as Group);
      }
    } else usage(`unknown argument "${a}"`);
  }
  if (only.size === 0) {
    for (const g of ["selector", "http", "python", "distributed"] as const) {
      only.add(g);
    }
  }
  return {
    quick,
    json,
    only,
    origin,
    ...(baseline !== undefined ? { baseline } : {}),
    ...(rounds !== undefined ? { rounds } : {}),
  };
}

function usage(message: string): never {
  console.error(`bench: ${message}\n\n${HELP}`);
  Deno.exit(2);
}

async function startOrigin(
  want: "nginx" | "deno",
  extraPorts: number,
  tls: boolean,
): Promise<{ origin: Origin; note?: string }> {
  if (want === "nginx") {
    const nginx = await startNginx(extraPorts, tls);
    if (typeof nginx !== "string") return { origin: nginx };
    progress(`${nginx}: using the Deno origin instead`);
    return {
      origin: await startDenoOrigin(extraPorts),
      note:
        `${nginx}: the HTTP rows ran against the Deno origin (issue 10's targets are for nginx)`,
    };
  }
  return { origin: await startDenoOrigin(extraPorts) };
}

/**
 * The baseline's `mod.ts`: `spec` itself when it is a directory with one, else
 * the git revision `spec` of this repository, exported to a temp dir (removed by
 * `cleanup`).
 */
async function prepareBaseline(
  spec: string,
): Promise<{ base: Baseline; cleanup: () => Promise<void> }> {
  try {
    const mod = `${await Deno.realPath(spec)}/mod.ts`;
    await Deno.stat(mod);
    return { base: { mod, name: spec }, cleanup: async () => {} };
  } catch {
    // Not a checkout: a git revision.
  }
  const repo = new URL("..", import.meta.url).pathname;
  const dir = await Deno.makeTempDir({ prefix: "bench-baseline-" });
  const out = await new Deno.Command("sh", {
    args: [
      "-c",
      'git -C "$1" archive --format=tar -o "$3/tree.tar" "$2" && tar -x -f "$3/tree.tar" -C "$3"',
      "sh",
      repo,
      spec,
      dir,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    await Deno.remove(dir, { recursive: true });
    throw new Error(
      `Cannot export baseline "${spec}": ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
  return {
    base: { mod: `${dir}/mod.ts`, name: spec },
    cleanup: cleanupOnKill(() => Deno.remove(dir, { recursive: true })),
  };
}

async function main(): Promise<void> {
  const { quick, json, only, origin: want, baseline, rounds } = parseArgs(
    Deno.args,
  );
  const httpRows = new Set<HttpRow>(
    HTTP_ROWS.filter((r) => only.has("http") || only.has(r)),
  );
  if (
    httpRows.size > 0 &&
    (await Deno.permissions.query({ name: "write" })).state !== "granted"
  ) {
    usage(
      "the HTTP rows write temp dirs (nginx's files, GC traces, the sink file): run with --allow-write",
    );
  }
  const started = performance.now();
  const report: Report = {
    date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
    machine: {
      cores: navigator.hardwareConcurrency,
      os: `${Deno.build.os} ${Deno.build.arch}`,
      deno: Deno.version.deno,
      v8: Deno.version.v8,
    },
    quick,
    gcBetweenRuns: gcAvailable,
    sections: [],
  };
  const sections: Section[] = report.sections;
  if (!gcAvailable) {
    progress(
      "gc() is not exposed: no GC between Python-row client runs (use --v8-flags=--expose-gc)",
    );
  }

  if (only.has("selector")) {
    sections.push(
      ...await runSelectorRows(quick ? QUICK_SELECTOR : FULL_SELECTOR, quick),
    );
  }
  if (httpRows.size > 0 || only.has("python")) {
    const scale = quick ? QUICK_HTTP : FULL_HTTP;
    const http = rounds === undefined
      ? scale
      : { ...scale, rounds, bigRounds: rounds };
    const prepared = baseline !== undefined && httpRows.size > 0
      ? await prepareBaseline(baseline)
      : undefined;
    if (prepared !== undefined) {
      progress(`baseline: ${prepared.base.name} (${prepared.base.mod})`);
      report.notes = [
        `Baseline: every fetchAll/fetchEach client also ran on ${prepared.base.name} ([${prepared.base.name}] rows), in the same rounds.`,
      ];
    }
    const extra = httpRows.has("origins") ? http.origins - 1 : 0;
    const { origin, note } = await startOrigin(
      want,
      extra,
      httpRows.has("tls") || httpRows.has("tls-64m"),
    ).catch(
      async (e) => {
        await prepared?.cleanup();
        throw e;
      },
    );
    report.origin = origin.describe;
    if (note !== undefined) report.notes = [...report.notes ?? [], note];
    progress(`origin: ${origin.describe}`);
    try {
      sections.push(
        ...await runHttpRows(http, origin, httpRows, quick, prepared?.base),
      );
      if (only.has("python")) {
        sections.push(
          await runPythonRow(
            quick ? QUICK_PYTHON : FULL_PYTHON,
            origin.port,
            origin.describe,
          ),
        );
      }
    } finally {
      await origin.stop();
      await prepared?.cleanup();
    }
  }
  if (only.has("distributed")) {
    sections.push(
      await distributedSection(quick ? { urls: 4_000, rounds: 1 } : {}),
    );
  }
  progress(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (json) console.log(JSON.stringify(report, null, 2));
  else console.log(formatReport(report));
}

// A kill of this process alone (a Ctrl-C reaches the whole process group):
// nginx and tinyproxy would outlive it, and its temp dirs stay.
const onSignal = {
  SIGINT: () => interrupted("SIGINT"),
  SIGTERM: () => interrupted("SIGTERM"),
};
function interrupted(signal: string): void {
  progress(`${signal}: stopping the servers, removing temp dirs`);
  runCleanups().finally(() => Deno.exit(130));
}
for (const [signal, handler] of Object.entries(onSignal)) {
  Deno.addSignalListener(signal as Deno.Signal, handler);
}

try {
  await main();
} catch (e) {
  console.error("bench: failed:", e);
  Deno.exit(1);
} finally {
  for (const [signal, handler] of Object.entries(onSignal)) {
    Deno.removeSignalListener(signal as Deno.Signal, handler);
  }
}
