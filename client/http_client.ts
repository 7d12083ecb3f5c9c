/**
 * `HttpClient`: the state machine of one HTTP/1.1 request, driven by selector
 * events.
 *
 * @module
 */
import { BlockingIOError } from "../selector/errors.ts";
import { nextTurn, timerTurnDue } from "../selector/_immediate.ts";
import { EVENT_READ, EVENT_WRITE } from "../selector/events.ts";
import {
  kCloseNow,
  kConsume,
  kFilled,
  kPeek,
  kReadInto,
  kReady,
  kSendOwned,
  kStartTls,
  kTakeDirect,
  kTls,
  kUnwritten,
} from "../selector/_pollable.ts";
import { isUnknownIssuer } from "../selector/_tls_socket.ts";
import { isShortage } from "../selector/_util.ts";
import { PollableConn } from "../selector/pollable_conn.ts";
import { BodyBuffer, BodyStream, DIRECT_READ_MIN, SinkBody } from "./_body.ts";
import { loopNow } from "./_clock.ts";
import {
  REDIRECT_STATUSES,
  redirects,
  redirectsOnward,
  utf8Location,
} from "./_redirect.ts";
import { ContentDecoder } from "./_decode.ts";
import { encodeConnect } from "./_proxy.ts";
import {
  buildWriter,
  type BuiltWriter,
  kDivertSink,
  kRequestWriter,
  type RequestWriter,
} from "./_request.ts";
import {
  fieldBytes,
  fieldLength,
  type ResponseHead,
  ResponseParser,
} from "./_response_parser.ts";
import { fieldValue, toHeaders } from "./_parser_fields.ts";
import {
  readTransport,
  type Route,
  routeFor,
  type TransportSetting,
} from "./_route.ts";
import { redactUrl, shown, typeName } from "./_redact.ts";
import { type HttpUrl, responseUrl, toHttpUrl } from "./_http_url.ts";
import { IDEMPOTENT_METHODS, proxyRetryAfter } from "./_retry.ts";
import { checkCaCerts, checkClientCert } from "../selector/_client_cert.ts";
import { keepSpecimens, specimenConn } from "./_specimens.ts";
import { TapRecorder } from "./_tap.ts";
import type { HttpTap } from "./http_tap.ts";
import { HttpParseError } from "./http_parse_error.ts";
import { ProxyError } from "./proxy_error.ts";

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
  /**
   * The URL that answered (the last one, after redirects), as `fetch`'s
   * `Response.url` shows it: without its fragment. A password in it stays, as
   * links resolve against it (`result.url` is the form to show).
   */
  url: string;
  /** The status code. */
  status: number;
  /** The reason phrase, possibly empty. */
  statusText: string;
  /** The header fields as received (`Content-Encoding` included even once decoded). */
  headers: Headers;
  /**
   * The body, decoded unless `decompress: false`; empty when it went to a `sink`.
   * A standalone array: its `.buffer` holds this body's bytes only. A body
   * over 1 MiB may sit in a resizable `ArrayBuffer` (it grew in place), whose
   * `byteLength` is the body's.
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
 *   connectTimeout: 1_000,
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
  method?: string | undefined;
  /**
   * Extra request headers. `Host` is derived from the URL unless given here; URL
   * credentials are sent as `Authorization: Basic` unless `Authorization` is given.
   * Unless set here, requests carry `User-Agent: selectors-deno/0.1`,
   * `Accept` for any media type and `Accept-Encoding: gzip, deflate, br, zstd`.
   */
  headers?: HeadersInit | undefined;
  /**
   * A request body: a string (sent as UTF-8), a `Uint8Array` or an `ArrayBuffer`
   * (copied, sent with `Content-Length`), or a `ReadableStream<Uint8Array>` (sent
   * `Transfer-Encoding: chunked`, or as exactly the `Content-Length` the headers
   * give; it cannot be sent twice, so such a request is never replayed). A
   * stream's chunks are copied as they are read, and not read further while
   * 256 KiB of them wait for the connection; the small ones the stream has at
   * hand go out together. Anything else, and any body with `GET`, `HEAD` or
   * `TRACE`, is a `TypeError`.
   */
  body?:
    | string
    | Uint8Array
    | ArrayBuffer
    | ReadableStream<Uint8Array>
    | null
    | undefined;
  /**
   * Milliseconds for the whole attempt, from connect to the last body byte;
   * `Infinity` for none. Checked on every {@linkcode HttpClient.handle} call; a
   * driver calls `handle(0)` once {@linkcode HttpClient.deadline} has passed.
   *
   * @default {30000}
   */
  timeout?: number | undefined;
  /**
   * Milliseconds for TCP connect and TLS handshake (through a proxy: the
   * connect to the proxy, its answer to `CONNECT` and the TLS handshake over
   * the tunnel, together), from when the connect leaves (a permission prompt
   * inside it does not count). At the deadline the connection is closed, which
   * cancels the connect.
   *
   * @default {10000}
   */
  connectTimeout?: number | undefined;
  /**
   * The longest silence, in milliseconds, while waiting for response bytes (time
   * spent waiting for a `sink` does not count).
   *
   * @default {Infinity}
   */
  idleTimeout?: number | undefined;
  /**
   * The most body bytes accepted, counted on the wire and again after decoding.
   *
   * @default {Infinity}
   */
  maxResponseBytes?: number | undefined;
  /**
   * Decode `gzip`, `deflate`, `br` and `zstd` bodies. Requests ask for them
   * unless `Accept-Encoding` is set, whether or not this is on (one with a
   * `Range` header asks for `identity`, as `fetch` does: a range of a
   * compressed stream cannot be decoded alone): `false` hands back the bytes
   * as sent.
   *
   * @default {true}
   */
  decompress?: boolean | undefined;
  /**
   * Keep the connection open after the response for another request (taken with
   * {@linkcode HttpClient.detach}); `false` sends `Connection: close`.
   *
   * @default {false}
   */
  keepAlive?: boolean | undefined;
  /** Extra CA certificates (PEM) for https, e.g. a private CA. */
  caCerts?: string[] | undefined;
  /**
   * A client certificate chain (PEM) for https servers that require one
   * (mutual TLS); needs `key`. Both are checked before any connection: PEM
   * that does not parse, or a key that is not the certificate's, is a
   * `TypeError`.
   *
   * @default {undefined} no client certificate
   */
  cert?: string | undefined;
  /**
   * The private key (PEM) of `cert`; needs `cert`.
   *
   * @default {undefined}
   */
  key?: string | undefined;
  /**
   * An HTTP proxy, `http://[user:password@]host[:port]` (port 80 by default):
   * `http:` URLs are sent to it in absolute-form, `https:` URLs through a
   * `CONNECT` tunnel, then TLS with the origin; the URL's user and password
   * (percent-decoded) go as `Proxy-Authorization: Basic`. `"env"` picks the
   * proxy for each URL from the environment (which needs `--allow-env`) as
   * curl does: `http_proxy`/`HTTP_PROXY`, `https_proxy`/`HTTPS_PROXY`,
   * `all_proxy`/`ALL_PROXY`, `no_proxy`/`NO_PROXY`, lower case first; but
   * `HTTP_PROXY` (which curl never reads) is read only where `http_proxy` is
   * not set at all, and not under CGI (`REQUEST_METHOD` set).
   * A proxy's refusal (a non-`2xx` answer to `CONNECT`, or `407` to an
   * `http:` request) fails the request with {@linkcode ProxyError}; a proxy
   * that cannot be reached fails it with the connection's error. Ignored
   * when `unixSocket` is set.
   *
   * @default {undefined} no proxy
   */
  proxy?: string | URL | "env" | undefined;
  /**
   * Sends the request over this Unix socket instead of TCP, with `Host` from
   * the URL (curl's `--unix-socket`); an `https:` URL speaks TLS over it.
   * Needs `--allow-net=unix:<path>`, `--allow-read` and `--allow-write` for the path.
   *
   * @default {undefined} TCP to the URL's host
   */
  unixSocket?: string | undefined;
  /**
   * Where the body goes as it arrives (decoded unless `decompress: false`),
   * instead of `response.body`, which is then empty. It is closed after the last
   * byte (the request is `done` once the close has completed) and aborted with
   * the error if the request fails. While its writer is not ready the request
   * reads nothing more: see {@linkcode HttpClient.waiting}.
   */
  sink?: WritableStream<Uint8Array> | undefined;
  /**
   * An idle keep-alive connection to the same origin to send on (a TLS one for
   * an `https:` URL, else the constructor throws: one wrapping a promise of a
   * conn that has not settled is not known to be TLS). If the server closed it
   * before any byte of the response came back, the request is sent once more
   * on a fresh connection (idempotent methods with a replayable body only),
   * and {@linkcode HttpClient.pollable} changes. The client starts in `sending`:
   * `handle(EVENT_WRITE)` sends the request at once, without waiting for a
   * select to report the conn writable, as `fetchAll` does.
   */
  conn?: PollableConn | undefined;
  /**
   * Taps the raw bytes of each exchange, for an archiver: see
   * {@linkcode HttpTap}.
   */
  tap?: HttpTap | undefined;
}

/** What `fetchAll` passes: the public options plus a writer shared by the crawl. */
export type InternalOptions = HttpClientOptions & {
  [kRequestWriter]?: RequestWriter;
  /** The transport options, read once per crawl. */
  [kTransport]?: TransportSetting;
  /** The route already chosen for this URL (`null`: direct). */
  [kRoute]?: Route | null;
  /**
   * Set by the crawl, which owns the sink across attempts and hops: a response
   * whose head it says `true` for (a redirect it follows, a status it retries)
   * is buffered instead and leaves the sink untouched, and a failure before the
   * sink was used leaves it to the crawl to abort.
   */
  [kDivertSink]?: (head: ResponseHead) => boolean;
  /**
   * Set by the crawl unless its `redirect` is `"manual"`: the body of a
   * redirect it follows (301, 302, 303, 307, 308 to an http(s) `Location`),
   * or fails on (any such status with a `Location`, under `"error"`), is
   * thrown away, and is decoded up to {@linkcode SET_ASIDE_MAX} bytes at most.
   */
  [kRedirectMode]?: "follow" | "error";
  /**
   * The total timeout a timeout's message names when `timeout` is what is left
   * of it (a redirect's hop).
   */
  [kTotalLimit]?: number;
  /**
   * Set by the crawl: called when the sink fails on its own (not in a write
   * the client made), so that the crawl steps the client (`handle(0)`) and it
   * fails at once instead of when the server next sends.
   */
  [kWake]?: () => void;
};

