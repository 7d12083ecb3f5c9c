/**
 * `fetchAll` and `fetchEach`: many HTTP requests on one selector.
 *
 * @module
 */
import type { HttpResponse } from "./http_client.ts";
import type { HttpTap } from "./http_tap.ts";
import { Crawl } from "./_crawl.ts";

/**
 * One request of a crawl: a URL plus what differs from the crawl-wide options for
 * it. Its fields override the options of {@linkcode fetchAll} for this URL alone;
 * its `headers` are merged over the crawl's, by name.
 *
 * @example
 * ```ts
 * import type { RequestSpec } from "@seed/selectors";
 *
 * const spec: RequestSpec = {
 *   url: "http://127.0.0.1:8000/api/items",
 *   method: "POST",
 *   headers: { "content-type": "application/json" },
 *   body: JSON.stringify({ name: "x" }),
 *   timeout: 5_000,
 *   data: { id: 7 },
 * };
 * console.log(spec.method);
 * ```
 */
export interface RequestSpec<T = unknown> {
  /** The URL, `http:` or `https:`. */
  url: string | URL;
  /** The method, instead of the crawl's. */
  method?: string | undefined;
  /** Header fields set over the crawl's (a field given here replaces the crawl's field of that name). */
  headers?: HeadersInit | undefined;
  /**
   * The request content: a string (UTF-8), bytes, or a stream (sent chunked, and
   * never retried or replayed on a redirect, since it cannot be sent twice).
   * Another type, or a body with GET, HEAD or TRACE, rejects the crawl with `TypeError`
   * before any connection when the source is an array; a spec read from an
   * iterator fails that URL alone. A stream that no request took (its URL
   * failed before its request was made, or was still queued when the crawl
   * was aborted or left) is cancelled with the URL's error, as `fetch`
   * cancels a body on an abort, unless another open URL is to send it. A
   * request that was made takes (locks) the stream, whether it then fails
   * or not (a refused connect too, as `fetch` does), and cancels it if it
   * fails. A URL with a stream so taken or cancelled fails with `TypeError`,
   * as `fetch` refuses a locked or disturbed stream.
   */
  body?: RequestBody | undefined;
  /** Milliseconds for the whole attempt, instead of the crawl's `timeout`. */
  timeout?: number | undefined;
  /** The most body bytes accepted, instead of the crawl's. */
  maxResponseBytes?: number | undefined;
  /**
   * Where the body goes as it arrives, instead of `response.body`. It gets the
   * final response's body only: the bodies of redirects followed and of
   * responses retried are not written to it. It is aborted when the URL fails
   * for good; a URL whose body was partly written to it is not retried.
   *
   * A function instead is called (with the URL, as results show it) for the
   * sink of an attempt: once, unless an attempt fails mid-body, when that sink
   * is aborted and the retry gets a new one, so such a URL is retried as one
   * without a sink is. One that throws, or returns anything but an unlocked
   * `WritableStream`, fails the URL.
   */
  sink?:
    | WritableStream<Uint8Array>
    | ((url: string) => WritableStream<Uint8Array>)
    | undefined;
  /**
   * The HTTP proxy for this URL, instead of the crawl's `proxy` (see
   * {@linkcode FetchAllOptions.proxy}).
   *
   * @default {the crawl's proxy}
   */
  proxy?: string | URL | "env" | undefined;
  /**
   * The Unix socket for this URL, instead of the crawl's `unixSocket`.
   *
   * @default {the crawl's unixSocket}
   */
  unixSocket?: string | undefined;
  /** Taps the raw bytes of this URL's exchanges, instead of the crawl's `tap`. */
  tap?: HttpTap | undefined;
  /** Any value, handed back unchanged as the result's `data` (typed `T` there). */
  data?: T | undefined;
}

/**
 * What a request may carry as content.
 *
 * @example
 * ```ts
 * import type { RequestBody } from "@seed/selectors";
 *
 * const bodies: RequestBody[] = ["text", new Uint8Array([1, 2]), new ArrayBuffer(4), null];
 * console.log(bodies.length);
 * ```
 */
export type RequestBody =
  | string
  | Uint8Array
  | ArrayBuffer
  | ReadableStream<Uint8Array>
  | null;

