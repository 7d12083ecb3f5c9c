/**
 * A URL's attempts and hops as one result: what a retry starts again from
 * (redirect count, base URL, queue position), what it may not retry, and what
 * its timings and timeouts count across them; also a source left early.
 * Found by mutation testing: each test failed with its bug put back in the
 * code, and no other test did.
 */
import {
  assert,
  assertEquals,
  assertGreaterOrEqual,
  assertInstanceOf,
} from "@std/assert";
import { fetchAll, fetchEach, HttpParseError } from "../mod.ts";
import { failed, ok, text } from "./_client_util.ts";
import { rawServer, writeSplit } from "./_raw_http.ts";

Deno.test("fetchAll() aborted: a URL that waited queued the whole time reports that wait in timings.queued", async () => {
  const { promise: stop, resolve } = Promise.withResolvers<void>();
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async () => {
      await stop;
      return new Response("late");
    },
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 200);
  try {
    const results = await fetchAll([`${base}/slow`, `${base}/waits`], {
      concurrency: 1,
      signal: controller.signal,
    });
    assertEquals(results[1]!.attempts, 0, "never started");
    failed(results[1]);
    // It waited for the only slot from the start until the abort.
    assertGreaterOrEqual(results[1]!.timings.queued, 150);
    assertEquals(results[1]!.timings.total, 0);
  } finally {
    clearTimeout(timer);
    resolve();
  }
});

Deno.test("fetchAll() idleTimeout does not fire while a request body still goes out after an early answer's head", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  // Sent over ~2 s at the reads below, against an idle timeout of 1 s: what
  // the kernel holds when the last byte is sent drains in ~0.2 s before the
  // answer, well inside it on a loaded machine too.
  const BODY = 48 * 1024 * 1024;
  const served = (async () => {
    const conn = await listener.accept();
    try {
      // The head at once, before the upload: the client reads it and sends on.
      await conn.write(
        new TextEncoder().encode(
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        ),
      );
      // Take the upload slowly, saying nothing meanwhile.
      const buf = new Uint8Array(256 * 1024);
      let read = 0;
      let headSeen = false;
      while (read < BODY) {
        const n = await conn.read(buf);
        if (n === null) return;
        if (!headSeen) {
          // The request head comes first; count body bytes after it.
          const s = new TextDecoder("latin1").decode(buf.subarray(0, n));
          const end = s.indexOf("\r\n\r\n");
          if (end >= 0) {
            headSeen = true;
            read += n - (end + 4);
          }
        } else read += n;
        await new Promise((resolve) => setTimeout(resolve, 12));
      }
      await conn.write(new TextEncoder().encode("4\r\ndone\r\n0\r\n\r\n"));
    } catch {
      // The client gave up: its result says so.
    } finally {
      conn.close();
    }
  })();
  try {
    const [result] = await fetchAll([{
      url: `http://127.0.0.1:${port}/upload`,
      method: "POST",
      body: new Uint8Array(BODY),
    }], { idleTimeout: 1_000, timeout: 20_000 });
    assertEquals(text(ok(result).body), "done");
  } finally {
    await served;
    listener.close();
  }
});

Deno.test("fetchAll() idleTimeout does not run while a redirect's hop waits queued behind its origin's pause", async () => {
  await using target = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) =>
      new URL(request.url).pathname === "/limited"
        ? new Response("slow down", {
          status: 503,
          headers: { "retry-after": "10" },
        })
        : new Response("hop"),
  );
  const targetBase = `http://127.0.0.1:${target.addr.port}`;
  await using from = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => Response.redirect(`${targetBase}/hop`, 302),
  );
  // The 503 pauses the target origin for 400 ms (maxDelay); the redirect's hop
  // waits that long queued, four times its idle limit: no silence of a server's.
  const results = await fetchAll([
    `${targetBase}/limited`,
    `http://127.0.0.1:${from.addr.port}/r`,
  ], {
    concurrency: 1,
    idleTimeout: 100,
    timeout: 5_000,
    retry: { maxDelay: 400 },
  });
  assertEquals(ok(results[0]).status, 503);
  assertEquals(ok(results[1]).status, 200);
  assertGreaterOrEqual(
    results[1]!.timings.queued,
    250,
    "the hop waited queued",
  );
});

