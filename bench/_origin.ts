/**
 * The origin server of the HTTP bench rows, run in its own process: an HTTP/1.1
 * keep-alive server on 127.0.0.1 that serves fixed bodies with `Content-Length`:
 *
 * - `/1k`, `/64k`, `/64m`: 1 KiB, 64 KiB and 64 MiB of `x`;
 * - `/1g`: 1 GiB of zeros, written 1 MiB at a time (`raw` only);
 * - `/upload`: reads the request's body (`Content-Length` or chunked) and
 *   answers `ok` (`raw` only);
 * - anything else: `404`.
 *
 * Two implementations, picked with `--impl`. The bench uses `raw`: measured here
 * with the raw keep-alive client, it served about 1.4x (1 KiB) and 2x (64 KiB) the
 * requests per second of `Deno.serve`:
 *
 * - `raw` (default): `Deno.listen` and precomputed response bytes (head and body in
 *   one buffer for the small bodies); it parses only request heads, honours
 *   `Connection: close` and handles pipelined requests.
 * - `serve`: `Deno.serve` with precomputed body bytes.
 *
 * With `--ports N` (`raw` only) it listens on N ports, each one origin for a
 * client (the many-origins row).
 *
 * Prints one JSON line `{ "port": n, "ports": [n, ...] }` once listening, and
 * exits when its stdin closes or after `--max-ms` (default 15 minutes).
 *
 * Usage: `deno run --allow-net=127.0.0.1 bench/_origin.ts [--impl raw|serve] [--ports N] [--max-ms N]`
 *
 * @module
 */

function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] ?? fallback : fallback;
}

const IMPL = flag("impl", "raw");
const MAX_MS = Number(flag("max-ms", String(15 * 60_000)));
const PORTS = Number(flag("ports", "1"));
const encoder = new TextEncoder();

const BODIES: Record<string, Uint8Array<ArrayBuffer>> = {
  "/1k": new Uint8Array(1024).fill(120),
  "/64k": new Uint8Array(64 * 1024).fill(120),
  "/64m": new Uint8Array(64 * 1024 * 1024).fill(120),
};
const NOT_FOUND: Uint8Array<ArrayBuffer> = encoder.encode("not found\n");
/** Answers a request whose body was read whole (`raw` only). */
const UPLOAD = "/upload";
/** Bodies too big to hold: their length, sent as this chunk repeated. */
const STREAMED: Record<string, number> = { "/1g": 1024 * 1024 * 1024 };
const STREAM_CHUNK = new Uint8Array(1024 * 1024);

function head(status: string, length: number, close: boolean): Uint8Array {
  return encoder.encode(
    `HTTP/1.1 ${status}\r\nContent-Type: application/octet-stream\r\n` +
      `Content-Length: ${length}\r\n` +
      (close ? "Connection: close\r\n" : "") + "\r\n",
  );
}

/** Precomputed response parts for one path: one buffer when it is small. */
interface Canned {
  parts: Uint8Array[];
}

function can(status: string, body: Uint8Array, close: boolean): Canned {
  const h = head(status, body.length, close);
  if (body.length > 1024 * 1024) return { parts: [h, body] };
  const all = new Uint8Array(h.length + body.length);
  all.set(h);
  all.set(body, h.length);
  return { parts: [all] };
}

const keepAlive = new Map<string, Canned>();
const closing = new Map<string, Canned>();
for (const [path, body] of Object.entries(BODIES)) {
  keepAlive.set(path, can("200 OK", body, false));
  closing.set(path, can("200 OK", body, true));
}
for (const canned of [keepAlive, closing]) {
  canned.set(
    UPLOAD,
    can("200 OK", encoder.encode("ok"), canned === closing),
  );
}
const notFoundKeep = can("404 Not Found", NOT_FOUND, false);
const notFoundClose = can("404 Not Found", NOT_FOUND, true);

const conns = new Set<Deno.Conn>();

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/** Finds `\r\n\r\n` in `buf[from, end)`; returns the index after it, or -1. */
function headEnd(buf: Uint8Array, from: number, end: number): number {
  for (let i = from + 3; i < end; i++) {
    if (
      buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 &&
      buf[i - 3] === 13
    ) return i + 1;
  }
  return -1;
}

const latin1 = new TextDecoder("latin1");

