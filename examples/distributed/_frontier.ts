/**
 * The Redis side of `distributed_crawl.ts`: the key names, the Lua scripts, the
 * frontier read through a consumer group as `fetchEach`'s async source
 * ({@linkcode FrontierSource}) and the commit of results ({@linkcode Committer}).
 *
 * It talks to Redis through the small {@linkcode Redis} interface, so that the
 * npm client stays in one place (the command-line file) and every round trip is
 * counted there.
 *
 * @module
 */
import type { RequestSpec } from "../../mod.ts";

/**
 * What this module needs of a Redis client: each call is one round trip. Both
 * methods reject with the error reply, or with {@linkcode RedisUnavailableError}
 * when the command may not have run (connection lost, scripts lost by a restart).
 */
export interface Redis {
  /** Sends one command; resolves its raw RESP2 reply. */
  call(args: string[]): Promise<unknown>;
  /** Sends `commands` in one `MULTI`/`EXEC`; resolves the replies in order. */
  transaction(commands: string[][]): Promise<unknown[]>;
  /**
   * Whether the connection is up now. (A client that queues commands while
   * reconnecting hides an outage from `call`: a command sent meanwhile runs
   * when it is back.)
   */
  isUp(): boolean;
  /**
   * Calls `listener` each time the connection comes back after a loss, with
   * how long it was down, in ms (`Infinity` when unknown), and at once for
   * the latest comeback before it, if any; returns a function that stops the
   * calls.
   */
  onBack(listener: (downFor: number) => void): () => void;
}

/**
 * Redis could not be reached, or lost the scripts in a restart: the command may or
 * may not have run, and is worth sending again once the client has reconnected.
 */
export class RedisUnavailableError extends Error {
  override name = "RedisUnavailableError";
}

/**
 * How long reads and commits keep retrying while Redis is unreachable, in ms:
 * about as long as the client keeps reconnecting.
 */
export const UNAVAILABLE_FOR = 60_000;

/** Waits between retries while Redis is unreachable: `attempt` 0, 1, ... */
function backoff(attempt: number): Promise<void> {
  return new Promise((resolve) =>
    setTimeout(resolve, Math.min(100 * 2 ** attempt, 2_000))
  );
}

/**
 * `call(attempt)`, made again while it fails with Redis unavailable, for up to
 * {@linkcode UNAVAILABLE_FOR}: for idempotent work only (a run whose reply was
 * lost may have been done).
 */
async function whileUnavailable<T>(
  call: (attempt: number) => Promise<T>,
): Promise<T> {
  const since = performance.now();
  for (let attempt = 0;; attempt++) {
    try {
      return await call(attempt);
    } catch (error) {
      if (
        !(error instanceof RedisUnavailableError) ||
        performance.now() - since > UNAVAILABLE_FOR
      ) throw error;
      await backoff(attempt);
    }
  }
}

/**
 * When a worker may claim other workers' idle entries (`XAUTOCLAIM`) after it
 * lost Redis (entries stopped workers released, it may claim at any time):
 * after a hold-off of `claimIdle` ms, counted from the first time
 * Redis came back since claims were last allowed, and counted again from the
 * latest comeback after an outage of `claimIdle / 4` or longer, or from when
 * Redis started, for a worker that connects within `claimIdle` of a Redis
 * (re)start; never while the reading loop's commands fail (nor, the caller
 * sees to it, while its connection is down). Times are `performance.now()`'s.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { ClaimHoldOff } from "./_frontier.ts";
 *
 * const holdOff = new ClaimHoldOff(4_000);
 * holdOff.back(0, 100); // dropped for 100 ms: held off until 4,000
 * holdOff.back(3_000, 100); // again: a short outage, still until 4,000
 * assert(!holdOff.allows(3_999));
 * assert(holdOff.allows(4_000));
 * ```
 */
export class ClaimHoldOff {
  // Why a hold-off: Redis counts as an entry's idle time the time its holder
  // could not renew it, a restart's downtime included (and a restarted Redis
  // forgot the renew script), so right after Redis comes back the entries of
  // live workers can look as dead as a dead worker's. Their holders get
  // claimIdle from the comeback to renew them.
  //
  // Why from the first comeback: counted from the latest one, as it was, a
  // connection that drops more often than every claimIdle (a Redis `timeout`
  // shorter than it closing an idle connection, a flapping network) never
  // claimed, and a crawl whose live workers were all in that state never
  // ended: a dead worker's entries stayed pending. Short drops within the
  // hold-off now leave its end where it was.
  //
  // Why a long outage starts it over: a holder renews what it has held for
  // claimIdle / 2, checking every claimIdle / 4 at most, so while it reaches
  // Redis its entries stay under about 3/4 of claimIdle. An outage shorter
  // than the last quarter delays its renewals by about its own length, plus
  // the holder's own reconnect (node-redis retries after 0, 0.2, 0.6, 1.4 s
  // ...) and a beat when a restarted Redis refused the queued renewal
  // (NOSCRIPT: the scripts are loaded again after it); a longer outage may
  // take an entry past claimIdle outright, and then the holders need their
  // time back, however old the hold-off: the first comeback's time would let
  // a claim through at once.
  //
  // What is left: an entry's worst age before renewal is about claimIdle / 2
  // + two beats + the outage + the holder's reconnect, which passes claimIdle
  // for the entries late in their window when claimIdle is below ~10-16 s
  // (the default, 60 s, has room). A short outage reaches them only within a
  // hold-off still in force (one that began earlier and never allowed a
  // claim: a worker long without room for more): the first comeback after
  // claims were allowed starts a full hold-off. A stall that drops nothing
  // (a paused Redis) shows only as late replies, which count as outages
  // (`Frontier#timed`), but for a claim already on the wire. So can a holder's own
  // connection that drops at every beat, which this side does not see. Such
  // an entry is fetched twice and keeps one result (the commit script checks
  // who holds it).
  readonly #claimIdle: number;
  /** When the hold-off in force started; `null`: none. */
  #since: number | null = null;
  /** When the first of the failures not yet followed by a success happened. */
  #lostAt: number | null = null;

