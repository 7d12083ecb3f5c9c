/**
 * As in Python, an open socket does not keep a process alive: a script that
 * ends with a listener or conn open, registered or not, exits. A pending
 * `select()` does keep it alive, until a key is ready or its timeout. Each case
 * runs in a child Deno.
 */
import { assert, assertEquals, assertLess } from "@std/assert";
import { runScript } from "./_net.ts";

const MOD = new URL("../mod.ts", import.meta.url).href;

/** Runs `body` in a child and says how long it took to exit (ms). */
async function exitsIn(
  body: string,
  args: string[] = [],
): Promise<{ ms: number; stdout: string }> {
  const started = performance.now();
  const { stdout, stderr, success } = await runScript(
    `import { DefaultSelector, EVENT_READ, PollableConn, PollableListener } from ${
      JSON.stringify(MOD)
    };
const args = ${JSON.stringify(args)};
${body}
console.log("end");`,
    ["--allow-net=127.0.0.1"],
    { timeoutMs: 20_000 },
  );
  assert(success, stderr);
  return { ms: performance.now() - started, stdout };
}

for (
  const [name, body] of <Array<[string, string]>> [
    [
      "a listener registered, no select() pending",
      `const sel = new DefaultSelector();
       sel.register(PollableListener.listen({ hostname: "127.0.0.1", port: 0 }), EVENT_READ);`,
    ],
    [
      "a listener unregistered after a select()",
      `const sel = new DefaultSelector();
       const listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
       sel.register(listener, EVENT_READ);
       await sel.select(10);
       sel.unregister(listener);`,
    ],
    [
      "a conn to a silent peer and a listener registered, the selector closed",
      `const sel = new DefaultSelector();
       const listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
       const conn = PollableConn.connect(listener.addr);
       sel.register(conn, EVENT_READ);
       sel.register(listener, EVENT_READ);
       await sel.select(100);
       sel.close();`,
    ],
  ]
) {
  Deno.test(`A script that ends with ${name} exits at once, as in Python`, async () => {
    const { ms, stdout } = await exitsIn(body);
    assertEquals(stdout, "end\n");
    // Before: alive until the peer wrote or closed (killed at 15 s).
    assertLess(ms, 5_000);
  });
}

Deno.test("A pending select() with no timeout keeps the process alive until a key is ready", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    using conn = await listener.accept();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await conn.write(new TextEncoder().encode("late"));
    // Until the child has it and closes.
    await conn.read(new Uint8Array(1)).catch(() => null);
  })();
  const { ms, stdout } = await exitsIn(
    `const sel = new DefaultSelector();
     const conn = PollableConn.connect({ hostname: "127.0.0.1", port: Number(args[0]) });
     sel.register(conn, EVENT_READ);
     const ready = await sel.select();
     console.log(ready.length, new TextDecoder().decode(conn.recv()));
     conn.close();`,
    [String(listener.addr.port)],
  );
  await serving;
  // Not "Promise resolution is still pending but the event loop has already
  // resolved": the select waited for the server's bytes, 300 ms on.
  assertEquals(stdout, "1 late\nend\n");
  assert(ms >= 300);
});
