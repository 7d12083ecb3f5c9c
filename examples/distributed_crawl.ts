/**
 * A crawl shared by many worker processes, on one machine or many, through Redis
 * Streams: the frontier is a stream read by a consumer group, results go to a
 * second stream, and a worker that dies loses nothing (the way scrapy-redis does
 * it, with streams instead of lists).
 *
 * ```sh
 * deno run -N examples/distributed_crawl.ts seed --redis redis://127.0.0.1:6379 https://example.com/
 * deno run -N examples/distributed_crawl.ts work --redis redis://127.0.0.1:6379 --name w1 --follow
 * deno run -N examples/distributed_crawl.ts status --redis redis://127.0.0.1:6379
 * ```
 *
 * Run with `--help` for every flag. What is in Redis (`--prefix`, default `crawl:`):
 *
 * - `crawl:frontier`: a stream of URLs to fetch (field `url`), read by the consumer
 *   group `workers`; an entry is deleted once its result is written, so its length
 *   is what is left to do (pending entries included);
 * - `crawl:results`: a stream with one entry per URL: `url`, `ok` (`true`/`false`),
 *   `status`, `bytes`, `worker`, `error` (`Name: message`, or empty);
 * - `crawl:seen`: the set of every URL ever put in the frontier (deduplication);
 * - `crawl:errors`: how many results have `ok` `false`;
 * - `crawl:polite:<origin>`: the next start reserved on an origin (`--origin-delay`).
 *
 * How a worker works:
 *
 * - **Reading**: the frontier is `fetchEach`'s async source. A background loop
 *   reads entries with `XREADGROUP ... BLOCK` on a connection of its own, never
 *   holding more than `--concurrency` + `--queue` entries that are not yet
 *   committed (fetching, waiting for a slot, or being written): the rest stays in
 *   Redis for the other workers.
 * - **Writing**: each finished URL runs one Lua script that appends the result,
 *   `XACK`s and deletes the entry and, with `--follow`, adds the page's new
 *   same-origin links (`SADD` to the seen set, `XADD` when new), all at once:
 *   a killed worker never leaves a result without its ack or an ack without its
 *   result. The script first checks that the entry is still pending for this
 *   worker: a worker that was slow, not dead, and whose entry another worker
 *   claimed writes nothing, so each URL has exactly one result. The results
 *   finished while the previous write was on the wire go together in one
 *   `MULTI`/`EXEC`: one round trip for the lot.
 * - **Dead workers**: every second (or `--claim-idle`, if shorter) a worker looks
 *   for entries pending for more than `--claim-idle` ms on any worker and claims
 *   them (`XAUTOCLAIM`). A live worker renews the entries it holds (a script
 *   resets the idle time of those still pending for it, each held for half of
 *   `--claim-idle`), however long they wait for their origin's turn or a slot:
 *   only a dead (or frozen) worker's entries go idle that long, and none is
 *   fetched twice by two live workers. A worker restarted under the same
 *   `--name` first takes back its own pending entries.
 * - **Redis restarts**: while Redis is unreachable (up to a minute), a worker
 *   retries its reads and commits (a commit sent twice writes once: the second
 *   finds the entry no longer pending), loads again the scripts a restarted
 *   Redis forgot, and reads its own pending entries again (a read whose reply
 *   was lost left them there). It claims nothing but what stopped workers
 *   released for one `--claim-idle` after Redis comes back, whose downtime
 *   counts as the entries' idle time: time for the live holders to renew
 *   (from the first comeback when the connection keeps dropping for short
 *   spells, so that such a worker still claims). A worker started within one
 *   `--claim-idle` of a Redis restart holds off until that much after it
 *   (Redis's uptime, from `INFO`). The crawl itself survives a restart only if
 *   Redis persists it (`appendonly yes`).
 * - **Stopping**: Ctrl-C (SIGINT) or SIGTERM stops reading; the URLs already
 *   handed to `fetchEach` (in flight or waiting for a slot) get `--grace` ms to
 *   finish and be committed; what is left is released unacked
 *   (claimed back to this worker with a huge idle time, so the next `XAUTOCLAIM`
 *   of any worker takes it at once) and the worker exits 0. A second signal
 *   skips the grace. With `--idle-exit MS`, a worker also ends once nothing has
 *   been read, held or pending on any worker for that long.
 *
 * **Politeness across workers.** `--origin-delay MS` is global: before an entry
 * is handed to `fetchEach`, its worker reserves the origin's next start in Redis
 * (a script keeps, per origin, the earliest time the next request may start, on
 * the Redis server's clock), one reservation per origin at a time, so the starts
 * on one origin are at least `MS` apart across all workers, and entries of other
 * origins go on meanwhile. A start is never earlier than its reservation; it can
 * be later when every slot of that worker is busy. A reservation covers a URL's
 * first request; its retries (`--retries`) and redirects are spaced by that
 * worker's `fetchEach` alone (`perOrigin.delay`, set to the same `MS`). `--origin-concurrency N` is
 * per worker (`fetchEach`'s `perOrigin.concurrency`): across `W` workers at most
 * `W × N` requests are in flight on one origin. That bound is kept on purpose: a
 * shared per-origin semaphore needs leases, and a killed worker's lease would
 * block its origin until it expired, while a delay reservation held by a dead
 * worker only costs one `MS`.
 *
 * **What it scales with.** One worker is one selector on one core: `W` workers
 * on `C` free cores go up to `min(W, C)` times one worker, as long as the origins
 * can take it (one origin bounds its own crawl, and `--origin-delay` bounds it
 * further). Redis work per URL is small and batched: one script run (about 5
 * Redis commands: the script and its `XPENDING`, `XADD`, `XACK`, `XDEL`), sent
 * with every other result finished meanwhile in one `MULTI`/`EXEC`, plus one
 * `XREADGROUP` per batch read and one `XAUTOCLAIM` a second. Measured on
 * loopback (bench/distributed_bench.ts): 0.09 round trips per URL at
 * `--concurrency 64` (0.22 at 16, 1.6 at 1), about 14 µs of Redis CPU per URL
 * against 50-75 µs in the worker for a 1 KiB page, so one Redis core keeps
 * several worker cores busy. `--origin-delay` adds one reservation round trip
 * per URL, and on a single paced origin reads and commits no longer batch
 * (about 3 round trips per URL). The worker's summary counts its round trips.
 *
 * The Redis client is node-redis (`npm:redis@6`), used by this example only.
 * Permissions: `--allow-net` for Redis and the crawled hosts, `--allow-read` for
 * `seed -i FILE`.
 *
 * @module
 */
