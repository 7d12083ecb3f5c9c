/**
 * Links out of HTML, for the crawl CLI's `--follow`: a streaming extractor on
 * htmlparser2's tokenizer, and the URL normalisation the frontier dedupes on.
 *
 * Used by the example only; the library never parses HTML.
 *
 * @module
 */
import type { Parser } from "npm:htmlparser2@12.0.0";
import { ESCAPES, LinkBase, LinkParser, LinkTokenizer } from "./_link_scan.ts";

/** Which attribute of which element holds a link. */
const LINK_ATTRIBUTES: Readonly<Record<string, string>> = {
  a: "href",
  link: "href",
  area: "href",
  iframe: "src",
  frame: "src",
};

/** Elements whose `<base>` is not the document's: inert or foreign content. */
const NOT_DOCUMENT_BASE = new Set(["template", "svg", "math"]);

const CDATA_OPEN = "<![CDATA[";

/** The most elements the extractor keeps open (Blink's parser nests 512 deep). */
const MAX_DEPTH = 512;

/**
 * What {@linkcode LinkExtractor} reaches inside htmlparser2 12.0.0's `Parser`
 * (private in its types): its open elements, innermost first, and the
 * foreign-content contexts those open (one per `<svg>`, `<math>` or HTML
 * integration point, innermost first, above a base entry).
 */
interface ParserInternals {
  stack: string[];
  foreignContext: unknown[];
}

/** The elements that push a foreign-content context in htmlparser2 12.0.0 (as its stack names them). */
const FOREIGN_CONTEXT = new Set([
  "svg",
  "math",
  "mi",
  "mo",
  "mn",
  "ms",
  "mtext",
  "annotation-xml",
  "foreignObject",
  "desc",
  "title",
]);

/**
 * Resolves `url` against `base` and normalises it for deduplication, or returns
 * `null` when it is not an http(s) URL.
 *
 * WHATWG URL parsing already lower-cases the scheme and host, drops the default
 * port, turns an empty path into `/` and resolves `.`/`..` segments; on top of that
 * the fragment is dropped (it never reaches the server) and percent-escapes of
 * unreserved characters are decoded and the others upper-cased (RFC 3986 §6.2.2.2),
 * so `/%7euser` and `/~user` are one page. A non-ASCII query is percent-encoded
 * as UTF-8 whatever the page's encoding (a browser uses the page's, so a
 * windows-1252 page's `?q=café` is `?q=caf%E9` there, `?q=caf%C3%A9` here).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { normalizeUrl } from "./links.ts";
 *
 * assertEquals(normalizeUrl("../b?q#top", "HTTP://Example.COM:80/a/c"), "http://example.com/b?q");
 * assertEquals(normalizeUrl("mailto:x@example.com"), null);
 * ```
 *
 * @param url An absolute URL, or a relative one with `base`.
 * @param base The URL to resolve against.
 * @returns The normalised URL, or `null` for an invalid or non-http(s) URL.
 */
export function normalizeUrl(
  url: string | URL,
  base?: string | URL,
): string | null {
  const parsed = parseUrl(url, base);
  if (parsed === null) return null;
  const protocol = parsed.protocol;
  if (protocol !== "http:" && protocol !== "https:") return null;
  // The href cut and mended as a string: each of URL's setters parses the
  // whole URL again (an op in Deno), which took a quarter of a crawl's CPU.
  // An http(s) href is "scheme://authority" then the path, always from a
  // "/" (the authority holds none), then any "?query", then any "#fragment"
  // (a "#" or "?" anywhere before them is percent-encoded).
  let href = parsed.href;
  const hash = href.indexOf("#");
  if (hash >= 0) href = href.slice(0, hash);
  const path = href.indexOf("/", protocol.length + 2);
  if (!ESCAPES.test(href.slice(path))) return href;
  const query = href.indexOf("?", path);
  return query < 0
    ? href.slice(0, path) + normalizeEscapes(href.slice(path))
    : href.slice(0, path) + normalizeEscapes(href.slice(path, query)) +
      normalizeEscapes(href.slice(query));
}

