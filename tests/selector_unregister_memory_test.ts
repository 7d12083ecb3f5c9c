import { assert, assertEquals, assertLessOrEqual } from "@std/assert";
import { runScript } from "./_net.ts";

// API.md: "memory does not grow". A selector that outlives its pollables (one
// per crawl, conns registered and unregistered by the thousand) must not keep a
// reference to an unregistered pollable anywhere, its fd lookup table included.
Deno.test("Selector.unregister() drops every reference to the pollable: unregistered, closed listeners are collected while the selector lives", async () => {
  const mod = new URL("../mod.ts", import.meta.url).href;
  const script = `
    import { DefaultSelector, EVENT_READ, PollableListener } from ${
    JSON.stringify(mod)
  };
    const sel = new DefaultSelector();
    const refs = [];
    for (let i = 0; i < 20; i++) {
      const listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
      sel.register(listener, EVENT_READ);
      refs.push(new WeakRef(listener));
      sel.unregister(listener.fd);
      listener.close();
    }
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      globalThis.gc();
    }
    console.log(JSON.stringify({
      alive: refs.filter((r) => r.deref() !== undefined).length,
      size: sel.getMap().size,
    }));
    sel.close();
  `;
  const { stdout, stderr, success } = await runScript(script, [
    "--v8-flags=--expose-gc",
    "--allow-net",
  ], { timeoutMs: 20_000 });
  assert(success, stderr);
  const { alive, size } = JSON.parse(stdout);
  assertEquals(size, 0);
  // Deno may hold on to the last one or two resources it touched; the other
  // eighteen have nothing keeping them.
  assertLessOrEqual(
    alive,
    2,
    `${alive} of 20 unregistered listeners still alive`,
  );
});
