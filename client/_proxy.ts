/**
 * The sans-IO parts of going through an HTTP proxy: reading a proxy URL, picking
 * the proxy for a URL from the environment the way curl does, and the bytes of a
 * `CONNECT` request. Nothing here does I/O; the client owns the sockets.
 *
 * @module
 */
import { requestTarget } from "./_http_url.ts";

/** A proxy as the client uses it, read by {@linkcode parseProxy}. */
export interface ProxyConfig {
  /** The host to connect to, as `Deno.connect` takes it: IPv6 without brackets. */
  readonly host: string;
  /** The port to connect to (80 when the proxy URL names none). */
  readonly port: number;
  /** `host:port` with IPv6 in brackets: for messages, never holds credentials. */
  readonly authority: string;
  /** `http://host:port`: the proxy's origin, without credentials. */
  readonly origin: string;
  /**
   * Identifies the proxy and its credentials, to key pooled conns: equal keys
   * mean the same proxy with the same credentials. It is the origin, followed
   * for a proxy with credentials by `#` and a 64-bit hash of them, so that two
   * users of one proxy do not share a tunnel (as two random values are equal,
   * one chance in 2^64) while the key itself stays safe to print.
   */
  readonly key: string;
  /**
   * The `Proxy-Authorization` field value (`Basic ...`, RFC 7617, from the
   * percent-decoded user name and password of the proxy URL, UTF-8), or `null`
   * when the URL has no userinfo.
   */
  readonly authorization: string | null;
}

/** The ports `Host` and `CONNECT` fall back to (WHATWG URL "special" schemes). */
const DEFAULT_PORTS: Readonly<Record<string, number>> = {
  "http:": 80,
  "https:": 443,
  "ws:": 80,
  "wss:": 443,
};

/** A field value we can send as Latin-1: no CR, LF, NUL or code point above FF. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Reads an HTTP proxy URL, `http://[user:pass@]host[:port][/]`. The port
 * defaults to 80, the URL default (curl would use 1080; undici, Go and Python
 * take the scheme's default as we do). A user name and password, percent-decoded,
 * become the `Proxy-Authorization: Basic` value.
 *
 * @example
 * ```ts ignore
 * parseProxy("http://alice:s%40cret@127.0.0.1:8888").authority; // "127.0.0.1:8888"
 * parseProxy("https://proxy:443"); // throws TypeError
 * ```
 *
 * @param input The proxy URL.
 * @returns The proxy.
 * @throws {TypeError} If `input` is not a URL, its scheme is not `http:` (an
 *   `https:` proxy, where the client would speak TLS to the proxy itself, is not
 *   supported), it has a path other than `/`, a query or a fragment, its port
 *   is 0, or its userinfo does not percent-decode or the user name holds a colon
 *   (RFC 7617 section 2). The message shows the URL with its password replaced
 *   by `***`, and never the password.
 */
export function parseProxy(input: string | URL): ProxyConfig {
  return parseAs(input, "proxy");
}