/** `new URL(url, base)`, or `null` where it throws. */
function parseUrl(url: string | URL, base?: string | URL): URL | null {
  try {
    return new URL(url, base);
  } catch {
    // Deno 2.9.6's URL (rust-url's, denoland/deno#35172) throws on "///host/x"
    // against an http(s) base, which WHATWG URL reads as "//host/x" (extra
    // slashes, or backslashes, skipped), as browsers do.
    if (typeof url !== "string" || base === undefined) return null;
    // The parser drops tabs and newlines anywhere: "/\t//host" is "///host".
    url = url.replace(/[\t\n\r]/g, "");
    let start = 0;
    while (start < url.length && url.charCodeAt(start) <= 0x20) start++;
    let end = start;
    while (url[end] === "/" || url[end] === "\\") end++;
    if (end - start < 3) return null;
    try {
      return new URL(`//${url.slice(end)}`, base);
    } catch {
      return null;
    }
  }
}

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/**
 * Percent-escapes decoded when unreserved, else upper-cased; and the
 * characters WHATWG URL leaves raw in a path or query that RFC 3986 allows in
 * neither (`[ ] | ^ { } \` and a backtick) escaped: `/p|` and `/p%7C` are one
 * page, and strict servers (Tomcat) refuse the raw form with a 400.
 */
