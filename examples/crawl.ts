/**
 * A command-line crawler on the module's HTTP client: URL lists of any length,
 * link following with robots.txt, bodies saved to disk and WARC archives, all on
 * one selector.
 *
 * ```sh
 * deno run -N examples/crawl.ts https://example.com/ https://example.com/a
 * deno run -N -R examples/crawl.ts -i urls.txt --json > results.jsonl
 * deno run -N -R -W examples/crawl.ts --follow --depth 2 -o site/ --warc site.warc.gz https://example.com/
 * deno task demo   # a local demo server started in a child process (--demo)
 * ```
 *
 * Run with `--help` for the options. Results stream out as URLs finish (with
 * `--json`, one JSON object per line); a summary table ends the run, on stderr
 * whenever stdout carries results. On a terminal a progress bar is drawn on
 * stderr. Exit codes: 0 when every URL got a response (whatever its status), 1
 * when any failed or a file could not be written, 2 for a bad command line.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import {
  type FetchAllOptions,
  fetchEach,
  type FetchResult,
  type HttpTap,
  redirectLocation,
  type RequestSpec,
} from "../mod.ts";
import { hideUrlPassword } from "./_args.ts";
import { sameFile } from "./crawl/_util.ts";
import { BodySink } from "./crawl/body_sink.ts";
import { DiskError } from "./crawl/disk_error.ts";
import {
  Frontier,
  type FrontierEntry,
  MAX_REDIRECTS,
} from "./crawl/frontier.ts";
import { openUrlList, readUrls, tooLong } from "./crawl/input.ts";
import { StdoutLines } from "./crawl/stdout_lines.ts";
import {
  charsetOf,
  isHtml,
  LinkExtractor,
  robotsNofollow,
} from "./crawl/links.ts";
import {
  type CliOptions,
  HELP,
  parseCommandLine,
  UsageError,
} from "./crawl/options.ts";
import { OutputDir } from "./crawl/output_dir.ts";
import { productToken, RobotsCache } from "./crawl/robots.ts";
import { engineRobotsFetcher } from "./crawl/robots_fetch.ts";
import { gate } from "./crawl/robots_gate.ts";
import { formatBytes, formatMs, Stats } from "./crawl/stats.ts";
import { WarcWriter } from "./crawl/warc.ts";
import { type WarcTap, warcTap } from "./crawl/warc_tap.ts";

const DEMO_URLS = 500;

/**
 * `Basic` and the percent-decoded `user:password` bytes of `url` in base64,
 * as the engine sends a URL's credentials; `null` when it has none.
 */
function basicAuthorization(url: URL): string | null {
  if (url.username === "" && url.password === "") return null;
  // The URL parser percent-encodes all but ASCII in userinfo.
  const binary = `${url.username}:${url.password}`.replace(
    /%([0-9A-Fa-f]{2})/g,
    (_, hex: string) => String.fromCharCode(parseInt(hex, 16)),
  );
  return `Basic ${btoa(binary)}`;
}
/** The robots.txt bytes read (RFC 9309 §2.5: at least 500 KiB). */
const ROBOTS_MAX_BYTES = 512_000;
/** HTML kept per page for its links, at most. */
const MAX_HTML = 8 * 1024 * 1024;

/** -H fields that are credentials: sent with --follow to named origins only. */
const CREDENTIALS = /^(?:authorization|cookie)$/i;
/**
 * The longest robots.txt Crawl-delay obeyed, in ms (Heritrix's default): a site
 * asking for more would hold its URLs for hours with no sign of life.
 */
const MAX_CRAWL_DELAY = 300_000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The engine's options plus the transports', which this branch may not know yet:
 * passed through as given.
 */
type EngineOptions = FetchAllOptions & {
  proxy?: string;
  unixSocket?: string;
};

/** What the CLI keeps with each URL it hands the engine (its `data`). */
interface Item {
  entry: FrontierEntry | null;
  sink: BodySink | null;
}

/** The demo server, in its own process, as `deno run` of `_demo_server.ts`. */
class DemoServer implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly base: string;

  private constructor(child: Deno.ChildProcess, base: string) {
    this.#child = child;
    this.base = base;
  }

  static async start(): Promise<DemoServer> {
    if (Deno.build.standalone) {
      // Deno.execPath() is this binary, not deno: it cannot run the server.
      throw new Error(
        "Cannot start the demo server from a compiled binary (it runs _demo_server.ts with deno): give URLs, or run crawl.ts with deno run",
      );
    }
    const script = new URL("./_demo_server.ts", import.meta.url);
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--quiet",
          "--no-config",
          "--allow-net=127.0.0.1",
          // A path as this OS writes it: the URL's pathname keeps its %20s
          // (a folder "My Projects") and on Windows reads "/C:/...".
          script.protocol === "file:" ? fileURLToPath(script) : script.href,
          "--exit-on-stdin-eof",
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
    } catch (e) {
      throw new Error(
        `Cannot start the demo server (it needs --allow-run): ${
          e instanceof Error ? e.message : e
        }`,
      );
    }
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let text = "";
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error("no answer within 15 s")),
        15_000,
      );
    });
    try {
      while (!text.includes("\n")) {
        const next = await Promise.race([reader.read(), timeout]);
        if (next.done) throw new Error("it exited before listening");
        text += next.value;
      }
    } catch (e) {
      clearTimeout(timer);
      await reader.cancel().catch(() => {});
      await stop(child);
      throw new Error(
        `Cannot start the demo server: ${e instanceof Error ? e.message : e}`,
      );
    }
    clearTimeout(timer);
    await reader.cancel().catch(() => {});
    const base = /listening on (http:\/\/\S+\/)/.exec(text)?.[1];
    if (base === undefined) {
      await stop(child);
      throw new Error(`Cannot start the demo server: it said "${text.trim()}"`);
    }
    return new DemoServer(child, base);
  }

  /** A fixed mix of a few hundred URLs on the server. */
  urls(count: number): string[] {
    const sizes = [0, 1, 512, 4096, 16384, 65536, 262144];
    const statuses = [200, 201, 204, 404];
    const urls: string[] = [];
    for (let i = 0; i < count; i++) {
      const size = sizes[(i * 7 + Math.floor(i / 10)) % sizes.length]!;
      switch (i % 10) {
        case 4:
        case 5:
          urls.push(`${this.base}chunked/${size}`);
          break;
        case 6:
          urls.push(`${this.base}gzip/${size}`);
          break;
        case 7:
          urls.push(`${this.base}status/${statuses[(i / 10 | 0) % 4]}`);
          break;
        case 8:
          urls.push(`${this.base}redirect/${size}`);
          break;
        case 9:
          urls.push(`${this.base}slow/${10 + (i * 13) % 90}/${size}`);
          break;
        default:
          urls.push(`${this.base}bytes/${size}`);
      }
    }
    return urls;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await stop(this.#child);
  }
}

