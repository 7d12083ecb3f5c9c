/**
 * `fetchAll` and `fetchEach`: many HTTP requests on one selector.
 *
 * @module
 */
import { EVENT_READ, EVENT_WRITE } from "../selector/events.ts";
import type { PollableConn } from "../selector/pollable_conn.ts";
import { Selector } from "../selector/selector.ts";
import {
  HttpClient,
  type HttpClientOptions,
  type HttpResponse,
  type InternalOptions,
  nonNegative,
  parseHttpUrl,
} from "./http_client.ts";
import {
  kRequestWriter,
  normalizeHeaders,
  RequestWriter,
  validateMethod,
} from "./_request.ts";

/**
 * The outcome for one URL: a response, or why there is none.
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
 * console.log(line({ url: "not a url", ok: false, error: new TypeError("invalid URL") }));
 * ```
 */
export type FetchResult =
  | {
    /** The input URL, exactly as given. */
    url: string;
    /** The request succeeded (whatever the status code). */
    ok: true;
    /** The response. */
    response: HttpResponse;
  }
  | {
    /** The input URL, exactly as given. */
    url: string;
    /** The request failed. */
    ok: false;
    /** Why: a `TypeError` for a bad URL, an `HttpParseError`, a connection error, `Deno.errors.TimedOut`, or the abort reason. */
    error: unknown;
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
export interface FetchEntry {
  /** The URL's position in the input. */
  index: number;
  /** The outcome. */
  result: FetchResult;
  /** Milliseconds from its first connect (or reuse) to its last byte, redirects included. */
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
 *   signal: controller.signal,
 *   onProgress: (done, total) => console.log(`${done}/${total}`),
 * };
 * console.log(options.concurrency);
 * ```
 */
export interface FetchAllOptions {
  /**
   * How many URLs are in flight at once (a positive integer).
   *
   * @default {64}
   */
  concurrency?: number;
  /**
   * Milliseconds for each URL, from connect to its last body byte, redirects
   * included; `Infinity` for none.
   *
   * @default {30000}
   */
  timeout?: number;
  /** Headers sent with every request. */
  headers?: HeadersInit;
  /**
   * The method of every request.
   *
   * @default {"GET"}
   */
  method?: string;
  /** A body sent with every request (with `Content-Length`). */
  body?: Uint8Array | string | null;
  /**
   * The most body bytes accepted per response, counted on the wire and again
   * after decoding, so a decompression bomb stops at the limit.
   *
   * @default {Infinity}
   */
  maxResponseBytes?: number;
  /** Aborts the whole crawl: unfinished URLs fail with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * Called once per finished URL, with how many are done and the total: the
   * number of URLs when `urls` is an array (always, for {@linkcode fetchAll}),
   * else how many have started so far.
   */
  onProgress?: (done: number, total: number, result: FetchResult) => void;
  /**
   * `"follow"` redirects (up to 20, like `fetch`), return them as responses
   * (`"manual"`), or fail on them (`"error"`).
   *
   * @default {"follow"}
   */
  redirect?: "follow" | "manual" | "error";
  /**
   * Reuse connections per origin (HTTP/1.1 persistent connections); `false` sends
   * `Connection: close` and opens one connection per request, like the original
   * crawler.
   *
   * @default {true}
   */
  keepAlive?: boolean;
  /**
   * The most idle connections kept per origin when `keepAlive` is on.
   *
   * @default {concurrency}
   */
  maxIdlePerOrigin?: number;
  /**
   * Decode `gzip`, `deflate` and `br` bodies.
   *
   * @default {true}
   */
  decompress?: boolean;
  /** Extra CA certificates (PEM) for https. */
  caCerts?: string[];
}

const MAX_REDIRECTS = 20;
const BODY_HEADERS = [
  "content-encoding",
  "content-language",
  "content-location",
  "content-type",
];
const CREDENTIAL_HEADERS = ["authorization", "cookie", "proxy-authorization"];
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

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
 * @param urls The URLs (strings or `URL`s).
 * @param options Concurrency, timeout, request and connection options.
 * @returns One result per URL, in input order.
 * @throws {TypeError} (as a rejection, before any connection) For an invalid
 *   method or header, or an unknown `redirect` mode.
 * @throws {RangeError} (as a rejection) For `concurrency` below 1 or not an
 *   integer, or a negative `timeout` or `maxResponseBytes`.
 */
export async function fetchAll(
  urls: Iterable<string | URL>,
  options: FetchAllOptions = {},
): Promise<FetchResult[]> {
  const list = Array.from(urls);
  const results = new Array<FetchResult>(list.length);
  // Batches, not entries: one await per selector batch rather than per URL.
  for await (const batch of new Crawl(options).batches(list)) {
    for (const { index, result } of batch) results[index] = result;
  }
  return results;
}

/**
 * Like {@linkcode fetchAll}, but yields each URL's result as soon as it is
 * finished, and pulls URLs from `urls` only as concurrency frees up: for crawls too
 * big to hold in memory. Breaking out of the loop closes every connection.
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
 * @param urls The URLs; any iterable, read lazily.
 * @param options As for {@linkcode fetchAll}.
 * @returns The finished URLs, in completion order.
 * @throws {TypeError} For invalid options, before any connection.
 * @throws {RangeError} For out-of-range options, before any connection.
 */
export function fetchEach(
  urls: Iterable<string | URL>,
  options: FetchAllOptions = {},
): AsyncGenerator<FetchEntry, void, undefined> {
  return entries(new Crawl(options).batches(urls));
}

async function* entries(
  batches: AsyncIterable<FetchEntry[]>,
): AsyncGenerator<FetchEntry, void, undefined> {
  for await (const batch of batches) yield* batch;
}

/** One URL in flight: its redirect chain runs as successive clients. */
class Job {
  /** The current hop's client; set by `Crawl.#launch`. */
  client!: HttpClient;
  /** The registration of the client's conn, once it has one. */
  slot: Slot | null = null;
  /** The headers of the current hop, once a redirect changed them. */
  headers: Headers | null = null;
  redirects = 0;
  finished = false;
  readonly started = performance.now();

  constructor(
    readonly crawl: Crawl,
    readonly index: number,
    readonly input: string,
  ) {}

  ready(mask: number): void {
    this.client.handle(mask);
    this.crawl.settle(this);
  }
}

