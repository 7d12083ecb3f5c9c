/**
 * The redirect policy, pure: from a response and the request that got it, the
 * next request to send, or why there is none. Like undici's
 * `lib/handler/redirect-handler.js`, each rule cites the spec it follows.
 *
 * @module
 */

/** One hop's request, as far as redirects change it. */
export interface HopRequest {
  url: URL;
  method: string;
  /** The caller's header fields for this hop (never mutated here). */
  headers: Headers;
  /** The request content; `null` for none. */
  body: unknown;
}

/** Why {@linkcode nextHop} does not go on. */
export type StopReason =
  /** Not a redirect status, or no `Location`: the response is the answer. */
  | "not-redirect"
  /** A `Location` that does not resolve to an http(s) URL. */
  | "unusable-location"
  /** `maxRedirects` hops were followed already. */
  | "too-many-redirects"
  /** A 307/308 would need a body that cannot be sent again (a stream). */
  | "body-not-replayable";

/** What {@linkcode nextHop} decides. */
export type NextHop =
  | { request: HopRequest; stop: null; location: string }
  | { request: null; stop: StopReason; location: string | null };

/** At most this many redirects per URL, as in fetch (https://fetch.spec.whatwg.org/#http-redirect-fetch, step 5). */
export const MAX_REDIRECTS = 20;

/** Statuses that redirect with a `Location` (RFC 9110 section 15.4). */
export const REDIRECT_STATUSES: ReadonlySet<number> = new Set([
  301,
  302,
  303,
  307,
  308,
]);

/**
 * Fields describing the request content, dropped when the content is
 * (https://fetch.spec.whatwg.org/#http-redirect-fetch, step 12).
 */
const BODY_HEADERS = [
  "content-encoding",
  "content-language",
  "content-location",
  "content-type",
  "content-length",
  "transfer-encoding",
];

/**
 * Fields that must not reach another origin: credentials
 * (https://fetch.spec.whatwg.org/#http-redirect-fetch, step 13, and curl's
 * `--location` without `--location-trusted`), and a caller-set `Host`, which
 * names the origin it was meant for (curl drops it too).
 */
const ORIGIN_HEADERS = [
  "authorization",
  "cookie",
  "proxy-authorization",
  "host",
];

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A `Location` as a browser and curl read it: field values reach `Headers` one
 * byte a character, so raw UTF-8 (`/café` sent unescaped, as many servers do)
 * would be percent-encoded byte for byte as two Latin-1 characters each
 * (`/caf%C3%83%C2%A9`). Bytes that are valid UTF-8 are read as UTF-8; in any
 * other value each byte past ASCII after the host is percent-encoded as it
 * came (curl's `/p%E4`, where the URL parser would send a Latin-1 `ä` as
 * UTF-8's `%C3%A4`).
 */
export function utf8Location(location: string): string {
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(location)) return location;
  try {
    return utf8.decode(Uint8Array.from(location, (c) => c.charCodeAt(0)));
  } catch {
    // Not in a host, which the URL parser maps to its IDN form (as before).
    const authority = /^(?:[a-z][a-z\d+.-]*:)?\/\/[^/?#]*/i.exec(location)?.[0]
      .length ?? 0;
    return location.slice(0, authority) +
      location.slice(authority).replace(/[\x80-\xff]/g, percentByte);
  }
}

function percentByte(char: string): string {
  return `%${char.charCodeAt(0).toString(16).toUpperCase()}`;
}

/**
 * Whether a response with `status` and `location` is a redirect at all (to a
 * URL or not): one that a crawl with `redirect: "error"` fails on.
 */
export function redirects(status: number, location: string | null): boolean {
  return REDIRECT_STATUSES.has(status) && location !== null;
}

/**
 * Whether a response with `status` and `location` redirects to a URL a crawl
 * that follows redirects goes on to (an http(s) URL, resolved against `base`):
 * its body is then thrown away. Not for the hop limit, past which the URL
 * fails all the same.
 */
export function redirectsOnward(
  status: number,
  location: string | null,
  base: URL,
): boolean {
  if (!REDIRECT_STATUSES.has(status) || location === null) return false;
  try {
    const { protocol } = new URL(utf8Location(location), base);
    return protocol === "http:" || protocol === "https:";
  } catch {
    return false;
  }
}

/**
 * Decides the hop after `response`.
 *
 * @param response The status of the response to `request`, and its first
 *   `Location` field (fetch and curl follow the first of two).
 * @param request The request that got it.
 * @param hop How many redirects were followed before this response.
 * @param maxRedirects The most redirects to follow.
 */
export function nextHop(
  response: { status: number; location: string | null },
  request: HopRequest,
  hop: number,
  maxRedirects: number = MAX_REDIRECTS,
): NextHop {
  const location = response.location;
  if (!REDIRECT_STATUSES.has(response.status) || location === null) {
    return { request: null, stop: "not-redirect", location };
  }
  if (hop >= maxRedirects) {
    return { request: null, stop: "too-many-redirects", location };
  }
  // https://www.rfc-editor.org/rfc/rfc9110#section-10.2.2
  // Location is a URI reference, resolved against the request's URL.
  let url: URL;
  try {
    url = new URL(utf8Location(location), request.url);
  } catch {
    return { request: null, stop: "unusable-location", location };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return { request: null, stop: "unusable-location", location };
  }
  // https://www.rfc-editor.org/rfc/rfc9110#section-10.2.2
  // A fragment-less Location inherits the request's fragment; it is never sent.
  if (url.hash === "" && request.url.hash !== "") url.hash = request.url.hash;

  let { method, headers, body } = request;
  const status = response.status;
  // https://www.rfc-editor.org/rfc/rfc9110#section-15.4.4
  // 303 See Other: retrieve the other resource with GET (HEAD stays HEAD).
  // https://www.rfc-editor.org/rfc/rfc9110#section-15.4.2 (301) and
  // https://www.rfc-editor.org/rfc/rfc9110#section-15.4.3 (302): "for historical
  // reasons, a user agent MAY change the request method from POST to GET";
  // fetch does, and so does every browser.
  if (
    (status === 303 && method !== "HEAD") ||
    ((status === 301 || status === 302) && method === "POST")
  ) {
    method = "GET";
    body = null;
    headers = without(headers, BODY_HEADERS);
  } else if (body instanceof ReadableStream) {
    // https://www.rfc-editor.org/rfc/rfc9110#section-15.4.8 (307) and
    // https://www.rfc-editor.org/rfc/rfc9110#section-15.4.9 (308) keep the method
    // and content; a stream was consumed by the first hop
    // (https://fetch.spec.whatwg.org/#http-redirect-fetch, step 11).
    return { request: null, stop: "body-not-replayable", location };
  }
  if (url.origin !== request.url.origin) {
    headers = without(headers, ORIGIN_HEADERS);
    // https://fetch.spec.whatwg.org/#http-redirect-fetch, step 13 drops
    // Authorization; URL credentials are the same secret in another form.
    url.username = "";
    url.password = "";
  }
  return { request: { url, method, headers, body }, stop: null, location };
}

/** A copy of `headers` without `names`, or `headers` itself if none is there. */
function without(headers: Headers, names: string[]): Headers {
  let copy: Headers | null = null;
  for (const name of names) {
    if (!headers.has(name)) continue;
    copy ??= new Headers(headers);
    copy.delete(name);
  }
  return copy ?? headers;
}