Deno.test("fetchAll() a retry whose backoff ended goes ahead of its origin's waiting URLs, not behind them", async () => {
  const paths: string[] = [];
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const path = new URL(request.url).pathname;
      paths.push(path);
      return path === "/a" && paths.length === 1
        ? new Response("busy", { status: 503 })
        : new Response("ok");
    },
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const results = await fetchAll(
    ["/a", "/b", "/c", "/d"].map((path) => base + path),
    {
      perOrigin: { concurrency: 1 },
      retry: { limit: 1, baseDelay: 0 },
    },
  );
  for (const result of results) ok(result);
  assertEquals(results[0]!.attempts, 2);
  assertEquals(paths, ["/a", "/a", "/b", "/c", "/d"]);
});

Deno.test("fetchAll() retries PUT and DELETE on a listed status (idempotent, RFC 9110 §9.2.2), with the same body", async () => {
  const seen: string[] = [];
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      seen.push(`${request.method} ${await request.text()}`);
      // Each method's first request is refused once.
      return seen.filter((s) => s.startsWith(request.method)).length === 1
        ? new Response("busy", { status: 503 })
        : new Response("ok");
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}/`;
  const results = await fetchAll([
    { url, method: "PUT", body: "v1" },
    { url, method: "DELETE" },
  ], { concurrency: 1, retry: { limit: 1, baseDelay: 0 } });
  for (const result of results) {
    assertEquals(ok(result).status, 200);
    assertEquals(result.attempts, 2);
  }
  assertEquals(seen, ["PUT v1", "PUT v1", "DELETE ", "DELETE "]);
});

Deno.test("fetchAll() after a retry resolves a relative Location against the URL requested, not the last attempt's hop", async () => {
  const paths: string[] = [];
  let pages = 0;
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const path = new URL(request.url).pathname;
      paths.push(path);
      if (path === "/dir/start") {
        return new Response(null, {
          status: 302,
          headers: { location: "sub/page" },
        });
      }
      if (path === "/dir/sub/page") {
        return pages++ === 0
          ? new Response("busy", { status: 503 })
          : new Response("page");
      }
      return new Response("wrong", { status: 404 });
    },
  );
  const [result] = await fetchAll(
    [`http://127.0.0.1:${server.addr.port}/dir/start`],
    { retry: { limit: 1, baseDelay: 0 } },
  );
  assertEquals(ok(result).status, 200);
  assertEquals(result!.attempts, 2);
  assertEquals(paths, [
    "/dir/start",
    "/dir/sub/page",
    "/dir/start",
    "/dir/sub/page",
  ]);
});

Deno.test("fetchAll() counts the 20-redirect limit per attempt: a retry starts again from the URL with no redirect counted", async () => {
  let ends = 0;
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const path = new URL(request.url).pathname;
      const hop = /^\/r\/(\d+)$/.exec(path);
      if (hop !== null) {
        // 12 redirects to /end: within the limit on each attempt, not on two.
        const n = Number(hop[1]);
        return new Response(null, {
          status: 302,
          headers: { location: n < 11 ? `/r/${n + 1}` : "/end" },
        });
      }
      return ends++ === 0
        ? new Response("busy", { status: 503 })
        : new Response("done");
    },
  );
  const [result] = await fetchAll(
    [`http://127.0.0.1:${server.addr.port}/r/0`],
    { retry: { limit: 1, baseDelay: 0 } },
  );
  assertEquals(ok(result).status, 200);
  assertEquals(result!.attempts, 2);
  assertEquals(new URL(ok(result).url).pathname, "/end");
  assertEquals(ends, 2);
});