/**
 * Where one URL's time went, in milliseconds. The crawl reads its clock once per
 * turn of its loop (as libuv's loop time), so steps handled in the same turn
 * share one reading.
 *
 * @example
 * ```ts
 * import type { FetchTimings } from "@seed/selectors";
 *
 * const t: FetchTimings = { queued: 2, connect: 1, firstByte: 5, total: 9 };
 * console.log(t.total - t.firstByte);
 * ```
 */
export interface FetchTimings {
  /**
   * Waiting for a slot: concurrency, politeness delays, backoff before retries,
   * a redirect's hop waiting for its origin, a descriptor (`ulimit -n`). The
   * wait before the first attempt is not part of `total`; the waits after its
   * start are, so `queued` may exceed `total`, and `total - queued` is no
   * measure of time spent on the wire.
   */
  queued: number;
  /**
   * TCP + TLS (through a proxy: the proxy's TCP, its `CONNECT` tunnel and
   * TLS) of the conn the last hop of the last attempt went out on, until it
   * failed if it did; 0 on a reused conn. After a redirect this is the final
   * request's conn (as Resource Timing reports the final request): earlier
   * hops' connects show only in `total`.
   */
  connect: number;
  /**
   * The last hop of the last attempt: its request sent to its first response
   * byte (0 if none came). After a redirect, the final request's, not the
   * first response's.
   */
  firstByte: number;
  /** From the first attempt's start to the end (a kept-back body written to its sink included). */
  total: number;
}

/**
 * The outcome for one URL: a response, or why there is none. `T` is the type
 * of the `data` given in the {@linkcode RequestSpec}s: a URL given without one
 * has `data` `undefined`.
 *
 * @example
 * ```ts
 * import type { FetchResult } from "@seed/selectors";
 *
 * function line(result: FetchResult): string {
 *   return result.ok
 *     ? `${result.url}: ${result.response.status}`
 *     : `${result.url}: ${(result.error as Error).name}`;
 * }
 * console.log(line({
 *   url: "not a url",
 *   ok: false,
 *   error: new TypeError("invalid URL"),
 *   data: undefined,
 *   attempts: 0,
 *   timings: { queued: 0, connect: 0, firstByte: 0, total: 0 },
 * }));
 * ```
 */
export type FetchResult<T = unknown> =
  | {
    /** The input URL as given, except that a password in it reads `***`. */
    url: string;
    /** The request succeeded (whatever the status code). */
    ok: true;
    /** The response. */
    response: HttpResponse;
    /** The `data` of the URL's {@linkcode RequestSpec}, else `undefined`. */
    data: T | undefined;
    /** Attempts made: 1 plus the retries (0 for a URL that never started). */
    attempts: number;
    /** Where the time went. */
    timings: FetchTimings;
  }
  | {
    /** The input URL as given, except that a password in it reads `***`. */
    url: string;
    /** The request failed. */
    ok: false;
    /** Why: a `TypeError` for a bad URL or request, an `HttpParseError`, a connection error, `Deno.errors.TimedOut`, or the abort reason. */
    error: unknown;
    /** The `data` of the URL's {@linkcode RequestSpec}, else `undefined`. */
    data: T | undefined;
    /** Attempts made: 1 plus the retries (0 for a URL that never started). */
    attempts: number;
    /** Where the time went. */
    timings: FetchTimings;
  };

/**
 * One finished URL, as {@linkcode fetchEach} yields it.
 *
 * @example
 * ```ts
 * import type { FetchEntry } from "@seed/selectors";
 *
 * function slowest(entries: FetchEntry[]): FetchEntry | undefined {
 *   let worst: FetchEntry | undefined;
 *   for (const entry of entries) {
 *     if (worst === undefined || entry.elapsed > worst.elapsed) worst = entry;
 *   }
 *   return worst;
 * }
 * console.log(slowest([]));
 * ```
 */
export interface FetchEntry<T = unknown> {
  /** The URL's position in the source, counting from 0 in source order. */
  index: number;
  /** The outcome. */
  result: FetchResult<T>;
  /** Milliseconds from its first attempt's start to its end (`result.timings.total`). */
  elapsed: number;
}