import { cpuUsage } from "node:process";
import { parseArgs } from "node:util";
import { createClient, ErrorReply, MultiErrorReply } from "npm:redis@6";
import {
  type FetchAllOptions,
  fetchEach,
  type FetchResult,
  redirectLocation,
} from "../mod.ts";
import {
  type Commit,
  Committer,
  deniedCommands,
  ensureGroup,
  type FrontierItem,
  FrontierSource,
  type Keys,
  keysFor,
  loadScripts,
  type Redis,
  RedisUnavailableError,
  release,
  SCRIPTS,
  type ScriptShas,
  seedUrls,
} from "./distributed/_frontier.ts";
import { sameOriginLinks } from "./distributed/_links.ts";
import { isHtml, normalizeLink, normalizeUrl } from "./crawl/links.ts";
import { MAX_TIMER_MS as MAX_MS } from "./crawl/_util.ts";
import { argsErrorMessage, hideUrlPassword } from "./_args.ts";
import { type ListedUrl, openListedUrls } from "./crawl/input.ts";
import { StdoutLines } from "./crawl/stdout_lines.ts";

const HELP =
  `Usage: distributed_crawl.ts <command> --redis redis://HOST:PORT [options]

A crawl shared by worker processes through Redis Streams.

Commands:
  seed [-i FILE | URL...]   add URLs to the frontier (each URL once, ever);
                            FILE has one URL a line ("-": stdin; blank lines
                            and lines starting with # are skipped), read as
                            it goes: a bad line stops it, the URLs before it
                            seeded
  work --name NAME          fetch URLs from the frontier until stopped
  status [--json]           frontier length, pending per worker, results, errors
                            (--json: {"frontier", "pending", "results", "errors"})

Options for every command:
  --redis URL               the Redis server, redis://[user:pass@]HOST[:PORT][/DB]
                            or rediss:// for TLS (required)
  --prefix P                prefix of every key (default "crawl:")
  -h, --help                show this help

Options of work:
  --name NAME               this worker's consumer name (required; reuse it
                            when restarting a worker to take back its entries;
                            one a live worker has is refused, exit 2)
  --concurrency N           URLs in flight (default 64)
  --queue N                 URLs read ahead beyond concurrency (default 16)
  --follow                  add the same-origin links of HTML pages, and
                            same-origin redirect targets, to the frontier
  --idle-exit MS            exit once the crawl has been idle this long
                            (default: run until Ctrl-C)
  --claim-idle MS           claim entries pending this long on another (dead)
                            worker (default 60000)
  --origin-delay MS         least time between two starts on one origin, across
                            all workers (default 0)
  --origin-concurrency N    requests in flight per origin, per worker
                            (default unlimited)
  --timeout MS              per attempt, connect to last byte (default 30000)
  --retries N               retries after a connection error, a timeout or a
                            408, 429, 500, 502, 503, 504 (default 0)
  --max-bytes N             largest body accepted (default 10485760)
  --grace MS                after Ctrl-C, time for URLs in flight to finish
                            (default 10000); a second Ctrl-C skips it
  --verbose                 print one line per result (a slow reader slows the
                            worker; its leases stay renewed)
  --json                    print the worker's summary as one JSON line

Exit status: 0 when done (or stopped by a signal), 1 on a Redis or crawl failure,
2 for bad usage.`;

const encoder = new TextEncoder();

/** A bad command line: one line on stderr, exit code 2. */
class UsageError extends Error {
  override name = "UsageError";
}

interface Common {
  redis: string;
  keys: Keys;
}

interface WorkOptions extends Common {
  name: string;
  concurrency: number;
  queue: number;
  follow: boolean;
  idleExit: number | undefined;
  claimIdle: number;
  originDelay: number;
  originConcurrency: number;
  timeout: number;
  retries: number;
  maxBytes: number;
  grace: number;
  verbose: boolean;
  json: boolean;
}

