/**
 * robots.txt for the crawl CLI (RFC 9309): fetched once per origin through a fetch
 * function the caller supplies, parsed with `robots_txt.ts`, asked before each URL.
 *
 * Used by the example only; the library knows nothing of robots.txt.
 *
 * @module
 */
import { httpUrl } from "./_util.ts";
import { agentToken, parseRobotsTxt, type RobotsTxt } from "./robots_txt.ts";

/** The response to a robots.txt request, as the fetch function reports it. */
export interface RobotsResponse {
  /** The final status, after the redirects the fetch function followed. */
  status: number;
  /** The body (bytes are decoded as UTF-8); ignored unless `status` is 2xx. */
  body: string | Uint8Array;
}

/**
 * Fetches `url` (an origin's `/robots.txt`) with GET, following up to 5 redirects
 * (RFC 9309 §2.3.1.2, even to another origin). It reports the final response,
 * including a 3xx when it gave up redirecting, and throws on a network error or
 * timeout (the origin is then "unreachable").
 */
export type RobotsFetcher = (url: URL) => Promise<RobotsResponse>;

/**
 * How an origin's robots.txt came out:
 * - `"parsed"`: a 2xx body, whose rules apply;
 * - `"unavailable"`: 4xx but 429, or still a 3xx after the redirects:
 *   everything is allowed (RFC 9309 §2.3.1.3);
 * - `"unreachable"`: 5xx, 429, another status, or the fetch threw: everything
 *   is disallowed (RFC 9309 §2.3.1.4; a 429 as Google reads it).
 */
export type RobotsOutcome = "parsed" | "unavailable" | "unreachable";

/** An origin's robots.txt, as fetched and parsed. */
export interface RobotsRules {
  /** See {@linkcode RobotsOutcome}. */
  outcome: RobotsOutcome;
  /** The status the fetch function reported, `undefined` when it threw. */
  status: number | undefined;
  /** Why it is unreachable when the fetch threw. */
  error: unknown;
}

/** Options of {@linkcode RobotsCache}. */
export interface RobotsCacheOptions {
  /**
   * The crawler's product token, matched case-insensitively against `User-agent`
   * lines (RFC 9309 §2.2.1): `"selectors-crawl"`, not the whole `User-Agent` header.
   *
   * @default {"*"}
   */
  userAgent?: string;
  /**
   * How long a fetched robots.txt is used before it is fetched again, in ms
   * (RFC 9309 §2.4: no more than 24 hours).
   *
   * @default {86400000}
   */
  maxAge?: number;
  /**
   * Bytes of a robots.txt parsed; the rest is ignored (RFC 9309 §2.5 asks for at
   * least 500 KiB), and so is a line the cut leaves partial. A fetcher that
   * keeps one byte more lets a file of exactly this size count as whole.
   *
   * @default {512000}
   */
  maxBytes?: number;
  /**
   * The clock, in ms, for `maxAge`: monotonic, so that a step of the wall
   * clock neither keeps a copy longer nor drops it early.
   *
   * @default {performance.now}
   */
  now?: () => number;
}

interface Entry {
  rules: RobotsRules;
  parsed: RobotsTxt | null;
  fetchedAt: number;
}

/**
 * robots.txt rules per origin: the first question about an origin fetches its
 * robots.txt (one fetch, however many questions arrive meanwhile); later questions
 * are answered from the cache until `maxAge` passes.
 *
 * Rules follow RFC 9309 (see `robots_txt.ts`): the groups naming the product
 * token (else `*`), the longest matching rule wins, `Allow` wins a tie, `*` and
 * `$` patterns, `/robots.txt` itself always allowed.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { RobotsCache } from "./robots.ts";
 *
 * const robots = new RobotsCache(
 *   () => Promise.resolve({ status: 200, body: "User-agent: *\nDisallow: /private\nCrawl-delay: 2" }),
 *   { userAgent: "mybot" },
 * );
 * assertEquals(await robots.isAllowed("http://a.test/index.html"), true);
 * assertEquals(await robots.isAllowed("http://a.test/private/1"), false);
 * assertEquals(await robots.crawlDelay("http://a.test"), 2000);
 * ```
 */
