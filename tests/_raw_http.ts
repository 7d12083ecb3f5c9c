/**
 * Raw HTTP/1.1 test servers on loopback: they send exactly the bytes a test gives,
 * split as it says, so every framing and every split reaches the client.
 */

import { indexOf, latin1Bytes as latin1 } from "./_net.ts";

const encoder = new TextEncoder();
const HEAD_END = encoder.encode("\r\n\r\n");

/** What a handler gets for one request on one connection. */
export interface RawExchange {
  /** The request head, as text. */
  head: string;
  /** The request line's path. */
  path: string;
  /** Which request this is on its connection (0 for the first). */
  requestOnConn: number;
  /** Which connection this is (0 for the first accepted). */
  connIndex: number;
  conn: Deno.Conn;
  /**
   * Aborted when the server closes (its test is over): a handler that holds a
   * conn silent for a while ({@linkcode hold}) lets go then, rather than
   * keeping the test waiting for a reply nobody reads.
   */
  closing: AbortSignal;
}

/** Reply: bytes to send (then the server waits for the next request), or "close". */
export type RawHandler = (exchange: RawExchange) => Promise<"keep" | "close">;

/** A running raw server. */
export interface RawServer extends AsyncDisposable {
  port: number;
  url(path?: string): string;
  /** How many connections were accepted. */
  readonly connections: number;
  /** How many requests were read. */
  readonly requests: number;
  /** How many accepted connections are still open (the client has not closed them). */
  readonly open: number;
  close(): Promise<void>;
}

/**
 * Resolves after `ms`, or as soon as `signal` aborts (its timer cleared): a
 * server's silence that lasts as long as its test needs it and no longer.
 */
export function hold(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Writes `bytes` in pieces of `split` bytes (all at once when 0). */
export async function writeSplit(
  conn: Deno.Conn,
  bytes: Uint8Array | string,
  split = 0,
): Promise<void> {
  const data = typeof bytes === "string" ? latin1(bytes) : bytes;
  const step = split > 0 ? split : data.length;
  for (let i = 0; i < data.length; i += step) {
    let chunk = data.subarray(i, Math.min(i + step, data.length));
    while (chunk.length > 0) chunk = chunk.subarray(await conn.write(chunk));
  }
}

/** Starts a server that runs `handler` for each request it reads. */
export function rawServer(handler: RawHandler): RawServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  const closing = new AbortController();
  let connections = 0;
  let requests = 0;

  async function serve(conn: Deno.Conn, connIndex: number): Promise<void> {
    let buffered = new Uint8Array(0);
    const chunk = new Uint8Array(16 * 1024);
    try {
      for (let requestOnConn = 0;; requestOnConn++) {
        let end: number;
        while ((end = indexOf(buffered, HEAD_END)) < 0) {
          const n = await conn.read(chunk);
          if (n === null) return;
          const next = new Uint8Array(buffered.length + n);
          next.set(buffered);
          next.set(chunk.subarray(0, n), buffered.length);
          buffered = next;
        }
        const head = new TextDecoder().decode(buffered.subarray(0, end));
        const length = Number(
          /\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0,
        );
        // Request bodies are small in these tests; wait for the whole of it.
        while (buffered.length < end + 4 + length) {
          const n = await conn.read(chunk);
          if (n === null) return;
          const next = new Uint8Array(buffered.length + n);
          next.set(buffered);
          next.set(chunk.subarray(0, n), buffered.length);
          buffered = next;
        }
        buffered = buffered.slice(end + 4 + length);
        requests++;
        const path = head.split(" ")[1] ?? "/";
        const reply = await handler({
          head,
          path,
          requestOnConn,
          connIndex,
          conn,
          closing: closing.signal,
        });
        if (reply === "close") return;
      }
    } catch {
      // The client went away (reset, or closed mid-reply): that is its test's business.
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // Already closed by the handler.
      }
    }
  }

  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        const task = serve(conn, connections++);
        tasks.add(task);
        task.finally(() => tasks.delete(task));
      }
    } catch {
      // The listener was closed.
    }
  })();

  const port = (listener.addr as Deno.NetAddr).port;
  const close = async () => {
    closing.abort();
    try {
      listener.close();
    } catch {
      // Closed already.
    }
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // Closed already.
      }
    }
    await accepting;
    await Promise.all(tasks);
  };
  return {
    port,
    url: (path = "/") => `http://127.0.0.1:${port}${path}`,
    get connections() {
      return connections;
    },
    get requests() {
      return requests;
    },
    get open() {
      return conns.size;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** A server that answers every request with `response`, split as given, then closes. */
export function cannedServer(
  response: Uint8Array | string,
  split = 0,
): RawServer {
  return rawServer(async ({ conn }) => {
    await writeSplit(conn, response, split);
    return "close";
  });
}