Deno.test("fetchAll() does not retry a URL whose body was cut short after part of it reached its sink: it fails with the cut", async () => {
  await using server = rawServer(async ({ conn }) => {
    await writeSplit(
      conn,
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
    );
    return "close";
  });
  const written: string[] = [];
  const sink = new WritableStream<Uint8Array>({
    write: (chunk) => void written.push(new TextDecoder().decode(chunk)),
  });
  const [result] = await fetchAll([{ url: server.url("/"), sink }], {
    retry: { limit: 2, baseDelay: 0 },
  });
  const error = failed(result);
  assertInstanceOf(error, HttpParseError);
  assertEquals(error.code, "truncated-body");
  assertEquals(result!.attempts, 1);
  assertEquals(server.requests, 1, "not sent again");
  assertEquals(written.join(""), "hello");
});

/** A sink function recording what each sink it made got, and how it ended. */
function sinkMaker() {
  const made: { url: string; text: string; end: unknown }[] = [];
  const make = (url: string) => {
    const record = { url, text: "", end: "open" as unknown };
    made.push(record);
    return new WritableStream<Uint8Array>({
      write: (chunk) => void (record.text += new TextDecoder().decode(chunk)),
      close: () => void (record.end = "closed"),
      abort: (reason) => void (record.end = reason),
    });
  };
  return { made, make };
}

Deno.test("fetchAll() retries a URL cut short mid-body when its sink is a function: the cut sink is aborted with the cut, the retry writes the whole body to a new one", async () => {
  await using server = rawServer(async ({ conn, connIndex }) => {
    await writeSplit(
      conn,
      connIndex === 0
        ? "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello"
        : "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhelloworld",
    );
    return "close";
  });
  const { made, make } = sinkMaker();
  const [result] = await fetchAll([{ url: server.url("/"), sink: make }], {
    retry: { limit: 2, baseDelay: 0 },
  });
  const response = ok(result);
  assertEquals(result!.attempts, 2);
  assertEquals(response.body.length, 0, "the body went to the sink");
  assertEquals(made.length, 2);
  assertEquals(made.map((m) => m.url), [server.url("/"), server.url("/")]);
  assertEquals(made[0]!.text, "hello");
  assertInstanceOf(made[0]!.end, HttpParseError);
  assertEquals(made[1]!.text, "helloworld");
  assertEquals(made[1]!.end, "closed");
});

Deno.test("fetchAll() sink function: a retried status keeps the sink its body never reached (one call per URL); a crawl-wide one serves every URL", async () => {
  let calls = 0;
  await using server = rawServer(async ({ conn, path }) => {
    const busy = path === "/busy" && calls++ === 0;
    await writeSplit(
      conn,
      busy
        ? "HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy"
        : `HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`,
    );
    return "close";
  });
  const { made, make } = sinkMaker();
  const urls = ["/busy", "/a", "/bb"].map((path) => server.url(path));
  const results = await fetchAll(urls, {
    sink: make,
    retry: { limit: 1, baseDelay: 0 },
    concurrency: 1,
  });
  assertEquals(results.map((r) => r.ok && r.attempts), [2, 1, 1]);
  assertEquals(made.map((m) => [m.url, m.text, m.end]), [
    [urls[0], "/busy", "closed"],
    [urls[1], "/a", "closed"],
    [urls[2], "/bb", "closed"],
  ]);
});