type Command =
  | { command: "help" }
  | { command: "seed"; common: Common; urls: string[]; input?: string }
  | { command: "status"; common: Common; json: boolean }
  | { command: "work"; options: WorkOptions };

function integer(
  flag: string,
  text: string | undefined,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(
      `${flag} must be an integer >= ${min}, received "${text}"`,
    );
  }
  if (n > max) {
    throw new UsageError(`${flag} must be at most ${max}, received "${text}"`);
  }
  return n;
}

/** `URL.href` without its fragment, or `null` when not an http(s) URL. */
function normalize(text: string): string | null {
  // As the links are (escapes upper-cased, unreserved ones decoded): a seed
  // and a link to it are one frontier entry.
  return normalizeUrl(text.trim());
}

/** Parses the command line; throws {@linkcode UsageError}. */
function parseCommandLine(args: string[]): Command {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        redis: { type: "string" },
        prefix: { type: "string" },
        input: { type: "string", short: "i" },
        name: { type: "string" },
        concurrency: { type: "string" },
        queue: { type: "string" },
        follow: { type: "boolean" },
        "idle-exit": { type: "string" },
        "claim-idle": { type: "string" },
        "origin-delay": { type: "string" },
        "origin-concurrency": { type: "string" },
        timeout: { type: "string" },
        retries: { type: "string" },
        "max-bytes": { type: "string" },
        grace: { type: "string" },
        verbose: { type: "boolean" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw new UsageError(argsErrorMessage(e));
  }
  const { values: v, positionals } = parsed;
  if (v.help) return { command: "help" };
  const [command, ...rest] = positionals;
  if (command === undefined) {
    throw new UsageError("missing command: seed, work or status (see --help)");
  }
  if (command !== "seed" && command !== "work" && command !== "status") {
    throw new UsageError(
      `unknown command "${command}": expected seed, work or status`,
    );
  }
  const allowed: Record<string, string[]> = {
    seed: ["input"],
    status: ["json"],
    work: [
      "name",
      "concurrency",
      "queue",
      "follow",
      "idle-exit",
      "claim-idle",
      "origin-delay",
      "origin-concurrency",
      "timeout",
      "retries",
      "max-bytes",
      "grace",
      "verbose",
      "json",
    ],
  };
  for (const flag of Object.keys(v)) {
    if (["redis", "prefix", "help"].includes(flag)) continue;
    if (!allowed[command]!.includes(flag)) {
      throw new UsageError(`option --${flag} does not apply to ${command}`);
    }
  }
  if (v.redis === undefined) {
    throw new UsageError(`${command} needs --redis redis://HOST:PORT`);
  }
  if (!/^rediss?:\/\/[^/]/.test(v.redis) || !URL.canParse(v.redis)) {
    throw new UsageError(
      `invalid --redis "${
        redactRedisUrl(v.redis)
      }": expected redis://HOST:PORT`,
    );
  }
  if (!/^\/?\d*$/.test(new URL(v.redis).pathname)) {
    throw new UsageError(
      `invalid --redis "${
        redactRedisUrl(v.redis)
      }": its path is a database number (redis://HOST:PORT/0)`,
    );
  }
  const common: Common = {
    redis: v.redis,
    keys: keysFor(v.prefix ?? "crawl:"),
  };
  if (command === "status") {
    if (rest.length > 0) {
      throw new UsageError(`status takes no arguments, received "${rest[0]}"`);
    }
    return { command, common, json: v.json ?? false };
  }
  if (command === "seed") {
    if (v.input !== undefined && rest.length > 0) {
      throw new UsageError("seed takes -i FILE or URLs, not both");
    }
    if (v.input === undefined && rest.length === 0) {
      throw new UsageError("seed needs -i FILE or at least one URL");
    }
    const urls: string[] = [];
    for (const text of rest) {
      const url = normalize(text);
      if (url === null) {
        throw new UsageError(
          `invalid URL "${
            hideUrlPassword(text)
          }": expected an absolute http:// or https:// URL`,
        );
      }
      urls.push(url);
    }
    return v.input === undefined
      ? { command, common, urls }
      : { command, common, urls, input: v.input };
  }
  if (rest.length > 0) {
    throw new UsageError(`work takes no arguments, received "${rest[0]}"`);
  }
  if (v.name === undefined || v.name === "") {
    throw new UsageError("work needs --name NAME (this worker's name)");
  }
  return {
    command,
    options: {
      ...common,
      name: v.name,
      concurrency: integer("--concurrency", v.concurrency, 64, 1),
      queue: integer("--queue", v.queue, 16, 0),
      follow: v.follow ?? false,
      idleExit: v["idle-exit"] === undefined
        ? undefined
        : integer("--idle-exit", v["idle-exit"], 0, 0, MAX_MS),
      claimIdle: integer("--claim-idle", v["claim-idle"], 60_000, 1, MAX_MS),
      originDelay: integer("--origin-delay", v["origin-delay"], 0, 0, MAX_MS),
      originConcurrency: integer(
        "--origin-concurrency",
        v["origin-concurrency"],
        Infinity,
        1,
      ),
      timeout: integer("--timeout", v.timeout, 30_000, 1, MAX_MS),
      retries: integer("--retries", v.retries, 0, 0),
      maxBytes: integer("--max-bytes", v["max-bytes"], 10 << 20, 0),
      grace: integer("--grace", v.grace, 10_000, 0, MAX_MS),
      verbose: v.verbose ?? false,
      json: v.json ?? false,
    },
  };
}