  /** @param claimIdle The `--claim-idle` of the workers, in ms. */
  constructor(claimIdle: number) {
    this.#claimIdle = claimIdle;
  }

  /** A connection came back at `at` after `downFor` ms. */
  back(at: number, downFor: number): void {
    if (this.#since === null || downFor >= this.#claimIdle / 4) {
      this.#since = at;
    }
  }

  /**
   * Redis itself (re)started at `at`, as its uptime tells a worker that just
   * connected: its downtime before that is unknown, so a hold-off runs from
   * then, as after a long outage, unless one in force started later. (A
   * worker started after a Redis restart saw no comeback of its own, while
   * the holders of entries Redis kept may not have renewed them yet.) The
   * uptime counts the time Redis spent loading its data, when holders cannot
   * renew: a worker started right after a load longer than `claimIdle` is not
   * held off (nor after a failover to a replica long up).
   */
  serverStarted(at: number): void {
    if (this.#since === null || at > this.#since) this.#since = at;
  }

  /**
   * A command failed at `at`: Redis unavailable, or its connection lost.
   * Returns when the first of the failures since the last success happened.
   */
  lost(at: number): number {
    return this.#lostAt ??= at;
  }

  /** A command went through at `at`: after failures, Redis is back. */
  found(at: number): void {
    if (this.#lostAt === null) return;
    const downFor = at - this.#lostAt;
    this.#lostAt = null;
    this.back(at, downFor);
  }

  /**
   * Whether to claim entries idle for `claimIdle` now (released ones may be
   * claimed at any time). A `true` ends the hold-off: the next one starts at
   * a comeback.
   */
  allows(now: number): boolean {
    if (this.#lostAt !== null) return false;
    if (this.#since !== null) {
      if (now - this.#since < this.#claimIdle) return false;
      this.#since = null;
    }
    return true;
  }
}

/** The least lateness of a reply that counts as a stall of Redis (`Frontier#timed`), in ms. */
const STALL_MIN = 500;
/** How many round trips make the way to Redis's usual one. */
const RECENT_REPLIES = 8;

/** The names of everything a crawl keeps in Redis. */
export interface Keys {
  /** The stream of URLs to fetch (field `url`), read through {@linkcode Keys.group}. */
  frontier: string;
  /** The stream of results: `url`, `ok`, `status`, `bytes`, `worker`, `error`. */
  results: string;
  /** The set of every URL ever put in the frontier. */
  seen: string;
  /** How many results have `ok` `false`. */
  errors: string;
  /** The prefix of the per-origin politeness keys (followed by the origin). */
  polite: string;
  /** The consumer group of the workers on {@linkcode Keys.frontier}. */
  group: string;
}

/**
 * The key names under `prefix`.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { keysFor } from "./_frontier.ts";
 *
 * assertEquals(keysFor("crawl:").frontier, "crawl:frontier");
 * ```
 */
export function keysFor(prefix: string): Keys {
  return {
    frontier: `${prefix}frontier`,
    results: `${prefix}results`,
    seen: `${prefix}seen`,
    errors: `${prefix}errors`,
    polite: `${prefix}polite:`,
    group: "workers",
  };
}

/**
 * The Lua scripts, run with `EVALSHA` after one `SCRIPT LOAD` each. A script runs
 * atomically, as a `MULTI` does, and can also decide on what it reads.
 */
export const SCRIPTS = {
  /**
   * KEYS: seen, frontier; ARGV: URLs. Adds each URL not yet seen to both; returns
   * how many were new. Refuses (`NOGROUP`) when the frontier has no consumer
   * group: the crawl's state is gone (a `FLUSHALL`, a restart without
   * persistence), and a frontier made anew by `XADD` would hold only the URLs
   * from here on, a seed's list cut in two without a word.
   */
  seed: `
local groups = redis.pcall('XINFO', 'GROUPS', KEYS[2])
if groups.err or #groups == 0 then
  return redis.error_reply('NOGROUP the frontier ' .. KEYS[2] .. ' or its consumer group is gone')
end
local added = 0
for i = 1, #ARGV do
  if redis.call('SADD', KEYS[1], ARGV[i]) == 1 then
    redis.call('XADD', KEYS[2], '*', 'url', ARGV[i])
    added = added + 1
  end
end
return added`,
  /**
   * KEYS: frontier, results, seen, errors; ARGV: group, worker, entry id, url, ok,
   * status, bytes, error, then the page's links. When the entry is still pending
   * for this worker: appends the result, acknowledges and deletes the entry, and
   * adds the links not yet seen to the frontier; returns 1. Otherwise it changes
   * nothing, so that each entry has exactly one result, and returns 0 when another
   * worker holds the entry (it claimed it while this one was slow, not dead), 2
   * when nobody does: a result was written already, by that other worker or by
   * this one in a run whose reply was lost.
   */
  commit: `
local mine = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #mine == 0 then
  if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1) == 0 then return 2 end
  return 0
end
redis.call('XADD', KEYS[2], '*', 'url', ARGV[4], 'ok', ARGV[5], 'status', ARGV[6],
  'bytes', ARGV[7], 'worker', ARGV[2], 'error', ARGV[8])
if ARGV[5] ~= 'true' then redis.call('INCR', KEYS[4]) end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
for i = 9, #ARGV do
  if redis.call('SADD', KEYS[3], ARGV[i]) == 1 then
    redis.call('XADD', KEYS[1], '*', 'url', ARGV[i])
  end
end
return 1`,
  /**
   * KEYS: frontier; ARGV: group, worker, then entry ids. Resets the idle time of
   * each entry still pending for this worker (`XCLAIM` to itself, `JUSTID`: the
   * delivery count stays), so that no other worker's `XAUTOCLAIM` takes an entry
   * a live worker holds; one another worker claimed meanwhile stays theirs.
   * Returns how many were renewed.
   */
  renew: `
local renewed = 0
for i = 3, #ARGV do
  if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2]) > 0 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    renewed = renewed + 1
  end
end
return renewed`,
  /**
   * KEYS: frontier, seen, and for "work" results, errors, a politeness key;
   * ARGV: group, "seed" or "work". The commands the other scripts run that
   * this Redis user may not (as `redis.acl_check_cmd`, Redis 7, says), each
   * with its key: a script stopped by an ACL halfway leaves its first writes
   * done (a result without its ack, a URL seen and never queued), so a user
   * short of one learns it at start. Changes nothing; `{}` before Redis 7.
   */
  preflight: `
if redis.acl_check_cmd == nil then return {} end
local checks = {
  {'SADD', KEYS[2], 'u'},
  {'XADD', KEYS[1], '*', 'url', 'u'},
  {'XINFO', 'GROUPS', KEYS[1]},
}
if ARGV[2] == 'work' then
  local more = {
    {'XPENDING', KEYS[1], ARGV[1], '0-1', '0-1', '1', 'w'},
    {'XADD', KEYS[3], '*', 'url', 'u'},
    {'INCR', KEYS[4]},
    {'XACK', KEYS[1], ARGV[1], '0-1'},
    {'XDEL', KEYS[1], '0-1'},
    {'XCLAIM', KEYS[1], ARGV[1], 'w', '0', '0-1', 'JUSTID'},
    {'TIME'},
    {'GET', KEYS[5]},
    {'SET', KEYS[5], '1', 'PX', '1'},
  }
  for _, check in ipairs(more) do table.insert(checks, check) end
end
local denied = {}
for _, check in ipairs(checks) do
  local ran, allowed = pcall(redis.acl_check_cmd, unpack(check))
  if not ran or not allowed then
    table.insert(denied, check[1] .. (check[2] and (' ' .. check[2]) or ''))
  end
end
return denied`,
  /**
   * KEYS: frontier; ARGV: group, worker, idle ms, then entry ids. Of the
   * entries still pending for this worker, claims each to itself with that
   * idle time; one another worker took meanwhile (this one was frozen, not
   * dead) stays theirs. Returns how many were released.
   */
  release: `
local released = 0
for i = 4, #ARGV do
  if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2]) > 0 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', ARGV[3], 'JUSTID')
    released = released + 1
  end
end
return released`,
  /**
   * KEYS: the origin's politeness key; ARGV: delay ms. Reserves the origin's next
   * start, at least `delay` ms after the one reserved before it by any worker, on
   * the Redis server's clock; returns how many ms from now that start is.
   */
  reserve: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local delay = tonumber(ARGV[1])
local start = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
redis.call('SET', KEYS[1], start + delay, 'PX', start - now + delay + 1000)
return start - now`,
} as const;

/** The `SCRIPT LOAD` digests of {@linkcode SCRIPTS}. */
export type ScriptShas = { [name in keyof typeof SCRIPTS]: string };

/** Loads {@linkcode SCRIPTS} (idempotent: a digest names its text). */
export async function loadScripts(redis: Redis): Promise<ScriptShas> {
  const names = Object.keys(SCRIPTS) as (keyof typeof SCRIPTS)[];
  const shas = await redis.transaction(
    names.map((name) => ["SCRIPT", "LOAD", SCRIPTS[name]]),
  ) as string[];
  return Object.fromEntries(
    names.map((name, i) => [name, shas[i]!]),
  ) as ScriptShas;
}

/**
 * The commands of the crawl's scripts this Redis user may not run, each with
 * its key (`"XDEL crawl:frontier"`); empty when it may run them all, or on a
 * Redis before 7 (which cannot tell). See `SCRIPTS.preflight`.
 *
 * @param role What the caller runs: the seed script only, or every script.
 */
export async function deniedCommands(
  redis: Redis,
  keys: Keys,
  shas: ScriptShas,
  role: "seed" | "work",
): Promise<string[]> {
  const declared = role === "seed"
    ? [keys.frontier, keys.seen]
    : [keys.frontier, keys.seen, keys.results, keys.errors, `${keys.polite}x`];
  let denied: unknown;
  try {
    denied = await redis.call([
      "EVALSHA",
      shas.preflight,
      String(declared.length),
      ...declared,
      keys.group,
      role,
    ]);
  } catch (e) {
    // Redis checks a script's declared keys against the ACL before it runs.
    if (!String((e as Error)?.message).startsWith("NOPERM")) throw e;
    return [
      `a script on ${declared.join(", ")} (NOPERM: the user's key patterns)`,
    ];
  }
  return Array.isArray(denied) ? denied.map(String) : [];
}

/**
 * Runs the `seed` script on `urls` (see {@linkcode SCRIPTS}), again while Redis
 * is unavailable, for up to {@linkcode UNAVAILABLE_FOR}: the script is
 * idempotent (a URL already seen is not queued twice), so a run whose reply was
 * lost costs nothing but its count. Resolves how many URLs were new.
 */
export async function seedUrls(
  redis: Redis,
  keys: Keys,
  sha: string,
  urls: string[],
): Promise<number> {
  const count = await whileUnavailable(() =>
    redis.call(["EVALSHA", sha, "2", keys.seen, keys.frontier, ...urls])
  );
  return Number(count);
}

/** Creates the workers' consumer group from the stream's start, unless it exists. */
export async function ensureGroup(redis: Redis, keys: Keys): Promise<void> {
  try {
    await redis.call([
      "XGROUP",
      "CREATE",
      keys.frontier,
      keys.group,
      "0",
      "MKSTREAM",
    ]);
  } catch (e) {
    if (!String((e as Error).message).startsWith("BUSYGROUP")) throw e;
  }
}

/** What each URL read from the frontier carries through `fetchEach` as `data`. */
export interface FrontierItem {
  /** The stream entry's id. */
  id: string;
  /** The URL as stored in the frontier. */
  url: string;
}

/** Options of {@linkcode FrontierSource}. */
export interface FrontierSourceOptions {
  /** For claims, politeness and idle checks. */
  redis: Redis;
  /** A second connection, for the blocking `XREADGROUP` alone. */
  reader: Redis;
  keys: Keys;
  /** This worker's consumer name. */
  name: string;
  shas: ScriptShas;
  /** The most entries read and not yet settled (fetching, queued or committing). */
  limit: number;
  /** Claim other workers' entries pending longer than this, in ms. */
  claimIdle: number;
  /** The longest blocking read, in ms. */
  block: number;
  /** End once the group has had nothing to do for this long, in ms; `undefined`: never. */
  idleExit: number | undefined;
  /** Least ms between two starts on one origin across all workers; 0: no reservation. */
  originDelay: number;
}

/** Counters of a {@linkcode FrontierSource}. */
export interface SourceStats {
  /** New entries read with `XREADGROUP`. */
  read: number;
  /** Entries claimed from other workers with `XAUTOCLAIM`. */
  claimed: number;
  /** This worker's own pending entries taken back at start (a restarted worker). */
  recovered: number;
}

interface Waiting {
  items: FrontierItem[];
  reserving: boolean;
}

/**
 * The frontier as an async iterator of {@linkcode RequestSpec}s (with a
 * {@linkcode FrontierItem} as `data`), for `fetchEach`.
 *
 * A background loop reads entries while fewer than `limit` are unsettled: first
 * this worker's own pending entries (a restart under the same name), then, every
 * so often, other workers' entries idle for `claimIdle` ms (`XAUTOCLAIM`), else new
 * ones (`XREADGROUP ... BLOCK`). So a worker never holds more than `limit` entries,
 * and an entry leaves that count only when {@linkcode FrontierSource.settle} says
 * it was committed or released.
 *
 * With `originDelay`, an entry waits for its origin's start reserved in Redis, one
 * reservation per origin at a time, so entries of other origins go on meanwhile.
 */
export class FrontierSource implements AsyncIterableIterator<RequestSpec> {
  readonly stats: SourceStats = { read: 0, claimed: 0, recovered: 0 };
  readonly #o: FrontierSourceOptions;
  /** The ids of the entries read and not yet settled, with when each was read or last renewed. */
  readonly #held = new Map<string, number>();
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #renewing: Promise<void> | null = null;
  readonly #ready: FrontierItem[] = [];
  readonly #waiting = new Map<string, Waiting>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #wakeNext: (() => void) | null = null;
  #wakeRoom: (() => void) | null = null;
  #stopped = false;
  #exhausted = false;
  #failure: { error: unknown } | null = null;
  #loop: Promise<void> | null = null;
  #readerId: string | null = null;
  /** Whether Redis's uptime was read (once, at start). */
  #uptimeRead = false;
  #ownCursor: string | null = "0";
  /** Whether the own pending entries read now are those of a read whose reply was lost. */
  #rereading = false;
  /**
   * The ids settled while a read of entries already delivered (own pending ones,
   * `XAUTOCLAIM`) is on the wire: Redis may have answered it before the commit
   * acknowledged them, so its reply can list entries no longer held and done.
   */
  #settledMeanwhile: Set<string> | null = null;
  #claimCursor = "0-0";
  #lastClaim = -Infinity;
  readonly #holdOff: ClaimHoldOff;
  /** The round trips of the last commands that do not block (ms), oldest first. */
  readonly #recentOver: number[] = [];
  /** Rounds of the reading loop that failed since one of its commands went through. */
  #unavailable = 0;
  #unlisten: (() => void)[] = [];
  #idleSince: number | null = null;

  constructor(options: FrontierSourceOptions) {
    this.#o = options;
    this.#holdOff = new ClaimHoldOff(options.claimIdle);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Entries read and not yet handed to `fetchEach`, in the order read. */
  get unhanded(): FrontierItem[] {
    const items = [...this.#ready];
    for (const { items: waiting } of this.#waiting.values()) {
      items.push(...waiting);
    }
    return items;
  }

  async next(): Promise<IteratorResult<RequestSpec>> {
    this.#loop ??= this.#run();
    while (true) {
      if (this.#failure !== null) throw this.#failure.error;
      // After stop(), what was read stays here, to be released, not fetched.
      if (this.#stopped) return { done: true, value: undefined };
      const item = this.#ready.shift();
      if (item !== undefined) {
        return { done: false, value: { url: item.url, data: item } };
      }
      if (this.#exhausted) return { done: true, value: undefined };
      await new Promise<void>((resolve) => this.#wakeNext = resolve);
    }
  }

  /** Stops reading (what was read stays unhanded) and ends the iteration. */
  return(): Promise<IteratorResult<RequestSpec>> {
    this.stop();
    return Promise.resolve({ done: true, value: undefined });
  }

  /**
   * Stops reading: a blocking read is unblocked, nothing more is read or handed
   * out, and the iteration ends. Idempotent.
   */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    // The heartbeat goes on: what fetchEach still holds (its --grace) must not
    // look dead to the others until closed() ends it, right before a release.
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    if (this.#readerId !== null) {
      // The read connection is blocked in XREADGROUP: unblock it from the other.
      this.#o.redis.call(["CLIENT", "UNBLOCK", this.#readerId]).catch(() => {});
    }
    this.#wake();
  }

  /**
   * Waits until the reading loop has ended (after {@linkcode stop} or at the
   * end), then stops renewing the entries held and waits for a renewal on the
   * wire: entries released after this are not renewed behind the release's
   * back. Call it once fetchEach is done with them.
   */
  async closed(): Promise<void> {
    await this.#loop?.catch(() => {});
    clearInterval(this.#heartbeat);
    for (const unlisten of this.#unlisten) unlisten();
    this.#unlisten = [];
    await this.#renewing;
  }

  /** These entries were committed or released: room to read as many. */
  settle(ids: string[]): void {
    for (const id of ids) {
      this.#held.delete(id);
      this.#settledMeanwhile?.add(id);
    }
    this.#wakeRoom?.();
    this.#wakeRoom = null;
  }

  #wake(): void {
    this.#wakeNext?.();
    this.#wakeNext = null;
    this.#wakeRoom?.();
    this.#wakeRoom = null;
  }

  /**
   * Keeps the entries held here from looking dead: an entry waits here (its
   * origin's turn under `originDelay`, a slot in `fetchEach`) with its idle
   * time growing in Redis, and past `claimIdle` a live worker's `XAUTOCLAIM`
   * would take it and fetch it a second time. Each one held for half of
   * `claimIdle` is renewed, checked every quarter of it (at most every second).
   */
  #renewHeld(): void {
    if (this.#renewing !== null) return;
    const now = performance.now();
    const due: string[] = [];
    for (const [id, at] of this.#held) {
      if (now - at >= this.#o.claimIdle / 2) due.push(id);
    }
    if (due.length === 0) return;
    this.#renewing = this.#timed(this.#o.redis, 0, [
      "EVALSHA",
      this.#o.shas.renew,
      "1",
      this.#o.keys.frontier,
      this.#o.keys.group,
      this.#o.name,
      ...due,
    ]).then(() => {
      for (const id of due) {
        if (this.#held.has(id)) this.#held.set(id, now);
      }
    }, () => {
      // Redis away, or a script it forgot: the next beat tries again, and an
      // entry taken meanwhile still gets one result (the commit checks).
    }).finally(() => {
      this.#renewing = null;
    });
  }

  /**
   * `call` on `connection`, which answers within `expected` ms (a blocking
   * read's block) when Redis and the way to it run: a reply later than that
   * by a quarter of claimIdle or more (half a second at least) is a stall (a
   * Redis paused, a network that held the bytes) that no error told of, under
   * the client's 10 s bound. Redis counted its time as the entries' idle
   * time, and their holders could not renew meanwhile: claims are held off as
   * after an outage, or the next XAUTOCLAIM would take entries from live
   * workers (a stall of 8 s at --claim-idle 10000 did). A claim already on
   * the wire when the stall began still runs as it ends.
   */
  async #timed(
    connection: Redis,
    expected: number,
    args: string[],
  ): Promise<unknown> {
    const sent = performance.now();
    const reply = await connection.call(args);
    const now = performance.now();
    const over = now - sent - expected;
    // Late against the way to Redis as it is: the least round trip of the
    // last commands that do not block (a blocking read's ends early when an
    // entry comes). On a slow link (700 ms) every reply counted as a stall at
    // a short --claim-idle, each held claims off again, and a dead worker's
    // entries were never taken: the crawl never ended.
    const recent = this.#recentOver;
    const floor = recent.length === 0 ? 0 : Math.min(...recent);
    if (expected === 0) {
      if (recent.length === RECENT_REPLIES) recent.shift();
      recent.push(over);
    }
    const late = over - floor;
    // Not under half a second: Redis answers a blocking read that timed out
    // on its 100 ms tick, and a loaded worker's loop lags; a short
    // --claim-idle would hold claims off for good (a dead worker's entries
    // never taken, the crawl never ending).
    if (late >= Math.max(this.#o.claimIdle / 4, STALL_MIN)) {
      this.#holdOff.back(now, late);
    }
    return reply;
  }

  async #run(): Promise<void> {
    this.#heartbeat = setInterval(
      () => this.#renewHeld(),
      Math.max(10, Math.min(this.#o.claimIdle / 4, 1_000)),
    );
    // The reader's outages count too: it can lose Redis while the other
    // connection, idle, has not noticed yet.
    for (const connection of new Set([this.#o.redis, this.#o.reader])) {
      this.#unlisten.push(connection.onBack((downFor) => {
        this.#holdOff.back(performance.now(), downFor);
        // A Redis back from a snapshot or an append-only file older than its
        // last writes (an RDB, `appendfsync everysec`) has the entries this
        // worker committed since pending for it again, results lost: read its
        // own pending entries again now, as after a failed read (the loop may
        // have been waiting for room, no read on the wire), rather than
        // leaving them to an XAUTOCLAIM one --claim-idle later.
        if (this.#ownCursor === null) this.#rereading = true;
        this.#ownCursor = "0";
      }));
    }
    try {
      while (!this.#stopped) {
        const room = this.#o.limit - this.#held.size;
        if (room <= 0) {
          await new Promise<void>((resolve) => this.#wakeRoom = resolve);
          continue;
        }
        let items: FrontierItem[];
        try {
          this.#readerId ??= String(
            await this.#o.reader.call(["CLIENT", "ID"]),
          );
          if (!this.#uptimeRead) await this.#readUptime();
          items = await this.#fetch(room);
          if (items.length === 0 && await this.#idleLongEnough()) {
            this.#exhausted = true;
            break;
          }
        } catch (error) {
          if (!(error instanceof RedisUnavailableError) || this.#stopped) {
            throw error;
          }
          this.#unavailable++;
          // No claim until the holders could renew (see ClaimHoldOff).
          const now = performance.now();
          if (now - this.#holdOff.lost(now) > UNAVAILABLE_FOR) throw error;
          // A read whose reply was lost left its entries pending for this
          // worker: read its own pending entries again. A reconnected reader
          // has a new id.
          // Past the start's recovery pass, what is found is this run's own.
          if (this.#ownCursor === null) this.#rereading = true;
          this.#ownCursor = "0";
          this.#readerId = null;
          await backoff(this.#unavailable - 1);
          continue;
        }
        if (this.#stopped) {
          // Read after stop(): pending for this worker, released by the caller.
          for (const item of items) this.#ready.push(item);
          break;
        }
        if (items.length > 0) {
          this.#idleSince = null;
          this.#pace(items);
        }
      }
    } catch (error) {
      if (!this.#stopped) this.#failure = { error };
    } finally {
      this.#wake();
    }
  }

  /**
   * Holds claims off when Redis started less than `claimIdle` ago (see
   * {@linkcode ClaimHoldOff.serverStarted}). A Redis that refuses `INFO` (an
   * ACL, a managed service) or hides its uptime is taken as up for long, as
   * before this check.
   */
  async #readUptime(): Promise<void> {
    let info: unknown;
    try {
      info = await this.#o.redis.call(["INFO", "server"]);
    } catch (error) {
      if (error instanceof RedisUnavailableError) throw error;
      info = "";
    }
    this.#uptimeRead = true;
    const seconds = /^uptime_in_seconds:(\d+)\r?$/m.exec(String(info))?.[1];
    if (seconds === undefined) return;
    // Redis subtracts two whole-second clock readings: N may mean as little
    // as N - 1 seconds up (it reads 1 from ~0.5 s). Taken as N - 1, the start
    // this gives is never earlier than the real one, nor the hold-off's end.
    const upFor = Math.max(0, Number(seconds) - 1) * 1_000;
    if (upFor < this.#o.claimIdle) {
      this.#holdOff.serverStarted(performance.now() - upFor);
    }
  }

  /** Up to `count` entries: own pending ones, claimed ones, or new ones. */
  async #fetch(count: number): Promise<FrontierItem[]> {
    this.#settledMeanwhile = new Set();
    try {
      return await this.#fetchFrom(count);
    } finally {
      this.#settledMeanwhile = null;
    }
  }

  async #fetchFrom(count: number): Promise<FrontierItem[]> {
    const { keys, name } = this.#o;
    if (this.#ownCursor !== null) {
      const reply = await this.#o.reader.call([
        "XREADGROUP",
        "GROUP",
        keys.group,
        name,
        "COUNT",
        String(count),
        "STREAMS",
        keys.frontier,
        this.#ownCursor,
      ]);
      // This read comes first after a failed round: Redis is back. Not at
      // the end of the round: the blocking read that ends it can be cut by
      // the next drop, every time (a connection dropping every second).
      this.#unavailable = 0;
      // No claim until the live holders could renew (see ClaimHoldOff), as
      // after a reconnect that `onBack` reports.
      this.#holdOff.found(performance.now());
      const entries = streamEntries(reply);
      if (entries.length === 0) {
        this.#ownCursor = null;
        this.#rereading = false;
      } else {
        this.#ownCursor = entries[entries.length - 1]![0];
        const items = await this.#items(entries);
        // Held ones are skipped: what is left was read and never reached us.
        if (this.#rereading) this.stats.read += items.length;
        else this.stats.recovered += items.length;
        return items;
      }
    }
    const now = performance.now();
    if (
      now - this.#lastClaim >= Math.min(this.#o.claimIdle, 1_000) &&
      this.#o.redis.isUp()
    ) {
      this.#lastClaim = now;
      // Within a hold-off, only what stopped workers released: no holder
      // has anything to renew (half a year: no outage makes an entry so idle).
      const minIdle = this.#holdOff.allows(now)
        ? this.#o.claimIdle
        : Math.max(this.#o.claimIdle, RELEASED_IDLE / 2);
      const reply = await this.#timed(this.#o.redis, 0, [
        "XAUTOCLAIM",
        keys.frontier,
        keys.group,
        name,
        String(minIdle),
        this.#claimCursor,
        "COUNT",
        String(count),
      ]) as [string, unknown, unknown];
      this.#claimCursor = reply[0];
      const items = await this.#items(reply[1] as RawEntry[]);
      if (items.length > 0) {
        this.stats.claimed += items.length;
        // More may be waiting past the cursor: look again on the next round.
        this.#lastClaim = -Infinity;
        return items;
      }
    }
    const block = Math.max(
      1,
      Math.min(this.#o.block, this.#o.idleExit ?? Infinity),
    );
    const reply = await this.#timed(this.#o.reader, block, [
      "XREADGROUP",
      "GROUP",
      keys.group,
      name,
      "COUNT",
      String(count),
      "BLOCK",
      String(block),
      "STREAMS",
      keys.frontier,
      ">",
    ]);
    const items = await this.#items(streamEntries(reply));
    this.stats.read += items.length;
    return items;
  }

  /**
   * The entries as items, now held. Entries already held are left out: an
   * `XAUTOCLAIM` also claims this worker's own entries that waited long (a slow
   * origin), which only resets their idle time; so are entries settled while this
   * read was on the wire. Entries deleted meanwhile (no
   * fields) are acknowledged away.
   */
  async #items(entries: RawEntry[]): Promise<FrontierItem[]> {
    const items: FrontierItem[] = [];
    const gone: string[] = [];
    for (const [id, fields] of entries) {
      if (this.#held.has(id) || this.#settledMeanwhile?.has(id)) continue;
      const url = fieldOf(fields, "url");
      if (url === undefined) gone.push(id);
      else items.push({ id, url });
    }
    if (gone.length > 0) {
      await this.#o.redis.call([
        "XACK",
        this.#o.keys.frontier,
        this.#o.keys.group,
        ...gone,
      ]);
    }
    // Held only now: a failure above leaves them to the own-pending reread.
    const now = performance.now();
    for (const item of items) this.#held.set(item.id, now);
    return items;
  }

  /**
   * Whether the whole crawl has been idle for `idleExit` ms: nothing read, nothing
   * unsettled here, nothing pending for any worker (a live one may still add links).
   */
  async #idleLongEnough(): Promise<boolean> {
    const idleExit = this.#o.idleExit;
    if (idleExit === undefined || this.#held.size > 0) {
      this.#idleSince = null;
      return false;
    }
    const summary = await this.#o.redis.call([
      "XPENDING",
      this.#o.keys.frontier,
      this.#o.keys.group,
    ]) as [number, ...unknown[]];
    if (Number(summary[0]) > 0) {
      this.#idleSince = null;
      return false;
    }
    const now = performance.now();
    this.#idleSince ??= now;
    return now - this.#idleSince >= idleExit;
  }

  /** Hands items out now, or, with an origin delay, when their origin's turn comes. */
  #pace(items: FrontierItem[]): void {
    if (this.#o.originDelay <= 0) {
      for (const item of items) this.#ready.push(item);
      this.#wakeNext?.();
      this.#wakeNext = null;
      return;
    }
    for (const item of items) {
      let origin: string;
      try {
        origin = new URL(item.url).origin;
      } catch {
        // Fails in fetchEach, which reports it as this URL's result.
        this.#ready.push(item);
        continue;
      }
      let waiting = this.#waiting.get(origin);
      if (waiting === undefined) {
        waiting = { items: [], reserving: false };
        this.#waiting.set(origin, waiting);
      }
      waiting.items.push(item);
      this.#reserve(origin, waiting);
    }
    this.#wakeNext?.();
    this.#wakeNext = null;
  }

  #reserve(origin: string, waiting: Waiting): void {
    if (waiting.reserving || this.#stopped) return;
    if (waiting.items.length === 0) {
      this.#waiting.delete(origin);
      return;
    }
    waiting.reserving = true;
    this.#o.redis.call([
      "EVALSHA",
      this.#o.shas.reserve,
      "1",
      this.#o.keys.polite + origin,
      String(this.#o.originDelay),
    ]).then((wait) => {
      if (this.#stopped) return;
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        waiting.reserving = false;
        const item = waiting.items.shift();
        if (item !== undefined) this.#ready.push(item);
        this.#wakeNext?.();
        this.#wakeNext = null;
        this.#reserve(origin, waiting);
      }, Number(wait));
      this.#timers.add(timer);
    }, (error) => {
      if (this.#stopped) return;
      if (!(error instanceof RedisUnavailableError)) {
        this.#failure ??= { error };
        this.#wake();
        return;
      }
      // Try again; the reading loop gives up if Redis stays away.
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        waiting.reserving = false;
        this.#reserve(origin, waiting);
      }, 500);
      this.#timers.add(timer);
    });
  }
}