function parseAs(input: string | URL, label: string): ProxyConfig {
  let url: URL;
  if (input instanceof URL) {
    url = new URL(input.href);
  } else if (typeof input === "string") {
    // The input is not echoed: it may be a URL with a password that failed to parse.
    if (!input.includes("://")) {
      throw new TypeError(
        `Cannot use ${label}: expected a URL like http://host:port`,
      );
    }
    try {
      url = new URL(input);
    } catch {
      throw new TypeError(`Cannot use ${label}: not a valid URL`);
    }
  } else {
    throw new TypeError(
      `Cannot use ${label}: expected a string or URL, received ${typeof input}`,
    );
  }
  const fail = (detail: string): never => {
    throw new TypeError(`Cannot use ${label} ${redact(url)}: ${detail}`);
  };
  if (url.protocol === "https:") {
    fail("https proxies are not supported, use an http:// proxy");
  }
  if (url.protocol !== "http:") {
    fail(`unsupported scheme "${url.protocol}", expected http://`);
  }
  // `?` and `#` are percent-encoded everywhere else in an href: an empty query
  // or fragment, which `search` and `hash` report as "", still shows here.
  if (url.pathname !== "/" || /[?#]/.test(url.href)) {
    fail("a proxy URL has no path, query or fragment");
  }
  if (url.port === "0") fail("port 0");
  const port = url.port === "" ? 80 : Number(url.port);
  const bracketed = url.hostname;
  const host = bracketed.startsWith("[") ? bracketed.slice(1, -1) : bracketed;
  const authority = `${bracketed}:${port}`;
  const origin = `http://${authority}`;

  let authorization: string | null = null;
  if (url.username !== "" || url.password !== "") {
    const user = percentDecode(url.username) ??
      fail("its user name is not valid percent-encoding");
    const pass = percentDecode(url.password) ??
      fail("its password is not valid percent-encoding");
    if (user.includes(":")) fail("its user name holds a colon");
    authorization = `Basic ${
      base64(new TextEncoder().encode(`${user}:${pass}`))
    }`;
  }
  const key = authorization === null
    ? origin
    : `${origin}#${hash64(authorization)}`;
  return { host, port, authority, origin, key, authorization };
}

/** The URL as shown in messages: its password, if any, replaced by `***`. */
function redact(url: URL): string {
  if (url.password === "") return url.href;
  const shown = new URL(url.href);
  shown.password = "***";
  return shown.href;
}

function percentDecode(text: string): string | null {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/**
 * 64 bits of hash, as 16 hex digits: tells credentials apart in a key without
 * showing them. Two FNV-1a passes, forwards and backwards from another basis:
 * 32 bits alone let two users of a rotating proxy's many session names share
 * a tunnel (`user76823:pw` and `user106400:pw` collide, found in a second).
 */
export function hash64(text: string): string {
  let forwards = 0x811c9dc5;
  let backwards = 0x9747b28c;
  for (let i = 0, j = text.length - 1; i < text.length; i++, j--) {
    forwards = Math.imul(forwards ^ text.charCodeAt(i), 0x01000193);
    backwards = Math.imul(backwards ^ text.charCodeAt(j), 0x01000193);
  }
  return (forwards >>> 0).toString(16).padStart(8, "0") +
    (backwards >>> 0).toString(16).padStart(8, "0");
}

/**
 * The proxy for `url`, read from the environment through `env`, or `null` for
 * a direct connection. The rules are curl's (`detect_proxy()` in lib/url.c, and
 * "Proxy environment variables" in Everything curl,
 * https://everything.curl.dev/usingcurl/proxies/env), but for `HTTP_PROXY`:
 *
 * - `http:` URLs use `http_proxy`, else `HTTP_PROXY`, except under CGI or when
 *   `http_proxy` is set, even to the empty string: `http_proxy=` goes on to
 *   `all_proxy`, or direct, as in curl (Python and undici too let it hide
 *   `HTTP_PROXY`; Go reads `HTTP_PROXY` first). Under CGI a
 *   request header `Proxy: x` reaches the script as the variable
 *   `HTTP_PROXY=x`, so a client that read it could be sent through a proxy of an
 *   attacker's choosing ("httpoxy", CVE-2016-5385). curl never reads
 *   `HTTP_PROXY`; Go's `net/http` and Python's `urllib` read it unless
 *   `REQUEST_METHOD` is set (a CGI script's environment), and so do we: the
 *   variable is what most tools and users set.
 * - `https:` URLs use `https_proxy`, else `HTTPS_PROXY`.
 * - Without those, `all_proxy`, else `ALL_PROXY`, for any scheme.
 * - A variable set to the empty string counts as unset (curl's `curl_getenv()`
 *   returns NULL for it), a value without `scheme://` is taken as `http://`,
 *   and a path, query or fragment is ignored, as curl does.
 * - `no_proxy`, else `NO_PROXY`, lists the hosts that go direct; see
 *   {@linkcode matchesNoProxy}.
 *
 * @example
 * ```ts ignore
 * const env = { https_proxy: "http://127.0.0.1:3128", NO_PROXY: "localhost" };
 * proxyFromEnv((name) => env[name], new URL("https://example.com/")); // 127.0.0.1:3128
 * proxyFromEnv((name) => env[name], new URL("http://example.com/")); // null
 * ```
 *
 * @param env Reads one environment variable (`Deno.env.get`, or a table in tests).
 * @param url The URL about to be fetched.
 * @returns The proxy for `url`, or `null` to connect directly.
 * @throws {TypeError} If the variable chosen holds a proxy {@linkcode parseProxy}
 *   refuses; the message names the variable. Variables that are not consulted for
 *   `url` (a bypassed host, another scheme's) are never parsed.
 */
export function proxyFromEnv(
  env: (name: string) => string | undefined,
  url: URL,
): ProxyConfig | null {
  // Under `--allow-env` scoped to some of these names (HTTP_PROXY but not
  // http_proxy, say), a name that may not be read counts as unset; only when
  // none of the proxy variables may be read is that the caller's error.
  let denied: unknown = null;
  let readable = false;
  let httpProxySet = false; // even to ""
  const read = (name: string): string | undefined => {
    let value: string | undefined;
    try {
      value = env(name)?.trim();
    } catch (error) {
      if (!(error instanceof Deno.errors.NotCapable)) throw error;
      denied ??= error;
      return undefined;
    }
    readable = true;
    if (name === "http_proxy" && value !== undefined) httpProxySet = true;
    return value === undefined || value === "" ? undefined : value;
  };
  const names = url.protocol === "http:"
    ? ["http_proxy", "HTTP_PROXY"]
    : url.protocol === "https:"
    ? ["https_proxy", "HTTPS_PROXY"]
    : [];
  names.push("all_proxy", "ALL_PROXY");
  let name: string | undefined;
  let value: string | undefined;
  for (const candidate of names) {
    // curl never reads HTTP_PROXY: it is read only where curl would find no
    // http_proxy at all, never over one set to "" (which curl takes as unset).
    if (candidate === "HTTP_PROXY" && httpProxySet) continue;
    value = read(candidate);
    // On Windows the two are one variable (names ignore case there): under
    // CGI, http_proxy is the request's `Proxy:` header too.
    const header = candidate === "HTTP_PROXY" ||
      (candidate === "http_proxy" && Deno.build.os === "windows");
    if (value !== undefined && header && underCgi(env)) {
      value = undefined; // see above
      continue;
    }
    if (value !== undefined) {
      name = candidate;
      break;
    }
  }
  if (name === undefined || value === undefined) {
    if (!readable && denied !== null) throw denied;
    return null;
  }
  const noProxy = read("no_proxy") ?? read("NO_PROXY");
  if (noProxy !== undefined && matchesNoProxy(url, noProxy)) return null;
  return parseAs(
    withoutPath(value.includes("://") ? value : `http://${value}`),
    `proxy from ${name}`,
  );
}

/**
 * A proxy variable's URL without its path, query and fragment, which curl,
 * Python and Go ignore there (`http://proxy:3128/x` is `http://proxy:3128`);
 * the text itself when it does not parse, for `parseAs` to report.
 */
function withoutPath(text: string): string | URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return text;
  }
  url.pathname = "";
  url.search = "";
  url.hash = "";
  return url;
}

