/**
 * The crawl CLI's robots.txt fetch on the engine (examples/crawl/robots_fetch.ts)
 * against loopback servers: bodies past the limit end the transfer, whatever the
 * status, and a redirect's is read on for its Location.
 *
 * @module
 */
import { assertEquals, assertGreater } from "@std/assert";
import type { HttpTap } from "../mod.ts";
import { engineRobotsFetcher } from "../examples/crawl/robots_fetch.ts";
import { rawServer, writeSplit } from "./_raw_http.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A body of `head` then `#` padding, `chunks` × 16 KiB, that notes a cancel. */
function padded(head: string, chunks: number, onCancel: () => void) {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent++ === 0) controller.enqueue(encoder.encode(head));
      else if (sent <= chunks) {
        controller.enqueue(new Uint8Array(16 * 1024).fill(0x23));
      } else controller.close();
    },
    cancel: onCancel,
  });
}

Deno.test("engineRobotsFetcher() ends a body past maxBytes and reports its status, 2xx or not", async () => {
  const cancelled: string[] = [];
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const path = new URL(request.url).pathname;
      const body = padded(
        "User-agent: *\nDisallow: /x\n",
        4096,
        () => void cancelled.push(path),
      );
      return new Response(body, { status: path === "/503" ? 503 : 200 });
    },
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const opened: string[] = [];
  const tap: HttpTap = (info) => ({
    end: (end) => void opened.push(`${info.url} ${end.ok}`),
  });
  const fetchRobots = engineRobotsFetcher({
    engine: { timeout: 5_000, tap },
    maxBytes: 100_000,
  });
  const ok = await fetchRobots(new URL(`${base}/robots.txt`));
  assertEquals(ok.status, 200);
  const body = ok.body as Uint8Array;
  assertEquals(body.length, 100_000);
  assertEquals(
    decoder.decode(body.subarray(0, 27)),
    "User-agent: *\nDisallow: /x\n",
  );
  const busy = await fetchRobots(new URL(`${base}/503`));
  assertEquals(busy.status, 503);
  for (let i = 0; i < 100 && cancelled.length < 2; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assertEquals(cancelled.sort(), ["/503", "/robots.txt"]);
  // The caller's tap saw both exchanges (ended early: not ok).
  assertEquals(opened, [`${base}/robots.txt false`, `${base}/503 false`]);
});

Deno.test("engineRobotsFetcher() reads a redirect's long body to its end and follows its Location", async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/robots.txt") {
        return new Response(padded("moved ", 64, () => {}), {
          status: 301,
          headers: { location: "/real.txt" },
        });
      }
      return new Response("User-agent: *\nDisallow: /y\n");
    },
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const requested: string[] = [];
  const fetchRobots = engineRobotsFetcher({
    engine: { timeout: 5_000 },
    maxBytes: 1000,
    onRequest: (url) => void requested.push(url.pathname),
  });
  const { status, body } = await fetchRobots(new URL(`${base}/robots.txt`));
  assertEquals(status, 200);
  assertEquals(
    decoder.decode(body as Uint8Array),
    "User-agent: *\nDisallow: /y\n",
  );
  assertEquals(requested, ["/robots.txt", "/real.txt"]);
});

Deno.test("engineRobotsFetcher() calls onRequest for each request that goes out, a retry's too", async () => {
  let served = 0;
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () =>
      served++ === 0
        ? new Response("busy", { status: 503 })
        : new Response("User-agent: *\nDisallow: /x\n"),
  );
  const requests: string[] = [];
  const fetchRobots = engineRobotsFetcher({
    engine: { timeout: 5_000, retry: { limit: 1, baseDelay: 1 } },
    onRequest: (url) => void requests.push(url.pathname),
  });
  const result = await fetchRobots(
    new URL(`http://127.0.0.1:${server.addr.port}/robots.txt`),
  );
  assertEquals(result.status, 200);
  assertEquals(requests, ["/robots.txt", "/robots.txt"]);
});

Deno.test("engineRobotsFetcher() spaces a retry and a redirect hop back to one origin by delay", async () => {
  const arrived: [string, number][] = [];
  let busy = 1;
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const path = new URL(request.url).pathname;
      arrived.push([path, performance.now()]);
      if (path === "/robots.txt" && busy-- > 0) {
        return new Response("busy", { status: 503 });
      }
      if (path === "/robots.txt") {
        return new Response(null, {
          status: 301,
          headers: { location: "/real.txt" },
        });
      }
      return new Response("User-agent: *\nDisallow: /x\n");
    },
  );
  const fetchRobots = engineRobotsFetcher({
    engine: { timeout: 5_000, retry: { limit: 1, baseDelay: 1 } },
    delay: 150,
  });
  const result = await fetchRobots(
    new URL(`http://127.0.0.1:${server.addr.port}/robots.txt`),
  );
  assertEquals(result.status, 200);
  assertEquals(arrived.map(([path]) => path), [
    "/robots.txt",
    "/robots.txt",
    "/real.txt",
  ]);
  const gaps = arrived.slice(1).map(([, at], i) => at - arrived[i]![1]);
  // Without the delay: the retry after up to 1 ms, the hop at once.
  for (const gap of gaps) assertGreater(gap, 150 - 5, `gaps ${gaps}`);
});

Deno.test("engineRobotsFetcher() follows a redirect's first non-empty Location, not its fields joined", async () => {
  const requested: string[] = [];
  // Two Location fields on the wire (Deno.serve would join them in one).
  await using server = rawServer(async ({ conn, path }) => {
    requested.push(path);
    await writeSplit(
      conn,
      path === "/robots.txt"
        ? "HTTP/1.1 301 Moved\r\nLocation: \r\nLocation: /real.txt\r\nLocation: /real.txt\r\nContent-Length: 0\r\n\r\n"
        : path === "/real.txt"
        ? "HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\nUser-agent: *\nDisallow: /a"
        : "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    );
    return "keep";
  });
  const fetchRobots = engineRobotsFetcher({
    engine: { timeout: 5_000 },
    maxBytes: 1000,
  });
  const { status, body } = await fetchRobots(
    new URL(server.url("/robots.txt")),
  );
  // Before: "/,%20/real.txt,%20/real.txt", a 404, read as allow-all.
  assertEquals(requested, ["/robots.txt", "/real.txt"]);
  assertEquals(status, 200);
  assertEquals(
    decoder.decode(body as Uint8Array),
    "User-agent: *\nDisallow: /a",
  );
});
