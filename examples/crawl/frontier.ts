/**
 * The crawl CLI's frontier for `--follow`: which URLs are still to fetch, which were
 * seen, how deep each one is, and which origins the crawl may enter.
 *
 * @module
 */
import { normalizeUrl } from "./links.ts";

/** A URL the frontier hands out, with where it was found. */
export interface FrontierEntry {
  /** The normalised URL to fetch. */
  readonly url: string;
  /** 0 for a seed, 1 for a link on a seed's page, and so on. */
  readonly depth: number;
  /** The page the link was found on, or that redirected here (`undefined` for a seed). */
  readonly referrer: string | undefined;
  /** How many redirects led here from the last page fetched for its links. */
  readonly redirects: number;
  /**
   * `true` for a seed, and for where its redirects led while each one kept the
   * request (see {@linkcode Frontier.redirect}): a crawl sends these the seed's
   * request (method and body), and every other entry a `GET`.
   */
  readonly seedRequest: boolean;
}

/** Redirects followed in a row from one page, at most (as `fetchAll`'s own). */
export const MAX_REDIRECTS = 20;

/** Options of {@linkcode Frontier}. */
export interface FrontierOptions {
  /**
   * Where to start: URLs (strings or `URL`s), pulled lazily: one more seed is taken
   * only when no discovered link is waiting, so a long list of seeds is never held
   * in memory. Each seed's origin becomes an allowed origin.
   *
   * @default {[]}
   */
  seeds?: Iterable<string | URL> | AsyncIterable<string | URL>;
  /**
   * Deepest link followed: links found on a page of depth `maxDepth` are dropped.
   *
   * @default {Infinity}
   */
  maxDepth?: number;
  /**
   * Origins links may lead to besides the seeds' origins (`--origin`), as
   * `scheme://host[:port]` or any URL of that origin.
   *
   * @default {[]}
   */
  origins?: Iterable<string | URL>;
  /**
   * `false` lets links lead to any origin.
   *
   * @default {true}
   */
  sameOrigin?: boolean;
  /**
   * Called with a seed that is not an http(s) URL, which is dropped: a caller
   * reports it as the failure it is.
   */
  onInvalidSeed?: (seed: string | URL) => void;
}

/**
 * A breadth-first frontier: seeds and the links found on fetched pages go in,
 * deduplicated (after {@linkcode normalizeUrl}) and filtered by depth and origin;
 * entries come out through async iteration, to feed `fetchEach` as its source.
 *
 * Contract with the consumer: every entry handed out is "in flight" until
 * {@linkcode Frontier.done} is called for it, after its links were added. While the
 * queue is empty and entries are in flight, iteration waits (their links may refill
 * it); it ends when the queue is empty, the seeds are used up and nothing is in
 * flight, or at once after {@linkcode Frontier.close}.
 *
 * Memory: the set of URLs seen grows with the crawl (one string per distinct URL);
 * the queue holds the links found and not yet handed out.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Frontier } from "./frontier.ts";
 *
 * const frontier = new Frontier({ seeds: ["http://a.test/"], maxDepth: 1 });
 * const fetched = [];
 * for await (const entry of frontier) {
 *   fetched.push(`${entry.depth} ${entry.url}`);
 *   // What fetching entry.url and extracting its links would give:
 *   for (const link of ["/x", "/x#top", "http://b.test/", "/"]) {
 *     frontier.add(new URL(link, entry.url), entry);
 *   }
 *   frontier.done(entry);
 * }
 * assertEquals(fetched, ["0 http://a.test/", "1 http://a.test/x"]);
 * ```
 */
export class Frontier implements AsyncIterable<FrontierEntry> {
  #queue: FrontierEntry[] = [];
  #head = 0;
  #seen = new Set<string>();
  #origins = new Set<string>();
  #sameOrigin: boolean;
  #maxDepth: number;
  #seeds: AsyncIterator<string | URL> | Iterator<string | URL> | null;
  #inFlight = 0;
  #closed = false;
  #wake: (() => void) | null = null;
  #onInvalidSeed: ((seed: string | URL) => void) | undefined;

  /**
   * Creates an empty frontier; seeds are pulled when iteration starts.
   *
   * @param options Seeds, depth and origin limits.
   * @throws {RangeError} When `maxDepth` is negative or not an integer.
   * @throws {TypeError} When an entry of `origins` is not a URL.
   */
  constructor(options: FrontierOptions = {}) {
    const maxDepth = options.maxDepth ?? Infinity;
    if (
      maxDepth !== Infinity && (!Number.isInteger(maxDepth) || maxDepth < 0)
    ) {
      throw new RangeError(
        `Cannot create frontier: maxDepth must be a non-negative integer, got ${maxDepth}`,
      );
    }
    this.#maxDepth = maxDepth;
    this.#sameOrigin = options.sameOrigin ?? true;
    this.#onInvalidSeed = options.onInvalidSeed;
    for (const origin of options.origins ?? []) {
      this.#origins.add(originOf(origin));
    }
    const seeds = options.seeds ?? [];
    this.#seeds = Symbol.asyncIterator in seeds
      ? seeds[Symbol.asyncIterator]()
      : seeds[Symbol.iterator]();
  }

  /** How many entries wait in the queue. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /** How many entries were handed out and not yet marked done. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** How many distinct URLs were accepted so far (queued, in flight or done). */
  get seen(): number {
    return this.#seen.size;
  }