/** Two connections (commands, and blocking reads), each call counted as a round trip. */
interface Connection extends AsyncDisposable {
  redis: Redis;
  reader: Redis;
  /** Round trips made on both connections. */
  readonly roundTrips: number;
}

/**
 * How long a command (or the first connect) may go unanswered, in ms: longer
 * than any blocking read (1 s) by far. A Redis that accepts and never answers
 * (frozen, or no Redis at all) then counts as unreachable, as a closed one
 * does, instead of hanging the worker.
 */
const COMMAND_TIMEOUT_MS = 10_000;

/** `promise`, or a {@linkcode RedisUnavailableError} once it is late. */
function answered<T>(promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new RedisUnavailableError(
            `Redis did not answer in ${COMMAND_TIMEOUT_MS / 1000} s`,
          ),
        ),
      COMMAND_TIMEOUT_MS,
    );
  });
  // A late answer or error is dropped: race() has handled it.
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * Two connections to Redis, both named `name` (`CLIENT SETNAME`): a worker's
 * name, or "(seed)" and "(status)", which no worker check mistakes for one.
 */
async function connect(url: string, name: string): Promise<Connection> {
  let everReady = false;
  let lastReported = "";
  const report = (error: Error) => {
    // Before the first connect, the rejection of connect() says it all.
    if (!everReady) return;
    // node-redis reports every failed reconnect: say each new reason once.
    const line = `redis: ${error.message}`;
    if (line !== lastReported) console.error(line);
    lastReported = line;
  };
  const options = {
    url,
    RESP: 2 as const,
    name,
    socket: {
      connectTimeout: 5_000,
      // Fail fast on the first connect; ride out a Redis restart for about a
      // minute later on.
      reconnectStrategy: (retries: number, cause: Error) =>
        retries >= (everReady ? 30 : 2)
          ? cause
          : Math.min(100 * 2 ** retries, 2_000),
    },
  };
  const main = createClient(options);
  const blocking = main.duplicate();
  main.on("error", report);
  blocking.on("error", report);
  let roundTrips = 0;
  const reloadScripts = () => {
    for (const text of Object.values(SCRIPTS)) {
      main.sendCommand(["SCRIPT", "LOAD", text]).catch(() => {});
    }
  };
  /** An error reply as is; anything else means "may not have run": retry. */
  const classify = (error: unknown): unknown => {
    const reply = error instanceof MultiErrorReply
      ? error.replies[error.errorIndexes[0] ?? -1] ?? error
      : error;
    if (!(reply instanceof ErrorReply)) {
      return new RedisUnavailableError(
        `Cannot reach Redis: ${(error as Error).message}`,
        { cause: error },
      );
    }
    if (reply.message.startsWith("NOSCRIPT")) {
      reloadScripts();
      return new RedisUnavailableError(
        "Cannot run a script: Redis restarted and lost it",
        { cause: error },
      );
    }
    // A restarted Redis answers LOADING while it replays its append-only file,
    // and BUSY while a script runs: both pass, so they are retried like an outage
    // (a script it forgot then comes back through NOSCRIPT).
    if (/^(LOADING|BUSY|TRYAGAIN)\b/.test(reply.message)) {
      return new RedisUnavailableError(
        `Cannot use Redis yet: ${reply.message}`,
        { cause: error },
      );
    }
    // A Redis made a replica (REPLICAOF, a failover) unblocks the reads
    // blocked on it with "UNBLOCKED force unblock ..., instance state changed
    // (master -> replica?)", and refuses writes with READONLY: its data is
    // all there, so not the loss below, which would have an operator start
    // the crawl again.
    if (
      /^READONLY\b/.test(reply.message) ||
      /^UNBLOCKED\b.*instance state changed/.test(reply.message)
    ) {
      return new Error(
        `Redis is a read-only replica now (REPLICAOF, or a failover): point --redis at the master: ${reply.message}`,
        { cause: error },
      );
    }
    // The frontier's consumer group is gone under a live worker: the crawl's
    // state went with it (a restart without persistence, a FLUSHALL, an
    // eviction). Say so; the raw reply names a Lua line.
    // A worker blocked in XREADGROUP on an empty frontier hears UNBLOCKED.
    if (/^(NOGROUP|UNBLOCKED)\b/.test(reply.message)) {
      return new Error(
        `Redis lost the crawl's state (restarted without persistence, flushed, or evicted; see README): ${reply.message}`,
        { cause: error },
      );
    }
    return reply;
  };
  /** Called once connected: comebacks are counted from then on. */
  const wrap = (client: typeof main): Redis => {
    const listeners = new Set<(downFor: number) => void>();
    /** When the connection was lost; `null`: up (or never lost). */
    let lostAt: number | null = null;
    // node-redis says 'reconnecting' when it loses the connection and before
    // each try, 'ready' once it is back.
    client.on("reconnecting", () => {
      lostAt ??= performance.now();
    });
    /** The latest comeback's downtime; `null`: none since connect(). */
    let lastDownFor: number | null = null;
    client.on("ready", () => {
      const downFor = lostAt === null ? Infinity : performance.now() - lostAt;
      lostAt = null;
      lastDownFor = downFor;
      for (const listener of listeners) listener(downFor);
    });
    return {
      isUp: () => client.isReady,
      onBack(listener) {
        listeners.add(listener);
        // A comeback before the listener (Redis restarted while the worker set
        // up its group and scripts) still counts: told now, it holds claims
        // off from now, later than from when it happened, never earlier.
        if (lastDownFor !== null) listener(lastDownFor);
        return () => listeners.delete(listener);
      },
      async call(args) {
        roundTrips++;
        try {
          return await answered(client.sendCommand(args));
        } catch (e) {
          throw classify(e);
        }
      },
      async transaction(commands) {
        roundTrips++;
        const multi = client.multi();
        for (const args of commands) multi.addCommand(args);
        try {
          return await answered(multi.exec()) as unknown[];
        } catch (e) {
          throw classify(e);
        }
      },
    };
  };
  try {
    await answered(Promise.all([main.connect(), blocking.connect()]));
  } catch (e) {
    main.destroy();
    blocking.destroy();
    throw new Error(
      `Cannot connect to ${redactRedisUrl(url)}: ${(e as Error).message}`,
    );
  }
  everReady = true;
  // A restarted Redis has forgotten the scripts: load them again on reconnect
  // (before anything that wrap() tells of the comeback sends).
  main.on("ready", reloadScripts);
  return {
    redis: wrap(main),
    reader: wrap(blocking),
    get roundTrips() {
      return roundTrips;
    },
    async [Symbol.asyncDispose]() {
      await Promise.all([closeClient(main), closeClient(blocking)]);
    },
  };
}

