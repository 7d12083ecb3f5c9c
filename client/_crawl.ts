/**
 * The crawl loop behind `fetchAll` and `fetchEach`: many {@linkcode HttpClient}s
 * on one selector. It reads top down as the loop runs:
 *
 * 1. **pull**: read URLs from the source while fewer than `concurrency +
 *    maxQueued` are open, and queue each on its origin;
 * 2. **start**: start what the scheduler lets start now;
 * 3. **select**: wait for readiness, or the earliest deadline of the crawl's one
 *    deadline queue;
 * 4. **dispatch**: step each ready client, then re-sync its registration and its
 *    deadline (**after-step**), or end its attempt: follow a redirect, retry, or
 *    **finish** the URL;
 * 5. **expire**: time out clients past their deadline, wake origins and retries
 *    whose wait is over.
 *
 * Policies live elsewhere and are pure: redirects in `_redirect.ts`, retries and
 * backoff in `_retry.ts`, per-origin queues in `_scheduler.ts`, the keep-alive
 * pool in `_pool.ts`, the deadline heap in `_deadlines.ts`.
 *
 * Abort is a flag (`signal.aborted`) the loop checks between steps; the abort
 * listener only wakes a pending `select()`, so nothing is ever torn down from
 * inside a callback (std's `abortable` is the model).
 *
 * @module
 */
import { EVENT_READ, EVENT_WRITE } from "../selector/events.ts";
import { kCloseNow, kReady, kResume } from "../selector/_pollable.ts";
import { ignoreRejection, isShortage, isThenable } from "../selector/_util.ts";
import type { PollableConn } from "../selector/pollable_conn.ts";
import { Selector } from "../selector/selector.ts";
import type { SelectorKey } from "../selector/selector_key.ts";
import type {
  CrawlSource,
  FetchAllOptions,
  FetchEntry,
  FetchResult,
  FetchTimings,
  RequestSpec,
} from "./fetch_all.ts";
import {
  clientFor,
  firstField,
  type HttpClient,
  type HttpResponse,
  type InternalOptions,
  kDetach,
  kFailedHead,
  kForget,
  kIdleWhileWaiting,
  kKeepAliveTimeout,
  kMetClosedConn,
  kReuse,
  kRoute,
  kStamps,
  kTotalDeadline,
  kTotalLimit,
  kTransport,
  kUnreadMayWait,
  kWake,
} from "./http_client.ts";
import { type HttpUrl, toHttpUrl } from "./_http_url.ts";
import {
  callerProxyAuthorization,
  kDivertSink,
  kRequestWriter,
} from "./_request.ts";
import { hash64 } from "./_proxy.ts";
import type { ResponseHead } from "./_response_parser.ts";
import { type Route, routeFor } from "./_route.ts";
import {
  checkArrayBodies,
  type CrawlConfig,
  crawlConfig,
  kSinkFactory,
  type RequestOptions,
  specOptions,
} from "./_crawl_options.ts";
import { freeze, loopNow, refresh, thaw } from "./_clock.ts";
import { DeadlineQueue, type Timed } from "./_deadlines.ts";
import { IdlePool, type Poolable } from "./_pool.ts";
import { redactInput, redactUrl, textOf, typeName } from "./_redact.ts";
import {
  type HopRequest,
  MAX_REDIRECTS,
  nextHop,
  type StopReason,
} from "./_redirect.ts";
import {
  IDEMPOTENT_METHODS,
  originPause,
  proxyRetryAfter,
  retryDelay,
} from "./_retry.ts";
import { ProxyError } from "./proxy_error.ts";
import { Fifo, type Origin, Scheduler } from "./_scheduler.ts";
import { keepSpecimens, refreshSpecimens, specimenConn } from "./_specimens.ts";

/** One URL read from the source, from then until its result. */
class Job implements Timed {
  due = 0;
  heapIndex = -1;
  /** The current attempt's client, `null` between attempts and once finished. */
  client: HttpClient | null = null;
  /** The registration of the client's conn, once it has one. */
  slot: Slot | null = null;
  /** Its origin's queue, while queued or running. */
  origin: Origin<Job> | null = null;
  /** The idle pool's key of the current hop's conn: its origin, or its route's key. */
  poolKey = "";
  /** The current hop's request once a redirect changed it; `null` on the first hop. */
  hop: HopRequest | null = null;
  hops = 0;
  attempts = 0;
  /** Queued in the deadline queue for the end of a retry's backoff, not for a timeout. */
  backingOff = false;
  /**
   * The URL of a redirect's hop while it waits in its origin's queue (the
   * deadline queue holds the job for the end of the attempt's time, and the
   * hop starts in the same attempt); `null` otherwise.
   */
  hopUrl: HttpUrl | null = null;
  /** Holds one of the scheduler's slots (taken, not yet released). */
  running = false;
  /** The delay its origin took at the hop's start: the least gap after its send. */
  delay = 0;
  /**
   * With a politeness delay: the real clock when the hop's request was last
   * sent, and the client's stamp for that send (NaN before it).
   */
  sentAt = NaN;
  sentStamp = NaN;
  /** Its result is out: nothing may end it again. */
  done = false;
  /** Its hop waits in `#awaitingConn` for a conn under check; its deadline stays armed. */
  awaitingConn = false;
  /**
   * Its new conn is up and its request held until its origin's delay after
   * the last one sent (the deadline queue holds it until then).
   */
  sendHold = false;
  /** Until when, while `sendHold` (its own deadline may come first). */
  holdUntil = 0;
  /**
   * When the current hop's new conn came up, if its request was held: the
   * hold is no part of its connect time (`NaN` otherwise).
   */
  upAt = NaN;
  /** Its current hop goes straight to the server (no proxy, no Unix socket). */
  direct = true;
  /**
   * It waits in `#fdWaiters` since `fdSince` for a descriptor (`ulimit -n`),
   * keeping its slot: its connect failed for want of one, or it needs a new
   * conn while others wait. Nothing was sent, so the wait is no attempt.
   */
  awaitingFd = false;
  fdSince = 0;
  /**
   * When the attempt first waited for a descriptor (NaN before): its waits
   * together last at most its timeout.
   */
  fdFirst = NaN;
  /**
   * Its origin's `nextStart` as its own start set it: a waiter is not held
   * back by its own reservation (nothing of it reached the server).
   */
  ownStart = NaN;
  /** The URL its current hop went to: `url`, or a redirect's. */
  launched: HttpUrl | null = null;
  /**
   * While the crawl writes a body kept out of the sink into it (the response
   * turned out to be the last), that write's writer and the result it ends
   * with; its deadline stays armed.
   */
  sinkWrite: {
    writer: WritableStreamDefaultWriter<Uint8Array>;
    result: FetchResult;
  } | null = null;
  /** Waiting for a slot (queued on its origin, or backing off) since `waitingSince`. */
  queuedNow = true;
  /** When it last began waiting for a slot. */
  waitingSince = 0;
  /** Milliseconds spent waiting for slots so far. */
  queued = 0;
  /** When the first attempt started, and the current one. */
  started = NaN;
  attemptStarted = NaN;
  /** The open-jobs list, in read order. */
  prev: Job | null = null;
  next: Job | null = null;

  constructor(
    readonly index: number,
    /** `result.url`: the input as given, password hidden. */
    readonly shown: string,
    readonly data: unknown,
    readonly url: HttpUrl,
    /** Replaced, with a fresh sink, when a sink function makes one. */
    public options: RequestOptions,
    now: number,
  ) {
    this.waitingSince = now;
  }
}

/**
 * The selector data of one conn: the job using it, or none while it is idle in
 * the pool. Handing a conn from job to job changes a field, not the registration.
 * `events` is what it is registered for, 0 while not registered.
 */
class Slot implements Poolable {
  poolOrigin = "";
  poolIndex = -1;
  poolOlder: Slot | null = null;
  poolNewer: Slot | null = null;
  /** While idle: the client of the conn's last response, to start the next one. */
  client: HttpClient | null = null;
  /**
   * How long its request has waited on something else (a sink's write,
   * decoding turns) with its conn not read (ms), and since when the current
   * such wait (or -1): what the server sent meanwhile is unknown.
   */
  unwatched = 0;
  unwatchedSince = -1;
  /**
   * Its request waits on its sink's close with the response read whole: the
   * crawl reads the conn meanwhile, and anything read (an early close, a 408,
   * bytes past the body) makes it `dirty`, never reused.
   */
  idleWatch = false;
  dirty = false;
  /**
   * When it joined the pool straight after its response (the select count
   * and the loop's clock), or -1 once it has been read idle for a select and
   * `VERIFY_MS` since (checked, or pooled after such a check).
   */
  pooledSelect = -1;
  pooledAt = -Infinity;
  /**
   * When its last response began to arrive (the loop's clock): the server may
   * count it idle from any time since (a slow sink reads the rest late).
   */
  idleSince = -Infinity;
  /**
   * Past when it is not reused (the loop's clock): its server announced its
   * idle timeout (`Keep-Alive: timeout=N`). `Infinity` without one.
   */
  keptUntil = Infinity;

  constructor(
    readonly conn: PollableConn,
    public job: Job | null,
    public events: number,
  ) {}

  /** Idle now, kept after `client`'s response: idle since it began to arrive. */
  idle(client: HttpClient): void {
    this.job = null;
    this.client = client;
    this.idleSince = answeredAt(client);
    this.keptUntil = keptUntil(this.idleSince, client[kKeepAliveTimeout]());
  }
}

/** `#responded`'s `bodyError` when the response came whole. */
const NO_ERROR: unique symbol = Symbol("no error");

/**
 * A conn whose request waited this long (ms) without reading it is read for as
 * long again, and a select, before it joins the pool. (A wait on the sink's
 * close does not count: the conn is read meanwhile.)
 */
const VERIFY_MS = 1;

/**
 * A kept conn idle this long (ms) is not trusted with a request that is not
 * sent again if the conn turns out closed: some servers close idle conns only
 * when traffic next wakes them (Squid past `client_idle_pconn_timeout`), with
 * no FIN to see beforehand, so every conn reused after a pause would fail its
 * POST. (undici closes idle conns after 4 s whatever the request.)
 */
const IDLE_TRUST_MS = 2_000;
/**
 * A kept conn whose server announced its idle timeout (`Keep-Alive:
 * timeout=N`: Apache, Node, nginx with a second `keepalive_timeout` value) is
 * not reused once idle for that long less this much (ms), or less half of it
 * for a timeout under twice this: a request sent as the server's timer fires
 * meets its close on the way (a round trip's window), a POST then fails and a
 * GET goes out again on a new conn. (undici stops 2 s short of it, and not
 * reusing at all under 2 s.)
 */
const KEEP_ALIVE_MARGIN_MS = 1_000;