/**
 * Options of {@linkcode fetchAll} and {@linkcode fetchEach}.
 *
 * @example
 * ```ts
 * import type { FetchAllOptions } from "@seed/selectors";
 *
 * const controller = new AbortController();
 * const options: FetchAllOptions = {
 *   concurrency: 16,
 *   timeout: 10_000,
 *   headers: { "user-agent": "my-crawler/1.0" },
 *   maxResponseBytes: 10 << 20,
 *   perOrigin: { concurrency: 2, delay: 250 },
 *   retry: { limit: 3, maxDelay: 10_000 },
 *   idleTimeout: 5_000,
 *   signal: controller.signal,
 *   onProgress: (done, total) => console.log(`${done}/${total}`),
 * };
 * console.log(options.concurrency);
 * ```
 */
export interface FetchAllOptions<T = unknown> {
  /**
   * How many URLs are in flight at once (a positive integer).
   *
   * @default {64}
   */
  concurrency?: number | undefined;
  /**
   * How many pulled URLs may wait for their origin's slot: the source is read
   * lazily, in order, never more than `concurrency + maxQueued` URLs ahead of
   * what finished. So that many URLs of one origin that must wait (its delay,
   * a `Retry-After` pause) hold back the URLs after them in the source, other
   * origins' too: interleave origins in the source, or raise this.
   *
   * @default {4 * concurrency}
   */
  maxQueued?: number | undefined;
  /** Per-origin limits: see {@linkcode PerOriginOptions}. */
  perOrigin?: PerOriginOptions | undefined;
  /** Retries and their backoff: see {@linkcode RetryOptions}. */
  retry?: RetryOptions | undefined;
  /**
   * Milliseconds for each attempt, from connect to its last body byte, redirects
   * included; `Infinity` for none. Fails with `Deno.errors.TimedOut` ("total").
   *
   * @default {30000}
   */
  timeout?: number | undefined;
  /**
   * Milliseconds for TCP + TLS; the socket is closed at the deadline. Fails with
   * `Deno.errors.TimedOut` ("connect").
   *
   * @default {10000}
   */
  connectTimeout?: number | undefined;
  /**
   * The longest silence while waiting for response bytes, in milliseconds. Fails
   * with `Deno.errors.TimedOut` ("idle"). A request body the server stops
   * reading is not silence it counts, `timeout` bounds that, until the body's
   * last bytes are handed to the socket: the few MiB its buffers hold then
   * count as sent, and idleTimeout runs while they wait there.
   *
   * @default {Infinity}
   */
  idleTimeout?: number | undefined;
  /**
   * Headers sent with every request. Unless set here, requests carry `Host`
   * from the URL, `User-Agent: selectors-deno/0.1`, `Accept` for any media type
   * and the `Accept-Encoding` of `decompress`.
   */
  headers?: HeadersInit | undefined;
  /**
   * The method of every request.
   *
   * @default {"GET"}
   */
  method?: string | undefined;
  /** A body sent with every request (a string is sent as UTF-8). */
  body?: RequestBody | undefined;
  /**
   * Where the body goes as it arrives, instead of `response.body`; mostly set per
   * URL, in a {@linkcode RequestSpec}. A sink takes one body and is closed at
   * its end, so a crawl-wide one serves a crawl of one URL: a second URL finds
   * it locked and fails with `TypeError`. A function returning a sink serves
   * every URL: it is called per URL, and again for a retry of an attempt cut
   * short mid-body (see {@linkcode RequestSpec.sink}).
   */
  sink?:
    | WritableStream<Uint8Array>
    | ((url: string) => WritableStream<Uint8Array>)
    | undefined;
  /**
   * The most body bytes accepted per response, counted on the wire and again
   * after decoding, so a decompression bomb stops at the limit.
   *
   * @default {Infinity}
   */
  maxResponseBytes?: number | undefined;
  /**
   * Aborts the whole crawl: nothing more is read from the source, URLs read and
   * unfinished fail with `signal.reason`, and every connection is closed.
   */
  signal?: AbortSignal | undefined;
  /**
   * Called once per finished URL, with how many are done and the total: the
   * number of URLs when the source is an array, else how many were read so far.
   * URLs read and then aborted count as finished; an array's URLs that an
   * abort left unread get their result (`signal.reason`) without a call.
   * A throw rejects the crawl; so does the rejection of a promise it returns
   * (an async function is not awaited: the crawl goes on meanwhile). It runs
   * on the crawl's loop, which reads no socket meanwhile: synchronous work
   * longer than `idleTimeout` may time out a request whose bytes were waiting.
   */
  onProgress?:
    | ((done: number, total: number, result: FetchResult<T>) => void)
    | undefined;
  /**
   * `"follow"` redirects (up to 20, like `fetch`), return them as responses
   * (`"manual"`), or fail on them (`"error"`). A `Location` that is not an
   * http(s) URL (`ftp:`, `mailto:`) is not followed: the 3xx is the result, as
   * curl does.
   *
   * @default {"follow"}
   */
  redirect?: "follow" | "manual" | "error" | undefined;
  /**
   * Reuse connections per origin (HTTP/1.1 persistent connections); `false` sends
   * `Connection: close` and opens one connection per request, like the original
   * crawler.
   *
   * @default {true}
   */
  keepAlive?: boolean | undefined;
  /**
   * The most idle connections kept per origin when `keepAlive` is on.
   *
   * @default {concurrency}
   */
  maxIdlePerOrigin?: number | undefined;
  /**
   * The most idle connections kept over all origins when `keepAlive` is on:
   * past it, the one idle longest is closed, so a crawl over many hosts keeps
   * no socket per host it met (as Go's `MaxIdleConns`, curl's connection cache).
   *
   * @default {max(100, 2 × concurrency)}
   */
  maxIdle?: number | undefined;
  /**
   * Decode `gzip`, `deflate`, `br` and `zstd` bodies. Requests ask for them
   * (`Accept-Encoding: gzip, deflate, br, zstd`) unless `headers` set
   * `Accept-Encoding`, whether or not this is on (one with a `Range` header
   * asks for `identity`, as `fetch` does): `false` hands back the bytes as
   * sent.
   *
   * @default {true}
   */
  decompress?: boolean | undefined;
  /** Extra CA certificates (PEM) for https. */
  caCerts?: string[] | undefined;
  /**
   * A client certificate chain (PEM) for https servers that require one
   * (mutual TLS), sent to every https origin of the crawl; needs `key`. PEM
   * that does not parse, or a key that is not the certificate's, rejects the
   * crawl with `TypeError` before any connection.
   *
   * @default {undefined} no client certificate
   */
  cert?: string | undefined;
  /**
   * The private key (PEM) of `cert`.
   *
   * @default {undefined}
   */
  key?: string | undefined;
  /**
   * An HTTP proxy for every URL, `http://[user:password@]host[:port]` (port
   * 80 by default): `http:` URLs go to it in absolute-form over kept-alive
   * proxy conns (pooled by proxy, whatever the origin), `https:` URLs through
   * a `CONNECT` tunnel per origin, kept alive like a direct conn. `"env"`
   * picks the proxy for each URL from the environment as curl does
   * (`http_proxy`, `https_proxy`/`HTTPS_PROXY`, `all_proxy`/`ALL_PROXY`,
   * `no_proxy`/`NO_PROXY`, lower case first), and needs `--allow-env`. Unlike
   * curl it also reads `HTTP_PROXY` where `http_proxy` is not set at all,
   * unless `REQUEST_METHOD` is set (CGI), as Go and Python do.
   * A proxy's refusal fails that URL with `ProxyError`; a proxy that
   * cannot be reached fails it with the connection's error. A
   * {@linkcode RequestSpec} may set its own.
   *
   * @default {undefined} no proxy
   */
  proxy?: string | URL | "env" | undefined;
  /**
   * Sends every request over this Unix socket, `Host` from the URL (curl's
   * `--unix-socket`); conns are pooled by socket and origin. Needs (Deno 2.9)
   * `--allow-net=unix:<path>`, `--allow-read` and `--allow-write` for the path.
   *
   * @default {undefined} TCP
   */
  unixSocket?: string | undefined;
  /**
   * Taps the raw bytes of every exchange (each hop and each attempt), for an
   * archiver such as a WARC writer: see {@linkcode HttpTap}.
   */
  tap?: HttpTap | undefined;
}