/**
 * Another connection to this Redis database with this worker's name (each of
 * a worker's connections is named after it), or `null`; `"unknown"` when an
 * ACL denies `CLIENT LIST` (the check is a courtesy, not a lock). Crawls in
 * two databases of one Redis may share names; two under other `--prefix`es in
 * one database may not, as nothing here tells their connections apart.
 */
async function namesake(
  conn: Connection,
  name: string,
): Promise<{ id: string; addr: string } | "unknown" | null> {
  let text: string;
  let ours: Set<string>;
  try {
    const [main, blocking, list] = await Promise.all([
      conn.redis.call(["CLIENT", "ID"]),
      conn.reader.call(["CLIENT", "ID"]),
      conn.redis.call(["CLIENT", "LIST", "TYPE", "normal"]),
    ]);
    ours = new Set([String(main), String(blocking)]);
    text = String(list);
  } catch (e) {
    if (e instanceof RedisUnavailableError) throw e;
    return "unknown";
  }
  // "id=7 addr=127.0.0.1:5000 laddr=... name=w1 age=... db=0 ...": no spaces
  // in values.
  const clients = text.split("\n").map((line) =>
    new Map(
      line.trim().split(" ").map((pair) => {
        const at = pair.indexOf("=");
        return [pair.slice(0, at), pair.slice(at + 1)] as const;
      }),
    )
  );
  const db = clients.find((fields) => ours.has(fields.get("id") ?? ""))
    ?.get("db");
  for (const fields of clients) {
    const id = fields.get("id");
    if (
      fields.get("name") === name && id !== undefined && !ours.has(id) &&
      fields.get("db") === db
    ) {
      return { id, addr: fields.get("addr") ?? "address unknown" };
    }
  }
  return null;
}

/**
 * Says on stderr when Redis may evict any key at its maxmemory (an
 * `allkeys-*` policy): the crawl's frontier, results or seen set can go, and
 * with them URLs (a worker that finds them gone stops, later). Silent when
 * `INFO` is denied.
 */
async function warnIfEvicting(redis: Redis): Promise<void> {
  let info: string;
  try {
    info = String(await redis.call(["INFO", "memory"]));
  } catch (e) {
    if (e instanceof RedisUnavailableError) throw e;
    return;
  }
  const policy = /^maxmemory_policy:(\S+)/m.exec(info)?.[1];
  if (policy?.startsWith("allkeys-")) {
    console.error(
      `distributed_crawl.ts: Redis evicts any key at its maxmemory (maxmemory-policy ${policy}): the crawl's state can go with them; use noeviction`,
    );
  }
}

/**
 * Whether this Redis user may run every command of the crawl's scripts (says
 * which it may not, on stderr): an ACL that stops a script halfway leaves its
 * first writes done, a result without its ack or a URL seen and never queued.
 */
async function mayRunScripts(
  redis: Redis,
  keys: Keys,
  shas: ScriptShas,
  role: "seed" | "work",
): Promise<boolean> {
  const denied = await deniedCommands(redis, keys, shas, role);
  if (denied.length === 0) return true;
  console.error(
    `distributed_crawl.ts: this Redis user may not run ${
      denied.join(", ")
    }, which the crawl's scripts need (README, "Crawling on several machines", lists the ACL)`,
  );
  return false;
}

/**
 * Closes a client politely (`QUIT` after the replies still due), or drops it
 * when that does not end within 2 s (a client still reconnecting).
 */
async function closeClient(
  client: { isOpen: boolean; close(): Promise<void>; destroy(): void },
): Promise<void> {
  if (!client.isOpen) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const dropped = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      client.destroy();
      resolve();
    }, 2_000);
  });
  try {
    await Promise.race([client.close().catch(() => client.destroy()), dropped]);
  } finally {
    clearTimeout(timer);
  }
}

