/**
 * Smoke tests of the examples: each one runs as a subprocess (`deno run`, with the
 * permissions the README gives it) against servers on 127.0.0.1. Every subprocess
 * has a deadline and is killed in `finally`.
 *
 * @module
 */
import {
  assert,
  assertEquals,
  assertGreater,
  assertLess,
  assertMatch,
  assertStringIncludes,
} from "@std/assert";
import { delay } from "@std/async";
import { fileURLToPath } from "node:url";

const examples = new URL("../examples/", import.meta.url);
const NET = "--allow-net=127.0.0.1";
// Exactly what deno.json's demo task and the README grant: no more is needed.
const DEMO_PERMISSIONS = ["--allow-net=127.0.0.1", "--allow-run"];

interface Output {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** `deno run` arguments for an example: quiet, without the project config. */
function runArgs(script: string, flags: string[], args: string[]): string[] {
  return [
    "run",
    "--quiet",
    "--no-config",
    ...flags,
    new URL(script, examples).href,
    ...args,
  ];
}

/** `deno run [flags] examples/<script> [args]`, killed after `timeout` ms. */
async function run(
  script: string,
  flags: string[],
  args: string[],
  timeout = 30_000,
): Promise<Output> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeout);
  const started = performance.now();
  try {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: runArgs(script, flags, args),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
      signal: controller.signal,
    }).output();
    assert(
      !controller.signal.aborted,
      `${script} ${args.join(" ")} did not finish within ${timeout} ms`,
    );
    const decoder = new TextDecoder();
    return {
      code,
      stdout: decoder.decode(stdout),
      stderr: decoder.decode(stderr),
      ms: performance.now() - started,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** A long-running example: its first stdout line, then the rest when it ends. */
class Background implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  #stdout = "";
  #exited = false;
  #firstLine: Promise<string>;
  #reading: Promise<void>;
  #stderr: Promise<string>;

  constructor(script: string, flags: string[], args: string[]) {
    const child = new Deno.Command(Deno.execPath(), {
      args: runArgs(script, flags, args),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.#child = child;
    child.status.then(() => this.#exited = true);
    let resolveLine!: (line: string) => void;
    this.#firstLine = new Promise((resolve) => resolveLine = resolve);
    this.#reading = (async () => {
      const stream = child.stdout.pipeThrough(new TextDecoderStream());
      for await (const chunk of stream) {
        this.#stdout += chunk;
        const nl = this.#stdout.indexOf("\n");
        if (nl >= 0) resolveLine(this.#stdout.slice(0, nl));
      }
      resolveLine(this.#stdout);
    })();
    this.#stderr = new Response(child.stderr).text();
  }

  /** The first stdout line (or all of stdout if it ends first), within `timeout` ms. */
  firstLine(timeout = 15_000): Promise<string> {
    return within(this.#firstLine, timeout, "the first line");
  }

  /** Sends `signal` to the process. */
  kill(signal: Deno.Signal): void {
    this.#child.kill(signal);
  }

  /** Waits for the process to exit on its own, within `timeout` ms. */
  async finished(timeout = 15_000): Promise<Output & { ms: 0 }> {
    const { code } = await within(this.#child.status, timeout, "exit");
    await this.#reading;
    return { code, stdout: this.#stdout, stderr: await this.#stderr, ms: 0 };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#exited) {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* exited meanwhile */ }
    }
    await this.#child.status;
    await this.#reading;
    await this.#stderr;
  }
}

async function within<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A port nothing listens on (one that was free a moment ago). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** A local server with a fixed body, a chunked body, a 404 and a gzip body. */
function localServer(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/hello") return new Response("hello world");
      if (path === "/chunked") {
        const parts = ["chunk one, ", "chunk two, ", "and the last one"];
        const body = new ReadableStream<Uint8Array>({
          pull(controller) {
            const part = parts.shift();
            if (part === undefined) controller.close();
            else controller.enqueue(new TextEncoder().encode(part));
          },
        });
        return new Response(body, {
          headers: { "content-type": "application/octet-stream" },
        });
      }
      if (path === "/gzip") {
        const stream = new Blob(["compressed ".repeat(100)]).stream()
          .pipeThrough(new CompressionStream("gzip"));
        const body = new Uint8Array(await new Response(stream).arrayBuffer());
        return new Response(body, {
          headers: {
            "content-encoding": "gzip",
            "content-type": "text/plain",
          },
        });
      }
      return new Response("missing", { status: 404 });
    },
  );
}

Deno.test("crawl.ts --json prints one JSON object per result", async () => {
  await using server = localServer();
  const base = `http://127.0.0.1:${server.addr.port}`;
  const refused = `http://127.0.0.1:${closedPort()}/`;
  const urls = [
    `${base}/hello`,
    `${base}/chunked`,
    `${base}/gzip`,
    `${base}/nope`,
  ];
  const { code, stdout, stderr } = await run("crawl.ts", [NET], [
    "--json",
    "--concurrency",
    "2",
    "--header",
    "X-Test: yes",
    ...urls,
    refused,
  ]);
  assertEquals(code, 1, "a failed URL makes the exit code 1");
  const lines = stdout.trimEnd().split("\n");
  assertEquals(lines.length, 5, stdout);
  const results = new Map<string, Record<string, unknown>>();
  for (const line of lines) {
    const result = JSON.parse(line);
    assertEquals(
      Object.keys(result).sort(),
      [
        "attempts",
        "bytes",
        "depth",
        "error",
        "file",
        "finalUrl",
        "ms",
        "ok",
        "referrer",
        "status",
        "timings",
        "url",
      ],
    );
    assertEquals(typeof result.ms, "number");
    assert(result.ms >= 0);
    results.set(result.url, result);
  }
  assertEquals(results.get(`${base}/hello`)?.status, 200);
  assertEquals(results.get(`${base}/hello`)?.bytes, 11);
  assertEquals(results.get(`${base}/chunked`)?.bytes, 38);
  assertEquals(results.get(`${base}/gzip`)?.bytes, 1100, "decoded");
  assertEquals(results.get(`${base}/nope`)?.status, 404);
  assertEquals(results.get(`${base}/nope`)?.ok, true);
  const failed = results.get(refused)!;
  assertEquals(failed.ok, false);
  assertEquals(failed.status, null);
  assertEquals(
    (failed.error as { name: string }).name,
    "ConnectionRefused",
  );
  // The summary goes to stderr, so stdout stays pure JSON.
  assertStringIncludes(stderr, "requests");
  assertStringIncludes(stderr, "5 (4 ok, 1 failed)");
  assertStringIncludes(stderr, "ConnectionRefused: 1");
});

Deno.test("crawl.ts --print-body prints the bodies and exits 0 when all succeed", async () => {
  await using server = localServer();
  const base = `http://127.0.0.1:${server.addr.port}`;
  const { code, stdout, stderr } = await run("crawl.ts", [NET], [
    "--print-body",
    "--no-keep-alive",
    `${base}/hello`,
    `${base}/chunked`,
  ]);
  assertEquals(code, 0, stdout);
  assertStringIncludes(stdout, "hello world");
  assertStringIncludes(stdout, "chunk one, chunk two, and the last one");
  assertMatch(stdout, /^200 OK .* http:\/\/127\.0\.0\.1:\d+\/hello$/m);
  // stdout carries the results: the summary goes to stderr.
  assertStringIncludes(stderr, "Summary");
});

Deno.test("crawl.ts --demo crawls its demo server and prints the summary", async () => {
  const { code, stdout, stderr, ms } = await run(
    "crawl.ts",
    DEMO_PERMISSIONS,
    ["--demo"],
    60_000,
  );
  assertEquals(code, 0, stdout + stderr);
  assertLess(ms, 30_000);
  assertMatch(stdout, /requests\s+500 \(500 ok, 0 failed\)/);
  for (const row of ["statuses", "errors", "bytes", "total", "throughput"]) {
    assertMatch(stdout, new RegExp(`^  ${row}\\s`, "m"));
  }
  assertMatch(stdout, /p50 [\d.]+ ms, p95 [\d.]+ ms, max [\d.]+ ms/);
  for (const row of ["connect", "first byte", "origins"]) {
    assertMatch(stdout, new RegExp(`^  ${row}\\s`, "m"));
  }
  assertMatch(stdout, /[\d.]+ requests\/s/);
  assert(!stdout.includes("\x1b"), "no escape codes on stdout");
  assert(!stderr.includes("\x1b"), "no escape codes when stderr is not a TTY");
});

Deno.test("crawl.ts --demo starts its server from a folder whose name has a space", async () => {
  // "My Projects", "C:\\Users\\Jane Doe": the server's script is run by its
  // path, which a file URL's pathname is not ("/tmp/a%20b/...").
  const dir = await Deno.makeTempDir({ prefix: "crawl demo " });
  try {
    await Deno.symlink(fileURLToPath(new URL("..", examples)), `${dir}/repo`);
    const script = new URL(`file://${dir}/repo/examples/crawl.ts`);
    assertStringIncludes(script.href, "%20");
    await using crawl = new Background(script.href, DEMO_PERMISSIONS, [
      "--demo",
      "--json",
    ]);
    const line = await crawl.firstLine();
    // Its first result: the server started (its stderr says why it did not).
    if (!line.includes('"ok":true')) {
      const { stderr } = await crawl.finished();
      assertStringIncludes(line, '"ok":true', stderr);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("crawl.ts --demo --follow crawls the demo site, obeying its robots.txt", async () => {
  const { code, stdout, stderr } = await run(
    "crawl.ts",
    DEMO_PERMISSIONS,
    ["--demo", "--follow", "--json"],
    60_000,
  );
  assertEquals(code, 0, stderr);
  const results = stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
  const paths = results.map((r) => new URL(r.url).pathname).sort();
  assertEquals(paths.length, 41, stdout);
  assertEquals(new Set(paths).size, 41, "each page once");
  assert(paths.every((p) => p.startsWith("/site/") && !p.includes("private")));
  assertMatch(stderr, /robots\.txt\s+40 URLs excluded/);
});

Deno.test("crawl.ts rejects bad command lines with one line and exit code 2", async () => {
  const cases: [string[], RegExp][] = [
    [["--bogus", "http://127.0.0.1/"], /unknown option --bogus/],
    [["--concurrency", "0", "http://127.0.0.1/"], /--concurrency/],
    [["--concurrency", "many", "http://127.0.0.1/"], /--concurrency/],
    [["--timeout", "-5", "http://127.0.0.1/"], /--timeout/],
    [["--header", "no colon", "http://127.0.0.1/"], /--header/],
    [["not a url"], /invalid URL "not a url"/],
    [["ftp://127.0.0.1/"], /invalid URL/],
  ];
  for (const [args, message] of cases) {
    const { code, stdout, stderr } = await run("crawl.ts", [NET], args);
    assertEquals(code, 2, `${args.join(" ")}: ${stderr}`);
    assertEquals(stdout, "");
    const lines = stderr.trimEnd().split("\n");
    assertEquals(lines.length, 1, `one line for ${args.join(" ")}: ${stderr}`);
    assertMatch(lines[0]!, /^crawl: /);
    assertMatch(lines[0]!, message);
  }
});

Deno.test("crawl.ts --help documents every option", async () => {
  const { code, stdout } = await run("crawl.ts", [], ["--help"]);
  assertEquals(code, 0);
  for (
    const option of [
      "--concurrency",
      "--timeout",
      "--method",
      "--header",
      "--no-keep-alive",
      "--print-body",
      "--json",
      "--help",
      "--input",
      "--demo",
      "--data",
      "--data-file",
      "--per-origin",
      "--delay",
      "--retries",
      "--connect-timeout",
      "--proxy",
      "--cacert",
      "--unix-socket",
      "--follow",
      "--depth",
      "--origin",
      "--ignore-robots",
      "--output-dir",
      "--warc",
    ]
  ) {
    assertStringIncludes(stdout, option);
  }
});

Deno.test("seed_crawler.ts prints status and body size per URL, chunked included", async () => {
  await using server = localServer();
  const base = `http://127.0.0.1:${server.addr.port}`;
  const refused = `http://127.0.0.1:${closedPort()}/`;
  const { code, stdout } = await run("seed_crawler.ts", [NET], [
    `${base}/hello`,
    `${base}/chunked`,
    `${base}/nope`,
    refused,
    "not a url",
  ]);
  assertEquals(code, 1, "two URLs failed");
  const lines = stdout.trimEnd().split("\n").sort();
  assertEquals(lines.length, 5, stdout);
  assertStringIncludes(stdout, `200 OK ${base}/hello 11 bytes`);
  assertStringIncludes(stdout, `200 OK ${base}/chunked 38 bytes`);
  assertStringIncludes(stdout, `404 Not Found ${base}/nope 7 bytes`);
  assertMatch(stdout, new RegExp(`^ERROR ${refused} ConnectionRefused`, "m"));
  assertMatch(stdout, /^ERROR not a url /m);
});

Deno.test("seed_crawler.ts exits 0 when every URL succeeds, and prints usage without URLs", async () => {
  await using server = localServer();
  const base = `http://127.0.0.1:${server.addr.port}`;
  const ok = await run("seed_crawler.ts", [NET], [`${base}/chunked`]);
  assertEquals(ok.code, 0, ok.stdout);
  const usage = await run("seed_crawler.ts", [NET], []);
  assertEquals(usage.code, 2);
  assertStringIncludes(usage.stderr, "Usage: seed_crawler.ts URL...");
});

Deno.test("seed_crawler.ts says in one line that it cannot write its results (stdout on a full disk), exit 1", async () => {
  await using server = localServer();
  const args = runArgs("seed_crawler.ts", [NET], [
    `http://127.0.0.1:${server.addr.port}/hello`,
  ]);
  // A shell, for its redirect to /dev/full (Linux).
  const { code, stderr } = await new Deno.Command("bash", {
    args: [
      "-c",
      `"$0" "$@" > /dev/full`,
      Deno.execPath(),
      ...args,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(stderr);
  assertEquals(code, 1, text);
  assertEquals(text.trim().split("\n"), [
    "seed_crawler.ts: cannot write to stdout: No space left on device (os error 28)",
  ]);
});

Deno.test("echo_server.ts serves many echo_client.ts connections at once", async () => {
  const clients = 20;
  await using server = new Background("echo_server.ts", [NET], [
    "--port",
    "0",
    "--max-clients",
    String(clients),
  ]);
  const first = await server.firstLine();
  const port = /^listening on 127\.0\.0\.1:(\d+)$/.exec(first)?.[1];
  assert(port !== undefined, `unexpected first line: ${first}`);
  const client = await run("echo_client.ts", [NET], [
    "--port",
    port,
    "--connections",
    String(clients),
    "--lines",
    "500",
  ]);
  assertEquals(client.code, 0, client.stdout + client.stderr);
  assertMatch(
    client.stdout,
    /^20\/20 connections OK, 10000 lines and \d+ bytes echoed, 0 mismatches/,
  );
  const echoed = Number(/and (\d+) bytes echoed/.exec(client.stdout)?.[1]);
  assertGreater(echoed, 0);
  const { code, stdout } = await server.finished();
  assertEquals(code, 0);
  assertStringIncludes(
    stdout,
    `served ${clients} clients, echoed ${echoed} bytes`,
  );
});

Deno.test("echo_server.ts exits at once on Ctrl-C though a client stopped reading its echo", async () => {
  await using server = new Background("echo_server.ts", [NET], []);
  const port = Number(/:(\d+)$/.exec(await server.firstLine())?.[1]);
  // A client that sends and never reads: the server's buffers for it fill.
  const client = await Deno.connect({ hostname: "127.0.0.1", port });
  const chunk = new Uint8Array(64 * 1024);
  let sent = 0;
  const writing = (async () => {
    for (let i = 0; i < 1024; i++) sent += await client.write(chunk);
  })().catch(() => {}); // the server goes away mid-write
  try {
    // Until the server takes no more (its write buffer for us is full).
    let last = -1;
    for (let i = 0; i < 100 && sent !== last; i++) {
      last = sent;
      await delay(100);
    }
    assertLess(sent, 1024 * chunk.length, "the server kept reading");
    const start = performance.now();
    server.kill("SIGINT");
    const { code, stdout } = await server.finished(3_000);
    const ms = performance.now() - start;
    assertEquals(code, 0);
    assertStringIncludes(stdout, "served 0 clients");
    // Before, close() flushed the echo to the stalled client for 10 s first.
    assertLess(ms, 2_000);
  } finally {
    client.close();
    await writing;
  }
});

Deno.test("echo_client.ts exits 1 when the server is not there", async () => {
  const { code, stdout, stderr } = await run("echo_client.ts", [NET], [
    "--port",
    String(closedPort()),
    "--connections",
    "3",
  ]);
  assertEquals(code, 1);
  assertStringIncludes(stdout, "0/3 connections OK");
  assertStringIncludes(stderr, "ConnectionRefused");
});