/** The most links one script call adds (see `Committer`). */
const LINKS_PER_SCRIPT = 1_000;

/** One entry of a committed batch: a result and the links to add. */
export interface Commit {
  item: FrontierItem;
  /** The URL as the result shows it (a password in it reads `***`). */
  url: string;
  /** `"true"` or `"false"`. */
  ok: string;
  status: string;
  bytes: string;
  error: string;
  links: string[];
}

/** Counters of a {@linkcode Committer}. */
export interface CommitStats {
  /**
   * Results written and acknowledged, counting those of a batch sent again
   * after its reply was lost (Redis timed out or the connection dropped) that
   * its first run wrote.
   */
  committed: number;
  /**
   * Results dropped because another worker had claimed their entry. In the rare
   * case of a batch sent again, an entry another worker claimed and committed
   * before the first run counts as committed here instead.
   */
  lost: number;
  /** `MULTI`/`EXEC` round trips. */
  batches: number;
}

/**
 * Writes results: each one as one run of the `commit` script (result, `XACK`,
 * `XDEL` and links, atomically, if this worker still owns the entry), and all the
 * results that finished while the previous batch was on the wire in one
 * `MULTI`/`EXEC`: one round trip for the lot.
 */
export class Committer {
  readonly stats: CommitStats = { committed: 0, lost: 0, batches: 0 };
  readonly #redis: Redis;
  readonly #keys: Keys;
  readonly #name: string;
  readonly #shas: ScriptShas;
  readonly #settled: (ids: string[]) => void;
  readonly #failed: ((error: unknown) => void) | undefined;
  #queued: Commit[] = [];
  #flushing: Promise<void> | null = null;
  #failure: { error: unknown } | null = null;