function redactRedisUrl(text: string): string {
  // Everything between the scheme (and its slashes, if any) and the last "@"
  // as typed, not as URL parsing reads it: a password with an unescaped "/",
  // "#", "?" or "@" ends the authority early, and the rest of it would show as
  // a host, a path or a fragment; a slash short ("redis:/:pw@"), or none
  // (":pw@host"), is a typo that must not show the password either.
  const start = /^[a-z][a-z\d+.-]*:[/\\]*/i.exec(text)?.[0].length ?? 0;
  const at = text.lastIndexOf("@");
  return at >= start ? `${text.slice(0, start)}***${text.slice(at)}` : text;
}

function errorText(error: unknown): string {
  if (error instanceof Error) {
    return `${error.name}: ${error.message}`.replace(/[\r\n]+/g, " ");
  }
  return String(error).replace(/[\r\n]+/g, " ");
}

// --- seed ---------------------------------------------------------------------

/**
 * The URLs of a list (FILE, or "-" for stdin), normalised, a line at a time: a
 * list of millions is never held whole (`openListedUrls`, as the crawl CLI's
 * `-i`). The file is opened at once (a bad path is a usage error before Redis
 * is asked anything), read as it is pulled. A line that is no http(s) URL
 * throws a `UsageError` naming it.
 */
async function openUrlFile(path: string): Promise<AsyncGenerator<string>> {
  let lines: AsyncGenerator<ListedUrl>;
  try {
    // No line limit: a line is a URL to check here, not one to fetch.
    lines = await openListedUrls(path, { maxLineLength: Infinity });
  } catch (e) {
    const cause = (e as Error).cause;
    throw new UsageError(
      `cannot read "${path}": ${
        (cause instanceof Error ? cause : e as Error).message
      }`,
    );
  }
  return (async function* () {
    for await (const { url, line } of lines) {
      const normalized = normalize(url);
      if (normalized === null) {
        throw new UsageError(
          `${path}:${line}: invalid URL "${
            hideUrlPassword(url)
          }": expected http:// or https://`,
        );
      }
      yield normalized;
    }
  })();
}

async function seed(
  common: Common,
  urls: string[],
  input: string | undefined,
): Promise<number> {
  const list = input === undefined ? urls : await openUrlFile(input);
  await using conn = await connect(common.redis, "(seed)");
  const { redis } = conn;
  const keys = common.keys;
  await ensureGroup(redis, keys);
  const shas = await loadScripts(redis);
  if (!await mayRunScripts(redis, keys, shas, "seed")) return 1;
  let added = 0;
  let read = 0;
  // Chunks of 1,000, 8 at a time: node-redis pipelines them on the one
  // connection. Each is sent again while Redis is away (seedUrls); the first
  // that fails for good fails the seed, even when it failed while the list was
  // being read (a pipe that writes slowly), with nothing waiting on it.
  const sending = new Set<Promise<void>>();
  let failure: { error: unknown } | null = null;
  const send = (chunk: string[]) => {
    const call = seedUrls(redis, keys, shas.seed, chunk).then(
      (count) => void (added += count),
      (error) => void (failure ??= { error }),
    );
    sending.add(call);
    call.then(() => sending.delete(call));
  };
  /** Throws the failure of a chunk, if one failed. */
  const check = () => {
    if (failure !== null) throw failure.error;
  };
  let chunk: string[] = [];
  try {
    for await (const url of list) {
      check();
      read++;
      chunk.push(url);
      if (chunk.length === 1_000) {
        send(chunk);
        chunk = [];
        if (sending.size >= 8) await Promise.race(sending);
      }
    }
    if (chunk.length > 0) send(chunk);
    await Promise.all(sending);
    check();
  } catch (e) {
    await Promise.all(sending);
    // A chunk that failed: not seeded, whatever the line that came after.
    check();
    if (!(e instanceof UsageError) || read === 0) throw e;
    // A bad line: the URLs before it go in, as seeding is idempotent.
    if (chunk.length > 0) send(chunk);
    await Promise.all(sending);
    check();
    throw new UsageError(
      `${e.message} (the ${read} URLs before it were seeded; once it is fixed, seeding the list again adds only the rest)`,
    );
  }
  console.log(
    `seeded ${added} new URLs (${
      read - added
    } already seen) into ${keys.frontier}`,
  );
  return 0;
}

// --- status -------------------------------------------------------------------

/** What `status --json` prints. */
interface Status {
  frontier: number;
  pending: Record<string, number>;
  results: number;
  errors: number;
}

