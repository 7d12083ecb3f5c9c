/**
 * `fetchAll` and `fetchEach`: many HTTP requests on one selector.
 *
 * @module
 */
import { EVENT_READ } from "../selector/events.ts";
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

/** The outcome for one URL: a response, or why there is none. */
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

/** One finished URL, as {@linkcode fetchEach} yields it. */
export interface FetchEntry {
  /** The URL's position in the input. */
  index: number;
  /** The outcome. */
  result: FetchResult;
  /** Milliseconds from its first connect (or reuse) to its last byte, redirects included. */
  elapsed: number;
}

/** Options of {@linkcode fetchAll} and {@linkcode fetchEach}. */
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

/** What a selector key's data is in the crawl loop. */
interface Handler {
  ready(mask: number): void;
}

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
  for await (const { index, result } of fetchEach(list, options)) {
    results[index] = result;
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
  const crawl = new Crawl(options);
  return crawl.run(urls);
}

/** One URL in flight: its redirect chain runs as successive clients. */
class Job implements Handler {
  client: HttpClient;
  /** The headers of the current hop, once a redirect changed them. */
  headers: Headers | null = null;
  registered: PollableConn | null = null;
  events = 0;
  redirects = 0;
  finished = false;
  readonly started = performance.now();

  constructor(
    readonly crawl: Crawl,
    readonly index: number,
    readonly input: string,
    client: HttpClient,
  ) {
    this.client = client;
  }

  ready(mask: number): void {
    this.client.handle(mask);
    this.crawl.settle(this);
  }
}

/** An idle keep-alive conn: any readiness means the server closed it or misbehaved. */
class Idle implements Handler {
  constructor(
    readonly crawl: Crawl,
    readonly origin: string,
    readonly conn: PollableConn,
  ) {}

  ready(): void {
    this.crawl.dropIdle(this);
  }
}

class Crawl {
  readonly #sel = new Selector<Handler>();
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
  #idle = new Map<string, Idle[]>();
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

  async *run(urls: Iterable<string | URL>): AsyncGenerator<FetchEntry> {
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
        while (!exhausted && this.#running < this.#concurrency) {
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
          yield* finished;
          continue;
        }
        if (this.#running === 0) break;
        const batch = await sel.select(this.#untilDeadline());
        for (const [key, mask] of batch) key.data.ready(mask);
        this.#expire();
      }
      if (signal?.aborted) {
        // Unfinished URLs fail with the reason; so do those not started yet.
        for (let i = this.#activeHead; i < this.#active.length; i++) {
          const job = this.#active[i]!;
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
        yield* this.#finished;
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      for (let i = this.#activeHead; i < this.#active.length; i++) {
        this.#active[i]!.client.close();
      }
      for (const idle of this.#idle.values()) {
        for (const { conn } of idle) conn.close();
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
    if (job.registered !== conn) {
      if (job.registered !== null) this.#sel.unregister(job.registered);
      this.#sel.register(conn, events, job);
      job.registered = conn;
      job.events = events;
    } else if (job.events !== events) {
      this.#sel.modify(conn, events, job);
      job.events = events;
    }
  }

  /** Closes and forgets an idle conn the server closed (or wrote to). */
  dropIdle(idle: Idle): void {
    const list = this.#idle.get(idle.origin);
    const i = list?.indexOf(idle) ?? -1;
    if (i >= 0) list!.splice(i, 1);
    this.#sel.unregister(idle.conn);
    idle.conn.close();
  }

  #start(index: number, input: string | URL): void {
    const url = String(input);
    let client: HttpClient;
    try {
      client = this.#client(parseHttpUrl(input), this.#timeout);
    } catch (error) {
      this.#finish(null, { url, ok: false, error }, index);
      return;
    }
    const job = new Job(this, index, url, client);
    this.#adopt(job);
    this.#active.push(job);
    this.#running++;
    this.settle(job);
  }

  /** A client for `url`, on an idle conn to its origin if there is one. */
  #client(
    url: URL,
    timeout: number,
    overrides?: HttpClientOptions,
  ): HttpClient {
    const idle = this.#keepAlive
      ? this.#idle.get(url.origin)?.pop()
      : undefined;
    const options: InternalOptions = {
      ...this.#clientOptions,
      ...(overrides ?? { [kRequestWriter]: this.#writer }),
      timeout,
    };
    if (idle) options.conn = idle.conn;
    return new HttpClient(url, options);
  }

  /** If the job's client reuses an idle conn, that conn is registered already. */
  #adopt(job: Job): void {
    const conn = job.client.pollable;
    if (this.#sel.getMap().has(conn)) {
      job.registered = conn;
      job.events = EVENT_READ;
    }
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
    try {
      job.client = this.#client(target, remaining, overrides);
    } catch (error) {
      this.#finish(job, { url: job.input, ok: false, error });
      return;
    }
    this.#adopt(job);
    this.settle(job);
  }

  /** Unregisters a finished client's conn, and keeps it idle if reusable. */
  #release(job: Job): void {
    const conn = job.registered;
    job.registered = null;
    job.events = 0;
    const reusable = this.#keepAlive ? job.client.detach() : null;
    if (reusable !== null && reusable === conn) {
      const origin = job.client.url.origin;
      let list = this.#idle.get(origin);
      if (list === undefined) this.#idle.set(origin, list = []);
      if (list.length < this.#maxIdle) {
        const idle = new Idle(this, origin, reusable);
        list.push(idle);
        this.#sel.modify(reusable, EVENT_READ, idle);
        return;
      }
      reusable.close();
    }
    if (conn !== null) this.#sel.unregister(conn);
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
