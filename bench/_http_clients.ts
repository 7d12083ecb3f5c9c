/**
 * The HTTP clients that the bench compares, each running one whole workload (a list
 * of URL paths on one origin) and returning what it received, so that every client
 * is checked for the same bytes:
 *
 * - {@linkcode runFetchAll}: this module's `fetchAll` (keep-alive), of the `mod.ts`
 *   given as an {@linkcode Engine}:
 *   every result held until the crawl ends, as its contract says;
 * - {@linkcode runFetchEach}: the same crawl through `fetchEach`, each result counted
 *   and dropped as it is yielded (the engine without the retention);
 * - {@linkcode runFetchPool}: Deno's built-in `fetch`, `concurrency` workers pulling
 *   from one shared queue, each awaiting `res.arrayBuffer()`;
 * - {@linkcode runRawKeepAlive}: `concurrency` keep-alive conns (plain
 *   `Deno.connect`, or `Deno.connectTls` for https: {@linkcode connectPlain},
 *   {@linkcode connectTls}), requests sequential per conn, minimal parsing (head
 *   end, `Content-Length`, body copied into its own buffer);
 * - {@linkcode runRawRead}: one conn, one request, the body read straight into its
 *   final buffer by a `conn.read` loop (the floor for the 64 MiB row);
 * - {@linkcode runRawClose}: `concurrency` workers, each request on a new
 *   `Deno.connect` conn (connect, write, read, close), as `keepAlive: false` does;
 * - {@linkcode runRawSink} and {@linkcode runFetchAllSink}: one body streamed to a
 *   file, by a `conn.read` → `file.write` loop and by `fetchAll` with a
 *   `RequestSpec` sink.
 *
 * @module
 */
// Types only: the caller passes the engine (`_http_child.ts` imports it), so
// that a process holds the one `mod.ts` it runs (see `Engine`).
import type {
  fetchAll,
  FetchAllOptions,
  fetchEach,
  FetchResult,
} from "../mod.ts";

/** What one run of a workload brought back. */
export interface RunResult {
  /** Responses with status 200 and the expected body length. */
  ok: number;
  /** Body bytes received in those responses. */
  bytes: number;
  /** The first failure, if any, for the report. */
  firstError?: string;
  /** The client's own timing, when it is a process whose start-up should not count. */
  seconds?: number;
}

/** Options common to every client. */
export interface RunOptions {
  /** Requests in flight at once (workers, conns). */
  concurrency: number;
  /** The body length every response must have. */
  expectedLength: number;
  /**
   * Each request a POST of a body streamed in `chunks` chunks of `size` bytes
   * (`fetchAll`, `fetch` and the raw keep-alive loop only).
   */
  upload?: Upload;
  /**
   * Where the keep-alive clients (the raw loop, `fetchAll`, `fetchEach`,
   * `fetch`) write each request's latency, ms, at its index: from its start to
   * its last byte (the raw loop) or its body read (`fetch`), one
   * `performance.now()` per request (a request's end is the start of its
   * conn's or worker's next), or its `result.timings.total`. Allocated once by
   * the caller, at least as long as the URL list, so that the stamps allocate
   * nothing in a run.
   */
  latency?: Float64Array;
}

/** A request body streamed in equal chunks. */
export interface Upload {
  chunks: number;
  size: number;
}

const UPLOAD_CHUNK = new Map<number, Uint8Array>();

/**
 * A fresh stream of `upload`'s chunks: one buffer, yielded again and again, as
 * a producer reusing its buffer does (a client must be done with a chunk, or
 * have copied it, once it asks for the next).
 */
export function uploadStream(upload: Upload): ReadableStream<Uint8Array> {
  let chunk = UPLOAD_CHUNK.get(upload.size);
  if (chunk === undefined) {
    UPLOAD_CHUNK.set(
      upload.size,
      chunk = new Uint8Array(upload.size).fill(117),
    );
  }
  const bytes = chunk;
  return ReadableStream.from((function* () {
    for (let i = 0; i < upload.chunks; i++) yield bytes;
  })());
}

