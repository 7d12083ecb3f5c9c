/**
 * Request URLs without a `URL` object per request. A crawl's URLs are mostly
 * strings already in the WHATWG serializer's own form, on a few origins: for
 * those, checking the string is much cheaper than parsing it (`new URL` and the
 * getters the request line needs cost about a microsecond per request in a
 * busy loop, a tenth of the whole request). The `URL` object is built only if
 * something asks for it (a redirect, a proxy route, an error message).
 *
 * @module
 */
import { redactInput, redactUrl } from "./_redact.ts";

/** The most origins remembered for the fast path; past it, they are forgotten. */
const MAX_SITES = 1024;

/**
 * One origin (`http://host:port`, as the URL serializer writes it) and what
 * connecting to it and writing its `Host` line need.
 */
export class Site {
  /** The origin, which is also the prefix of every href on it. */
  readonly origin: string;
  readonly https: boolean;
  /** As in `Host` and `url.host`: brackets for IPv6, the port unless default. */
  readonly host: string;
  /** As `Deno.connect` takes it: IPv6 without brackets. */
  readonly hostname: string;
  /** The port to dial, the scheme's default included. */
  readonly port: number;

  constructor(url: URL) {
    this.origin = url.origin;
    this.https = url.protocol === "https:";
    this.host = url.host;
    const hostname = url.hostname;
    this.hostname = hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
    this.port = url.port === "" ? (this.https ? 443 : 80) : Number(url.port);
  }
}

/** Origins seen, by origin: a string starting with one then "/" is on it. */
const sites = new Map<string, Site>();
/** The last origin a fast parse used: crawls often run many URLs of one origin. */
let lastSite: Site | null = null;

/**
 * An http(s) URL, checked, as a request needs it: `href`, its origin's
 * {@linkcode Site} and the request-target; the `URL` object on demand.
 */
export class HttpUrl {
  /** The serialized URL. */
  readonly href: string;
  /** Its origin. */
  readonly site: Site;
  /** Path and query as sent in the request line (no fragment). */
  readonly target: string;
  /** Whether it has userinfo (which becomes `Authorization`, and is redacted). */
  readonly credentials: boolean;
  /**
   * Whether it is the string given, checked to be as the parser writes it and
   * without credentials: its `target` needs no more checks.
   */
  readonly plain: boolean;
  #url: URL | null;

  constructor(
    href: string,
    site: Site,
    target: string,
    credentials: boolean,
    url: URL | null,
  ) {
    this.href = href;
    this.site = site;
    this.target = target;
    this.credentials = credentials;
    this.plain = url === null;
    this.#url = url;
  }

  /** The `URL` object: the caller's own if it gave one, else parsed once now. */
  get url(): URL {
    return this.#url ??= new URL(this.href);
  }
}

/**
 * Parses an http(s) URL; a string on an origin seen before, in the form the
 * WHATWG serializer writes (its `href` is itself), is only checked.
 *
 * @throws {TypeError} If it does not parse, is not http(s), or has port 0.
 */
export function toHttpUrl(input: string | URL | HttpUrl): HttpUrl {
  if (input instanceof HttpUrl) return input;
  if (typeof input === "string") {
    const fast = fastParse(input);
    if (fast !== null) return fast;
  }
  const url = parseHttpUrl(input);
  const origin = url.origin;
  let site = sites.get(origin);
  if (site === undefined) {
    if (sites.size >= MAX_SITES) sites.clear();
    site = new Site(url);
    sites.set(origin, site);
  }
  return new HttpUrl(
    url.href,
    site,
    requestTarget(url),
    url.username !== "" || url.password !== "",
    url,
  );
}

/**
 * `s` as an {@linkcode HttpUrl} if the WHATWG parser would give it back as
 * is, else `null` (the parser decides). Its origin must be one seen before
 * (the parser's own output, which parses to itself), followed by "/" and a
 * target of {@linkcode PLAIN} characters without dot segments: the parser
 * percent-encodes or removes every other character somewhere, and resolves
 * dot segments (`%2e` spelled ones too).
 */
function fastParse(s: string): HttpUrl | null {
  let site = lastSite;
  let at: number;
  if (
    site === null || !s.startsWith(site.origin) ||
    s.charCodeAt(at = site.origin.length) !== SLASH
  ) {
    const from = s.startsWith("http://")
      ? 7
      : s.startsWith("https://")
      ? 8
      : -1;
    if (from < 0) return null;
    at = s.indexOf("/", from);
    if (at < 0) return null;
    const known = sites.get(s.slice(0, at));
    if (known === undefined) return null;
    site = lastSite = known;
  }
  if (!isPlainTarget(s, at)) return null;
  return new HttpUrl(s, site, s.slice(at), false, null);
}

const SLASH = 0x2f;
const DOT = 0x2e;
const QUESTION = 0x3f;
const HASH = 0x23;
const PERCENT = 0x25;