/** Ends a child: closes its stdin (it exits on EOF), then kills it if need be. */
async function stop(child: Deno.ChildProcess): Promise<void> {
  await child.stdin.close().catch(() => {});
  const timer = setTimeout(() => {
    try {
      child.kill();
    } catch { /* already gone */ }
  }, 2_000);
  try {
    await child.status;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One status line on stderr (a terminal), redrawn at most 10 times a second,
 * and only after a change: a crawl waiting (a Crawl-delay, its URL list) draws
 * nothing and wakes nothing (a redraw every 100 ms woke it ~28 times a second).
 */
class Progress {
  readonly #started = performance.now();
  readonly #total: number | null;
  #enabled: boolean;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #shown = false;
  /** The terminal went away (a `setsid` job's): no bar any more. */
  #off = false;
  #paused = 0;
  #state = { done: 0, queued: 0, bytes: 0, errors: 0 };

  constructor(total: number | null, enabled: boolean) {
    this.#total = total;
    this.#enabled = enabled;
    if (enabled) this.#draw();
  }

  update(done: number, queued: number, bytes: number, errors: number): void {
    this.#state = { done, queued, bytes, errors };
    this.#schedule();
  }

  /** Runs `write` with the bar out of the way. */
  around(write: () => void): void {
    this.#clear();
    write();
    this.#schedule();
  }

  /** A redraw in 100 ms, unless one is due already. */
  #schedule(): void {
    if (!this.#enabled || this.#off || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#draw();
    }, 100);
  }

  /**
   * Clears the bar and draws it no more until as many `resume()`s: a write
   * to the terminal is under way, and may take a while (stdout a pipe whose
   * reader is slow).
   */
  pause(): void {
    this.#paused++;
    this.#clear();
  }

  resume(): void {
    this.#paused--;
    this.#schedule();
  }

  stop(): void {
    this.#enabled = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#clear();
  }

  #clear(): void {
    if (!this.#shown) return;
    this.#shown = false;
    this.#write("\r\x1b[2K");
  }

  /** Writes to the terminal; once it is gone (EIO), the bar is off. */
  #write(text: string): void {
    try {
      Deno.stderr.writeSync(encoder.encode(text));
    } catch {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#shown = false;
      this.#off = true;
    }
  }

  #draw(): void {
    if (this.#off || this.#paused > 0) return;
    const { done, queued, bytes, errors } = this.#state;
    const seconds = (performance.now() - this.#started) / 1000;
    const rate = seconds > 0 ? bytes / seconds : 0;
    const requests = seconds > 0 ? done / seconds : 0;
    const stats = ` ${done} done, ${queued} queued  ${
      requests.toFixed(0)
    } req/s  ${formatBytes(rate)}/s  ${
      errors === 0 ? "no errors" : `${errors} errors`
    }`;
    let columns = 80;
    try {
      columns = Deno.consoleSize().columns || 80;
    } catch { /* not a console after all */ }
    let bar = "";
    if (this.#total !== null) {
      const width = Math.max(10, Math.min(40, columns - stats.length - 3));
      const filled = this.#total === 0
        ? width
        : Math.round(width * Math.min(1, done / this.#total));
      bar = `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
    }
    this.#shown = true;
    this.#write(`\r\x1b[2K${(bar + stats).slice(0, columns - 1)}`);
  }
}

function errorInfo(error: unknown): { name: string; message: string } {
  if (error instanceof Error || error instanceof DOMException) {
    return { name: error.name, message: error.message };
  }
  return { name: typeof error, message: String(error) };
}

const NO_TIMINGS: FetchResult["timings"] = Object.freeze({
  queued: 0,
  connect: 0,
  firstByte: 0,
  total: 0,
});

function originOf(url: string): string {
  // "null" for a URL with no origin (ftp:, or a list's "FILE:LINE").
  const origin = URL.parse(url)?.origin ?? "null";
  return origin === "null" ? "(invalid URL)" : origin;
}

/**
 * The delay to use for an origin's Crawl-delay (in ms, `undefined` if none),
 * and what to tell the user when it is not used as given.
 */
function politeDelay(
  origin: string,
  crawlDelay: number | undefined,
): { ms: number; note: string | null } {
  if (crawlDelay === undefined) return { ms: 0, note: null };
  const asked = `robots.txt of ${origin} asks for Crawl-delay: ${
    crawlDelay / 1000
  }`;
  if (!Number.isFinite(crawlDelay)) {
    return { ms: 0, note: `${asked}: ignored` };
  }
  if (crawlDelay > MAX_CRAWL_DELAY) {
    return {
      ms: MAX_CRAWL_DELAY,
      note: `${asked}: capped at ${MAX_CRAWL_DELAY / 1000} s`,
    };
  }
  return { ms: crawlDelay, note: null };
}

/** Reads a file named on the command line; a failure is a usage error. */
async function readOptionFile(flag: string, path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new UsageError(
      `cannot read ${flag} '${path}': ${e instanceof Error ? e.message : e}`,
    );
  }
}

/** The variables proxy "env" reads (curl's). */
const PROXY_VARIABLES = ["http", "https", "all", "no"].flatMap((name) => [
  `${name}_proxy`,
  `${name.toUpperCase()}_PROXY`,
]);

/**
 * Whether proxy variables may be read without a prompt (for proxy "env"):
 * `-E`, or `--allow-env` naming some of them (the engine takes those it may
 * not read as unset).
 */
function mayReadEnv(): boolean {
  try {
    return PROXY_VARIABLES.some((variable) =>
      Deno.permissions.querySync({ name: "env", variable }).state === "granted"
    );
  } catch {
    return false;
  }
}

/** The request options the crawl and the robots.txt fetches share. */
function transportOptions(
  options: CliOptions,
  caCerts: string[] | undefined,
  tap: HttpTap | undefined,
): EngineOptions {
  const engine: EngineOptions = { keepAlive: options.keepAlive };
  if (options.timeout !== undefined) engine.timeout = options.timeout;
  if (options.connectTimeout !== undefined) {
    engine.connectTimeout = options.connectTimeout;
  }
  if (caCerts !== undefined) engine.caCerts = caCerts;
  if (tap !== undefined) engine.tap = tap;
  // "env" needs --allow-env: without it, no proxy rather than a prompt.
  if (options.proxy !== null && (options.proxy !== "env" || mayReadEnv())) {
    engine.proxy = options.proxy;
  }
  if (options.unixSocket !== undefined) {
    engine.unixSocket = options.unixSocket;
  }
  return engine;
}

/**
 * The URLs to start from: arguments, then the -i list or stdin. A line of the
 * list too long to be read goes to `onTooLong` (with where it is), and the
 * list goes on.
 */
async function seedsOf(
  options: CliOptions,
  onTooLong: (where: string, error: RangeError) => void,
): Promise<AsyncIterable<string> | null> {
  let list: AsyncIterable<string> | null = null;
  const input = options.input ?? "-";
  const read = {
    onTooLong: (line: number, max: number) =>
      onTooLong(
        `${input === "-" ? "stdin" : input}:${line}`,
        tooLong(line, max),
      ),
  };
  if (options.input !== undefined) {
    try {
      list = await openUrlList(options.input, read);
    } catch (e) {
      throw new UsageError(e instanceof Error ? e.message : String(e));
    }
  } else if (options.urls.length === 0 && !Deno.stdin.isTerminal()) {
    list = readUrls(Deno.stdin.readable, read);
  }
  if (list === null && options.urls.length === 0) return null;
  const urls = options.urls;
  return (async function* () {
    yield* urls;
    if (list !== null) yield* list;
  })();
}

async function main(): Promise<number> {
  let options: CliOptions | "help";
  let body: string | Uint8Array | undefined;
  let caCerts: string[] | undefined;
  let seeds: AsyncIterable<string> | null = null;
  // Set once results can be reported; lines come only once the crawl runs.
  let reportTooLong = (_where: string, _error: RangeError): void => {};
  try {
    options = parseCommandLine(Deno.args);
    if (options === "help") {
      console.log(HELP);
      return 0;
    }
    body = options.data ??
      (options.dataFile === undefined
        ? undefined
        : await readOptionFile("--data-file", options.dataFile));
    if (options.cacert !== undefined) {
      caCerts = [
        decoder.decode(await readOptionFile("--cacert", options.cacert)),
      ];
    }
    if (!options.demo) {
      seeds = await seedsOf(
        options,
        (where, error) => reportTooLong(where, error),
      );
      if (seeds === null) {
        throw new UsageError(
          "no URL given: pass URLs, -i FILE, pipe them on stdin, or use --demo",
        );
      }
    }
    if (
      options.warc !== undefined && options.input !== undefined &&
      options.input !== "-" && await sameFile(options.input, options.warc)
    ) {
      // Opening the WARC empties it before a line of the list is read.
      throw new UsageError(
        `--warc ${options.warc} is the URL list (-i): it would be overwritten`,
      );
    }
    const method = options.method ?? (body === undefined ? "GET" : "POST");
    if (body !== undefined && (method === "GET" || method === "HEAD")) {
      throw new UsageError(`a request body cannot be sent with ${method}`);
    }
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`crawl: ${e.message} (see --help)`);
    return 2;
  }
  const cli = options;

  // Files first: an unwritable -o or --warc fails before any request.
  let output: OutputDir | null = null;
  let warc: WarcWriter | null = null;
  try {
    if (cli.outputDir !== undefined) {
      output = await openOutputDir(cli.outputDir);
    }
    if (cli.warc !== undefined) {
      warc = await WarcWriter.create(cli.warc, {
        // As wget: gzip for FILE.warc.gz (or .gz), a plain WARC otherwise.
        gzip: /\.gz$/i.test(cli.warc),
        rawChunkedPayloadDigest: cli.warcFramedDigest,
        info: {
          operator: "crawl.ts",
          "http-header-user-agent": cli.userAgent,
          robots: cli.follow && !cli.ignoreRobots ? "obey" : "ignore",
        },
      });
    }
  } catch (e) {
    if (!(e instanceof DiskError)) throw e;
    console.error(`crawl: ${e.message}`);
    return 1;
  }

  const controller = new AbortController();
  let fatal: DiskError | null = null;
  let frontier: Frontier | null = null;
  const stop = (error: DiskError | null) => {
    if (error !== null && fatal === null) fatal = error;
    // The URLs in flight fail with the stop, not with another URL's disk
    // error: their own files were never the problem.
    controller.abort(
      new DOMException(
        error === null ? "Interrupted" : `Stopped: ${error.message}`,
        "AbortError",
      ),
    );
    frontier?.close();
  };
  const archive: WarcTap | null = warc === null
    ? null
    : warcTap(warc, (error) => stop(error));

  let server: DemoServer | null = null;
  let total: number | null = null;
  if (cli.demo) {
    try {
      server = await DemoServer.start();
    } catch (e) {
      console.error(`crawl: ${e instanceof Error ? e.message : e}`);
      await warc?.close();
      return 1;
    }
    const urls = cli.follow ? [`${server.base}site/`] : server.urls(DEMO_URLS);
    if (!cli.follow) total = urls.length;
    seeds = (async function* () {
      yield* urls;
    })();
    if (!cli.json) {
      console.error(
        `crawl: crawling ${
          cli.follow ? "the linked site" : `${urls.length} URLs`
        } of a local demo server at ${server.base}`,
      );
    }
  } else if (cli.input === undefined && cli.urls.length > 0 && !cli.follow) {
    // Arguments only (stdin is read only without them): the total is known,
    // unless links add to it.
    total = cli.urls.length;
  }

  const transport = transportOptions(cli, caCerts, archive?.tap);
  // -H's User-Agent, if any, is cli.userAgent (it names the robots.txt agent too).
  // With --follow, -H credentials go only to the origins the command named
  // (its seeds and --origin): a seed's redirect to another origin queues it
  // like a seed (and on a named host, give or take www., links on it follow),
  // but it was the server's choice, not the user's. (The engine drops them on
  // such a redirect itself, as curl does; --follow takes redirects out of its
  // hands.)
  const credentials = cli.follow
    ? cli.headers.filter(([name]) => CREDENTIALS.test(name))
    : [];
  const authorizationGiven = credentials.some(([name]) =>
    /^authorization$/i.test(name)
  );
  const named = new Set(cli.origins.map((origin) => new URL(origin).origin));
  /**
   * With --follow, the `Authorization: Basic` of a seed's user name and
   * password, by its origin: its links and same-origin redirects lose the
   * URL's credentials (a link's own are the server's, never sent), so they go
   * as this header to that origin alone, as wget sends them to the links it
   * resolves against such a URL; the first seed's of an origin wins.
   */
  const seedAuthorization = new Map<string, string>();
  const headers: [string, string][] = [
    ["user-agent", cli.userAgent],
    ...cli.headers.filter((header) => !credentials.includes(header)),
  ];
  for (const [name] of cli.headers) {
    if (/^(?:content-length|transfer-encoding)$/i.test(name)) {
      // The engine frames the body itself; a curl habit should not pass unseen.
      console.error(
        `crawl: -H ${name} ignored: a request's framing comes from its body`,
      );
    }
  }
  const stats = new Stats();
  /** The robots.txt token: the `<meta name>` and `X-Robots-Tag` name it obeys. */
  const agent = productToken(cli.userAgent);
  /**
   * When each origin's last robots.txt request started: the engine's delay
   * does not see it, as it goes through a fetch of its own.
   */
  const robotsStarted = new Map<string, number>();
  const robots = cli.follow && !cli.ignoreRobots
    ? new RobotsCache(
      engineRobotsFetcher({
        engine: {
          ...transport,
          headers: [["user-agent", cli.userAgent]],
          // A busy robots.txt would otherwise shut out its origin for the run.
          retry: { limit: cli.retries },
          signal: controller.signal,
        },
        onRequest: (url) => robotsStarted.set(url.origin, performance.now()),
        delay: cli.delay,
        // One byte more than the cache reads: a file of exactly its size is
        // whole, one with more was cut (and ends at its last whole line).
        maxBytes: ROBOTS_MAX_BYTES + 1,
      }),
      { userAgent: productToken(cli.userAgent), maxBytes: ROBOTS_MAX_BYTES },
    )
    : null;
  /** Each origin's delay: --delay, or its robots.txt Crawl-delay if longer. */
  const delays = new Map<string, number>();

  let pulled = 0;
  /** -o's sinks whose file is not yet in place or removed. */
  const saving = new Set<BodySink>();
  // With --follow, -X and -d are the starting URLs' request, repeated where a
  // redirect that keeps it leads (see keepsRequest): the links found, and
  // other redirects, are fetched with GET, as a browser follows them.
  const method = cli.method ?? (body === undefined ? "GET" : "POST");
  const seedRequest: Pick<RequestSpec, "method" | "body"> = {
    method,
    ...(body === undefined ? {} : { body }),
  };
  const requestOf = (entry: FrontierEntry | null) => {
    const request: Pick<RequestSpec, "method" | "body" | "headers"> =
      cli.follow && entry?.seedRequest === true ? { ...seedRequest } : {};
    // Most crawls have no credentials: no URL parsed per request for them.
    if (
      entry === null ||
      (credentials.length === 0 && seedAuthorization.size === 0)
    ) return request;
    const url = new URL(entry.url);
    const origin = url.origin;
    const headers = named.has(origin) ? [...credentials] : [];
    const basic = seedAuthorization.get(origin);
    // -H Authorization wins, as it does over a URL's credentials; a seed's
    // own user name and password go with it (the engine sends them), not an
    // earlier seed's of its origin.
    if (
      basic !== undefined && url.username === "" && url.password === "" &&
      !authorizationGiven
    ) {
      headers.push(["authorization", basic]);
    }
    if (headers.length > 0) request.headers = headers;
    return request;
  };
  const spec = (
    url: string,
    entry: FrontierEntry | null,
  ): string | RequestSpec => {
    pulled++;
    if (output === null && cli.printBody) {
      // Printed whole: the engine keeps it.
      return entry === null
        ? url
        : { url, ...requestOf(entry), data: { entry, sink: null } };
    }
    // Streamed: to its file with -o, else only counted (and kept for links).
    // A sink per attempt: one cut short mid-body is aborted (its file
    // removed), and the retry (--retries) writes to a new one.
    const item: Item = { entry, sink: null };
    // With -o, only a 2xx body is saved, as wget does: a redirect's would
    // replace the page it leads to (/docs -> /docs/ both map to
    // docs/index.html), and so would an error page (/p.html/ 404 over
    // /p.html). Its head tells, before the body comes.
    const head = output !== null ? new HeadWatch() : null;
    const sink = () => {
      const made = item.sink = new BodySink(output, url, {
        keep: cli.printBody ? Infinity : cli.follow ? MAX_HTML : 0,
        keepTextOnly: !cli.printBody,
        ...(head === null ? {} : { save: () => head.success }),
      });
      if (output !== null) {
        saving.add(made);
        made.done.then(() => saving.delete(made));
      }
      return made.writable;
    };
    return {
      url,
      ...requestOf(entry),
      sink,
      ...(head === null ? {} : { tap: head.tap(archive?.tap) }),
      data: item,
    };
  };

  /** A URL that got no response without the engine seeing it: a failure. */
  const failBefore = (
    url: string,
    error: Error,
    entry: FrontierEntry | null = null,
  ) =>
    out.write(
      report(
        {
          url,
          ok: false,
          error,
          data: undefined,
          attempts: 0,
          timings: NO_TIMINGS,
        },
        entry,
        null,
        cli,
        stats,
      ),
    );

  reportTooLong = (where, error) => failBefore(where, error);

  let source: AsyncIterable<string | RequestSpec>;
  if (cli.follow) {
    const given = seeds!;
    const front = frontier = new Frontier({
      // Each seed's origin is one the command named, as it is read.
      seeds: (async function* () {
        for await (const seed of given) {
          try {
            const url = new URL(seed);
            named.add(url.origin);
            const basic = basicAuthorization(url);
            if (basic !== null && !seedAuthorization.has(url.origin)) {
              seedAuthorization.set(url.origin, basic);
            }
          } catch {
            // Not a URL: the frontier fails it.
          }
          yield seed;
        }
      })(),
      maxDepth: cli.depth,
      origins: cli.origins,
      onInvalidSeed: (seed) =>
        failBefore(
          String(seed),
          new TypeError(
            `Cannot fetch: ${
              JSON.stringify(String(seed))
            } is not an http(s) URL`,
          ),
        ),
    });
    // An entry goes on once its origin's robots.txt is known (and with it the
    // origin's Crawl-delay); many origins' robots.txt are fetched at once.
    const entries = robots === null ? front : gate(front, async (entry) => {
      const origin = new URL(entry.url).origin;
      if (!delays.has(origin)) {
        const crawlDelay = politeDelay(origin, await robots.crawlDelay(origin));
        // Asked for by many URLs at once: said and set once.
        if (!delays.has(origin)) {
          if (crawlDelay.note !== null) {
            const note = crawlDelay.note;
            progress.around(() => tell(`crawl: ${note}`));
          }
          delays.set(origin, Math.max(cli.delay, crawlDelay.ms));
        }
      }
      if (await robots.isAllowed(entry.url)) return true;
      const rules = await robots.rules(origin);
      // Ctrl-C cut the robots.txt fetch short: no verdict on the site.
      if (controller.signal.aborted) return false;
      if (rules.outcome === "unreachable") {
        // RFC 9309 §2.3.1.4: nothing may be fetched; not the site's choice, so
        // the URL failed: the gate hands the error to onRefused.
        const why = rules.status === undefined
          ? errorInfo(rules.error)
          : { name: "RobotsUnreachable", message: `answered ${rules.status}` };
        const error = new Error(
          `robots.txt of ${origin} ${
            rules.status === undefined
              ? `could not be fetched (${why.message})`
              : why.message
          }: RFC 9309 disallows the whole origin`,
        );
        error.name = why.name;
        throw error;
      }
      return false;
    }, {
      onRefused: (entry, error) => {
        if (error instanceof Error) failBefore(entry.url, error, entry);
        else if (!controller.signal.aborted) {
          // (Interrupted before its robots.txt answered: neither excluded nor
          // failed, like the URLs never read.)
          stats.robotsExcluded++;
        }
        front.done(entry);
      },
      // The origin's delay counts from its robots.txt request too; its first
      // page waits for it outside the gate's window of checks.
      notBefore: (entry) => {
        const origin = new URL(entry.url).origin;
        const started = robotsStarted.get(origin);
        return started === undefined
          ? undefined
          : started + (delays.get(origin) ?? cli.delay);
      },
      signal: controller.signal,
    });
    source = (async function* () {
      for await (const entry of entries) {
        await archive?.ready();
        yield spec(entry.url, entry);
      }
    })();
  } else {
    const list = seeds!;
    source = (async function* () {
      for await (const url of list) {
        await archive?.ready();
        yield spec(url, null);
      }
    })();
  }

  const engine: EngineOptions = {
    ...transport,
    method: cli.follow ? "GET" : method,
    headers,
    perOrigin: {
      delay: robots === null
        ? cli.delay
        : (origin: string) => delays.get(origin) ?? cli.delay,
      ...(cli.perOrigin !== undefined || cli.follow
        ? { concurrency: cli.perOrigin ?? 6 }
        : {}),
    },
    retry: { limit: cli.retries },
    maxResponseBytes: cli.maxBytes,
    // With --follow a redirect is queued like a link (scope, robots.txt, seen
    // URLs), not followed inside the engine.
    ...(cli.follow ? { redirect: "manual" as const } : {}),
    signal: controller.signal,
  };
  if (body !== undefined && !cli.follow) engine.body = body;
  if (cli.concurrency !== undefined) engine.concurrency = cli.concurrency;

  let interrupts = 0;
  /** Until the last result: a signal after it stops nothing but the WARC's writing. */
  let crawling = true;
  /** The signal that stopped the crawl before its last result, if one did. */
  let stoppedBy: keyof typeof SIGNAL_EXIT | null = null;
  const onSignal = (signal: keyof typeof SIGNAL_EXIT) => {
    interrupts++;
    if (crawling) stoppedBy ??= signal;
    // A third one does not wait for anything; without a WARC, a second.
    if (interrupts > 2 || (interrupts === 2 && warc === null)) {
      Deno.exit(SIGNAL_EXIT[signal]);
    }
    if (interrupts === 2) {
      // Writing a large record takes seconds: cut the WARC at its last whole one.
      warc?.abort();
    } else if (warc !== null) {
      tell(
        "crawl: stopping; the exchanges already read go into the WARC (Ctrl-C again: cut it at its last whole record)",
      );
    }
    if (crawling) stop(null);
  };
  // SIGTERM too (`timeout`, `docker stop`, systemd), and SIGHUP (the terminal
  // or the ssh session gone; Deno does not keep `nohup`'s ignoring it): the
  // same clean stop.
  const listeners = new Map<Deno.Signal, () => void>();
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const listener = () => onSignal(signal);
    try {
      Deno.addSignalListener(signal, listener);
      listeners.set(signal, listener);
    } catch {
      // Refused (Deno before 2.7.6 took no SIGTERM on Windows; 2.9 maps
      // logoff/shutdown to it and closing the console to SIGHUP): that
      // signal keeps its default.
    }
  }

  const quiet = cli.demo && !cli.json && !cli.printBody;
  // A list typed on the terminal: say so, and keep the line it is typed on.
  const typing = seeds !== null && cli.input === "-" && Deno.stdin.isTerminal();
  if (typing) {
    console.error(
      "crawl: reading URLs from the terminal, one a line (Ctrl-D ends)",
    );
  }
  const progress = new Progress(
    total,
    Deno.stderr.isTerminal() && !typing && !dumbTerminal(),
  );
  // Results go out without blocking the loop (see StdoutLines).
  const out = new StdoutLines({
    // `crawl.ts ... | head`: the reader is gone, so the crawl is done. Any
    // other error (a full disk) stops it too, and is what it ends on.
    onError: (e) =>
      stop(
        e instanceof Deno.errors.BrokenPipe
          ? null
          : new DiskError("write the results to", "standard output", e),
      ),
    // The bar shares the terminal with stdout only when stdout is one.
    around: Deno.stdout.isTerminal() ? progress : null,
  });

  try {
    for await (const { result } of fetchEach(source, engine)) {
      const item = result.data as Item | undefined;
      const entry = item?.entry ?? null;
      const sink = item?.sink ?? null;
      if (
        !result.ok && result.attempts === 0 && controller.signal.aborted &&
        result.error === controller.signal.reason
      ) {
        // Queued, and the stop (Ctrl-C, a full disk) came before it started:
        // neither fetched nor failed, like the URLs never read.
        if (frontier !== null && entry !== null) frontier.done(entry);
        continue;
      }
      // Fetched whole (archived, its links followed) but its file could not
      // be created: the URL failed, in its line, the counts and --demo's
      // output alike.
      const outcome = withSinkFailure(result, sink);
      const line = report(outcome, entry, sink, cli, stats);
      /** Where a redirect past the limit in a row would have led: it fails. */
      let cut: FrontierEntry | null = null;
      if (
        !result.ok && result.error instanceof DiskError && result.error.fatal
      ) stop(result.error);
      if (frontier !== null && entry !== null) {
        cut = result.ok
          ? follow(frontier, entry, result, sink, method, agent)
          : null;
        frontier.done(entry);
      }
      if (!quiet || !outcome.ok) await out.write(line);
      if (cut !== null) {
        await failBefore(
          cut.url,
          new Error(
            `Cannot fetch: more than ${MAX_REDIRECTS} redirects in a row, the last to ${cut.url}`,
          ),
          cut,
        );
      }
      const queued = frontier !== null
        ? frontier.queued + frontier.inFlight
        : pulled - stats.requests;
      progress.update(stats.requests, queued, stats.bytes, stats.failed);
    }
  } catch (e) {
    progress.stop();
    if (e instanceof TypeError || e instanceof RangeError) {
      // Options the engine rejects before any connection: a bad command line.
      console.error(`crawl: ${e.message}`);
      return 2;
    }
    throw e;
  } finally {
    crawling = false;
    // The last lines may still be on their way.
    await out.flushed();
    progress.stop();
    // Still listening: a Ctrl-C now must not kill the process mid-record.
    try {
      await archive?.settled();
      await warc?.close();
      // A body cut off by the stop is removed once the write in flight ends.
      await settleWithin([...saving].map((sink) => sink.done), 10_000);
      await server?.[Symbol.asyncDispose]();
    } finally {
      for (const [signal, listener] of listeners) {
        Deno.removeSignalListener(signal, listener);
      }
    }
  }

  const extra: [string, string][] = [];
  if (robots !== null) {
    extra.push(["robots.txt", `${stats.robotsExcluded} URLs excluded`]);
  }
  if (output !== null) {
    extra.push(["files", `${stats.files} saved under ${output.dir}`]);
  }
  if (warc !== null) {
    extra.push([
      "warc",
      `${archive!.written} exchanges${
        archive!.truncated > 0
          ? ` (${archive!.truncated} cut short, WARC-Truncated)`
          : ""
      } in ${warc.path}${
        archive!.dropped > 0
          ? `; ${archive!.dropped} read and not written (cut off)`
          : ""
      }`,
    ]);
  }
  const interrupted = controller.signal.aborted && fatal === null;
  const table = stats.summary(interrupted, extra);
  // The demo's summary is its output, on stdout, unless stdout failed.
  if (quiet && out.open) {
    try {
      console.log(table);
    } catch (e) {
      tell(table);
      fatal ??= new DiskError("write the summary to", "standard output", e);
    }
  } else tell(table);
  if (fatal !== null) {
    tell(`crawl: ${(fatal as DiskError).message}`);
    return 1;
  }
  // Stopped before the end: URLs were left unfetched, which a script (under
  // `timeout`, systemd) must see whatever the fetched ones gave. 128 + the
  // signal's number, as a shell reports a process the signal ended.
  if (stoppedBy !== null) return SIGNAL_EXIT[stoppedBy];
  // Stopped by its reader (`| head`): as a shell reports a SIGPIPE, whatever
  // the URLs cut off in flight gave.
  if (!out.open) return 141;
  // The archive misses exchanges that were fetched: a script must see it.
  if ((archive?.dropped ?? 0) > 0) return 1;
  return stats.failed === 0 ? 0 : 1;
}

/**
 * Writes to stderr. What cannot be written there (stderr on a full disk) is
 * lost, and only that: the exit status stays the crawl's.
 */
function tell(text: string): void {
  try {
    console.error(text);
  } catch {
    // Nowhere left to say it.
  }
}

/** Creates the output folder and checks that a file can be created and looked at in it. */
async function openOutputDir(dir: string): Promise<OutputDir> {
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (cause) {
    throw new DiskError("create directory", dir, cause);
  }
  let probe: string;
  try {
    probe = await Deno.makeTempFile({ dir, prefix: ".~probe-" });
  } catch (cause) {
    throw new DiskError("write in directory", dir, cause);
  }
  try {
    // Saving a page looks at what its path holds (-W without -R fails here,
    // not on every URL after it was fetched).
    await Deno.lstat(probe);
  } catch (cause) {
    throw new DiskError("inspect in directory", dir, cause);
  } finally {
    await Deno.remove(probe).catch(() => {});
  }
  return new OutputDir(dir);
}

/**
 * Adds the links of an HTML page, or where a redirect leads, to the frontier.
 * `method` is the seeds' (`-X`, or POST for `-d`). Returns where a redirect
 * past `MAX_REDIRECTS` in a row would have led, not followed, for that URL to
 * fail (as a link to it would have been fetched: in scope, not seen).
 */
function follow(
  frontier: Frontier,
  entry: FrontierEntry,
  result: FetchResult & { ok: true },
  sink: BodySink | null,
  method: string,
  agent: string,
): FrontierEntry | null {
  const { response } = result;
  const location = redirectLocation(response);
  if (location !== null) {
    // One more than fetch follows: the chain fails there, as fetchAll's does.
    if (entry.redirects >= MAX_REDIRECTS) {
      const target = frontier.redirectTarget(location, entry);
      return target === null ? null : {
        url: target,
        depth: entry.depth,
        referrer: entry.url,
        redirects: entry.redirects + 1,
        seedRequest: false,
      };
    }
    frontier.redirect(
      location,
      entry,
      keepsRequest(response.status, method),
    );
    return null;
  }
  if (response.url !== entry.url) frontier.markSeen(response.url);
  // An error page's links are the site's template, not its content (wget
  // and Scrapy take none).
  if (response.status < 200 || response.status > 299) return null;
  // The page's own word (robots meta tag, X-Robots-Tag), as wget obeys it.
  if (robotsNofollow(response.headers.get("x-robots-tag"), agent)) return null;
  const body = sink === null ? response.body : sink.kept();
  if (!isHtml(response.headers, body)) return null;
  const extractor = new LinkExtractor(response.url, {
    encoding: charsetOf(response.headers, body),
    agent,
  });
  const links = [...extractor.write(body), ...extractor.end()];
  if (extractor.nofollow) return null;
  for (const link of links) frontier.add(link, entry);
  return null;
}

/**
 * Whether a redirect of a request made with `method` repeats it, method and
 * body, by the rules `fetchAll` follows redirects by (the fetch standard's): a
 * 307 or 308 always does (RFC 9110 §15.4.8–9), a 301 or 302 unless the request
 * was a POST, a 303 only a HEAD; other 3xx statuses with a `Location` are not
 * redirects there, and lead to a GET here.
 */
function keepsRequest(status: number, method: string): boolean {
  switch (status) {
    case 307:
    case 308:
      return true;
    case 301:
    case 302:
      return method !== "POST";
    case 303:
      return method === "HEAD";
    default:
      return false;
  }
}

const latin1 = new TextDecoder("latin1");

/** The blank line after a head, its line ends CRLF or bare LF. */
const HEAD_END = /\r?\n\r?\n/;

/**
 * Reads each exchange's response head as the engine's tap hands it over
 * (passing everything on to `inner`, the WARC's tap, if any): whether the last
 * one is a success (2xx).
 */
class HeadWatch {
  success = false;

  tap(inner: HttpTap | undefined): HttpTap {
    return (info) => {
      const exchange = inner?.(info);
      let text = "";
      let reading = true;
      this.success = false;
      return {
        request: (bytes) => exchange?.request?.(bytes),
        response: (bytes) => {
          if (reading) {
            // Latin-1: a head is ASCII, and this keeps one char per byte.
            text += latin1.decode(bytes.subarray(0, 65_536 - text.length));
            let end: RegExpExecArray | null;
            while (
              reading &&
              // A bare LF ends a line too, as the engine reads heads.
              ((end = HEAD_END.exec(text)) !== null || text.length >= 65_536)
            ) {
              const status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(text)?.[1]);
              if (
                end !== null && status >= 100 && status <= 199 && status !== 101
              ) {
                // An interim answer (100 Continue, 103 Early Hints): the
                // final head follows.
                text = text.slice(end.index + end[0].length);
                continue;
              }
              reading = false;
              this.success = status >= 200 && status <= 299;
            }
          }
          exchange?.response?.(bytes);
        },
        end: (end) => exchange?.end?.(end),
        ready: () => exchange?.ready?.() ?? null,
      };
    };
  }
}

