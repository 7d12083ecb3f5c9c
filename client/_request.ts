/**
 * The sans-IO HTTP/1.1 request writer: validates what the caller gave and turns it
 * into the exact bytes to send. Nothing here does I/O.
 *
 * @module
 */

import { allocate } from "../selector/_slab.ts";
import { ACCEPT_ENCODING } from "./_decode.ts";
import { unusableStreamError } from "./_body.ts";
import type { ProxyConfig } from "./_proxy.ts";
import { type HttpUrl, requestTarget, type Site } from "./_http_url.ts";

/** The `User-Agent` sent when neither the caller's headers nor options set one. */
export const DEFAULT_USER_AGENT = "selectors-deno/0.1";

/** The `Accept-Encoding` sent unless the caller set one: what the client decodes. */
export const DEFAULT_ACCEPT_ENCODING = ACCEPT_ENCODING;

/** What {@linkcode encodeRequest} needs to write one request. */
export interface EncodeRequestInit {
  /** An RFC 9110 token; checked and normalized by {@linkcode validateMethod}. */
  method: string;
  /** An `http:` or `https:` URL; its fragment and credentials are never sent. */
  url: URL;
  /**
   * The caller's header fields. A plain `HeadersInit` is checked by
   * {@linkcode normalizeHeaders} first. `Host`, `User-Agent`, `Accept`,
   * `Accept-Encoding` and `Connection` given here replace the defaults;
   * `Content-Length` and `Transfer-Encoding` are dropped, as framing is the
   * writer's job.
   *
   * @default {new Headers()}
   */
  headers?: HeadersInit;
  /**
   * The request content, checked by {@linkcode validateBody}: bytes are sent with
   * a `Content-Length`, a stream with the caller's `Content-Length` or else
   * `Transfer-Encoding: chunked`. Without it, `POST`, `PUT` and `PATCH` are sent
   * with `Content-Length: 0` (RFC 9110 section 8.6).
   *
   * @default {null}
   */
  body?: string | Uint8Array | ArrayBuffer | ReadableStream<Uint8Array> | null;
  /**
   * Whether the connection may be reused after the response. When `false` the
   * request carries `Connection: close` whatever the caller's headers say; when
   * `true` nothing is added, as persistence is HTTP/1.1's default.
   */
  keepAlive: boolean;
  /**
   * Whether the response will be decoded. It does not change the request: the
   * default `Accept-Encoding` is sent either way, so that `decompress: false`
   * hands back the bytes exactly as a server sends them to this client.
   *
   * @default {true}
   */
  decompress?: boolean;
  /**
   * The `User-Agent` to send unless the caller's headers have one.
   *
   * @default {DEFAULT_USER_AGENT}
   */
  userAgent?: string;
}

const encoder = new TextEncoder();
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/**
 * The controls RFC 9110's field-value leaves out (all but HTAB): CR, LF and NUL,
 * which would split the head, and the others, which fetch and undici refuse too
 * and which the CONNECT writer here refuses already.
 */
// deno-lint-ignore no-control-regex -- the controls are what it matches
const CONTROL = /[\0-\x08\n-\x1f\x7f]/;
/** What may appear in a request-target or Host as sent: visible ASCII only. */
const VISIBLE_ASCII = /^[\x21-\x7e]*$/;

/** Methods the Fetch standard upper-cases, so `"head"` means `HEAD` here too. */
const NORMALIZED_METHODS = new Set([
  "DELETE",
  "GET",
  "HEAD",
  "OPTIONS",
  "POST",
  "PUT",
]);

/** Methods whose requests define content, so an empty one is still announced. */
const CONTENT_METHODS = new Set(["POST", "PUT", "PATCH"]);

/** A `close` among a `Connection` field's comma-separated options. */
const CLOSE_TOKEN = /(?:^|,)[ \t]*close[ \t]*(?:,|$)/i;