/**
 * Until when a conn idle since `idleSince` may be reused, by the idle timeout
 * (ms, -1 if none) its server announced.
 */
function keptUntil(idleSince: number, timeout: number): number {
  if (timeout < 0) return Infinity;
  return idleSince + timeout - Math.min(KEEP_ALIVE_MARGIN_MS, timeout / 2);
}

/**
 * When `client`'s response began to arrive, or now if it has none: a
 * server's idle timer for the conn started at most then.
 */
function answeredAt(client: HttpClient): number {
  const at = client[kStamps].firstByte;
  return Number.isNaN(at) ? loopNow() : at;
}

/** The most keys a crawl remembers as keeping, or dropping, their conns (`#keepsConns`, `#dropsConns`). */
const MAX_KNOWN_KEYS = 10_000;

/**
 * A deadline this late (ms) when the crawl comes to it means the loop did not
 * run meanwhile: reads are polled once more before it fires.
 */
const LATE_MS = 25;
/**
 * How long that select may wait. A read that settled while the loop did not
 * run is delivered a turn or two after the loop runs again: a select that
 * only polls (0) returns before it (measured: a stopped process's response,
 * in the kernel for seconds, missed by a select(0) and caught by a select(2)).
 */
const LATE_POLL_MS = 5;

/**
 * Longest wait for a wakeup while no conn is registered and nothing is timed:
 * everything awaited then ends the wait with one, so this only bounds what a
 * missed one could cost. (At 1 s, a crawl waiting on its source, a `-i -`
 * stdin say, woke ~11 times a second.)
 */
const IDLE_WAIT_MS = 10_000;

/**
 * Out of descriptors with none of the crawl's own closing (others hold them):
 * a waiting connect is tried again after this long, doubling up to the most.
 */
const FD_RETRY_MIN_MS = 5;
const FD_RETRY_MAX_MS = 1_000;
/** The most waiters one quiet tick of that timer lets connect. */
const FD_BURST_MAX = 64;

const NO_TIMINGS: FetchTimings = Object.freeze({
  queued: 0,
  connect: 0,
  firstByte: 0,
  total: 0,
});

/** A crawl: options checked at construction, run once with {@linkcode Crawl.run}. */
export class Crawl {
  readonly #config: CrawlConfig;
  readonly #sel = new Selector<Slot>();
  /** Every timed thing of the crawl: client deadlines, retry backoffs, origin waits. */
  readonly #timers = new DeadlineQueue<Timed>();
  readonly #scheduler: Scheduler<Job>;
  readonly #pool: IdlePool<Slot>;
  /**
   * Finished clients whose conn is closed, at most `concurrency`: a new conn's
   * request starts on one of them (and its parser), not on a new client.
   */
  readonly #spare: HttpClient[] = [];
  /** The URL each sink was last given to: one sink serves one URL at a time. */
  readonly #sinkOwners = new WeakMap<WritableStream<Uint8Array>, Job>();
  /** Body streams the crawl cancelled: a later URL with one fails, as fetch's does. */
  readonly #cancelledBodies = new WeakSet<ReadableStream<Uint8Array>>();

  /** Jobs read and not finished, oldest first: any of them is unlinked in O(1). */
  #first: Job | null = null;
  #last: Job | null = null;
  #open = 0;
  #finished: FetchEntry[] = [];
  #done = 0;
  #total = 0;

  #sync: Iterator<string | URL | RequestSpec> | null = null;
  /** Whether `#sync` is an array's: its `next()` runs no caller code. */
  #syncIsArray = false;
  #async: AsyncIterator<string | URL | RequestSpec> | null = null;
  #read = 0;
  #exhausted = false;
  /** An async source's `next()` is pending. */
  #pulling = false;
  /** Why the crawl ended before its source did (abort, early close); `null` while it runs. */
  #ended: unknown = null;
  /** An async source's items read ahead and not yet accepted; they count as open. */
  #delivered: Array<string | URL | RequestSpec> = [];
  #asyncDone = false;
  #sourceFailed: { error: unknown } | null = null;
  /**
   * Results `run()` yielded that the caller holds and has not handed on yet
   * (`fetchEach` reads ahead of its consumer): they count as open.
   */
  #held = 0;
  /** The caller is gone: the loop ends at its next turn, yielding nothing more. */
  #stopped = false;
  /** What a promise `onProgress` returned rejected with: the crawl fails with it. */
  #progressFailed: { error: unknown } | null = null;
  /** The promises `onProgress` returned that have not settled yet. */
  #progressPending = new Set<Promise<void>>();
  /**
   * Set by a caller that holds what `run()` yields (`fetchEach`): each batch
   * then counts as held from the moment it is yielded, and this is called
   * when the loop has work again while it may be parked (an async source
   * handed over an item, an abort).
   */
  #onWork: (() => void) | null = null;
  /** Clients' `waiting` promises awaited already (a client may show one again). */
  #awaited = new WeakSet<Promise<void>>();
  /** Clients whose `waiting` promise settled, to resume. */
  #woken: Array<{ job: Job; client: HttpClient }> = [];
  /** URLs whose diverted body reached its sink, to finish. */
  #sinkWritten: Array<{ job: Job; result: FetchResult }> = [];
  /**
   * Keep-alive conns released after waits of `VERIFY_MS` or more in which
   * nothing read them (a sink's writes, decoding turns): what the server sent
   * meanwhile (a 408, the rest of an overlong body, its close) is unknown, so
   * each is read for a select and `VERIFY_MS` before it joins the pool; one
   * that turns readable is closed.
   */
  readonly #verifying: Array<
    { slot: Slot; key: string; select: number; at: number; learn?: boolean }
  > = [];
  /**
   * Keys whose conn, checked before a request that cannot be sent again went
   * out on it, stayed quiet after its response: their server keeps conns as
   * HTTP/1.1 says, and such requests take their conns at once from then on.
   */
  #keepsConns = new Set<string>();
  /**
   * Keys where a kept conn turned out closed under a request that could not
   * be sent again (`#closesConns`): such requests take new conns there.
   */
  #dropsConns = new Set<string>();
  /** Selects returned so far: when a conn was released, relative to them. */
  #selects = 0;
  /**
   * Hops that would open a new conn while one of their key's is being checked:
   * they wait for it (a select and a millisecond, not a handshake), so a crawl
   * keeps its conns rather than opening and closing one per URL.
   */
  #awaitingConn = new Map<
    string,
    Array<{ job: Job; url: HttpUrl; options: RequestOptions }>
  >();
  /**
   * Jobs whose connect failed for want of descriptors, first first: they
   * start again as the crawl's conns close (curl queues such transfers too),
   * so a crawl wider than `ulimit -n` runs as wide as it can.
   */
  readonly #fdWaiters = new Fifo<Job>();
  /** Waiters that may connect now: a conn of the crawl closed for each. */
  #fdFreed = 0;
  /** Set while a waiter given a descriptor starts: it may open a conn. */
  #fdGrant = false;
  /** The last connect that failed for want of a descriptor. */
  #fdError: Error | null = null;
  /** A connect failed so since the timer last fired. */
  #fdFailed = false;
  /**
   * How many conns the crawl had open when a connect last failed so: no new
   * conn is tried beyond it but by a waiter given a descriptor. The timer
   * raises it while connects succeed.
   */
  #fdCap = Infinity;
  /**
   * Lets waiters connect when no conn of the crawl closes (descriptors held
   * elsewhere): `#fdBurst` of them after `#fdRetryMs`, doubling the wait after
   * a failure, else the burst, so a shortage that ended soon ends here too.
   */
  readonly #fdTimer: Timed = { due: 0, heapIndex: -1 };
  /** Wakes the loop when a waiter held back by its origin's delay may start. */
  readonly #fdWake: Timed = { due: 0, heapIndex: -1 };
  #fdRetryMs = FD_RETRY_MIN_MS;
  #fdBurst = 1;
  /** When a connect last failed for want of a descriptor (-Infinity: never). */
  #fdShortAt = -Infinity;
  /** Timers ran late: the next select only polls, and they fire after it. */
  #lateGrace = false;
  /** A politeness delay is set: it counts from each request's send too. */
  readonly #delays: boolean;

