/**
 * A command-line crawler on the module's HTTP client: many URLs, one selector.
 *
 * ```sh
 * deno run --allow-net=example.com examples/crawl.ts http://example.com/ https://example.com/a
 * deno task demo   # no URLs: crawls a local demo server started in a child process
 * ```
 *
 * Run with `--help` for the options. Results stream out as URLs finish (with
 * `--json`, one JSON object per line); a summary table ends the run. On a terminal a
 * progress bar is drawn on stderr; when stderr is not a terminal nothing but plain
 * text is written. Exit codes: 0 when every URL got a response (whatever its
 * status), 1 when any failed, 2 for a bad command line.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type FetchAllOptions, fetchEach } from "../mod.ts";

const HELP = `Usage: crawl.ts [options] URL...

Fetches every URL concurrently with one selector (fetchEach/fetchAll of
@seed/selectors) and prints one line per result, then a summary table.
With no URL it starts a local demo server (127.0.0.1, separate process) and
crawls ${500} of its URLs: sizes from 0 B to 256 KiB, chunked, gzip, redirects,
204/404 statuses and slow responses.

Options:
  --concurrency N   URLs in flight at once (default 64)
  --timeout MS      per-URL limit in milliseconds, connect to last byte,
                    redirects included (default 30000)
  --method M        request method (default GET)
  --header "K: V"   add a request header; repeatable
  --no-keep-alive   one connection per request (Connection: close)
  --body            print each response body (with --json: a "body" field)
  --json            one JSON object per result per line on stdout:
                    {url, ok, status, bytes, ms, error: {name, message} | null};
                    the summary goes to stderr
  -h, --help        show this help

Permissions: -N (--allow-net) for the hosts crawled, e.g.
  deno run --allow-net=example.com examples/crawl.ts http://example.com/
The demo mode needs --allow-net=127.0.0.1 --allow-run --allow-read (deno task demo).

The summary counts requests, statuses, errors by kind (error.name) and body
bytes, and gives p50/p95/max latency of the responses (per URL, from its connect
to its last byte, redirects included) and requests per second.

Exit status: 0 if every URL got a response, 1 if any failed, 2 for bad usage.`;

const DEMO_URLS = 500;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A bad command line: reported as one line, exit code 2. */
class UsageError extends Error {
  override name = "UsageError";
}

interface Options {
  urls: string[];
  fetch: FetchAllOptions;
  printBody: boolean;
  json: boolean;
}

function integer(flag: string, text: string | undefined, min: number): number {
  const n = Number(text);
  if (text === undefined || !/^\d+$/.test(text.trim()) || n < min) {
    throw new UsageError(
      `${flag} must be an integer >= ${min}, received "${text ?? ""}"`,
    );
  }
  return n;
}

