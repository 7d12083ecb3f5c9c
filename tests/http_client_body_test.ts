import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertThrows,
} from "@std/assert";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { spy } from "@std/testing/mock";
import {
  DefaultSelector,
  EVENT_READ,
  fetchAll,
  HttpClient,
  HttpParseError,
} from "../mod.ts";
import { kForget } from "../client/http_client.ts";
import {
  containsText,
  delay,
  drive,
  latin1,
  readHead,
  recordingServer,
  scriptedServer,
  untilClosed,
  writeAll,
} from "./_client_util.ts";
import { bytesEqual, concat } from "./_net.ts";

const TOKEN = "Bearer s3cr3t-t0k3n-0123456789";

/** A body of `n` bytes whose content depends on the position (so a shift shows). */
function pattern(n: number, seed = 0): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed + (i >> 10)) & 0xff;
  return out;
}

/** Serves `reply(path)` for each request, then closes the conn. */
function replyServer(reply: (path: string) => Uint8Array | string) {
  return scriptedServer(async (conn) => {
    const head = await readHead(conn);
    await writeAll(conn, reply(head.split(" ")[1] ?? "/"));
  });
}

function response(body: Uint8Array | string, extra = ""): Uint8Array {
  const bytes = typeof body === "string"
    ? new TextEncoder().encode(body)
    : body;
  const head = new TextEncoder().encode(
    `HTTP/1.1 200 OK\r\nContent-Length: ${bytes.length}\r\n${extra}\r\n`,
  );
  const out = new Uint8Array(head.length + bytes.length);
  out.set(head);
  out.set(bytes, head.length);
  return out;
}

Deno.test("HttpClient response.body.buffer holds that body only, never another request's Authorization", async () => {
  await using server = replyServer((path) =>
    path === "/gz"
      ? response(
        gzipSync("compressed small body"),
        "Content-Encoding: gzip\r\n",
      )
      : path === "/chunked"
      ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
      : response(`small body of ${path}`)
  );
  // Start all together: request bytes, read buffers and bodies are made side by side.
  const secret = new HttpClient(server.url("/secret"), {
    headers: { authorization: TOKEN },
  });
  const others = ["/a", "/gz", "/chunked", "/b"].map((path) =>
    new HttpClient(server.url(path))
  );
  await Promise.all([secret, ...others].map((c) => drive(c)));
  for (const client of [secret, ...others]) {
    assertEquals(client.state, "done", String(client.error));
    const body = client.response!.body;
    assertEquals(body.byteOffset, 0);
    assertEquals(body.buffer.byteLength, body.length, client.url.pathname);
    assert(!containsText(new Uint8Array(body.buffer), "s3cr3t"));
  }
  assertEquals(latin1(others[1]!.response!.body), "compressed small body");
  assertEquals(latin1(others[2]!.response!.body), "abcde");
});

Deno.test("HttpClient response.body of a large Content-Length body is standalone and exact", async () => {
  const big = pattern(3 * 1024 * 1024 + 17);
  await using server = replyServer(() => response(big));
  const client = new HttpClient(server.url("/big"));
  await drive(client);
  const body = client.response!.body;
  assertEquals(body.buffer.byteLength, big.length);
  assert(bytesEqual(body, big));
});

Deno.test("HttpClient fails a body announced with Content-Length 1e12 or 1e14 and cut short with HttpParseError, not RangeError", async () => {
  // 1e14 is past what an ArrayBuffer may even reserve: the buffer grows by copying.
  const sent = pattern(2 * 1024 * 1024 + 3);
  await using server = replyServer((path) =>
    `HTTP/1.1 200 OK\r\nContent-Length: ${path.slice(1)}\r\n\r\n${latin1(sent)}`
  );
  for (const length of ["1000000000000", "100000000000000"]) {
    for (const sink of [undefined, new WritableStream<Uint8Array>()]) {
      const client = new HttpClient(
        server.url(`/${length}`),
        sink ? { sink } : {},
      );
      await drive(client);
      assertEquals(client.state, "failed");
      assert(!(client.error instanceof RangeError), String(client.error));
      assertInstanceOf(client.error, HttpParseError);
      assertEquals(client.error.code, "truncated-body");
    }
  }
});