/**
 * When and how a crawl tries a URL again. Retried: idempotent methods (`GET`,
 * `HEAD`, `OPTIONS`, `TRACE`, `PUT`, `DELETE`) with a body that can be sent again
 * (not a stream), after a listed status, a connection error or a timeout. The
 * wait before retry `n` is a random value in
 * `[0, min(maxDelay, baseDelay × 2^(n-1))]`, or the response's `Retry-After`
 * (seconds or HTTP-date) capped at `maxDelay`.
 *
 * @example
 * ```ts
 * import type { RetryOptions } from "@seed/selectors";
 *
 * const retry: RetryOptions = { limit: 3, statuses: [429, 503], maxDelay: 10_000 };
 * console.log(retry.limit);
 * ```
 */
export interface RetryOptions {
  /**
   * Retries after the first attempt.
   *
   * @default {0}
   */
  limit?: number | undefined;
  /**
   * The statuses retried.
   *
   * @default {[408, 429, 500, 502, 503, 504]}
   */
  statuses?: readonly number[] | undefined;
  /**
   * The first backoff's upper bound, in milliseconds (finite).
   *
   * @default {250}
   */
  baseDelay?: number | undefined;
  /**
   * The longest wait, backoff, `Retry-After` or origin pause, in milliseconds
   * (finite: a `RangeError` for `Infinity`).
   *
   * @default {30000}
   */
  maxDelay?: number | undefined;
}

