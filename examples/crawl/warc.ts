/**
 * `--warc` for the crawl CLI: a streaming WARC/1.1 writer (ISO 28500:2017).
 *
 * The file holds a `warcinfo` record, then for each exchange a `response` and a
 * `request` record with the bytes exactly as they went over the wire: status or
 * request line, headers, and the body before content decoding, chunked framing
 * included. Each record is its own gzip member (`.warc.gz`, as web archives store
 * them), written as soon as the exchange ends: a crash leaves every record before
 * the one being written readable.
 *
 * Digests are `sha1:` + base32, as the archiving tools write them:
 * `WARC-Block-Digest` over the whole block, `WARC-Payload-Digest` over the HTTP
 * entity body, that is after removing chunked framing and before content decoding
 * (WARC 1.1 §6.3.2; see `WarcWriterOptions.rawChunkedPayloadDigest`).
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { posix, win32 } from "node:path";
import { gzipSync } from "node:zlib";
import { DiskError } from "./disk_error.ts";
import { httpUrl } from "./_util.ts";

/** Bytes of a record block: one buffer, or pieces as they arrive. */
export type WarcBlockSource =
  | Uint8Array
  | Iterable<Uint8Array>
  | AsyncIterable<Uint8Array>;

/** One HTTP exchange as it went over the wire. */
export interface WarcExchange {
  /** The URL requested (`WARC-Target-URI`); its fragment and userinfo are dropped. */
  url: string | URL;
  /** When the request was sent (`WARC-Date`, to the second). @default {new Date()} */
  date?: Date;
  /** The server's IP address (`WARC-IP-Address`), when known. */
  ipAddress?: string;
  /** The bytes sent: request line, headers, body. */
  request: WarcBlockSource;
  /**
   * The bytes received: status line, headers, body with its transfer coding and
   * content coding as received. Interim 1xx responses before it may be
   * included (the payload digest skips them); the CLI's tap leaves them out.
   */
  response: WarcBlockSource;
  /**
   * Why the response is incomplete, when the caller records what arrived of a
   * response that failed (`WARC-Truncated`, WARC 1.1 §5.15): `"length"` (a size
   * limit), `"time"` (a timeout), `"disconnect"` or `"unspecified"`. Read once
   * both blocks have been read to their end, so a caller streaming them may set
   * it when it learns how the response ended.
   */
  truncated?: "length" | "time" | "disconnect" | "unspecified";
}

/** The record IDs of a written exchange (`<urn:uuid:...>`). */
export interface WarcExchangeIds {
  /** The `request` record's ID. */
  requestId: string;
  /** The `response` record's ID. */
  responseId: string;
}

/** Options of {@linkcode WarcWriter.create}. */
export interface WarcWriterOptions {
  /**
   * One gzip member per record (`.warc.gz`); `false` writes a plain `.warc`.
   *
   * @default {true}
   */
  gzip?: boolean;
  /** The `software` field of the `warcinfo` record. @default {"selectors crawl.ts (Deno <version>)"} */
  software?: string;
  /** More `warcinfo` fields (`isPartOf`, `description`, `robots`, ...). */
  info?: Record<string, string>;
  /**
   * Bytes of one record block kept in memory; a larger block (a big body) is
   * spooled to a temporary file while its digests are computed.
   *
   * @default {1048576}
   */
  memoryLimit?: number;
  /** Where temporary files go. @default {the WARC file's folder} */
  tempDir?: string;
  /**
   * Computes the payload digest of a chunked message over its body as received,
   * chunk framing included, instead of the entity body. WARC 1.1 §6.3.2 defines the
   * payload without transfer coding (the default); Python `warcio check` (1.8.1)
   * verifies the framed form (webrecorder/warcio#74, #75), as wpull and Heritrix's
   * FetchHTTP write it (ArchiveTeam/wpull#424, internetarchive/heritrix3#769). Set
   * it for archives that must pass `warcio check`.
   *
   * @default {false}
   */
  rawChunkedPayloadDigest?: boolean;
}