Deno.test("fetchAll() sink function that throws or returns no unlocked WritableStream fails its URL alone", async () => {
  await using server = rawServer(async ({ conn }) => {
    await writeSplit(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    return "close";
  });
  const boom = new Error("no disk");
  const locked = new WritableStream<Uint8Array>();
  locked.getWriter();
  const results = await fetchAll([
    {
      url: server.url("/throws"),
      sink: () => {
        throw boom;
      },
    },
    { url: server.url("/number"), sink: () => 3 as unknown as WritableStream },
    { url: server.url("/locked"), sink: () => locked },
    { url: server.url("/fine") },
  ]);
  assertEquals(failed(results[0]), boom);
  for (const result of [results[1], results[2]]) {
    const error = failed(result);
    assertInstanceOf(error, TypeError);
    assert(error.message.includes("sink function"), error.message);
  }
  ok(results[3]);
});

Deno.test("fetchEach() left early (break) returns a sync generator source, so its finally runs, as for..of does", async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("x"),
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  let pulled = 0;
  let cleanedUp = false;
  function* urls() {
    try {
      for (let i = 0; i < 1_000; i++) {
        pulled++;
        yield `${base}/${i}`;
      }
    } finally {
      cleanedUp = true;
    }
  }
  let seen = 0;
  for await (
    const entry of fetchEach(urls(), { concurrency: 2, maxQueued: 2 })
  ) {
    assert(entry.result.ok);
    if (++seen === 1) break;
  }
  assert(pulled < 1_000, `pulled ${pulled}`);
  assertEquals(cleanedUp, true, "the source's finally ran");
});

Deno.test("fetchEach() left early (break) asks an endless async iterator for nothing more, though its next() never answers done after return()", async () => {
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("x"),
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  let calls = 0;
  let returned = false;
  let i = 0;
  // An iterator object, not an async generator: after return() its next()
  // still yields URLs, as a hand-written one may.
  const source: AsyncIterable<string> = {
    [Symbol.asyncIterator]: () => ({
      async next() {
        calls++;
        await new Promise((r) => setTimeout(r, 1));
        return { done: false, value: `${base}/${i++}` };
      },
      return() {
        returned = true;
        return Promise.resolve({ done: true, value: undefined });
      },
    }),
  };
  let seen = 0;
  for await (const entry of fetchEach(source, { concurrency: 2 })) {
    assert(entry.result.ok);
    if (++seen === 5) break;
  }
  assert(returned, "return() was called");
  const atBreak = calls;
  await new Promise((r) => setTimeout(r, 100));
  assertEquals(calls, atBreak, "next() called after the consumer left");
});

Deno.test("fetchAll() sends a request on a stale keep-alive conn again once only: the fresh conn closed unanswered too fails it", async () => {
  await using server = rawServer(async ({ connIndex, requestOnConn, conn }) => {
    if (connIndex === 0 && requestOnConn === 0) {
      await writeSplit(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
      return "keep";
    }
    // The kept conn's next request, and every request after: closed unanswered.
    return "close";
  });
  const results = await fetchAll([server.url("/1"), server.url("/2")], {
    concurrency: 1,
    timeout: 2_000,
  });
  assertEquals(ok(results[0]).status, 200);
  const error = failed(results[1]);
  assertInstanceOf(error, HttpParseError);
  assertEquals(error.code, "empty-response");
  // The kept conn, then one fresh conn for the replay: no more.
  assertEquals(server.connections, 2);
  assertEquals(server.requests, 3);
});

Deno.test("fetchAll() timings.total runs from the first attempt's start, across a retry, to the end", async () => {
  let served = 0;
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async () => {
      if (served++ === 0) {
        // The first attempt takes 300 ms, then asks for a retry at once.
        await new Promise((resolve) => setTimeout(resolve, 300));
        return new Response("busy", {
          status: 503,
          headers: { "retry-after": "0" },
        });
      }
      return new Response("ok");
    },
  );
  const [result] = await fetchAll(
    [`http://127.0.0.1:${server.addr.port}/`],
    { retry: { limit: 1 } },
  );
  assertEquals(ok(result).status, 200);
  assertEquals(result!.attempts, 2);
  // API.md: `total` is "first attempt start to end", not the last attempt's.
  assertGreaterOrEqual(result!.timings.total, 280);
});
