/**
 * The crawl CLI's command line: flags, their checks, the help text.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { argsErrorMessage, hideUrlPassword } from "../_args.ts";
import { MAX_TIMER_MS as MAX_MS } from "./_util.ts";

/** The help text of `crawl.ts --help`. */
export const HELP = `Usage: crawl.ts [options] [URL...]
       crawl.ts [options] -i FILE        (one URL a line; - for stdin)
       ... | crawl.ts [options]           (URLs on stdin when it is not a terminal)
       crawl.ts --demo [options]          (a local demo server, no internet needed)

Fetches the URLs concurrently on one selector (fetchEach of @seed/selectors),
politely per origin, and prints one line per result as it finishes (the final
URL after redirects), then a summary. With --follow it crawls: links found in
HTML pages are fetched too, within the seeds' origins, obeying robots.txt; a
redirect's target is queued as a link is, at its page's depth (a seed's is
fetched wherever it leads, but its origin joins the seeds' only on a host the
command named, give or take "www.": its scheme or port may change).

Input:
  -i, --input FILE        read URLs from FILE, one a line (- for stdin); blank
                          lines and # comments are skipped; read lazily
      --demo              crawl a local demo server started in a child process
                          (with --follow: its small linked site)

Requests:
  -X, --method M          request method (default GET, or POST with a body;
                          with --follow, -X and -d are the starting URLs',
                          repeated where a 307 or 308 of theirs leads (a 301
                          or 302 too, but for POST); links and other
                          redirects found are fetched with GET)
  -H, --header "K: V"     add a request header; repeatable (Content-Length
                          and Transfer-Encoding are ignored, with a warning:
                          the body sets them; with --follow, Authorization
                          and Cookie go to the origins named only: the URLs'
                          and --origin's)
  -d, --data TEXT         request body (sent as given, UTF-8)
      --data-file FILE    request body read from FILE
  -A, --user-agent UA     User-Agent header (default selectors-crawl/0.2; -H
                          "User-Agent: UA" is the same); its first word is the
                          robots.txt product token, or in "Mozilla/5.0
                          (compatible; MyBot/1.0; +URL)" the word after
                          "compatible;"
  -c, --concurrency N     requests in flight at once (default 64)
      --per-origin N      requests in flight at once per origin (default: no limit;
                          6 with --follow)
      --delay MS          least ms between two requests to one origin, its
                          robots.txt request included (default 0)
      --retries N         retries of a failed idempotent request, robots.txt's
                          too: connection errors, timeouts, statuses 408,
                          429, 500, 502, 503, 504 (default 0)
  -t, --timeout MS        per-attempt limit, connect to last byte, redirects
                          included (default 30000)
      --connect-timeout MS  TCP + TLS limit (default 10000)
      --max-bytes N       largest body taken, counted on the wire and decoded:
                          a URL past it fails and its -o file is removed
                          (default 1073741824, as Scrapy's; 0 for no limit)
      --proxy URL         HTTP proxy, host:port taken as http:// (default:
                          http_proxy, https_proxy, all_proxy, no_proxy or
                          their upper-case forms from the environment, as
                          curl reads them, HTTP_PROXY too; needs --allow-env)
      --no-proxy          no proxy, whatever the environment says
      --cacert FILE       extra CA certificates (PEM) for https
      --unix-socket PATH  send every request over this Unix socket
      --no-keep-alive     one connection per request (Connection: close)

Following links:
      --follow            fetch the links of HTML pages too (a, link, area,
                          iframe, frame; <base href> honoured), from each
                          2xx page's first 8 MiB (none where its robots meta
                          tag, name robots or -A's token, or X-Robots-Tag
                          says nofollow); a seed's user:pass@ goes as
                          Authorization: Basic to its origin's links too
                          (the first seed's of an origin; -H Authorization
                          wins)
      --depth N           deepest link followed (default: no limit)
      --origin ORIGIN     also follow links into ORIGIN; repeatable (default:
                          the seeds' origins only)
      --ignore-robots     do not fetch or obey robots.txt (obeyed by default with
                          --follow; its Crawl-delay becomes the origin's delay,
                          300 s at most)

Output:
      --json              one JSON object per result per line on stdout: url,
                          finalUrl, ok, status, bytes, ms, attempts, timings,
                          depth, referrer, file, error; location for a
                          redirect with --follow
      --print-body        print each response body (with --json: a "body" field)
  -o, --output-dir DIR    save each 2xx body to DIR/<host>/<path> (index.html
                          for /)
      --warc FILE         write a WARC/1.1 archive (gzip per record if FILE ends
                          in .gz, as FILE.warc.gz; plain otherwise)
                          of every exchange, bytes as sent and received
      --warc-framed-digest  payload digests of chunked responses over the body
                          as received, framing included (what Python's
                          "warcio check" verifies), not WARC 1.1's entity body
  -h, --help              show this help

The summary (on stderr whenever stdout carries results) counts requests,
statuses, errors, bytes, gives p50/p95 of total, connect, first-byte and queued
times, throughput, and the top origins. On a terminal a progress bar shows URLs
done/queued, requests/s, bytes/s and errors. Ctrl-C stops the crawl: the WARC
written so far stays readable and the summary is printed.

Permissions: --allow-net for the hosts crawled; --allow-read for -i, --data-file,
--cacert; --allow-read and --allow-write for -o and --warc; --allow-env for the
proxy variables.
  deno run --allow-net=example.com examples/crawl.ts https://example.com/
The demo needs --allow-net=127.0.0.1 --allow-run.

Exit status: 0 if every URL got a response (whatever its status), 1 if any
failed, a file could not be written or the WARC was cut short, 2 for bad usage,
130, 143 or 129 when SIGINT, SIGTERM or SIGHUP stopped the crawl before its
last URL, 141 when the reader closed stdout (| head).`;