function normalizeEscapes(text: string): string {
  return text.replace(
    /%([0-9A-Fa-f]{2})|[[\]|^{}`\\]/g,
    (match, hex: string | undefined) => {
      if (hex === undefined) {
        return `%${match.charCodeAt(0).toString(16).toUpperCase()}`;
      }
      const char = String.fromCharCode(parseInt(hex, 16));
      return UNRESERVED.test(char) ? char : `%${hex.toUpperCase()}`;
    },
  );
}

/**
 * A streaming link extractor: feed it the HTML as it arrives with
 * {@linkcode LinkExtractor.write}, take the links found so far from each call.
 *
 * Links are read from `a[href]`, `link[href]`, `area[href]`, `iframe[src]`,
 * `frame[src]` and a `<meta http-equiv="refresh">`'s URL (and, inside `<svg>`,
 * `a[xlink:href]`), resolved against the
 * document URL or the first `<base href>` (not one inside `<template>`, `<svg>`
 * or `<math>`; a `file:` or `ftp:` base leaves no http(s) link), and normalised
 * with {@linkcode normalizeUrl}; non-http(s) links (`mailto:`, `javascript:`,
 * `data:`, ...) and invalid ones are dropped. The same link may be returned more
 * than once (deduplication is the frontier's job).
 *
 * Not guaranteed: HTML lets a `<base>` apply to links before it; a streaming reader
 * cannot go back, so links before the first `<base>` resolve against the document
 * URL. In practice `<base>` sits in `<head>`, before every link. Text inside
 * `<script>` and `<style>` is never searched for links. `<![CDATA[` is read as
 * HTML reads it outside SVG and MathML, a comment up to the next `>`, inside
 * them too (htmlparser2 would hide the page up to a `]]>`).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { LinkExtractor } from "./links.ts";
 *
 * const extractor = new LinkExtractor("http://example.com/dir/page");
 * const links = [
 *   ...extractor.write('<base href="/other/"><a hr'),
 *   ...extractor.write('ef="x.html">x</a><a href="mailto:me@example.com">'),
 *   ...extractor.end(),
 * ];
 * assertEquals(links, ["http://example.com/other/x.html"]);
 * ```
 */
export class LinkExtractor {
  #base: string;
  /** The base, resolving the common links without the URL parser. */
  #linkBase: LinkBase;
  /** The base itself, normalised: where "" and "#..." lead. */
  #self: string | null | undefined;
  #baseSet = false;
  #nofollow = false;
  /** This crawler's robots.txt token: `<meta name>` it answers to besides `robots`. */
  #agent: string | undefined;
  #found: string[] = [];
  #parser: Parser;
  #decoder: TextDecoder;
  /** Open `<template>`, `<svg>` and `<math>` elements; open `<svg>`s. */
  #notDocument = 0;
  #svg = 0;
  /** Open `<template>`s: what they hold is inert. */
  #template = 0;
  /** The end of the text so far when it may begin a `<![CDATA[`. */
  #held = "";
  /** Whether the decoder gave any text yet (its BOM is dropped here). */
  #decoded = false;

  /**
   * Starts a document.
   *
   * @param documentUrl The URL the HTML was fetched from (after redirects).
   * @param options `encoding`: the label of the bytes' character encoding, for
   * `TextDecoder` (default `"utf-8"`); `agent`: this crawler's robots.txt
   * token (lower-case), a `<meta name>` it obeys besides `robots`.
   * @throws {TypeError} When `documentUrl` is not a valid URL.
   */
  constructor(
    documentUrl: string | URL,
    options: { encoding?: string; agent?: string } = {},
  ) {
    this.#base = new URL(documentUrl).href;
    this.#linkBase = new LinkBase(this.#base);
    this.#agent = options.agent;
    // Deno's streaming decoder drops a U+FEFF that starts any piece's text,
    // not only the stream's BOM: the BOM is dropped in #decode instead.
    this.#decoder = new TextDecoder(options.encoding ?? "utf-8", {
      ignoreBOM: true,
    });
    this.#parser = new LinkParser({
      onopentagname: () => this.#capDepth(),
      onopentag: (name, attributes) => this.#onOpenTag(name, attributes),
      onclosetag: (name) => this.#onCloseTag(name),
    }, {
      decodeEntities: true,
      lowerCaseTags: true,
      lowerCaseAttributeNames: true,
      Tokenizer: LinkTokenizer,
    });
  }

  /**
   * Feeds the next piece of the document.
   *
   * @param chunk Bytes (decoded with the encoding given, split characters kept for
   * the next chunk) or text.
   * @returns The links completed by this piece, in document order.
   */
  write(chunk: Uint8Array | string): string[] {
    const text = typeof chunk === "string" ? chunk : this.#decode(chunk);
    this.#feed(text, false);
    return this.#take();
  }

  /**
   * Ends the document.
   *
   * @returns The links found in the last, unterminated piece.
   */
  end(): string[] {
    this.#feed(this.#decode(), true);
    this.#parser.end();
    return this.#take();
  }

  /**
   * Whether the page asked that its links not be followed, so far: a
   * `<meta name="robots">` saying `nofollow` or `none` (as wget and search
   * engines obey it). Read it after `end()`: the links found still come back.
   */
  get nofollow(): boolean {
    return this.#nofollow;
  }

  /** Whether a robots meta tag of `name` is for this crawler. */
  #forUs(name: string | undefined): boolean {
    const lower = name?.trim().toLowerCase();
    return lower === "robots" ||
      (lower !== undefined && lower === this.#agent);
  }

  #decode(bytes?: Uint8Array): string {
    const text = bytes === undefined
      ? this.#decoder.decode()
      : this.#decoder.decode(bytes, { stream: true });
    if (this.#decoded || text === "") return text;
    this.#decoded = true;
    return text.charCodeAt(0) === 0xfeff &&
        /^utf-(?:8|16)/.test(this.#decoder.encoding)
      ? text.slice(1)
      : text;
  }

  #feed(piece: string, last: boolean): void {
    // "<!-[" opens what htmlparser2 reads as a comment up to the next ">".
    let text = (this.#held + piece).replaceAll(CDATA_OPEN, "<!-[CDATA[");
    this.#held = "";
    if (!last) {
      // A "<![CDATA[" split between pieces: its start waits for the rest.
      const from = text.lastIndexOf("<", text.length - 1);
      if (from >= 0 && from > text.length - CDATA_OPEN.length) {
        const tail = text.slice(from);
        if (CDATA_OPEN.startsWith(tail)) {
          this.#held = tail;
          text = text.slice(0, from);
        }
      }
    }
    if (text !== "") this.#parser.write(text);
  }

  #take(): string[] {
    const found = this.#found;
    this.#found = [];
    return found;
  }

  /**
   * Keeps at most {@linkcode MAX_DEPTH} elements open: htmlparser2 keeps them
   * in an array it grows at the front, and searches it for each end tag, so
   * a page of 400,000 unclosed `<div>`s took 40 s, the crawl's loop held the
   * while. Past the limit the outermost is forgotten, as if closed (Blink too
   * stops nesting deeper at 512, flattening instead); its end tag, if it
   * comes, then closes nothing.
   */
  #capDepth(): void {
    const parser = this.#parser as unknown as ParserInternals;
    const stack = parser.stack;
    if (stack.length <= MAX_DEPTH) return;
    const outermost = stack.pop()!;
    // Its entry in the foreign-content stack, the oldest above the base one.
    if (FOREIGN_CONTEXT.has(outermost) && parser.foreignContext.length > 1) {
      parser.foreignContext.splice(parser.foreignContext.length - 2, 1);
    }
    this.#onCloseTag(outermost);
  }

  #onCloseTag(name: string): void {
    if (NOT_DOCUMENT_BASE.has(name) && this.#notDocument > 0) {
      this.#notDocument--;
      if (name === "svg" && this.#svg > 0) this.#svg--;
      if (name === "template" && this.#template > 0) this.#template--;
    }
  }

  #onOpenTag(name: string, attributes: Record<string, string>): void {
    if (NOT_DOCUMENT_BASE.has(name)) {
      this.#notDocument++;
      if (name === "svg") this.#svg++;
      if (name === "template") this.#template++;
    }
    if (name === "base") {
      const href = attributes.href;
      if (this.#baseSet || href === undefined || this.#notDocument > 0) return;
      this.#baseSet = true;
      // HTML ignores a base URL that does not parse, or a "data:" or
      // "javascript:" one; any other is the base, a "file:" one too: links
      // resolved against it are no http(s) URLs, and no browser requests them.
      const base = parseUrl(href, this.#base);
      if (
        base !== null && base.protocol !== "data:" &&
        base.protocol !== "javascript:"
      ) {
        this.#base = base.href;
        this.#linkBase = new LinkBase(this.#base);
        this.#self = undefined;
      }
      return;
    }
    if (
      name === "meta" && this.#template === 0 &&
      this.#forUs(attributes.name) && robotsNofollow(attributes.content)
    ) {
      this.#nofollow = true;
      return;
    }
    if (name === "meta") {
      // A refresh to another URL is a redirect in the page (wget and Scrapy
      // follow it); one in a template is inert. A <meta> in <svg> or <math>
      // is HTML's all the same: the HTML parser closes them before it.
      const to = attributes["http-equiv"]?.toLowerCase() === "refresh" &&
          this.#template === 0
        ? refreshUrl(attributes.content ?? "")
        : null;
      const url = to === null ? null : normalizeLink(to, this.#base);
      if (url !== null) this.#found.push(url);
      return;
    }
    const attribute = LINK_ATTRIBUTES[name];
    if (attribute === undefined) return;
    // SVG 1.1's link attribute, which browsers still follow.
    const value = attributes[attribute] ??
      (name === "a" && this.#svg > 0 ? attributes["xlink:href"] : undefined);
    if (value === undefined) return;
    const url = this.#resolve(value);
    if (url !== null) this.#found.push(url);
  }

  /** {@linkcode normalizeLink}`(link, base)`, the common forms without the URL parser. */
  #resolve(link: string): string | null {
    const url = this.#linkBase.resolve(link);
    if (url !== undefined) return url;
    // The page itself (a fragment is cut): the same whatever the fragment.
    if (link === "" || link.charCodeAt(0) === 0x23) {
      return this.#self === undefined
        ? this.#self = normalizeLink(link, this.#base)
        : this.#self;
    }
    return normalizeLink(link, this.#base);
  }
}

const BLANKS = /^[\t\n\f\r ]*/;

/**
 * The URL of a `<meta http-equiv="refresh">`'s `content` (`5; url=/next`), as
 * HTML's declarative refresh reads it, or `null` when it names none (a reload
 * of the page itself) or does not parse.
 */
function refreshUrl(content: string): string | null {
  let rest = content.replace(BLANKS, "");
  const time = /^[0-9.]+/.exec(rest);
  if (time === null) return null;
  rest = rest.slice(time[0].length);
  if (!/^[;,\t\n\f\r ]/.test(rest)) return null;
  rest = rest.replace(BLANKS, "").replace(/^[;,]/, "").replace(BLANKS, "");
  // "url =" before it, and quotes around it, are optional (but for a "u"
  // that starts no "url =": then it is the URL's).
  const named = /^url[\t\n\f\r ]*=[\t\n\f\r ]*/i.exec(rest);
  if (named !== null) rest = rest.slice(named[0].length);
  if (named !== null || !/^u/i.test(rest)) {
    const quote = rest[0];
    if (quote === '"' || quote === "'") {
      rest = rest.slice(1);
      const end = rest.indexOf(quote);
      if (end >= 0) rest = rest.slice(0, end);
    }
  }
  return rest.trim() === "" ? null : rest;
}

/**
 * {@linkcode normalizeUrl} for a URL a server gave (a link, a `Location`):
 * without the user name and password it may hold, as they are the server's,
 * not the operator's to send (the crawl would send them as `Authorization`),
 * and `http://u:p@host/x` is the page `http://host/x`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { normalizeLink } from "./links.ts";
 *
 * assertEquals(normalizeLink("//u:p@h.test/x", "http://h.test/"), "http://h.test/x");
 * ```
 *
 * @param url An absolute URL, or a relative one with `base`.
 * @param base The URL to resolve against.
 * @returns The normalised URL without credentials, or `null` for an invalid
 *   or non-http(s) URL.
 */
export function normalizeLink(
  url: string | URL,
  base?: string | URL,
): string | null {
  const normalized = normalizeUrl(url, base);
  return normalized === null ? null : withoutCredentials(normalized);
}

/** `url` (normalised) without its user name and password. */
function withoutCredentials(url: string): string {
  const at = url.indexOf("@");
  if (at < 0 || at > url.indexOf("/", url.indexOf("//") + 2)) return url;
  const parsed = new URL(url);
  if (parsed.username === "" && parsed.password === "") return url;
  parsed.username = "";
  parsed.password = "";
  return parsed.href;
}

/**
 * Whether a response is HTML, its links to be read: by its `Content-Type`
 * (`text/html`, `application/xhtml+xml`), else by its first byte past a UTF-8
 * BOM and blanks being `<`, as a browser sniffs an untyped body.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { isHtml } from "./links.ts";
 *
 * assert(isHtml(new Headers({ "content-type": "text/html; charset=utf-8" }), new Uint8Array()));
 * assert(!isHtml(new Headers({ "content-type": "text/x-server-parsed-html" }), new Uint8Array()));
 * assert(isHtml(new Headers(), new TextEncoder().encode(" <html>")));
 * ```
 *
 * @param headers The response's header fields.
 * @param body The body, or its first bytes.
 * @returns Whether to read its links.
 */
export function isHtml(headers: Headers, body: Uint8Array): boolean {
  const type = headers.get("content-type");
  if (type !== null) {
    // The first type of fields joined by Headers ("text/html, text/html; ...").
    return /^\s*(text\/html|application\/xhtml\+xml)\s*(;|,|$)/i.test(type);
  }
  // No type: markup if its first byte past a UTF-8 BOM and blanks is "<".
  const bom = body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  const first = body.findIndex((b, i) => i >= bom && b > 32);
  return first >= 0 && body[first] === 0x3c;
}

/** Directives whose own value has a colon: not a crawler's name before one. */
const COLON_DIRECTIVES =
  /^(?:unavailable_after|max-snippet|max-image-preview|max-video-preview)$/i;

/**
 * Whether a robots meta tag's `content`, or an `X-Robots-Tag` value, says not
 * to follow the page's links: a `nofollow` or `none` directive, case aside. A
 * directive after a crawler's name (`googlebot: nofollow`) counts only when
 * the name is `agent`, this crawler's robots.txt token. The directives after
 * it in the list count for every crawler: Google reads a list after a name as
 * that crawler's, but `headers.get()` joins two fields with ", " too
 * (`googlebot: noindex` and `nofollow`), and a polite crawler takes the
 * stricter reading.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { robotsNofollow } from "./links.ts";
 *
 * assert(robotsNofollow("noindex, NoFollow"));
 * assert(!robotsNofollow("googlebot: nofollow"));
 * assert(robotsNofollow("mybot: nofollow", "mybot"));
 * ```
 *
 * @param value The directives, comma-separated; `null` or `undefined` for none.
 * @param agent This crawler's token (lower-case), for lists named after it.
 * @returns Whether links are not to be followed.
 */
export function robotsNofollow(
  value: string | null | undefined,
  agent?: string,
): boolean {
  if (value === null || value === undefined) return false;
  for (let directive of value.split(",")) {
    const named = /^\s*([A-Za-z0-9_.-]+)\s*:(.*)$/.exec(directive);
    if (named !== null && !COLON_DIRECTIVES.test(named[1]!)) {
      if (named[1]!.toLowerCase() !== agent) continue;
      directive = named[2]!;
    }
    if (/^\s*(?:nofollow|none)\s*$/i.test(directive)) return true;
  }
  return false;
}

/**
 * Yields the links of an HTML document read in chunks, as each chunk arrives (see
 * {@linkcode LinkExtractor} for what counts as a link).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { extractLinks } from "./links.ts";
 *
 * const html = ['<a href="/a#x">', '</a><iframe src="//cdn.example.net/f">'];
 * const links = await Array.fromAsync(extractLinks(html, "https://example.com/"));
 * assertEquals(links, ["https://example.com/a", "https://cdn.example.net/f"]);
 * ```
 *
 * @param chunks The document, in pieces (bytes or text).
 * @param documentUrl The URL it was fetched from (after redirects).
 * @param options `encoding` of the bytes (default `"utf-8"`).
 * @returns The links, in document order.
 */
export async function* extractLinks(
  chunks: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>,
  documentUrl: string | URL,
  options: { encoding?: string } = {},
): AsyncGenerator<string, void, undefined> {
  const extractor = new LinkExtractor(documentUrl, options);
  for await (const chunk of chunks) yield* extractor.write(chunk);
  yield* extractor.end();
}

/**
 * A page's encoding, found as a browser finds it (HTML's encoding sniffing, in
 * short): a byte order mark, else the charset its `Content-Type` names, else a
 * `<meta charset>` (or `http-equiv` Content-Type) in its first 1024 bytes, if
 * `TextDecoder` knows it (`windows-1252`, `shift_jis`...); else UTF-8. Link
 * targets decoded with the wrong one would be requested wrong
 * (`/caf%EF%BF%BD`).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { charsetOf } from "./links.ts";
 *
 * const page = new TextEncoder().encode('<meta charset="windows-1252"><a href="/caf\xe9">');
 * assertEquals(charsetOf(new Headers(), page), "windows-1252");
 * assertEquals(charsetOf(new Headers({ "content-type": "text/html; charset=Shift_JIS" }), page), "shift_jis");
 * ```
 *
 * @param headers The response's header fields.
 * @param body The page's bytes (its first 1024 are looked at).
 * @returns A `TextDecoder` encoding name.
 */
export function charsetOf(headers: Headers, body: Uint8Array): string {
  if (body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) return "utf-8";
  if (body[0] === 0xfe && body[1] === 0xff) return "utf-16be";
  if (body[0] === 0xff && body[1] === 0xfe) return "utf-16le";
  const declared = encodingOf(
    /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(
      headers.get("content-type") ?? "",
    )?.[1],
  );
  if (declared !== null) return declared;
  const meta = encodingOf(metaCharset(body));
  // A page that says UTF-16 in ASCII markup is not UTF-16 (HTML reads UTF-8),
  // and "x-user-defined" there means windows-1252.
  if (meta === null || meta.startsWith("utf-16")) return "utf-8";
  return meta === "x-user-defined" ? "windows-1252" : meta;
}

/**
 * The charset a `<meta>` in the first 1024 bytes declares, as HTML's prescan
 * finds it, in short: comments skipped; a `charset` attribute, or the
 * `charset=` of a `content` whose `http-equiv` is `Content-Type` (not of any
 * `content`: a description may say "charset=").
 */
function metaCharset(body: Uint8Array): string | undefined {
  // Bytes as latin1: an ASCII-compatible encoding's markup reads the same.
  const head = new TextDecoder("latin1").decode(body.subarray(0, 1024))
    .replace(/<!--[^]*?(?:-->|$)/g, "");
  for (const tag of head.matchAll(/<meta[\s/]([^>]*)/gi)) {
    const attributes = new Map<string, string>();
    for (
      const [, name, value] of tag[1]!.matchAll(
        /([^\s=/>]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]+))?/g,
      )
    ) {
      const key = name!.toLowerCase();
      if (!attributes.has(key)) {
        attributes.set(key, (value ?? "").replace(/^["']|["']$/g, ""));
      }
    }
    const charset = attributes.get("charset");
    if (charset !== undefined && charset.trim() !== "") return charset.trim();
    if (attributes.get("http-equiv")?.toLowerCase() === "content-type") {
      const label = /charset\s*=\s*["']?([^"';\s]+)/i.exec(
        attributes.get("content") ?? "",
      )?.[1];
      if (label !== undefined) return label;
    }
  }
  return undefined;
}

/** The encoding a label names, or `null` when `TextDecoder` knows none. */
function encodingOf(label: string | undefined): string | null {
  if (label === undefined) return null;
  try {
    return new TextDecoder(label).encoding;
  } catch {
    return null;
  }
}
