/**
 * Helpers for the HttpClient tests: a driver loop that honours `deadline` and
 * `waiting` as the HttpClient docs say a driver must, and loopback servers that
 * record the exact request bytes.
 */
import { assert } from "@std/assert";
import {
  DefaultSelector,
  type FetchResult,
  type HttpClient,
  type PollableConn,
} from "../mod.ts";

const HEAD_END = [13, 10, 13, 10];

/** A body as UTF-8 text. */
export const text = (body: Uint8Array): string =>
  new TextDecoder().decode(body);

/** The response of a result that must be ok (fails the test otherwise). */
export const ok = (r: FetchResult | undefined) => {
  assert(r?.ok, `expected ok, got ${r?.ok === false ? String(r.error) : r}`);
  return r.response;
};

/** The error of a result that must have failed (fails the test otherwise). */
export const failed = (r: FetchResult | undefined) => {
  assert(r !== undefined && !r.ok, "expected a failed result");
  return r.error;
};

/** Runs `fn` with the proxy variables set as given (others unset), then restores them. */
export async function withProxyEnv<T>(
  env: Record<string, string>,
  fn: () => Promise<T>,
): Promise<T> {
  const names = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "no_proxy",
    "NO_PROXY",
    "all_proxy",
    "ALL_PROXY",
  ];
  const saved = new Map(names.map((n) => [n, Deno.env.get(n)]));
  try {
    for (const name of names) Deno.env.delete(name);
    for (const [name, value] of Object.entries(env)) Deno.env.set(name, value);
    return await fn();
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
  }
}

/** A promise that settles after `ms`, and its timer cleared when settled otherwise. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Drives `client` to `done` or `failed` with one selector, the way its docs say:
 * select until `deadline` then `handle(0)`; while `waiting`, unregister the conn
 * and await the promise. Bounded in rounds and, through the client's own
 * deadlines, in time.
 */
export async function drive(
  client: HttpClient,
  options: { rounds?: number; onRound?: () => void } = {},
): Promise<void> {
  using sel = new DefaultSelector();
  let registered: PollableConn | null = null;
  const rounds = options.rounds ?? 100_000;
  try {
    for (let i = 0; i < rounds; i++) {
      options.onRound?.();
      if (client.state === "done" || client.state === "failed") return;
      const waiting = client.waiting;
      if (waiting !== null) {
        if (registered !== null) sel.unregister(registered);
        registered = null;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const wait = client.deadline - performance.now();
        await Promise.race([
          waiting,
          new Promise((r) => timer = setTimeout(r, Math.max(0, wait))),
        ]);
        clearTimeout(timer);
        client.handle(0);
        continue;
      }
      const events = client.events;
      if (registered !== client.pollable) {
        if (registered !== null) sel.unregister(registered);
        registered = client.pollable;
        sel.register(registered, events);
      } else {
        sel.modify(registered, events);
      }
      const wait = Math.min(10_000, client.deadline - performance.now());
      const ready = await sel.select(Math.max(0, wait));
      client.handle(ready.length > 0 ? ready[0]![1] : 0);
    }
    throw new Error(`drive: not finished after ${rounds} rounds`);
  } finally {
    if (registered !== null) sel.unregister(registered);
  }
}

/** One request as a recording server saw it. */
export interface Recorded {
  /** Every byte of the request, head and body. */
  bytes: Uint8Array;
  /** The same bytes as latin1 text. */
  text: string;
}

/** A loopback server that records whole requests and answers each with a canned reply. */
export interface RecordingServer extends AsyncDisposable {
  readonly port: number;
  url(path?: string, userinfo?: string): string;
  /** The requests read so far, in order. */
  readonly requests: Recorded[];
  /** How many connections were accepted. */
  readonly connections: number;
}

/**
 * Starts a server that reads each request whole (head, then a `Content-Length` or
 * chunked body), records its exact bytes, writes `reply` and closes.
 */