/** `upload`'s body as a chunked body on the wire, built once for the raw loop. */
function framedUpload(upload: Upload): Uint8Array {
  const size = encoder.encode(`${upload.size.toString(16)}\r\n`);
  const one = size.length + upload.size + 2;
  const out = new Uint8Array(upload.chunks * one + 5).fill(117);
  for (let i = 0; i < upload.chunks; i++) {
    out.set(size, i * one);
    out.set([13, 10], i * one + size.length + upload.size);
  }
  out.set(encoder.encode("0\r\n\r\n"), upload.chunks * one);
  return out;
}

/** Counts `r` into `out`: ok when status 200 with the expected body length. */
function tally(out: RunResult, r: FetchResult, expectedLength: number): void {
  if (
    r.ok && r.response.status === 200 &&
    r.response.body.length === expectedLength
  ) {
    out.ok++;
    out.bytes += r.response.body.length;
  } else {
    out.firstError ??= r.ok
      ? `status ${r.response.status}, ${r.response.body.length} bytes`
      : String(r.error);
  }
}

/**
 * What the bench may add to the crawl options: `proxy` is typed here because
 * a branch's `fetchAll` may not know it yet (the proxy row checks whether it was
 * used).
 */
export type ExtraOptions = Omit<FetchAllOptions, "concurrency"> & {
  proxy?: string;
};

/**
 * The `fetchAll` and `fetchEach` a client calls: a `mod.ts` the caller imported,
 * this checkout's or another's (the bench's `--baseline`). Not imported here:
 * a process that also held this checkout's copy beside the one it runs (a
 * baseline twin did) ran its cold crawl ~4% faster than one holding only the
 * copy it runs, so that an A/A read 0.93x.
 */
export interface Engine {
  fetchAll: typeof fetchAll;
  fetchEach: typeof fetchEach;
}

/**
 * Runs the URLs through `fetchAll` (keep-alive unless `extra.keepAlive` is
 * false); with `options.upload`, each a POST whose body stream is made as the
 * crawl takes its URL.
 */
export async function runFetchAll(
  urls: string[],
  options: RunOptions,
  extra: ExtraOptions = {},
  engine: Engine,
): Promise<RunResult> {
  const upload = options.upload;
  const source = upload === undefined ? urls : (function* () {
    for (const url of urls) {
      yield { url, method: "POST", body: uploadStream(upload) };
    }
  })();
  const results = await engine.fetchAll(source, {
    timeout: 120_000,
    ...extra,
    concurrency: options.concurrency,
    keepAlive: extra.keepAlive ?? true,
  } as FetchAllOptions);
  const out: RunResult = { ok: 0, bytes: 0 };
  const latency = options.latency;
  for (let i = 0; i < results.length; i++) {
    const r = results[i]!;
    tally(out, r, options.expectedLength);
    if (latency !== undefined) latency[i] = r.timings.total;
  }
  return out;
}

/**
 * Runs the URLs through `fetchEach` with keep-alive, counting each result as it is
 * yielded and keeping none.
 */
export async function runFetchEach(
  urls: string[],
  options: RunOptions,
  extra: ExtraOptions = {},
  engine: Engine,
): Promise<RunResult> {
  const out: RunResult = { ok: 0, bytes: 0 };
  const latency = options.latency;
  for await (
    const { index, result } of engine.fetchEach(urls, {
      timeout: 120_000,
      ...extra,
      concurrency: options.concurrency,
      keepAlive: extra.keepAlive ?? true,
    } as FetchAllOptions)
  ) {
    tally(out, result, options.expectedLength);
    if (latency !== undefined) latency[index] = result.timings.total;
  }
  return out;
}

/**
 * Runs the URLs through a pool of `concurrency` workers over `fetch` (through
 * `client`, e.g. one made by `Deno.createHttpClient({ proxy })`, when given);
 * with `options.upload`, each a POST of a fresh body stream.
 */