  /**
   * Checks the options.
   *
   * @throws {TypeError} For an invalid method, header, body or `redirect`.
   * @throws {RangeError} For an out-of-range number.
   */
  constructor(options: FetchAllOptions) {
    this.#config = crawlConfig(options);
    this.#scheduler = new Scheduler(this.#config.limits, this.#timers);
    const delay = this.#config.limits.delay;
    this.#delays = typeof delay === "function" || delay > 0;
    // Over many hosts, the conn idle longest is closed first.
    this.#pool = new IdlePool(
      this.#config.maxIdlePerOrigin,
      this.#config.maxIdle,
      (slot) => this.#closeIdle(slot),
    );
  }

  /**
   * A crawl with one URL queued and one conn registered, never run: what
   * `_specimens.ts` keeps of this module.
   */
  static specimens(conn: PollableConn): object[] {
    const crawl = new Crawl({});
    const url = toHttpUrl("http://specimen.invalid/");
    const job = new Job(0, url.href, undefined, url, crawl.#config.shared, 0);
    const origin = crawl.#scheduler.origin(url.site.origin);
    job.origin = origin;
    crawl.#scheduler.push(origin, job, 0);
    const slot = new Slot(conn, job, 0);
    // For writing, which asks nothing of the conn (reading would start a read).
    crawl.#sel.register(conn, EVENT_WRITE, slot);
    return [crawl, job, slot];
  }

  /** Runs the crawl, yielding what finished after each step, in completion order. */
  async *run(source: CrawlSource): AsyncGenerator<FetchEntry[]> {
    if (Array.isArray(source)) checkArrayBodies(source, this.#config.shared);
    const signal = this.#config.signal;
    // The listener only wakes the loop; the loop sees `signal.aborted` and ends.
    const wake = () => {
      this.#sel.wakeup();
      this.#onWork?.();
    };
    signal?.addEventListener("abort", wake, { once: true });
    if (Array.isArray(source)) this.#total = source.length;
    try {
      this.#openSource(source);
      while (true) {
        if (this.#stopped) break;
        if (this.#progressFailed !== null) throw this.#progressFailed.error;
        if (signal?.aborted) {
          this.#abort(signal.reason);
          if (this.#finished.length > 0) yield this.#takeFinished();
          break;
        }
        freeze();
        try {
          this.#pull();
          this.#startReady();
        } finally {
          thaw();
        }
        if (this.#finished.length > 0) {
          yield this.#takeFinished();
          continue;
        }
        if (this.#open === 0 && this.#exhausted) break;
        const batch = await this.#sel.select(this.#untilNextDue());
        if (this.#stopped) break;
        this.#selects++;
        freeze();
        try {
          this.#dispatch(batch);
          if (this.#verifying.length > 0) this.#verified();
          this.#expire();
        } finally {
          thaw();
        }
      }
      // An async onProgress still running when the last URL finished: its
      // rejection fails the crawl all the same (the promises never reject).
      // Not after an abort, which ends the crawl at once.
      while (
        !this.#stopped && !signal?.aborted && this.#progressPending.size > 0
      ) {
        await Promise.all(this.#progressPending);
      }
      if (this.#progressFailed !== null) throw this.#progressFailed.error;
      // Every URL read before the source threw has its result (yielded above).
      if (this.#sourceFailed !== null && !this.#stopped) {
        throw this.#sourceFailed.error;
      }
    } finally {
      signal?.removeEventListener("abort", wake);
      this.#closeAll();
      refreshSpecimens();
    }
  }

  /**
   * Whether the loop has work whose timing matters: URLs read and not
   * finished (in flight, queued, backing off), items an async source handed
   * over, an abort to carry out, or room to read more and no read in flight.
   */
  get busy(): boolean {
    return this.#ended === null && !this.#stopped && (this.#open > 0 ||
      this.#delivered.length > 0 || this.#config.signal?.aborted === true ||
      // A source read it could start now: one in flight calls `onWork` when
      // it settles (nothing to wait for until then, or the wait would keep
      // the process alive for a source that never answers).
      (!this.#exhausted && !this.#pulling && this.#sourceFailed === null &&
        this.#counted < this.#config.maxOpen));
  }

  /** What counts against `maxOpen`: read and not handed to the caller. */
  get #counted(): number {
    return this.#open + this.#delivered.length + this.#finished.length +
      this.#held;
  }

  /**
   * The caller holds each batch `run()` yields until it calls `unhold()`, and
   * is told by `onWork` when the loop has work again.
   */
  holdYielded(onWork: () => void): void {
    this.#onWork = onWork;
  }

  /**
   * The caller handed on `count` held results. Room to read more URLs wakes
   * the loop when a slot is free to start one (with every slot busy, their
   * next event does).
   */
  unhold(count: number): void {
    const full = this.#counted >= this.#config.maxOpen;
    this.#held -= count;
    if (
      full && this.#ended === null &&
      this.#scheduler.running < this.#config.limits.concurrency
    ) this.#sel.wakeup();
  }

  /** Ends the loop at its next turn without yielding more (the caller left). */
  stop(): void {
    this.#stopped = true;
    if (this.#ended === null) this.#sel.wakeup();
  }

  /** The result of an array's URL that an abort left unread. */
  unstarted(item: string | URL | RequestSpec | undefined): FetchResult {
    const { shown, data } = describeItem(item);
    const error = this.#config.signal?.reason;
    this.#abortSinkOf(item, error);
    return {
      url: shown,
      ok: false,
      error,
      data,
      attempts: 0,
      timings: { ...NO_TIMINGS },
    };
  }

  // --- 1. pull ---------------------------------------------------------------

  #openSource(source: CrawlSource): void {
    if (typeof source === "string") {
      // Iterable, but one character per URL is never what was meant.
      throw new TypeError(
        "Cannot fetch: the source must be an iterable of URLs, received a string (put the URL in an array)",
      );
    }
    if (typeof (source as Iterable<unknown>)[Symbol.iterator] === "function") {
      this.#sync = (source as Iterable<string | URL | RequestSpec>)
        [Symbol.iterator]();
      this.#syncIsArray = Array.isArray(source);
    } else if (
      typeof (source as AsyncIterable<unknown>)[Symbol.asyncIterator] ===
        "function"
    ) {
      this.#async = (source as AsyncIterable<string | URL | RequestSpec>)
        [Symbol.asyncIterator]();
    } else {
      throw new TypeError(
        "Cannot fetch: the source must be an iterable or an async iterable",
      );
    }
  }

  /**
   * Reads URLs while fewer than `concurrency + maxQueued` are open. A source
   * that throws is read no further: the URLs read before it finish, and the
   * crawl then ends with its error (`#sourceFailed`).
   */
  #pull(): void {
    const signal = this.#config.signal;
    const sync = this.#sync;
    if (sync !== null) {
      const max = this.#config.maxOpen;
      // Results not yet yielded count as open: the caller has not seen them
      // finish. Counted afresh each time, as a URL that fails when read (a bad
      // URL) is such a result at once.
      while (
        !this.#exhausted &&
        this.#open + this.#finished.length + this.#held < max &&
        !signal?.aborted
      ) {
        let next: IteratorResult<string | URL | RequestSpec>;
        try {
          next = sync.next();
          checkIterResult(next);
        } catch (error) {
          this.#sourceFailed = { error };
          this.#exhausted = true;
          return;
        }
        // A generator's next() runs the caller's code, which may take a while.
        if (!this.#syncIsArray) refresh();
        if (next.done) this.#exhausted = true;
        else this.#accept(next.value, loopNow());
      }
      return;
    }
    const now = loopNow();
    const delivered = this.#delivered;
    for (let i = 0; i < delivered.length; i++) this.#accept(delivered[i]!, now);
    if (delivered.length > 0) this.#delivered = [];
    if (this.#asyncDone || this.#sourceFailed !== null) this.#exhausted = true;
    else this.#readAhead();
  }

  /**
   * Calls an async source's `next()` while there is room: one call at a time, each
   * settling wakes the loop and calls the next, so the source runs ahead of the
   * loop up to the bound instead of one item per `select()`.
   */
  #readAhead(): void {
    // Ended or left (a break): nothing more is asked of the source, whose
    // return() may not make next() answer done (an iterator object's need not).
    if (
      this.#pulling || this.#asyncDone || this.#sourceFailed !== null ||
      this.#ended !== null || this.#stopped ||
      this.#config.signal?.aborted || this.#counted >= this.#config.maxOpen
    ) return;
    this.#pulling = true;
    let next: Promise<IteratorResult<string | URL | RequestSpec>>;
    try {
      // As `for await` takes it: a next() that throws at once is a source
      // that failed, and one that answers without a promise is awaited too.
      next = Promise.resolve(this.#async!.next());
    } catch (error) {
      this.#sourceThrew(error);
      return;
    } finally {
      // An async generator runs the caller's code up to its first await now.
      refresh();
    }
    next.then((result) => {
      try {
        checkIterResult(result);
      } catch (error) {
        this.#sourceThrew(error);
        return;
      }
      this.#pulling = false;
      if (result.done) this.#asyncDone = true;
      else if (this.#ended !== null) {
        // Handed over after the crawl ended (an abort, a break): no result
        // will come for it, but a sink of its own must not stay open.
        this.#abortSinkOf(result.value, this.#ended);
      } else this.#delivered.push(result.value);
      this.#sel.wakeup();
      this.#onWork?.();
      this.#readAhead();
    }, (error) => this.#sourceThrew(error));
  }

  /** An async source's `next()` failed: it is read no further (`#pull`). */
  #sourceThrew(error: unknown): void {
    this.#pulling = false;
    this.#sourceFailed = { error };
    this.#sel.wakeup();
    this.#onWork?.();
  }

  /** Turns one source item into a queued job, or a failed result. */
  #accept(item: string | URL | RequestSpec, now: number): void {
    const index = this.#read++;
    let input: string | URL;
    let spec: RequestSpec | null = null;
    let data: unknown;
    let sink: unknown;
    let body: unknown;
    if (typeof item === "string" || item instanceof URL) {
      input = item;
    } else if (typeof item === "object" && item !== null && "url" in item) {
      spec = item;
      try {
        input = item.url;
        data = item.data;
        sink = item.sink;
        body = item.body;
      } catch (error) {
        // A getter that throws fails its URL alone, as a bad field does.
        this.#fail(index, textOf(item), undefined, error);
        return;
      }
    } else {
      this.#fail(
        index,
        textOf(item),
        undefined,
        new TypeError(
          `Cannot fetch: expected a URL string, a URL or a RequestSpec, received ${
            item === null ? "null" : typeof item
          }`,
        ),
      );
      return;
    }
    let url: HttpUrl | null = null;
    let options: RequestOptions;
    try {
      url = toHttpUrl(input);
      const given = spec !== null && body !== undefined
        ? body
        : this.#config.shared.body;
      if (
        given instanceof ReadableStream && this.#cancelledBodies.has(given)
      ) {
        // fetch() refuses a disturbed stream; sent, it would go out empty.
        // Checked first: it says more than specOptions' "disturbed".
        throw new TypeError(
          "Cannot fetch: the body stream was cancelled when an earlier URL with it failed",
        );
      }
      options = spec === null
        ? this.#config.shared
        : specOptions(spec, this.#config.shared);
    } catch (error) {
      // Its own sink and body stream, if that is not what was wrong with
      // them: no request will use them.
      this.#abortSink(sink, error, null);
      this.#cancelBody(body, error, null);
      this.#fail(index, shownUrl(input, url), data, error);
      return;
    }
    const job = new Job(index, shownUrl(input, url), data, url, options, now);
    this.#link(job);
    if (options.sink !== undefined) {
      // Claimed now, so that a later URL's bad spec leaves it alone.
      const owner = this.#sinkOwners.get(options.sink);
      if (owner === undefined || owner.done) {
        this.#sinkOwners.set(options.sink, job);
      }
    }
    const origin = this.#scheduler.origin(url.site.origin);
    job.origin = origin;
    this.#scheduler.push(origin, job, now);
  }

  // --- 2. start --------------------------------------------------------------

  #startReady(): void {
    const signal = this.#config.signal;
    // Waiters hold their slots already: they go first.
    if (this.#fdWaiters.length > 0 && !signal?.aborted) this.#relaunchWaiters();
    let job: Job | undefined;
    while (
      !signal?.aborted && (job = this.#scheduler.take(loopNow())) !== undefined
    ) {
      // Read afresh for each start: the caller's code run by the last one (a
      // sink function, a tap, onProgress) moves the span's time on, and so
      // does a perOrigin.delay function, which take() just called.
      const now = loopNow();
      job.queued += now - job.waitingSince;
      job.queuedNow = false;
      job.running = true;
      const origin = job.origin!;
      job.ownStart = origin.nextStart;
      job.delay = origin.delay;
      if (origin.delayError !== null) {
        // perOrigin.delay threw for this start: this URL fails with it.
        const { error } = origin.delayError;
        origin.delayError = null;
        this.#end(job, { error }, now);
        continue;
      }
      if (job.hopUrl !== null) {
        this.#launchHop(job, now);
        continue;
      }
      job.attempts++;
      job.attemptStarted = now;
      job.fdFirst = NaN;
      if (job.attempts === 1) job.started = now;
      if (job.options[kSinkFactory] !== undefined) {
        const fresh = this.#freshSink(job, now);
        // The sink function ran (a file opened, say): later starts come after it.
        refresh();
        if (!fresh) continue;
        job.attemptStarted = loopNow();
      }
      this.#launch(job, job.url, job.options);
    }
  }

  /**
   * With a sink function: the sink of this attempt, the last one's if it took
   * no byte (a failed connect, a retried status), else a fresh one (the last
   * was cut short mid-body, and aborted). Returns false once the URL failed on
   * the function (it threw, or returned no unlocked `WritableStream`).
   */
  #freshSink(job: Job, now: number): boolean {
    const current = job.options.sink;
    if (current !== undefined && !current.locked) return true;
    let sink: unknown;
    try {
      sink = job.options[kSinkFactory]!(job.shown);
    } catch (error) {
      this.#end(job, { error }, now);
      return false;
    }
    if (!(sink instanceof WritableStream) || sink.locked) {
      this.#end(job, {
        error: new TypeError(
          `Cannot fetch: the sink function must return a WritableStream that is not locked, returned ${
            sink instanceof WritableStream ? "a locked one" : typeName(sink)
          }`,
        ),
      }, now);
      return false;
    }
    job.options = { ...job.options, sink };
    return true;
  }

  /**
   * Starts a hop: on an idle conn to its origin if there is one, sending at once
   * (an idle conn has an empty write buffer, so it is writable), else on a new
   * conn registered for the connect.
   */
  #launch(
    job: Job,
    url: HttpUrl,
    options: RequestOptions,
    given?: Slot,
  ): void {
    job.launched = url;
    job.sentAt = job.sentStamp = NaN;
    const sink = options.sink;
    if (sink !== undefined) {
      // A sink is locked only once a response begins: one that another open URL
      // of this crawl writes to must fail this one before its request is sent.
      const owner = this.#sinkOwners.get(sink);
      // A sink takes one body and is closed at its URL's end, or aborted if
      // that URL failed (then it is not locked, and a request sent would fail
      // on its response with that other URL's error): a crawl-wide one serves
      // the first URL only.
      if (owner !== undefined && owner !== job) {
        if (given !== undefined) this.#giveBack(given, job.poolKey);
        this.#end(job, {
          error: new TypeError(
            owner.done
              ? "Cannot fetch: sink was another URL's, and was closed or aborted at its end (a sink takes one body: give a function, (url) => WritableStream, to make one per URL)"
              : "Cannot fetch: sink must be a WritableStream that is not locked (another request of this crawl writes to it)",
          ),
        }, loopNow());
        return;
      }
      this.#sinkOwners.set(sink, job);
    }
    const transport = options[kTransport];
    let key = url.site.origin;
    let route: Route | null = null;
    if (transport !== undefined) {
      try {
        route = routeFor(url.url, transport);
      } catch (error) {
        if (given !== undefined) this.#giveBack(given, job.poolKey);
        this.#end(job, { error }, loopNow());
        return;
      }
      if (route !== null) key = route.key;
      if (route?.kind === "tunnel") {
        // A tunnel is as its CONNECT authenticated it: a request with other
        // credentials of its own must not ride in it.
        const own = callerProxyAuthorization(options);
        if (own !== null) key += `#${hash64(own)}`;
      }
    }
    job.poolKey = key;
    job.direct = route === null;
    job.upAt = NaN;
    const resend = canResend(options);
    const fresh = given === undefined && this.#dropsConns.size > 0 &&
      this.#dropsConns.has(key) && !resend;
    let slot = given ??
      (this.#config.keepAlive && !fresh ? this.#pool.take(key) : undefined);
    // Never reused: a conn readable while idle (its read settled since the
    // last select: the server closed it, or sent what no request asked for);
    // one idle for about as long as its server said it keeps conns (that
    // server is about to close it, if it has not, and a request would meet
    // the close on its way); and, for a request that is not sent again if its
    // conn turns out closed (a POST, a stream body), one whose last answer is
    // long past (a conn handed over after its check too: checked quiet is not
    // alive). Nor, for such a request, one pooled too recently for its read
    // to have seen a close already on its way: a server that closes right
    // after a response without saying so (tinyproxy does) would fail every
    // other POST. Such a conn is checked first, as one released after a long
    // wait is, and the request waits for it (a select and VERIFY_MS); once
    // one stays quiet, the key's server is known to keep its conns. Every
    // conn taken passes all of these, one taken after a conn put under check
    // too.
    const now = loopNow();
    const check = !resend && !this.#keepsConns.has(key);
    while (slot !== undefined) {
      if (
        (slot.conn[kReady]() & EVENT_READ) !== 0 || now >= slot.keptUntil ||
        (!resend && now - slot.idleSince >= IDLE_TRUST_MS)
      ) {
        this.#closeIdle(slot);
      } else if (
        check && slot !== given &&
        (slot.pooledSelect === this.#selects || now - slot.pooledAt < VERIFY_MS)
      ) {
        this.#verifying.push({
          slot,
          key,
          select: slot.pooledSelect,
          at: slot.pooledAt,
          learn: true,
        });
      } else break;
      slot = this.#pool.take(key);
    }
    if (
      slot === undefined && this.#verifying.length > 0 &&
      this.#config.maxIdlePerOrigin > 0 && this.#config.maxIdle > 0
    ) {
      let checking = 0;
      for (const entry of this.#verifying) if (entry.key === key) checking++;
      let awaiting = this.#awaitingConn.get(key);
      if (checking > (awaiting?.length ?? 0)) {
        if (awaiting === undefined) this.#awaitingConn.set(key, awaiting = []);
        awaiting.push({ job, url, options });
        job.awaitingConn = true;
        // The attempt's time runs on while it waits (a slow consumer or
        // onProgress can make that long).
        this.#timers.set(job, job.attemptStarted + totalTimeout(job));
        return;
      }
    }
    if (
      slot === undefined && !this.#fdGrant &&
      (this.#fdWaiters.length > 0 ||
        this.#fdCap !== Infinity && this.#sel.getMap().size >= this.#fdCap)
    ) {
      // Out of descriptors: a new conn waits its turn behind those waiting.
      this.#awaitDescriptor(job, loopNow());
      return;
    }
    const idle = slot?.client ?? null;
    let spare: HttpClient | undefined;
    let client: HttpClient;
    try {
      const hopOptions = this.#withDivert(
        job,
        transport === undefined ? options : { ...options, [kRoute]: route },
      );
      if (idle !== null) {
        // The conn's last client starts this request: no new client per request.
        idle[kReuse](url, hopOptions, true);
        client = idle;
      } else if ((spare = this.#spare.pop()) !== undefined) {
        spare[kReuse](url, hopOptions, false);
        client = spare;
      } else {
        client = clientFor(url, hopOptions);
      }
    } catch (error) {
      if (slot !== undefined) this.#giveBack(slot, key);
      if (spare !== undefined) this.#spare.push(spare);
      this.#end(job, { error }, loopNow());
      return;
    }
    job.client = client;
    if (slot === undefined) {
      this.#afterStep(job);
      return;
    }
    slot.client = null; // the job's now
    slot.job = job;
    slot.unwatched = 0;
    slot.unwatchedSince = -1;
    slot.idleWatch = slot.dirty = false;
    job.slot = slot;
    this.#step(job, EVENT_WRITE);
  }

  /**
   * With a sink, a response that is not the URL's last (a redirect followed, a
   * status retried) must not use it up: the client buffers such a body instead.
   */
  #withDivert(job: Job, options: InternalOptions): InternalOptions {
    if (options.sink === undefined) return options;
    return {
      ...options,
      [kDivertSink]: (head: ResponseHead) => this.#diverts(job, head),
      [kWake]: () => {
        const client = job.client;
        if (client === null || job.done) return;
        this.#woken.push({ job, client });
        this.#sel[kResume]();
      },
    };
  }

  #diverts(job: Job, head: ResponseHead): boolean {
    const status = head.status;
    // Under "error" too: that URL fails on it, and its sink must not have
    // taken a body meanwhile (it is aborted with the redirect's error).
    if (
      status >= 300 && status < 400 && this.#config.redirect !== "manual" &&
      head.field("location") !== null
    ) return true;
    const policy = this.#config.retry;
    return job.attempts <= policy.limit && policy.statuses.has(status) &&
      this.#replayable(job);
  }

  // --- 3. select -------------------------------------------------------------

  #untilNextDue(): number | undefined {
    if (this.#lateGrace) return LATE_POLL_MS;
    const due = this.#timers.nextDue;
    if (this.#verifying.length > 0) {
      // A conn being checked joins the pool at the first select after its
      // millisecond: a hop may be waiting for it.
      return Math.max(0, Math.min(VERIFY_MS, due - performance.now()));
    }
    if (due === Infinity) {
      // With nothing registered, select() without a timeout returns at once
      // (by contract): the loop would spin a core while it awaits an async
      // source or a sink. Everything it awaits then ends the wait with a
      // wakeup(); the bound only limits what a wakeup missed could cost.
      return this.#sel.getMap().size === 0 ? IDLE_WAIT_MS : undefined;
    }
    return Math.max(0, due - performance.now());
  }

  // --- 4. dispatch, after-step -----------------------------------------------

  #dispatch(batch: Array<[SelectorKey<Slot>, number]>): void {
    const signal = this.#config.signal;
    // Clients whose wait ended (their wakeup() ended the select, or came with it).
    if (this.#woken.length > 0) this.#resumeWoken();
    if (this.#sinkWritten.length > 0) this.#finishWritten();
    for (const [key, mask] of batch) {
      // onProgress may abort at any point: check before each step.
      if (signal?.aborted) return;
      const slot = key.data;
      // Unregistered since the batch was made (its URL ended on an earlier
      // step of this dispatch, a woken one's say): a stale entry.
      if (slot.events === 0) continue;
      const job = slot.job;
      if (job === null) {
        // An idle conn that becomes ready was closed by the server (or misbehaves).
        this.#dropIdle(slot);
      } else if (slot.idleWatch) {
        // Read whole, its request waiting on its sink: the server closed or
        // wrote what no request asked for. The client is not told; the conn
        // is not reused.
        slot.idleWatch = false;
        slot.dirty = true;
        this.#watch(slot, 0);
      } else if (job.client !== null && job.slot === slot) {
        if (
          (mask & EVENT_WRITE) !== 0 && this.#delays && this.#holdsSend(job)
        ) {
          continue;
        }
        this.#step(job, mask);
      }
    }
  }

  /**
   * A request about to go out on a new conn (its connect or handshake just
   * ended) waits for its origin's delay after the last request sent: starts
   * are spaced by it, but connects of different lengths brought two requests
   * 0.5 ms apart to a server under `delay: 30`. Whether it is held now.
   */
  #holdsSend(job: Job): boolean {
    const client = job.client!;
    // A failed connect is no request: it ends at once.
    if (
      !job.direct || client.state !== "connecting" ||
      client.pollable.error !== null
    ) return false;
    const origin = job.origin!;
    const now = loopNow();
    // The gap the last request sent asked for at its start: a delay function
    // may answer more at this one's start, and that is the gap after this one
    // (its conn would otherwise sit idle, holding a slot, for the new delay,
    // where a kept conn sends at once, and a server that closes conns without
    // a request for that long fails it).
    const at = origin.lastSend + origin.lastSendDelay;
    if (at <= now) {
      // Its request goes out now: the next one is held from here, not from
      // when this one's body is all sent (one released at the same time
      // would go out with it).
      origin.lastSend = now;
      origin.lastSendDelay = job.delay;
      return false;
    }
    if (Number.isNaN(job.upAt)) job.upAt = now;
    job.sendHold = true;
    job.holdUntil = at;
    this.#watch(job.slot!, 0);
    // Its own deadline may come first: it fails then, not at the hold's end.
    // Its conn is up: the connect timeout is behind it.
    this.#timers.set(job, Math.min(at, client[kTotalDeadline]));
    return true;
  }

  #step(job: Job, mask: number): void {
    job.client!.handle(mask);
    this.#afterStep(job);
  }

  /**
   * A kept conn of `key` turned out closed under a request that could not be
   * sent again: its server closes conns without saying so, later than a check
   * before reuse sees (a few ms after each response, say). Such requests take
   * new conns there from now on, so such a server fails one POST, not most.
   * (Not after a GET's replay: one race with a server's idle timer would cost
   * every later POST a connect.)
   */
  #closesConns(key: string): void {
    this.#keepsConns.delete(key);
    rememberKey(this.#dropsConns, key);
  }

  /** Re-syncs a job's registration and deadline after a step, or ends its attempt. */
  #afterStep(job: Job): void {
    const client = job.client!;
    if (this.#delays) {
      // The real clock: the stamp is the span's, earlier than the write by
      // the work done before it in the span. NaN again once a stale conn's
      // request is sent anew.
      const sent = client[kStamps].sent;
      if (sent !== sent) job.sentStamp = NaN;
      else if (sent !== job.sentStamp) {
        job.sentStamp = sent;
        job.sentAt = performance.now();
        // The next request to the origin on a new conn is sent its delay
        // after this one (see #holdsSend). One on a kept conn goes out at its
        // start: with keep-alive, starts are spaced from sends too. (Without,
        // from starts alone: every request connects, and is held.)
        const origin = job.origin!;
        if (job.sentAt > origin.lastSend) {
          origin.lastSend = job.sentAt;
          origin.lastSendDelay = job.delay;
        }
        if (this.#config.keepAlive) {
          this.#scheduler.sent(origin, job.sentAt, job.delay, loopNow());
        }
      }
    }
    const state = client.state;
    if (state === "done") {
      this.#responded(job, client.response!);
      return;
    }
    if (state === "failed") {
      if (client[kMetClosedConn]()) this.#closesConns(job.poolKey);
      const head = client[kFailedHead]();
      if (head !== null) this.#responded(job, head, client.error);
      else this.#end(job, { error: client.error }, loopNow());
      return;
    }
    const conn = client.pollable;
    const events = client.events;
    let slot = job.slot;
    if (slot === null || slot.conn !== conn) {
      // A new conn, or a fresh one after a stale keep-alive conn failed.
      if (slot !== null) this.#watch(slot, 0);
      slot = job.slot = new Slot(conn, job, 0);
    }
    // Waiting on its body stream, a client still reads (an early answer), and
    // may be stepped again meanwhile: await each wait once.
    const waiting = client.waiting;
    let want = events;
    slot.idleWatch = waiting !== null && events === 0 && !slot.dirty &&
      this.#config.keepAlive && client[kIdleWhileWaiting]();
    if (slot.idleWatch) want = EVENT_READ;
    if (waiting !== null && want === 0) {
      if (slot.unwatchedSince < 0) slot.unwatchedSince = loopNow();
    } else if (slot.unwatchedSince >= 0) {
      slot.unwatched += loopNow() - slot.unwatchedSince;
      slot.unwatchedSince = -1;
    }
    if (slot.events !== want) this.#watch(slot, want);
    if (waiting !== null && !this.#awaited.has(waiting)) {
      this.#awaited.add(waiting);
      this.#awaitClient(job, client, waiting);
    }
    const due = client.deadline;
    if (due !== job.due || job.heapIndex < 0) this.#timers.set(job, due);
  }

  /**
   * The client waits on something that is not its conn (a sink, a decoding
   * turn: its conn stays unregistered, so it issues no reads; a body stream:
   * it still reads), until `waiting` settles.
   */
  #awaitClient(job: Job, client: HttpClient, waiting: Promise<void>): void {
    waiting.then(() => {
      this.#woken.push({ job, client });
      this.#sel[kResume]();
    });
  }

  #resumeWoken(): void {
    const woken = this.#woken;
    this.#woken = [];
    for (const { job, client } of woken) {
      if (job.client !== client) continue; // ended meanwhile
      this.#step(job, 0);
    }
  }

  /**
   * A response came: pause its origin if it asks, follow it, retry, or finish.
   * With `bodyError`, only its head came whole (its body was too large, badly
   * encoded or framed): that is enough to follow or retry it, and the URL fails
   * with `bodyError` where it would have ended with it.
   */
  #responded(
    job: Job,
    response: HttpResponse,
    bodyError: unknown = NO_ERROR,
  ): void {
    const client = job.client!;
    const status = response.status;
    const now = loopNow();
    if (status === 429 || status === 503) {
      this.#pauseOrigin(job, status, response.headers.get("retry-after"), now);
    }
    const redirect = this.#config.redirect;
    if (status >= 300 && status < 400 && redirect !== "manual") {
      const next = nextHop(
        { status, location: firstField(response, "location") },
        this.#hopRequest(job, client),
        job.hops,
      );
      if (next.stop !== "not-redirect") {
        if (redirect === "follow" && next.request !== null) {
          this.#follow(job, next.request, now);
          return;
        }
        // An unusable Location is handed back as the answer, as curl does;
        // with redirect "error" every redirect fails, as in fetch.
        if (redirect === "error" || next.stop !== "unusable-location") {
          const reason = redirect === "error" ? "error" : next.stop;
          this.#end(job, { error: redirectError(reason, next.location) }, now);
          return;
        }
      }
    }
    if (bodyError === NO_ERROR) this.#end(job, response, now);
    else if (!this.#retried(job, response, now)) {
      this.#end(job, { error: bodyError }, now);
    }
  }

  #hopRequest(job: Job, client: HttpClient): HopRequest {
    return job.hop ?? {
      url: client.url,
      method: client.method,
      headers: job.options.headers as Headers,
      body: job.options.body ?? null,
    };
  }

  /**
   * Queues the next hop of a redirect on its origin, at the front: it starts
   * under that origin's limits, delay and pause like any request to it, and
   * within the attempt's time, which runs on while it waits.
   */
  #follow(job: Job, request: HopRequest, now: number): void {
    let url: HttpUrl;
    try {
      url = toHttpUrl(request.url);
    } catch (error) {
      // A target no request can go to (port 0) fails this URL alone, as the
      // same URL given as input does.
      this.#end(job, { error }, now);
      return;
    }
    this.#release(job);
    this.#releaseSlot(job, now);
    job.client = null;
    job.hops++;
    job.hop = request;
    job.hopUrl = url;
    job.queuedNow = true;
    job.waitingSince = now;
    const origin = this.#scheduler.origin(url.site.origin);
    job.origin = origin;
    this.#timers.set(job, job.attemptStarted + totalTimeout(job));
    this.#scheduler.push(origin, job, now, true);
  }

  /** Starts a queued hop of a redirect, with what is left of the attempt's time. */
  #launchHop(job: Job, now: number): void {
    this.#timers.delete(job);
    const url = job.hopUrl!;
    job.hopUrl = null;
    const request = job.hop!;
    const timeout = totalTimeout(job);
    // The real clock, not the span's: a long span (a slow onProgress, a big
    // batch) must not lend the next hop time that has passed. Once per hop.
    const remaining = job.attemptStarted + timeout - performance.now();
    if (remaining <= 0) {
      this.#end(job, { error: hopTimedOut(job) }, now);
      return;
    }
    const options: RequestOptions = {
      ...job.options,
      method: request.method,
      headers: request.headers,
      body: request.body as Exclude<RequestOptions["body"], undefined>,
      timeout: remaining,
      [kTotalLimit]: timeout,
    };
    delete options[kRequestWriter];
    this.#launch(job, url, options);
  }

  /** A queued hop's time ran out before its origin let it start. */
  #hopExpired(job: Job, now: number): void {
    job.hopUrl = null;
    this.#scheduler.unqueue(job.origin!, job, now);
    job.queued += now - job.waitingSince;
    job.queuedNow = false;
    this.#end(job, { error: hopTimedOut(job) }, now);
  }

  /** Gives back the scheduler's slot the job holds, if it holds one. */
  #releaseSlot(job: Job, now: number): void {
    if (!job.running) return;
    job.running = false;
    this.#scheduler.release(job.origin!, now);
  }

  /**
   * Ends an attempt: retries it if the policy says so, else finishes the URL.
   * `outcome` is the response, or `{ error }`.
   */
  #end(job: Job, outcome: FetchResultBody, now: number): void {
    const error = "error" in outcome ? outcome.error : null;
    if (
      error instanceof Error && isShortage(error) &&
      job.client?.pollable.remoteAddr === null
    ) {
      this.#fdError = error;
      this.#fdFailed = true;
      this.#fdCap = this.#sel.getMap().size;
      this.#release(job);
      job.client = null;
      // Every conn of the crawl may be busy: an idle one gives its descriptor.
      const idle = this.#pool.oldest;
      if (idle !== null) {
        this.#pool.remove(idle);
        this.#closeIdle(idle);
      }
      this.#awaitDescriptor(job, now);
      return;
    }
    if (error instanceof ProxyError) {
      this.#pauseOrigin(
        job,
        error.status,
        proxyRetryAfter.get(error) ?? null,
        now,
      );
    }
    if (this.#retried(job, outcome, now)) return;
    this.#release(job);
    this.#releaseSlot(job, now);
    const timings = this.#timings(job, job.client, now);
    if ("error" in outcome) {
      this.#timers.delete(job);
      this.#finish(job, failedResult(job, outcome.error, timings));
      return;
    }
    const result: FetchResult = {
      url: job.shown,
      ok: true,
      response: outcome,
      data: job.data,
      attempts: job.attempts,
      timings,
    };
    const sink = job.options.sink;
    if (sink !== undefined && !sink.locked) {
      // A response diverted from the sink that turned out to be the last one
      // (a redirect not followed after all, a retry not made): its body still
      // goes where the caller asked, and the URL ends once the sink has it
      // and is closed, as it does when the body streams there (or fails
      // with the sink's error).
      // The attempt's deadline still holds: a sink that never takes the body
      // must not hold the URL forever, as it does not when the body streams.
      const writer = sink.getWriter();
      const body = outcome.body;
      outcome.body = new Uint8Array(0);
      job.sinkWrite = { writer, result };
      // Its client went back to the pool or the spares: a late wakeup of that
      // client (a cancelled upload's read) must not step this URL again.
      job.client = null;
      this.#timers.set(job, job.attemptStarted + totalTimeout(job));
      writer.write(body).then(() => writer.close()).then(
        () => this.#written(job, result),
        (error) => this.#written(job, failedResult(job, error, timings)),
      );
      return;
    }
    this.#timers.delete(job);
    this.#finish(job, result);
  }

  /**
   * A 429 or 503 with `Retry-After` pauses the job's origin: a response's, or
   * a proxy's refusal of a tunnel to it (a rotating proxy's rate limit).
   */
  #pauseOrigin(
    job: Job,
    status: number,
    retryAfter: string | null,
    now: number,
  ): void {
    const pause = originPause(
      status,
      retryAfter,
      this.#config.retry.maxDelay,
      Date.now(),
    );
    if (pause > 0) this.#scheduler.pause(job.origin!, now + pause, now);
  }

  /**
   * The job waits, keeping its slot, for a descriptor: one of the crawl's
   * conns closing, an idle conn of its key, or the timer. curl queues such
   * transfers too, so a crawl wider than `ulimit -n` runs as wide as it can
   * rather than failing what does not fit.
   */
  #awaitDescriptor(job: Job, now: number): void {
    // A shortage of its own after a while without one: the timer starts
    // again from its shortest wait. (Not whenever no waiter is left: one
    // waiter let try on each tick, failing each time, empties the queue
    // every time, and would try every 5 ms for the whole shortage.)
    if (now - this.#fdShortAt > 2 * FD_RETRY_MAX_MS) {
      this.#fdRetryMs = FD_RETRY_MIN_MS;
    }
    this.#fdShortAt = now;
    job.awaitingFd = true;
    job.fdSince = now;
    this.#fdWaiters.push(job);
    // At most the attempt's time, all its waits together (a waiter let try
    // on a tick and failing again waits on): descriptors held outside the
    // crawl may never come back.
    if (job.fdFirst !== job.fdFirst) job.fdFirst = now;
    this.#timers.set(job, job.fdFirst + totalTimeout(job));
    if (!this.#timers.has(this.#fdTimer)) {
      this.#timers.set(this.#fdTimer, now + this.#fdRetryMs);
    }
  }

  /**
   * Starts the waiters whose key has an idle conn (no descriptor needed),
   * then one more waiter for each descriptor freed.
   */
  #relaunchWaiters(): void {
    const waiters = this.#fdWaiters;
    const now = loopNow();
    // A waiter's start is a start to its origin: it keeps the origin's
    // delay from the last one, or a shortage's end would send them together.
    let early: Job[] | null = null;
    let wakeAt = Infinity;
    if (this.#pool.size > 0) {
      for (const job of waiters.drain()) {
        const at = job.origin!.nextStart;
        if (!this.#pool.has(job.poolKey)) waiters.push(job);
        else if (at > now && at !== job.ownStart) {
          waiters.push(job);
          wakeAt = Math.min(wakeAt, at);
        } else this.#startWaiter(job);
      }
    }
    this.#fdGrant = true;
    try {
      while (this.#fdFreed > 0 && waiters.length > 0) {
        const job = waiters.shift();
        const at = job.origin!.nextStart;
        if (at > now && at !== job.ownStart) {
          (early ??= []).push(job);
          wakeAt = Math.min(wakeAt, at);
          continue;
        }
        this.#fdFreed--;
        this.#startWaiter(job);
      }
    } finally {
      this.#fdGrant = false;
    }
    if (early !== null) {
      // First again, each with the descriptor it was to have.
      for (let i = early.length - 1; i >= 0; i--) waiters.unshift(early[i]!);
      this.#fdFreed = Math.min(this.#fdFreed, early.length);
    } else {
      this.#fdFreed = 0;
    }
    if (wakeAt !== Infinity) this.#timers.set(this.#fdWake, wakeAt);
    if (wakeAt !== Infinity && this.#allHeld(now)) {
      // Every waiter is held by its origin's delay: the wake, not the tick
      // (its 5 ms turns cost CPU for nothing meanwhile).
      this.#timers.delete(this.#fdTimer);
      return;
    }
    if (waiters.length === 0) {
      this.#fdBurst = 1;
      this.#timers.delete(this.#fdTimer);
    } else if (!this.#timers.has(this.#fdTimer)) {
      this.#timers.set(this.#fdTimer, loopNow() + this.#fdRetryMs);
    }
  }

  /** Whether every waiter's origin holds it back for a delay (not its own). */
  #allHeld(now: number): boolean {
    const waiters = this.#fdWaiters.drain();
    let all = true;
    for (const job of waiters) {
      const at = job.origin!.nextStart;
      if (!(at > now && at !== job.ownStart)) all = false;
      this.#fdWaiters.push(job);
    }
    return all;
  }

  #startWaiter(job: Job): void {
    const now = loopNow();
    job.awaitingFd = false;
    this.#timers.delete(job);
    const origin = job.origin!;
    if (origin.delay > 0) {
      // Its own reservation gives way to this start.
      origin.nextStart = origin.nextStart === job.ownStart
        ? now + origin.delay
        : Math.max(origin.nextStart, now + origin.delay);
      job.ownStart = origin.nextStart;
    }
    // The wait was for a slot, in effect: the attempt's time resumes.
    const waited = now - job.fdSince;
    job.queued += waited;
    job.attemptStarted += waited;
    if (job.hops === 0) {
      this.#launch(job, job.url, job.options);
    } else {
      job.hopUrl = job.launched;
      this.#launchHop(job, now);
    }
  }

  /** The timer: lets waiters connect though no conn of the crawl closed. */
  #fdTick(): void {
    if (this.#fdFailed) {
      this.#fdRetryMs = Math.min(this.#fdRetryMs * 2, FD_RETRY_MAX_MS);
      this.#fdBurst = 1;
    } else {
      this.#fdRetryMs = FD_RETRY_MIN_MS;
      this.#fdCap += this.#fdBurst;
      this.#fdBurst = Math.min(this.#fdBurst * 2, FD_BURST_MAX);
    }
    this.#fdFailed = false;
    this.#fdFreed += this.#fdBurst;
  }

  /** A waiter's time ran out before a descriptor came free. */
  #fdExpired(job: Job, now: number): void {
    this.#fdWaiters.remove(job);
    job.awaitingFd = false;
    // Its last wait, as a wait that ends with a descriptor counts it.
    job.queued += now - job.fdSince;
    const cause = this.#fdError;
    this.#end(job, {
      error: new Deno.errors.TimedOut(
        `Cannot fetch ${job.shown}: no file descriptor came free within the total timeout of ${
          totalTimeout(job)
        } ms${cause === null ? "" : ` (${cause.message})`}`,
        { cause },
      ),
    }, now);
  }

  /** Whether `outcome` is retried (a listed status, a transient error): then it waits for its turn. */
  #retried(job: Job, outcome: FetchResultBody, now: number): boolean {
    const policy = this.#config.retry;
    if (job.attempts > policy.limit) return false;
    const wait = retryDelay(
      policy,
      job.attempts,
      this.#replayable(job),
      outcome,
      Date.now(),
      Math.random(),
    );
    if (wait < 0) return false;
    this.#retryAfter(job, wait, now);
    return true;
  }

  /** A diverted body is in its sink: the URL ends on the loop's next turn. */
  #written(job: Job, result: FetchResult): void {
    this.#sinkWritten.push({ job, result });
    this.#sel[kResume]();
  }

  #finishWritten(): void {
    const written = this.#sinkWritten;
    this.#sinkWritten = [];
    // An abort or the deadline may have ended the URL meanwhile.
    const now = loopNow();
    for (const { job, result } of written) {
      if (job.done) continue;
      job.sinkWrite = null;
      this.#timers.delete(job);
      // The URL ends now, once the sink has the body, as when it streams there.
      result.timings = untilNow(job, result.timings, now);
      this.#finish(job, result);
    }
  }

  #replayable(job: Job): boolean {
    // A retry starts the URL again from its own request, not from the hop a
    // redirect led to: a POST answered 303 then 503 must not be sent again.
    // A sink that took part of a body cannot take the body again; a sink
    // function makes the next attempt a fresh one.
    return canResend(job.options) &&
      (job.options.sink?.locked !== true ||
        job.options[kSinkFactory] !== undefined);
  }

  /** Gives the slot back and queues the job again after `wait` ms. */
  #retryAfter(job: Job, wait: number, now: number): void {
    this.#release(job);
    this.#releaseSlot(job, now);
    job.client = null;
    job.origin = null;
    job.hop = null;
    job.hops = 0;
    job.backingOff = true;
    job.queuedNow = true;
    job.waitingSince = now;
    this.#timers.set(job, now + wait);
  }

  /** Unregisters a finished attempt's conn, or pools it if reusable. */
  #release(job: Job): void {
    const slot = job.slot;
    job.slot = null;
    const client = job.client;
    if (client === null) return;
    // Its response or error is the job's now: a conn kept idle, or a spare,
    // holds its client for a while and must not hold the URL's bytes with it.
    client[kForget]();
    let reusable = this.#config.keepAlive ? client[kDetach]() : null;
    if (reusable !== null && slot?.dirty === true) {
      // Read while the request waited on its sink: not reused. (One readable
      // now is not either: the check at take, or the select, closes it.)
      reusable.close();
      reusable = null;
    }
    if (reusable !== null && job.sentAt === job.sentAt) {
      // The origin's next request may go out on this conn at once, where one
      // on a new conn would connect first as this one did: the delay counts
      // from this one's send too, or the server sees them closer than it.
      this.#scheduler.sent(job.origin!, job.sentAt, job.delay, loopNow());
    }
    if (reusable !== null) {
      // A wait as short as the time it takes to reuse a conn at all adds no
      // risk: only a longer one is checked.
      if (
        slot !== null && slot.conn === reusable &&
        (slot.unwatched +
                (slot.unwatchedSince >= 0
                  ? loopNow() - slot.unwatchedSince
                  : 0) >=
            VERIFY_MS ||
          // Bytes past the response may wait unread: read them first.
          client[kUnreadMayWait]())
      ) {
        slot.idle(client);
        this.#watch(slot, EVENT_READ);
        this.#verifying.push({
          slot,
          key: job.poolKey,
          select: this.#selects,
          at: loopNow(),
        });
        return;
      }
      if (
        slot !== null && slot.conn === reusable &&
        this.#pool.put(job.poolKey, slot)
      ) {
        slot.idle(client);
        slot.pooledSelect = this.#selects;
        slot.pooledAt = loopNow();
        // Idle, it is watched for reads: readiness then means the server closed it.
        // It was receiving, so it is registered for EVENT_READ already.
        if (slot.events !== EVENT_READ) this.#watch(slot, EVENT_READ);
        return;
      }
      reusable.close();
    }
    if (slot !== null) {
      this.#watch(slot, 0);
      slot.job = null;
    }
    const conn = client.pollable;
    // A descriptor freed: a waiter may connect.
    if (
      this.#fdWaiters.length > 0 && conn.closed && conn.remoteAddr !== null
    ) this.#fdFreed++;
    const state = client.state;
    if (
      (state === "done" || state === "failed") && conn.closed &&
      this.#spare.length < this.#config.limits.concurrency
    ) this.#spare.push(client);
  }

  /** Registers a slot's conn for `events`, changes it, or (0) unregisters it. */
  #watch(slot: Slot, events: number): void {
    const before = slot.events;
    if (before === events) return;
    slot.events = events;
    if (events === 0) this.#sel.unregister(slot.conn);
    else if (before === 0) this.#sel.register(slot.conn, events, slot);
    else this.#sel.modify(slot.conn, events, slot);
  }

  /**
   * Pools the conns read for one select since their release that stayed quiet;
   * one that turned readable (the select's batch closed it already, or its
   * read settled since) or closed is not kept.
   */
  #verified(): void {
    const now = loopNow();
    const list = this.#verifying;
    const checked: typeof list = [];
    let kept = 0;
    for (const entry of list) {
      const slot = entry.slot;
      // Closed by a select's batch (the server wrote or closed): done with.
      if (slot.job !== null || slot.events === 0) continue;
      // Released since this select began, or too recently for Deno to have
      // polled the OS for it (a busy loop does so every few dozen turns).
      if (entry.select === this.#selects || now - entry.at < VERIFY_MS) {
        list[kept++] = entry;
      } else checked.push(entry);
    }
    // Only those still under check are listed while the checked ones start
    // hops: a hop counts them to decide whether to wait.
    list.length = kept;
    for (const { slot, key, learn } of checked) {
      if (slot.conn.closed || (slot.conn[kReady]() & EVENT_READ) !== 0) {
        this.#closeIdle(slot);
        continue;
      }
      if (learn === true) rememberKey(this.#keepsConns, key);
      slot.pooledSelect = -1;
      slot.pooledAt = -Infinity;
      // A hop waiting for it takes it straight away (the pool may be full).
      const hop = this.#aborted() ? undefined : this.#nextAwaiting(key);
      if (hop !== undefined) {
        this.#relaunch(hop.job, hop.url, hop.options, slot);
      } else this.#giveBack(slot, key);
    }
    // Aborted: the loop's next turn ends them; nothing more is sent.
    if (this.#awaitingConn.size > 0 && !this.#aborted()) {
      // Each takes a conn just pooled, waits again while its key still has one
      // being checked, or opens one.
      const awaiting = this.#awaitingConn;
      this.#awaitingConn = new Map();
      for (const hops of awaiting.values()) {
        for (const { job, url, options } of hops) {
          if (job.done || !job.awaitingConn) continue;
          job.awaitingConn = false;
          this.#relaunch(job, url, options);
        }
      }
    }
  }

  /**
   * Starts a hop that waited for a conn (on `given`, a conn just checked, if
   * any), with what is left of its attempt's time.
   */
  #relaunch(
    job: Job,
    url: HttpUrl,
    options: RequestOptions,
    given?: Slot,
  ): void {
    const timeout = totalTimeout(job);
    const remaining = job.attemptStarted + timeout - performance.now();
    if (remaining <= 0) {
      if (given !== undefined) this.#giveBack(given, job.poolKey);
      this.#end(
        job,
        { error: hopTimedOut(job, "its request was sent") },
        loopNow(),
      );
      return;
    }
    this.#launch(job, url, {
      ...options,
      timeout: remaining,
      [kTotalLimit]: timeout,
    }, given);
  }

  /** The first hop still waiting for a conn of `key`, taken off the list. */
  #nextAwaiting(
    key: string,
  ): { job: Job; url: HttpUrl; options: RequestOptions } | undefined {
    const hops = this.#awaitingConn.get(key);
    if (hops === undefined) return undefined;
    let hop;
    while ((hop = hops.shift()) !== undefined) {
      if (!hop.job.done && hop.job.awaitingConn) break;
    }
    if (hops.length === 0) this.#awaitingConn.delete(key);
    if (hop !== undefined) hop.job.awaitingConn = false;
    return hop;
  }

  #aborted(): boolean {
    return this.#config.signal?.aborted === true;
  }

  /** An idle conn back to the pool, or closed when the pool has no room. */
  #giveBack(slot: Slot, key: string): void {
    if (!this.#pool.put(key, slot)) this.#closeIdle(slot);
  }

  /** A hop's attempt ran out of time while it waited for a conn under check. */
  #awaitExpired(job: Job, now: number): void {
    job.awaitingConn = false;
    const hops = this.#awaitingConn.get(job.poolKey);
    const at = hops?.findIndex((hop) => hop.job === job) ?? -1;
    if (at >= 0) hops!.splice(at, 1);
    if (hops?.length === 0) this.#awaitingConn.delete(job.poolKey);
    this.#end(job, { error: hopTimedOut(job, "its request was sent") }, now);
  }

  /** Closes and forgets an idle conn the server closed (or wrote to). */
  #dropIdle(slot: Slot): void {
    this.#pool.remove(slot);
    this.#closeIdle(slot);
  }

  /**
   * Closes a conn out of the pool, at once: idle, it owes nothing (a TLS
   * conn's graceful close would hold its descriptor up to 10 s, waiting for
   * the peer's close).
   */
  #closeIdle(slot: Slot): void {
    this.#watch(slot, 0);
    slot.conn[kCloseNow]();
    if (this.#fdWaiters.length > 0) this.#fdFreed++;
  }

  // --- finish ----------------------------------------------------------------

  /** A URL that failed before it was queued (bad URL, bad spec). */
  #fail(index: number, shown: string, data: unknown, error: unknown): void {
    this.#done++;
    this.#total = Math.max(this.#total, this.#done + this.#open);
    const result: FetchResult = {
      url: shown,
      ok: false,
      error,
      data,
      attempts: 0,
      timings: { ...NO_TIMINGS },
    };
    this.#finished.push({ index, result, elapsed: 0 });
    this.#progress(result);
  }

  #finish(job: Job, result: FetchResult): void {
    const sink = job.options.sink;
    if (job.sinkWrite !== null) {
      // Ended before the crawl's own write to the sink did (timeout, abort).
      job.sinkWrite.writer.abort(result.ok ? undefined : result.error)
        .catch(() => {});
      job.sinkWrite = null;
    } else if (!result.ok) {
      // The crawl owns the sink across attempts: it ends it when the URL does.
      this.#abortSink(sink, result.error, job);
    }
    if (!result.ok && job.options.body !== this.#config.shared.body) {
      // Its own body stream, when no request took it (it was queued when the
      // crawl was aborted, say): cancelled, as fetch() cancels on an abort,
      // so that a file's stream closes its file.
      this.#cancelBody(job.options.body, result.error, job);
    }
    job.done = true;
    this.#unlink(job);
    job.client = null;
    job.origin = null;
    this.#done++;
    // Without an array the total is unknown: count what was read so far.
    this.#total = Math.max(this.#total, this.#done + this.#open);
    this.#finished.push({
      index: job.index,
      result,
      elapsed: result.timings.total,
    });
    this.#progress(result);
  }

  /**
   * Calls `onProgress`. Typed to return nothing, it may be async all the same
   * (a results writer): its rejection fails the crawl as a throw does, at the
   * loop's next turn, rather than going unhandled (which ends the process).
   */
  #progress(result: FetchResult): void {
    const onProgress = this.#config.onProgress;
    if (onProgress === undefined) return;
    const returned: unknown = onProgress(this.#done, this.#total, result);
    // The caller's code may have taken a while: what starts after it waited.
    refresh();
    if (isThenable(returned)) {
      const settled: Promise<void> = Promise.resolve(returned).then(
        () => void this.#progressPending.delete(settled),
        (error) => {
          this.#progressPending.delete(settled);
          this.#progressFailed ??= { error };
          this.#sel.wakeup();
        },
      );
      this.#progressPending.add(settled);
    }
  }

  #timings(job: Job, client: HttpClient | null, now: number): FetchTimings {
    const queued =
      (job.queuedNow ? job.queued + now - job.waitingSince : job.queued) +
      // Ended while held for its origin's delay: that wait so far.
      (job.sendHold ? now - job.upAt : 0) +
      // Ended (aborted) while waiting for a descriptor: that wait so far.
      (job.awaitingFd ? now - job.fdSince : 0);
    const stamps = client === null ? undefined : client[kStamps];
    return {
      queued,
      // Still connecting at the end: the connect failed (or timed out), and
      // the time it took is the connect's, not a reused conn's 0.
      connect: stamps === undefined ? 0 : orZero(
        (Number.isNaN(job.upAt)
          ? Number.isNaN(stamps.connected) ? now : stamps.connected
          : job.upAt) - stamps.start,
      ),
      firstByte: stamps === undefined
        ? 0
        : orZero(stamps.firstByte - stamps.sent),
      total: Number.isNaN(job.started) ? 0 : now - job.started,
    };
  }

  #takeFinished(): FetchEntry[] {
    const finished = this.#finished;
    this.#finished = [];
    // Counted from here, not once the caller has it: an async source's read
    // ahead must not take the room in between.
    if (this.#onWork !== null) this.#held += finished.length;
    return finished;
  }

  // --- 5. expire -------------------------------------------------------------

  /** Handles everything due: timed-out clients, ended backoffs, origins free again. */
  #expire(): void {
    const signal = this.#config.signal;
    const now = loopNow();
    if (this.#lateGrace) {
      this.#lateGrace = false;
    } else if (now - this.#timers.nextDue > LATE_MS) {
      // The loop ran late (the process was stopped, the caller's code held
      // it): reads that settled meanwhile are in no batch yet. One select
      // polls first, so a response that came in time is not failed as a
      // timeout for being read late.
      this.#lateGrace = true;
      return;
    }
    let entry: Timed | undefined;
    while (
      !signal?.aborted && (entry = this.#timers.popDue(now)) !== undefined
    ) {
      if (entry === this.#fdTimer) {
        this.#fdTick();
      } else if (entry === this.#fdWake) {
        // The next turn starts the waiters whose delay has passed.
      } else if (!(entry instanceof Job)) {
        this.#scheduler.wake(entry as Origin<Job>, now);
      } else if (entry.awaitingFd) {
        this.#fdExpired(entry, now);
      } else if (entry.sendHold) {
        entry.sendHold = false;
        // Its deadline came first (or with the hold's end): the client fails
        // with its timeout (the total one: the write-ready conn is up), and
        // nothing went out to keep the origin's next request waiting. Else
        // another held one may have gone out meanwhile: held again then.
        const ends = now < entry.holdUntil ||
          now >= entry.client![kTotalDeadline];
        if (ends || !this.#holdsSend(entry)) {
          // A politeness delay: `queued` counts it (API.md), not `connect`.
          entry.queued += now - entry.upAt;
          this.#step(entry, EVENT_WRITE);
        }
      } else if (entry.hopUrl !== null) {
        this.#hopExpired(entry, now);
      } else if (entry.sinkWrite !== null) {
        const { result } = entry.sinkWrite;
        const error = new Deno.errors.TimedOut(
          `Cannot fetch ${entry.shown}: the total timeout of ${
            totalTimeout(entry)
          } ms passed while writing the body to the sink`,
        );
        this.#finish(
          entry,
          failedResult(entry, error, untilNow(entry, result.timings, now)),
        );
      } else if (entry.awaitingConn) {
        this.#awaitExpired(entry, now);
      } else if (entry.backingOff) {
        entry.backingOff = false;
        // The origin may have been forgotten meanwhile: look it up again.
        const origin = this.#scheduler.origin(entry.url.site.origin);
        entry.origin = origin;
        this.#scheduler.push(origin, entry, now, true);
      } else {
        this.#step(entry, 0);
      }
    }
  }

  // --- abort and teardown ----------------------------------------------------

  /** Ends every open URL with `reason`; nothing more is read from the source. */
  #abort(reason: unknown): void {
    // Read ahead from an async source: read, so they end like the others.
    for (const item of this.#delivered) {
      const { shown, data } = describeItem(item);
      this.#abortSinkOf(item, reason);
      this.#fail(this.#read++, shown, data, reason);
    }
    this.#delivered = [];
    this.#scheduler.drain();
    this.#fdWaiters.drain();
    const now = loopNow();
    for (let job = this.#first; job !== null; job = this.#first) {
      const client = job.client;
      this.#timers.delete(job);
      const slot = job.slot;
      job.slot = null;
      if (slot !== null) this.#watch(slot, 0);
      client?.close(reason);
      // Writing a response's body to its sink: its client is gone, its
      // timings are that response's.
      const timings = job.sinkWrite !== null
        ? untilNow(job, job.sinkWrite.result.timings, now)
        : this.#timings(job, client, now);
      this.#finish(job, failedResult(job, reason, timings));
    }
  }

  /** Closes every conn and the selector, and lets go of the source. */
  #closeAll(): void {
    const closed = new Deno.errors.Interrupted("Request closed");
    this.#ended = this.#config.signal?.aborted
      ? this.#config.signal.reason
      : closed;
    for (let job = this.#first; job !== null; job = job.next) {
      job.client?.close(closed);
      job.sinkWrite?.writer.abort(closed).catch(() => {});
      // Queued, or its response not begun: the crawl owns its sink, and
      // its body stream if no request took it.
      this.#abortSink(job.options.sink, closed, job);
      if (job.options.body !== this.#config.shared.body) {
        cancelBody(job.options.body, closed);
      }
    }
    for (const item of this.#delivered) this.#abortSinkOf(item, closed);
    this.#first = this.#last = null;
    // Idle: released at once, as #closeIdle does (a TLS conn's graceful
    // close would outlive the crawl, and a caller's test sanitizers see it).
    for (const slot of this.#pool.drain()) slot.conn[kCloseNow]();
    for (const { slot } of this.#verifying) slot.conn[kCloseNow]();
    this.#verifying.length = 0;
    this.#awaitingConn.clear();
    this.#fdWaiters.drain();
    this.#timers.clear();
    this.#sel.close();
    if (!this.#exhausted) {
      // As `for..of` does when a loop ends early: let the source clean up.
      // What its return() throws is ignored: an abort never fails the crawl,
      // and everything of the crawl's is closed by now.
      try {
        this.#sync?.return?.();
        // Not awaited: a pending `next()` may never settle.
        ignoreRejection(this.#async?.return?.());
      } catch {
        // Ignored, as above.
      }
    }
  }

  /**
   * Aborts `sink` for `job` (or for a URL that never became one), unless
   * another open URL writes to it.
   */
  #abortSink(sink: unknown, reason: unknown, job: Job | null): void {
    if (!(sink instanceof WritableStream) || sink.locked) return;
    const owner = this.#sinkOwners.get(sink);
    if (owner !== undefined && owner !== job && !owner.done) return;
    try {
      ignoreRejection(sink.abort(reason));
    } catch {
      // A subclass's abort() that throws: the caller's trouble, not the crawl's.
    }
  }

  /**
   * Aborts the sink a source item would have used (its own, or the crawl's),
   * and cancels its own body stream.
   */
  #abortSinkOf(item: unknown, reason: unknown): void {
    let own: unknown;
    let body: unknown;
    try {
      own = (item as RequestSpec | null)?.sink;
      body = (item as RequestSpec | null)?.body;
    } catch {
      // A getter that throws: nothing more to end.
    }
    this.#abortSink(own ?? this.#config.shared.sink, reason, null);
    cancelBody(body, reason);
  }

  /**
   * Cancels the body stream of `job` (or of a URL that never became one)
   * that no request took, unless another open URL is to send it (two specs
   * may share one, as they may a sink).
   */
  #cancelBody(body: unknown, reason: unknown, job: Job | null): void {
    if (!(body instanceof ReadableStream)) return;
    for (let other = this.#first; other !== null; other = other.next) {
      if (other !== job && !other.done && other.options.body === body) return;
    }
    if (cancelBody(body, reason)) this.#cancelledBodies.add(body);
  }

  #link(job: Job): void {
    job.prev = this.#last;
    if (this.#last === null) this.#first = job;
    else this.#last.next = job;
    this.#last = job;
    this.#open++;
  }

  #unlink(job: Job): void {
    if (job.prev === null) this.#first = job.next;
    else job.prev.next = job.next;
    if (job.next === null) this.#last = job.prev;
    else job.next.prev = job.prev;
    job.prev = job.next = null;
    this.#open--;
  }
}