export class RobotsCache {
  #fetch: RobotsFetcher;
  #userAgent: string;
  #maxAge: number;
  #maxBytes: number;
  #now: () => number;
  #entries = new Map<string, Promise<Entry>>();

  /**
   * Creates an empty cache; nothing is fetched before the first question.
   *
   * @param fetchRobots Fetches a robots.txt (the crawl engine in the CLI).
   * @param options User agent, cache age and size limit.
   * @throws {RangeError} When `maxAge` or `maxBytes` is negative.
   */
  constructor(fetchRobots: RobotsFetcher, options: RobotsCacheOptions = {}) {
    this.#fetch = fetchRobots;
    this.#userAgent = options.userAgent ?? "*";
    this.#maxAge = nonNegative("maxAge", options.maxAge ?? 86_400_000);
    this.#maxBytes = nonNegative("maxBytes", options.maxBytes ?? 512_000);
    this.#now = options.now ?? (() => performance.now());
  }

  /**
   * Whether the crawler may fetch `url`.
   *
   * @param url An http(s) URL.
   * @param userAgent Overrides the product token given to the constructor.
   * @returns `false` when its origin's robots.txt disallows it or is unreachable.
   * @throws {TypeError} When `url` is not an http(s) URL.
   */
  async isAllowed(url: string | URL, userAgent?: string): Promise<boolean> {
    const parsedUrl = robotsUrl(url);
    // RFC 9309 §2.2.2: "The /robots.txt URI is implicitly allowed."
    if (parsedUrl.pathname === "/robots.txt") return true;
    const entry = await this.#entry(parsedUrl.origin);
    switch (entry.rules.outcome) {
      case "unavailable":
        return true;
      case "unreachable":
        return false;
      case "parsed":
        return entry.parsed!.isAllowed(
          parsedUrl.pathname + queryOf(parsedUrl),
          userAgent ?? this.#userAgent,
        );
    }
  }