/** Header fields the writer itself places first (or computes). */
const MANAGED = new Set([
  "host",
  "user-agent",
  "accept",
  "accept-encoding",
  "connection",
  "content-length",
  "transfer-encoding",
  // To the proxy only: on the request line's heels for one in absolute-form,
  // in the CONNECT for a tunnel, never to an origin.
  "proxy-authorization",
]);

function describe(value: unknown): string {
  if (typeof value !== "string") return String(value);
  // JSON leaves DEL and the C1 controls as they are: escape them too.
  return JSON.stringify(value).replace(
    /[\x7f-\x9f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * Checks a request method and returns it as it goes on the wire: an RFC 9110
 * token, with the methods Fetch normalizes (`delete`, `get`, `head`, `options`,
 * `post`, `put`) upper-cased, as `fetch` does.
 *
 * @example
 * ```ts ignore
 * validateMethod("get"); // "GET"
 * validateMethod("GET\r\nX: y"); // throws TypeError
 * ```
 *
 * @param method The method the caller asked for.
 * @returns The method to send.
 * @throws {TypeError} If `method` is not a token (so CR, LF, NUL, spaces and
 *   the empty string are refused), or is `CONNECT`, which needs a tunnel this
 *   client does not make.
 */
export function validateMethod(method: string): string {
  if (typeof method !== "string" || !TOKEN.test(method)) {
    throw new TypeError(
      `Cannot build request: invalid method ${describe(method)}`,
    );
  }
  const upper = method.toUpperCase();
  if (upper === "CONNECT") {
    throw new TypeError(
      `Cannot build request: unsupported method ${describe(method)}`,
    );
  }
  return NORMALIZED_METHODS.has(upper) ? upper : method;
}

function checkField(name: unknown, value: unknown): void {
  if (typeof name !== "string" || !TOKEN.test(name)) {
    throw new TypeError(
      `Cannot build request: invalid header name ${describe(name)}`,
    );
  }
  if (typeof value === "symbol") {
    // String() would send "Symbol(...)"; `Headers` refuses one too.
    throw new TypeError(
      `Cannot build request: the value of header "${name}" is a symbol`,
    );
  }
  // Checked before `Headers` sees the value: it would silently strip a CR or LF
  // at either end instead of refusing it.
  const text = String(value);
  if (CONTROL.test(text)) {
    throw new TypeError(
      `Cannot build request: ${
        /[\r\n\0]/.test(text) ? "CR, LF or NUL" : "a control character"
      } in the value of header "${name}": ${describe(text)}`,
    );
  }
}

/**
 * Turns the caller's `HeadersInit` into a fresh `Headers`, refusing anything that
 * could not be sent as is: a name that is not an RFC 9110 token, a value holding
 * a control character other than HTAB (CR, LF or NUL even at either end, which
 * `Headers` would otherwise strip) or a character above U+00FF. The caller's own `Headers` object is never modified.
 *
 * @example
 * ```ts ignore
 * normalizeHeaders({ "X-Id": "1" }).get("x-id"); // "1"
 * normalizeHeaders({ "X-Id": "1\r\nX-Evil: 1" }); // throws TypeError
 * ```
 *
 * @param init Headers as a `Headers`, a list of pairs or a record; `undefined`
 *   for none.
 * @returns A new `Headers` holding them.
 * @throws {TypeError} If a header cannot be sent as given.
 */
export function normalizeHeaders(init: HeadersInit | undefined): Headers {
  const headers = new Headers();
  for (const [name, value] of fieldList(init)) headers.append(name, value);
  return headers;
}

/**
 * Header fields as `[lower-case name, value]` pairs, in the caller's order, but
 * one `Cookie` field: its pairs joined by "; " (RFC 6265 section 5.4), not the
 * ", " of `Headers`, which a server reads as part of the value.
 */
type FieldList = Array<[string, string]>;

/**
 * The caller's headers as a checked list of pairs: linear in their number, where
 * iterating a Deno `Headers` with `for..of` costs quadratic time (4,000 fields took
 * 5.7 s). A `Headers` is read with `forEach`, which does not.
 */
function fieldList(init: HeadersInit | undefined): FieldList {
  const fields: FieldList = [];
  if (init === undefined || init === null) return fields;
  let cookie: [string, string] | null = null;
  const add = (field: [string, string]) => {
    if (field[0] !== "cookie") fields.push(field);
    else if (cookie === null) fields.push(cookie = field);
    else cookie[1] += `; ${field[1]}`;
  };
  try {
    if (init instanceof Headers) {
      // Normalized by `Headers`, which cannot hold CR, LF or NUL, but keeps
      // the other controls.
      init.forEach((value, name) => {
        checkField(name, value);
        fields.push([name, value]);
      });
    } else if (typeof init === "object" && Symbol.iterator in init) {
      for (const pair of init as Iterable<Iterable<string>>) {
        const entry = typeof pair === "string" ? [pair] : [...pair];
        if (entry.length !== 2) {
          throw new TypeError(
            `Cannot build request: header entry must be a [name, value] pair, received ${entry.length} items`,
          );
        }
        add(checkedField(entry[0], entry[1]));
      }
    } else if (typeof init === "object") {
      for (const [name, value] of Object.entries(init)) {
        add(checkedField(name, value));
      }
    } else {
      throw new TypeError(
        `Cannot build request: headers must be a Headers, an array or a record, received ${typeof init}`,
      );
    }
  } catch (e) {
    if (e instanceof TypeError && e.message.startsWith("Cannot build")) throw e;
    throw new TypeError(
      `Cannot build request: invalid headers: ${
        e instanceof Error ? e.message : String(e)
      }`,
      { cause: e },
    );
  }
  return fields;
}

/** A checked field as `Headers` would keep it: name lower-cased, value trimmed. */
function checkedField(name: unknown, value: unknown): [string, string] {
  checkField(name, value);
  const text = String(value).replace(/^[\t ]+|[\t ]+$/g, "");
  // deno-lint-ignore no-control-regex -- every latin1 character is allowed
  if (/[^\u0000-\u00ff]/.test(text)) {
    throw new TypeError(
      `Cannot build request: invalid headers: the value of header "${name}" has a character above U+00FF`,
    );
  }
  return [(name as string).toLowerCase(), text];
}

/**
 * The caller's `Proxy-Authorization` in `options`: its shared writer's, else
 * read from its headers; `null` for none, or for headers that do not pass
 * (the request fails on them once it is built).
 */
export function callerProxyAuthorization(
  options: {
    headers?: HeadersInit | undefined;
    [kRequestWriter]?: RequestWriter;
  },
): string | null {
  const writer = options[kRequestWriter];
  if (writer !== undefined) return writer.proxyAuthorization;
  try {
    return fieldValue(fieldList(options.headers), "proxy-authorization");
  } catch {
    return null;
  }
}

/** The value of `name` (lower-case) in `fields`, duplicates joined as `Headers` joins them. */
function fieldValue(fields: FieldList, name: string): string | null {
  let value: string | null = null;
  for (const field of fields) {
    if (field[0] === name) {
      value = value === null ? field[1] : `${value}, ${field[1]}`;
    }
  }
  return value;
}

/**
 * Checks a request body against what API.md 0.2 accepts and returns it as it will
 * be sent: a string as its UTF-8 bytes, an `ArrayBuffer` or `Uint8Array` as a copy
 * (so the caller may reuse it at once), a `ReadableStream` as is.
 *
 * @example
 * ```ts ignore
 * validateBody("hi", "POST"); // Uint8Array [104, 105]
 * validateBody(new DataView(new ArrayBuffer(1)), "POST"); // throws TypeError
 * validateBody("x", "GET"); // throws TypeError
 * ```
 *
 * @param body The caller's body; `undefined` and `null` mean none.
 * @param method The request method (compared without regard to case).
 * @returns The bytes to send, the stream to read them from, or `null`.
 * @throws {TypeError} For any other type (`DataView`, `Blob`, other typed arrays,
 *   plain arrays, objects, numbers), a locked or disturbed stream, or any body with `GET` or
 *   `HEAD`, as `fetch` does.
 */
export function validateBody(
  body: unknown,
  method: string,
): Uint8Array | ReadableStream<Uint8Array> | null {
  if (body === undefined || body === null) return null;
  let out: Uint8Array | ReadableStream<Uint8Array>;
  if (typeof body === "string") {
    out = encoder.encode(body);
  } else if (body instanceof Uint8Array) {
    // A copy this function made already (a crawl-wide body met again per
    // spec and per request) is not copied again: a large upload was copied
    // three times on the loop before it went out.
    out = validated.has(body) ? body : body.slice();
  } else if (body instanceof ArrayBuffer) {
    out = new Uint8Array(body.slice(0));
  } else if (body instanceof ReadableStream) {
    const unusable = unusableStreamError(body as ReadableStream<Uint8Array>);
    if (unusable !== null) throw unusable;
    out = body as ReadableStream<Uint8Array>;
  } else {
    throw new TypeError(`Cannot build request: ${bodyProblem(body, method)}`);
  }
  const problem = bodyProblem(out, method);
  if (problem !== null) throw new TypeError(`Cannot build request: ${problem}`);
  if (out instanceof Uint8Array) validated.add(out);
  return out;
}

/**
 * Why `body` cannot go with `method` (of a type no request body has, or any
 * body with GET or HEAD), or `null`; copies nothing.
 */
export function bodyProblem(body: unknown, method: unknown): string | null {
  if (body === undefined || body === null) return null;
  if (
    typeof body !== "string" && !(body instanceof Uint8Array) &&
    !(body instanceof ArrayBuffer) && !(body instanceof ReadableStream)
  ) {
    return `body must be a string, Uint8Array, ArrayBuffer or ReadableStream, received ${
      kindOf(body)
    }`;
  }
  const upper = String(method).toUpperCase();
  // RFC 9110 section 9.3.8: a client must not send content with TRACE.
  if (upper === "GET" || upper === "HEAD" || upper === "TRACE") {
    return `a ${upper} request cannot have a body`;
  }
  return null;
}

/** Bodies {@linkcode validateBody} made: copies only this module holds. */
const validated = new WeakSet<Uint8Array>();

function kindOf(value: unknown): string {
  if (typeof value !== "object") return typeof value;
  if (Array.isArray(value)) return "an array";
  const name = Object.getPrototypeOf(value)?.constructor?.name;
  if (typeof name === "string" && name !== "") return name;
  // A generator's constructor has no name: its tag says "AsyncGenerator".
  const tag = Object.prototype.toString.call(value).slice(8, -1);
  return tag === "Object" ? "an object" : tag;
}

function encodeLatin1(head: string, body: Uint8Array | null): Uint8Array {
  const bytes = new Uint8Array(head.length + (body?.length ?? 0));
  for (let i = 0; i < head.length; i++) {
    const c = head.charCodeAt(i);
    if (c > 0xff) {
      throw new TypeError(
        `Cannot build request: character U+${
          c.toString(16).toUpperCase().padStart(4, "0")
        } cannot be sent in a header`,
      );
    }
    bytes[i] = c;
  }
  if (body) bytes.set(body, head.length);
  return bytes;
}

/**
 * `Authorization: Basic` for a URL's userinfo, as curl, wget and Python's requests
 * send it: the percent-decoded `user:password` bytes in base64.
 */
function basicAuthorization(url: URL): string | null {
  // No "@" anywhere: no userinfo, and no getter strings per request. (A
  // URL-like object without href goes the long way.)
  const href = url.href;
  if (typeof href === "string" && !href.includes("@")) return null;
  const user = url.username, password = url.password;
  if (!user && !password) return null;
  const bytes = percentDecode(`${user}:${password}`);
  let latin1 = "";
  for (const b of bytes) latin1 += String.fromCharCode(b);
  return `Basic ${btoa(latin1)}`;
}

/** `%XX` to its byte, anything else as UTF-8 (a malformed escape stays as written). */
function percentDecode(text: string): Uint8Array {
  const raw = encoder.encode(text);
  const out = new Uint8Array(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const hex = raw[i] === 0x25 && i + 2 < raw.length
      ? String.fromCharCode(raw[i + 1]!, raw[i + 2]!)
      : "";
    if (/^[0-9a-fA-F]{2}$/.test(hex)) {
      out[n++] = parseInt(hex, 16);
      i += 2;
    } else {
      out[n++] = raw[i]!;
    }
  }
  return out.subarray(0, n);
}

/**
 * Writes one HTTP/1.1 request in origin form:
 * `METHOD /path?query HTTP/1.1`, then `Host` (without a default port), the
 * default `User-Agent`, `Accept: *\/*` and `Accept-Encoding: gzip, deflate, br, zstd`
 * unless the caller set them, `Connection: close` when the connection is not to
 * be kept, the caller's other fields (names lower-cased, as `Headers` keeps
 * them), `Content-Length` when there is content, and the content itself.
 *
 * @example
 * ```ts ignore
 * const bytes = encodeRequest({
 *   method: "GET",
 *   url: new URL("http://example.com:8080/a?b#c"),
 *   keepAlive: false,
 * });
 * // "GET /a?b HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: ...\r\n..."
 * ```
 *
 * @param init The request to write.
 * @returns The bytes to send, head and content in one array.
 * @throws {TypeError} If the method, a header or the URL cannot be sent as
 *   given (CR, LF or NUL anywhere, a non-token name, a scheme other than
 *   `http:` and `https:`); nothing is written then.
 */
export function encodeRequest(init: EncodeRequestInit): Uint8Array {
  const writer = new RequestWriter(init);
  const head = writer.encode(init.url);
  if (writer.body === null) return head;
  const out = new Uint8Array(head.length + writer.body.length);
  out.set(head);
  out.set(writer.body, head.length);
  return out;
}

/**
 * A body longer than this is sent as a piece of its own after the head,
 * rather than copied in with it: a large upload was copied twice more, on
 * the loop, before it went out.
 */
const SEPARATE_BODY = 64 * 1024;

/**
 * An `HttpClient` option key for a ready {@linkcode RequestWriter}: `fetchAll`
 * builds one per crawl instead of one per URL. A symbol keeps it out of the
 * public options.
 */
export const kRequestWriter: unique symbol = Symbol("selectors.requestWriter");
/** The crawl's sink diversion (see `InternalOptions` in `http_client.ts`). */
export const kDivertSink: unique symbol = Symbol("selectors.divertSink");

/**
 * Writes requests that differ only in their URL, as a crawl sends them: the method
 * and the header section after `Host` are checked and encoded once, so each
 * request costs one request line, one `Host` line and one copy.
 *
 * @example
 * ```ts ignore
 * const writer = new RequestWriter({ method: "GET", keepAlive: true });
 * writer.encode(new URL("http://example.com/a")); // "GET /a HTTP/1.1\r\nHost: example.com\r\n..."
 * ```
 */
export class RequestWriter {
  /** The method as sent. */
  readonly method: string;
  /**
   * A streamed body, sent after the head: a writer holding one serves a single
   * request, as the stream can be read only once.
   */
  readonly stream: ReadableStream<Uint8Array> | null;
  /**
   * The bytes `stream` must yield, from the caller's `Content-Length`; `-1` when
   * it is sent chunked (and for no stream).
   */
  readonly streamLength: number;
  /** The `User-Agent` sent: the caller's, else the default (also a `CONNECT`'s). */
  readonly userAgent: string;
  /**
   * Whether the request asks the server to close the conn after it (`keepAlive`
   * off, or the caller's own `Connection: close`): RFC 9112 section 9.6 forbids
   * sending another request on it then, whatever the response says.
   */
  readonly closes: boolean;
  /** The caller's own `Host`, which replaces the URL's. */
  readonly #host: string | null;
  /**
   * The caller's own `Proxy-Authorization`, which a proxy URL's credentials
   * never replace; `null` for none. It goes to the proxy: after the request
   * line in absolute-form, in the `CONNECT` of a tunnel, and never to an
   * origin (through a tunnel, or straight to it).
   */
  readonly proxyAuthorization: string | null;
  /** Whether the caller set `Authorization`, which URL credentials never replace. */
  readonly #authorized: boolean;
  /**
   * A body of over 64 KiB, to send after what {@linkcode RequestWriter.encode}
   * returns; a smaller one is part of it.
   */
  readonly body: Uint8Array | null;
  /** Every byte after the `Host` line: the other fields, the blank line, the content. */
  readonly #tail: Uint8Array;
  /** The origin of the last plain URL written. */
  #site: Site | null = null;
  /** Every byte after the target for `#site`, once it came twice in a row. */
  #afterTarget: Uint8Array | null = null;

  /**
   * Checks and encodes everything but the URL.
   *
   * @param init The request, without its URL.
   * @param checked `fieldList(init.headers)`, when the caller has it already.
   * @throws {TypeError} If the method, a header or the body cannot be sent as given.
   */
  constructor(init: Omit<EncodeRequestInit, "url">, checked?: FieldList) {
    const method = this.method = validateMethod(init.method);
    const headers = checked ?? fieldList(init.headers);
    const body = validateBody(init.body, method);
    this.#host = fieldValue(headers, "host");
    if (this.#host !== null) checkHost(this.#host);
    this.#authorized = fieldValue(headers, "authorization") !== null;
    this.proxyAuthorization = fieldValue(headers, "proxy-authorization");
    this.userAgent = fieldValue(headers, "user-agent") ?? init.userAgent ??
      DEFAULT_USER_AGENT;
    const fields: FieldList = [
      ["User-Agent", this.userAgent],
      ["Accept", fieldValue(headers, "accept") ?? "*/*"],
      [
        "Accept-Encoding",
        fieldValue(headers, "accept-encoding") ??
          // The Fetch standard's rule: a range of a compressed stream is not
          // the range asked for and cannot be decoded alone (Apache's
          // mod_deflate answers a 206 of its gzip output).
          (fieldValue(headers, "range") !== null
            ? "identity"
            : DEFAULT_ACCEPT_ENCODING),
      ],
    ];
    const connection = init.keepAlive
      ? fieldValue(headers, "connection")
      : "close";
    if (connection !== null) fields.push(["Connection", connection]);
    this.closes = connection !== null && CLOSE_TOKEN.test(connection);
    for (const field of headers) {
      if (!MANAGED.has(field[0])) fields.push(field);
    }
    let fixed: Uint8Array | null = null;
    this.stream = null;
    this.streamLength = -1;
    if (body instanceof ReadableStream) {
      this.stream = body;
      const length = fieldValue(headers, "content-length");
      if (length === null) {
        fields.push(["Transfer-Encoding", "chunked"]);
      } else if (/^\d{1,15}$/.test(length)) {
        this.streamLength = Number(length);
        fields.push(["Content-Length", String(this.streamLength)]);
      } else {
        throw new TypeError(
          `Cannot build request: invalid Content-Length ${
            describe(length)
          } for a body stream`,
        );
      }
    } else if (body !== null) {
      fixed = body;
      fields.push(["Content-Length", String(body.length)]);
    } else if (CONTENT_METHODS.has(method)) {
      fields.push(["Content-Length", "0"]);
    }
    let head = "";
    for (const [name, value] of fields) {
      // The caller's fields are checked already, but `userAgent` is not, and a CR
      // or LF must never reach the wire whatever the path.
      checkField(name, value);
      head += `${name}: ${value}\r\n`;
    }
    head += "\r\n";
    this.body = fixed !== null && fixed.length > SEPARATE_BODY ? fixed : null;
    this.#tail = encodeLatin1(head, this.body === null ? fixed : null);
  }

  /**
   * The bytes of the request to `url`: its credentials, if any, go as
   * `Authorization: Basic` unless the caller set `Authorization`; its fragment is
   * never sent.
   *
   * @param url An `http:` or `https:` URL.
   * @param proxy For an `http:` URL sent to a proxy: the request-target is in
   *   absolute-form (RFC 9112 section 3.2.2) and the caller's
   *   `Proxy-Authorization`, else the proxy's credentials, if any, go with it.
   * @returns The request, head and content in one array, but a body of over
   *   64 KiB ({@linkcode RequestWriter.body}), which goes after it.
   * @throws {TypeError} If the URL cannot be sent as given.
   */
  encode(url: URL, proxy: ProxyConfig | null = null): Uint8Array {
    const protocol = url.protocol;
    if (protocol !== "http:" && protocol !== "https:") {
      throw new TypeError(
        `Cannot build request: unsupported URL scheme ${describe(protocol)}`,
      );
    }
    // The WHATWG URL parser percent-encodes controls and spaces, so these only
    // fail for a URL object that is not what it claims to be; refuse anyway, as
    // a CR or LF here would let the URL write headers of its own.
    const target = requestTarget(url);
    if (!target.startsWith("/") || !VISIBLE_ASCII.test(target)) {
      throw new TypeError(
        `Cannot build request: invalid request target ${describe(target)}`,
      );
    }
    const host = this.#hostFor(url.host);
    const authorization = this.#authorized ? null : basicAuthorization(url);
    // Method, target, host and base64 are visible ASCII, so UTF-8 is byte for byte.
    // Request bytes are internal (sent, never handed to a caller), so they may
    // share a slab with other internal buffers.
    // A proxy's credential never goes to an origin: not through a tunnel, nor
    // to a URL that goes direct (a NO_PROXY host under proxy "env").
    const proxyAuthorization = proxy !== null
      ? this.proxyAuthorization ?? proxy.authorization
      : null;
    if (
      proxyAuthorization === null && authorization === null && proxy === null
    ) {
      return this.#write(target, host);
    }
    // The absolute-form carries the URL's host even when the caller set Host.
    if (proxy !== null && host !== url.host) checkHost(url.host);
    let line = proxy === null
      ? `${this.method} ${target} HTTP/1.1\r\nHost: ${host}\r\n`
      : `${this.method} ${protocol}//${url.host}${target} HTTP/1.1\r\nHost: ${host}\r\n`;
    if (authorization !== null) line += `Authorization: ${authorization}\r\n`;
    if (proxyAuthorization) {
      line += `Proxy-Authorization: ${proxyAuthorization}\r\n`;
    }
    const out = allocate(line.length + this.#tail.length);
    out.set(this.#tail, putAscii(out, 0, line));
    return out;
  }

  /**
   * {@linkcode RequestWriter.encode} for an {@linkcode HttpUrl}. A plain one
   * (checked, without credentials) sent straight to its origin needs no more
   * checks of its target, and while its origin repeats, what follows the
   * target (from ` HTTP/1.1` to the content, the same for every URL of the
   * origin) is copied in one piece, built when the origin comes twice in a row:
   * a crawl that takes its origins in turn would otherwise build it per request.
   *
   * @throws {TypeError} If the URL cannot be sent as given.
   */
  encodeUrl(url: HttpUrl, proxy: ProxyConfig | null = null): Uint8Array {
    if (!url.plain || proxy !== null) return this.encode(url.url, proxy);
    const site = url.site;
    const target = url.target;
    if (this.#site !== site) {
      this.#site = site;
      this.#afterTarget = null;
      return this.#write(target, this.#hostFor(site.host));
    }
    let after = this.#afterTarget;
    if (after === null) {
      const line = ` HTTP/1.1\r\nHost: ${this.#hostFor(site.host)}\r\n`;
      after = this.#afterTarget = new Uint8Array(
        line.length + this.#tail.length,
      );
      after.set(this.#tail, putAscii(after, 0, line));
    }
    const method = this.method;
    const out = allocate(method.length + 1 + target.length + after.length);
    let at = putAscii(out, 0, method);
    out[at++] = 32;
    out.set(after, putAscii(out, at, target));
    return out;
  }

  /** The `Host` sent: the caller's own (checked once), else the URL's, checked. */
  #hostFor(urlHost: string): string {
    if (this.#host !== null) return this.#host;
    checkHost(urlHost);
    return urlHost;
  }

  /**
   * The usual request, written piece by piece (no line string built first):
   * method, target, `Host`, then the fields and content after it.
   */
  #write(target: string, host: string): Uint8Array {
    const method = this.method;
    const tail = this.#tail;
    const out = allocate(
      method.length + target.length + host.length + 20 + tail.length,
    );
    let at = putAscii(out, 0, method);
    out[at++] = 32;
    at = putAscii(out, at, target);
    at = putAscii(out, at, " HTTP/1.1\r\nHost: ");
    at = putAscii(out, at, host);
    out[at++] = 13;
    out[at++] = 10;
    out.set(tail, at);
    return out;
  }
}

/**
 * The writer of a request without a body, with what it was built from: the
 * next request on its conn, built from the same, takes it (see
 * {@linkcode buildWriter}).
 */
export interface BuiltWriter {
  readonly writer: RequestWriter;
  /** The fields it was built from; `null` for one with a body, never reused. */
  readonly fields: FieldList | null;
  readonly method: string;
  readonly keepAlive: boolean;
}

/**
 * `new RequestWriter(init)`, or `last`'s writer when `init` has no body and
 * the same method, `keepAlive` and header fields, as a client per request on
 * a kept conn (a crawl driven by hand) builds: ~1.7 µs of a request, with a
 * standalone `ArrayBuffer`, otherwise. A writer of no body holds nothing of
 * one request (a crawl shares one). It throws what the constructor throws.
 */
export function buildWriter(
  init: Omit<EncodeRequestInit, "url">,
  last: BuiltWriter | undefined,
): BuiltWriter {
  const { method, keepAlive } = init;
  let fields: FieldList | null = null;
  if (
    (init.body === undefined || init.body === null) &&
    init.userAgent === undefined
  ) {
    try {
      fields = fieldList(init.headers);
    } catch {
      // The constructor throws it, after a bad method's error if any.
    }
  }
  if (fields === null) {
    return { writer: new RequestWriter(init), fields, method, keepAlive };
  }
  if (
    last !== undefined && last.fields !== null && last.method === method &&
    last.keepAlive === keepAlive && sameFields(last.fields, fields)
  ) return last;
  return { writer: new RequestWriter(init, fields), fields, method, keepAlive };
}

function sameFields(a: FieldList, b: FieldList): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i]![0] !== b[i]![0] || a[i]![1] !== b[i]![1]) return false;
  }
  return true;
}

/**
 * Writes ASCII `text` into `out` at `at`, returning the index after it: a loop
 * beats `encodeInto`'s call into the runtime for a request line's few bytes.
 */
function putAscii(out: Uint8Array, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) out[at++] = text.charCodeAt(i);
  return at;
}

function checkHost(host: string): void {
  if (host === "" || !VISIBLE_ASCII.test(host)) {
    throw new TypeError(`Cannot build request: invalid host ${describe(host)}`);
  }
}