/**
 * Per-origin limits of a crawl (an origin is scheme, host and port). They apply
 * to each request's own origin: a redirect's hop is queued on its target's
 * origin and starts under its limits (and pause), within its attempt's
 * timeout. A `429` or `503` with `Retry-After` also pauses the origin's other
 * requests until then (capped at `retry.maxDelay`), retries on or off.
 *
 * @example
 * ```ts
 * import type { PerOriginOptions } from "@seed/selectors";
 *
 * // At most 2 requests at once to each host, 500 ms apart.
 * const polite: PerOriginOptions = { concurrency: 2, delay: 500 };
 * console.log(polite.delay);
 * ```
 */
export interface PerOriginOptions {
  /**
   * Requests in flight at once to one origin.
   *
   * @default {Infinity}
   */
  concurrency?: number | undefined;
  /**
   * Least milliseconds between the starts of two requests to one origin,
   * counted from the first one's start and, once its conn is kept for the
   * next one, from when it was sent (its connect came in between); a request
   * not finished when the delay is up does not hold the next, which goes out
   * on a conn of its own: one number for all, or a
   * function of the origin (`"https://example.com"`, as `URL.origin` gives
   * it) for a delay that varies by origin, such as a robots.txt
   * `Crawl-delay`. The function is asked at each start, so its answer may
   * change during the crawl; an answer that is not a finite non-negative
   * number counts as 0, and a throw fails the URL that was to start (the
   * number itself must be finite: `RangeError`).
   *
   * @default {0}
   */
  delay?: (number | ((origin: string) => number)) | undefined;
}

/**
 * What {@linkcode fetchAll} and {@linkcode fetchEach} read URLs from.
 *
 * @example
 * ```ts
 * import type { CrawlSource } from "@seed/selectors";
 *
 * async function* frontier(): AsyncGenerator<string> {
 *   yield "http://127.0.0.1:8000/";
 * }
 * const sources: CrawlSource[] = [["http://127.0.0.1:8000/a"], frontier()];
 * console.log(sources.length);
 * ```
 */
export type CrawlSource<T = unknown> =
  | Iterable<string | URL | RequestSpec<T>>
  | AsyncIterable<string | URL | RequestSpec<T>>;