/**
 * Whether the process runs as a CGI script (`REQUEST_METHOD` is set). Read
 * only when `HTTP_PROXY` is, so that `--allow-env` scoped to the proxy
 * variables still works; where that variable may not be read, the process is
 * taken not to be one (a CGI deployment grants its own variables).
 */
function underCgi(env: (name: string) => string | undefined): boolean {
  try {
    return env("REQUEST_METHOD") !== undefined;
  } catch {
    return false;
  }
}

/** A URL's host as `NO_PROXY` compares it. */
interface Target {
  kind: "name" | "ip";
  /** Lower-case host name without a trailing dot, or the IP address. */
  name: string;
  /** The address bytes (4 or 16) when `kind` is `"ip"`. */
  bytes: Uint8Array | null;
  /** The port the URL connects to, default filled in. */
  port: number;
}

/**
 * Whether `url` bypasses the proxy under a `NO_PROXY` list, by curl's rules
 * (`Curl_check_noproxy()` in lib/noproxy.c, and CURLOPT_NOPROXY:
 * https://curl.se/libcurl/c/CURLOPT_NOPROXY.html):
 *
 * - The list is separated by commas and/or blanks. The whole value `*` matches
 *   every host (a `*` among other entries matches nothing, as in curl).
 * - A name matches itself and its subdomains: `example.com` (or `.example.com`:
 *   one leading dot is ignored) matches `example.com` and `a.example.com` but not
 *   `badexample.com`. Case and one trailing dot are ignored on both sides.
 * - An IP address matches only an IP literal in the URL, compared as addresses
 *   (so `::1`, `0:0::1` and `[::1]` are one), with an optional CIDR prefix
 *   (`192.168.0.0/16`, `fe80::/10`); a name never matches an address.
 * - Beyond curl (which ignores ports), an entry may end in `:port`
 *   (`example.com:8080`, `[::1]:8080`) to bypass only that port, as Go's
 *   `httpproxy` and undici's `EnvHttpProxyAgent` do. A bare IPv6 entry takes
 *   no port: write `[::1]:8080`.
 *
 * @example
 * ```ts ignore
 * matchesNoProxy(new URL("http://a.example.com/"), "example.com"); // true
 * matchesNoProxy(new URL("http://badexample.com/"), "example.com"); // false
 * ```
 *
 * @param url The URL about to be fetched.
 * @param noProxy The list, as in `NO_PROXY`.
 * @returns `true` when `url` must not go through the proxy.
 */
