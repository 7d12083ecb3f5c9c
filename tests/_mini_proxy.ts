/**
 * A small HTTP forward proxy in the test process, for what tinyproxy cannot show
 * (see `_tinyproxy.ts`): it keeps client conns alive across absolute-form
 * requests, can require a `Proxy-Authorization`, and can die in the middle of a
 * tunnel. Everything else is tested against tinyproxy; this is on top, not
 * instead.
 *
 * Deliberately simple: each absolute-form request gets a fresh upstream conn with
 * `Connection: close`, the whole response is read to the end, de-chunked and sent
 * back with a `Content-Length`. Request bodies need a `Content-Length`.
 *
 * @module
 */
import { concat, indexOf } from "./_net.ts";

/** Options of {@linkcode startMiniProxy}. */
export interface MiniProxyOptions {
  /**
   * The `Proxy-Authorization` value required; a request without it (or with
   * another) is answered `407` and its conn closed.
   *
   * @default {undefined} no authentication
   */
  authorization?: string;
  /**
   * Close a `CONNECT` tunnel, both ways and without warning, once this many bytes
   * have gone from the origin to the client (a proxy dying mid-tunnel).
   *
   * @default {Infinity}
   */
  dieAfter?: number;
  /**
   * How long the `n`th `CONNECT` (from 0) waits before it is answered, in ms;
   * `Infinity`: it is never answered (the proxy hangs until closed).
   *
   * @default {[]} each answered at once
   */
  connectDelays?: number[];
  /**
   * Answer the first this many `CONNECT`s `503` as Squid does for an origin it
   * cannot reach (with its `X-Squid-Error`), and close their conns.
   *
   * @default {0}
   */
  refuseConnects?: number;
  /** The answer to those refused `CONNECT`s, head and all (Squid's 503 by default). */
  refusal?: string;
}

/** A running mini proxy. */
export interface MiniProxy extends AsyncDisposable {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Client conns accepted so far. */
  readonly connections: number;
  /** The request lines received so far, in order (`GET http://... HTTP/1.1`). */
  readonly requests: readonly string[];
  /** Closes the listener and every conn, and waits for their loops. Idempotent. */
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  "connection",
  "proxy-connection",
  "keep-alive",
  "proxy-authorization",
  "proxy-authenticate",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "content-length",
]);
const MAX_HEAD = 64 * 1024;
const encoder = new TextEncoder();
const HEAD_END = encoder.encode("\r\n\r\n");
const decoder = new TextDecoder();

/** A conn with a read buffer: heads, exact counts and everything to the end. */
class Reader {
  #conn: Deno.Conn;
  #buf: Uint8Array = new Uint8Array(0);
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** Bytes read but not consumed; consumes them. */
  take(): Uint8Array {
    const rest = this.#buf;
    this.#buf = new Uint8Array(0);
    return rest;
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    const n = await this.#conn.read(chunk);
    if (n === null) return false;
    this.#buf = concat([this.#buf, chunk.subarray(0, n)]);
    return true;
  }

