/**
 * `HttpClient`: the state machine of one HTTP/1.1 request, driven by selector
 * events.
 *
 * @module
 */
import { BlockingIOError } from "../selector/errors.ts";
import { EVENT_READ, EVENT_WRITE } from "../selector/events.ts";
import {
  kConsume,
  kPeek,
  kReadInto,
  kSendOwned,
  kTakeDirect,
} from "../selector/_pollable.ts";
import { PollableConn } from "../selector/pollable_conn.ts";
import { decodeBody } from "./_decode.ts";
import { allocate } from "../selector/_slab.ts";
import { kRequestWriter, RequestWriter } from "./_request.ts";
import { ResponseParser } from "./_response_parser.ts";
import { HttpParseError } from "./http_parse_error.ts";

/**
 * Where an {@linkcode HttpClient} is in its request.
 *
 * @example
 * ```ts
 * import type { HttpClientState } from "@seed/selectors";
 *
 * function finished(state: HttpClientState): boolean {
 *   return state === "done" || state === "failed";
 * }
 * console.log(finished("receiving")); // false
 * ```
 */
export type HttpClientState =
  | "connecting"
  | "sending"
  | "receiving"
  | "done"
  | "failed";

/**
 * A complete response, body read and decoded.
 *
 * @example
 * ```ts
 * import type { HttpResponse } from "@seed/selectors";
 *
 * function describe(response: HttpResponse): string {
 *   const type = response.headers.get("content-type") ?? "unknown type";
 *   return `${response.status} ${response.url}: ${response.body.length} bytes of ${type}`;
 * }
 * console.log(describe({
 *   url: "http://example.com/",
 *   status: 200,
 *   statusText: "OK",
 *   headers: new Headers({ "content-type": "text/html" }),
 *   body: new Uint8Array(3),
 * }));
 * ```
 */
export interface HttpResponse {
  /** The URL that answered (the last one, after redirects). */
  url: string;
  /** The status code. */
  status: number;
  /** The reason phrase, possibly empty. */
  statusText: string;
  /** The header fields as received (`Content-Encoding` included even once decoded). */
  headers: Headers;
  /**
   * The body, decoded unless `decompress: false`. A body of up to 4 KiB is a view
   * into a shared 128 KiB slab (small allocations are costly in Deno), so its
   * `.buffer` holds other bytes too: `body.slice()` gives a standalone copy.
   */
  body: Uint8Array;
}

/**
 * Options of {@linkcode HttpClient}.
 *
 * @example
 * ```ts
 * import type { HttpClientOptions } from "@seed/selectors";
 *
 * const options: HttpClientOptions = {
 *   method: "POST",
 *   headers: { "content-type": "application/json" },
 *   body: JSON.stringify({ hello: "world" }),
 *   timeout: 5_000,
 *   maxResponseBytes: 1 << 20,
 * };
 * console.log(options.method);
 * ```
 */
export interface HttpClientOptions {
  /**
   * The request method, an RFC 9110 token.
   *
   * @default {"GET"}
   */
  method?: string;
  /** Extra request headers. `Host` is always derived from the URL. */
  headers?: HeadersInit;
  /** A request body, sent with `Content-Length` (a string is sent as UTF-8). */
  body?: Uint8Array | string | null;
  /**
   * Milliseconds for the whole request, from connect to the last body byte;
   * `Infinity` for none. Checked on every {@linkcode HttpClient.handle} call; a
   * driver calls `handle(0)` once {@linkcode HttpClient.deadline} has passed.
   *
   * @default {30000}
   */
  timeout?: number;
  /**
   * The most body bytes accepted, counted on the wire and again after decoding.
   *
   * @default {Infinity}
   */
  maxResponseBytes?: number;
  /**
   * Decode `gzip`, `deflate` and `br` bodies (and ask for them, unless
   * `Accept-Encoding` is set).
   *
   * @default {true}
   */
  decompress?: boolean;
  /**
   * Keep the connection open after the response for another request (taken with
   * {@linkcode HttpClient.detach}); `false` sends `Connection: close`.
   *
   * @default {false}
   */
  keepAlive?: boolean;
  /** Extra CA certificates (PEM) for https, e.g. a private CA. */
  caCerts?: string[];
  /**
   * An idle keep-alive connection to the same origin to send on. If the server
   * closed it before any byte of the response came back, the request is sent once
   * more on a fresh connection (idempotent methods only).
   */
  conn?: PollableConn;
}