export async function runFetchPool(
  urls: string[],
  options: RunOptions,
  client?: Deno.HttpClient,
): Promise<RunResult> {
  const out: RunResult = { ok: 0, bytes: 0 };
  let next = 0;
  const upload = options.upload;
  const init = client ? { client } : undefined;
  const latency = options.latency;
  async function worker(): Promise<void> {
    // One clock read per request: its end is the start of the worker's next.
    let t0 = latency !== undefined ? performance.now() : 0;
    while (next < urls.length) {
      const i = next++;
      const url = urls[i]!;
      try {
        // A GET's call as it was before the upload row: nothing built per request.
        const res = await fetch(
          url,
          upload === undefined
            ? init
            : { ...init, method: "POST", body: uploadStream(upload) },
        );
        const body = await res.arrayBuffer();
        if (latency !== undefined) {
          const t1 = performance.now();
          latency[i] = t1 - t0;
          t0 = t1;
        }
        if (
          res.status === 200 && body.byteLength === options.expectedLength
        ) {
          out.ok++;
          out.bytes += body.byteLength;
        } else {
          out.firstError ??= `status ${res.status}, ${body.byteLength} bytes`;
        }
      } catch (e) {
        out.firstError ??= String(e);
      }
    }
  }
  await Promise.all(
    Array.from({ length: Math.min(options.concurrency, urls.length) }, worker),
  );
  return out;
}

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");

/** Index just after the first `\r\n\r\n` in `buf[0, end)`, or -1. */
function headEnd(buf: Uint8Array, end: number): number {
  for (let i = 3; i < end; i++) {
    if (
      buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 &&
      buf[i - 3] === 13
    ) return i + 1;
  }
  return -1;
}

/** `Content-Length` and status from a response head, minimally parsed. */
function parseHead(head: string): { status: number; length: number } {
  const status = Number(head.slice(9, 12));
  const m = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
  if (m === null) throw new Error("Response without Content-Length");
  return { status, length: Number(m[1]) };
}

/**
 * The raw loops' request bytes for each distinct path, built once before a run;
 * `host` is the `Host` field's value (`127.0.0.1:port`, or `localhost:port`
 * over TLS). With `upload`, a POST with its chunked body in the same buffer.
 */
function rawRequests(
  host: string,
  paths: string[],
  extraFields: string,
  upload?: Upload,
): Map<string, Uint8Array> {
  const requests = new Map<string, Uint8Array>();
  const body = upload === undefined ? undefined : framedUpload(upload);
  for (const p of new Set(paths)) {
    const head = encoder.encode(
      body === undefined
        ? `GET ${p} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: bench-raw\r\n${extraFields}\r\n`
        : `POST ${p} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: bench-raw\r\nTransfer-Encoding: chunked\r\n${extraFields}\r\n`,
    );
    if (body === undefined) requests.set(p, head);
    else {
      const all = new Uint8Array(head.length + body.length);
      all.set(head);
      all.set(body, head.length);
      requests.set(p, all);
    }
  }
  return requests;
}

/** Where a raw keep-alive loop connects, and what its requests' `Host` says. */
export interface RawTarget {
  /** Opens one conn, ready for the first request. */
  connect(): Promise<Deno.Conn>;
  /** The `Host` field's value. */
  host: string;
}

/** A plain TCP target: `Deno.connect` to 127.0.0.1, Nagle off. */
export function connectPlain(port: number): RawTarget {
  return {
    async connect() {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.setNoDelay(true);
      return conn;
    },
    host: `127.0.0.1:${port}`,
  };
}

/**
 * A TLS target: `Deno.connectTls` to `hostname` trusting `caCerts`, the
 * handshake completed in `connect()` (a `Deno.TlsConn` has no `setNoDelay`).
 */
export function connectTls(
  hostname: string,
  port: number,
  caCerts: string[],
): RawTarget {
  return {
    async connect() {
      const conn = await Deno.connectTls({ hostname, port, caCerts });
      try {
        await conn.handshake();
      } catch (e) {
        conn.close();
        throw e;
      }
      return conn;
    },
    host: `${hostname}:${port}`,
  };
}

/**
 * Runs `paths` over `concurrency` keep-alive conns to `target` (plain or TLS),
 * each sending its next request when the previous response has been read.
 *
 * With `keep`, it keeps every response as `{ status, body }` until the run ends,
 * as `fetchAll` keeps its results: what holding the bodies costs a client that
 * does nothing else.
 */
