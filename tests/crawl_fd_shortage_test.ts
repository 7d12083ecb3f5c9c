/**
 * A crawl wider than the process's descriptors (`ulimit -n`): a connect that
 * fails for want of one (EMFILE) waits, keeping its slot, until one of the
 * crawl's conns closes or descriptors come back, as curl queues such transfers;
 * it is no attempt, and fails only once its timeout passes. Each case runs in a
 * child Deno under a real `ulimit -n`.
 */
import { assert, assertEquals, assertGreater, assertLess } from "@std/assert";
import { within } from "./_net.ts";

const MOD = new URL("../mod.ts", import.meta.url).href;

/**
 * The child's prologue. Deno 2.9.6 sets up its signal thread about half a
 * second after start, and panics if it finds no descriptor for it then
 * (ext/signals): a listener added and removed sets it up at once.
 */
const PROLOGUE = `
import { fetchAll } from ${JSON.stringify(MOD)};
const noop = () => {};
Deno.addSignalListener("SIGINT", noop);
Deno.removeSignalListener("SIGINT", noop);
const [port] = Deno.args.map(Number);
const urls = (n) => Array.from({ length: n }, (_, i) => \`http://127.0.0.1:\${port}/\${i}\`);
const summary = (results) => ({
  ok: results.filter((r) => r.ok).length,
  attempts: Math.max(...results.map((r) => r.attempts)),
  errors: [...new Set(results.filter((r) => !r.ok).map((r) => \`\${r.error.name}: \${r.error.message}\`))],
  causes: [...new Set(results.filter((r) => !r.ok).map((r) => String(r.error.cause?.message)))],
  queued: Math.min(...results.map((r) => r.timings.queued)),
});
/** Takes every descriptor left with conns that stay open (pending reads). */
async function holdAll() {
  const held = [];
  for (let i = 0; i < 4096; i++) {
    try {
      held.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    } catch {
      break;
    }
  }
  for (const conn of held) conn.read(new Uint8Array(1)).catch(() => {});
  return held;
}
`;

/** Runs `body` after the prologue in a child Deno under `ulimit -n <limit>`. */
async function underLimit(
  limit: number,
  port: number,
  body: string,
): Promise<Record<string, unknown>> {
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      `ulimit -n ${limit} && exec "$0" run --quiet --no-config --allow-net=127.0.0.1 - ${port}`,
      Deno.execPath(),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(PROLOGUE + body));
  await writer.close();
  const output = child.output();
  const out = await within(output, 60_000, "child").catch(async (e) => {
    child.kill();
    await output.catch(() => {});
    throw e;
  });
  const stderr = new TextDecoder().decode(out.stderr);
  assert(out.success, `the child failed: ${stderr}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** A keep-alive HTTP server answering 1 KiB to every request. */
function server() {
  const body = "x".repeat(1024);
  return Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(body),
  );
}

for (const keepAlive of [true, false]) {
  Deno.test(`fetchAll() at concurrency 200 under ulimit -n 64 (keepAlive: ${keepAlive}) fetches every URL in one attempt each: connects short of descriptors wait for the crawl's conns`, async () => {
    await using http = server();
    const result = await underLimit(
      64,
      http.addr.port,
      `const results = await fetchAll(urls(600), { concurrency: 200, keepAlive: ${keepAlive} });
       // A second crawl at once: the first one's descriptors may not be free yet.
       const again = await fetchAll(urls(50), { concurrency: 50 });
       console.log(JSON.stringify({ first: summary(results), again: summary(again) }));`,
    );
    assertEquals(result.first, {
      ok: 600,
      attempts: 1,
      errors: [],
      causes: [],
      queued: (result.first as { queued: number }).queued,
    });
    assertEquals((result.again as { ok: number }).ok, 50);
  });
}

Deno.test("fetchAll() with every descriptor held elsewhere: its URLs wait, and go once descriptors come back (no conn of the crawl closes)", async () => {
  await using http = server();
  const result = await underLimit(
    64,
    http.addr.port,
    `const held = await holdAll();
     const freed = held.splice(0, 8);
     const timer = setTimeout(() => freed.forEach((conn) => conn.close()), 200);
     const results = await fetchAll(urls(6), { concurrency: 6, timeout: 10_000 });
     clearTimeout(timer);
     [...held, ...freed].forEach((conn) => { try { conn.close(); } catch {} });
     console.log(JSON.stringify(summary(results)));`,
  );
  assertEquals(result.ok, 6);
  assertEquals(result.attempts, 1);
  // They waited for the descriptors, in the queue.
  assertGreater(result.queued as number, 150);
});

