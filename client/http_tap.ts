/**
 * The raw-bytes tap of `HttpClient` and the crawl: what an archiver
 * (a WARC writer) needs of each exchange, as it goes over the wire.
 *
 * @module
 */
/**
 * What a tap learns when an exchange opens: as its first request byte is handed
 * to the connection.
 *
 * @example
 * ```ts
 * import type { HttpExchangeInfo } from "@seed/selectors";
 *
 * const info: HttpExchangeInfo = {
 *   url: "http://127.0.0.1:8000/",
 *   remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 8000 },
 *   viaProxy: false,
 *   date: new Date(),
 * };
 * console.log(info.url);
 * ```
 */
export interface HttpExchangeInfo {
  /** The URL of this exchange: one hop of a redirect chain. */
  url: string;
  /** The peer's address (the proxy's when one is used), `null` if unknown. */
  remoteAddr: Deno.Addr | null;
  /**
   * Whether the exchange goes through an HTTP proxy (forwarded, or in a
   * `CONNECT` tunnel): then `remoteAddr` is the proxy's, not the server's.
   */
  viaProxy: boolean;
  /** When the first request byte was handed to the connection. */
  date: Date;
}

/**
 * How an exchange ended.
 *
 * @example
 * ```ts
 * import type { HttpExchangeEnd } from "@seed/selectors";
 *
 * const end: HttpExchangeEnd = { url: "http://127.0.0.1:8000/", remoteAddr: null, ok: true, error: null };
 * console.log(end.ok);
 * ```
 */
export interface HttpExchangeEnd {
  /** The URL of this exchange. */
  url: string;
  /** The peer's address, as in {@linkcode HttpExchangeInfo}. */
  remoteAddr: Deno.Addr | null;
  /** `true` once the whole response was received (and its sink closed). */
  ok: boolean;
  /** Why it failed when `ok` is `false`, else `null`. */
  error: unknown;
}

/**
 * The callbacks of one exchange. Each is called synchronously from inside
 * `HttpClient.handle()`; the bytes are views valid only during the call
 * (copy them to keep them). A `request` or `response` callback that throws fails
 * the request; what `end` throws is ignored. A promise any of them returns
 * (an async function) is not awaited, and its rejection is ignored.
 *
 * @example
 * ```ts
 * import type { HttpExchangeTap } from "@seed/selectors";
 *
 * let sent = 0;
 * const tap: HttpExchangeTap = { request: (bytes) => void (sent += bytes.length) };
 * tap.request?.(new Uint8Array(3));
 * console.log(sent); // 3
 * ```
 */
export interface HttpExchangeTap {
  /**
   * Bytes of the request as they are handed to the connection, in order: the
   * request line and headers, then the body as framed on the wire (chunked
   * included).
   */
  request?(bytes: Uint8Array): void;
  /**
   * Bytes of the response as received, in order, before any content decoding
   * and with their transfer framing (chunk sizes, trailers), starting at the
   * final status line: interim `1xx` heads before it are left out, so the first
   * bytes are the head that goes with the body, as WARC readers expect. Bytes
   * after the end of the response (a confused peer) are left out too. A
   * response that fails to parse (a malformed chunk, a body over
   * `maxResponseBytes`) once its head is in has its bytes up to the one that
   * failed reported before `end`.
   */
  response?(bytes: Uint8Array): void;
  /** The exchange ended: called exactly once per exchange opened. */
  end?(end: HttpExchangeEnd): void;
  /**
   * Backpressure: asked after each read's bytes went to `response` while the
   * response goes on, and before each further piece of a request body stream
   * is taken while the request is sent. A promise (what the tap was handed is
   * not yet written out: an archive's disk is slower than the network) holds
   * the connection's reads, or the upload, until it settles, as a `sink` that
   * is not ready does, and no idle timeout runs meanwhile; anything else goes
   * on. Without it, a tap slower than the network keeps all it was handed. One
   * that throws fails the request.
   */
  ready?(): Promise<unknown> | null | undefined;
}

/**
 * Opens the tap of one exchange. An exchange is one request and its response on
 * one connection: each hop of a redirect and each retry is an exchange of its
 * own, and so is the second try of a request whose reused keep-alive connection
 * turned out closed (the first then ends with `ok: false`). Nothing is opened for
 * a request that never sent a byte (a failed connect). Return `undefined` to
 * leave an exchange untapped.
 *
 * Cost: with no tap, nothing changes; with one, large bodies are no longer read
 * straight into their buffer but go through the connection's buffer like the
 * rest, so the tap can see them. A tap that keeps what it is handed until it is
 * written somewhere gives its exchanges a `ready`, so that neither a download
 * nor a streamed upload outruns the writer.
 *
 * @example Record the bytes of one request
 * ```ts
 * import { assert } from "@std/assert";
 * import { fetchAll, type HttpTap } from "@seed/selectors";
 *
 * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("hi"));
 * const wire: string[] = [];
 * const decoder = new TextDecoder();
 * const tap: HttpTap = (info) => ({
 *   request: (bytes) => void wire.push(`> ${decoder.decode(bytes).split("\r\n")[0]}`),
 *   response: (bytes) => void wire.push(`< ${decoder.decode(bytes).split("\r\n")[0]}`),
 *   end: (end) => void wire.push(`${end.ok ? "ok" : "failed"} ${info.url}`),
 * });
 * await fetchAll([`http://127.0.0.1:${server.addr.port}/`], { tap });
 * assert(wire[0] === "> GET / HTTP/1.1");
 * assert(wire[1] === "< HTTP/1.1 200 OK");
 * assert(wire.at(-1)!.startsWith("ok http://127.0.0.1:"));
 * ```
 */
export type HttpTap = (
  exchange: HttpExchangeInfo,
) => HttpExchangeTap | undefined;