/** Parses the command line; throws {@linkcode UsageError}. */
function parseCommandLine(args: string[]): Options | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        concurrency: { type: "string" },
        timeout: { type: "string" },
        method: { type: "string" },
        header: { type: "string", multiple: true },
        "no-keep-alive": { type: "boolean" },
        body: { type: "boolean" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    const error = e as Error & { code?: string };
    const flag = /'(-[^' ]*)/.exec(error.message)?.[1];
    if (error.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      throw new UsageError(`unknown option ${flag ?? error.message}`);
    }
    if (error.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
      throw new UsageError(
        flag ? `option ${flag} needs a value` : error.message.split("\n")[0]!,
      );
    }
    throw new UsageError(error.message.split("\n")[0]!);
  }
  const { values, positionals } = parsed;
  if (values.help) return "help";
  const fetch: FetchAllOptions = {};
  if (values.concurrency !== undefined) {
    fetch.concurrency = integer("--concurrency", values.concurrency, 1);
  }
  if (values.timeout !== undefined) {
    fetch.timeout = integer("--timeout", values.timeout, 1);
  }
  if (values.method !== undefined) {
    if (!TOKEN.test(values.method)) {
      throw new UsageError(`invalid --method "${values.method}"`);
    }
    fetch.method = values.method;
  }
  if (values.header !== undefined) {
    const headers: [string, string][] = [];
    for (const line of values.header) {
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (colon < 0 || !TOKEN.test(name) || /[\0\r\n]/.test(value)) {
        throw new UsageError(
          `invalid --header "${line}": expected "Name: value"`,
        );
      }
      headers.push([name, value]);
    }
    fetch.headers = headers;
  }
  if (values["no-keep-alive"]) fetch.keepAlive = false;
  for (const url of positionals) {
    let parsedUrl: URL | null = null;
    try {
      parsedUrl = new URL(url);
    } catch { /* reported below */ }
    if (
      parsedUrl === null ||
      (parsedUrl.protocol !== "http:" && parsedUrl.protocol !== "https:")
    ) {
      throw new UsageError(
        `invalid URL "${url}": expected an absolute http:// or https:// URL`,
      );
    }
  }
  return {
    urls: positionals,
    fetch,
    printBody: values.body ?? false,
    json: values.json ?? false,
  };
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
    const script = new URL("./_demo_server.ts", import.meta.url);
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--quiet",
          "--no-config",
          "--allow-net=127.0.0.1",
          script.protocol === "file:" ? script.pathname : script.href,
          "--exit-on-stdin-eof",
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
    } catch (e) {
      throw new Error(
        `Cannot start the demo server (it needs --allow-run --allow-read): ${
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

/** A one-line progress bar on stderr, redrawn at most 10 times a second. */
class Progress {
  readonly #total: number;
  readonly #started = performance.now();
  #done = 0;
  #errors = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #shown = false;

  constructor(total: number, enabled: boolean) {
    this.#total = total;
    if (enabled) {
      this.#timer = setInterval(() => this.#draw(), 100);
      this.#draw();
    }
  }

  update(done: number, errors: number): void {
    this.#done = done;
    this.#errors = errors;
  }

  /** Runs `write` with the bar out of the way. */
  around(write: () => void): void {
    this.#clear();
    write();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#clear();
  }

  #clear(): void {
    if (!this.#shown) return;
    Deno.stderr.writeSync(encoder.encode("\r\x1b[2K"));
    this.#shown = false;
  }

  #draw(): void {
    const seconds = (performance.now() - this.#started) / 1000;
    const rate = seconds > 0 ? this.#done / seconds : 0;
    const stats = ` ${this.#done}/${this.#total}  ${rate.toFixed(0)} req/s  ${
      this.#errors === 0 ? "no errors" : `${this.#errors} errors`
    }`;
    let columns = 80;
    try {
      columns = Deno.consoleSize().columns || 80;
    } catch { /* not a console after all */ }
    const width = Math.max(10, Math.min(40, columns - stats.length - 3));
    const filled = this.#total === 0
      ? width
      : Math.round(width * this.#done / this.#total);
    const bar = `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
    Deno.stderr.writeSync(encoder.encode(`\r\x1b[2K${bar}${stats}`));
    this.#shown = true;
  }
}