/**
 * Characters the WHATWG parser leaves as they are in an http(s) path and
 * query: unreserved, sub-delims but "'", ":", "@", "/", "?" and "%". (It
 * leaves a few more in place, such as "[" or "|"; those go the long way.)
 */
const PLAIN = new Uint8Array(128);
for (
  const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" +
    "-._~!$&()*+,;=:@/?%"
) PLAIN[c.charCodeAt(0)] = 1;

/** Whether `s[at:]`, which starts with "/", is a target the parser keeps as is. */
function isPlainTarget(s: string, at: number): boolean {
  const n = s.length;
  let i = at;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || PLAIN[c] === 0) return false;
    if (c === QUESTION) break;
    if (c === SLASH) {
      if (isDotSegment(s, i + 1)) return false;
    } else if (c === PERCENT) {
      // "%2e" is a dot in a dot segment; any other escape is kept as written.
      if (
        s.charCodeAt(i + 1) === 0x32 && (s.charCodeAt(i + 2) | 0x20) === 0x65
      ) {
        return false;
      }
    }
  }
  // An empty query: the parser keeps "?" in href but drops it from `search`.
  if (i === n - 1) return false;
  for (i++; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || PLAIN[c] === 0) return false;
  }
  return true;
}

/** Whether the path segment at `s[i:]` is "." or "..". */
function isDotSegment(s: string, i: number): boolean {
  if (s.charCodeAt(i) !== DOT) return false;
  if (s.charCodeAt(i + 1) === DOT) i++;
  const next = s.charCodeAt(i + 1);
  return Number.isNaN(next) || next === SLASH || next === QUESTION;
}

/**
 * The request-target of `url` in origin-form: its path and query, and the "?"
 * of an empty query, which `search` leaves out but the URL keeps (fetch and
 * curl send it: to a server `/x?` and `/x` may differ).
 */
export function requestTarget(url: URL): string {
  const search = url.search;
  if (search === "") {
    // Optional reads: a URL-like object that is not one may lack them (it
    // fails the request line's check then).
    const href: string = url.href ?? "";
    const hash: string = url.hash ?? "";
    let end = href.length - hash.length;
    // An empty fragment is no `hash`, but its "#" is in `href`.
    if (hash === "" && href.charCodeAt(end - 1) === HASH) end--;
    if (href.charCodeAt(end - 1) === QUESTION) return url.pathname + "?";
  }
  return url.pathname + search;
}

/**
 * The URL as a response shows it, as `fetch`'s `Response.url` does: without
 * its fragment. Credentials stay (as in Python requests' `response.url`): it is
 * the URL that answered, against which the page's links resolve.
 */
export function responseUrl(url: HttpUrl): string {
  if (url.plain) return url.href;
  // The first "#" starts the fragment (an empty one too, which has no `hash`).
  const cut = url.href.indexOf("#");
  return cut < 0 ? url.href : url.href.slice(0, cut);
}

/**
 * Parses an http(s) URL with the WHATWG parser (which strips or percent-encodes
 * control characters, so none can reach the request line). Error messages never
 * show a password (`***` instead).
 *
 * @throws {TypeError} If it does not parse, is not http(s), or has port 0.
 */
export function parseHttpUrl(input: string | URL): URL {
  let url: URL;
  try {
    // A URL object is already parsed; parsing its href again costs a microsecond per request.
    url = input instanceof URL ? input : new URL(input);
  } catch {
    // Not the parser's error as the cause: its message quotes the input,
    // password and all, and inspecting the error prints the cause.
    throw new TypeError(`Cannot fetch: invalid URL "${redactInput(input)}"`);
  }
  const href = url.href;
  // The scheme is href's prefix: no getter, no string per request.
  if (!href.startsWith("http:") && !href.startsWith("https:")) {
    throw new TypeError(
      `Cannot fetch: unsupported scheme "${url.protocol}" in "${
        redactUrl(url, url)
      }", expected http: or https:`,
    );
  }
  // `Number("0") || 80` once dialed port 80 for it; port 0 is no server's port.
  if (hasPortZero(href)) {
    throw new TypeError(
      `Cannot fetch: port 0 in "${
        redactUrl(url, url)
      }" is not a port to connect to`,
    );
  }
  return url;
}

/**
 * Whether a serialized http(s) URL's port is 0, read from `href` (the `port`
 * getter builds a string per call): the authority runs from "//" to the path's
 * first "/", and the URL parser writes a port as digits without leading zeros
 * right before it, after a ":" that neither a host nor (once an "@" ends it)
 * userinfo puts there.
 */
function hasPortZero(href: string): boolean {
  const slash = href.indexOf("/", href.indexOf("//") + 2);
  return slash > 1 && href.charCodeAt(slash - 1) === 48 &&
    href.charCodeAt(slash - 2) === 58;
}