export function recordingServer(
  reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
): RecordingServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: Recorded[] = [];
  const conns = new Set<Deno.Conn>();
  let connections = 0;
  const tasks: Promise<void>[] = [];
  const serve = async (conn: Deno.Conn) => {
    let data = new Uint8Array(0);
    const chunk = new Uint8Array(64 * 1024);
    try {
      while (!complete(data)) {
        const n = await conn.read(chunk);
        if (n === null) break;
        const next = new Uint8Array(data.length + n);
        next.set(data);
        next.set(chunk.subarray(0, n), data.length);
        data = next;
      }
      requests.push({ bytes: data, text: latin1(data) });
      await writeAll(conn, new TextEncoder().encode(reply));
    } catch {
      // The client went away: its test looks at what was recorded.
    } finally {
      if (conns.delete(conn)) conn.close();
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        connections++;
        conns.add(conn);
        tasks.push(serve(conn));
      }
    } catch {
      // Closed.
    }
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    port,
    url: (path = "/", userinfo?: string) =>
      `http://${userinfo ? `${userinfo}@` : ""}127.0.0.1:${port}${path}`,
    requests,
    get connections() {
      return connections;
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of conns) {
        conns.delete(conn);
        conn.close();
      }
      await accepting;
      await Promise.all(tasks);
    },
  };
}

/** Whether `data` holds a whole request: head, and its body by its framing. */
function complete(data: Uint8Array): boolean {
  const end = indexOf(data, HEAD_END, 0);
  if (end < 0) return false;
  const head = latin1(data.subarray(0, end)).toLowerCase();
  const bodyStart = end + 4;
  if (/\r\ntransfer-encoding: *chunked/.test(head)) {
    return indexOf(data, [48, 13, 10, 13, 10], bodyStart) >= 0 &&
      latin1(data.subarray(data.length - 5)) === "0\r\n\r\n";
  }
  const length = Number(/\r\ncontent-length: *(\d+)/.exec(head)?.[1] ?? 0);
  return data.length >= bodyStart + length;
}

function indexOf(data: Uint8Array, needle: number[], from: number): number {
  outer: for (let i = from; i + needle.length <= data.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (data[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}

/** Bytes as latin1 text, one character per byte. */
export function latin1(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return text;
}

/** Whether `haystack` contains the bytes of `needle` (a latin1 string). */
export function containsText(haystack: Uint8Array, needle: string): boolean {
  return latin1(haystack).includes(needle);
}

/**
 * A server that runs `serve` on each accepted conn and closes it afterwards (or
 * at dispose, whichever comes first): for replies a test writes by hand.
 * `closing` aborts at dispose, for a `serve` that holds its conn silent (`hold`
 * in `_raw_http.ts`).
 */
export function scriptedServer(
  serve: (
    conn: Deno.Conn,
    index: number,
    closing: AbortSignal,
  ) => Promise<void>,
): { port: number; url(path?: string): string } & AsyncDisposable {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closing = new AbortController();
  const conns = new Set<Deno.Conn>();
  const tasks: Promise<void>[] = [];
  let index = 0;
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        tasks.push(
          serve(conn, index++, closing.signal).catch(() => {}).finally(() => {
            if (conns.delete(conn)) conn.close();
          }),
        );
      }
    } catch {
      // Closed.
    }
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  let closed = false;
  return {
    port,
    url: (path = "/") => `http://127.0.0.1:${port}${path}`,
    async [Symbol.asyncDispose]() {
      closing.abort();
      if (!closed) listener.close();
      closed = true;
      for (const conn of conns) {
        conns.delete(conn);
        conn.close();
      }
      await accepting;
      await Promise.all(tasks);
    },
  };
}

/** Reads from `conn` until a request head has arrived (or the conn ends). */
export async function readHead(conn: Deno.Conn): Promise<string> {
  let text = "";
  const buf = new Uint8Array(16 * 1024);
  while (!text.includes("\r\n\r\n")) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += latin1(buf.subarray(0, n));
  }
  return text;
}

/** Writes all of `bytes` (a string as latin1). */
export async function writeAll(
  conn: Deno.Conn,
  bytes: Uint8Array | string,
): Promise<void> {
  let data = typeof bytes === "string"
    ? Uint8Array.from(bytes, (c) => c.charCodeAt(0))
    : bytes;
  while (data.length > 0) data = data.subarray(await conn.write(data));
}

/** Waits until the peer closes `conn` (or it is closed here), reading and dropping bytes. */
export async function untilClosed(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(16 * 1024);
  try {
    while (await conn.read(buf) !== null) {
      // Dropped.
    }
  } catch {
    // Closed on this side.
  }
}
