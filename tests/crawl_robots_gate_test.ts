/**
 * The crawl CLI's robots gate: entries go on once their check passed, checks run
 * at once up to the window, refused and failed checks are reported.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { gate } from "../examples/crawl/robots_gate.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("gate() runs at most window checks at once and yields every allowed entry", async () => {
  let running = 0;
  let most = 0;
  const entries = Array.from({ length: 40 }, (_, i) => i);
  const out = await Array.fromAsync(gate(entries, async (i) => {
    running++;
    most = Math.max(most, running);
    await sleep(i % 3);
    running--;
    return i % 4 !== 0;
  }, { window: 5 }));
  assertEquals(most, 5);
  assertEquals(out.sort((a, b) => a - b), entries.filter((i) => i % 4 !== 0));
});

Deno.test("gate() reports refused entries, and a check that throws refuses its entry with the error", async () => {
  const refused: [string, unknown][] = [];
  const boom = new Error("robots.txt unreachable");
  const out = await Array.fromAsync(gate(["a", "b", "c"], (entry) => {
    if (entry === "b") throw boom;
    return Promise.resolve(entry !== "c");
  }, { onRefused: (entry, error) => void refused.push([entry, error]) }));
  assertEquals(out, ["a"]);
  assertEquals(refused.sort(), [["b", boom], ["c", undefined]]);
});

Deno.test("gate() lets go of its source when the consumer breaks out", async () => {
  let returned = false;
  async function* source() {
    try {
      for (let i = 0;; i++) yield i;
    } finally {
      returned = true;
    }
  }
  for await (const entry of gate(source(), () => Promise.resolve(true))) {
    if (entry === 3) break;
  }
  await sleep(0);
  assert(returned);
  await assertRejects(
    () => Array.fromAsync(gate([], () => Promise.resolve(true), { window: 0 })),
    RangeError,
    "window must be a positive integer",
  );
});
