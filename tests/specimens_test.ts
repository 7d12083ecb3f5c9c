/**
 * The crawl's optimized code survives a major collection between crawls
 * (`client/_specimens.ts`): V8 drops the code built on hidden classes no live
 * object has, and between crawls none of a crawl's objects is alive but the
 * specimens.
 */
import { assert, assertEquals } from "@std/assert";

/**
 * Functions of the crawl, the parser, the client and the gzip decoder whose
 * optimized code embeds the maps of their objects, with names no Deno
 * internals use. Without the specimens, a full collection after a few crawls
 * invalidates each of them ("embedded weak objects cleared").
 */
const OURS = [
  "#accept",
  "#launch",
  "#startReady",
  "#collect",
  "#checkDeadlines",
  "#statusLine",
  "#endHead",
  "#feed",
  "#drain",
  "ZlibEngine",
];

Deno.test("fetchAll's optimized code is kept across a full GC between crawls of plain and gzip bodies, and a dropped class's is not", async () => {
  // In a child with gc() exposed and V8 tracing what it compiles and why it
  // throws code away: warm crawls, then a full collection with no crawl alive.
  // A control class whose objects are all dropped shows that the trace
  // reports such code.
  const mod = new URL("../mod.ts", import.meta.url).href;
  const code = `
    import { fetchAll } from ${JSON.stringify(mod)};
    import { gzipSync } from "node:zlib";
    class Control { a = 0; b = "x"; }
    function controlRead(o) { return o.a + o.b.length; }
    // Optimized now, on this thread: left to V8's helper thread, a loaded
    // machine could still be compiling it at the collection.
    const optimizeNow = new Function(
      "f",
      "make",
      "%PrepareFunctionForOptimization(f); f(make()); f(make());" +
        "%OptimizeFunctionOnNextCall(f); f(make());",
    );
    const control = () => optimizeNow(controlRead, () => new Control());
    control();
    const body = "x".repeat(1024);
    const gzipped = gzipSync(body);
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (request) =>
        request.url.endsWith("/gz")
          ? new Response(gzipped, { headers: { "content-encoding": "gzip" } })
          : new Response(body),
    );
    const urls = Array.from(
      { length: 1_500 },
      (_, i) => "http://127.0.0.1:" + server.addr.port + (i % 2 ? "/gz" : "/"),
    );
    for (let i = 0; i < 4; i++) {
      const results = await fetchAll(urls, { concurrency: 16 });
      if (!results.every((r) => r.ok && r.response.body.length === 1024)) {
        throw new Error("a crawl failed");
      }
    }
    // The crawls' collections may have dropped it already: again, just before.
    control();
    globalThis.gc();
    await server.shutdown();
  `;
  const { code: status, stdout, stderr } = await new Deno.Command(
    Deno.execPath(),
    {
      args: [
        "eval",
        "--v8-flags=--expose-gc,--allow-natives-syntax,--trace-opt,--trace-deopt-verbose",
        code,
      ],
      stdout: "piped",
      stderr: "piped",
    },
  ).output();
  assertEquals(status, 0, new TextDecoder().decode(stderr));
  // V8 writes its trace through its own buffer: its lines and the child's
  // do not keep their order, so the whole run is read. Within a crawl the
  // crawl's objects are alive; only between crawls could their maps go.
  const out = new TextDecoder().decode(stdout);
  const optimized = new Set(
    [...out.matchAll(
      /completed (?:compiling|optimizing)[^\n]*?<JSFunction ([^ >]*)/g,
    )]
      .map((m) => m[1]),
  );
  // "[marking dependent code ... <SharedFunctionInfo NAME> ... reason: embedded weak objects cleared]"
  const dropped = new Set(
    [...out.matchAll(
      /<SharedFunctionInfo ([^>]*)>[^\n]*embedded weak objects cleared/g,
    )].map((m) => m[1]),
  );
  assert(
    dropped.has("controlRead"),
    `the control's code was not reported dropped: ${[...dropped].join(", ")}`,
  );
  // Not vacuous: most of the functions watched had optimized code to lose.
  const compiled = OURS.filter((name) => optimized.has(name));
  assert(
    compiled.length >= OURS.length / 2,
    `only ${compiled.join(", ")} of ${OURS.join(", ")} were optimized`,
  );
  const ours = OURS.filter((name) => dropped.has(name));
  assertEquals(ours, [], `dropped: ${[...dropped].join(", ")}`);
});
