/**
 * `deno task bench`: the performance targets of issues 2, 3 and 4, measured on this
 * machine, with medians, ratios against baselines measured in the same run, and a
 * verdict per target.
 *
 * ```sh
 * deno task bench                     # every row (~3-5 minutes on 2 cores)
 * deno task bench --quick             # a smoke run at reduced scale (~30 s)
 * deno task bench --only selector     # or http, python; repeat or comma-separate
 * deno task bench --json              # machine-readable results on stdout
 * ```
 *
 * Rows: the selector's echo round with 10,000 vs. 10 idle registered conns (and a
 * plain-Deno control), its heap growth over 1,000,000 `select(0)`, the HTTP rows
 * (`fetchAll` vs. a `fetch` pool vs. raw `Deno.connect` loops on 1 KiB, 64 KiB and
 * 64 MiB bodies) and the Python seed crawler's design. Servers and peers run in
 * separate processes on 127.0.0.1; every loop is bounded in count and time.
 *
 * `deno task bench` runs with `--v8-flags=--expose-gc`, so the HTTP rows force a
 * full GC between client runs (outside the timed region); without the flag they
 * still run, and the report says that no GC was forced.
 *
 * Exit code: 0 when every row ran (targets may be missed: the verdicts say so),
 * 1 when the bench itself failed, 2 on a bad command line.
 *
 * @module
 */
import { formatReport, type Report, type Section } from "./_report.ts";
import {
  FULL_SELECTOR,
  QUICK_SELECTOR,
  runSelectorRows,
} from "./_selector_rows.ts";
import {
  FULL_HTTP,
  QUICK_HTTP,
  runHttpRows,
  runPythonRow,
  startOrigin,
} from "./_http_rows.ts";
import { gcAvailable, progress } from "./_util.ts";

const GROUPS = ["selector", "http", "python"] as const;
type Group = typeof GROUPS[number];

const HELP =
  `Usage: deno task bench [--quick] [--only selector|http|python]... [--json]

  --quick        reduced scale smoke run (about 30 s); verdicts only hints ("quick:")
  --only GROUP   run only these rows (repeatable, or comma-separated)
  --json         print the results as JSON instead of the table
  --help         this text`;

function parseArgs(argv: string[]): {
  quick: boolean;
  json: boolean;
  only: Set<Group>;
} {
  let quick = false;
  let json = false;
  const only = new Set<Group>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--quick") quick = true;
    else if (a === "--json") json = true;
    else if (a === "--help" || a === "-h") {
      console.log(HELP);
      Deno.exit(0);
    } else if (a === "--only" || a.startsWith("--only=")) {
      const value = a === "--only" ? argv[++i] : a.slice("--only=".length);
      if (value === undefined) usage("--only needs a group");
      for (const g of value.split(",")) {
        if (!(GROUPS as readonly string[]).includes(g)) {
          usage(
            `unknown group "${g}" for --only: expected ${GROUPS.join(", ")}`,
          );
        }
        only.add(g as Group);
      }
    } else usage(`unknown argument "${a}"`);
  }
  if (only.size === 0) { for (const g of GROUPS) only.add(g); }
  return { quick, json, only };
}

function usage(message: string): never {
  console.error(`bench: ${message}\n\n${HELP}`);
  Deno.exit(2);
}

async function main(): Promise<void> {
  const { quick, json, only } = parseArgs(Deno.args);
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
      "gc() is not exposed: no GC between HTTP client runs (use --v8-flags=--expose-gc)",
    );
  }

  if (only.has("selector")) {
    sections.push(
      ...await runSelectorRows(quick ? QUICK_SELECTOR : FULL_SELECTOR, quick),
    );
  }
  if (only.has("http") || only.has("python")) {
    const http = quick ? QUICK_HTTP : FULL_HTTP;
    const { origin, port } = await startOrigin();
    try {
      if (only.has("http")) {
        sections.push(...await runHttpRows(http, port, quick));
      }
      if (only.has("python")) sections.push(await runPythonRow(http, port));
    } finally {
      await origin.stop();
    }
  }
  progress(`done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (json) console.log(JSON.stringify(report, null, 2));
  else console.log(formatReport(report));
}

try {
  await main();
} catch (e) {
  console.error("bench: failed:", e);
  Deno.exit(1);
}
