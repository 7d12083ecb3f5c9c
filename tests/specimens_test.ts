/**
 * The crawl's optimized code survives a major collection between crawls
 * (`client/_specimens.ts`): V8 drops the code built on hidden classes no live
 * object has, and between crawls none of a crawl's objects is alive but the
 * specimens.
 */
import { assert, assertEquals } from "@std/assert";

/**
 * Functions of the crawl, the parser and the client whose optimized code
 * embeds the maps of their objects, with names no Deno internals use. Without
 * the specimens, a full collection after a few crawls invalidates each of
 * them ("embedded weak objects cleared").
 */
const OURS = [
  "#accept",
  "#launch",
  "#startReady",
  "#takeFinished",
  "#collect",
  "#checkDeadlines",
  "#statusLine",
  "#endHead",
  "#feed",
];

Deno.test("fetchAll's optimized code is kept across a full GC between crawls, and a dropped class's is not", async () => {
  // In a child with gc() exposed and V8 tracing why it throws code away: warm
  // crawls, then a full collection with no crawl alive. A control class whose
  // objects are all dropped shows that the trace reports such code.
  const mod = new URL("../mod.ts", import.meta.url).href;
  const code = `
    import { fetchAll } from ${JSON.stringify(mod)};
    class Control { a = 0; b = "x"; }
    function controlRead(o) { return o.a + o.b.length; }
    (() => {
      let sum = 0;
      for (let i = 0; i < 200_000; i++) sum += controlRead(new Control());
      if (sum !== 200_000) throw new Error("control");
    })();
    const body = "x".repeat(1024);
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response(body),
    );
    const urls = Array.from(
      { length: 1_500 },
      (_, i) => "http://127.0.0.1:" + server.addr.port + "/" + i,
    );
    for (let i = 0; i < 4; i++) {
      const results = await fetchAll(urls, { concurrency: 16 });
      if (!results.every((r) => r.ok)) throw new Error("a crawl failed");
    }
    globalThis.gc();
    await server.shutdown();
  `;
  const { code: status, stdout, stderr } = await new Deno.Command(
    Deno.execPath(),
    {
      args: [
        "eval",
        "--v8-flags=--expose-gc,--trace-deopt-verbose",
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
  const ours = OURS.filter((name) => dropped.has(name));
  assertEquals(ours, [], `dropped: ${[...dropped].join(", ")}`);
});