/** Waits for `promises` to settle, `ms` at most (a disk that hangs must not hold the exit). */
async function settleWithin(
  promises: Promise<unknown>[],
  ms: number,
): Promise<void> {
  if (promises.length === 0) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    Promise.allSettled(promises),
    new Promise((resolve) => timer = setTimeout(resolve, ms)),
  ]);
  clearTimeout(timer);
}

/**
 * `result`, or, when its body came whole but its -o file could not be created
 * (a name too long, the sink's non-fatal {@linkcode DiskError}), that URL's
 * failure: as it failed when the sink's error ended the fetch.
 */
function withSinkFailure(
  result: FetchResult,
  sink: BodySink | null,
): FetchResult {
  if (!result.ok || sink?.failure == null) return result;
  return {
    url: result.url,
    ok: false,
    error: sink.failure,
    data: result.data,
    attempts: result.attempts,
    timings: result.timings,
  };
}

/** Counts a result and formats its output line. */
function report(
  result: FetchResult,
  entry: FrontierEntry | null,
  sink: BodySink | null,
  cli: CliOptions,
  stats: Stats,
): string {
  const ms = Math.round(result.timings.total * 100) / 100;
  // Every URL shown without its password: the engine's result.url is, but a
  // failure before any fetch and a referrer (the page's own URL) are not.
  const shown = hidePassword(result.url);
  const common = {
    url: shown,
    attempts: result.attempts,
    timings: roundTimings(result.timings),
    depth: entry?.depth ?? 0,
    referrer: entry?.referrer == null ? null : hidePassword(entry.referrer),
  };
  if (!result.ok) {
    const error = errorInfo(result.error);
    stats.add(originOf(result.url), false, error.name, 0, result.timings);
    return cli.json
      ? jsonLine({
        ...common,
        finalUrl: null,
        ok: false,
        status: null,
        bytes: 0,
        ms,
        file: null,
        error,
      })
      : `${visible(`ERR ${error.name}: ${error.message}  ${shown}`)}\n`;
  }
  const { status, statusText } = result.response;
  const finalUrl = hidePassword(result.response.url);
  const bytes = sink === null ? result.response.body.length : sink.bytes;
  stats.add(originOf(result.url), true, String(status), bytes, result.timings);
  if (sink?.path != null) stats.files++;
  const printed = cli.printBody
    ? (sink === null ? result.response.body : sink.kept())
    : null;
  // With --follow the engine leaves redirects to the frontier: say where to.
  const location = cli.follow ? redirectLocation(result.response) : null;
  if (cli.json) {
    return jsonLine({
      ...common,
      finalUrl,
      ok: true,
      status,
      bytes,
      ms,
      file: sink?.path ?? null,
      error: null,
      ...(location === null ? {} : { location }),
      ...(printed === null ? {} : { body: decoder.decode(printed) }),
    });
  }
  const from = finalUrl === shown ? "" : `  (from ${shown})`;
  const to = location === null ? "" : ` -> ${location}`;
  const line = `${
    visible(
      `${status} ${statusText}  ${formatBytes(bytes)}  ${
        formatMs(result.timings.total)
      }  ${finalUrl}${from}${to}`,
    )
  }\n`;
  return printed === null ? line : `${line}${decoder.decode(printed)}\n`;
}