Deno.test("fetchAll() with every descriptor held for good: a URL fails after its timeout with TimedOut, the shortage as its cause", async () => {
  await using http = server();
  const result = await underLimit(
    64,
    http.addr.port,
    `const held = await holdAll();
     const results = await fetchAll(urls(3), { concurrency: 3, timeout: 300 });
     held.forEach((conn) => conn.close());
     console.log(JSON.stringify(summary(results)));`,
  );
  assertEquals(result.ok, 0);
  assertEquals(result.attempts, 1);
  const errors = result.errors as string[];
  assertEquals(errors.length, 3);
  for (const error of errors) {
    assert(
      /^TimedOut: Cannot fetch http:\/\/127\.0\.0\.1:\d+\/\d: no file descriptor came free within the total timeout of 300 ms \(Too many open files \(os error 24\)\)$/
        .test(error),
      error,
    );
  }
  assertEquals(result.causes, ["Too many open files (os error 24)"]);
  // It waited its whole 300 ms for a slot's descriptor: timings.queued says
  // so, as for a URL whose wait ends with one (before: the waits up to its
  // last try only, ~155 ms).
  assertGreater(result.queued as number, 250);
});

Deno.test("fetchAll(): a URL let try again on each tick and failing for want of descriptors each time fails at its timeout, its waits together", async () => {
  await using http = server();
  const result = await underLimit(
    64,
    http.addr.port,
    `const held = await holdAll();
     const started = performance.now();
     const results = await fetchAll(urls(2), { concurrency: 2, timeout: 1_500 });
     const ms = performance.now() - started;
     held.forEach((conn) => conn.close());
     console.log(JSON.stringify({ ms, ...summary(results) }));`,
  );
  assertEquals(result.ok, 0);
  // Before: each failed try armed a new full timeout, past the 1 s tick: for ever.
  assertLess(result.ms as number, 3_000);
  assert((result.ms as number) >= 1_400, String(result.ms));
});

Deno.test("fetchAll(): when a shortage of descriptors ends, waiters of one origin start perOrigin.delay apart, not together", async () => {
  const arrivals: number[] = [];
  await using http = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => {
      arrivals.push(performance.now());
      return new Response("ok");
    },
  );
  const result = await underLimit(
    64,
    http.addr.port,
    `const held = await holdAll();
     const timer = setTimeout(() => held.splice(0).forEach((conn) => conn.close()), 600);
     const results = await fetchAll(urls(4), {
       perOrigin: { concurrency: 4, delay: 200 },
       timeout: 10_000,
     });
     // (Several wait at once: the one let try on each tick backs off, so the
     // origin's next URLs start meanwhile, and wait too.)
     clearTimeout(timer);
     held.forEach((conn) => conn.close());
     console.log(JSON.stringify(summary(results)));`,
  );
  assertEquals(result.ok, 4);
  assertEquals(arrivals.length, 4);
  for (let i = 1; i < 4; i++) {
    // Before: all four within 3 ms once the descriptors came back. (Each gap
    // has the connects' jitter in it: the three together are held to more.)
    assertGreater(arrivals[i]! - arrivals[i - 1]!, 100, `${arrivals}`);
  }
  assertGreater(arrivals[3]! - arrivals[0]!, 3 * 200 - 60);
});

Deno.test("fetchAll(): a URL short of a descriptor is not held back by its own start's delay: it goes once the descriptors come back", async () => {
  await using http = server();
  const result = await underLimit(
    64,
    http.addr.port,
    `const held = await holdAll();
     const timer = setTimeout(() => held.splice(0).forEach((conn) => conn.close()), 100);
     const started = performance.now();
     const results = await fetchAll(urls(1), {
       perOrigin: { delay: 3_000 },
       timeout: 2_000,
     });
     const ms = performance.now() - started;
     clearTimeout(timer);
     held.forEach((conn) => conn.close());
     console.log(JSON.stringify({ ms, ...summary(results) }));`,
  );
  // Before: it waited for the 3 s its own start had reserved, and failed
  // at its 2 s timeout with no request sent.
  assertEquals(result.ok, 1);
  assertLess(result.ms as number, 1_500);
});

Deno.test("fetchAll(): a redirect's hop to another origin short of a descriptor waits for one, and goes on from its hop", async () => {
  const paths: string[] = [];
  await using other = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      paths.push(`other ${new URL(request.url).pathname}`);
      return new Response("ok");
    },
  );
  await using http = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const path = new URL(request.url).pathname;
      if (path !== "/slow-redirect") return new Response("ok"); // holdAll()'s
      paths.push(path);
      // Meanwhile the child takes every descriptor left.
      await new Promise((resolve) => setTimeout(resolve, 400));
      return Response.redirect(`http://127.0.0.1:${other.addr.port}/b`, 302);
    },
  );
  const result = await underLimit(
    64,
    http.addr.port,
    `let held = [];
     const grab = setTimeout(async () => { held = await holdAll(); }, 100);
     // A descriptor comes back only as the crawl's own kept conn is closed.
     const results = await fetchAll([\`http://127.0.0.1:\${port}/slow-redirect\`], { timeout: 5_000 });
     clearTimeout(grab);
     held.forEach((conn) => conn.close());
     console.log(JSON.stringify({ ...summary(results), url: results[0].ok ? results[0].response.url : null }));`,
  );
  assertEquals(result.ok, 1, JSON.stringify(result));
  assertEquals(result.attempts, 1);
  assertEquals(result.url, `http://127.0.0.1:${other.addr.port}/b`);
  assertEquals(paths, ["/slow-redirect", "other /b"]);
});