/** An `HttpClient` option key for the crawl's checked `proxy` and `unixSocket`. */
export const kTransport: unique symbol = Symbol("selectors.transport");
/** An `HttpClient` option key for the route the crawl chose (and pooled by). */
export const kRoute: unique symbol = Symbol("selectors.route");
/** An `HttpClient` option key for the crawl's wakeup of a client whose sink failed. */
export const kWake: unique symbol = Symbol("selectors.wake");
/** An `HttpClient` option key for the crawl's `redirect`, unless `"manual"` (see `InternalOptions`). */
export const kRedirectMode: unique symbol = Symbol("selectors.redirectMode");
/**
 * The most bytes a body set aside (a redirect followed, a status retried: thrown
 * away) is decoded to, whatever `maxResponseBytes`: past it the body fails with
 * `body-too-large`, and the crawl acts on the head all the same. A 269-byte
 * redirect body of `gzip, br` decodes to 10 GiB.
 */
export const SET_ASIDE_MAX = 1024 * 1024;
/** An `HttpClient` option key for the total timeout a message names. */
export const kTotalLimit: unique symbol = Symbol("selectors.totalLimit");

/** When each step of a request happened (`performance.now()`), `NaN` until then. */
export interface Stamps {
  start: number;
  connected: number;
  sent: number;
  firstByte: number;
  end: number;
}

/**
 * `HttpClient`'s time stamps, read by the crawl without the copy `timings` makes;
 * they are the next request's once the client is reused.
 */
export const kStamps: unique symbol = Symbol("selectors.stamps");
/** Starts another request on a finished client (internal; see `HttpClient[kReuse]`). */
export const kReuse: unique symbol = Symbol("selectors.reuse");
/** Whether the client waits with its response read whole off a reusable conn (internal). */
export const kIdleWhileWaiting: unique symbol = Symbol(
  "selectors.idleWhileWaiting",
);
/** The head of a response whose body failed (internal; see `HttpClient[kFailedHead]`). */
export const kFailedHead: unique symbol = Symbol("selectors.failedHead");
/**
 * The writer of the last request without a body on each conn `detach()`
 * handed over: a client per request on it, built alike, takes it (see
 * `buildWriter`). Weak: it goes with the conn.
 */
const connWriters = new WeakMap<PollableConn, BuiltWriter>();
/**
 * The client each conn is used by, until its `detach()` hands it over: a
 * second client on it would read the first's response as its own.
 */
const connOwners = new WeakMap<PollableConn, HttpClient>();

/** `detach()` for the crawl, which checks reuse itself (internal; see `HttpClient[kDetach]`). */
export const kDetach: unique symbol = Symbol("selectors.detach");
/** Whether bytes past the response may wait unread (internal; see `HttpClient[kUnreadMayWait]`). */
export const kUnreadMayWait: unique symbol = Symbol("selectors.unreadMayWait");
/** The idle timeout the response announced (internal; see `HttpClient[kKeepAliveTimeout]`). */
export const kKeepAliveTimeout: unique symbol = Symbol(
  "selectors.keepAliveTimeout",
);
/** Whether a kept conn was found closed under the request (internal; see `HttpClient[kMetClosedConn]`). */
export const kMetClosedConn: unique symbol = Symbol("selectors.metClosedConn");
/** When the total timeout passes (internal; see `HttpClient[kTotalDeadline]`). */
export const kTotalDeadline: unique symbol = Symbol("selectors.totalDeadline");
/** Drops what a finished request referenced (internal; see `HttpClient[kForget]`). */
export const kForget: unique symbol = Symbol("selectors.forget");

/** The ALPN protocols offered over TLS: HTTP/1.1 alone. */
const HTTP_1_1 = ["http/1.1"];

/** Steps of connecting on a {@linkcode Route}, after the TCP or Unix connect. */
const CONNECT_SOCKET = 0;
/** `CONNECT` sent, reading the proxy's answer. */
const CONNECT_ANSWER = 1;
/** TLS being handshaken over the tunnel or the Unix socket. */
const CONNECT_TLS = 2;

/** The most decoded bytes taken from the decoder in one call. */
const DECODE_SLICE = 256 * 1024;
/** The most decoded bytes passed to a sink per `handle()` before the loop gets a turn. */
const DECODE_BUDGET = 8 * 1024 * 1024;
/**
 * The longest a decoding body goes on (ms) without a turn that surely polls
 * the OS for I/O: other conns' bytes wait in the kernel at most about this.
 */
const POLL_BOUND_MS = 10;
/** How a kept-alive conn the server closed meanwhile fails on reuse. */
const STALE_CONN_ERRORS = [
  HttpParseError,
  Deno.errors.ConnectionReset,
  Deno.errors.BrokenPipe,
  Deno.errors.ConnectionAborted,
  Deno.errors.BadResource,
];
const noop = () => {};
/** A forgotten request's bytes (see `HttpClient[kForget]`). */
const EMPTY_REQUEST = new Uint8Array(0);

/**
 * One HTTP/1.1 request as a state machine for a selector loop, like the `Client` of
 * the crawler this project started from: `connecting` → `sending` → `receiving` →
 * `done` (or `failed` from any state).
 *
 * The driver registers {@linkcode HttpClient.pollable} for
 * {@linkcode HttpClient.events}, selects until {@linkcode HttpClient.deadline},
 * calls {@linkcode HttpClient.handle} with each ready mask (or `0` when the
 * select timed out, so the deadline is checked), and re-syncs its registration
 * afterwards: `events` and `deadline` change as the request advances, and
 * `pollable` changes if a stale keep-alive connection forced a retry (or a
 * tunnel is opened again, see `proxy`). `handle` never throws: every problem
 * ends in `failed` with `error` set (an {@linkcode HttpParseError} for a
 * malformed response, a {@linkcode ProxyError} for a proxy's refusal,
 * `Deno.errors.TimedOut` past a deadline, the connection's own error otherwise).
 *
 * Through a proxy, an `https:` request stays `connecting` while its tunnel is
 * built, one step per event on the same connection: connected to the proxy,
 * `CONNECT` sent, the proxy's answer read, TLS handshaken over the tunnel.
 *
 * With a request body stream or a `sink`, the request may wait on something that
 * is not its connection: {@linkcode HttpClient.waiting} is then a promise and
 * `events` is 0 (or `EVENT_READ` while only the body stream is awaited, for an
 * answer that comes before the request's end). Register the connection for
 * `events` (0: unregister it, so nothing more is read: that is the
 * backpressure), and call `handle(0)` once the promise settles, or once the
 * deadline passed, whichever comes first (a `wakeup()` of your selector when
 * it settles does both, as below).
 *
 * @example Drive one request by hand
 * ```ts
 * import { assert } from "@std/assert";
 * import { DefaultSelector, HttpClient } from "@seed/selectors";
 *
 * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("hi"));
 * using sel = new DefaultSelector();
 * const client = new HttpClient(`http://127.0.0.1:${server.addr.port}/`, { timeout: 5_000 });
 * let conn = client.pollable; // the conn registered
 * let registered = 0; // the events it is registered for
 * let woken: Promise<void> | null = null; // the wait a wakeup() is set for
 * while (client.state !== "done" && client.state !== "failed") {
 *   if (client.pollable !== conn) {
 *     // The request moved to a new conn (a kept one the server had closed).
 *     if (registered !== 0) sel.unregister(conn);
 *     conn = client.pollable;
 *     registered = 0;
 *   }
 *   const events = client.events;
 *   if (events !== registered) {
 *     if (registered === 0) sel.register(conn, events);
 *     else if (events === 0) sel.unregister(conn);
 *     else sel.modify(conn, events);
 *     registered = events;
 *   }
 *   const waiting = client.waiting;
 *   if (waiting !== null && waiting !== woken) {
 *     // Waiting on something else (a sink, an upload's next chunk): its end wakes us.
 *     woken = waiting;
 *     waiting.then(() => sel.wakeup());
 *   }
 *   // Select until the deadline, then handle(0): that is what checks it.
 *   const ready = await sel.select(Math.max(0, client.deadline - performance.now()));
 *   client.handle(ready.length > 0 ? ready[0]![1] : 0);
 * }
 * if (registered !== 0) sel.unregister(conn);
 * assert(client.state === "done");
 * assert(new TextDecoder().decode(client.response?.body) === "hi");
 * ```
 */
export class HttpClient {
  /** The request method. */
  readonly method!: string;