/** The status, and each worker's time since its last read or claim, in ms. */
async function readStatus(
  redis: Redis,
  keys: Keys,
): Promise<{ status: Status; idle: Map<string, number> }> {
  // Pipelined, not in a MULTI: Redis refuses a MULTI over its maxmemory, when
  // a status is most wanted.
  const [frontier, results, errors] = await Promise.all([
    redis.call(["XLEN", keys.frontier]),
    redis.call(["XLEN", keys.results]),
    redis.call(["GET", keys.errors]),
  ]);
  const pending: Record<string, number> = {};
  const idle = new Map<string, number>();
  try {
    const consumers = await redis.call([
      "XINFO",
      "CONSUMERS",
      keys.frontier,
      keys.group,
    ]) as string[][];
    for (const flat of consumers) {
      const fields = new Map<string, string>();
      for (let i = 0; i + 1 < flat.length; i += 2) {
        fields.set(String(flat[i]), String(flat[i + 1]));
      }
      const name = fields.get("name") ?? "?";
      pending[name] = Number(fields.get("pending") ?? 0);
      idle.set(name, Number(fields.get("idle") ?? NaN));
    }
  } catch (e) {
    // No frontier or no group yet: nobody has anything pending.
    if (!/NOGROUP|no such key/i.test((e as Error).message)) throw e;
  }
  const status = {
    frontier: Number(frontier),
    pending,
    results: Number(results),
    errors: Number(errors ?? 0),
  };
  return { status, idle };
}

async function status(common: Common, json: boolean): Promise<number> {
  await using conn = await connect(common.redis, "(status)");
  const { status: s, idle } = await readStatus(conn.redis, common.keys);
  if (json) {
    console.log(JSON.stringify(s));
    return 0;
  }
  const workers = Object.entries(s.pending);
  const lines = [
    `frontier  ${s.frontier} URLs not yet done (pending ones included)`,
    `pending   ${
      workers.length === 0
        ? "no workers yet"
        : workers.map(([name, n]) =>
          `${name} ${n} (last seen ${
            ((idle.get(name) ?? NaN) / 1000).toFixed(1)
          } s ago)`
        ).join(", ")
    }`,
    `results   ${s.results}`,
    `errors    ${s.errors}`,
  ];
  console.log(lines.join("\n"));
  return 0;
}

// --- work ---------------------------------------------------------------------

function commitOf(
  result: FetchResult,
  item: FrontierItem,
  follow: boolean,
): Commit {
  if (!result.ok) {
    return {
      item,
      url: result.url,
      ok: "false",
      status: "",
      bytes: "0",
      error: errorText(result.error),
      links: [],
    };
  }
  const { response } = result;
  let links: string[] = [];
  const location = follow ? redirectLocation(response) : null;
  if (location !== null) {
    // With --follow the engine leaves redirects to us: a same-origin target
    // joins the frontier as a link does (deduplicated, in scope), and one
    // elsewhere is not fetched.
    // Normalised as the links are (a redirect to /a%c3%a9 and a link to
    // /a%C3%A9 are one entry); an unusable Location: the 3xx is the answer.
    const target = normalizeLink(location, item.url);
    if (
      target !== null && new URL(target).origin === new URL(item.url).origin
    ) {
      links = [target];
    }
  } else if (
    follow && response.status >= 200 && response.status < 300 &&
    isHtml(response.headers, response.body)
  ) {
    const page = new URL(response.url);
    // Links stay on the origin the frontier URL named, even after a redirect.
    if (page.origin === new URL(item.url).origin) {
      links = sameOriginLinks(
        response.body,
        page,
        Infinity,
        response.headers,
      );
    }
  }
  return {
    item,
    url: result.url,
    ok: "true",
    status: String(response.status),
    bytes: String(response.body.length),
    error: "",
    links,
  };
}

/** User + system time, in seconds with 2 decimals. */
function cpuSeconds(usage: { user: number; system: number }): number {
  return Number(((usage.user + usage.system) / 1e6).toFixed(2));
}

/** Why the crawl was aborted: results with this error are released, not written. */
class Stopped extends Error {
  override name = "Stopped";
}