/**
 * Fetches many URLs concurrently on one selector and resolves to one result per
 * URL, in input order. One URL's failure never affects the others: bad URLs fail
 * alone with `TypeError`, malformed responses with `HttpParseError`, slow ones
 * with `Deno.errors.TimedOut`.
 *
 * @example Crawl a local server
 * ```ts
 * import { assert } from "@std/assert";
 * import { fetchAll } from "@seed/selectors";
 *
 * await using server = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   (req) => new Response(new URL(req.url).pathname),
 * );
 * const base = `http://127.0.0.1:${server.addr.port}`;
 * const results = await fetchAll([`${base}/a`, `${base}/b`, "not a url"]);
 * assert(results[0]?.ok && new TextDecoder().decode(results[0].response.body) === "/a");
 * assert(results[2]?.ok === false && results[2].error instanceof TypeError);
 * ```
 *
 * @example Per-request specs, politeness and retries
 * ```ts
 * import { assert } from "@std/assert";
 * import { fetchAll } from "@seed/selectors";
 *
 * let calls = 0;
 * await using server = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   // Busy once: the first request gets 503, the retry gets through.
 *   (req) => ++calls === 1 ? new Response("busy", { status: 503 }) : new Response(req.method),
 * );
 * const base = `http://127.0.0.1:${server.addr.port}`;
 * const [first, posted] = await fetchAll([
 *   { url: `${base}/a`, data: "page a" },
 *   { url: `${base}/b`, method: "POST", body: "x", data: "form b" },
 * ], { perOrigin: { concurrency: 1, delay: 10 }, retry: { limit: 2, baseDelay: 10 } });
 * assert(first?.ok && first.data === "page a" && first.attempts === 2);
 * assert(posted?.ok && new TextDecoder().decode(posted.response.body) === "POST");
 * ```
 *
 * @param source The URLs or {@linkcode RequestSpec}s: an iterable or an async
 *   iterable, read lazily.
 * @param options Concurrency, limits, timeouts, retries, request and connection
 *   options.
 * @returns One result per URL, in source order.
 * @throws {TypeError} (as a rejection, before any connection) For an invalid
 *   method, header or body, an unknown `redirect` mode, or `caCerts` that are
 *   not whole PEM certificates.
 * @throws {RangeError} (as a rejection) For `concurrency` below 1 or not an
 *   integer, or another option out of range.
 * @throws The source's own error (as a rejection), when reading it throws: once
 *   the URLs read before it have finished, none cut short.
 */
export function fetchAll<T>(
  source: CrawlSource<T>,
  options?: FetchAllOptions<T>,
): Promise<FetchResult<T>[]>;
/**
 * {@linkcode fetchAll} of a source whose specs carry `data` of different
 * types: `data` is `unknown` in the results.
 *
 * @param source The URLs or {@linkcode RequestSpec}s.
 * @param options As above.
 * @returns One result per URL, in source order.
 */
export function fetchAll(
  source: CrawlSource,
  options?: FetchAllOptions,
): Promise<FetchResult[]>;
export async function fetchAll(
  source: CrawlSource,
  options: FetchAllOptions = {},
): Promise<FetchResult[]> {
  const results: FetchResult[] = [];
  const crawl = new Crawl(options);
  // Batches, not entries: one await per selector batch rather than per URL.
  for await (const batch of crawl.run(source)) {
    for (const { index, result } of batch) results[index] = result;
  }
  if (Array.isArray(source) && results.length < source.length) {
    // Aborted: an array's URLs that were never read still get their result,
    // without reading anything (a generator's are simply never pulled).
    for (let index = 0; index < source.length; index++) {
      results[index] ??= crawl.unstarted(source[index]);
    }
  }
  return results;
}

/**
 * Like {@linkcode fetchAll}, but yields each URL's result as soon as it is
 * finished, and reads the source lazily (never more than `concurrency +
 * maxQueued` URLs ahead): for crawls too big to hold in memory, and for sources
 * that grow while crawling (an `AsyncIterable` fed from the pages fetched).
 * The crawl goes on while the loop's body works on a result (a database write,
 * a file), so responses are read as they come and their timeouts run in their
 * own time, not the consumer's; results finished meanwhile wait for the loop
 * and count against that bound. Breaking out of the loop closes every
 * connection; an abort ends it without reading further from the source.
 *
 * @example Stream results as they complete
 * ```ts
 * import { assert } from "@std/assert";
 * import { fetchEach } from "@seed/selectors";
 *
 * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("ok"));
 * const base = `http://127.0.0.1:${server.addr.port}`;
 * let ok = 0;
 * for await (const { result } of fetchEach([`${base}/1`, `${base}/2`], { concurrency: 2 })) {
 *   if (result.ok) ok++;
 * }
 * assert(ok === 2);
 * ```
 *
 * @param source The URLs or {@linkcode RequestSpec}s; any iterable or async
 *   iterable, read lazily.
 * @param options As for {@linkcode fetchAll}.
 * @returns The finished URLs, in completion order.
 * @throws {TypeError} For invalid options, before any connection.
 * @throws {RangeError} For out-of-range options, before any connection.
 * @throws The source's own error, when reading it throws: after the results of
 *   the URLs read before it, each finished.
 */