/** What `fetchAll` passes: the public options plus a writer shared by the crawl. */
export type InternalOptions = HttpClientOptions & {
  [kRequestWriter]?: RequestWriter;
};

const EMPTY = new Uint8Array(0);
/** Bodies with at least this much left are read straight into their buffer. */
const DIRECT_READ_MIN = 64 * 1024;
const IDEMPOTENT = new Set([
  "GET",
  "HEAD",
  "OPTIONS",
  "TRACE",
  "PUT",
  "DELETE",
]);

/**
 * One HTTP/1.1 request as a state machine for a selector loop, like the `Client` of
 * the crawler this project started from: `connecting` → `sending` → `receiving` →
 * `done` (or `failed` from any state).
 *
 * The driver registers {@linkcode HttpClient.pollable} for
 * {@linkcode HttpClient.events}, calls {@linkcode HttpClient.handle} with each
 * ready mask, and re-syncs its registration afterwards: `events` changes as the
 * request advances, and `pollable` changes if a stale keep-alive connection forced
 * a retry. `handle` never throws: every problem ends in `failed` with `error` set
 * (an {@linkcode HttpParseError} for a malformed response, `Deno.errors.TimedOut`
 * past the deadline, the connection's own error otherwise).
 *
 * @example Drive one request by hand
 * ```ts
 * import { assert } from "@std/assert";
 * import { DefaultSelector, HttpClient } from "@seed/selectors";
 *
 * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("hi"));
 * using sel = new DefaultSelector();
 * const client = new HttpClient(`http://127.0.0.1:${server.addr.port}/`);
 * sel.register(client.pollable, client.events);
 * while (client.events !== 0) {
 *   for (const [, mask] of await sel.select(1_000)) client.handle(mask);
 *   if (client.events !== 0) sel.modify(client.pollable, client.events);
 * }
 * sel.unregister(client.pollable);
 * assert(client.state === "done");
 * assert(new TextDecoder().decode(client.response?.body) === "hi");
 * ```
 */
export class HttpClient {
  /** The URL requested. */
  readonly url: URL;
  /** When the request times out, in `performance.now()` milliseconds (`Infinity` for never). */
  readonly deadline: number;

  /** The request method. */
  readonly method: string;
  #request: Uint8Array;
  #sent = 0;
  #state: HttpClientState = "connecting";
  #conn: PollableConn;
  #reused: boolean;
  #parser: ResponseParser;
  #bodyBuf: Uint8Array = EMPTY;
  #bodyLength = 0;
  #maxResponseBytes: number;
  #decompress: boolean;
  #keepAlive: boolean;
  #caCerts: string[] | undefined;
  #timeout: number;
  #response: HttpResponse | null = null;
  #error: unknown = null;