const CRLFCRLF = new Uint8Array([13, 10, 13, 10]);
const READ_PIECE = 64 * 1024;
/**
 * Records up to this size are compressed in one synchronous call and an
 * exchange's small records reach the file in one write: a stream per record
 * costs more than the compression itself, and this blocks the loop for well
 * under a millisecond.
 */
const SMALL_RECORD = 64 * 1024;
const encoder = new TextEncoder();

/**
 * Writes a WARC file record by record, as a crawl goes.
 *
 * Exchanges may be written concurrently: each one's blocks are read and digested
 * in parallel (spooled to a temporary file past `memoryLimit`, so memory stays flat
 * whatever the body size), and its two records are then appended one exchange at a
 * time. Records appear in the order their exchanges finish. Memory: at most
 * `2 × memoryLimit` per exchange being read, plus a 64 KiB piece being compressed.
 * Temporary files are named `.warc-spool-*` in `tempDir` and removed as soon as
 * their record is written.
 *
 * Failure: a failed file write rejects that call and every later one with the same
 * {@linkcode DiskError}, and the file is cut back to the end of the last whole
 * record, so it stays readable.
 *
 * @example Writing one exchange
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { WarcWriter } from "./warc.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const warc = await WarcWriter.create(`${dir}/crawl.warc.gz`);
 * const te = new TextEncoder();
 * const ids = await warc.writeExchange({
 *   url: "http://example.com/",
 *   ipAddress: "93.184.215.14",
 *   request: te.encode("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
 *   response: te.encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
 * });
 * await warc.close();
 * assertEquals(ids.requestId.startsWith("<urn:uuid:"), true);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class WarcWriter implements AsyncDisposable {
  #file: Deno.FsFile;
  #path: string;
  #gzip: boolean;
  #memoryLimit: number;
  #tempDir: string;
  #rawChunked: boolean;
  #warcinfoId = recordId();
  #tail: Promise<void> = Promise.resolve();
  #size = 0;
  #failure: DiskError | null = null;
  /** Set by the first close() (or abort()): closed from then on. */
  #closing: Promise<void> | null = null;
  /** abort(): the record being appended stops at its next chunk. */
  #aborted = false;

  private constructor(
    file: Deno.FsFile,
    path: string,
    options: WarcWriterOptions,
  ) {
    this.#file = file;
    this.#path = path;
    this.#gzip = options.gzip ?? true;
    this.#memoryLimit = options.memoryLimit ?? 1 << 20;
    // The folder by the OS's rules: `C:\crawls\x.warc` is in `C:\crawls` on
    // Windows (a backslash is a name's letter elsewhere).
    this.#tempDir = options.tempDir ??
      (Deno.build.os === "windows" ? win32 : posix).dirname(path);
    this.#rawChunked = options.rawChunkedPayloadDigest ?? false;
  }

  /**
   * Creates (or truncates) the WARC file and writes its `warcinfo` record.
   *
   * @param path The file, by convention `*.warc.gz` (or `*.warc` without gzip).
   * @param options Compression, `warcinfo` fields, spooling.
   * @returns The writer.
   * @throws {RangeError} When `memoryLimit` is negative.
   * @throws {DiskError} When the file cannot be created or written.
   */
  static async create(
    path: string,
    options: WarcWriterOptions = {},
  ): Promise<WarcWriter> {
    if (!((options.memoryLimit ?? 0) >= 0)) {
      throw new RangeError(
        `Cannot create WARC writer: memoryLimit must be >= 0, got ${options.memoryLimit}`,
      );
    }
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, {
        write: true,
        create: true,
        truncate: true,
      });
    } catch (cause) {
      throw new DiskError("create WARC file", path, cause);
    }
    const writer = new WarcWriter(file, path, options);
    try {
      await writer.#writeWarcinfo(options);
    } catch (error) {
      file.close();
      throw error;
    }
    return writer;
  }

  /** The WARC file's path. */
  get path(): string {
    return this.#path;
  }

  /** The `WARC-Record-ID` of the `warcinfo` record, which every record refers to. */
  get warcinfoId(): string {
    return this.#warcinfoId;
  }

  /**
   * Reads an exchange's request and response bytes and appends its `response`
   * record, then its `request` record (`WARC-Concurrent-To` the response), as
   * `warcio` and Heritrix order them.
   *
   * @param exchange The URL, date, IP address and the bytes of both messages.
   * @returns The two record IDs.
   * @throws {TypeError} When the URL is not an http(s) URL or the IP address is
   * malformed.
   * @throws {DiskError} When writing failed (this time or an earlier time).
   * @throws {Error} When the writer is closed.
   */
  async writeExchange(exchange: WarcExchange): Promise<WarcExchangeIds> {
    const target = targetUri(exchange.url);
    const ip = exchange.ipAddress;
    if (ip !== undefined && !/^[0-9A-Fa-f:.]+(%[0-9A-Za-z._-]+)?$/.test(ip)) {
      throw new TypeError(
        `Cannot write WARC record: invalid IP address '${ip}'`,
      );
    }
    this.#checkOpen();
    const date = warcDate(exchange.date ?? new Date());
    const requestId = recordId();
    const responseId = recordId();
    // Both settled before anything goes on: a failed block must not leave the
    // other's temporary file to be removed after the caller moved on (exited).
    const [requestOutcome, responseOutcome] = await Promise.allSettled([
      this.#spool(exchange.request, "request"),
      this.#spool(exchange.response, "response"),
    ]);
    if (
      requestOutcome.status === "rejected" ||
      responseOutcome.status === "rejected"
    ) {
      for (const outcome of [requestOutcome, responseOutcome]) {
        if (outcome.status === "fulfilled") await outcome.value.spool.dispose();
      }
      throw requestOutcome.status === "rejected"
        ? requestOutcome.reason
        : (responseOutcome as PromiseRejectedResult).reason;
    }
    const request = requestOutcome.value;
    const response = responseOutcome.value;
    try {
      const common = [
        ["WARC-Date", date],
        ["WARC-Target-URI", target],
        ["WARC-Warcinfo-ID", this.#warcinfoId],
        ...(ip === undefined ? [] : [["WARC-IP-Address", ip]]),
      ];
      await this.#append([
        {
          fields: [
            ["WARC-Type", "response"],
            ["WARC-Record-ID", responseId],
            ...common,
            ["Content-Type", "application/http;msgtype=response"],
            ...(exchange.truncated === undefined
              ? []
              : [["WARC-Truncated", exchange.truncated]]),
          ],
          block: response,
        },
        {
          fields: [
            ["WARC-Type", "request"],
            ["WARC-Record-ID", requestId],
            ...common,
            ["WARC-Concurrent-To", responseId],
            ["Content-Type", "application/http;msgtype=request"],
          ],
          block: request,
        },
      ]);
    } finally {
      await Promise.all([request.spool.dispose(), response.spool.dispose()]);
    }
    return { requestId, responseId };
  }

  /**
   * Waits for the records being appended, then closes the file (flushed to disk).
   * Exchanges still being read are not written: their `writeExchange` rejects.
   * Idempotent.
   */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  /**
   * Closes the writer without waiting for the records being appended (a second
   * Ctrl-C): the one being written is cut off at its next chunk, the file
   * truncated to the end of the last whole record, and the exchanges waiting
   * their turn are not written (their `writeExchange` rejects), so the file
   * stays readable and no temporary file is left. Ends a `close()` under way
   * the same way; resolves once the file is closed.
   */
  abort(): Promise<void> {
    this.#aborted = true;
    return this.close();
  }

  async #close(): Promise<void> {
    await this.#tail;
    try {
      await this.#file.sync();
    } catch {
      // A file that cannot be synced (a pipe, a device) is still closed.
    } finally {
      this.#file.close();
    }
  }

  /** Closes the writer, as {@linkcode WarcWriter.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #checkOpen(): void {
    if (this.#failure !== null) throw this.#failure;
    if (this.#closing !== null) throw closedError();
  }

  async #writeWarcinfo(options: WarcWriterOptions): Promise<void> {
    const fields: Record<string, string> = {
      software: options.software ??
        `selectors crawl.ts (Deno ${Deno.version.deno})`,
      format: "WARC File Format 1.1",
      conformsTo:
        "http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
      ...options.info,
    };
    const text = Object.entries(fields)
      .map(([name, value]) => `${name}: ${value.replace(/[\r\n]+/g, " ")}\r\n`)
      .join("");
    const block = await this.#spool([encoder.encode(text)], null);
    await this.#append([{
      fields: [
        ["WARC-Type", "warcinfo"],
        ["WARC-Record-ID", this.#warcinfoId],
        ["WARC-Date", warcDate(new Date())],
        ["WARC-Filename", this.#path.replace(/^.*\//, "")],
        ["Content-Type", "application/warc-fields"],
      ],
      block,
    }]);
  }

  /** Reads a block to its end, digesting it and keeping it (in memory or a file). */
  async #spool(
    source: WarcBlockSource,
    http: "request" | "response" | null,
  ): Promise<SpooledBlock> {
    const spool = new Spool(this.#memoryLimit, this.#tempDir);
    const block = createHash("sha1");
    const payload = http === null
      ? null
      : new PayloadDigest(http, this.#rawChunked);
    try {
      for await (
        const chunk of source instanceof Uint8Array ? [source] : source
      ) {
        if (chunk.length === 0) continue;
        block.update(chunk);
        payload?.update(chunk);
        await spool.write(chunk);
      }
    } catch (error) {
      await spool.dispose();
      throw error;
    }
    return {
      spool,
      blockDigest: sha1Base32(block),
      payloadDigest: payload?.digest() ?? null,
    };
  }

  /** Appends records, one exchange at a time, as gzip members. */
  #append(
    records: { fields: string[][]; block: SpooledBlock }[],
  ): Promise<void> {
    // Checked now, not when its turn comes: what was queued before close() is written.
    if (this.#closing !== null) return Promise.reject(closedError());
    const run = this.#tail.then(async () => {
      if (this.#failure !== null) throw this.#failure;
      if (this.#aborted) throw closedError();
      const start = this.#size;
      // Small records, compressed and waiting to be written in one go.
      let batch: Uint8Array[] = [];
      const flush = async () => {
        if (batch.length === 0) return;
        const bytes = batch.length === 1 ? batch[0]! : concatBytes(batch);
        batch = [];
        await this.#write(bytes);
      };
      try {
        for (const { fields, block } of records) {
          const header = [
            "WARC/1.1",
            ...fields.map(([name, value]) => `${name}: ${value}`),
            `WARC-Block-Digest: ${block.blockDigest}`,
            ...(block.payloadDigest === null
              ? []
              : [`WARC-Payload-Digest: ${block.payloadDigest}`]),
            `Content-Length: ${block.spool.size}`,
            "",
            "",
          ].join("\r\n");
          const kept = block.spool.chunks;
          if (kept !== null && block.spool.size <= SMALL_RECORD) {
            const whole = concatBytes([
              encoder.encode(header),
              ...kept,
              CRLFCRLF,
            ]);
            batch.push(this.#gzip ? gzipSync(whole) : whole);
            continue;
          }
          await flush();
          await this.#writeRecord(
            [encoder.encode(header)],
            block.spool.read(),
            [CRLFCRLF],
          );
        }
        await flush();
      } catch (cause) {
        if (this.#aborted) {
          // Cut off on purpose: the same truncation, and no disk error.
          await this.#file.truncate(start).catch(() => {});
          throw closedError();
        }
        const error = cause instanceof DiskError
          ? cause
          : new DiskError("write WARC file", this.#path, cause);
        this.#failure = error;
        // A half-written record would stop readers there; cutting it off keeps every
        // whole record readable (ftruncate works on a full disk).
        await this.#file.truncate(start).catch(() => {});
        throw error;
      }
    });
    this.#tail = run.catch(() => {});
    return run;
  }

  async #writeRecord(
    ...parts: (Iterable<Uint8Array> | AsyncIterable<Uint8Array>)[]
  ): Promise<void> {
    if (!this.#gzip) {
      for (const part of parts) {
        for await (const chunk of part) await this.#write(chunk);
      }
      return;
    }
    const gzip = new CompressionStream("gzip");
    // Typed as taking BufferSource; no chunk here sits on a SharedArrayBuffer.
    const writer = gzip.writable.getWriter() as WritableStreamDefaultWriter<
      Uint8Array
    >;
    const drain = (async () => {
      for await (const chunk of gzip.readable) await this.#write(chunk);
    })();
    // Handled below; this keeps an early failure from counting as unhandled meanwhile.
    drain.catch(() => {});
    let feedError: unknown = null;
    try {
      for (const part of parts) {
        for await (const chunk of part) await writer.write(chunk);
      }
      await writer.close();
    } catch (error) {
      feedError = error;
      await writer.abort(error).catch(() => {});
    }
    // A failed file write cancels the gzip stream: its DiskError is the one to report.
    await drain;
    if (feedError !== null) throw feedError;
  }

  async #write(chunk: Uint8Array): Promise<void> {
    if (this.#aborted) throw closedError();
    try {
      for (let written = 0; written < chunk.length;) {
        written += await this.#file.write(chunk.subarray(written));
      }
    } catch (cause) {
      throw new DiskError("write WARC file", this.#path, cause);
    }
    this.#size += chunk.length;
  }
}

interface SpooledBlock {
  spool: Spool;
  blockDigest: string;
  payloadDigest: string | null;
}

/** A record block kept until its record is written: in memory, or past the limit in a temporary file. */
class Spool {
  #limit: number;
  #dir: string;
  #chunks: Uint8Array[] = [];
  #file: Deno.FsFile | null = null;
  #path: string | null = null;
  size = 0;

  constructor(limit: number, dir: string) {
    this.#limit = limit;
    this.#dir = dir;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.size += chunk.length;
    if (this.#file === null && this.size <= this.#limit) {
      // A copy: the caller may reuse its buffer once this resolves.
      this.#chunks.push(chunk.slice());
      return;
    }
    try {
      if (this.#file === null) {
        this.#path = await Deno.makeTempFile({
          dir: this.#dir,
          prefix: ".warc-spool-",
        });
        this.#file = await Deno.open(this.#path, { read: true, write: true });
        for (const kept of this.#chunks) await writeAll(this.#file, kept);
        this.#chunks = [];
      }
      await writeAll(this.#file, chunk);
    } catch (cause) {
      throw new DiskError(
        "write temporary file",
        this.#path ?? this.#dir,
        cause,
      );
    }
  }

  /** The block's bytes when they are all in memory; `null` once spooled to a file. */
  get chunks(): Uint8Array[] | null {
    return this.#file === null ? this.#chunks : null;
  }

  async *read(): AsyncGenerator<Uint8Array> {
    if (this.#file === null) {
      yield* this.#chunks;
      return;
    }
    await this.#file.seek(0, Deno.SeekMode.Start);
    const buffer = new Uint8Array(READ_PIECE);
    for (;;) {
      const n = await this.#file.read(buffer);
      if (n === null) return;
      // CompressionStream may hold the chunk; the buffer is reused next round.
      yield buffer.slice(0, n);
    }
  }

  async dispose(): Promise<void> {
    this.#chunks = [];
    if (this.#file !== null) {
      this.#file.close();
      this.#file = null;
      await Deno.remove(this.#path!).catch(() => {});
    }
  }
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const part of parts) size += part.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

async function writeAll(file: Deno.FsFile, chunk: Uint8Array): Promise<void> {
  for (let written = 0; written < chunk.length;) {
    written += await file.write(chunk.subarray(written));
  }
}

/**
 * The SHA-1 of an HTTP message's entity body, fed the message's bytes as they come:
 * finds the end of the head (after any interim 1xx responses), then hashes the
 * body by its framing (chunked: the chunk data only; Content-Length: that many
 * bytes; else all). Gives `null` when the message cannot be parsed as HTTP/1.x,
 * since a digest of a guess would mislead. A response to HEAD needs no special
 * case: whatever its headers announce, no body bytes follow, so its digest is that
 * of the empty payload.
 */
class PayloadDigest {
  #kind: "request" | "response";
  #raw: boolean;
  #hash: Hash | null = createHash("sha1");
  #head: number[] = [];
  #state: "head" | "none" | "length" | "rest" | "chunked" = "head";
  #remaining = 0;
  #chunked = new ChunkedReader();

  constructor(kind: "request" | "response", raw: boolean) {
    this.#kind = kind;
    this.#raw = raw;
  }

  update(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.length && this.#hash !== null) {
      switch (this.#state) {
        case "head":
          offset = this.#readHead(chunk, offset);
          break;
        case "length": {
          const end = Math.min(chunk.length, offset + this.#remaining);
          this.#hash.update(chunk.subarray(offset, end));
          this.#remaining -= end - offset;
          offset = end;
          if (this.#remaining === 0) this.#state = "none";
          break;
        }
        case "rest":
          this.#hash.update(chunk.subarray(offset));
          offset = chunk.length;
          break;
        case "chunked":
          if (this.#raw) {
            this.#hash.update(chunk.subarray(offset));
          } else if (!this.#chunked.feed(chunk.subarray(offset), this.#hash)) {
            this.#hash = null;
          }
          offset = chunk.length;
          break;
        case "none":
          // Bytes after the body's end are not payload.
          offset = chunk.length;
          break;
      }
    }
  }

  digest(): string | null {
    if (this.#hash === null || this.#state === "head") return null;
    return sha1Base32(this.#hash);
  }

  #readHead(chunk: Uint8Array, offset: number): number {
    for (let i = offset; i < chunk.length; i++) {
      const byte = chunk[i]!;
      this.#head.push(byte);
      const n = this.#head.length;
      // The head ends at an empty line (CRLF CRLF, or bare LF LF as RFC 9112 §2.2 tolerates).
      if (
        byte === 10 &&
        (this.#head[n - 2] === 10 ||
          (this.#head[n - 2] === 13 && this.#head[n - 3] === 10))
      ) {
        this.#startBody(
          new TextDecoder("latin1").decode(new Uint8Array(this.#head)),
        );
        this.#head = [];
        return i + 1;
      }
      if (n > 256 * 1024) {
        this.#hash = null;
        return chunk.length;
      }
    }
    return chunk.length;
  }

  #startBody(head: string): void {
    const [startLine = "", ...lines] = head.split(/\r?\n/);
    const headers = new Map<string, string>();
    let last: string | null = null;
    for (const line of lines) {
      if (last !== null && (line.startsWith(" ") || line.startsWith("\t"))) {
        // obs-fold: the value goes on, after a space, as the client reads it
        // (RFC 9112 §5.2); `Transfer-Encoding:` then ` chunked` is chunked.
        const before = headers.get(last)!;
        headers.set(last, `${before}${before === "" ? "" : " "}${line.trim()}`);
        continue;
      }
      const colon = line.indexOf(":");
      last = null;
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers.set(
        name,
        headers.has(name) ? `${headers.get(name)}, ${value}` : value,
      );
      last = name;
    }
    let noBody = false;
    if (this.#kind === "request") {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+ \S+ HTTP\/1\.\d$/.test(startLine)) {
        this.#hash = null;
        return;
      }
    } else {
      const match = /^HTTP\/1\.\d (\d{3})(?: .*)?$/.exec(startLine);
      if (match === null) {
        this.#hash = null;
        return;
      }
      const status = Number(match[1]);
      // An interim response: the final one follows.
      if (status >= 100 && status <= 199 && status !== 101) return;
      noBody = status === 204 || status === 304 || status === 101;
    }
    const codings = headers.get("transfer-encoding")?.toLowerCase().split(",")
      .map((c) => c.trim());
    const length = headers.get("content-length");
    if (noBody) {
      this.#state = "none";
    } else if (codings !== undefined && codings.at(-1) === "chunked") {
      this.#state = "chunked";
    } else if (length !== undefined && /^\d+$/.test(length)) {
      this.#remaining = Number(length);
      this.#state = this.#remaining === 0 ? "none" : "length";
    } else {
      // A request without framing has no body; a response runs to the close.
      this.#state = this.#kind === "request" ? "none" : "rest";
    }
  }
}

/** Removes chunked framing (RFC 9112 §7.1), passing the chunk data to a hash. */
class ChunkedReader {
  #state: "size" | "data" | "data-end" | "trailer" | "done" = "size";
  #line = "";
  #remaining = 0;

  /** Feeds bytes; `false` when the framing is malformed. */
  feed(bytes: Uint8Array, hash: Hash): boolean {
    let i = 0;
    while (i < bytes.length) {
      if (this.#state === "data") {
        const end = Math.min(bytes.length, i + this.#remaining);
        hash.update(bytes.subarray(i, end));
        this.#remaining -= end - i;
        i = end;
        if (this.#remaining === 0) this.#state = "data-end";
        continue;
      }
      if (this.#state === "done") return true;
      const byte = bytes[i++]!;
      if (byte !== 10) {
        if (byte !== 13) this.#line += String.fromCharCode(byte);
        if (this.#line.length > 8192) return false;
        continue;
      }
      const line = this.#line;
      this.#line = "";
      switch (this.#state) {
        case "size": {
          const match = /^([0-9A-Fa-f]+)[ \t]*(;.*)?$/.exec(line);
          if (match === null) return false;
          this.#remaining = parseInt(match[1]!, 16);
          if (!Number.isSafeInteger(this.#remaining)) return false;
          this.#state = this.#remaining === 0 ? "trailer" : "data";
          break;
        }
        case "data-end":
          if (line !== "") return false;
          this.#state = "size";
          break;
        case "trailer":
          if (line === "") this.#state = "done";
          break;
      }
    }
    return true;
  }
}

/**
 * What `writeExchange` rejects with once the writer is closed (or aborted)
 * before the exchange's turn.
 *
 * @example
 * ```ts
 * import { assertInstanceOf, assertRejects } from "@std/assert";
 * import { WarcWriter, WarcWriterClosed } from "./warc.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const warc = await WarcWriter.create(`${dir}/x.warc.gz`);
 * await warc.close();
 * const error = await assertRejects(() =>
 *   warc.writeExchange({ url: "http://a.test/", request: new Uint8Array(0), response: new Uint8Array(0) })
 * );
 * assertInstanceOf(error, WarcWriterClosed);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class WarcWriterClosed extends Error {
  override name = "WarcWriterClosed";
}

function closedError(): Error {
  return new WarcWriterClosed("Cannot write WARC record: the writer is closed");
}

function recordId(): string {
  return `<urn:uuid:${crypto.randomUUID()}>`;
}

/** WARC-Date: UTC, to the second (WARC 1.1 §5.4 allows more; readers of 1.0 do not). */
function warcDate(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

function targetUri(url: string | URL): string {
  const parsed = httpUrl(url, "write WARC record");
  // A URL's password has no place in an archive's index; the request record
  // still holds the Authorization header the server saw. The path and query
  // as RFC 3986 has them (WARC 1.1 §5.14): the URL parser leaves `|`, `^`,
  // `[`, `]`, a `%` of no escape and, in a query, `` ` ``, `{`, `}` and `\`
  // raw; the host is left alone (an IPv6 literal's brackets).
  // An empty query is one too (`URL.search` is "" for it, `href` keeps it).
  const query = parsed.search ||
    (parsed.href.split("#", 1)[0]!.endsWith("?") ? "?" : "");
  return parsed.origin +
    (parsed.pathname + query).replace(
      NOT_IN_URI,
      (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
    );
}

/**
 * What a WHATWG URL's path or query may hold raw that RFC 3986 does not allow,
 * a `%` that starts no escape among it.
 */
const NOT_IN_URI = /[\\^`{|}[\]]|%(?![0-9A-Fa-f]{2})/g;

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** `sha1:` and the RFC 4648 base32 of the digest (20 bytes: 32 characters, no padding). */
function sha1Base32(hash: Hash): string {
  const bytes = hash.digest();
  let out = "";
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return `sha1:${out}`;
}
