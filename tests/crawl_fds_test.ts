/**
 * API.md 0.2 "Memory and laziness": after an abort or a connect timeout, every
 * conn and pending connect of a crawl is closed, and the process's open sockets
 * are back to where they were within 100 ms (issue 7 item 6).
 */
import { assert, assertEquals, assertInstanceOf } from "@std/assert";
import { fetchAll } from "../mod.ts";
import {
  blackhole,
  listenTcp,
  openSockets,
  settledSockets,
  socketsWithin,
} from "./_net.ts";

/**
 * A TCP listener that accepts and then never answers: TLS handshakes to it stay
 * pending. The accepted sockets are kept (and counted) until disposal.
 */
function silentTls() {
  const listener = listenTcp();
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) accepted.push(conn);
  })();
  return {
    port: listener.addr.port,
    get accepted() {
      return accepted.length;
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting.catch(() => {});
      for (const conn of accepted) conn.close();
    },
  };
}

Deno.test("fetchAll() on abort closes every pending TLS handshake: open sockets are back to the baseline within 100 ms", async () => {
  await using server = silentTls();
  const baseline = await settledSockets();
  const controller = new AbortController();
  const urls = Array.from(
    { length: 20 },
    (_, i) => `https://127.0.0.1:${server.port}/${i}`,
  );
  const crawl = fetchAll(urls, {
    signal: controller.signal,
    connectTimeout: 60_000,
    timeout: 60_000,
  });
  // Wait until every handshake is under way (20 client sockets, 20 accepted).
  for (let i = 0; i < 500 && server.accepted < 20; i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assertEquals(server.accepted, 20);
  assert(openSockets() >= baseline + 40, "the handshakes hold their sockets");
  controller.abort(new Error("stop"));
  const results = await crawl;
  assert(results.every((r) => !r.ok && (r.error as Error).message === "stop"));
  // Only the 20 accepted server-side sockets remain.
  assertEquals(await socketsWithin(baseline + 20, 100), baseline + 20);
});

Deno.test("fetchAll() closes connects that pass connectTimeout at once: no socket outlives the crawl", async () => {
  using hole = await blackhole();
  const baseline = await settledSockets();
  const urls = Array.from(
    { length: 10 },
    (_, i) => `http://127.0.0.1:${hole.port}/${i}`,
  );
  const results = await fetchAll(urls, { connectTimeout: 100 });
  for (const result of results) {
    assert(!result.ok);
    assertInstanceOf(result.error, Deno.errors.TimedOut);
    assert(String(result.error).includes("connect"), String(result.error));
  }
  assertEquals(await socketsWithin(baseline, 100), baseline);
});