export async function runRawKeepAlive(
  target: RawTarget,
  paths: string[],
  options: RunOptions,
  keep = false,
): Promise<RunResult> {
  const out: RunResult = { ok: 0, bytes: 0 };
  let next = 0;
  const requests = rawRequests(target.host, paths, "", options.upload);
  const kept: { status: number; body: Uint8Array }[] = [];
  const latency = options.latency;
  async function worker(): Promise<void> {
    const conn = await target.connect();
    let buf = new Uint8Array(64 * 1024);
    let end = 0; // bytes buffered in buf[0, end)
    // One clock read per request: its end is the start of the conn's next.
    let t0 = latency !== undefined ? performance.now() : 0;
    try {
      while (next < paths.length) {
        const i = next++;
        const req = requests.get(paths[i]!)!;
        let off = 0;
        while (off < req.length) off += await conn.write(req.subarray(off));
        // Head.
        let stop: number;
        while ((stop = headEnd(buf, end)) < 0) {
          if (end === buf.length) {
            const bigger = new Uint8Array(buf.length * 2);
            bigger.set(buf);
            buf = bigger;
          }
          const n = await conn.read(buf.subarray(end));
          if (n === null) throw new Error("Connection closed in the head");
          end += n;
        }
        const { status, length } = parseHead(
          latin1.decode(buf.subarray(0, stop)),
        );
        // Body, copied into its own buffer as a client hands it over.
        const body = new Uint8Array(length);
        let have = Math.min(end - stop, length);
        body.set(buf.subarray(stop, stop + have));
        buf.copyWithin(0, stop + have, end);
        end -= stop + have;
        while (have < length) {
          const n = await conn.read(buf);
          if (n === null) throw new Error("Connection closed in the body");
          const take = Math.min(n, length - have);
          body.set(buf.subarray(0, take), have);
          have += take;
          if (take < n) {
            buf.copyWithin(0, take, n);
            end = n - take;
          }
        }
        if (latency !== undefined) {
          const t1 = performance.now();
          latency[i] = t1 - t0;
          t0 = t1;
        }
        if (keep) kept.push({ status, body });
        if (status === 200 && length === options.expectedLength) {
          out.ok++;
          out.bytes += length;
        } else {
          out.firstError ??= `status ${status}, ${length} bytes`;
        }
      }
    } catch (e) {
      out.firstError ??= String(e);
    } finally {
      conn.close();
    }
  }
  await Promise.all(
    Array.from({ length: Math.min(options.concurrency, paths.length) }, worker),
  );
  // Read after the run, so the kept responses live until it ends.
  if (keep && kept.length !== out.ok) {
    out.firstError ??= `kept ${kept.length} responses of ${out.ok}`;
  }
  return out;
}

/**
 * One request on one conn; the body is read by `conn.read` straight into a buffer
 * of its `Content-Length`: no copies but the kernel's.
 */
export async function runRawRead(
  port: number,
  path: string,
  options: RunOptions,
): Promise<RunResult> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      encoder.encode(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
      ),
    );
    const headBuf = new Uint8Array(64 * 1024);
    let end = 0;
    let stop: number;
    while ((stop = headEnd(headBuf, end)) < 0) {
      const n = await conn.read(headBuf.subarray(end));
      if (n === null) throw new Error("Connection closed in the head");
      end += n;
    }
    const { status, length } = parseHead(
      latin1.decode(headBuf.subarray(0, stop)),
    );
    const body = new Uint8Array(length);
    let have = Math.min(end - stop, length);
    body.set(headBuf.subarray(stop, stop + have));
    while (have < length) {
      const n = await conn.read(body.subarray(have));
      if (n === null) throw new Error("Connection closed in the body");
      have += n;
    }
    return status === 200 && length === options.expectedLength
      ? { ok: 1, bytes: length }
      : { ok: 0, bytes: 0, firstError: `status ${status}, ${length} bytes` };
  } finally {
    conn.close();
  }
}

/**
 * Reads one response head from a fresh conn into `buf[0, …)`: its status, its
 * `Content-Length`, where the body starts and how many bytes were read.
 */
async function readFreshHead(
  conn: Deno.Conn,
  buf: Uint8Array,
): Promise<{ status: number; length: number; stop: number; end: number }> {
  let end = 0;
  let stop: number;
  while ((stop = headEnd(buf, end)) < 0) {
    if (end === buf.length) throw new Error("Response head too large");
    const n = await conn.read(buf.subarray(end));
    if (n === null) throw new Error("Connection closed in the head");
    end += n;
  }
  const { status, length } = parseHead(latin1.decode(buf.subarray(0, stop)));
  return { status, length, stop, end };
}