  /**
   * The origin's `Crawl-delay` for this user agent, in ms (not part of RFC 9309,
   * but widely used; the CLI applies it as the origin's politeness delay).
   *
   * @param origin An http(s) URL of the origin.
   * @param userAgent Overrides the product token given to the constructor.
   * @returns The delay as given: it may be huge, or `Infinity`; `undefined`
   *   when none is given or it is no non-negative decimal number.
   * @throws {TypeError} When `origin` is not an http(s) URL.
   */
  async crawlDelay(
    origin: string | URL,
    userAgent?: string,
  ): Promise<number | undefined> {
    const entry = await this.#entry(robotsUrl(origin).origin);
    const seconds = entry.parsed?.crawlDelay(userAgent ?? this.#userAgent);
    return seconds === undefined ? undefined : seconds * 1000;
  }

  /**
   * How the origin's robots.txt came out (fetching it if needed), for reports.
   *
   * @param origin An http(s) URL of the origin.
   * @returns Its outcome and status.
   * @throws {TypeError} When `origin` is not an http(s) URL.
   */
  async rules(origin: string | URL): Promise<RobotsRules> {
    return (await this.#entry(robotsUrl(origin).origin)).rules;
  }

  #entry(origin: string): Promise<Entry> {
    const cached = this.#entries.get(origin);
    if (cached !== undefined) {
      // An expired entry is replaced on the first question after it expires; the
      // answers meanwhile keep coming from the old one.
      return cached.then((entry) => {
        if (this.#now() - entry.fetchedAt < this.#maxAge) return entry;
        if (this.#entries.get(origin) === cached) {
          this.#entries.set(origin, this.#load(origin));
        }
        return this.#entries.get(origin)!;
      });
    }
    const loading = this.#load(origin);
    this.#entries.set(origin, loading);
    return loading;
  }

  async #load(origin: string): Promise<Entry> {
    const url = new URL("/robots.txt", origin);
    let response: RobotsResponse;
    try {
      response = await this.#fetch(url);
    } catch (error) {
      return this.#made(
        { outcome: "unreachable", status: undefined, error },
        null,
      );
    }
    const { status } = response;
    if (status >= 200 && status <= 299) {
      return this.#made(
        { outcome: "parsed", status, error: undefined },
        parseRobotsTxt(decodeBody(response.body, this.#maxBytes)),
      );
    }
    // A 429 is the server asking us to slow down, not a missing file: as a
    // 5xx (Google's reading), not as leave to crawl everything for a day.
    const outcome = status >= 300 && status <= 499 && status !== 429
      ? "unavailable"
      : "unreachable";
    return this.#made({ outcome, status, error: undefined }, null);
  }

  #made(rules: RobotsRules, parsed: RobotsTxt | null): Entry {
    return { rules, parsed, fetchedAt: this.#now() };
  }
}

function decodeBody(body: string | Uint8Array, maxBytes: number): string {
  let bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
  // A UTF-8 BOM, even cut short, is skipped as Google skips it: the Latin-1
  // reading below would keep it on the first key.
  let bom = 0;
  while (bom < 3 && bytes[bom] === UTF8_BOM[bom]) bom++;
  bytes = bytes.subarray(bom);
  if (bytes.length > maxBytes) {
    // Cut at the limit: a line cut short (`Disallow: /private-area` kept as
    // `Disallow: /`) must not count, so the last whole line ends it.
    bytes = bytes.subarray(0, maxBytes);
    const end = Math.max(bytes.lastIndexOf(0x0a), bytes.lastIndexOf(0x0d));
    bytes = bytes.subarray(0, end + 1);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    // Not UTF-8 (Latin-1, say): a byte >= 0x80 means itself, percent-encoded,
    // as Google's robotstxt reads it (`/caf\xE9` is `/caf%E9`).
    let text = "";
    for (const byte of bytes) {
      text += byte < 0x80
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase()}`;
    }
    return text;
  }
}

/**
 * The robots.txt product token of a `User-Agent` header: its leading
 * `[A-Za-z_-]` characters (`selectors-crawl/0.2` is `selectors-crawl`), but for
 * a browser-style agent the name after `compatible;`, where crawlers put theirs
 * (`Mozilla/5.0 (compatible; MyBot/1.0; +http://...)` is `mybot`, not
 * `mozilla`, which no robots.txt names).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { productToken } from "./robots.ts";
 *
 * assertEquals(productToken("selectors-crawl/0.2"), "selectors-crawl");
 * assertEquals(productToken("Mozilla/5.0 (compatible; MyBot/1.0; +http://a.test/bot)"), "mybot");
 * ```
 *
 * @param userAgent The crawl's `User-Agent`.
 * @returns The token, lower-case; `"*"` when the agent has none.
 */
export function productToken(userAgent: string): string {
  const compatible = /^Mozilla\/.*\bcompatible;\s*([A-Za-z_-]+)/i.exec(
    userAgent,
  );
  return agentToken(compatible?.[1] ?? userAgent.trim()) || "*";
}

const UTF8_BOM = [0xef, 0xbb, 0xbf];

/**
 * The URL's query as it is requested: `URL.search` is `""` for an empty query
 * too, but `/page?` is fetched as such, and `Disallow: /*?` must match it.
 */
function queryOf(url: URL): string {
  if (url.search !== "") return url.search;
  const href = url.href;
  const hash = href.indexOf("#");
  return href.charCodeAt((hash < 0 ? href.length : hash) - 1) === 0x3f
    ? "?"
    : "";
}

function robotsUrl(url: string | URL): URL {
  return httpUrl(url, "check robots.txt");
}

function nonNegative(name: string, value: number): number {
  if (!(value >= 0)) {
    throw new RangeError(
      `Cannot create robots cache: ${name} must be >= 0, got ${value}`,
    );
  }
  return value;
}
