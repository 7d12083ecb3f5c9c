/**
 * A response that came in time but is read late, because the loop did not run
 * (the caller's code held it, or the process was stopped), is not failed as a
 * timeout: reads that settled are taken before the deadlines are checked, as a
 * connect that settled is. The server runs in a child process, so it answers
 * while this process's loop is held.
 */
import { assert, assertEquals } from "@std/assert";
import { DefaultSelector, fetchAll, HttpClient } from "../mod.ts";
import { within } from "./_net.ts";

/** `/slow/<ms>` answers after that long; `/drip` sends a byte every 100 ms, 10 times. */
const SERVER = `
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen({ port }) { console.log(port); } }, async (req) => {
  const path = new URL(req.url).pathname;
  if (path === "/drip") {
    let sent = 0;
    return new Response(new ReadableStream({
      async pull(controller) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        if (sent++ === 10) controller.close();
        else controller.enqueue(new Uint8Array([120]));
      },
    }));
  }
  const slow = /^\\/slow\\/(\\d+)$/.exec(path);
  if (slow) await new Promise((resolve) => setTimeout(resolve, Number(slow[1])));
  return new Response("answer " + path);
});
// Until the test kills it, 60 s at most.
setTimeout(() => server.shutdown(), 60_000);
`;

/** The server above in a child process, stopped on disposal. */
async function childServer() {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--no-config", "--allow-net=127.0.0.1", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(SERVER));
  await writer.close();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await within(reader.read(), 30_000, "child server port");
  const port = Number(value?.trim());
  return {
    base: `http://127.0.0.1:${port}`,
    async [Symbol.asyncDispose]() {
      child.kill();
      await reader.cancel().catch(() => {});
      await child.status;
    },
  };
}

/** Holds this process's loop for `ms`, as a caller's synchronous code does. */
function hold(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* the loop does not run */ }
}

/** An `onProgress` that holds the loop for `ms` at the first URL's end only. */
function holdOnce(ms: number): () => void {
  let held = false;
  return () => {
    if (held) return;
    held = true;
    hold(ms);
  };
}

Deno.test("fetchAll(): a response that came while onProgress held the loop past the URL's timeout is taken, not failed as TimedOut", async () => {
  await using server = await childServer();
  const results = await fetchAll(
    [`${server.base}/fast`, `${server.base}/slow/150`],
    {
      timeout: 1_000,
      onProgress: holdOnce(1_500),
    },
  );
  assertEquals(results.map((r) => r.ok), [true, true]);
  const late = results[1]!;
  assert(late.ok);
  assertEquals(
    new TextDecoder().decode(late.response.body),
    "answer /slow/150",
  );
});

Deno.test("fetchAll(): bytes that kept coming while onProgress held the loop past idleTimeout are taken, not failed as an idle timeout", async () => {
  await using server = await childServer();
  const results = await fetchAll(
    [`${server.base}/drip`, `${server.base}/slow/200`],
    {
      idleTimeout: 400,
      // The /slow one ends first, mid-drip: the loop is held then.
      onProgress: holdOnce(800),
    },
  );
  assertEquals(results.map((r) => r.ok), [true, true]);
  const drip = results[0]!;
  assert(drip.ok);
  assertEquals(drip.response.body.length, 10);
});

Deno.test("fetchAll(): a response still not whole at its timeout after the loop was held fails as TimedOut all the same", async () => {
  await using server = await childServer();
  const results = await fetchAll(
    [`${server.base}/fast`, `${server.base}/slow/3000`],
    {
      timeout: 1_000,
      onProgress: holdOnce(1_200),
    },
  );
  assert(results[0]!.ok);
  const late = results[1]!;
  assert(!late.ok);
  assert(late.error instanceof Deno.errors.TimedOut, String(late.error));
});

Deno.test("HttpClient.handle(EVENT_READ) takes a response that came in time though the caller's loop saw it past the timeout", async () => {
  await using server = await childServer();
  using sel = new DefaultSelector();
  const client = new HttpClient(`${server.base}/slow/100`, { timeout: 500 });
  sel.register(client.pollable, client.events);
  let held = false;
  for (let i = 0; i < 100 && client.events !== 0; i++) {
    const batch = await sel.select(1_000);
    for (const [, mask] of batch) client.handle(mask);
    if (client.events !== 0) {
      sel.modify(client.pollable, client.events);
      if (client.state === "receiving" && !held) {
        // The request is out; the answer comes in 100 ms, read in 800.
        held = true;
        hold(800);
      }
    }
  }
  sel.unregister(client.pollable);
  assert(held);
  assertEquals(client.state, "done", String(client.error));
  assertEquals(client.response?.status, 200);
  client.close();
});