/**
 * Runs `paths` with one new conn per request (`concurrency` workers, each doing
 * connect, write, read the response by its `Content-Length`, close): the raw
 * loop that `keepAlive: false` is measured against.
 *
 * With `keep`, it keeps every response as `{ status, body }` until the run ends,
 * as {@linkcode runRawKeepAlive} does.
 */
export async function runRawClose(
  port: number,
  paths: string[],
  options: RunOptions,
  keep = false,
): Promise<RunResult> {
  const out: RunResult = { ok: 0, bytes: 0 };
  let next = 0;
  const requests = rawRequests(
    `127.0.0.1:${port}`,
    paths,
    "Connection: close\r\n",
  );
  const kept: { status: number; body: Uint8Array }[] = [];
  async function worker(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    while (next < paths.length) {
      const req = requests.get(paths[next++]!)!;
      let conn: Deno.TcpConn | undefined;
      try {
        conn = await Deno.connect({ hostname: "127.0.0.1", port });
        conn.setNoDelay(true);
        let off = 0;
        while (off < req.length) off += await conn.write(req.subarray(off));
        const { status, length, stop, end } = await readFreshHead(conn, buf);
        const body = new Uint8Array(length);
        let have = Math.min(end - stop, length);
        body.set(buf.subarray(stop, stop + have));
        while (have < length) {
          const n = await conn.read(body.subarray(have));
          if (n === null) throw new Error("Connection closed in the body");
          have += n;
        }
        if (keep) kept.push({ status, body });
        if (status === 200 && length === options.expectedLength) {
          out.ok++;
          out.bytes += length;
        } else {
          out.firstError ??= `status ${status}, ${length} bytes`;
        }
      } catch (e) {
        out.firstError ??= String(e);
      } finally {
        conn?.close();
      }
    }
  }
  await Promise.all(
    Array.from({ length: Math.min(options.concurrency, paths.length) }, worker),
  );
  if (keep && kept.length !== out.ok) {
    out.firstError ??= `kept ${kept.length} responses of ${out.ok}`;
  }
  return out;
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await file.write(data.subarray(off));
}

/**
 * One GET whose body goes to `file` by a `conn.read` (64 KiB buffer) →
 * `file.write` loop: the floor for the sink row.
 */
export async function runRawSink(
  port: number,
  path: string,
  options: RunOptions,
  file: Deno.FsFile,
): Promise<RunResult> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      encoder.encode(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
      ),
    );
    const buf = new Uint8Array(64 * 1024);
    const { status, length, stop, end } = await readFreshHead(conn, buf);
    let have = Math.min(end - stop, length);
    await writeAll(file, buf.subarray(stop, stop + have));
    while (have < length) {
      const n = await conn.read(buf);
      if (n === null) throw new Error("Connection closed in the body");
      const take = Math.min(n, length - have);
      await writeAll(file, buf.subarray(0, take));
      have += take;
    }
    return status === 200 && length === options.expectedLength
      ? { ok: 1, bytes: length }
      : { ok: 0, bytes: 0, firstError: `status ${status}, ${length} bytes` };
  } finally {
    conn.close();
  }
}

/**
 * One GET through `fetchAll` with a `RequestSpec` sink: a `WritableStream` that
 * writes each chunk to `file`.
 */
export async function runFetchAllSink(
  url: string,
  options: RunOptions,
  file: Deno.FsFile,
  engine: Engine,
): Promise<RunResult> {
  let written = 0;
  const sink = new WritableStream<Uint8Array>({
    async write(chunk) {
      await writeAll(file, chunk);
      written += chunk.length;
    },
  });
  const [r] = await engine.fetchAll([{ url, sink }], {
    concurrency: 1,
    timeout: 600_000,
  });
  if (r === undefined) return { ok: 0, bytes: 0, firstError: "no result" };
  if (!r.ok) return { ok: 0, bytes: 0, firstError: String(r.error) };
  return r.response.status === 200 && written === options.expectedLength
    ? { ok: 1, bytes: written }
    : {
      ok: 0,
      bytes: 0,
      firstError: `status ${r.response.status}, ${written} bytes to the sink`,
    };
}