async function serveRaw(conn: Deno.Conn): Promise<void> {
  conns.add(conn);
  let buf = new Uint8Array(16 * 1024);
  let start = 0;
  let end = 0;
  /** Reads more into `buf[end:]` (compacted or grown first when full); false at its end. */
  const fill = async (): Promise<boolean> => {
    if (start === end) start = end = 0;
    if (end === buf.length) {
      if (start > 0) {
        buf.copyWithin(0, start, end);
        end -= start;
        start = 0;
      } else {
        if (buf.length >= 1024 * 1024) return false; // absurd head: drop the client
        const bigger = new Uint8Array(buf.length * 2);
        bigger.set(buf);
        buf = bigger;
      }
    }
    const n = await conn.read(buf.subarray(end));
    if (n === null) return false;
    end += n;
    return true;
  };
  /** The next line of a chunked body, without its CRLF. */
  const line = async (): Promise<string> => {
    for (;;) {
      for (let i = start + 1; i < end; i++) {
        if (buf[i] === 10 && buf[i - 1] === 13) {
          const text = latin1.decode(buf.subarray(start, i - 1));
          start = i + 1;
          return text;
        }
      }
      if (!await fill()) throw new Error("closed in a chunked body");
    }
  };
  const skip = async (n: number): Promise<void> => {
    while (n > 0) {
      if (start === end && !await fill()) {
        throw new Error("closed in a body");
      }
      const k = Math.min(n, end - start);
      start += k;
      n -= k;
    }
  };
  /** Reads the body `head` announces, and drops it. */
  const readBody = async (head: string): Promise<void> => {
    if (/\r\ntransfer-encoding:[ \t]*chunked/i.test(head)) {
      for (;;) {
        const size = parseInt(await line(), 16);
        if (size === 0) break;
        await skip(size);
        await line();
      }
      while (await line() !== ""); // trailer fields
    } else {
      const m = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
      if (m !== null) await skip(Number(m[1]));
    }
  };
  try {
    (conn as Deno.TcpConn).setNoDelay(true);
    while (true) {
      // Serve every complete request head in the buffer (pipelining).
      let scanned = start;
      while (true) {
        const stop = headEnd(buf, Math.max(start, scanned - 3), end);
        if (stop < 0) {
          scanned = end;
          break;
        }
        const text = latin1.decode(buf.subarray(start, stop));
        start = scanned = stop;
        const sp1 = text.indexOf(" ");
        const sp2 = text.indexOf(" ", sp1 + 1);
        const target = text.slice(sp1 + 1, sp2);
        const q = target.indexOf("?");
        const path = q < 0 ? target : target.slice(0, q);
        const close = /\r\nconnection:[ \t]*close/i.test(text);
        const canned = (close ? closing : keepAlive).get(path) ??
          (close ? notFoundClose : notFoundKeep);
        const streamed = STREAMED[path];
        if (path === UPLOAD) {
          await readBody(text);
          scanned = start;
          for (const part of canned.parts) await writeAll(conn, part);
        } else if (streamed !== undefined && !text.startsWith("HEAD ")) {
          await writeAll(conn, head("200 OK", streamed, close));
          for (let sent = 0; sent < streamed; sent += STREAM_CHUNK.length) {
            await writeAll(
              conn,
              STREAM_CHUNK.subarray(
                0,
                Math.min(STREAM_CHUNK.length, streamed - sent),
              ),
            );
          }
        } else if (text.startsWith("HEAD ")) {
          // Not used by the bench; send the head only.
          await writeAll(
            conn,
            head(
              "200 OK",
              BODIES[path]?.length ?? NOT_FOUND.length,
              close,
            ),
          );
        } else {
          for (const part of canned.parts) await writeAll(conn, part);
        }
        if (close) return;
      }
      if (!await fill()) return;
    }
  } catch {
    // Client reset or went away: nothing to do.
  } finally {
    conns.delete(conn);
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

let shutdown: () => void;
if (IMPL === "serve") {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req) => {
      const path = new URL(req.url).pathname;
      const body = BODIES[path];
      return body
        ? new Response(body, {
          headers: { "content-type": "application/octet-stream" },
        })
        : new Response(NOT_FOUND, { status: 404 });
    },
  );
  console.log(
    JSON.stringify({
      port: server.addr.port,
      ports: [server.addr.port],
      impl: IMPL,
    }),
  );
  shutdown = () => Deno.exit(0);
} else if (IMPL === "raw") {
  const listeners = Array.from(
    { length: PORTS },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  for (const listener of listeners) {
    (async () => {
      try {
        for await (const conn of listener) serveRaw(conn);
      } catch {
        // Listener closed.
      }
    })();
  }
  const ports = listeners.map((l) => l.addr.port);
  console.log(JSON.stringify({ port: ports[0], ports, impl: IMPL }));
  shutdown = () => {
    for (const c of conns) {
      try {
        c.close();
      } catch {
        // Already closed.
      }
    }
    Deno.exit(0);
  };
} else {
  throw new TypeError(`Unknown --impl "${IMPL}": expected raw or serve`);
}

const timer = setTimeout(() => shutdown(), MAX_MS);
Deno.unrefTimer(timer);
const stdinBuf = new Uint8Array(256);
try {
  while ((await Deno.stdin.read(stdinBuf)) !== null) {
    // Nothing is sent on stdin; it only tells us when the parent is gone.
  }
} catch {
  // Parent gone.
}
shutdown();
