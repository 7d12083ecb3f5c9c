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