/**
 * `text` with its control characters as `\xNN`: a URL from a list may hold an
 * escape sequence that would clear the screen or retitle the terminal.
 */
function visible(text: string): string {
  return text.replace(
    // deno-lint-ignore no-control-regex
    /[\x00-\x1f\x7f-\x9f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

/**
 * `value` as one line of JSON, DEL and the C1 controls escaped too (`\u009b`):
 * `JSON.stringify` escapes only U+0000-U+001F, and a server's `Location` or a
 * body may hold U+009B, the one-character CSI, which a terminal may act on as
 * on `ESC [` (as the text lines' `\xNN`, so `--json` on a terminal is safe).
 */
function jsonLine(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\x7f-\x9f]/g,
    (c) => `\\u00${c.charCodeAt(0).toString(16)}`,
  ) + "\n";
}

/** Exit codes after a signal stopped the crawl: 128 + its number, as a shell shows. */
const SIGNAL_EXIT = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;

/** Whether `TERM=dumb` (readable without a prompt) asks for no cursor movement. */
function dumbTerminal(): boolean {
  try {
    return Deno.permissions.querySync({ name: "env", variable: "TERM" })
          .state === "granted" && Deno.env.get("TERM") === "dumb";
  } catch {
    return false;
  }
}

/** `url` with its password, if any, as `***` (as `result.url` shows it). */
function hidePassword(url: string): string {
  if (!url.includes("@")) return url;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not a URL (a bad seed): hide what looks like a password anyway.
    return hideUrlPassword(url);
  }
  if (parsed.password === "" || parsed.password === "***") return url;
  parsed.password = "***";
  return parsed.href;
}

function roundTimings(t: FetchResult["timings"]): FetchResult["timings"] {
  const r = (n: number) => Math.round(n * 100) / 100;
  return {
    queued: r(t.queued),
    connect: r(t.connect),
    firstByte: r(t.firstByte),
    total: r(t.total),
  };
}

if (import.meta.main) {
  let code = 1;
  try {
    code = await main();
  } catch (e) {
    // Not a usage problem, and not expected: still one line, no stack trace.
    tell(`crawl: ${e instanceof Error ? `${e.name}: ${e.message}` : e}`);
  }
  // Everything is written and closed by now; a read of stdin still pending (a
  // URL list cut short by Ctrl-C, or by `| head`) must not keep the process.
  Deno.exit(code);
}