export function matchesNoProxy(url: URL, noProxy: string): boolean {
  const list = noProxy.trim();
  if (list === "*") return true;
  if (list === "") return false;
  const target = targetOf(url);
  for (const token of list.split(/[\s,]+/)) {
    if (token === "") continue;
    const entry = splitPort(token);
    if (entry === null) continue;
    if (entry.port !== null && entry.port !== target.port) continue;
    if (
      target.kind === "ip"
        ? ipMatches(target, entry.name)
        : nameMatches(target, entry.name)
    ) {
      return true;
    }
  }
  return false;
}

function targetOf(url: URL): Target {
  const port = url.port === ""
    ? DEFAULT_PORTS[url.protocol] ?? 0
    : Number(url.port);
  const hostname = url.hostname;
  if (hostname.startsWith("[")) {
    const name = hostname.slice(1, -1);
    return { kind: "ip", name, bytes: ipv6Bytes(name), port };
  }
  // WHATWG URL has already turned any IPv4 form (`127.1`, `0x7f.0.0.1`) into
  // dotted decimal, so only that form needs recognizing.
  const v4 = ipv4Bytes(hostname);
  if (v4 !== null) return { kind: "ip", name: hostname, bytes: v4, port };
  const name = hostname.toLowerCase().replace(/\.$/, "");
  return { kind: "name", name, bytes: null, port };
}

/** An entry's name and optional port, or `null` for an entry that can never match. */
function splitPort(
  token: string,
): { name: string; port: number | null } | null {
  let name = token;
  let portText: string | null = null;
  if (token.startsWith("[")) {
    const close = token.indexOf("]");
    if (close === -1) return null;
    name = token.slice(1, close);
    const rest = token.slice(close + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) return null;
      portText = rest.slice(1);
    }
  } else {
    const colon = token.indexOf(":");
    // Two colons or more: a bare IPv6 address, as curl's list writes them.
    if (colon !== -1 && colon === token.lastIndexOf(":")) {
      name = token.slice(0, colon);
      portText = token.slice(colon + 1);
    }
  }
  if (portText === null) return { name, port: null };
  if (!/^\d{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  return port >= 1 && port <= 65535 ? { name, port } : null;
}

function nameMatches(target: Target, entry: string): boolean {
  let name = entry.toLowerCase().replace(/\.$/, "").replace(/^\./, "");
  if (name === "") return false;
  if (/[^\x20-\x7e]/.test(name)) {
    // An internationalized name in the list: compare it as the URL holds it.
    try {
      name = new URL(`http://${name}/`).hostname;
    } catch {
      return false;
    }
  }
  return target.name === name || target.name.endsWith(`.${name}`);
}

function ipMatches(target: Target, entry: string): boolean {
  if (target.bytes === null) return false;
  const slash = entry.indexOf("/");
  const address = slash === -1 ? entry : entry.slice(0, slash);
  let bits = 0;
  if (slash !== -1) {
    const bitsText = entry.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bitsText)) return false;
    bits = Number(bitsText);
  }
  const bytes = target.bytes.length === 4
    ? ipv4Bytes(address)
    : ipv6Bytes(address);
  if (bytes === null) return false;
  const width = bytes.length * 8;
  if (bits > width) return false;
  // curl treats a prefix of 0 as the full address, not as "every address".
  return samePrefix(target.bytes, bytes, bits === 0 ? width : bits);
}

function samePrefix(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  const whole = bits >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== b[i]) return false;
  const rest = bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((a[whole]! ^ b[whole]!) & mask) === 0;
}

function ipv4Bytes(text: string): Uint8Array | null {
  const parts = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (parts === null) return null;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const value = Number(parts[i + 1]);
    if (value > 255) return null;
    bytes[i] = value;
  }
  return bytes;
}