async function work(o: WorkOptions): Promise<number> {
  const started = performance.now();
  await using conn = await connect(o.redis, o.name);
  const { redis, reader } = conn;
  const twin = await namesake(conn, o.name);
  if (twin === "unknown") {
    console.error(
      `distributed_crawl.ts: this Redis user may not run CLIENT LIST: no check that no other live worker is named "${o.name}" (two would fetch each other's URLs again)`,
    );
  } else if (twin !== null) {
    // Two live workers of one name take each other's entries as their own:
    // every URL one holds, the other fetches again.
    console.error(
      `distributed_crawl.ts: another worker named "${o.name}" is connected to this Redis (client id ${twin.id}, ${twin.addr}): each worker needs a name of its own (if that one is gone, its connection lingers: CLIENT KILL ID ${twin.id})`,
    );
    return 2;
  }
  await ensureGroup(redis, o.keys);
  const shas = await loadScripts(redis);
  if (!await mayRunScripts(redis, o.keys, shas, "work")) return 1;
  await warnIfEvicting(redis);
  const source = new FrontierSource({
    redis,
    reader,
    keys: o.keys,
    name: o.name,
    shas,
    limit: o.concurrency + o.queue,
    claimIdle: o.claimIdle,
    block: 1_000,
    idleExit: o.idleExit,
    originDelay: o.originDelay,
  });
  const abort = new AbortController();
  const committer = new Committer(redis, {
    keys: o.keys,
    name: o.name,
    shas,
    settled: (ids) => source.settle(ids),
    // The crawl ends at once: drain() below rethrows the error (exit 1), and
    // what is unwritten stays pending in Redis for another worker.
    failed: () => {
      source.stop();
      abort.abort(new Stopped("a commit failed"));
    },
  });
  let signals = 0;
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  const onSignal = () => {
    signals++;
    if (signals === 1) {
      console.error(
        `${o.name}: stopping: finishing URLs in flight (up to ${o.grace} ms; again to skip)`,
      );
      source.stop();
      graceTimer = setTimeout(
        () => abort.abort(new Stopped("grace time over")),
        o.grace,
      );
    } else {
      abort.abort(new Stopped("stopped"));
      // A Redis that does not answer must not keep the worker: what is not
      // released stays pending, for another worker after --claim-idle.
      setTimeout(() => {
        console.error(
          `${o.name}: Redis did not answer within 5 s of the second signal: exiting without releasing`,
        );
        Deno.exit(1);
      }, 5_000);
    }
  };
  // SIGHUP too: the ssh session a worker was started from, gone (Deno does
  // not keep `nohup`'s ignoring it); its entries go back to the others.
  const signalNames = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
  for (const name of signalNames) Deno.addSignalListener(name, onSignal);
  const options: FetchAllOptions = {
    concurrency: o.concurrency,
    maxQueued: o.queue,
    timeout: o.timeout,
    maxResponseBytes: o.maxBytes,
    retry: { limit: o.retries },
    // With --follow a redirect's target goes through the frontier, as a link.
    redirect: o.follow ? "manual" : "follow",
    // Locally too: retries and redirects get no reservation of their own.
    perOrigin: { concurrency: o.originConcurrency, delay: o.originDelay },
    signal: abort.signal,
  };
  const abandoned: string[] = [];
  const cpuBefore = cpuUsage();
  let fetched = 0;
  let failed = 0;
  let failure: unknown = null;
  // --verbose lines go out without blocking: a reader that paused held the
  // worker, its leases went unrenewed, and another worker fetched its URLs
  // again. The worker goes at the reader's pace instead.
  const out = new StdoutLines({
    // stdout on a full disk, or its reader gone: the log is lost, not the
    // work. The worker goes on, its results committed and its entries
    // released. (This line lost too, stderr full as well: StdoutLines
    // takes that.)
    onError: (e) =>
      console.error(
        `distributed_crawl.ts: ${o.name}: cannot write to standard output (${
          errorText(e)
        }); no more --verbose lines`,
      ),
  });
  try {
    for await (const { result } of fetchEach(source, options)) {
      const item = result.data as FrontierItem;
      if (!result.ok && result.error instanceof Stopped) {
        abandoned.push(item.id);
        continue;
      }
      fetched++;
      if (!result.ok) failed++;
      committer.add(commitOf(result, item, o.follow));
      if (o.verbose && out.open) {
        await out.write(
          result.ok
            ? `${result.response.status} ${result.response.body.length} ${result.url}\n`
            : `ERR ${result.url} ${errorText(result.error)}\n`,
        );
      }
    }
    await committer.drain();
    await out.flushed();
  } catch (e) {
    failure = e;
  } finally {
    clearTimeout(graceTimer);
    for (const name of signalNames) Deno.removeSignalListener(name, onSignal);
    source.stop();
    await source.closed();
  }
  const unfinished = [...abandoned, ...source.unhanded.map((item) => item.id)];
  let released = 0;
  if (failure === null && unfinished.length > 0) {
    try {
      released = await release(
        redis,
        o.keys,
        o.name,
        unfinished,
        shas.release,
      );
    } catch (e) {
      failure = e;
    }
  }
  const summary = {
    worker: o.name,
    fetched,
    failed,
    committed: committer.stats.committed,
    lost: committer.stats.lost,
    claimed: source.stats.claimed,
    recovered: source.stats.recovered,
    released,
    roundTrips: conn.roundTrips,
    roundTripsPerUrl: fetched === 0
      ? 0
      : Number((conn.roundTrips / fetched).toFixed(3)),
    seconds: Number(((performance.now() - started) / 1000).toFixed(2)),
    cpuSeconds: cpuSeconds(cpuUsage()),
    crawlCpuSeconds: cpuSeconds(cpuUsage(cpuBefore)),
  };
  if (o.json) {
    console.log(JSON.stringify(summary));
  } else {
    console.error(
      `${o.name}: ${fetched} fetched (${failed} failed), ${summary.committed} committed, ` +
        `${summary.lost} lost to other workers, ${summary.claimed} claimed, ` +
        `${summary.released} released; ${summary.roundTrips} Redis round trips ` +
        `(${summary.roundTripsPerUrl} per URL) in ${summary.seconds} s ` +
        `(${summary.cpuSeconds} s CPU)`,
    );
  }
  if (failure !== null) {
    console.error(`${o.name}: ${errorText(failure)}`);
    return 1;
  }
  return 0;
}

async function main(args: string[]): Promise<number> {
  let command: Command;
  try {
    command = parseCommandLine(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`distributed_crawl.ts: ${e.message}`);
    return 2;
  }
  try {
    switch (command.command) {
      case "help":
        await Deno.stdout.write(encoder.encode(HELP + "\n"));
        return 0;
      case "seed":
        return await seed(command.common, command.urls, command.input);
      case "status":
        return await status(command.common, command.json);
      case "work":
        return await work(command.options);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`distributed_crawl.ts: ${e.message}`);
      return 2;
    }
    console.error(`distributed_crawl.ts: ${(e as Error).message ?? e}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