/** The attempt's whole time, redirects included. */
function totalTimeout(job: Job): number {
  return job.options.timeout ?? 30_000;
}

/**
 * The error of a hop whose attempt's time ran out before it could start:
 * queued as a redirect's hop, or waiting for a conn under check.
 */
function hopTimedOut(job: Job, before = `redirect ${job.hops}`): Error {
  return new Deno.errors.TimedOut(
    `Cannot fetch ${job.shown}: the total timeout of ${
      totalTimeout(job)
    } ms passed before ${before}`,
  );
}

/**
 * A response's timings, with `total` running on to `now`: a body the crawl
 * writes to the sink after the response ended counts in the URL's time.
 */
function untilNow(job: Job, timings: FetchTimings, now: number): FetchTimings {
  return { ...timings, total: now - job.started };
}

/** A job's result when it failed with `error`. */
function failedResult(
  job: Job,
  error: unknown,
  timings: FetchTimings,
): FetchResult {
  return {
    url: job.shown,
    ok: false,
    error,
    data: job.data,
    attempts: job.attempts,
    timings,
  };
}

/** How an attempt ended: the response, or why there is none. */
type FetchResultBody = HttpResponse | { error: unknown };

/** `result.url`: the input as given, with its password (if any) hidden. */
function shownUrl(input: string | URL, url: HttpUrl | null): string {
  // One that fails before any fetch hides its password all the same.
  if (url === null) return redactInput(input);
  return url.credentials ? redactUrl(input, url.url) : String(input);
}