Deno.test("HttpClient reads a body straight into its buffer when the head came alone", async () => {
  const body = pattern(100_000, 9);
  await using server = scriptedServer(async (conn) => {
    await readHead(conn);
    await writeAll(
      conn,
      `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    await delay(30); // the head is parsed (and the next read aimed) before the body comes
    await writeAll(conn, body);
  });
  for (const sink of [false, true]) {
    const chunks: Uint8Array[] = [];
    const client = new HttpClient(
      server.url("/"),
      sink
        ? { sink: new WritableStream({ write: (c) => void chunks.push(c) }) }
        : {},
    );
    await drive(client);
    assertEquals(client.state, "done");
    const got = sink ? concat(chunks) : client.response!.body;
    assert(bytesEqual(got, body));
  }
});

Deno.test("HttpClient returns empty and chunked-in-pieces bodies as standalone arrays", async () => {
  await using server = scriptedServer(async (conn) => {
    const head = await readHead(conn);
    if (head.startsWith("HEAD")) {
      await writeAll(conn, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
      return;
    }
    await writeAll(
      conn,
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    for (const part of ["abc", "defgh", "ij"]) {
      await delay(10);
      await writeAll(conn, `${part.length}\r\n${part}\r\n`);
    }
    await writeAll(conn, "0\r\n\r\n");
  });
  const head = new HttpClient(server.url("/"), { method: "HEAD" });
  await drive(head);
  assertEquals(head.response!.body.length, 0);
  assertEquals(head.response!.body.buffer.byteLength, 0);
  const chunked = new HttpClient(server.url("/"));
  await drive(chunked);
  assertEquals(latin1(chunked.response!.body), "abcdefghij");
  assertEquals(chunked.response!.body.buffer.byteLength, 10);
});

Deno.test("HttpClient passes Content-Encoding: identity bodies through", async () => {
  await using server = replyServer(() =>
    response("plain", "Content-Encoding: identity\r\n")
  );
  const client = new HttpClient(server.url("/"));
  await drive(client);
  assertEquals(latin1(client.response!.body), "plain");
});

Deno.test("HttpClient decodes a 20 MiB body in slices with turns in between, with or without a sink", async () => {
  const size = 20 * 1024 * 1024;
  // Brotli turns 20 MiB of one byte into 4 KB (quality 1; the default 11
  // takes ~370 ms for 40 bytes): they arrive in one read, so only the slice
  // budget (not the read size) can split the decoding.
  const br = oneByteBr(size);
  await using server = replyServer(() =>
    response(br, "Content-Encoding: br\r\n")
  );
  const whole = new HttpClient(server.url("/"), { timeout: 30_000 });
  let bufferedWaits = 0;
  await drive(whole, {
    onRound: () => {
      if (whole.state === "receiving" && whole.waiting !== null) {
        bufferedWaits++;
      }
    },
  });
  assert(bufferedWaits >= 2, `${bufferedWaits} waits`);
  assertEquals(whole.state, "done", String(whole.error));
  const body = whole.response!.body;
  assertEquals(body.length, size);
  assertEquals(body.buffer.byteLength, size);
  assert(body.every((b) => b === 97));

  // A sink that never pushes back: only the slice budget makes the client yield.
  let received = 0;
  const sink = new WritableStream<Uint8Array>({
    write(chunk) {
      received += chunk.length;
    },
  }, { highWaterMark: 1e9 });
  const sliced = new HttpClient(server.url("/"), { timeout: 30_000, sink });
  let waits = 0;
  await drive(sliced, {
    onRound: () => {
      if (sliced.state === "receiving" && sliced.waiting !== null) waits++;
    },
  });
  assertEquals(sliced.state, "done", String(sliced.error));
  assertEquals(received, size);
  assert(waits >= 2, `${waits} waits`);
});

/** 9 MiB of one byte as br at quality 1 (the default 11 takes ~200 ms). */
function nineMiBBr(): Uint8Array {
  return oneByteBr(9 * 1024 * 1024);
}

/** `size` bytes of one byte as br, at quality 1: the default 11 is ~20x slower. */
function oneByteBr(size: number): Uint8Array {
  return brotliCompressSync(new Uint8Array(size).fill(97), {
    params: { [constants.BROTLI_PARAM_QUALITY]: 1 },
  });
}

/**
 * Drives `client` until its decoding body waits for a turn, each `handle()`
 * called 11 ms after its select: with no decode's timer turn in the 10 ms
 * before it (POLL_BOUND_MS), the slice that spends the decode budget waits for
 * a zero-delay timer, not a forced-poll turn. Returns the `setTimeout` calls
 * of those `handle()`s.
 */
async function untilDecodeWaits(
  client: HttpClient,
): Promise<{ args: unknown[]; returned?: unknown }[]> {
  using sel = new DefaultSelector();
  sel.register(client.pollable, client.events);
  const timers: { args: unknown[]; returned?: unknown }[] = [];
  try {
    for (let i = 0; i < 20 && client.waiting === null; i++) {
      assertEquals(client.state === "done" || client.state === "failed", false);
      sel.modify(client.pollable, client.events);
      const ready = await sel.select(1_000);
      await delay(11);
      using setTimeouts = spy(globalThis, "setTimeout");
      client.handle(ready.length > 0 ? ready[0]![1] : 0);
      timers.push(...setTimeouts.calls);
    }
  } finally {
    sel.unregister(client.pollable);
  }
  return timers;
}

Deno.test("HttpClient closed while a decoding body waits for its zero-delay timer turn clears that timer: the wait never settles", async () => {
  // 9 MiB of one byte, a few dozen bytes as br: one read, and more than the
  // 8 MiB a handle() decodes before it waits.
  const br = nineMiBBr();
  await using server = replyServer(() =>
    response(br, "Content-Encoding: br\r\n")
  );
  const client = new HttpClient(server.url("/"), { timeout: 5_000 });
  const timers = await untilDecodeWaits(client);
  const waiting = client.waiting;
  assert(waiting !== null);
  assertEquals(client.state, "receiving");
  assertEquals(timers.map((call) => call.args[1]), [0], "the timer turn");
  using clears = spy(globalThis, "clearTimeout");
  client.close();
  assertEquals(client.state, "failed");
  assertInstanceOf(client.error, Deno.errors.Interrupted);
  assert(
    clears.calls.some((call) => call.args[0] === timers[0]!.returned),
    "its timer was cleared",
  );
  // Left to fire, the timer would settle the wait within a few ms.
  let settled = false;
  waiting.then(() => settled = true);
  await delay(20);
  assertEquals(settled, false, "the wait settled: its timer was left");
});

Deno.test("HttpClient whose total timeout passes during a decoding slice that took the timer turn fails TimedOut and clears that timer", async () => {
  const br = nineMiBBr();
  await using server = scriptedServer(async (conn) => {
    await readHead(conn);
    // The response comes after the total timeout: read, it is decoded, then
    // the request fails, as its body is not whole.
    await delay(80);
    await writeAll(conn, response(br, "Content-Encoding: br\r\n"));
    await untilClosed(conn);
  });
  const client = new HttpClient(server.url("/"), { timeout: 60 });
  using sel = new DefaultSelector();
  sel.register(client.pollable, client.events);
  const clears: unknown[] = [];
  let timer: unknown = undefined;
  try {
    for (let i = 0; i < 20; i++) {
      if (client.state === "done" || client.state === "failed") break;
      sel.modify(client.pollable, client.events);
      // Past the deadline: only a READ wakes it (no handle(0) before).
      const ready = await sel.select(1_000);
      if (ready.length === 0) continue;
      await delay(11);
      using setTimeouts = spy(globalThis, "setTimeout");
      using clearTimeouts = spy(globalThis, "clearTimeout");
      client.handle(ready[0]![1]);
      for (const call of setTimeouts.calls) {
        if (call.args[1] === 0) timer = call.returned;
      }
      clears.push(...clearTimeouts.calls.map((call) => call.args[0]));
    }
  } finally {
    sel.unregister(client.pollable);
  }
  assertEquals(client.state, "failed");
  assertInstanceOf(client.error, Deno.errors.TimedOut);
  assert(timer !== undefined, "the slice took the timer turn");
  assert(clears.includes(timer), "its timer was cleared");
});

Deno.test("fetchAll() decoding a 20 MiB body to a sink whose write() is synchronous lets timers run in between, though the sink is ready again within microtasks", async () => {
  const size = 20 * 1024 * 1024;
  const br = oneByteBr(size);
  await using server = replyServer(() =>
    response(br, "Content-Encoding: br\r\n")
  );
  // Turns of the loop, counted by a chain of zero-delay timers.
  let ticks = 0;
  let ticking = true;
  const tick = () => {
    ticks++;
    if (ticking) timer = setTimeout(tick, 0);
  };
  let timer = setTimeout(tick, 0);
  let received = 0;
  let ticksAtFirst = -1;
  let ticksAtLast = -1;
  // The default highWaterMark: after each write the writer is not ready until
  // that write settles, a microtask later.
  const sink = new WritableStream<Uint8Array>({
    write(chunk) {
      if (received === 0) ticksAtFirst = ticks;
      received += chunk.length;
      ticksAtLast = ticks;
    },
  });
  try {
    const [result] = await fetchAll([{ url: server.url("/"), sink }]);
    assert(result!.ok, String(!result!.ok && result!.error));
  } finally {
    ticking = false;
    clearTimeout(timer);
  }
  assertEquals(received, size);
  // 20 MiB in slices of a bounded budget (8 MiB): at least two turns between.
  assert(
    ticksAtLast - ticksAtFirst >= 2,
    `${ticksAtLast - ticksAtFirst} timer turns while decoding`,
  );
});

Deno.test("HttpClient allocates a body as it arrives, not as announced: 3 MiB of a claimed 1 GiB cost a few MiB", async () => {
  const sent = 3 * 1024 * 1024;
  await using server = scriptedServer(async (conn) => {
    await readHead(conn);
    await writeAll(
      conn,
      "HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n",
    );
    await writeAll(conn, pattern(sent));
    await untilClosed(conn);
  });
  const client = new HttpClient(server.url("/"), { idleTimeout: 200 });
  // ArrayBuffer memory, as V8 accounts it (committed bytes, not reservations).
  const before = Deno.memoryUsage().external;
  let peak = before;
  await drive(client, {
    onRound: () => {
      peak = Math.max(peak, Deno.memoryUsage().external);
    },
  });
  assertInstanceOf(client.error, Deno.errors.TimedOut);
  const grown = (peak - before) / 1048576;
  assert(grown < 32, `${grown.toFixed(1)} MiB allocated for 3 MiB received`);
});

/** `body` as a chunked message: chunks of `piece` bytes, then the last chunk. */
function chunked(body: Uint8Array, piece: number): Uint8Array {
  const parts: Uint8Array[] = [
    new TextEncoder().encode(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    ),
  ];
  for (let at = 0; at < body.length; at += piece) {
    const chunk = body.subarray(at, Math.min(body.length, at + piece));
    parts.push(new TextEncoder().encode(`${chunk.length.toString(16)}\r\n`));
    parts.push(chunk, new TextEncoder().encode("\r\n"));
  }
  parts.push(new TextEncoder().encode("0\r\n\r\n"));
  return concat(parts);
}

Deno.test("HttpClient returns chunked and gzip bodies of unknown length exact and standalone around 1 MiB, in a buffer of their own size up to 4 MiB and grown in place (a resizable buffer) past it", async () => {
  const MiB = 1024 * 1024;
  const sizes = [MiB - 1, MiB, MiB + 1, 2 * MiB + 3, 5 * MiB + 17];
  const bodies = sizes.map((n, i) => pattern(n, i));
  const messages = new Map<string, Uint8Array>();
  bodies.forEach((body, i) => {
    messages.set(`/chunked/${i}`, chunked(body, 65_536 + i));
    messages.set(
      `/gzip/${i}`,
      response(gzipSync(body), "Content-Encoding: gzip\r\n"),
    );
  });
  await using server = replyServer((path) => messages.get(path)!);
  for (const path of messages.keys()) {
    const client = new HttpClient(server.url(path));
    await drive(client);
    const body = client.response!.body;
    const want = bodies[Number(path.split("/")[2])]!;
    assertEquals(body.length, want.length, path);
    assertEquals(body.buffer.byteLength, want.length, path);
    assertEquals(body.byteOffset, 0, path);
    assert(bytesEqual(body, want), path);
    // Grown in place past 4 MiB (doubling by copies held the loop ~0.4 s at
    // 512 MiB); up to that, copied into a buffer of its own size, so that no
    // address space stays reserved for it.
    assertEquals(
      (body.buffer as ArrayBuffer).resizable,
      want.length > 4 * MiB,
      path,
    );
  }
});

async function collect(
  url: string,
  options: ConstructorParameters<typeof HttpClient>[1] = {},
): Promise<{ client: HttpClient; bytes: Uint8Array; chunks: Uint8Array[] }> {
  const chunks: Uint8Array[] = [];
  const sink = new WritableStream<Uint8Array>({
    write(chunk) {
      chunks.push(chunk);
    },
  });
  const client = new HttpClient(url, { ...options, sink });
  await drive(client);
  return { client, bytes: concat(chunks), chunks };
}

Deno.test("HttpClient with a sink writes the exact body for Content-Length, chunked and close-delimited framings", async () => {
  const small = pattern(1_000, 1);
  const large = pattern(2 * 1024 * 1024 + 5, 2);
  const chunkedOf = (body: Uint8Array) => {
    let text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (let i = 0; i < body.length; i += 70_000) {
      const part = body.subarray(i, i + 70_000);
      text += `${part.length.toString(16)}\r\n${latin1(part)}\r\n`;
    }
    return `${text}0\r\n\r\n`;
  };
  await using server = replyServer((path) => {
    const body = path.endsWith("large") ? large : small;
    if (path.startsWith("/length")) return response(body);
    if (path.startsWith("/chunked")) return chunkedOf(body);
    return `HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n${latin1(body)}`;
  });
  for (const framing of ["length", "chunked", "close"]) {
    for (const size of ["small", "large"]) {
      const { client, bytes, chunks } = await collect(
        server.url(`/${framing}-${size}`),
      );
      assertEquals(client.state, "done", `${framing}-${size}`);
      assertEquals(client.response!.body.length, 0);
      assert(
        bytesEqual(bytes, size === "large" ? large : small),
        `${framing}-${size}: ${bytes.length} bytes`,
      );
      for (const chunk of chunks) {
        assertEquals(Object.getPrototypeOf(chunk), Uint8Array.prototype);
      }
    }
  }
});

Deno.test("HttpClient with a sink writes the decoded body, or the bytes as sent with decompress: false", async () => {
  const text = "hello, sink ".repeat(50_000); // 600 KB: decoded in several slices
  const gz = gzipSync(text);
  await using server = replyServer(() =>
    response(gz, "Content-Encoding: gzip\r\n")
  );
  const decoded = await collect(server.url("/"));
  assertEquals(new TextDecoder().decode(decoded.bytes), text);
  const raw = await collect(server.url("/"), { decompress: false });
  assert(bytesEqual(raw.bytes, gz));
});

Deno.test("HttpClient with a sink hands it chunks that hold no other request's bytes", async () => {
  await using server = replyServer((path) => response(`body of ${path}`));
  const secret = new HttpClient(server.url("/secret"), {
    headers: { authorization: TOKEN },
  });
  const collected = collect(server.url("/other"));
  await drive(secret);
  const { chunks } = await collected;
  assert(chunks.length > 0);
  for (const chunk of chunks) {
    assert(!containsText(new Uint8Array(chunk.buffer), "s3cr3t"));
  }
});

Deno.test("HttpClient aborts the sink with the error when the request fails", async () => {
  await using server = replyServer(() =>
    "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ncut short"
  );
  let aborted: unknown = null;
  const written: string[] = [];
  const sink = new WritableStream<Uint8Array>({
    write(chunk) {
      written.push(latin1(chunk));
    },
    abort(reason) {
      aborted = reason;
    },
  });
  const client = new HttpClient(server.url("/"), { sink });
  await drive(client);
  assertEquals(client.state, "failed");
  assertInstanceOf(client.error, HttpParseError);
  assertEquals(written.join(""), "cut short");
  assertEquals(aborted, client.error);
});

Deno.test("HttpClient aborts the sink when the request fails before any body byte", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  let aborted: unknown = null;
  const sink = new WritableStream<Uint8Array>({
    abort(reason) {
      aborted = reason;
    },
  });
  const client = new HttpClient(`http://127.0.0.1:${port}/`, { sink });
  await drive(client);
  assertInstanceOf(client.error, Deno.errors.ConnectionRefused);
  await Promise.resolve();
  assertEquals(aborted, client.error);
});

Deno.test("HttpClient fails with the sink's error when the sink's write throws", async () => {
  await using server = replyServer(() => response(pattern(300_000)));
  const failure = new Error("disk full");
  const sink = new WritableStream<Uint8Array>({
    write() {
      throw failure;
    },
  });
  const client = new HttpClient(server.url("/"), { sink });
  await drive(client);
  assertEquals(client.state, "failed");
  assertEquals(client.error, failure);
});

Deno.test("HttpClient fails with a TypeError when the sink errors without a reason", async () => {
  await using server = replyServer(() => response("abc"));
  const sink = new WritableStream<Uint8Array>({
    start(controller) {
      controller.error();
    },
  });
  const client = new HttpClient(server.url("/"), { sink });
  await drive(client);
  assertEquals(client.state, "failed");
  assertInstanceOf(client.error, TypeError);
  assertEquals(client.error.message, "Cannot write body: the sink failed");
});

Deno.test("HttpClient fails with the sink's error when closing the sink fails", async () => {
  await using server = replyServer(() => response("abc"));
  const failure = new Error("cannot flush");
  const sink = new WritableStream<Uint8Array>({
    close() {
      throw failure;
    },
  });
  const client = new HttpClient(server.url("/"), { sink });
  await drive(client);
  assertEquals(client.state, "failed");
  assertEquals(client.error, failure);
});

Deno.test("HttpClient constructor throws TypeError for a sink that is not an unlocked WritableStream", () => {
  const locked = new WritableStream<Uint8Array>();
  const writer = locked.getWriter();
  for (
    const [sink, message] of [
      [locked, "sink must be a WritableStream that is not locked"],
      [{}, "sink must be a WritableStream, received an object (Object)"],
      [
        () => new WritableStream(),
        "sink must be a WritableStream, received function (a sink per URL is fetchAll's)",
      ],
    ] as const
  ) {
    assertThrows(
      () =>
        new HttpClient("http://127.0.0.1:1/", {
          sink: sink as WritableStream<Uint8Array>,
        }),
      TypeError,
      message,
    );
  }
  writer.releaseLock();
});

Deno.test("HttpClient with a sink is done only once the sink has closed", async () => {
  await using server = replyServer(() => response("abc"));
  let closed = false;
  const sink = new WritableStream<Uint8Array>({
    async close() {
      await new Promise((r) => setTimeout(r, 30));
      closed = true;
    },
  });
  const client = new HttpClient(server.url("/"), { sink });
  let sawWaitingWhileReceiving = false;
  await drive(client, {
    onRound: () => {
      if (client.state === "receiving" && client.waiting !== null) {
        sawWaitingWhileReceiving = true;
        assertEquals(client.events, 0);
        client.handle(EVENT_READ); // ignored while waiting
        assertEquals(client.state, "receiving");
      }
    },
  });
  assertEquals(client.state, "done");
  assert(closed);
  assert(sawWaitingWhileReceiving);
});

Deno.test("HttpClient with a slow sink keeps what it buffers flat on a 64 MiB body: it reads only while the sink is ready", async () => {
  const total = 64 * 1024 * 1024;
  const piece = pattern(256 * 1024, 3);
  let serverSent = 0;
  await using server = scriptedServer(async (conn) => {
    await readHead(conn);
    await writeAll(conn, `HTTP/1.1 200 OK\r\nContent-Length: ${total}\r\n\r\n`);
    while (serverSent < total) {
      await writeAll(conn, piece);
      serverSent += piece.length;
    }
  });
  let consumed = 0;
  let maxInFlight = 0;
  let waits = 0;
  const sink = new WritableStream<Uint8Array>({
    async write(chunk) {
      // Slower than loopback: a macrotask per chunk.
      await new Promise((r) => setTimeout(r, 1));
      consumed += chunk.length;
      maxInFlight = Math.max(maxInFlight, serverSent - consumed);
    },
  }, { highWaterMark: 2 });
  const client = new HttpClient(server.url("/"), { sink, timeout: 60_000 });
  await drive(client, {
    onRound: () => {
      if (client.waiting !== null) waits++;
    },
  });
  assertEquals(client.state, "done", String(client.error));
  assertEquals(consumed, total);
  assert(waits > 0, "the sink never pushed back");
  // Kernel socket buffers, one read buffer and the sink's queue: a few MiB (7 MiB
  // measured), where reading on regardless holds the whole 64 MiB.
  assert(
    maxInFlight < 24 * 1024 * 1024,
    `${(maxInFlight / 1048576).toFixed(1)} MiB in flight`,
  );
});

Deno.test("HttpClient's timings go start <= connected <= sent <= firstByte <= end", async () => {
  await using server = replyServer(() => response("abc"));
  const client = new HttpClient(server.url("/"));
  const before = client.timings;
  assert(Number.isNaN(before.connected) && Number.isNaN(before.end));
  await drive(client);
  const t = client.timings;
  assert(t.start <= t.connected, JSON.stringify(t));
  assert(t.connected <= t.sent, JSON.stringify(t));
  assert(t.sent <= t.firstByte, JSON.stringify(t));
  assert(t.firstByte <= t.end, JSON.stringify(t));
  // A copy: changing it changes nothing.
  t.end = 0;
  assert(client.timings.end > 0);
});

Deno.test("fetchAll() gets a large gzip body whole: HttpClient waits on nothing without a sink", async () => {
  const size = 12 * 1024 * 1024;
  const gz = gzipSync(new Uint8Array(size).fill(98));
  await using server = replyServer(() =>
    response(gz, "Content-Encoding: gzip\r\n")
  );
  const result = (await fetchAll([server.url("/")]))[0]!;
  assert(result.ok, String((result as { error?: unknown }).error));
  assertEquals(result.response.body.length, size);
});

Deno.test("HttpClient with a sink that is not ready after each write reads the rest of a large body straight into its chunks", async () => {
  const big = pattern(4 * 1024 * 1024 + 3, 3);
  await using server = replyServer(() => response(big));
  const chunks: Uint8Array[] = [];
  // The default strategy (high-water mark 1): the writer is not ready while a
  // write is pending, so the client waits on it after every chunk.
  const sink = new WritableStream<Uint8Array>({
    async write(chunk) {
      chunks.push(chunk);
      await new Promise((resolve) => setTimeout(resolve, 0));
    },
  });
  const client = new HttpClient(server.url("/big"), { sink });
  await drive(client, { rounds: 100_000 });
  assertEquals(client.state, "done");
  assert(bytesEqual(concat(chunks), big));
  // Chunks read straight into the body's buffer are views of it; copies out
  // of the conn's read buffer are arrays of their own.
  const direct = chunks.filter((c) => c.buffer.byteLength > c.length).length;
  assert(direct > 0, `${chunks.length} chunks, none read directly`);
});

Deno.test("HttpClient[kForget]() on a request not yet done or failed changes nothing: called at every step, the POST still goes out whole and its response stands", async () => {
  await using server = recordingServer(
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
  );
  const client = new HttpClient(server.url("/up"), {
    method: "POST",
    body: "payload",
    timeout: 500,
  });
  const states = new Set<string>();
  await drive(client, {
    onRound: () => {
      // drive() calls this once more after the end: not then.
      if (client.state === "done" || client.state === "failed") return;
      states.add(client.state);
      client[kForget]();
    },
  });
  assertEquals(client.state, "done", String(client.error));
  assert(
    states.has("connecting") && states.has("receiving"),
    [...states].join(),
  );
  assertEquals(latin1(client.response!.body), "hello");
  assertEquals(server.requests.length, 1);
  assert(server.requests[0]!.text.startsWith("POST /up HTTP/1.1\r\n"));
  assert(server.requests[0]!.text.endsWith("\r\n\r\npayload"));
  // Done, it forgets.
  client[kForget]();
  assertEquals(client.response, null);
});