  // Every field is set by #begin, which a reused client runs again: one place
  // lists a request's whole state, so nothing of the last request is left over.
  // Numbers start as numbers so that V8 keeps doubles in place (a field that
  // starts undefined boxes every double stored in it anew).
  #url!: HttpUrl;
  #request!: Uint8Array;
  /** A large body sent after `#request` (see `RequestWriter.body`), and whether it went out. */
  #fixedBody: Uint8Array | null = null;
  #fixedBodyQueued = false;
  /** Bytes being sent: the request head, then a large body or each framed piece of a body stream. */
  #out!: Uint8Array | null;
  #outSent = 0;
  #bodyStream!: BodyStream | null;
  #state!: HttpClientState;
  #conn!: PollableConn;
  /** Whether the request may be sent once more if its reused conn turns out dead. */
  #mayReplay!: boolean;
  /** The request went out on a kept conn it was given, not one of its own. */
  #reusedConn!: boolean;
  /** That kept conn turned out closed by the server before any answer. */
  #metClosedConn!: boolean;
  /** The response ended where a read that filled the conn's buffer ended. */
  #unreadMayWait!: boolean;
  /** The conn was handed over by `detach()`. */
  #detached!: boolean;
  /** Inside `handle()`: a call from a callback it runs (a sink's, a tap's) is ignored. */
  #handling = false;
  /** Failed for good (not replayed): whatever a caller's callback left running ends so. */
  #failed!: boolean;
  /** Its writer, for the next request on its conn, when it built one. */
  #built!: BuiltWriter | null;
  #parser!: ResponseParser;
  #decoder!: ContentDecoder | null;
  /**
   * Why the body cannot be decoded (more codings than allowed), thrown at its
   * first byte: a 204, a 304 or a HEAD's answer has none, and stands.
   */
  #undecodable!: HttpParseError | null;
  /** The timer a decoding slice waits for; cleared if the request ends first. */
  #turn!: ReturnType<typeof setTimeout> | undefined;
  /** Inside the body: the decoder holds output not yet passed on. */
  #decoding!: boolean;
  /**
   * Decoded bytes still to pass on before the loop gets a turn; kept across
   * waits for a sink, whose writer may be ready again within microtasks.
   */
  #budget!: number;
  /** The parser is done; what is left is draining the decoder, closing the sink. */
  #ending!: boolean;
  #sinkClosing!: boolean;
  #reusable!: boolean;
  /**
   * Receiving while the request is still being sent: the server answered
   * before the request's end (RFC 9112 section 9.5: an early `413`, say), so
   * both go on until the response ends, which cuts the rest of the request.
   */
  #sendOpen!: boolean;
  /** The request was cut short: its conn cannot carry another. */
  #cut!: boolean;
  /**
   * Writing the request failed before any answer was read: the request's
   * error unless a response comes (an early `413` still on its way when the
   * server's close failed the write).
   */
  #sendError: unknown;
  /**
   * The body stream's read last waited on, and that wait: asked again, the
   * same wait. While `#waiting` is `#bodyWait`, only the request body's next
   * chunk is awaited: the response side is free, so the conn is still read
   * (an early answer).
   */
  #bodyRead: Promise<unknown> | null = null;
  #bodyWait: Promise<void> | null = null;
  #body!: BodyBuffer | SinkBody | null;
  #sink!: WritableStream<Uint8Array> | undefined;
  #divert!: ((head: ResponseHead) => boolean) | undefined;
  /** The crawl's `redirect` but `"manual"`: bodies of redirects are set aside (see `kRedirectMode`). */
  #redirectMode!: "follow" | "error" | undefined;
  #wake: (() => void) | undefined;
  #tap!: TapRecorder | null;
  #maxResponseBytes = 0;
  #decompress!: boolean;
  #keepAlive!: boolean;
  #caCerts!: string[] | undefined;
  #cert!: string | undefined;
  #key!: string | undefined;
  /** How the request reaches its server; `null` for a direct connection. */
  #route!: Route | null;
  /** Where connecting on a route is (`CONNECT_*`). */
  #step = CONNECT_SOCKET;
  /** The `User-Agent` of a `CONNECT`. */
  #userAgent!: string;
  /** The caller's `Proxy-Authorization`, for a tunnel's `CONNECT`; `null` for none. */
  #proxyAuthorization!: string | null;
  /** The parser of the proxy's answer to `CONNECT`. */
  #tunnelParser!: ResponseParser | null;
  /** TLS over a tunnel is being tried with the default roots, not `caCerts`. */
  #defaultRoots!: boolean;
  /** The total timeout as the caller set it (on a hop, its deadline is what is left). */
  #timeoutShown = 0;
  #connectTimeout = 0;
  #idleTimeout = 0;
  #totalDeadline = 0;
  #connectDeadline = 0;
  #lastActivity = 0;
  #waiting!: Promise<void> | null;
  /** A wait ended and no read was issued since: a direct read may be aimed. */
  #resumed!: boolean;
  #timings: Stamps = {
    start: NaN,
    connected: NaN,
    sent: NaN,
    firstByte: NaN,
    end: NaN,
  };
  #response!: HttpResponse | null;
  #error!: unknown;

  /**
   * Validates the request and starts connecting (or sending, on a given `conn`).
   *
   * @param url An `http:` or `https:` URL, with a port other than 0.
   * @param options Method, headers, body, limits and connection options.
   * @throws {TypeError} If the URL does not parse, is not http(s) or has port 0;
   *   if the method, a header or the body is invalid (a control character in a
   *   header included); if `sink` is not an unlocked `WritableStream`; if
   *   `cert` or `key` is given alone, does not parse as PEM, or they do not
   *   match; if `caCerts` are not whole PEM certificates; if `conn` is closed,
   *   is another `HttpClient`'s that its `detach()` has not handed over, or
   *   is not TLS for an `https:` URL.
   * @throws {RangeError} If a timeout is negative or NaN, or `maxResponseBytes`
   *   is not a non-negative integer or `Infinity`.
   */
  constructor(url: string | URL, options: HttpClientOptions = {}) {
    options = optionsObject(options);
    const conn = options.conn ?? null;
    if (conn !== null) {
      if (!(conn instanceof PollableConn)) {
        throw new TypeError(
          `Cannot fetch: conn must be a PollableConn, received ${
            typeName(conn)
          }`,
        );
      }
      if (conn.closed) throw new TypeError("Cannot fetch: conn is closed");
      const owner = connOwners.get(conn);
      if (owner !== undefined && !owner.#detached) {
        throw new TypeError(
          "Cannot fetch: conn is another HttpClient's (its detach() hands it over once done)",
        );
      }
    }
    this.#begin(url, options, conn, null);
    // Here, not in #begin: a crawl's clients are the crawl's own, and it owns
    // their conns (no write per request there).
    connOwners.set(this.#conn, this);
  }

  /**
   * Starts another request on this finished client, as a new `HttpClient` would,
   * minus the new client: the crawl keeps the client of each idle keep-alive conn
   * (`keepConn`: the request goes on the conn {@linkcode HttpClient.detach} gave
   * back) and a few of those whose conn is closed (a new conn is opened). The
   * parser is reused either way when its limits fit; `options.conn` is ignored.
   * If it throws (a bad request), the client is as it was, to be reused again.
   *
   * @ignore
   */
  [kReuse](
    url: string | URL | HttpUrl,
    options: HttpClientOptions,
    keepConn: boolean,
  ): void {
    this.#begin(url, options, keepConn ? this.#conn : null, this.#parser);
  }

  #begin(
    url: string | URL | HttpUrl,
    options: HttpClientOptions,
    conn: PollableConn | null,
    parser: ResponseParser | null,
  ): void {
    const start = loopNow();
    const parsed = toHttpUrl(url);
    const timeout = nonNegative("timeout", options.timeout, 30_000);
    const connectTimeout = nonNegative(
      "connectTimeout",
      options.connectTimeout,
      10_000,
    );
    const idleTimeout = nonNegative(
      "idleTimeout",
      options.idleTimeout,
      Infinity,
    );
    const maxResponseBytes = byteLimit(
      "maxResponseBytes",
      options.maxResponseBytes,
      Infinity,
    );
    const decompress = options.decompress ?? true;
    const keepAlive = options.keepAlive ?? false;
    let cert: string | undefined;
    let key: string | undefined;
    if (options.cert !== undefined || options.key !== undefined) {
      if (
        typeof options.cert !== "string" || typeof options.key !== "string"
      ) {
        throw new TypeError(
          "Cannot fetch: cert and key must be given together, as PEM strings",
        );
      }
      checkClientCert(options.cert, options.key, "fetch");
      cert = options.cert;
      key = options.key;
    }
    if (options.caCerts !== undefined) checkCaCerts(options.caCerts, "fetch");
    const internal = options as InternalOptions;
    const sink = options.sink;
    let divert: ((head: ResponseHead) => boolean) | undefined;
    if (sink !== undefined) {
      if (!(sink instanceof WritableStream) || sink.locked) {
        throw new TypeError(
          sink instanceof WritableStream
            ? "Cannot fetch: sink must be a WritableStream that is not locked"
            : `Cannot fetch: sink must be a WritableStream, received ${
              typeName(sink)
            }${
              // fetchAll's function form, given to the one request.
              typeof sink === "function"
                ? " (a sink per URL is fetchAll's)"
                : ""}`,
        );
      }
      divert = internal[kDivertSink];
    }
    if (options.tap !== undefined && typeof options.tap !== "function") {
      throw new TypeError("Cannot fetch: tap must be a function");
    }
    let writer = internal[kRequestWriter];
    let built: BuiltWriter | null = null;
    if (writer === undefined) {
      const conn = options.conn;
      built = buildWriter(
        {
          method: options.method ?? "GET",
          ...(options.headers ? { headers: options.headers } : {}),
          body: options.body ?? null,
          keepAlive,
          decompress,
        },
        conn === undefined ? undefined : connWriters.get(conn),
      );
      writer = built.writer;
    }
    let route: Route | null = null;
    if (kRoute in internal) {
      route = internal[kRoute] ?? null;
    } else if (
      options.proxy !== undefined || options.unixSocket !== undefined ||
      internal[kTransport] !== undefined
    ) {
      route = routeFor(
        parsed.url,
        internal[kTransport] ??
          readTransport(options.proxy, options.unixSocket)!,
      );
    }
    const request = writer.encodeUrl(
      parsed,
      route !== null && route.kind === "proxy" ? route.proxy : null,
    );
    const tap = options.tap === undefined ? null : new TapRecorder(
      options.tap,
      parsed.href,
      route !== null && route.proxy !== null,
    );
    const bodyStream = writer.stream === null
      ? null
      : new BodyStream(writer.stream, writer.streamLength);
    const tls = conn !== null && parsed.site.https ? conn[kTls]() : true;
    if (tls !== true) {
      // Its request, credentials and all, would go in cleartext. A caller's
      // promise of a conn, unsettled, may yet be a plain one: the request is
      // queued at once and would go out on it as it is.
      throw new TypeError(
        `Cannot fetch: conn is not TLS, and the URL is https: (fd ${conn!.fd}${
          tls === null ? ", its connection not established yet" : ""
        })`,
      );
    }
    // Everything that can throw has run: nothing is opened for a bad request,
    // and a reused client still has its conn and parser.
    const method = writer.method;
    this.#url = parsed;
    (this as { method: string }).method = method;
    this.#request = this.#out = request;
    this.#outSent = 0;
    this.#fixedBody = writer.body;
    this.#fixedBodyQueued = false;
    this.#bodyStream = bodyStream;
    this.#decoder = null;
    this.#undecodable = null;
    this.#turn = undefined;
    this.#decoding = false;
    this.#budget = DECODE_BUDGET;
    this.#ending = false;
    this.#sinkClosing = false;
    this.#reusable = false;
    this.#sendOpen = false;
    this.#cut = false;
    this.#sendError = null;
    this.#bodyRead = this.#bodyWait = null;
    this.#body = null;
    this.#sink = sink;
    this.#divert = divert;
    this.#redirectMode = internal[kRedirectMode];
    this.#wake = internal[kWake];
    this.#tap = tap;
    this.#maxResponseBytes = maxResponseBytes;
    this.#decompress = decompress;
    this.#keepAlive = keepAlive && !writer.closes;
    this.#caCerts = options.caCerts;
    this.#cert = cert;
    this.#key = key;
    this.#route = route;
    this.#step = CONNECT_SOCKET;
    this.#userAgent = route !== null ? writer.userAgent : "";
    this.#proxyAuthorization = writer.proxyAuthorization;
    this.#tunnelParser = null;
    this.#defaultRoots = false;
    this.#timeoutShown = internal[kTotalLimit] ?? timeout;
    this.#connectTimeout = connectTimeout;
    this.#idleTimeout = idleTimeout;
    this.#totalDeadline = start + timeout;
    this.#connectDeadline = Infinity;
    this.#lastActivity = 0;
    this.#waiting = null;
    this.#resumed = false;
    const timings = this.#timings;
    timings.start = start;
    timings.connected = NaN;
    timings.sent = NaN;
    timings.firstByte = NaN;
    timings.end = NaN;
    this.#response = null;
    this.#error = null;
    if (parser !== null && parser.maxBodyBytes === maxResponseBytes) {
      parser.reset(method);
      this.#parser = parser;
    } else {
      this.#parser = this.#newParser();
    }
    this.#reusedConn = conn !== null;
    this.#metClosedConn = false;
    this.#unreadMayWait = false;
    this.#detached = false;
    this.#failed = false;
    this.#built = built;
    this.#mayReplay = this.#reusedConn && IDEMPOTENT_METHODS.has(method) &&
      bodyStream === null;
    if (conn !== null) {
      this.#conn = conn;
      this.#state = "sending";
      this.#timings.connected = start;
    } else {
      this.#state = "connecting";
      this.#conn = this.#connect();
    }
  }

  /** The URL requested. */
  get url(): URL {
    return this.#url.url;
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
   * The events to register for now: `EVENT_WRITE` while connecting (but
   * `EVENT_READ` while connecting waits for a proxy's answer to `CONNECT`),
   * both while sending (a server may answer before the request's end: the
   * request is then sent on while the response is read, and cut short when the
   * response ends), `EVENT_READ` while receiving, `0` when done or failed, and
   * `0` while {@linkcode HttpClient.waiting} (`EVENT_READ` while only the body
   * stream's next chunk is awaited).
   */
  get events(): number {
    if (this.#waiting !== null) {
      return this.#waiting === this.#bodyWait ? EVENT_READ : 0;
    }
    const state = this.#state;
    if (state === "receiving") {
      return this.#sendOpen ? EVENT_READ | EVENT_WRITE : EVENT_READ;
    }
    if (state === "connecting") {
      return this.#step === CONNECT_ANSWER ? EVENT_READ : EVENT_WRITE;
    }
    // Reading too: a server may answer (and close) before the request's end.
    return state === "sending" ? EVENT_WRITE | EVENT_READ : 0;
  }

  /**
   * When the earliest limit in force now passes, in `performance.now()`
   * milliseconds (`Infinity` for none): while connecting, the sooner of the
   * connect and total deadlines; while receiving, the sooner of the total
   * deadline and the last response bytes plus `idleTimeout` (the total deadline
   * alone while the request still goes out after interim `1xx` answers only);
   * else the total deadline. It moves as the request advances: read it again
   * after every {@linkcode HttpClient.handle}.
   */
  get deadline(): number {
    const state = this.#state;
    const total = this.#totalDeadline;
    if (state === "connecting") return Math.min(total, this.#connectDeadline);
    if (state === "receiving") {
      if (!this.#idleApplies()) return total;
      return Math.min(total, this.#lastActivity + this.#idleTimeout);
    }
    return state === "sending" ? total : Infinity;
  }

  /**
   * Non-null while the request waits on something other than its connection: the
   * next chunk of a request body stream, a `sink` whose writer is not ready, a
   * `tap` behind on the bytes it was handed (its `ready`), or a turn of the
   * event loop between slices of decoding. Meanwhile `events` is 0
   * (unregister the connection: an unregistered conn issues no reads, which is
   * the backpressure), except while only the body stream is awaited: then it is
   * `EVENT_READ`, so that an answer the server sends before the request's end is
   * read. The promise never rejects; once it settles, call `handle(0)` and
   * register the connection for `events` again.
   */
  get waiting(): Promise<void> | null {
    return this.#waiting;
  }

  /**
   * `performance.now()` stamps of this request: `start` (constructed), `connected`
   * (TCP and TLS done; `start` on a reused connection), `sent` (the whole request
   * handed to the connection, or the first response byte if the server answered
   * before that), `firstByte` (of the response) and `end` (done or failed).
   * `NaN` until reached.
   */
  get timings(): {
    start: number;
    connected: number;
    sent: number;
    firstByte: number;
    end: number;
  } {
    return { ...this.#timings };
  }

  /**
   * The time stamps themselves, for the crawl: read, never written.
   *
   * @ignore
   */
  get [kStamps](): Stamps {
    return this.#timings;
  }

  /**
   * When the total timeout passes, for the crawl: a request it holds before
   * sending, on a conn that is up, owes nothing to the connect timeout.
   *
   * @ignore
   */
  get [kTotalDeadline](): number {
    return this.#totalDeadline;
  }

  /**
   * For the crawl: the response is read whole off a conn that may be reused,
   * and the request waits only on its sink's close: nothing more may come on
   * the conn, so the crawl watches it meanwhile. (Not while decoding: those
   * turns keep the loop busy, and Deno polls the OS only every few dozen of
   * them, so what the conn's read would tell may not be known in time.)
   *
   * @ignore
   */
  [kIdleWhileWaiting](): boolean {
    return this.#ending && this.#reusable && this.#sinkClosing &&
      this.#waiting !== null;
  }

  /**
   * For the crawl: whether the response ended where a read that filled the
   * conn's buffer ended, so that bytes past it may wait unread in the kernel.
   *
   * @ignore
   */
  [kUnreadMayWait](): boolean {
    return this.#unreadMayWait;
  }

  /**
   * For the crawl: whether the request failed because the kept conn it was
   * given turned out closed by the server before any answer (it could not be
   * sent again: not idempotent, or a stream body). A replayed one does not
   * count: one race with a server's idle timer says little of the server.
   *
   * @ignore
   */
  [kMetClosedConn](): boolean {
    return this.#metClosedConn;
  }

  /**
   * For the crawl, once it has taken a finished request's response or error:
   * drops them, and what the request referenced (its body, sink, tap, the
   * crawl's wake), so that the client a kept conn or the spares hold, for as
   * long as they hold it, keeps none of its last URL's bytes. Nothing else
   * changes: its conn, parser and time stamps stay for the next request.
   *
   * @ignore
   */
  [kForget](): void {
    if (this.#state !== "done" && this.#state !== "failed") return;
    this.#response = null;
    this.#error = null;
    this.#request = this.#out = EMPTY_REQUEST;
    this.#fixedBody = null;
    this.#sink = undefined;
    this.#divert = undefined;
    this.#wake = undefined;
    this.#tap = null;
  }

  /**
   * For the crawl: the idle timeout (ms) the response's `Keep-Alive:
   * timeout=N` announced, `-1` without one: past it the server closes the
   * conn, so it is not reused then.
   *
   * @ignore
   */
  [kKeepAliveTimeout](): number {
    return this.#parser.keepAliveTimeout;
  }

  /**
   * For the crawl: when the request failed on a response's body (too large,
   * badly encoded or framed) after its head was whole, that response with an
   * empty body, so that what the head asks (a redirect, a retry, a pause of
   * the origin) can still be done; else `null`.
   *
   * @ignore
   */
  [kFailedHead](): HttpResponse | null {
    const head = this.#parser.head;
    if (
      this.#state !== "failed" || head === null ||
      !(this.#error instanceof HttpParseError)
    ) return null;
    return new ReceivedResponse(
      responseUrl(this.#url),
      head,
      new Uint8Array(0),
    );
  }

  /** Whether the request body can be sent again: `false` for a `ReadableStream` body. */
  get replayable(): boolean {
    return this.#bodyStream === null;
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
   * Advances the request; never throws. Call it with the mask a selector reported
   * for {@linkcode HttpClient.pollable}, or with `0` when the select timed out at
   * {@linkcode HttpClient.deadline} (which fails the request with
   * `Deno.errors.TimedOut` whose message names the limit: "connect", "idle" or
   * "total") and after {@linkcode HttpClient.waiting} settled.
   *
   * @param mask `EVENT_READ`/`EVENT_WRITE` bits that are ready.
   */
  handle(mask: number): void {
    const state = this.#state;
    if (state === "done" || state === "failed" || this.#handling) return;
    this.#handling = true;
    try {
      this.#advance(state, mask);
    } finally {
      this.#handling = false;
      // Closed by a callback this call ran (a tap's, a sink's): what ran on
      // after it does not bring the request back.
      if (this.#failed && this.#state !== "failed") {
        this.#state = "failed";
        this.#waiting = null;
        this.#response = null;
      }
    }
  }

  #advance(state: HttpClientState, mask: number): void {
    // While connecting, EVENT_WRITE says the connect settled: a mask that says
    // so before it did (a caller's guess) would skip the connect's timeout.
    if (
      state === "connecting" && (mask & EVENT_WRITE) !== 0 &&
      (this.#conn[kReady]() & EVENT_WRITE) === 0
    ) mask &= ~EVENT_WRITE;
    // The wait on the body stream's next chunk, set aside while an answer
    // that came meanwhile is read, and kept after (one wait, one wakeup).
    let aside: Promise<void> | null = null;
    try {
      // A direct connect that settled ended as it did, even seen past its
      // deadline (a permission prompt or the caller's code held the loop):
      // its own error, not a timeout, or a conn to use.
      const settled = state === "connecting" && this.#route === null &&
        (mask & EVENT_WRITE) !== 0;
      if (settled && this.#conn.error) throw this.#connectFailure();
      // Bytes that came are read before the deadlines are checked, for the
      // same reason: a response that came in time, read late (the process
      // was stopped, the caller's code held the loop), is not failed as a
      // timeout. A deadline passed still ends one that is not whole then.
      const reading = (mask & EVENT_READ) !== 0 &&
        (state === "sending" || state === "receiving") &&
        (this.#waiting === null || this.#waiting === this.#bodyWait);
      if (!reading) this.#checkDeadlines(loopNow(), settled);
      if (this.#waiting !== null) {
        if (this.#waiting !== this.#bodyWait || (mask & EVENT_READ) === 0) {
          return;
        }
        aside = this.#waiting;
        this.#waiting = null;
      }
      if (state === "connecting") {
        if (this.#route !== null) {
          if (!this.#establish(mask)) return;
        } else if ((mask & EVENT_WRITE) === 0) return;
        if (this.#conn.error) throw this.#connectFailure();
        this.#timings.connected = loopNow();
        this.#state = "sending";
      }
      if (this.#state === "sending" && (mask & EVENT_READ) !== 0) {
        this.#answered();
      }
      if (this.#state === "sending") {
        this.#send();
      } else {
        if (this.#sendOpen && (mask & EVENT_WRITE) !== 0) this.#send();
        this.#receive(mask);
      }
      if (reading) {
        const after = this.#state as HttpClientState;
        if (after !== "done" && after !== "failed") {
          this.#checkDeadlines(loopNow());
        }
      }
      if (aside !== null && this.#waiting === null && this.#sendOpen) {
        // Still uploading, the chunk still awaited: wait on it as before
        // (reading only), not through a WRITE round that waits again.
        this.#waiting = aside;
      }
    } catch (e) {
      this.#fail(e);
    }
  }

  /**
   * Takes the connection of a `done` keep-alive request for another request to the
   * same origin, or `null` if it cannot be reused (then it is already closed): the
   * response must have been framed by its length, with no byte after it (none
   * read, and none that may wait unread: a response that ended exactly where a
   * read that filled the conn's buffer did gives `null`), and both sides must
   * have agreed to keep the connection. The client no longer owns the
   * connection after it (`close()` leaves it open, and another `detach()`
   * gives `null`).
   *
   * @returns The open connection, or `null`.
   */
  detach(): PollableConn | null {
    // Handed over already: the conn is another client's now.
    if (this.#detached) return null;
    // Bytes past the response may wait unread (it ended with a read that
    // filled the buffer), or came already: the next request would take them
    // as its response. Closed rather than handed over.
    if (
      this.#unreadMayWait ||
      (this.#state === "done" && (this.#conn[kReady]() & EVENT_READ) !== 0)
    ) {
      if (this.#state === "done") this.#conn.close();
      return null;
    }
    const conn = this[kDetach]();
    if (conn === null) return null;
    // Its entry goes: it held this client, and so its response and body, for
    // as long as the conn lived (idle in a caller's pool, say).
    connOwners.delete(conn);
    const built = this.#built;
    if (built !== null && built.fields !== null) connWriters.set(conn, built);
    return conn;
  }

  /**
   * For the crawl: {@linkcode HttpClient.detach} without its check of bytes
   * that may wait unread, which the crawl makes itself, by a read before
   * reuse (see `HttpClient[kUnreadMayWait]`).
   *
   * @ignore
   */
  [kDetach](): PollableConn | null {
    if (this.#state !== "done" || !this.#reusable || this.#conn.closed) {
      return null;
    }
    this.#detached = true;
    return this.#conn;
  }

  /**
   * Closes the connection, whatever the state; a pending request fails with
   * `reason` (its sink and body stream get it too). A sink whose close is
   * under way already (the whole body written, `waiting` on it) still closes:
   * a `WritableStream` cannot be aborted then.
   *
   * @param reason Why; a `Deno.errors.Interrupted` ("Request closed") if not given.
   */
  close(reason?: unknown): void {
    if (this.#state !== "done" && this.#state !== "failed") {
      this.#fail(reason ?? new Deno.errors.Interrupted("Request closed"), true);
    }
    // Handed over by detach(): no longer this client's to close.
    if (!this.#detached) this.#conn[kCloseNow]();
  }

  /**
   * Whether `idleTimeout` runs now (while receiving): not while the request
   * waits on something other than its conn, nor while it still goes out with
   * no final head read, as only interim `1xx` answers (a `100 Continue`) came:
   * those may be ignored (RFC 9110 section 15.2), so a server holding the
   * upload is timed as without them, by the total timeout alone.
   */
  #idleApplies(): boolean {
    return this.#waiting === null &&
      !(this.#sendOpen && this.#parser.head === null);
  }

  #checkDeadlines(now: number, connected = false): void {
    let kind = "total", limit = this.#timeoutShown, at = this.#totalDeadline;
    if (
      this.#state === "connecting" && !connected &&
      this.#connectDeadline < at
    ) {
      kind = "connect";
      limit = this.#connectTimeout;
      at = this.#connectDeadline;
    } else if (this.#state === "receiving" && this.#idleApplies()) {
      const idle = this.#lastActivity + this.#idleTimeout;
      if (idle < at) {
        kind = "idle";
        limit = this.#idleTimeout;
        at = idle;
      }
    }
    if (now < at) return;
    throw new Deno.errors.TimedOut(
      `Cannot fetch ${
        redactUrl(this.url, this.url)
      }: the ${kind} timeout of ${limit} ms passed`,
    );
  }

  #connect(): PollableConn {
    const conn = this.#open();
    // From when the connect left: a permission prompt holds the loop inside
    // Deno.connect, for as long as its user takes to answer.
    this.#connectDeadline = performance.now() + this.#connectTimeout;
    // A request goes out in pieces (a head, then body chunks as a stream
    // yields them): with Nagle's algorithm, a piece sent behind one not yet
    // acknowledged waits for the server's delayed ACK, 40 ms or more a
    // request. As curl, undici and Go do, send each piece at once. (A no-op
    // over a Unix socket.)
    conn.setNoDelay(true);
    return conn;
  }

  #open(): PollableConn {
    const route = this.#route;
    if (route !== null) {
      this.#step = CONNECT_SOCKET;
      this.#tunnelParser = null;
      if (route.kind === "unix") {
        return PollableConn.connect({
          transport: "unix",
          path: route.unixSocket!,
        });
      }
      return PollableConn.connect({
        hostname: route.proxy!.host,
        port: route.proxy!.port,
      });
    }
    const { hostname, port, https } = this.#url.site;
    if (https) {
      return PollableConn.connectTls({ hostname, port, ...this.#tlsOptions() });
    }
    return PollableConn.connect({ hostname, port });
  }

  #tlsOptions(): {
    caCerts?: string[];
    cert?: string;
    key?: string;
    alpnProtocols: string[];
  } {
    return {
      // As curl --http1.1 and fetch: a server that speaks only h2 then says
      // so in the handshake, where without it an h2-only server answered 403
      // or nothing at all.
      alpnProtocols: HTTP_1_1,
      ...(this.#caCerts && !this.#defaultRoots
        ? { caCerts: this.#caCerts }
        : {}),
      ...(this.#cert !== undefined
        ? { cert: this.#cert, key: this.#key! }
        : {}),
    };
  }

  /**
   * Advances connecting on a route, one state per event: the socket (to the
   * proxy, or the Unix socket), then for a tunnel `CONNECT` and the proxy's
   * answer, then TLS over the conn for `https:`. Returns whether the conn is
   * ready for the request.
   */
  #establish(mask: number): boolean {
    const route = this.#route!;
    const conn = this.#conn;
    switch (this.#step) {
      case CONNECT_SOCKET: {
        if ((mask & EVENT_WRITE) === 0) return false;
        if (conn.error) {
          throw route.proxy === null
            ? this.#connectFailure()
            : viaProxy(conn.error, route.proxy.authority);
        }
        if (route.kind === "tunnel") {
          // A CONNECT request is far below the write buffer's high-water mark.
          conn[kSendOwned](
            encodeConnect(
              this.url,
              route.proxy!,
              this.#userAgent,
              this.#proxyAuthorization,
            ),
          );
          this.#tunnelParser = new ResponseParser({ method: "CONNECT" });
          this.#step = CONNECT_ANSWER;
          return false;
        }
        if (this.#url.site.https) {
          this.#startTls();
          return false;
        }
        return true;
      }
      case CONNECT_ANSWER: {
        if ((mask & EVENT_READ) === 0) return false;
        const data = conn[kPeek]();
        if (data === undefined) return false;
        const parser = this.#tunnelParser!;
        if (data === null) {
          parser.receive(null); // throws: the proxy closed before answering
          throw new HttpParseError(
            "truncated-head",
            "Cannot parse response: the proxy closed the tunnel",
            0,
          );
        }
        let used: number;
        try {
          used = parser.receive(data);
        } catch (e) {
          conn[kConsume](data.length, false);
          throw e;
        }
        const head = parser.head;
        if (head === null) {
          conn[kConsume](data.length);
          return false;
        }
        // Nothing more is read before TLS starts: bytes after the head stay
        // buffered, and starting TLS refuses them (a proxy must wait for the
        // client's handshake).
        conn[kConsume](used, false);
        if (head.status < 200 || head.status >= 300) {
          const refusal = new ProxyError(
            route.proxy!.authority,
            head.status,
            proxyReason(head),
          );
          const retryAfter = head.field("retry-after");
          if (retryAfter !== null) proxyRetryAfter.set(refusal, retryAfter);
          throw refusal;
        }
        this.#startTls();
        return false;
      }
      default: {
        if ((mask & EVENT_WRITE) === 0) return false;
        const error = conn.error;
        if (
          error !== null && this.#caCerts && !this.#defaultRoots &&
          route.kind !== "proxy" && isUnknownIssuer(error)
        ) {
          // A tunnel or a Unix socket's TLS could trust caCerts only: try the
          // default roots on a new conn, so that, as direct, both are trusted.
          this.#defaultRoots = true;
          conn.close();
          // Within the same connectTimeout: one connect, however many tunnels.
          const deadline = this.#connectDeadline;
          this.#conn = this.#connect();
          this.#connectDeadline = deadline;
          return false;
        }
        if (error !== null) throw this.#connectFailure();
        return true;
      }
    }
  }

  /**
   * The conn's failed connect or handshake, naming where it went: Deno's own
   * words ("Connection refused (os error 111)", a certificate's problem) do
   * not, and after a redirect the result's URL is not where it failed.
   */
  #connectFailure(): unknown {
    const route = this.#route;
    if (route?.kind === "unix" && this.#step === CONNECT_SOCKET) {
      return toTarget(this.#conn.error, `unix socket ${route.unixSocket}`);
    }
    const { hostname, port } = this.#url.site;
    const host = hostname.includes(":") ? `[${hostname}]` : hostname;
    return toTarget(this.#conn.error, `${host}:${port}`);
  }

  #startTls(): void {
    this.#step = CONNECT_TLS;
    this.#conn[kStartTls]({
      hostname: this.#url.site.hostname,
      ...this.#tlsOptions(),
    });
  }

  #newParser(): ResponseParser {
    return new ResponseParser({
      method: this.method,
      maxBodyBytes: this.#maxResponseBytes,
    });
  }

  /** Waits on `promise` (events 0, or READ for a body stream) until it settles; then `handle(0)` resumes. */
  #waitFor(promise: Promise<unknown>): void {
    const waiting: Promise<void> = promise.then(noop, noop).then(() => {
      if (this.#waiting !== waiting) return;
      this.#waiting = null;
      this.#resumed = true;
      // Time spent waiting on our side is no silence of the server's.
      this.#lastActivity = loopNow();
    });
    this.#waiting = waiting;
  }

  #send(): void {
    const conn = this.#conn;
    for (;;) {
      const out = this.#out ?? this.#nextOut();
      if (out === null) return;
      let n: number;
      try {
        // The request bytes are ours and never change: queue them without a copy.
        n = conn[kSendOwned](
          this.#outSent === 0 ? out : out.subarray(this.#outSent),
        );
      } catch (e) {
        if (e instanceof BlockingIOError) return;
        // The server stopped reading (an early answer, then a close): what it
        // answered, if it did, comes before the write's error, though it may
        // not be read yet. So reading goes on; with no answer at all, the
        // write's error is the request's (`#fail`).
        if (this.#state === "sending") {
          if (!this.#answerBuffered()) this.#sendError = e;
          this.#answered();
        }
        this.#stopSending();
        return;
      }
      if (this.#tap !== null && n > 0) {
        this.#tap.request(
          out.subarray(this.#outSent, this.#outSent + n),
          conn.remoteAddr,
        );
      }
      this.#outSent += n;
      // Answered early and still uploading: the upload going out is no
      // silence to time out on (idleTimeout is for waiting on the server).
      if (this.#sendOpen) this.#lastActivity = loopNow();
      if (this.#outSent === out.length) {
        this.#out = null;
        this.#outSent = 0;
      }
    }
  }

  /** What to send after the head: the body stream's next piece, or nothing. */
  #nextOut(): Uint8Array | null {
    const body = this.#fixedBody;
    if (body !== null && !this.#fixedBodyQueued) {
      this.#fixedBodyQueued = true;
      this.#out = body;
      return body;
    }
    const stream = this.#bodyStream;
    if (stream !== null && !stream.finished) {
      if (this.#tap !== null && this.#state === "sending") {
        // A tap behind on the request bytes it was handed holds the upload,
        // as it holds a response's reads (once one comes, those waits do).
        const ready = this.#tap.ready();
        if (ready !== null) {
          this.#waitFor(ready);
          return null;
        }
      }
      // Every piece before is accepted whole: those the conn has written
      // are spare (of a closed conn, none can be told).
      const conn = this.#conn;
      const next = stream.next(conn.closed ? undefined : conn[kUnwritten]());
      if (next instanceof Promise) {
        if (next === this.#bodyRead) {
          // The read waited on already (the response side waited meanwhile):
          // one wait per read, not another chain on it per turn.
          this.#waiting = this.#bodyWait;
        } else {
          this.#waitFor(next);
          this.#bodyRead = next;
          this.#bodyWait = this.#waiting;
        }
        return null;
      }
      this.#out = next;
      return next;
    }
    if (this.#sendOpen) {
      this.#sendOpen = false; // sent whole, after all
      return null;
    }
    const now = loopNow();
    this.#timings.sent = now;
    this.#lastActivity = now;
    this.#state = "receiving";
    return null;
  }

  /** Response bytes came before the request's end: read them, and send on. */
  #answered(): void {
    const now = loopNow();
    this.#timings.sent = now;
    this.#lastActivity = now;
    this.#state = "receiving";
    this.#sendOpen = true;
  }

  /** Whether response bytes wait in the conn's buffer. */
  #answerBuffered(): boolean {
    try {
      return (this.#conn[kPeek]()?.length ?? 0) > 0;
    } catch {
      return false;
    }
  }

  /** Sends no more of the request: the response ended, or the server stopped reading. */
  #stopSending(): void {
    this.#sendOpen = false;
    this.#cut = true;
    this.#out = null;
    this.#outSent = 0;
    this.#bodyStream?.cancel(
      new Deno.errors.Interrupted(
        "The server answered before the request body was sent",
      ),
    );
  }

  /** The receive path: framing (the parser) → decoding → the body's consumer. */
  #receive(mask: number): void {
    // Resuming after a wait: decoded output first, then the end, then reading.
    if (this.#decoding) {
      this.#drain();
      if (this.#waiting !== null) return;
    }
    if (this.#ending) {
      this.#finish();
      return;
    }
    if ((mask & EVENT_READ) === 0) {
      // A sink that failed meanwhile ends the request now, whatever the server does.
      const body = this.#body;
      if (body instanceof SinkBody && body.error !== null) throw body.error;
      // Back from waiting on the sink, with no read in flight: the next read
      // may go straight to the body (a sink that is not ready after every
      // write would otherwise get every byte copied out of the conn's buffer).
      if (this.#resumed && this.#body !== null) this.#aimDirect();
      this.#resumed = false;
      return;
    }
    this.#resumed = false;
    const conn = this.#conn;
    const parser = this.#parser;
    let trailing = false;
    const direct = conn[kTakeDirect]();
    if (direct > 0) {
      // Body bytes that a read put straight into the body's buffer.
      parser.skipBody(direct);
      this.#lastActivity = loopNow();
      this.#body!.commit(direct);
      this.#awaitSink();
    } else {
      // The parser reads straight from the conn's buffer (no copy per read); body
      // bytes are copied once, to their consumer, before the view is released.
      const data = conn[kPeek]();
      if (data === undefined) return;
      if (data !== null) {
        this.#lastActivity = loopNow();
        if (Number.isNaN(this.#timings.firstByte)) {
          this.#timings.firstByte = this.#lastActivity;
        }
      }
      let used = -1;
      try {
        used = parser.receive(data);
        if (this.#tap !== null && data !== null) {
          this.#tap.response(data, used, parser);
        }
        const chunks = parser.peekBody();
        try {
          if (
            chunks.length > 0 || (parser.head !== null && this.#body === null)
          ) {
            this.#deliver(chunks);
          }
        } finally {
          parser.clearBody();
        }
      } catch (e) {
        if (data !== null) {
          // The parser failed (`used` unset): what it took still goes to the tap.
          if (used < 0 && this.#tap !== null) this.#tapTaken(data, e);
          conn[kConsume](data.length, false); // about to close
        }
        throw e;
      }
      if (data === null) {
        // The peer closed: the parser either threw or ended a close-delimited body.
        this.#end(false);
        this.#finish();
        return;
      }
      // Bytes past the response mean a confused peer: the conn cannot be reused.
      trailing = used !== data.length;
      // Ended with a read that filled the buffer: bytes past it may wait in
      // the kernel, to be taken by the next request on this conn as its
      // response. The crawl checks such a conn before reuse.
      if (parser.done && !trailing) this.#unreadMayWait = conn[kFilled]();
      if (parser.done) this.#end(trailing);
      else if (this.#tap !== null) this.#awaitTap();
      else this.#aimDirect();
      // Read on only if a read is wanted: not while waiting (backpressure), and
      // not on a conn about to be closed (no read left to interrupt).
      conn[kConsume](
        data.length,
        parser.done ? this.#reusable : this.#waiting === null,
      );
      if (parser.done) this.#finish();
      return;
    }
    if (parser.done) {
      this.#end(false);
      conn[kConsume](0, this.#reusable);
      this.#finish();
    } else {
      this.#aimDirect();
      conn[kConsume](0, this.#waiting === null);
    }
  }

  /**
   * The parser failed on `data`: the bytes it took before the byte it failed
   * on (a malformed chunk, the body's size limit) still went over the wire,
   * and the tap gets them, as an archiver records what arrived of a response.
   */
  #tapTaken(data: Uint8Array, error: unknown): void {
    if (!(error instanceof HttpParseError)) return;
    const parser = this.#parser;
    const from = parser.bytesConsumed;
    const used = Math.min(error.offset - from, data.length);
    if (!(used > 0)) return;
    try {
      this.#tap!.response(data, used, {
        bytesConsumed: from + used,
        headOffset: parser.headOffset,
      });
    } catch {
      // The request fails with the parser's error, the better reason.
    }
  }

  /** Sets up the body's consumer once the head is in, then passes `chunks` on. */
  #deliver(chunks: readonly Uint8Array[]): void {
    let body = this.#body;
    if (body === null) {
      const head = this.#parser.head!;
      const route = this.#route;
      if (route !== null && head.status === 407 && route.kind === "proxy") {
        throw new ProxyError(route.proxy!.authority, 407, proxyReason(head));
      }
      const status = head.status;
      // Kept out of the sink: a 3xx the crawl may follow, a status it retries.
      const diverted = this.#divert?.(head) ?? false;
      // Thrown away once in (a redirect to an http(s) URL followed, a status
      // retried): a decompression bomb there would take memory that a sink,
      // or a small body, was meant to spare. A 3xx not followed (a 300, an
      // ftp: Location) is the answer, decoded whole.
      const redirection = status >= 300 && status <= 399;
      // The first Location, as the crawl follows it: repeated ones joined by
      // ", " parse as no URL, and a bomb went uncut.
      const location = redirection && this.#redirectMode !== undefined
        ? fieldValue(fieldBytes(head), fieldLength(head), "location", true)
        : null;
      const thrownAway = this.#redirectMode === undefined || !redirection
        ? diverted
        : this.#redirectMode === "error"
        ? redirects(status, location) // fails on it, whatever its Location
        : redirectsOnward(status, location, this.url);
      if (this.#decompress && this.#parser.contentEncoded) {
        try {
          this.#decoder = ContentDecoder.for(
            head.field("content-encoding"),
            thrownAway
              ? Math.min(this.#maxResponseBytes, SET_ASIDE_MAX)
              : this.#maxResponseBytes,
          );
        } catch (error) {
          if (!(error instanceof HttpParseError)) throw error;
          // Now if a body is announced, not once it has come whole.
          if (this.#parser.bodyRemaining > 0) throw error;
          this.#undecodable = error;
        }
      }
      body = this.#body = this.#sink !== undefined && !diverted
        ? new SinkBody(this.#sink, this.#wake)
        : new BodyBuffer(
          this.#decoder === null ? this.#parser.contentLength : -1,
          this.#maxResponseBytes,
        );
    }
    const decoder = this.#decoder;
    if (decoder !== null) {
      for (const chunk of chunks) decoder.write(chunk);
      this.#drain();
      return;
    }
    let size = 0;
    for (const chunk of chunks) size += chunk.length;
    if (size > 0 && this.#undecodable !== null) throw this.#undecodable;
    body.reserve(size);
    for (const chunk of chunks) body.write(chunk, false);
    this.#awaitSink();
  }

  /** Passes decoded bytes on, a bounded amount per call. */
  #drain(): void {
    const decoder = this.#decoder!;
    const body = this.#body!;
    // A bounded amount per turn, then `waiting` lets timers and other conns in:
    // a 1 GiB gzip body never blocks the loop. The budget is the turn's, not
    // the call's: a sink ready again within microtasks (a synchronous write)
    // resumes this without a turn between.
    this.#decoding = true;
    while (this.#budget > 0) {
      const out = decoder.read(DECODE_SLICE);
      if (out === null) {
        this.#decoding = false;
        return;
      }
      body.write(out, true);
      this.#budget -= out.length;
      if (this.#awaitSink()) return;
    }
    this.#budget = DECODE_BUDGET;
    // A turn with due timers run and the OS polled for I/O: mostly a
    // forced-poll turn, as a zero-delay timer, which Deno fires no sooner
    // than ~2 ms on, is a fifth of the time of a 265 MiB gzip body decoded in
    // 8 MiB slices; but a timer's at least every POLL_BOUND_MS, as forced
    // polls can miss many turns in a row (other conns' responses unseen).
    this.#waitFor(
      timerTurnDue(POLL_BOUND_MS)
        ? new Promise((resolve) => this.#turn = setTimeout(resolve, 0))
        : nextTurn(true),
    );
  }

  /** Waits for the sink if its writer is not ready; returns whether it waits. */
  #awaitSink(): boolean {
    const body = this.#body;
    if (!(body instanceof SinkBody)) return false;
    if (body.error !== null) throw body.error;
    const ready = body.ready;
    if (ready === null) return false;
    this.#waitFor(ready);
    return true;
  }

  /**
   * A tap behind on what it was handed holds the reads, as a sink does; when
   * the sink waits too, until both are ready. (Not while only the request
   * body's next chunk is awaited: that wait reads on.)
   */
  #awaitTap(): void {
    const waiting = this.#waiting;
    if (waiting !== null && waiting === this.#bodyWait) return;
    const ready = this.#tap!.ready();
    if (ready === null) return;
    this.#waitFor(waiting === null ? ready : Promise.all([waiting, ready]));
  }

  /**
   * Inside a large `Content-Length` body that needs no decoding, points the conn's
   * next read straight at the body's buffer: no copy, and reads as large as the
   * kernel has.
   */
  #aimDirect(): void {
    const remaining = this.#parser.bodyRemaining;
    if (
      remaining < DIRECT_READ_MIN || this.#decoder !== null ||
      this.#undecodable !== null || this.#waiting !== null ||
      this.#tap !== null
    ) return;
    // One byte short of the body's end: its last bytes come through the conn's
    // buffer, with any the server sent past them, which then show (a read
    // exactly to the end would leave them in the kernel, for the next request
    // on this conn to take as its response).
    this.#conn[kReadInto](this.#body!.room(remaining - 1));
  }

  /** The parser is done: the one place where the conn's reuse is decided. */
  #end(trailing: boolean): void {
    this.#ending = true;
    // Answered before the request's end: the rest of it is of no use now.
    if (this.#sendOpen) this.#stopSending();
    const parser = this.#parser;
    this.#reusable = this.#keepAlive && parser.keepAlive && !trailing &&
      !this.#cut && !(this.#route?.kind === "proxy" && proxyCloses(parser));
    this.#decoder?.end();
    // Nothing more is read from it: release the socket now, not after the sink
    // (nor after flushing a request cut short).
    if (this.#reusable) return;
    if (this.#cut) this.#conn[kCloseNow]();
    else this.#conn.close();
  }

  #finish(): void {
    // Still waiting on a decoding slice or the sink: the resume finishes it.
    if (this.#waiting !== null) return;
    if (this.#decoder?.finished === false) {
      this.#drain();
      if (this.#waiting !== null) return;
    }
    const body = this.#body!;
    let bytes: Uint8Array;
    if (body instanceof SinkBody) {
      if (!this.#sinkClosing) {
        this.#sinkClosing = true;
        this.#waitFor(body.close());
        return;
      }
      if (body.error !== null) throw body.error;
      bytes = new Uint8Array(0);
    } else {
      bytes = body.take();
    }
    this.#decoder?.close();
    this.#decoder = null;
    this.#response = new ReceivedResponse(
      responseUrl(this.#url),
      this.#parser.head!,
      bytes,
    );
    this.#body = null;
    this.#bodyStream?.release(
      this.#conn.closed ? Infinity : this.#conn[kUnwritten](),
    );
    this.#state = "done";
    this.#timings.end = loopNow();
    this.#tap?.end(true, null);
  }

  /**
   * Ends the request with `error`; `given` when it is a caller's reason
   * (`close(reason)`): taken as it is, never read as the server's close of a
   * kept conn (a `ConnectionReset` passed on from elsewhere is not this
   * conn's), so neither replayed nor reworded.
   */
  #fail(error: unknown, given = false): void {
    // Failed already (closed from a callback the failing step ran): that stands.
    if (this.#failed) return;
    if (
      !given && this.#sendError !== null &&
      Number.isNaN(this.#timings.firstByte) &&
      ((error instanceof HttpParseError && error.code === "empty-response") ||
        error instanceof Deno.errors.ConnectionReset)
    ) {
      // The conn ended with no answer after all: the write's failure says
      // what happened (a timeout or a close() says what it says).
      error = this.#sendError;
    }
    this.#sendError = null;
    // The server closed the kept conn this request went out on as it did.
    const stale = !given && this.#reusedConn && this.#isStale(error);
    if (stale && this.#mayReplay) {
      // The server closed an idle keep-alive conn as we reused it: nothing of the
      // response came, so the request never reached the application. Try once more.
      this.#mayReplay = this.#reusedConn = false;
      this.#tap?.end(false, error);
      this.#conn.close();
      this.#conn = this.#connect();
      this.#state = "connecting";
      this.#timings.connected = NaN;
      this.#timings.sent = NaN;
      this.#out = this.#request;
      this.#outSent = 0;
      this.#fixedBodyQueued = false;
      this.#parser = this.#newParser();
      return;
    }
    // Not resendable, it fails on it: the server closes kept conns unseen.
    if (stale) this.#metClosedConn = true;
    if (
      !given && this.#reusedConn && !this.#mayReplay &&
      ((error instanceof HttpParseError && error.code === "empty-response") ||
        (stale && error instanceof Error && !(error instanceof HttpParseError)))
    ) {
      // Most likely the server's idle timer, not a broken server: say so,
      // whether the close came as a FIN (empty-response) or as a reset.
      error = onKeptConn(error);
    }
    this.#state = "failed";
    this.#failed = true;
    this.#error = error;
    this.#waiting = null;
    this.#timings.end = loopNow();
    this.#tap?.end(false, error);
    const body = this.#body;
    this.#body = null;
    clearTimeout(this.#turn);
    // A decoder holds native state that Deno frees only on close().
    this.#decoder?.close();
    this.#decoder = null;
    // Unsent request bytes are of no use now (a peer that stopped reading
    // would otherwise hold the socket for the whole linger time).
    this.#conn[kCloseNow]();
    if (body instanceof SinkBody) body.abort(error);
    else if (
      this.#sink !== undefined && !this.#sink.locked &&
      this.#divert === undefined
    ) {
      this.#sink.abort(error).catch(noop);
    }
    this.#bodyStream?.cancel(error);
  }

  #isStale(error: unknown): boolean {
    if (this.#parser.started || loopNow() >= this.#totalDeadline) {
      return false;
    }
    // An HttpParseError before any byte is "empty-response": the peer closed.
    return STALE_CONN_ERRORS.some((type) => error instanceof type);
  }
}

/**
 * A client for a URL the crawl parsed already: the constructor takes an
 * {@linkcode HttpUrl} as it takes a string, without parsing it again.
 */
export function clientFor(
  url: HttpUrl,
  options: HttpClientOptions,
): HttpClient {
  return new HttpClient(url as unknown as URL, options);
}

/**
 * An {@linkcode HttpResponse} whose `headers` are built on first read: most
 * crawls never look at most responses' headers. `headers` is an own enumerable
 * getter, as in an object literal, but one function shared by every response:
 * a literal's getter is a closure per response, which puts the object in
 * dictionary mode (about 600 bytes and a microsecond each).
 */
class ReceivedResponse implements HttpResponse {
  declare url: string;
  declare status: number;
  declare statusText: string;
  declare headers: Headers;
  declare body: Uint8Array;
  // Where the head's field bytes are, not the head nor even a view of them: a
  // crawl keeps every response it returns, and each object fewer per response
  // is less for the collector to copy and trace.
  readonly #fieldsBuffer: ArrayBufferLike;
  readonly #fieldsOffset: number;
  readonly #fieldsLength: number;
  #headers: Headers | null = null;

  constructor(url: string, head: ResponseHead, body: Uint8Array) {
    this.url = url;
    this.status = head.status;
    this.statusText = head.statusText;
    // The legacy forms define the accessor without a descriptor object to read.
    (this as unknown as LegacyObject).__defineGetter__("headers", headersOf);
    (this as unknown as LegacyObject).__defineSetter__("headers", setHeaders);
    this.body = body;
    const fields = fieldBytes(head);
    this.#fieldsBuffer = fields.buffer;
    this.#fieldsOffset = fields.byteOffset;
    this.#fieldsLength = fieldLength(head);
  }

  static firstField(response: ReceivedResponse, name: string): string | null {
    return fieldValue(
      new Uint8Array(
        response.#fieldsBuffer,
        response.#fieldsOffset,
        response.#fieldsLength,
      ),
      response.#fieldsLength,
      name,
      true,
    );
  }

  static headers(response: ReceivedResponse): Headers {
    const length = response.#fieldsLength;
    return response.#headers ??= toHeaders(
      new Uint8Array(response.#fieldsBuffer, response.#fieldsOffset, length),
      length,
    );
  }
}

interface LegacyObject {
  __defineGetter__(name: string, getter: () => unknown): void;
  __defineSetter__(name: string, setter: (value: never) => void): void;
}

/**
 * The value of the first field named `name` that is not empty, of a response
 * the client received (`headers.get` joins repeated fields with ", "); for any
 * other response, `headers.get(name)`.
 */
export function firstField(
  response: Pick<HttpResponse, "headers">,
  name: string,
): string | null {
  return response instanceof ReceivedResponse
    ? ReceivedResponse.firstField(response, name)
    : response.headers.get(name);
}

/**
 * Where a redirect leads, as `fetchAll` and `HttpClient` follow it: for a 301,
 * 302, 303, 307 or 308 response, its first `Location` field that is not empty
 * (`headers.get` joins repeated ones with ", ", which no URL parser undoes),
 * read as browsers and curl read it: raw UTF-8 bytes as UTF-8, other bytes past
 * ASCII after the host percent-encoded as they came. Also the `Location` of a
 * 300 Multiple Choices, which `fetchAll` returns as it is (as `fetch` does) and
 * curl and wget follow. `null` for any other response. Resolve it against the
 * request's URL. For code that follows redirects itself (`redirect: "manual"`)
 * to put each hop through its own rules. Only a response this module received
 * keeps its fields apart: for any other (a `fetch` Response, plain data),
 * repeated fields come as `headers.get` joins them.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { redirectLocation } from "@seed/selectors";
 *
 * const moved = { status: 301, headers: new Headers({ location: "/new/" }) };
 * assertEquals(new URL(redirectLocation(moved)!, "http://a.test/old").href, "http://a.test/new/");
 * assertEquals(redirectLocation({ status: 304, headers: new Headers() }), null);
 * ```
 *
 * @param response A response: `result.response` of `fetchAll`, or any object
 *   with a `status` and `headers`.
 * @returns The `Location` to go to, or `null`.
 */
export function redirectLocation(
  response: Pick<HttpResponse, "status" | "headers">,
): string | null {
  if (!REDIRECT_STATUSES.has(response.status) && response.status !== 300) {
    return null;
  }
  const location = firstField(response, "location");
  return location === null || location === "" ? null : utf8Location(location);
}

function headersOf(this: ReceivedResponse): Headers {
  return ReceivedResponse.headers(this);
}

/** `headers` is writable, as the type says: an assignment makes it plain data. */
function setHeaders(this: ReceivedResponse, value: Headers): void {
  Object.defineProperty(this, "headers", {
    value,
    writable: true,
    enumerable: true,
    configurable: true,
  });
}

/**
 * Whether a proxy's answer says it closes the conn in the pre-RFC 7230 way
 * (`Proxy-Connection: close`, as HTTP/1.0-era proxies send; curl honours it).
 */
function proxyCloses(parser: ResponseParser): boolean {
  const value = parser.head?.field("proxy-connection");
  return value != null && /(^|,)\s*close\s*(,|$)/i.test(value);
}

/**
 * A failed connect to a proxy, of its own kind (a retry or a caller tells it
 * apart as before), saying that it was the proxy that could not be reached:
 * the bare message ("Connection refused") reads as the origin's.
 */
function viaProxy(error: Error, authority: string): Error {
  // A failed lookup named its host already (`Cannot connect to "proxy":
  // ...`, see connectError): said once, as the proxy's.
  const cause = error.cause;
  if (
    error.message.startsWith('Cannot connect to "') && cause instanceof Error
  ) {
    error = cause;
  }
  return prefixed(error, `Cannot connect to proxy ${authority}`);
}

/**
 * A failed connect to `target` (an origin's `host:port`, or a Unix socket), of
 * its own kind, saying where it went; one that says so already (a failed
 * lookup names its host), and this machine out of descriptors, which is not
 * about the target, keep their words.
 */
function toTarget(error: unknown, target: string): unknown {
  if (
    !(error instanceof Error) ||
    error.message.startsWith("Cannot connect to ") ||
    isShortage(error)
  ) return error;
  return prefixed(error, `Cannot connect to ${target}`);
}

/** What {@linkcode onKeptConn} adds to an error's message. */
const KEPT_CONN_NOTE =
  ", on a kept conn reused for it: the server may have closed it as the request went out, and this request is not sent again (it is not idempotent, or its body was a stream)";

/**
 * `error` (a conn that ended before any response byte) said of a request that
 * went out on a kept conn and is not sent again: of its class, with its `code`.
 */
function onKeptConn(error: Error): Error {
  const message = `${error.message}${KEPT_CONN_NOTE}`;
  return error instanceof HttpParseError
    ? new HttpParseError(error.code, message, error.offset, { cause: error })
    : reworded(error, message);
}

/** `error` again (see {@linkcode reworded}), saying `prefix: ` first. */
function prefixed(error: Error, prefix: string): Error {
  return reworded(error, `${prefix}: ${error.message}`);
}

/**
 * `error` again, of its own kind and `code`, saying `message`, with itself as
 * `cause`; itself when its kind cannot be built so (a constructor that takes
 * other arguments first, as `AggregateError`'s and `HttpParseError`'s do).
 *
 * @internal
 */
export function reworded(error: Error, message: string): Error {
  try {
    const Kind = error.constructor as new (
      message: string,
      options: ErrorOptions,
    ) => Error;
    const wrapped = new Kind(message, { cause: error });
    if (
      !(wrapped instanceof Error) || wrapped.name !== error.name ||
      wrapped.message !== message
    ) return error;
    // The errno ("ECONNREFUSED") that Deno's errors carry.
    const code = (error as { code?: unknown }).code;
    if (code !== undefined) (wrapped as { code?: unknown }).code = code;
    return wrapped;
  } catch {
    return error;
  }
}

/** A proxy's reason for refusing: its status text, and Squid's own field ("ERR_CONNECT_FAIL 111"). */
function proxyReason(head: ResponseHead): string {
  const why = head.field("x-squid-error");
  return why === null ? head.statusText : `${head.statusText} (${why})`;
}

/**
 * Reads a byte-count limit: a non-negative integer, or `Infinity` for none.
 * A fraction of a byte is refused, not rounded: it is a caller's mistake.
 */
export function byteLimit(
  name: string,
  value: number | undefined,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== "number" ||
    !(Number.isInteger(value) && value >= 0 || value === Infinity)
  ) {
    throw new RangeError(
      `Cannot fetch: ${name} must be a non-negative integer or Infinity, received ${
        shown(value)
      }`,
    );
  }
  return value;
}

/**
 * The options argument: `null` reads as none, as `fetch()`'s `init` does.
 *
 * @throws {TypeError} For anything else that is not an object.
 */
export function optionsObject<T extends object>(options: T | null): T {
  if (options === null) return {} as T;
  if (typeof options !== "object") {
    throw new TypeError(
      `Cannot fetch: options must be an object, received ${typeof options}`,
    );
  }
  return options;
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
      `Cannot fetch: ${name} must be a non-negative number, received ${
        shown(value)
      }`,
    );
  }
  return value;
}

{
  // What `_specimens.ts` keeps of this module: a client that sent its request
  // on a conn that never answers, closed, a parser and a response. (Their
  // request and field bytes keep the first 128 KiB slab of `_slab.ts` alive.)
  const client = new HttpClient("http://specimen.invalid/", {
    conn: specimenConn(),
  });
  client.close();
  const parser = new ResponseParser();
  parser.receive(
    new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
  );
  keepSpecimens(
    client,
    parser,
    new BodyBuffer(0),
    new ReceivedResponse(
      "http://specimen.invalid/",
      parser.head!,
      new Uint8Array(0),
    ),
  );
}