/** `result.url` and `data` of a source item, whatever it is. */
function describeItem(
  item: string | URL | RequestSpec | undefined,
): { shown: string; data: unknown } {
  let input: unknown = item;
  let data: unknown;
  try {
    if (typeof item === "object" && item !== null && !(item instanceof URL)) {
      input = item.url;
      data = item.data;
    }
  } catch {
    // Getters that throw: shown by what it is.
    return { shown: textOf(item), data: undefined };
  }
  let url: HttpUrl | null = null;
  try {
    url = toHttpUrl(input as string | URL);
  } catch {
    // Shown by what it looks like.
  }
  return { shown: shownUrl(input as string | URL, url), data };
}

/** The error of a redirect that ends a URL. */
function redirectError(
  reason: "error" | StopReason | null,
  location: string | null,
): TypeError {
  const to = JSON.stringify(location);
  return new TypeError(
    reason === "error"
      ? `Cannot fetch: redirected to ${to} with redirect "error"`
      : reason === "too-many-redirects"
      ? `Cannot fetch: more than ${MAX_REDIRECTS} redirects, the last to ${to}`
      : `Cannot fetch: the redirect to ${to} needs the request's stream body again, and a stream can be sent only once`,
  );
}

function orZero(value: number): number {
  return Number.isNaN(value) ? 0 : value;
}