  /** The next head (without its blank line), or `null` at EOF before any byte. */
  async head(): Promise<string | null> {
    while (true) {
      const end = indexOf(this.#buf, HEAD_END);
      if (end !== -1) {
        const head = decoder.decode(this.#buf.subarray(0, end));
        this.#buf = this.#buf.slice(end + 4);
        return head;
      }
      if (this.#buf.length > MAX_HEAD) throw new Error("head too large");
      if (!await this.#fill()) {
        if (this.#buf.length === 0) return null;
        throw new Error("EOF inside a head");
      }
    }
  }

  async exactly(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n) {
      if (!await this.#fill()) throw new Error("EOF inside a body");
    }
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }

  async toEnd(): Promise<Uint8Array> {
    while (await this.#fill());
    return this.take();
  }
}

function parseHead(head: string): { line: string; fields: [string, string][] } {
  const [line = "", ...rest] = head.split("\r\n");
  const fields = rest.map((field): [string, string] => {
    const colon = field.indexOf(":");
    return [field.slice(0, colon).trim(), field.slice(colon + 1).trim()];
  });
  return { line, fields };
}

function field(fields: [string, string][], name: string): string | null {
  const found = fields.find(([n]) => n.toLowerCase() === name);
  return found === undefined ? null : found[1];
}

function dechunk(body: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let at = 0;
  while (at < body.length) {
    let eol = at;
    while (
      eol + 1 < body.length && !(body[eol] === 13 && body[eol + 1] === 10)
    ) {
      eol++;
    }
    const size = parseInt(
      decoder.decode(body.subarray(at, eol)).split(";")[0]!,
      16,
    );
    if (!(size >= 0)) throw new Error("bad chunk size");
    if (size === 0) break;
    parts.push(body.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return concat(parts);
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let sent = 0; sent < data.length;) {
    sent += await conn.write(data.subarray(sent));
  }
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}

/**
 * Starts the mini proxy on a free 127.0.0.1 port. Errors of one conn (a peer
 * gone, a malformed request) end that conn only.
 */
export function startMiniProxy(options: MiniProxyOptions = {}): MiniProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const loops = new Set<Promise<void>>();
  const requests: string[] = [];
  let connections = 0;
  let connects = 0;
  /** Resolves when close() starts: a delayed CONNECT stops waiting then. */
  const { promise: closed, resolve: markClosed } = Promise.withResolvers<
    void
  >();
  const wait = async (ms: number) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      closed,
      ms === Infinity
        ? closed
        : new Promise<void>((resolve) => timer = setTimeout(resolve, ms)),
    ]);
    clearTimeout(timer);
  };

  const track = (conn: Deno.Conn) => {
    open.add(conn);
    return () => {
      open.delete(conn);
      closeQuietly(conn);
    };
  };

  const tunnel = async (
    client: Deno.Conn,
    reader: Reader,
    authority: string,
  ) => {
    const colon = authority.lastIndexOf(":");
    const hostname = authority.slice(0, colon).replace(/^\[|\]$/g, "");
    let upstream: Deno.Conn;
    try {
      upstream = await Deno.connect({
        hostname,
        port: Number(authority.slice(colon + 1)),
      });
    } catch {
      await writeAll(
        client,
        encoder.encode("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"),
      );
      return;
    }
    const release = track(upstream);
    try {
      await writeAll(
        client,
        encoder.encode("HTTP/1.1 200 Connection established\r\n\r\n"),
      );
      const early = reader.take();
      if (early.length > 0) await writeAll(upstream, early);
      const limit = options.dieAfter ?? Infinity;
      const up = (async () => {
        const buf = new Uint8Array(64 * 1024);
        for (let n; (n = await client.read(buf)) !== null;) {
          await writeAll(upstream, buf.subarray(0, n));
        }
      })();
      const down = (async () => {
        const buf = new Uint8Array(64 * 1024);
        let relayed = 0;
        for (let n; (n = await upstream.read(buf)) !== null;) {
          const allowed = Math.min(n, limit - relayed);
          await writeAll(client, buf.subarray(0, allowed));
          relayed += allowed;
          if (relayed >= limit) return;
        }
      })();
      // Either side ending (or failing) ends the tunnel, both ways.
      await Promise.race([up, down]).catch(() => {});
      release();
      closeQuietly(client);
      await Promise.allSettled([up, down]);
    } finally {
      release();
    }
  };

  const forward = async (
    client: Deno.Conn,
    reader: Reader,
    method: string,
    target: string,
    fields: [string, string][],
  ): Promise<boolean> => {
    const url = new URL(target);
    const length = Number(field(fields, "content-length") ?? "0");
    const body = await reader.exactly(length);
    const upstream = await Deno.connect({
      hostname: url.hostname.replace(/^\[|\]$/g, ""),
      port: Number(url.port || 80),
    }).catch(() => null);
    if (upstream === null) {
      await writeAll(
        client,
        encoder.encode("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"),
      );
      return true;
    }
    const release = track(upstream);
    let response: Uint8Array;
    try {
      const kept = fields.filter(([n]) => !HOP_BY_HOP.has(n.toLowerCase()));
      const head = [
        `${method} ${url.pathname}${url.search} HTTP/1.1`,
        ...kept.map(([n, v]) => `${n}: ${v}`),
        ...(length > 0 ? [`Content-Length: ${length}`] : []),
        "Connection: close",
      ].join("\r\n") + "\r\n\r\n";
      await writeAll(upstream, concat([encoder.encode(head), body]));
      response = await new Reader(upstream).toEnd();
    } finally {
      release();
    }
    const end = indexOf(response, HEAD_END);
    const parsed = parseHead(decoder.decode(response.subarray(0, end)));
    let content = response.subarray(end + 4);
    if (
      field(parsed.fields, "transfer-encoding")?.toLowerCase() === "chunked"
    ) {
      content = dechunk(content);
    }
    if (method === "HEAD") content = new Uint8Array(0);
    const kept = parsed.fields.filter(([n]) =>
      !HOP_BY_HOP.has(n.toLowerCase())
    );
    const out = [
      parsed.line,
      ...kept.map(([n, v]) => `${n}: ${v}`),
      `Content-Length: ${
        method === "HEAD"
          ? field(parsed.fields, "content-length") ?? 0
          : content.length
      }`,
    ].join("\r\n") + "\r\n\r\n";
    await writeAll(client, concat([encoder.encode(out), content]));
    return field(fields, "connection")?.toLowerCase() !== "close";
  };

  const serve = async (client: Deno.Conn) => {
    const release = track(client);
    const reader = new Reader(client);
    try {
      while (true) {
        const head = await reader.head();
        if (head === null) return;
        const { line, fields } = parseHead(head);
        requests.push(line);
        const [method = "", target = ""] = line.split(" ");
        if (
          options.authorization !== undefined &&
          field(fields, "proxy-authorization") !== options.authorization
        ) {
          await writeAll(
            client,
            encoder.encode(
              'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="mini"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
            ),
          );
          return;
        }
        if (method === "CONNECT") {
          if (connects < (options.refuseConnects ?? 0)) {
            connects++;
            await writeAll(
              client,
              encoder.encode(
                options.refusal ??
                  "HTTP/1.1 503 Service Unavailable\r\nX-Squid-Error: ERR_CONNECT_FAIL 111\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
              ),
            );
            return;
          }
          const delay = options.connectDelays?.[connects++] ?? 0;
          if (delay > 0) await wait(delay);
          if (closing !== undefined) return;
          await tunnel(client, reader, target);
          return;
        }
        if (!await forward(client, reader, method, target, fields)) return;
      }
    } catch {
      // This conn is done; the others go on.
    } finally {
      release();
    }
  };

  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        connections++;
        const loop = serve(conn);
        loops.add(loop);
        loop.finally(() => loops.delete(loop));
      }
    } catch {
      // The listener was closed.
    }
  })();

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      markClosed();
      closeQuietly(listener);
      for (const conn of open) closeQuietly(conn);
      await accepting;
      await Promise.allSettled([...loops]);
    })();
    return closing;
  };

  return {
    port: listener.addr.port,
    url: `http://127.0.0.1:${listener.addr.port}`,
    get connections() {
      return connections;
    },
    requests,
    close,
    [Symbol.asyncDispose]: close,
  };
}