  /**
   * Validates the request and starts connecting (or sending, on a given `conn`).
   *
   * @param url An `http:` or `https:` URL.
   * @param options Method, headers, body, limits and connection options.
   * @throws {TypeError} If the URL does not parse or is not http(s), or the method
   *   or a header is invalid (CR, LF or NUL included).
   * @throws {RangeError} If `timeout` or `maxResponseBytes` is negative or NaN.
   */
  constructor(url: string | URL, options: HttpClientOptions = {}) {
    this.url = parseHttpUrl(url);
    this.#timeout = nonNegative("timeout", options.timeout, 30_000);
    this.#maxResponseBytes = nonNegative(
      "maxResponseBytes",
      options.maxResponseBytes,
      Infinity,
    );
    this.#decompress = options.decompress ?? true;
    this.#keepAlive = options.keepAlive ?? false;
    this.#caCerts = options.caCerts;
    const body = options.body ?? null;
    const writer = (options as InternalOptions)[kRequestWriter] ??
      new RequestWriter({
        method: options.method ?? "GET",
        ...(options.headers ? { headers: options.headers } : {}),
        body: typeof body === "string" ? new TextEncoder().encode(body) : body,
        keepAlive: this.#keepAlive,
        decompress: this.#decompress,
      });
    this.method = writer.method;
    this.#request = writer.encode(this.url);
    this.#parser = this.#newParser();
    this.deadline = performance.now() + this.#timeout;
    const conn = options.conn;
    this.#reused = conn !== undefined && IDEMPOTENT.has(this.method);
    if (conn !== undefined) {
      this.#conn = conn;
      this.#state = "sending";
    } else {
      this.#conn = this.#connect();
    }
  }

  /** Where the request is. */
  get state(): HttpClientState {
    return this.#state;
  }

  /** The connection to register with the selector; it changes on a retry. */
  get pollable(): PollableConn {
    return this.#conn;
  }

  /**
   * The events to register for now: `EVENT_WRITE` while connecting or sending,
   * `EVENT_READ` while receiving, `0` when done or failed.
   */
  get events(): number {
    const state = this.#state;
    if (state === "receiving") return EVENT_READ;
    return state === "connecting" || state === "sending" ? EVENT_WRITE : 0;
  }

  /** The response, once `done`. */
  get response(): HttpResponse | null {
    return this.#response;
  }

  /** Why the request failed, once `failed`. */
  get error(): unknown {
    return this.#error;
  }

  /**
   * Advances the request on readiness; never throws. Call it with the mask a
   * selector reported for {@linkcode HttpClient.pollable}, or with `0` to check
   * the deadline.
   *
   * @param mask `EVENT_READ`/`EVENT_WRITE` bits that are ready.
   */
  handle(mask: number): void {
    if (this.#state === "done" || this.#state === "failed") return;
    try {
      if (performance.now() >= this.deadline) {
        throw new Deno.errors.TimedOut(
          `Request timed out after ${this.#timeout} ms: ${this.url.href}`,
        );
      }
      if (this.#state === "connecting" && mask & EVENT_WRITE) {
        if (this.#conn.error) throw this.#conn.error;
        this.#state = "sending";
      }
      if (this.#state === "sending" && mask & (EVENT_WRITE | EVENT_READ)) {
        this.#send();
      } else if (this.#state === "receiving" && mask & EVENT_READ) {
        this.#receive();
      }
    } catch (e) {
      this.#fail(e);
    }
  }

  /**
   * Takes the connection of a `done` keep-alive request for another request to the
   * same origin, or `null` if it cannot be reused (then it is already closed).
   * Call it at most once; the client no longer owns the connection after it.
   *
   * @returns The open connection, or `null`.
   */
  detach(): PollableConn | null {
    if (this.#state !== "done" || this.#conn.closed) return null;
    return this.#conn;
  }

  /** Closes the connection, whatever the state; a pending request fails. */
  close(): void {
    if (this.#state !== "done" && this.#state !== "failed") {
      this.#fail(new Deno.errors.Interrupted("Request closed"));
    }
    this.#conn.close();
  }

  #connect(): PollableConn {
    const hostname = this.url.hostname.startsWith("[")
      ? this.url.hostname.slice(1, -1)
      : this.url.hostname;
    const port = Number(this.url.port) ||
      (this.url.protocol === "https:" ? 443 : 80);
    if (this.url.protocol === "https:") {
      return PollableConn.connectTls({
        hostname,
        port,
        ...(this.#caCerts ? { caCerts: this.#caCerts } : {}),
      });
    }
    return PollableConn.connect({ hostname, port });
  }

  #newParser(): ResponseParser {
    return new ResponseParser({
      method: this.method,
      maxBodyBytes: this.#maxResponseBytes,
    });
  }

  #send(): void {
    const request = this.#request;
    while (this.#sent < request.length) {
      try {
        // The request bytes are ours and never change: queue them without a copy.
        this.#sent += this.#conn[kSendOwned](
          this.#sent === 0 ? request : request.subarray(this.#sent),
        );
      } catch (e) {
        if (e instanceof BlockingIOError) return;
        throw e;
      }
    }
    this.#state = "receiving";
  }

  #receive(): void {
    const conn = this.#conn;
    const parser = this.#parser;
    let reusable: boolean;
    const direct = conn[kTakeDirect]();
    if (direct > 0) {
      // A large body's bytes that a read put straight into the body buffer.
      parser.skipBody(direct);
      this.#bodyLength += direct;
      reusable = this.#keepAlive && parser.keepAlive;
      this.#aimBody(conn);
      conn[kConsume](0, !parser.done || reusable);
    } else {
      // The parser reads straight from the conn's buffer (no copy per read); body
      // bytes are copied once, into the body buffer, before the view is released.
      const data = conn[kPeek]();
      if (data === undefined) return;
      let used: number;
      try {
        used = parser.receive(data);
        for (const chunk of parser.takeBody()) this.#appendBody(chunk);
      } catch (e) {
        if (data !== null) conn[kConsume](data.length, false); // about to close
        throw e;
      }
      // Bytes past the response mean a confused peer: the conn cannot be reused.
      reusable = this.#keepAlive && parser.keepAlive && data !== null &&
        used === data.length;
      if (data !== null) {
        this.#aimBody(conn);
        // A conn about to be closed reads no further: no read left to interrupt.
        conn[kConsume](data.length, !parser.done || reusable);
      }
    }
    if (!parser.done) return;
    const head = parser.head!;
    let body = this.#bodyBuf.length === this.#bodyLength
      ? this.#bodyBuf
      : this.#bodyBuf.subarray(0, this.#bodyLength);
    this.#bodyBuf = EMPTY;
    if (this.#decompress) {
      body = decodeBody(
        body,
        head.headers.get("content-encoding"),
        this.#maxResponseBytes,
      );
    }
    this.#response = {
      url: this.url.href,
      status: head.status,
      statusText: head.statusText,
      headers: head.headers,
      body,
    };
    this.#state = "done";
    if (!reusable) this.#conn.close();
  }

  /**
   * Inside a large `Content-Length` body, points the conn's next read straight at
   * the rest of the body buffer: no copy, and reads as large as the kernel has.
   */
  #aimBody(conn: PollableConn): void {
    const remaining = this.#parser.bodyRemaining;
    if (remaining < DIRECT_READ_MIN) return;
    if (this.#bodyBuf === EMPTY) this.#bodyBuf = allocate(remaining);
    const end = this.#bodyLength + remaining;
    if (end !== this.#bodyBuf.length) return; // not sized by Content-Length
    conn[kReadInto](this.#bodyBuf.subarray(this.#bodyLength, end));
  }

  /** Copies body bytes in: once, into a buffer sized by Content-Length when known. */
  #appendBody(chunk: Uint8Array): void {
    const length = this.#bodyLength + chunk.length;
    if (length > this.#bodyBuf.length) {
      let capacity = Math.max(length, this.#bodyBuf.length * 2);
      if (this.#bodyBuf === EMPTY) {
        const declared = this.#parser.contentLength;
        if (declared >= length) {
          capacity = declared;
        }
      }
      const grown = allocate(capacity);
      grown.set(this.#bodyBuf.subarray(0, this.#bodyLength));
      this.#bodyBuf = grown;
    }
    this.#bodyBuf.set(chunk, this.#bodyLength);
    this.#bodyLength = length;
  }

  #fail(error: unknown): void {
    if (this.#reused && this.#mayRetry(error)) {
      // The server closed an idle keep-alive conn as we reused it: nothing of the
      // response came, so the request never reached the application. Try once more.
      this.#reused = false;
      this.#conn.close();
      this.#conn = this.#connect();
      this.#state = "connecting";
      this.#sent = 0;
      this.#parser = this.#newParser();
      return;
    }
    this.#state = "failed";
    this.#error = error;
    this.#bodyBuf = EMPTY;
    this.#conn.close();
  }

  #mayRetry(error: unknown): boolean {
    if (this.#parser.started || performance.now() >= this.deadline) {
      return false;
    }
    if (error instanceof HttpParseError) return error.code === "empty-response";
    return error instanceof Deno.errors.ConnectionReset ||
      error instanceof Deno.errors.BrokenPipe ||
      error instanceof Deno.errors.ConnectionAborted ||
      error instanceof Deno.errors.BadResource;
  }
}

/**
 * Parses an http(s) URL with the WHATWG parser (which strips or percent-encodes
 * control characters, so none can reach the request line).
 *
 * @throws {TypeError} If it does not parse or is not http(s).
 */
export function parseHttpUrl(input: string | URL): URL {
  let url: URL;
  try {
    // A URL object is already parsed; parsing its href again costs a microsecond per request.
    url = input instanceof URL ? input : new URL(input);
  } catch (e) {
    throw new TypeError(`Cannot fetch: invalid URL "${String(input)}"`, {
      cause: e,
    });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(
      `Cannot fetch: unsupported scheme "${url.protocol}" in "${url.href}", expected http: or https:`,
    );
  }
  return url;
}

/** Reads a non-negative number option. */
export function nonNegative(
  name: string,
  value: number | undefined,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
    throw new RangeError(
      `Cannot fetch: ${name} must be a non-negative number, received ${value}`,
    );
  }
  return value;
}