  /**
   * Queues a seed (depth 0) and allows its origin.
   *
   * @param url An absolute URL.
   * @returns The new entry, or `undefined` when the URL was seen before or is not
   * http(s).
   */
  seed(url: string | URL): FrontierEntry | undefined {
    const normalized = normalizeUrl(url);
    if (normalized === null) {
      this.#onInvalidSeed?.(url);
      return undefined;
    }
    this.#origins.add(new URL(normalized).origin);
    return this.#enqueue(normalized, 0, undefined, 0, true);
  }

  /**
   * Queues a link found on the page of `from`.
   *
   * @param url The link, absolute or relative to `from.url`.
   * @param from The entry whose page held the link.
   * @returns The new entry, or `undefined` when the link is dropped: seen before,
   * not http(s), deeper than `maxDepth`, or on an origin not allowed.
   */
  add(url: string | URL, from: FrontierEntry): FrontierEntry | undefined {
    if (from.depth + 1 > this.#maxDepth) return undefined;
    const normalized = normalizeUrl(url, from.url);
    if (normalized === null || !this.allows(normalized)) return undefined;
    return this.#enqueue(normalized, from.depth + 1, from.url, 0, false);
  }

  /**
   * Queues where `from`'s response redirected to (its `Location`), at `from`'s
   * depth: a redirect is the same page moved, not a link. It is in scope as a
   * link would be, except that a seed's redirect makes its target's origin an
   * allowed one, as a seed's (`http://a.test/` moving to
   * `https://www.a.test/` must not end the crawl). The crawl then asks the
   * target's robots.txt like any entry's.
   *
   * @param location The `Location`, absolute or relative to `from.url`.
   * @param from The entry whose response redirected.
   * @param keepsRequest Whether the redirect repeats the request as it was (a
   * 307 or 308, RFC 9110 §15.4.8): the new entry is a `seedRequest` one if
   * `from` is.
   * @returns The new entry, or `undefined` when it is dropped: seen before, not
   * http(s), on an origin not allowed, or past {@linkcode MAX_REDIRECTS} in a row.
   */
  redirect(
    location: string,
    from: FrontierEntry,
    keepsRequest = false,
  ): FrontierEntry | undefined {
    if (from.redirects >= MAX_REDIRECTS) return undefined;
    const normalized = normalizeUrl(location, from.url);
    if (normalized === null) return undefined;
    // Depth 0: a seed, or where a seed's redirects led.
    if (from.depth === 0) {
      if (this.#closed || this.#seen.has(normalized)) return undefined;
      this.#origins.add(new URL(normalized).origin);
    } else if (!this.allows(normalized)) return undefined;
    return this.#enqueue(
      normalized,
      from.depth,
      from.url,
      from.redirects + 1,
      keepsRequest && from.seedRequest,
    );
  }

  /**
   * Records a URL as seen without queueing it: the final URL of a redirect, so that
   * links to it are not fetched again.
   *
   * @param url An absolute URL.
   * @returns `true` when it was not seen before.
   */
  markSeen(url: string | URL): boolean {
    const normalized = normalizeUrl(url);
    if (normalized === null || this.#seen.has(normalized)) return false;
    this.#seen.add(normalized);
    return true;
  }

  /**
   * Whether links may lead to this URL's origin.
   *
   * @param url An absolute URL.
   * @returns `true` for a seed's origin, an `origins` entry, or any origin when
   * `sameOrigin` is `false`.
   */
  allows(url: string | URL): boolean {
    if (!this.#sameOrigin) return true;
    try {
      return this.#origins.has(new URL(url).origin);
    } catch {
      return false;
    }
  }

  /**
   * Marks an entry handed out as finished (fetched or failed, its links added).
   *
   * @param _entry The entry.
   * @throws {RangeError} When more entries are marked done than were handed out.
   */
  done(_entry: FrontierEntry): void {
    if (this.#inFlight === 0) {
      throw new RangeError("Cannot mark entry done: no entry is in flight");
    }
    this.#inFlight--;
    this.#signal();
  }

  /** Ends iteration at once (Ctrl-C); later `seed`/`add` calls are ignored. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#signal();
  }

  /**
   * Hands out queued entries, in the order they were queued; see the class doc for
   * when it waits and when it ends.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<
    FrontierEntry,
    void,
    undefined
  > {
    try {
      while (!this.#closed) {
        if (this.queued > 0) {
          const entry = this.#queue[this.#head]!;
          this.#head++;
          this.#compact();
          this.#inFlight++;
          yield entry;
          continue;
        }
        if (this.#seeds !== null) {
          const next = await this.#seeds.next();
          if (next.done) this.#seeds = null;
          else this.seed(next.value);
          continue;
        }
        if (this.#inFlight === 0) return;
        const { promise, resolve } = Promise.withResolvers<void>();
        this.#wake = resolve;
        await promise;
      }
    } finally {
      await this.#seeds?.return?.();
      this.#seeds = null;
    }
  }

  #enqueue(
    url: string,
    depth: number,
    referrer: string | undefined,
    redirects: number,
    seedRequest: boolean,
  ) {
    if (this.#closed || this.#seen.has(url)) return undefined;
    this.#seen.add(url);
    const entry: FrontierEntry = {
      url,
      depth,
      referrer,
      redirects,
      seedRequest,
    };
    this.#queue.push(entry);
    this.#signal();
    return entry;
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  // Dropping the consumed head in bulk keeps shift() from being O(n) per entry.
  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }
}

function originOf(origin: string | URL): string {
  try {
    const url = new URL(origin);
    if (url.origin === "null") throw new TypeError("opaque origin");
    return url.origin;
  } catch {
    throw new TypeError(`Cannot create frontier: invalid origin '${origin}'`);
  }
}