  constructor(
    redis: Redis,
    options: {
      keys: Keys;
      name: string;
      shas: ScriptShas;
      settled: (ids: string[]) => void;
      /**
       * Called once when a batch fails for good: its entries are neither
       * committed nor settled, so a worker must stop (they stay pending, for
       * another worker to claim) rather than wait for room that never comes.
       */
      failed?: (error: unknown) => void;
    },
  ) {
    this.#redis = redis;
    this.#keys = options.keys;
    this.#name = options.name;
    this.#shas = options.shas;
    this.#settled = options.settled;
    this.#failed = options.failed;
  }

  /** Queues a result; it is sent with the next batch. Throws an earlier batch's failure. */
  add(commit: Commit): void {
    if (this.#failure !== null) throw this.#failure.error;
    this.#queued.push(commit);
    this.#flushing ??= this.#flush();
  }

  /** Waits until everything added is written; rejects with a batch's failure. */
  async drain(): Promise<void> {
    while (this.#flushing !== null) await this.#flushing;
    if (this.#failure !== null) throw this.#failure.error;
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queued.length > 0) {
        const batch = this.#queued;
        this.#queued = [];
        const k = this.#keys;
        // A page with many links adds them first, in slices: a script blocks
        // every other client of Redis while it runs (a page of 750,000 links
        // in one call held it for 2.5 s), and the seen set makes a slice that
        // runs twice, or before a commit that turns out lost, harmless.
        const inline = (c: Commit) => c.links.length <= LINKS_PER_SCRIPT;
        for (const c of batch) {
          if (inline(c)) continue;
          for (let i = 0; i < c.links.length; i += LINKS_PER_SCRIPT) {
            await this.#send([[
              "EVALSHA",
              this.#shas.seed,
              "2",
              k.seen,
              k.frontier,
              ...c.links.slice(i, i + LINKS_PER_SCRIPT),
            ]]);
          }
        }
        const commands = batch.map((c) => [
          "EVALSHA",
          this.#shas.commit,
          "4",
          k.frontier,
          k.results,
          k.seen,
          k.errors,
          k.group,
          this.#name,
          c.item.id,
          c.url,
          c.ok,
          c.status,
          c.bytes,
          c.error,
          ...(inline(c) ? c.links : []),
        ]);
        const { replies, resent } = await this.#send(commands);
        this.stats.batches++;
        for (const reply of replies) {
          const n = Number(reply);
          // Written before (2): by the run whose reply was lost, when there was one.
          if (n === 1 || (n === 2 && resent)) this.stats.committed++;
          else this.stats.lost++;
        }
        this.#settled(batch.map((c) => c.item.id));
      }
    } catch (error) {
      this.#failure = { error };
      this.#failed?.(error);
    } finally {
      this.#flushing = null;
    }
  }

  /**
   * Sends a batch, again while Redis is unavailable: the commit script is
   * idempotent (a result already written is not pending any more, so a second run
   * writes nothing). `resent`: whether it was sent more than once.
   */
  async #send(
    commands: string[][],
  ): Promise<{ replies: unknown[]; resent: boolean }> {
    return await whileUnavailable(async (attempt) => ({
      replies: await this.#redis.transaction(commands),
      resent: attempt > 0,
    }));
  }
}