export function fetchEach<T>(
  source: CrawlSource<T>,
  options?: FetchAllOptions<T>,
): AsyncGenerator<FetchEntry<T>, void, undefined>;
/**
 * {@linkcode fetchEach} of a source whose specs carry `data` of different
 * types: `data` is `unknown` in the results.
 *
 * @param source The URLs or {@linkcode RequestSpec}s.
 * @param options As above.
 * @returns The finished URLs, in completion order.
 */
export function fetchEach(
  source: CrawlSource,
  options?: FetchAllOptions,
): AsyncGenerator<FetchEntry, void, undefined>;
export function fetchEach(
  source: CrawlSource,
  options: FetchAllOptions = {},
): AsyncGenerator<FetchEntry, void, undefined> {
  const crawl = new Crawl(options);
  const generator = entries(crawl, source);
  // An async generator queues return() and throw() behind a pending next():
  // called while the crawl waits (a consumer racing next() against a timer,
  // `ReadableStream.from(...).cancel()`), they would wait for its next result,
  // a slow URL's whole timeout, with its conns open. Stop the crawl first: the
  // pending next() then settles done at once, and they run.
  const { return: leave, throw: raise } = generator;
  generator.return = (value) => {
    crawl.stop();
    return leave.call(generator, value);
  };
  generator.throw = (error) => {
    crawl.stop();
    return raise.call(generator, error);
  };
  return generator;
}

/**
 * The crawl's results one by one. The crawl runs on while the consumer works
 * on a result (a generator runs only while asked for its next value: waiting
 * for the consumer, responses that came in time were read late and failed
 * their timeouts), as long as it has URLs in flight or room to read more;
 * what it yields meanwhile waits here and counts against its bound.
 */
async function* entries(
  crawl: Crawl,
  source: CrawlSource,
): AsyncGenerator<FetchEntry, void, undefined> {
  const batches = crawl.run(source);
  const queue: FetchEntry[][] = [];
  let head = 0;
  // Set by `drive()` (TypeScript does not see a closure's writes).
  let failed = null as { error: unknown } | null;
  let done = false as boolean;
  let pending: Promise<void> | null = null;
  let parked = false;
  const drive = (): Promise<void> =>
    batches.next().then((next) => {
      pending = null;
      if (next.done) done = true;
      else {
        queue.push(next.value);
        if (crawl.busy) pending = drive();
        else {
          // Nothing to read for: the crawl waits until it has work again or
          // the consumer asks. (Its kept conns hold no process meanwhile: a
          // conn's reads never do, a pending select() does.)
          parked = true;
        }
      }
    }, (error) => {
      pending = null;
      failed = { error };
    });
  const resume = () => {
    if (!parked || pending !== null || done || failed !== null) return;
    parked = false;
    pending = drive();
  };
  crawl.holdYielded(resume);
  try {
    while (true) {
      if (head < queue.length) {
        const batch = queue[head]!;
        queue[head++] = EMPTY_BATCH;
        if (head === queue.length) queue.length = head = 0;
        // A plain loop, not `yield* batch`: delegating to an array inside an
        // async generator wraps it in an async iterator, ~0.2 µs more per entry.
        for (let i = 0; i < batch.length; i++) {
          // Held until yielded (API.md): its room may let a parked crawl
          // read on while the consumer works on it.
          crawl.unhold(1);
          if (parked && crawl.busy) resume();
          // Out of the batch as it is yielded: this frame, suspended until
          // the consumer's next call, keeps the batch (and a local's value),
          // and must not keep the results the consumer had and dropped.
          yield takeEntry(batch, i);
        }
        continue;
      }
      if (failed !== null) throw failed.error;
      if (done) return;
      if (pending === null) {
        parked = false;
        pending = drive();
      }
      await pending;
    }
  } finally {
    // The consumer left (a break, a throw) or the crawl ended: stop the loop
    // where it is, then let the crawl close everything.
    crawl.stop();
    await pending;
    await batches.return(undefined);
  }
}

const EMPTY_BATCH: FetchEntry[] = [];
/** What a batch holds in place of an entry it has yielded. */
const DROPPED = undefined as unknown as FetchEntry;

/** `batch[i]`, left out of the batch. */
function takeEntry(batch: FetchEntry[], i: number): FetchEntry {
  const entry = batch[i]!;
  batch[i] = DROPPED;
  return entry;
}
