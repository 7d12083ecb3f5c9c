/**
 * The crawl CLI's frontier for `--follow`: which URLs are still to fetch, which were
 * seen, how deep each one is, and which origins the crawl may enter.
 *
 * @module
 */
import { normalizeLink, normalizeUrl } from "./links.ts";

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
   * in memory. Each seed's origin becomes an allowed origin, and its host a
   * named one (see {@linkcode Frontier.redirect}).
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
   * `scheme://host[:port]` or any URL of that origin. Their hosts are named
   * ones too (see {@linkcode Frontier.redirect}).
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
 * Each origin's entries come out in the order they were queued; across origins,
 * those of the origin with the fewest entries handed out and not yet done come
 * first. The engine reads its source only so far ahead, so a slow origin (a
 * long `Crawl-delay`, a `Retry-After`) whose URLs filled that window would set
 * every origin's pace; here they wait in the frontier instead, and each origin
 * with URLs to fetch keeps a share of the window. The share is of the window,
 * not of the requests in flight: an origin whose answers are slow holds its
 * entries longer, so while others wait it gets fewer at once.
 *
 * Contract with the consumer: every entry handed out is "in flight" until
 * {@linkcode Frontier.done} is called for it, after its links were added. While the
 * queue is empty and entries are in flight, iteration waits (their links may refill
 * it); it ends when the queue is empty, the seeds are used up and nothing is in
 * flight, or at once after {@linkcode Frontier.close}.
 *
 * Memory: the set of URLs seen grows with the crawl (one string per distinct URL);
 * the queues hold the links found and not yet handed out (and, per origin, up to
 * as many again, or 16, handed out: they are dropped in bulk).
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
  /** The origins with entries queued or handed out. */
  #queues = new Map<string, OriginQueue>();
  /**
   * The origins with entries queued, a heap: fewest handed out and not done
   * first, then the one whose next entry was queued first. A node is stale once
   * its queue's `version` moved on.
   */
  #heap: Ranked[] = [];
  /** Entries queued so far: each one's place in the order of queueing. */
  #sequence = 0;
  #queued = 0;
  /** Each entry handed out, with its origin's queue. */
  #handedOut = new WeakMap<FrontierEntry, OriginQueue>();
  #seen = new Set<string>();
  #origins = new Set<string>();
  /** The seeds' and `origins`' hosts, each without a leading `www.`. */
  #hosts = new Set<string>();
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
      const allowed = originOf(origin);
      this.#origins.add(allowed);
      this.#hosts.add(siteHost(allowed));
    }
    const seeds = options.seeds ?? [];
    this.#seeds = Symbol.asyncIterator in seeds
      ? seeds[Symbol.asyncIterator]()
      : seeds[Symbol.iterator]();
  }

  /** How many entries wait in the queue. */
  get queued(): number {
    return this.#queued;
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
   * Queues a seed (depth 0), allows its origin and names its host. A seed's
   * user name and password stay in its entry's URL (they are the operator's),
   * but it is seen as the URL without them: `http://u:p@h.test/` and a link
   * to `/` on its page are one page, fetched once.
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
    const key = normalizeLink(normalized)!;
    // Fetched already as an earlier seed's redirect target, on a host no seed
    // had named yet (seeds are read lazily), so not crawled: it is now.
    if (!this.allows(key)) this.#seen.delete(key);
    this.#origins.add(new URL(key).origin);
    this.#hosts.add(siteHost(key));
    return this.#enqueue(normalized, 0, undefined, 0, true, key);
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
    // A link seen already, as the extractor gives it (normalised, which a
    // second normalisation keeps): dropped without parsing it again.
    if (typeof url === "string" && this.#seen.has(url)) return undefined;
    const normalized = normalizeLink(url, from.url);
    if (
      normalized === null ||
      (this.#sameOrigin && !this.#origins.has(hrefOrigin(normalized)))
    ) return undefined;
    return this.#enqueue(normalized, from.depth + 1, from.url, 0, false);
  }

  /**
   * Queues where `from`'s response redirected to (its `Location`), at `from`'s
   * depth: a redirect is the same page moved, not a link. It is in scope as a
   * link would be, except after a seed (depth 0: a seed, or where a seed's
   * redirects led), whose redirect is queued wherever it leads, once. Its
   * target's origin then becomes an allowed one if its host is a named one (a
   * seed's or an `origins` entry's), compared without a leading `www.`, so
   * that `http://a.test/` moving to `https://www.a.test:8443/` does not end
   * the crawl. Any other target is fetched but not crawled, as `wget -r`
   * does: its links to its origin are dropped as out of scope, and a further
   * redirect of it is judged by the same rule (against the named hosts, not
   * its own: `a.test` to `evil.test` to `www.evil.test` allows neither). As
   * seeds are read lazily, a host may be named after a target on it was
   * fetched so: that URL is queued again, to be crawled, when it comes again
   * (as a seed, or as a seed's redirect). The crawl asks the target's
   * robots.txt like any entry's.
   *
   * @param location The `Location`, absolute or relative to `from.url`.
   * @param from The entry whose response redirected.
   * @param keepsRequest Whether the redirect repeats the request as it was (a
   * 307 or 308, RFC 9110 §15.4.8): the new entry is a `seedRequest` one if
   * `from` is.
   * @returns The new entry, or `undefined` when it is dropped: seen before, not
   * http(s), on an origin not allowed (but after a seed), or past
   * {@linkcode MAX_REDIRECTS} in a row.
   */
  redirect(
    location: string,
    from: FrontierEntry,
    keepsRequest = false,
  ): FrontierEntry | undefined {
    if (from.redirects >= MAX_REDIRECTS) return undefined;
    const normalized = this.redirectTarget(location, from);
    if (normalized === null) return undefined;
    // Depth 0: a seed, or where a seed's redirects led.
    if (from.depth === 0) {
      // Seen only if fetched but not crawled, its host named since: again.
      this.#seen.delete(normalized);
      if (this.#hosts.has(siteHost(normalized))) {
        this.#origins.add(new URL(normalized).origin);
      }
    }
    return this.#enqueue(
      normalized,
      from.depth,
      from.url,
      from.redirects + 1,
      keepsRequest && from.seedRequest,
    );
  }

  /**
   * Where {@linkcode Frontier.redirect} would queue `from`'s `Location` but
   * for the limit of redirects in a row, without queueing it: `null` where it
   * would drop it anyway (seen before, not http(s), out of scope).
   *
   * @param location The `Location`, absolute or relative to `from.url`.
   * @param from The entry whose response redirected.
   * @returns The normalised URL, or `null`.
   */
  redirectTarget(location: string, from: FrontierEntry): string | null {
    const normalized = normalizeLink(location, from.url);
    if (normalized === null || this.#closed) return null;
    if (!this.#seen.has(normalized)) {
      return from.depth === 0 || this.allows(normalized) ? normalized : null;
    }
    // Seen: again only a seed's redirect target fetched but not crawled (its
    // origin not allowed) whose host a seed has named since.
    return from.depth === 0 && !this.allows(normalized) &&
        this.#hosts.has(siteHost(normalized))
      ? normalized
      : null;
  }

  /**
   * Records a URL as seen without queueing it: the final URL of a redirect, so that
   * links to it are not fetched again.
   *
   * @param url An absolute URL.
   * @returns `true` when it was not seen before.
   */
  markSeen(url: string | URL): boolean {
    // Without credentials, as links and seeds are seen.
    const normalized = normalizeLink(url);
    if (normalized === null || this.#seen.has(normalized)) return false;
    this.#seen.add(normalized);
    return true;
  }

  /**
   * Whether links may lead to this URL's origin.
   *
   * @param url An absolute URL.
   * @returns `true` for a seed's origin, an `origins` entry, one a seed's
   * redirect led to on a named host (see {@linkcode Frontier.redirect}), or any
   * origin when `sameOrigin` is `false`.
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
   * @param entry The entry.
   * @throws {RangeError} When more entries are marked done than were handed out.
   */
  done(entry: FrontierEntry): void {
    if (this.#inFlight === 0) {
      throw new RangeError("Cannot mark entry done: no entry is in flight");
    }
    this.#inFlight--;
    const queue = this.#handedOut.get(entry);
    if (queue !== undefined) {
      this.#handedOut.delete(entry);
      queue.out--;
      if (queue.head < queue.entries.length) this.#rank(queue);
      else if (queue.out === 0) this.#queues.delete(queue.origin);
    }
    this.#signal();
  }

  /** Ends iteration at once (Ctrl-C); later `seed`/`add` calls are ignored. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#signal();
  }

  /**
   * Hands out queued entries, in the order the class doc says, and when it
   * waits and when it ends.
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<
    FrontierEntry,
    void,
    undefined
  > {
    try {
      while (!this.#closed) {
        if (this.#queued > 0) {
          const entry = this.#take();
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
    key = url,
  ) {
    if (this.#closed || this.#seen.has(key)) return undefined;
    this.#seen.add(key);
    const entry: FrontierEntry = {
      url,
      depth,
      referrer,
      redirects,
      seedRequest,
    };
    const origin = hrefOrigin(url);
    let queue = this.#queues.get(origin);
    if (queue === undefined) {
      queue = {
        origin,
        entries: [],
        sequence: [],
        head: 0,
        out: 0,
        version: 0,
      };
      this.#queues.set(origin, queue);
    }
    queue.entries.push(entry);
    queue.sequence.push(this.#sequence++);
    this.#queued++;
    if (queue.entries.length - queue.head === 1) this.#rank(queue);
    this.#signal();
    return entry;
  }

  /** (Re)places an origin with entries queued in the heap. */
  #rank(queue: OriginQueue): void {
    const heap = this.#heap;
    // Stale nodes sink below the live ones only so far: past a bound, rebuild.
    if (heap.length > 64 + 4 * this.#queues.size) {
      const live = heap.filter((node) => node.version === node.queue.version);
      heap.length = 0;
      for (const node of live) heapPush(heap, node);
    }
    heapPush(heap, {
      queue,
      out: queue.out,
      sequence: queue.sequence[queue.head]!,
      version: ++queue.version,
    });
  }

  /** The next entry of the origin first in the heap (some are queued). */
  #take(): FrontierEntry {
    let node = heapPop(this.#heap)!;
    while (node.version !== node.queue.version) node = heapPop(this.#heap)!;
    const queue = node.queue;
    queue.version++;
    const entry = queue.entries[queue.head++]!;
    // Dropping the consumed head in bulk keeps shift() from being O(n) per entry.
    if (queue.head === queue.entries.length) {
      queue.entries.length = queue.sequence.length = queue.head = 0;
    } else if (queue.head > 16 && queue.head * 2 > queue.entries.length) {
      queue.entries = queue.entries.slice(queue.head);
      queue.sequence = queue.sequence.slice(queue.head);
      queue.head = 0;
    }
    this.#queued--;
    queue.out++;
    this.#handedOut.set(entry, queue);
    if (queue.head < queue.entries.length) this.#rank(queue);
    return entry;
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}

/** One origin's entries in the frontier. */
interface OriginQueue {
  readonly origin: string;
  /** Queued entries from `head` on (those before it were handed out). */
  entries: FrontierEntry[];
  /** Each entry's place in the frontier's order of queueing. */
  sequence: number[];
  head: number;
  /** Its entries handed out and not yet done. */
  out: number;
  /** Bumped as it moves in the heap or leaves it. */
  version: number;
}

/** An origin's place in the heap when it was put there. */
interface Ranked {
  readonly queue: OriginQueue;
  readonly out: number;
  readonly sequence: number;
  readonly version: number;
}

function before(a: Ranked, b: Ranked): boolean {
  return a.out < b.out || (a.out === b.out && a.sequence < b.sequence);
}

function heapPush(heap: Ranked[], node: Ranked): void {
  let i = heap.length;
  heap.push(node);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!before(node, heap[parent]!)) break;
    heap[i] = heap[parent]!;
    i = parent;
  }
  heap[i] = node;
}

function heapPop(heap: Ranked[]): Ranked | undefined {
  const top = heap[0];
  const last = heap.pop();
  if (top === undefined || last === undefined || heap.length === 0) return top;
  let i = 0;
  for (;;) {
    const left = 2 * i + 1;
    if (left >= heap.length) break;
    const right = left + 1;
    const child = right < heap.length && before(heap[right]!, heap[left]!)
      ? right
      : left;
    if (!before(heap[child]!, last)) break;
    heap[i] = heap[child]!;
    i = child;
  }
  heap[i] = last;
  return top;
}

/**
 * The origin of an href as {@linkcode normalizeUrl} gives it (http or https,
 * "scheme://authority/path"): what `new URL(href).origin` says, without
 * parsing it again (once per link found) but for one with credentials.
 */
function hrefOrigin(href: string): string {
  const start = href.indexOf("//") + 2;
  const end = href.indexOf("/", start);
  const at = href.indexOf("@", start);
  return at >= 0 && at < end ? new URL(href).origin : href.slice(0, end);
}

/** A URL's host without a leading `www.`: `www.a.test` and `a.test` are one site. */
function siteHost(url: string): string {
  const host = new URL(url).hostname;
  return host.startsWith("www.") ? host.slice(4) : host;
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