/**
 * The idle time a released entry is given: a year, far past any `--claim-idle`
 * and any outage, so that no entry a worker holds looks released.
 */
const RELEASED_IDLE = 365 * 24 * 3600 * 1000;

/**
 * Hands entries this worker read but did not finish back at once: it claims them
 * to itself with an idle time far past any `--claim-idle`, so the next
 * `XAUTOCLAIM` of another worker takes them (no need to wait for the idle time).
 * Only those still its own: taking back one another worker holds would have it
 * fetched a third time.
 *
 * @returns How many were released.
 */
export async function release(
  redis: Redis,
  keys: Keys,
  name: string,
  ids: string[],
  sha: string,
): Promise<number> {
  let released = 0;
  for (let i = 0; i < ids.length; i += 500) {
    const args = [
      "1",
      keys.frontier,
      keys.group,
      name,
      String(RELEASED_IDLE),
      ...ids.slice(i, i + 500),
    ];
    let reply: unknown;
    try {
      reply = await redis.call(["EVALSHA", sha, ...args]);
    } catch (e) {
      // A Redis that restarted (or failed over) since the start forgot the
      // scripts: the client says so as an outage, NOSCRIPT its cause. EVAL
      // may be denied where EVALSHA is not, so it is only the fallback.
      const cause = e instanceof RedisUnavailableError ? e.cause : e;
      if (!String((cause as Error)?.message).startsWith("NOSCRIPT")) throw e;
      reply = await redis.call(["EVAL", SCRIPTS.release, ...args]);
    }
    released += Number(reply);
  }
  return released;
}

type RawEntry = [string, string[] | null];

function streamEntries(reply: unknown): RawEntry[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  const [, entries] = reply[0] as [string, RawEntry[]];
  return entries ?? [];
}

function fieldOf(fields: string[] | null, name: string): string | undefined {
  if (fields === null) return undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === name) return fields[i + 1];
  }
  return undefined;
}