function errorInfo(error: unknown): { name: string; message: string } {
  if (error instanceof Error) {
    return { name: error.name, message: error.message };
  }
  if (error instanceof DOMException) {
    return { name: error.name, message: error.message };
  }
  return { name: typeof error, message: String(error) };
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function formatMs(ms: number): string {
  return ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(1)} ms`;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;
}

function counts(map: Map<string, number>): string {
  if (map.size === 0) return "none";
  return [...map].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
    .map(([k, v]) => `${k}: ${v}`).join(", ");
}

interface Tally {
  requests: number;
  ok: number;
  failed: number;
  bytes: number;
  statuses: Map<string, number>;
  errors: Map<string, number>;
  /** Connect-to-last-byte times of the responses (failures excluded). */
  latencies: number[];
}

function summary(tally: Tally, seconds: number, interrupted: boolean): string {
  const sorted = tally.latencies.toSorted((a, b) => a - b);
  const rows: [string, string][] = [
    [
      "requests",
      `${tally.requests} (${tally.ok} ok, ${tally.failed} failed)${
        interrupted ? ", interrupted" : ""
      }`,
    ],
    ["statuses", counts(tally.statuses)],
    ["errors", counts(tally.errors)],
    ["bytes", `${formatBytes(tally.bytes)} (${tally.bytes} B of bodies)`],
    [
      "latency",
      sorted.length === 0
        ? "no responses"
        : `p50 ${formatMs(percentile(sorted, 0.5))}, p95 ${
          formatMs(percentile(sorted, 0.95))
        }, max ${formatMs(sorted.at(-1) ?? 0)}`,
    ],
    [
      "throughput",
      `${(seconds > 0 ? tally.requests / seconds : 0).toFixed(1)} requests/s (${
        seconds.toFixed(2)
      } s in all)`,
    ],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return ["", "Summary", ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)]
    .join("\n");
}

async function main(): Promise<number> {
  let options: Options | "help";
  try {
    options = parseCommandLine(Deno.args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`crawl: ${e.message} (see --help)`);
    return 2;
  }
  if (options === "help") {
    console.log(HELP);
    return 0;
  }
  const { fetch, json, printBody } = options;

  let server: DemoServer | null = null;
  let urls = options.urls;
  if (urls.length === 0) {
    try {
      server = await DemoServer.start();
    } catch (e) {
      console.error(`crawl: ${e instanceof Error ? e.message : e}`);
      return 1;
    }
    urls = server.urls(DEMO_URLS);
    if (!json) {
      console.log(
        `crawl: no URL given, crawling ${urls.length} URLs of a local demo server at ${server.base}`,
      );
    }
  }

  const controller = new AbortController();
  const onSignal = () =>
    controller.abort(new DOMException("Interrupted", "AbortError"));
  let signals = true;
  try {
    Deno.addSignalListener("SIGINT", onSignal);
  } catch {
    signals = false;
  }

  const tty = Deno.stderr.isTerminal();
  const progress = new Progress(urls.length, tty);
  const verbose = server === null || printBody;
  const tally: Tally = {
    requests: 0,
    ok: 0,
    failed: 0,
    bytes: 0,
    statuses: new Map(),
    errors: new Map(),
    latencies: [],
  };
  const bump = (map: Map<string, number>, key: string) =>
    map.set(key, (map.get(key) ?? 0) + 1);
  const started = performance.now();

  try {
    for await (
      const { result, elapsed } of fetchEach(urls, {
        ...fetch,
        signal: controller.signal,
      })
    ) {
      tally.requests++;
      if (result.ok) tally.latencies.push(elapsed);
      let line: string;
      let body: Uint8Array | null = null;
      if (result.ok) {
        const { status, statusText } = result.response;
        body = result.response.body;
        tally.ok++;
        tally.bytes += body.length;
        bump(tally.statuses, String(status));
        line = json
          ? JSON.stringify({
            url: result.url,
            ok: true,
            status,
            bytes: body.length,
            ms: Math.round(elapsed * 100) / 100,
            error: null,
            ...(printBody ? { body: decoder.decode(body) } : {}),
          })
          : `${status} ${statusText}  ${formatBytes(body.length)}  ${
            formatMs(elapsed)
          }  ${result.url}`;
      } else {
        const error = errorInfo(result.error);
        tally.failed++;
        bump(tally.errors, error.name);
        line = json
          ? JSON.stringify({
            url: result.url,
            ok: false,
            status: null,
            bytes: 0,
            ms: Math.round(elapsed * 100) / 100,
            error,
          })
          : `ERR ${error.name}: ${error.message}  ${result.url}`;
      }
      progress.update(tally.requests, tally.failed);
      if (json || verbose || !result.ok) {
        progress.around(() => {
          console.log(line);
          if (printBody && body !== null && !json) {
            console.log(decoder.decode(body));
          }
        });
      }
    }
  } catch (e) {
    // Invalid options are rejected before any connection is opened.
    progress.stop();
    if (e instanceof TypeError || e instanceof RangeError) {
      console.error(`crawl: ${e.message}`);
      return 2;
    }
    throw e;
  } finally {
    progress.stop();
    if (signals) Deno.removeSignalListener("SIGINT", onSignal);
    await server?.[Symbol.asyncDispose]();
  }

  const seconds = (performance.now() - started) / 1000;
  const table = summary(tally, seconds, controller.signal.aborted);
  if (json) console.error(table);
  else console.log(table);
  return tally.failed === 0 ? 0 : 1;
}

if (import.meta.main) {
  try {
    Deno.exitCode = await main();
  } catch (e) {
    // Not a usage problem, and not expected: still one line, no stack trace.
    console.error(
      `crawl: ${e instanceof Error ? `${e.name}: ${e.message}` : e}`,
    );
    Deno.exitCode = 1;
  }
}
