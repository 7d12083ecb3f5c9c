/**
 * The retry and backoff policy, pure: given an attempt's outcome and the time, it
 * says how long to wait before trying again, or that the URL is finished. It also
 * says how long a whole origin must pause after a `429`/`503` with `Retry-After`.
 * No I/O and no clock of its own: the crawl passes `now` and a random source in.
 *
 * @module
 */
import { HttpParseError } from "./http_parse_error.ts";
import { ProxyError } from "./proxy_error.ts";
import { isShortage, isUnreachable } from "../selector/_util.ts";
import { shown } from "./_redact.ts";
import type { RetryOptions } from "./fetch_all.ts";

/** A validated {@linkcode RetryOptions}. */
export interface RetryPolicy {
  readonly limit: number;
  readonly statuses: ReadonlySet<number>;
  readonly baseDelay: number;
  readonly maxDelay: number;
}

const DEFAULT_STATUSES = [408, 429, 500, 502, 503, 504];

/**
 * Methods whose requests may be sent twice with the effect of once
 * (RFC 9110 section 9.2.2: https://www.rfc-editor.org/rfc/rfc9110#section-9.2.2).
 */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "OPTIONS",
  "TRACE",
  "PUT",
  "DELETE",
]);

/**
 * The `Retry-After` of a proxy's refusal of a tunnel, by its error (a rotating
 * proxy answers a `CONNECT` 429 with one): a retry waits for it as it would
 * for that status to an `http:` URL.
 */
export const proxyRetryAfter: WeakMap<ProxyError, string> = new WeakMap();

/** Errors that say the exchange failed on the way, not that the answer was bad. */
const TRANSIENT_ERRORS = [
  Deno.errors.TimedOut,
  Deno.errors.ConnectionRefused,
  Deno.errors.ConnectionReset,
  Deno.errors.ConnectionAborted,
  Deno.errors.BrokenPipe,
  Deno.errors.NotConnected,
  Deno.errors.UnexpectedEof,
  // Out of local ports (TIME_WAIT at a high rate of new connections).
  Deno.errors.AddrNotAvailable,
];

/**
 * Validates the `retry` option.
 *
 * @throws {RangeError} For a negative or non-integer `limit`, a negative delay,
 *   or a status outside 100..999.
 * @throws {TypeError} If `statuses` is not an array.
 */
export function retryPolicy(options: RetryOptions | undefined): RetryPolicy {
  const limit = options?.limit ?? 0;
  if (!Number.isInteger(limit) || limit < 0) {
    throw new RangeError(
      `Cannot fetch: retry.limit must be a non-negative integer, received ${
        shown(limit)
      }`,
    );
  }
  const statuses = options?.statuses ?? DEFAULT_STATUSES;
  if (!Array.isArray(statuses)) {
    throw new TypeError(
      `Cannot fetch: retry.statuses must be an array of status codes, received ${typeof statuses}`,
    );
  }
  for (const status of statuses) {
    if (!Number.isInteger(status) || status < 100 || status > 999) {
      throw new RangeError(
        `Cannot fetch: retry.statuses must hold status codes 100..999, received ${
          shown(status)
        }`,
      );
    }
  }
  return {
    limit,
    statuses: new Set(statuses),
    baseDelay: delay("retry.baseDelay", options?.baseDelay, 250),
    maxDelay: delay("retry.maxDelay", options?.maxDelay, 30_000),
  };
}

// Finite: an Infinity here made a huge Retry-After a wait for ever, with
// nothing to end it but an abort, and 0 × Infinity (a jitter draw of 0) a NaN
// deadline.
function delay(name: string, value: number | undefined, fallback: number) {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !(value >= 0) || value === Infinity) {
    throw new RangeError(
      `Cannot fetch: ${name} must be a finite non-negative number, received ${
        shown(value)
      }`,
    );
  }
  return value;
}

/**
 * The wait a `Retry-After` field asks for, in ms from `nowMs` (a `Date.now()`
 * time): delay-seconds or an HTTP-date (RFC 9110 section 10.2.3:
 * https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3). A date in the past is
 * 0. `null` for a missing or unparsable value, which then counts as absent.
 */
export function parseRetryAfter(
  value: string | null,
  nowMs: number,
): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = parseHttpDate(text, nowMs);
  return at === null ? null : Math.max(0, at - nowMs);
}

const MONTHS = "JanFebMarAprMayJunJulAugSepOctNovDec";
const TIME = String.raw`(?<hour>\d\d):(?<minute>\d\d):(?<second>\d\d)`;
const DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)";
/** The three forms: `Sun, 06 Nov 1994 08:49:37 GMT` (IMF-fixdate), `Sunday, 06-Nov-94 08:49:37 GMT` (rfc850), `Sun Nov  6 08:49:37 1994` (asctime). */
const HTTP_DATES = [
  String
    .raw`^${DAY}, (?<day>\d\d) (?<month>[A-Z][a-z]{2}) (?<year>\d{4}) ${TIME} GMT$`,
  String
    .raw`^(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, (?<day>\d\d)-(?<month>[A-Z][a-z]{2})-(?<yy>\d\d) ${TIME} GMT$`,
  String
    .raw`^${DAY} (?<month>[A-Z][a-z]{2}) (?<day>[ \d]\d) ${TIME} (?<year>\d{4})$`,
].map((source) => new RegExp(source));