/**
 * Adds `key` to one of the crawl's sets of keys it learned something of,
 * bounded: past {@linkcode MAX_KNOWN_KEYS} it starts over (a crawl over more
 * origins learns some again).
 */
function rememberKey(keys: Set<string>, key: string): void {
  if (keys.has(key)) return;
  if (keys.size >= MAX_KNOWN_KEYS) keys.clear();
  keys.add(key);
}

/**
 * Whether a hop's request is sent again on a new conn when the kept conn it
 * went out on turns out closed (as `HttpClient` decides it: an idempotent
 * method, no stream body).
 */
function canResend(options: RequestOptions): boolean {
  return IDEMPOTENT_METHODS.has(options.method ?? "GET") &&
    !(options.body instanceof ReadableStream);
}

/**
 * Cancels a request body stream that no request took (and so never will);
 * whether it did. A subclass's cancel() that throws, or answers no promise,
 * is the caller's trouble, not the crawl's.
 */
function cancelBody(body: unknown, reason: unknown): boolean {
  if (!(body instanceof ReadableStream)) return false;
  try {
    if (body.locked) return false;
    ignoreRejection(body.cancel(reason));
  } catch {
    // Ignored, as above.
  }
  return true;
}

/** Throws what `for..of` throws for an iterator's `next()` that answers no object. */
function checkIterResult(result: unknown): void {
  if (typeof result !== "object" || result === null) {
    throw new TypeError(
      `Cannot fetch: the source's iterator answered next() with ${
        result === null ? "null" : typeof result
      }, not an iterator result object`,
    );
  }
}

{
  const conn = specimenConn();
  keepSpecimens(...Crawl.specimens(conn));
  conn.close();
}
