/**
 * Micro-benchmarks of one `HttpClient` request on a kept-alive loopback conn:
 * the per-request cost of the client (request bytes, parsing, the body buffer),
 * with as little else as possible. Run: `deno bench --allow-net bench/http_client_bench.ts`.
 */
import { DefaultSelector, HttpClient, type PollableConn } from "../mod.ts";
import { allocate } from "../selector/_slab.ts";

/** A raw server answering every request on a conn with `response`, kept alive. */
function cannedServer(response: Uint8Array): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) {
      (async () => {
        const buf = new Uint8Array(64 * 1024);
        try {
          for (;;) {
            const n = await conn.read(buf);
            if (n === null) break;
            // One request per read on this client (it waits for each response).
            let out = response;
            while (out.length > 0) out = out.subarray(await conn.write(out));
          }
        } catch {
          // Client gone.
        }
      })();
    }
  })();
  return (listener.addr as Deno.NetAddr).port;
}

function canned(size: number): Uint8Array {
  const head = `HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`;
  const out = new Uint8Array(head.length + size);
  new TextEncoder().encodeInto(head, out);
  out.fill(120, head.length);
  return out;
}

const sel = new DefaultSelector();

async function run(client: HttpClient): Promise<void> {
  sel.register(client.pollable, client.events);
  while (client.events !== 0) {
    const ready = await sel.select(5_000);
    client.handle(ready.length > 0 ? ready[0]![1] : 0);
    if (client.events !== 0) sel.modify(client.pollable, client.events);
  }
  sel.unregister(client.pollable);
  if (client.state !== "done") throw client.error;
}

function bench(size: number): void {
  const port = cannedServer(canned(size));
  const url = new URL(`http://127.0.0.1:${port}/`);
  let conn: PollableConn | null = null;
  Deno.bench(`HttpClient GET ${size} B body on a kept-alive conn`, {
    group: `${size}`,
  }, async () => {
    const client = new HttpClient(url, {
      keepAlive: true,
      ...(conn ? { conn } : {}),
    });
    await run(client);
    conn = client.detach();
  });
}

bench(16);
bench(1024);
bench(4096);
bench(64 * 1024);

// What a standalone body costs against a slab cut (the old small-body path),
// isolated from the round trip: the difference per request.
const chunk = new Uint8Array(1024).fill(7);
Deno.bench("1 KiB body copied into its own Uint8Array", {
  group: "alloc",
  baseline: true,
}, () => {
  const body = new Uint8Array(chunk.length);
  body.set(chunk);
});
Deno.bench("1 KiB body copied into a slab cut", { group: "alloc" }, () => {
  const body = allocate(chunk.length);
  body.set(chunk);
});

{
  const size = 64 * 1024 * 1024;
  const port = cannedServer(canned(size));
  const url = new URL(`http://127.0.0.1:${port}/`);
  let conn: PollableConn | null = null;
  Deno.bench("HttpClient GET 64 MiB body on a kept-alive conn", {
    group: "64 MiB",
    n: 30,
    warmup: 3,
  }, async () => {
    const client = new HttpClient(url, {
      keepAlive: true,
      ...(conn ? { conn } : {}),
    });
    await run(client);
    conn = client.detach();
  });
}
