/**
 * The crawl CLI's robots gate: entries go on once their check passed, checks run
 * at once up to the window, refused and failed checks are reported.
 */
import { assert, assertEquals, assertLess, assertRejects } from "@std/assert";
import { runScript } from "./_net.ts";
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

Deno.test("gate() holds an entry until its notBefore without taking a check's place: later origins go on meanwhile", async () => {
  const start = performance.now();
  const entries = [
    ...Array.from({ length: 5 }, (_, i) => `held/${i}`),
    "free/0",
    "free/1",
  ];
  const seen: [string, number][] = [];
  for await (
    const entry of gate(entries, () => Promise.resolve(true), {
      window: 2,
      notBefore: (entry) => entry.startsWith("held") ? start + 300 : undefined,
    })
  ) seen.push([entry, performance.now() - start]);
  assertEquals(seen.map(([entry]) => entry), [
    "free/0",
    "free/1",
    ...Array.from({ length: 5 }, (_, i) => `held/${i}`),
  ]);
  for (const [entry, at] of seen) {
    if (entry.startsWith("free")) assert(at < 250, `${entry} at ${at} ms`);
    else assert(at >= 295, `${entry} at ${at} ms`);
  }
});

Deno.test("gate() ends at once when its signal aborts, dropping the entries it holds", async () => {
  const controller = new AbortController();
  const started = performance.now();
  setTimeout(() => controller.abort(), 50);
  const out = await Array.fromAsync(
    gate(["a", "b"], () => Promise.resolve(true), {
      notBefore: () => started + 10_000,
      signal: controller.signal,
    }),
  );
  assertEquals(out, []);
  assert(performance.now() - started < 1_000);
});

Deno.test("gate() holds an entry weeks ahead with one timer, not one that fires at once (setTimeout's 2^31 - 1 ms limit)", async () => {
  const controller = new AbortController();
  const started = performance.now();
  const delays: number[] = [];
  const real = globalThis.setTimeout;
  // Counts the gate's timers; the abort's own comes before the swap.
  const stop = real(() => controller.abort(), 300);
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    delays.push(ms ?? 0);
    return real(fn, ms);
  }) as typeof setTimeout;
  try {
    const out = await Array.fromAsync(
      gate(["a"], () => Promise.resolve(true), {
        notBefore: () => started + 2 ** 32,
        signal: controller.signal,
      }),
    );
    assertEquals(out, []);
  } finally {
    globalThis.setTimeout = real;
    clearTimeout(stop);
  }
  // Before: a timer of 2^32 ms fired at once, again and again (226 in 500 ms).
  assertEquals(delays, [2 ** 31 - 1]);
});

Deno.test("gate() refuses a maxHeld that is not a positive integer with RangeError", async () => {
  for (const maxHeld of [0, -1, NaN, 1.5]) {
    await assertRejects(
      () =>
        Array.fromAsync(gate(["a"], () => Promise.resolve(true), { maxHeld })),
      RangeError,
      "maxHeld",
    );
  }
});

Deno.test("gate() with a signal keeps no memory per entry gone through: heap flat over 100,000 entries", async () => {
  const gateUrl = new URL("../examples/crawl/robots_gate.ts", import.meta.url);
  const { stdout, stderr, success } = await runScript(
    `import { gate } from ${JSON.stringify(gateUrl.href)};
const N = 100_000;
async function* source() {
  for (let i = 0; i < N; i++) yield { url: "http://a.test/p/" + i };
}
const signal = new AbortController().signal;
let n = 0;
let mid = 0;
for await (const _ of gate(source(), () => Promise.resolve(true), { signal })) {
  if (++n === N / 2) { gc(); mid = Deno.memoryUsage().heapUsed; }
  if (n === N - 10) {
    gc();
    console.log(((Deno.memoryUsage().heapUsed - mid) / (N / 2)).toFixed(1));
  }
}`,
    ["--allow-read", "--v8-flags=--expose-gc"],
  );
  assert(success, stderr);
  // Before: ~856 B an entry, the abort's pending promise holding every race.
  assertLess(Number(stdout.trim()), 50);
});

Deno.test("gate() leaves no timer behind when a timer that fired while the consumer held an entry was replaced by a later one", async () => {
  const started = performance.now();
  const notBefore: Record<string, number> = {
    X: started + 20,
    A: started + 600_000,
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const controller = new AbortController();
  const stop = setTimeout(() => controller.abort(), 1_000);
  const got: string[] = [];
  for await (
    const entry of gate(
      ["X", "Y", "A"],
      async (entry) => {
        if (entry === "A") await sleep(5);
        return true;
      },
      { notBefore: (entry) => notBefore[entry], signal: controller.signal },
    )
  ) {
    got.push(entry);
    // X's timer fires meanwhile, and A's check ends with a later notBefore.
    if (entry === "Y") await sleep(100);
  }
  clearTimeout(stop);
  // Before: A's 600 s timer stayed pending (the test's sanitizer fails).
  assertEquals(got, ["Y", "X"]);
});

Deno.test("gate() drops the entries held for their time once aborted, though several were due together", async () => {
  const controller = new AbortController();
  const due = performance.now() + 30;
  const got: string[] = [];
  for await (
    const entry of gate(["a", "b", "c"], () => Promise.resolve(true), {
      notBefore: () => due,
      signal: controller.signal,
    })
  ) {
    got.push(entry);
    controller.abort();
  }
  assertEquals(got, ["a"]);
});
