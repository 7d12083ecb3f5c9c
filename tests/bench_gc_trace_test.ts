import { assertEquals } from "@std/assert";
import { parseGcTrace, splitRuns } from "../bench/_gc_trace.ts";

/** One `--trace-gc-nvp` line as V8 prints it (only the fields the bench reads). */
function line(gc: string, reason: string, promoted: number, allocated = 0) {
  return `[1:0x1:0]      1 ms: GC: ${
    JSON.stringify({ pause: 1, gc, reason, allocated, promoted })
  }`;
}

Deno.test("splitRuns() counts every byte a run promotes: its mark-compacts', its end marker's and the next start marker's", () => {
  const trace = [
    line("s", "allocation failure", 7), // start-up: no run's
    line("s", "testing", 5), // run 1 starts
    line("s", "allocation failure", 100),
    // A mark-compact moves the young generation's survivors to the old one.
    line("mc", "finalize incremental marking via task", 300),
    line("s", "allocation failure", 0),
    line("s", "testing", 40), // run 1 ends: what it still held
    line("s", "testing", 20), // run 2 starts: run 1's objects promoted
    line("s", "allocation failure", 100),
    line("s", "testing", 40), // run 2 ends
    line("s", "testing", 20), // the child's trailing marker
  ].join("\n");
  const runs = splitRuns(parseGcTrace(trace), 2);
  assertEquals(runs?.map((r) => r.promoted), [460, 160]);
  assertEquals(runs?.map((r) => r.fullGcs), [1, 0]);
  assertEquals(runs?.map((r) => r.scavenges), [2, 1]);
  assertEquals(splitRuns(parseGcTrace(trace), 3), null);
});

Deno.test("a verdict's ratio that rounds to its limit is shown with 3 decimals", async () => {
  const { fmtVerdict } = await import("../bench/_http_rows.ts");
  assertEquals(fmtVerdict(1.996, 2), "1.996");
  assertEquals(fmtVerdict(0.8996, 0.9), "0.900");
  assertEquals(fmtVerdict(1.97, 2), "1.97");
  assertEquals(fmtVerdict(2, 2), "2.00");
});

Deno.test("the bench's raw loop, fetchAll and fetchEach write every request's latency at its index", async () => {
  const { connectPlain, runFetchAll, runFetchEach, runRawKeepAlive } =
    await import("../bench/_http_clients.ts");
  const engine = await import("../mod.ts");
  const { rawServer, writeSplit } = await import("./_raw_http.ts");
  await using server = rawServer(async ({ conn }) => {
    await writeSplit(conn, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd");
    return "keep";
  });
  const n = 12;
  const urls = Array.from({ length: n }, () => server.url("/1k"));
  const latency = new Float64Array(n);
  const options = { concurrency: 3, expectedLength: 4, latency };
  for (
    const run of [
      () =>
        runRawKeepAlive(
          connectPlain(server.port),
          urls.map(() => "/1k"),
          options,
        ),
      () => runFetchAll(urls, options, {}, engine),
      () => runFetchEach(urls, options, {}, engine),
    ]
  ) {
    latency.fill(NaN);
    assertEquals((await run()).ok, n);
    assertEquals(latency.filter((ms) => ms >= 0 && ms < 10_000).length, n);
  }
});

Deno.test("the bench's report prints a latency block: each percentile's median (min..max), ms", async () => {
  const { formatReport } = await import("../bench/_report.ts");
  const spread = (median: number, min: number, max: number) => ({
    median,
    min,
    max,
  });
  const text = formatReport({
    date: "",
    machine: { cores: 2, os: "", deno: "", v8: "" },
    quick: false,
    gcBetweenRuns: true,
    sections: [{
      id: "http-c1",
      title: "c1",
      notes: [],
      ratios: [],
      verdicts: [],
      rows: [{
        label: "fetchAll",
        median: 1,
        samples: [1],
        unit: "req/s",
        latency: {
          p50: spread(0.0461, 0.0452, 0.0462),
          p99: spread(0.16, 0.11, 0.229),
          p999: spread(1.42, 0.178, 4.75),
          max: spread(123.4, 2.91, 8.8),
        },
      }],
    }],
  });
  const lines = text.split("\n");
  const header = lines.findIndex((l) => l.includes("latency ms"));
  assertEquals(
    lines[header]?.trim().split(/\s{2,}/).slice(1),
    ["p50", "p99", "p99.9", "max"],
  );
  const line = lines[header + 1];
  assertEquals(
    line?.trim().split(/\s{2,}/),
    [
      "fetchAll",
      "0.046 (0.045..0.046)",
      "0.160 (0.110..0.229)",
      "1.42 (0.178..4.75)",
      "123 (2.91..8.80)",
    ],
  );
});