/**
 * An HTTP-date in one of the three forms RFC 9110 section 5.6.7 obliges a
 * recipient to accept, as ms since the epoch (UTC, asctime's too); `null` for
 * anything else. Strict, unlike `Date.parse`, which reads "Retry in 2030" as a
 * date.
 */
function parseHttpDate(text: string, nowMs: number): number | null {
  let g: Record<string, string> | undefined;
  for (const form of HTTP_DATES) {
    g = form.exec(text)?.groups;
    if (g !== undefined) break;
  }
  if (g === undefined) return null;
  let year = Number(g["year"]);
  if (g["yy"] !== undefined) {
    // A two-digit year more than 50 years ahead is the last such year past.
    const thisYear = new Date(nowMs).getUTCFullYear();
    year = thisYear - (thisYear % 100) + Number(g["yy"]);
    if (year > thisYear + 50) year -= 100;
  }
  const month = MONTHS.indexOf(g["month"]!);
  const day = Number(g["day"]!.trim());
  const [hour, minute, second] = [g["hour"], g["minute"], g["second"]].map(
    Number,
  ) as [
    number,
    number,
    number,
  ];
  if (
    month < 0 || month % 3 !== 0 || day < 1 || day > 31 || hour > 23 ||
    minute > 59 || second > 60
  ) return null;
  // A day the month does not have (31 Feb) is no date, not one in March.
  if (new Date(Date.UTC(year, month / 3, day)).getUTCDate() !== day) {
    return null;
  }
  return Date.UTC(year, month / 3, day, hour, minute, second);
}

/**
 * The full-jitter backoff before retry `n` (1 for the first retry): a random value
 * in `[0, min(maxDelay, baseDelay × 2^(n-1))]`, as in "Exponential Backoff And
 * Jitter" (AWS Architecture Blog, 2015).
 *
 * @param random A value in [0, 1), `Math.random()` in the crawl.
 */
export function backoff(
  policy: RetryPolicy,
  n: number,
  random: number,
): number {
  const ceiling = Math.min(policy.maxDelay, policy.baseDelay * 2 ** (n - 1));
  return random * ceiling;
}

/**
 * Parse errors that are the connection ending early, not bad bytes: nothing
 * came, or the head or body was cut short (a reset, a server restarting). A
 * connection error like the others, so retried as urllib3, undici and Scrapy
 * retry an incomplete read; a malformed response is not.
 */
const CUT_SHORT = new Set([
  "empty-response",
  "truncated-head",
  "truncated-body",
]);

/** Whether a failed attempt's error is one a retry may cure. */
export function isTransient(error: unknown): boolean {
  if (error instanceof HttpParseError) return CUT_SHORT.has(error.code);
  for (const kind of TRANSIENT_ERRORS) {
    if (error instanceof kind) return true;
  }
  if (!(error instanceof Error)) return false;
  // This machine out of descriptors (a crawl wider than `ulimit -n`): they
  // come back as other connections close. No route to the host, or a lookup
  // the resolver could not answer for now: as urllib3 and Scrapy retry them.
  return isShortage(error) || isUnreachable(error);
}

/** How one attempt ended, as the policy needs to know it. */
export type Outcome =
  | { status: number; headers: Headers }
  | { error: unknown };

/**
 * Whether to try a finished attempt again, and after how long.
 *
 * @param attempts The attempts made so far, this one included (1 after the first).
 * @param replayable Whether the method is idempotent and the body can be sent again.
 * @param nowMs `Date.now()`, for an HTTP-date `Retry-After`.
 * @param random A value in [0, 1).
 * @returns The wait in ms, or `-1` to stop: the outcome is the URL's result.
 */
export function retryDelay(
  policy: RetryPolicy,
  attempts: number,
  replayable: boolean,
  outcome: Outcome,
  nowMs: number,
  random: number,
): number {
  if (attempts > policy.limit || !replayable) return -1;
  if ("error" in outcome) {
    const error = outcome.error;
    // A proxy's refusal of a tunnel with a listed status (Squid's 503 for an
    // origin it cannot reach), as that status to an http: URL through it.
    if (error instanceof ProxyError && policy.statuses.has(error.status)) {
      const asked = parseRetryAfter(proxyRetryAfter.get(error) ?? null, nowMs);
      if (asked !== null) return Math.min(asked, policy.maxDelay);
      return backoff(policy, attempts, random);
    }
    return isTransient(error) ? backoff(policy, attempts, random) : -1;
  }
  if (!policy.statuses.has(outcome.status)) return -1;
  const asked = parseRetryAfter(outcome.headers.get("retry-after"), nowMs);
  if (asked !== null) return Math.min(asked, policy.maxDelay);
  return backoff(policy, attempts, random);
}

/**
 * How long a whole origin pauses after this answer: a `429` (RFC 6585 section 4)
 * or `503` (RFC 9110 section 15.6.4) with a usable `Retry-After` (`retryAfter`,
 * the field's value, a response's or a proxy's refusal's), capped at
 * `maxDelay`; 0 for any other.
 */
export function originPause(
  status: number,
  retryAfter: string | null,
  maxDelay: number,
  nowMs: number,
): number {
  if (status !== 429 && status !== 503) return 0;
  const asked = parseRetryAfter(retryAfter, nowMs);
  return asked === null ? 0 : Math.min(asked, maxDelay);
}