function ipv6Bytes(text: string): Uint8Array | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || !text.includes(":")) return null;
  let canonical: string;
  try {
    // The URL parser validates and canonicalizes (`::ffff:1.2.3.4` included):
    // what comes back is hex groups with at most one `::`.
    canonical = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return null;
  }
  const [head = "", tail] = canonical.split("::");
  const front = head === "" ? [] : head.split(":");
  const back = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? front : [
    ...front,
    ...new Array(8 - front.length - back.length).fill("0"),
    ...back,
  ];
  const bytes = new Uint8Array(16);
  groups.forEach((group, i) => {
    const value = parseInt(group, 16);
    bytes[2 * i] = value >> 8;
    bytes[2 * i + 1] = value & 0xff;
  });
  return bytes;
}

/**
 * The authority-form target of a `CONNECT` to `url` (RFC 9110 section 9.3.6):
 * `host:port`, IPv6 in brackets, the scheme's default port filled in.
 *
 * @example
 * ```ts ignore
 * connectAuthority(new URL("https://[::1]/x")); // "[::1]:443"
 * ```
 *
 * @param url The URL to reach through the tunnel.
 * @returns `host:port`.
 * @throws {TypeError} If `url` has no default port and names none.
 */
export function connectAuthority(url: URL): string {
  const port = url.port === "" ? DEFAULT_PORTS[url.protocol] : Number(url.port);
  if (port === undefined || url.hostname === "") {
    throw new TypeError(
      `Cannot build CONNECT request: no host and port in ${
        JSON.stringify(url.protocol)
      } URL`,
    );
  }
  // WHATWG URL serializes hosts as visible ASCII (IDN in punycode, the rest
  // percent-encoded), so the authority needs no further check.
  return `${url.hostname}:${port}`;
}

/**
 * The `CONNECT` request that opens a tunnel to `target` through `proxy`: the
 * authority-form target of {@linkcode connectAuthority}, a `Host` equal to it
 * (RFC 9112 section 3.2.3), `User-Agent` unless empty, and
 * `Proxy-Authorization`: the caller's (`authorization`), else the proxy URL's
 * credentials, if any.
 *
 * @example
 * ```ts ignore
 * const proxy = parseProxy("http://127.0.0.1:8888");
 * encodeConnect(new URL("https://example.com/"), proxy, "ua/1");
 * // "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: ua/1\r\n\r\n"
 * ```
 *
 * @param target The URL to reach through the tunnel; only its host and port are sent.
 * @param proxy The proxy, from {@linkcode parseProxy}.
 * @param userAgent The `User-Agent` value; `""` sends none.
 * @param authorization The caller's own `Proxy-Authorization` (checked as
 *   a request's header is), which wins over the proxy URL's; `null` for none.
 * @returns The request's bytes.
 * @throws {TypeError} If `target` has no port to connect to, or `userAgent`
 *   holds CR, LF, NUL or a character above U+00FF.
 */
export function encodeConnect(
  target: URL,
  proxy: ProxyConfig,
  userAgent: string,
  authorization: string | null = null,
): Uint8Array {
  const authority = connectAuthority(target);
  if (!FIELD_VALUE.test(userAgent)) {
    throw new TypeError(
      `Cannot build CONNECT request: invalid User-Agent ${
        JSON.stringify(userAgent)
      }`,
    );
  }
  let head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`;
  if (userAgent !== "") head += `User-Agent: ${userAgent}\r\n`;
  const credentials = authorization ?? proxy.authorization;
  if (credentials !== null) {
    head += `Proxy-Authorization: ${credentials}\r\n`;
  }
  head += "\r\n";
  const bytes = new Uint8Array(head.length);
  for (let i = 0; i < head.length; i++) bytes[i] = head.charCodeAt(i);
  return bytes;
}

/**
 * The absolute-form request-target for an `http:` URL sent through a proxy
 * (RFC 9112 section 3.2.2): scheme, host, non-default port, path and query;
 * never the userinfo or the fragment.
 *
 * @example
 * ```ts ignore
 * absoluteTarget(new URL("http://u:p@example.com:80/a?b#c")); // "http://example.com/a?b"
 * ```
 *
 * @param url The `http:` URL to fetch.
 * @returns The request-target.
 * @throws {TypeError} If `url` is not `http:` (https goes through a tunnel, in
 *   origin-form).
 */
export function absoluteTarget(url: URL): string {
  if (url.protocol !== "http:") {
    throw new TypeError(
      `Cannot build request: absolute-form is for http: URLs, received ${
        JSON.stringify(url.protocol)
      }`,
    );
  }
  // Visible ASCII by construction: WHATWG URL percent-encodes controls,
  // spaces and non-ASCII in the path and query.
  return `http://${url.host}${requestTarget(url)}`;
}