/**
 * The selector data of one registered conn, for its whole life: the job using it,
 * or none while it waits in the keep-alive pool. Handing a conn from job to job
 * changes a field instead of calling `modify()`.
 */
class Slot {
  job: Job | null;
  events: number;
  /** The pool it waits in, while idle. */
  origin = "";

  constructor(
    readonly crawl: Crawl,
    readonly conn: PollableConn,
    job: Job,
    events: number,
  ) {
    this.job = job;
    this.events = events;
  }

  ready(mask: number): void {
    // An idle conn that becomes ready was closed by the server (or misbehaves).
    if (this.job === null) this.crawl.dropIdle(this);
    else this.job.ready(mask);
  }
}

class Crawl {
  readonly #sel = new Selector<Slot>();
  readonly #concurrency: number;
  readonly #timeout: number;
  readonly #redirect: "follow" | "manual" | "error";
  readonly #keepAlive: boolean;
  readonly #maxIdle: number;
  readonly #clientOptions: {
    method: string;
    headers: Headers;
    body: Uint8Array | null;
    maxResponseBytes: number;
    decompress: boolean;
    keepAlive: boolean;
    caCerts?: string[];
  };
  /** Encodes every request but redirects that change the method or headers. */
  readonly #writer: RequestWriter;
  readonly #signal: AbortSignal | undefined;
  readonly #onProgress: FetchAllOptions["onProgress"];

  /** Jobs in start order; all share one timeout, so deadlines are in order too. */
  #active: Job[] = [];
  #activeHead = 0;
  #running = 0;
  /** Idle keep-alive conns by origin, registered for `EVENT_READ`. */
  #idle = new Map<string, Slot[]>();
  #finished: FetchEntry[] = [];
  #done = 0;
  #total = 0;

  constructor(options: FetchAllOptions) {
    const concurrency = options.concurrency ?? 64;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(
        `Cannot fetch: concurrency must be a positive integer, received ${concurrency}`,
      );
    }
    this.#concurrency = concurrency;
    this.#timeout = nonNegative("timeout", options.timeout, 30_000);
    const redirect = options.redirect ?? "follow";
    if (
      redirect !== "follow" && redirect !== "manual" && redirect !== "error"
    ) {
      throw new TypeError(
        `Cannot fetch: redirect must be "follow", "manual" or "error", received "${redirect}"`,
      );
    }
    this.#redirect = redirect;
    this.#keepAlive = options.keepAlive ?? true;
    this.#maxIdle = nonNegative(
      "maxIdlePerOrigin",
      options.maxIdlePerOrigin,
      concurrency,
    );
    const body = options.body ?? null;
    this.#clientOptions = {
      method: validateMethod(options.method ?? "GET"),
      headers: normalizeHeaders(options.headers),
      body: typeof body === "string" ? new TextEncoder().encode(body) : body,
      maxResponseBytes: nonNegative(
        "maxResponseBytes",
        options.maxResponseBytes,
        Infinity,
      ),
      decompress: options.decompress ?? true,
      keepAlive: this.#keepAlive,
      ...(options.caCerts ? { caCerts: options.caCerts } : {}),
    };
    this.#writer = new RequestWriter(this.#clientOptions);
    this.#signal = options.signal;
    this.#onProgress = options.onProgress;
  }

  /** Runs the crawl, yielding what finished after each step, in completion order. */
  async *batches(urls: Iterable<string | URL>): AsyncGenerator<FetchEntry[]> {
    const sel = this.#sel;
    const signal = this.#signal;
    const onAbort = () => sel.close(); // a pending select() resolves [] at once
    signal?.addEventListener("abort", onAbort, { once: true });
    if (Array.isArray(urls)) this.#total = urls.length;
    const iterator = urls[Symbol.iterator]();
    let exhausted = false;
    let index = 0;
    try {
      while (true) {
        if (signal?.aborted) break;
        // onProgress may abort at any point: check before each step.
        while (
          !exhausted && this.#running < this.#concurrency && !signal?.aborted
        ) {
          const next = iterator.next();
          if (next.done) {
            exhausted = true;
            break;
          }
          this.#start(index++, next.value);
        }
        if (this.#finished.length > 0) {
          const finished = this.#finished;
          this.#finished = [];
          yield finished;
          continue;
        }
        if (this.#running === 0) break;
        const batch = await sel.select(this.#untilDeadline());
        for (const [key, mask] of batch) {
          if (signal?.aborted) break;
          key.data.ready(mask);
        }
        if (!signal?.aborted) this.#expire();
      }
      if (signal?.aborted) {
        // Unfinished URLs fail with the reason; so do those not started yet.
        for (let i = this.#activeHead; i < this.#active.length; i++) {
          const job = this.#active[i]!;
          if (job.finished) continue;
          job.client.close();
          this.#finish(job, {
            url: job.input,
            ok: false,
            error: signal.reason,
          });
        }
        this.#active = [];
        while (true) {
          const next = iterator.next();
          if (next.done) break;
          this.#finish(null, {
            url: String(next.value),
            ok: false,
            error: signal.reason,
          }, index++);
        }
        yield this.#finished;
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      for (let i = this.#activeHead; i < this.#active.length; i++) {
        const job = this.#active[i]!;
        if (!job.finished) job.client.close();
      }
      for (const list of this.#idle.values()) {
        for (const { conn } of list) conn.close();
      }
      this.#idle.clear();
      sel.close();
    }
  }

  /** Called by a job after each step: re-syncs its registration, or finishes it. */
  settle(job: Job): void {
    const client = job.client;
    const state = client.state;
    if (state === "done" && this.#redirect !== "manual") {
      const response = client.response!;
      if (REDIRECTS.has(response.status) && response.headers.has("location")) {
        this.#follow(job, response);
        return;
      }
    }
    if (state === "done" || state === "failed") {
      this.#release(job);
      this.#finish(
        job,
        state === "done"
          ? { url: job.input, ok: true, response: client.response! }
          : { url: job.input, ok: false, error: client.error },
      );
      return;
    }
    const conn = client.pollable;
    const events = client.events;
    const slot = job.slot;
    if (slot === null || slot.conn !== conn) {
      // A new conn, or a fresh one after a stale keep-alive conn failed.
      if (slot !== null) this.#sel.unregister(slot.conn);
      job.slot = new Slot(this, conn, job, events);
      this.#sel.register(conn, events, job.slot);
    } else if (slot.events !== events) {
      this.#sel.modify(conn, events, slot);
      slot.events = events;
    }
  }

  /** Closes and forgets an idle conn the server closed (or wrote to). */
  dropIdle(slot: Slot): void {
    const list = this.#idle.get(slot.origin)!;
    list.splice(list.indexOf(slot), 1);
    this.#sel.unregister(slot.conn);
    slot.conn.close();
  }

  #start(index: number, input: string | URL): void {
    const url = String(input);
    let target: URL;
    try {
      target = parseHttpUrl(input);
    } catch (error) {
      this.#finish(null, { url, ok: false, error }, index);
      return;
    }
    const job = new Job(this, index, url);
    this.#active.push(job);
    this.#running++;
    this.#launch(job, target, this.#timeout);
  }

  /**
   * Starts the job's next hop: on an idle conn to its origin if there is one,
   * sending at once (an idle conn has an empty write buffer, so it is writable),
   * else on a new conn registered for the connect.
   */
  #launch(
    job: Job,
    url: URL,
    timeout: number,
    overrides?: HttpClientOptions,
  ): void {
    const slot = this.#keepAlive
      ? this.#idle.get(url.origin)?.pop()
      : undefined;
    const options: InternalOptions = {
      ...this.#clientOptions,
      ...(overrides ?? { [kRequestWriter]: this.#writer }),
      timeout,
    };
    if (slot !== undefined) options.conn = slot.conn;
    try {
      job.client = new HttpClient(url, options);
    } catch (error) {
      if (slot !== undefined) this.#idle.get(url.origin)!.push(slot);
      this.#finish(job, { url: job.input, ok: false, error });
      return;
    }
    if (slot === undefined) {
      this.settle(job);
      return;
    }
    slot.job = job;
    job.slot = slot;
    job.ready(EVENT_WRITE);
  }

  #follow(job: Job, response: HttpResponse): void {
    const done = () => {
      this.#release(job);
      this.#finish(job, { url: job.input, ok: true, response });
    };
    if (this.#redirect === "error" || job.redirects >= MAX_REDIRECTS) {
      this.#release(job);
      this.#finish(job, {
        url: job.input,
        ok: false,
        error: new TypeError(
          this.#redirect === "error"
            ? `Cannot fetch: redirected to "${
              response.headers.get("location")
            }" with redirect "error"`
            : `Cannot fetch: more than ${MAX_REDIRECTS} redirects, last to "${
              response.headers.get("location")
            }"`,
        ),
      });
      return;
    }
    let target: URL;
    try {
      target = parseHttpUrl(
        new URL(response.headers.get("location")!, job.client.url),
      );
    } catch {
      done(); // an unusable Location: hand the 3xx back as fetch would not, but as curl does
      return;
    }
    const previous = job.client;
    const overrides: HttpClientOptions = {};
    let headers = job.headers ?? this.#clientOptions.headers;
    // RFC 9110 15.4: 303 (and 301/302 after POST) continue as a GET without body,
    // and fetch drops the body's headers with it.
    const method = previous.method;
    if (
      response.status === 303 && method !== "HEAD" ||
      (response.status === 301 || response.status === 302) && method === "POST"
    ) {
      overrides.method = "GET";
      overrides.body = null;
      headers = new Headers(headers);
      for (const name of BODY_HEADERS) headers.delete(name);
    }
    // Credentials do not follow a redirect to another origin (as in fetch).
    if (target.origin !== previous.url.origin) {
      headers = new Headers(headers);
      for (const name of CREDENTIAL_HEADERS) headers.delete(name);
    }
    overrides.headers = job.headers = headers;
    this.#release(job);
    job.redirects++;
    const remaining = job.started + this.#timeout - performance.now();
    if (remaining <= 0) {
      this.#finish(job, {
        url: job.input,
        ok: false,
        error: new Deno.errors.TimedOut(
          `Request timed out after ${this.#timeout} ms: ${target.href}`,
        ),
      });
      return;
    }
    this.#launch(job, target, remaining, overrides);
  }

  /** Unregisters a finished client's conn, or keeps it idle if reusable. */
  #release(job: Job): void {
    const slot = job.slot;
    job.slot = null;
    const reusable = this.#keepAlive ? job.client.detach() : null;
    if (reusable !== null) {
      const origin = job.client.url.origin;
      let list = this.#idle.get(origin);
      if (list === undefined) this.#idle.set(origin, list = []);
      if (
        slot !== null && slot.conn === reusable && list.length < this.#maxIdle
      ) {
        slot.job = null;
        slot.origin = origin;
        // It was receiving, so it is registered for EVENT_READ already.
        if (slot.events !== EVENT_READ) {
          this.#sel.modify(reusable, EVENT_READ, slot);
          slot.events = EVENT_READ;
        }
        list.push(slot);
        return;
      }
      reusable.close();
    }
    if (slot !== null) this.#sel.unregister(slot.conn);
  }

  #finish(job: Job | null, result: FetchResult, index = job?.index ?? 0): void {
    if (job !== null) {
      this.#running--;
      job.finished = true;
    }
    this.#done++;
    // Without an array the total is unknown: count what has started so far.
    this.#total = Math.max(this.#total, this.#done + this.#running);
    this.#finished.push({
      index,
      result,
      elapsed: job === null ? 0 : performance.now() - job.started,
    });
    this.#onProgress?.(this.#done, this.#total, result);
  }

  #untilDeadline(): number | undefined {
    this.#compact();
    const head = this.#active[this.#activeHead];
    if (head === undefined) return undefined;
    return Math.max(0, head.client.deadline - performance.now());
  }

  /** Times out the jobs past their deadline: they are at the head, in order. */
  #expire(): void {
    const now = performance.now();
    this.#compact();
    while (this.#activeHead < this.#active.length) {
      const job = this.#active[this.#activeHead]!;
      if (job.client.deadline > now) break;
      job.client.handle(0);
      this.settle(job);
      this.#compact();
    }
  }

  /** Drops finished jobs from the head of the active list. */
  #compact(): void {
    const active = this.#active;
    while (
      this.#activeHead < active.length &&
      active[this.#activeHead]!.finished
    ) this.#activeHead++;
    if (this.#activeHead > 1024 && this.#activeHead * 2 > active.length) {
      this.#active = active.slice(this.#activeHead);
      this.#activeHead = 0;
    }
  }
}