/** A bad command line: reported as one line, exit code 2. */
export class UsageError extends Error {
  /** Always `"UsageError"`. */
  override name = "UsageError";
}

/** The command line, checked. */
export interface CliOptions {
  urls: string[];
  input: string | undefined;
  demo: boolean;
  method: string | undefined;
  headers: [string, string][];
  data: string | undefined;
  dataFile: string | undefined;
  userAgent: string;
  concurrency: number | undefined;
  perOrigin: number | undefined;
  delay: number;
  retries: number;
  /** The largest body taken (`Infinity` for `--max-bytes 0`). */
  maxBytes: number;
  timeout: number | undefined;
  connectTimeout: number | undefined;
  /** A proxy URL, `"env"` (the default) or `null` for none. */
  proxy: string | null;
  cacert: string | undefined;
  unixSocket: string | undefined;
  keepAlive: boolean;
  follow: boolean;
  depth: number;
  origins: string[];
  ignoreRobots: boolean;
  json: boolean;
  printBody: boolean;
  outputDir: string | undefined;
  warc: string | undefined;
  warcFramedDigest: boolean;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** `--max-bytes` unless given: 1 GiB, Scrapy's `DOWNLOAD_MAXSIZE`. */
const DEFAULT_MAX_BYTES = 1 << 30;

function integer(
  flag: string,
  text: string | undefined,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const n = Number(text);
  if (text === undefined || !/^\d+$/.test(text.trim()) || n < min) {
    throw new UsageError(
      `${flag} must be an integer >= ${min}, received "${text ?? ""}"`,
    );
  }
  if (n > max) {
    throw new UsageError(`${flag} must be at most ${max}, received "${text}"`);
  }
  return n;
}

function httpUrl(flag: string, text: string): string {
  let parsed: URL | null = null;
  try {
    parsed = new URL(text);
  } catch { /* reported below */ }
  if (
    parsed === null ||
    (parsed.protocol !== "http:" && parsed.protocol !== "https:")
  ) {
    throw new UsageError(
      `invalid ${flag}"${
        hideUrlPassword(text)
      }": expected an absolute http:// or https:// URL`,
    );
  }
  return text;
}

/**
 * Parses the command line.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { parseCommandLine } from "./options.ts";
 *
 * const options = parseCommandLine(["-c", "8", "--follow", "http://a.test/"]);
 * assertEquals(options !== "help" && options.concurrency, 8);
 * ```
 *
 * @param args The arguments after the script name.
 * @returns The options, or `"help"` for `-h`/`--help`.
 * @throws {UsageError} For an unknown flag or a bad value.
 */
export function parseCommandLine(args: string[]): CliOptions | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        input: { type: "string", short: "i" },
        demo: { type: "boolean" },
        method: { type: "string", short: "X" },
        header: { type: "string", short: "H", multiple: true },
        data: { type: "string", short: "d" },
        "data-file": { type: "string" },
        "user-agent": { type: "string", short: "A" },
        concurrency: { type: "string", short: "c" },
        "per-origin": { type: "string" },
        delay: { type: "string" },
        retries: { type: "string" },
        "max-bytes": { type: "string" },
        timeout: { type: "string", short: "t" },
        "connect-timeout": { type: "string" },
        proxy: { type: "string" },
        "no-proxy": { type: "boolean" },
        cacert: { type: "string" },
        "unix-socket": { type: "string" },
        "no-keep-alive": { type: "boolean" },
        follow: { type: "boolean" },
        depth: { type: "string" },
        origin: { type: "string", multiple: true },
        "ignore-robots": { type: "boolean" },
        json: { type: "boolean" },
        "print-body": { type: "boolean" },
        "output-dir": { type: "string", short: "o" },
        warc: { type: "string" },
        "warc-framed-digest": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw new UsageError(argsErrorMessage(e));
  }
  const { values: v, positionals } = parsed;
  if (v.help) return "help";
  if (v.method !== undefined && !TOKEN.test(v.method)) {
    throw new UsageError(`invalid --method "${v.method}"`);
  }
  const headers: [string, string][] = [];
  for (const line of v.header ?? []) {
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
  // A User-Agent given with -H is the crawl's agent, as -A's: robots.txt is
  // fetched with it and its rules matched against it, not the default's.
  const agentHeaders = headers.filter(([name]) =>
    name.toLowerCase() === "user-agent"
  );
  if (agentHeaders.length > 0 && v["user-agent"] !== undefined) {
    throw new UsageError("give --user-agent or -H 'User-Agent: ...', not both");
  }
  if (v.data !== undefined && v["data-file"] !== undefined) {
    throw new UsageError("give --data or --data-file, not both");
  }
  if (v.proxy !== undefined && v["no-proxy"]) {
    throw new UsageError("give --proxy or --no-proxy, not both");
  }
  if (v.demo && (positionals.length > 0 || v.input !== undefined)) {
    throw new UsageError("--demo crawls its own server: give no URL and no -i");
  }
  for (const url of positionals) httpUrl("URL ", url);
  const userAgent = v["user-agent"] ?? agentHeaders.at(-1)?.[1] ??
    "selectors-crawl/0.2";
  if (/[\0\r\n]/.test(userAgent) || userAgent.trim() === "") {
    throw new UsageError(
      v["user-agent"] !== undefined
        ? `invalid --user-agent "${userAgent}"`
        : `invalid -H "User-Agent: ${userAgent}": the crawl needs an agent (robots.txt names it)`,
    );
  }
  if (v["warc-framed-digest"] && v.warc === undefined) {
    throw new UsageError("--warc-framed-digest needs --warc");
  }
  const origins = (v.origin ?? []).map((o) => httpUrl("--origin ", o));
  const depth = v.depth === undefined
    ? Infinity
    : integer("--depth", v.depth, 0);
  if (!v.follow && (v.depth !== undefined || origins.length > 0)) {
    throw new UsageError("--depth and --origin need --follow");
  }
  return {
    urls: positionals,
    input: v.input,
    demo: v.demo ?? false,
    method: v.method,
    headers: headers.filter(([name]) => name.toLowerCase() !== "user-agent"),
    data: v.data,
    dataFile: v["data-file"],
    userAgent,
    concurrency: v.concurrency === undefined
      ? undefined
      : integer("--concurrency", v.concurrency, 1),
    perOrigin: v["per-origin"] === undefined
      ? undefined
      : integer("--per-origin", v["per-origin"], 1),
    delay: v.delay === undefined ? 0 : integer("--delay", v.delay, 0, MAX_MS),
    retries: v.retries === undefined ? 0 : integer("--retries", v.retries, 0),
    // A hostile page's gzip of gzips turns 270 bytes into 256 MiB (to disk
    // with -o, in memory with --print-body): a limit by default.
    maxBytes: v["max-bytes"] === undefined
      ? DEFAULT_MAX_BYTES
      : integer("--max-bytes", v["max-bytes"], 0) || Infinity,
    timeout: v.timeout === undefined
      ? undefined
      : integer("--timeout", v.timeout, 1, MAX_MS),
    connectTimeout: v["connect-timeout"] === undefined
      ? undefined
      : integer("--connect-timeout", v["connect-timeout"], 1, MAX_MS),
    proxy: v["no-proxy"] ? null : v.proxy === undefined
      ? "env"
      // `host:port` is an http:// proxy, as curl and the environment's take it
      // (`http:/host`, a slash short, stays a URL that does not parse).
      : httpUrl(
        "--proxy ",
        /^[a-z][a-z\d+.-]*:[/\\]/i.test(v.proxy)
          ? v.proxy
          : `http://${v.proxy}`,
      ),
    cacert: v.cacert,
    unixSocket: v["unix-socket"],
    keepAlive: !v["no-keep-alive"],
    follow: v.follow ?? false,
    depth,
    origins,
    ignoreRobots: v["ignore-robots"] ?? false,
    json: v.json ?? false,
    printBody: v["print-body"] ?? false,
    outputDir: v["output-dir"],
    warc: v.warc,
    warcFramedDigest: v["warc-framed-digest"] ?? false,
  };
}
