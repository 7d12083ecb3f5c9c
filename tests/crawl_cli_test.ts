/**
 * The crawl CLI (`examples/crawl.ts`) run as a subprocess against local servers:
 * URL lists from stdin and `-i`, `--follow` with robots.txt on a generated site,
 * `-o` files, `--warc` read back with warcio.js, Ctrl-C, bad flags and disk
 * errors. Each subprocess has a deadline and is killed in `finally`.
 *
 * @module
 */
import {
  assert,
  assertEquals,
  assertFalse,
  assertGreater,
  assertLess,
  assertLessOrEqual,
  assertMatch,
  assertStringIncludes,
} from "@std/assert";
import { gzipSync } from "node:zlib";
import { WARCParser } from "npm:warcio@2.4.11";
import { sameFile } from "../examples/crawl/_util.ts";
import { urlToPath } from "../examples/crawl/output_dir.ts";
import { cert, key, testdata } from "./_tls.ts";
import { concat, within } from "./_net.ts";
import { rawServer, writeSplit } from "./_raw_http.ts";
import { sha1, warcioIndex } from "./_warc.ts";

const CRAWL = new URL("../examples/crawl.ts", import.meta.url).href;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Output {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

interface RunOptions {
  stdin?: string | Uint8Array;
  timeout?: number;
  permissions?: string[];
  /** Variables set for the run besides NO_COLOR (the rest is inherited). */
  env?: Record<string, string>;
  /** Wrap in `/usr/bin/time -f %M` and report the peak RSS (KiB) in `rssKiB`. */
  measureRss?: boolean;
}

/** `deno run <permissions> examples/crawl.ts <args>`, killed after `timeout`. */
async function crawl(
  args: string[],
  options: RunOptions = {},
): Promise<Output & { rssKiB: number | null }> {
  const permissions = options.permissions ?? [
    "--allow-net=127.0.0.1",
    "--allow-read",
    "--allow-write",
  ];
  const denoArgs = [
    "run",
    "--quiet",
    "--no-config",
    ...permissions,
    CRAWL,
    ...args,
  ];
  const measure = options.measureRss === true;
  const started = performance.now();
  const child = new Deno.Command(measure ? "/usr/bin/time" : Deno.execPath(), {
    args: measure ? ["-f", "rss=%M", Deno.execPath(), ...denoArgs] : denoArgs,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, options.timeout ?? 30_000);
  try {
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(
        typeof options.stdin === "string"
          ? encoder.encode(options.stdin)
          : options.stdin,
      );
      await writer.close();
    }
    const { code, stdout, stderr } = await child.output();
    const ms = performance.now() - started;
    assertLess(
      ms,
      options.timeout ?? 30_000,
      `crawl ${args.join(" ")} timed out`,
    );
    let err = decoder.decode(stderr);
    let rssKiB: number | null = null;
    if (measure) {
      const match = /rss=(\d+)\n?$/.exec(err);
      if (match) {
        rssKiB = Number(match[1]);
        err = err.slice(0, match.index);
      }
    }
    return { code, stdout: decoder.decode(stdout), stderr: err, ms, rssKiB };
  } finally {
    clearTimeout(timer);
  }
}

/** `deno run`'s arguments for crawl.ts with `--allow-net=127.0.0.1` and `permissions`. */
function crawlArgs(permissions: string[], args: string[]): string[] {
  return [
    "run",
    "--quiet",
    "--no-config",
    "--allow-net=127.0.0.1",
    ...permissions,
    CRAWL,
    ...args,
  ];
}

/**
 * Starts `crawl.ts <args>` with `--allow-net=127.0.0.1` and `permissions`, its
 * stdout and stderr piped, for a test that signals it while it runs. It is
 * killed after `timeout` ms if still running; disposing of it (`await using`)
 * kills it if need be and waits for its exit.
 */
function spawnCrawl(
  permissions: string[],
  args: string[],
  stdin: "null" | "piped",
  timeout = 20_000,
): Deno.ChildProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: crawlArgs(permissions, args),
    stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), timeout);
  child.status.finally(() => clearTimeout(killer));
  return child;
}

/**
 * `deno run --quiet --no-config --allow-net=127.0.0.1 <permissions> crawl.ts
 * <args>` under `/bin/sh -c`, its stdout and stderr where `shell` (a script
 * whose `"$0" "$@"` is the command) sends them: to `/dev/full`, into a pipe
 * that a slow reader empties. What reaches the shell's own stdout and stderr
 * is returned, within `timeout` ms.
 */
async function crawlInShell(
  shell: string,
  args: string[],
  permissions: string[] = [],
  timeout = 20_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", shell, Deno.execPath(), ...crawlArgs(permissions, args)],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const { code, stdout, stderr } = await within(
    child.output(),
    timeout,
    "crawl",
  );
  return {
    code,
    stdout: decoder.decode(stdout),
    stderr: decoder.decode(stderr),
  };
}

/** Reads `child`'s stdout up to its first line break (or its end). */
async function firstLine(child: Deno.ChildProcess): Promise<string> {
  const reader = child.stdout.getReader();
  let text = "";
  try {
    while (!text.includes("\n")) {
      const next = await reader.read();
      if (next.done) break;
      text += decoder.decode(next.value);
    }
  } finally {
    reader.releaseLock();
  }
  return text;
}

/** Waits for `child`'s exit, dropping the rest of its stdout; its stderr. */
async function exited(
  child: Deno.ChildProcess,
): Promise<{ status: Deno.CommandStatus; stderr: string }> {
  const [status, , stderr] = await Promise.all([
    child.status,
    child.stdout.cancel(),
    new Response(child.stderr).text(),
  ]);
  return { status, stderr };
}

/** A server counting requests per path; `handler` answers. */
function countingServer(
  handler: (url: URL, request: Request) => Response | Promise<Response>,
  hostname = "127.0.0.1",
) {
  const hits = new Map<string, number>();
  const server = Deno.serve(
    { hostname, port: 0, onListen() {} },
    (request) => {
      const url = new URL(request.url);
      hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
      return handler(url, request);
    },
  );
  return {
    base: `http://${hostname}:${server.addr.port}`,
    hits,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "crawl_cli_" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split("\n");
  assertEquals(lines.length, 1, `one line expected: ${stderr}`);
  return lines[0]!;
}

Deno.test("crawl.ts reads URLs from stdin, skipping blank lines and comments", async () => {
  await using server = countingServer(() => new Response("ok"));
  const list = Array.from({ length: 300 }, (_, i) => `${server.base}/s/${i}`);
  const stdin = `# seeds\n\n${list.join("\r\n")}\n  # done\n`;
  const { code, stdout, stderr } = await crawl(["-c", "16"], { stdin });
  assertEquals(code, 0, stderr);
  const lines = stdout.trimEnd().split("\n");
  assertEquals(lines.length, 300);
  assertMatch(
    lines[0]!,
    /^200 OK {2}2 B {2}[\d.]+ ms {2}http:\/\/127\.0\.0\.1:\d+\/s\/\d+$/,
  );
  assertEquals(server.hits.size, 300);
  assert([...server.hits.values()].every((n) => n === 1));
  // stdout carries the results: the summary goes to stderr.
  assertStringIncludes(stderr, "Summary");
  assertMatch(stderr, /requests\s+300 \(300 ok, 0 failed\)/);
});

Deno.test("crawl.ts -i reads a 100,000-line file lazily and fetches each URL once", async () => {
  await using server = countingServer(() => new Response("x"));
  await using dir = await tempDir();
  const count = 100_000;
  const path = `${dir.path}/urls.txt`;
  const lines = Array.from(
    { length: count },
    (_, i) => (i % 1000 === 0 ? "# a comment\n\n" : "") + `${server.base}/${i}`,
  );
  await Deno.writeTextFile(path, lines.join("\n") + "\n");
  const { code, stdout, stderr, ms, rssKiB } = await crawl(
    ["-i", path, "-c", "64"],
    { timeout: 60_000, measureRss: true },
  );
  assertEquals(code, 0, stderr.slice(-2000));
  assertEquals(server.hits.size, count);
  assert([...server.hits.values()].every((n) => n === 1));
  let results = 0;
  for (let i = stdout.indexOf("\n"); i >= 0; i = stdout.indexOf("\n", i + 1)) {
    results++;
  }
  assertEquals(results, count);
  assertMatch(stderr, /requests\s+100000 \(100000 ok, 0 failed\)/);
  console.log(
    `    100,000 URLs from -i: ${(ms / 1000).toFixed(1)} s, peak RSS ${
      rssKiB === null ? "?" : `${(rssKiB / 1024).toFixed(0)} MiB`
    }`,
  );
  if (rssKiB !== null) assertLess(rssKiB, 400 * 1024, "memory stays bounded");
});

Deno.test("crawl.ts without -o counts a large body as it streams by, holding none of it", async () => {
  const size = 256 * 1024 * 1024;
  const chunk = new Uint8Array(1024 * 1024).fill(0x61);
  await using server = countingServer(() => {
    let sent = 0;
    return new Response(
      new ReadableStream({
        pull(c) {
          if (sent >= size) return c.close();
          c.enqueue(chunk);
          sent += chunk.length;
        },
      }),
    );
  });
  const { code, stdout, stderr, rssKiB } = await crawl(
    ["--json", `${server.base}/big.bin`],
    { measureRss: true, timeout: 60_000 },
  );
  assertEquals(code, 0, stderr);
  assertEquals(JSON.parse(stdout).bytes, size);
  console.log(
    `    256 MiB body: peak RSS ${
      rssKiB === null ? "?" : `${(rssKiB / 1024).toFixed(0)} MiB`
    }`,
  );
  if (rssKiB !== null) assertLess(rssKiB, 200 * 1024, "the body is not held");
});

/** A site of `pages` HTML pages with every kind of link, and its robots.txt. */
function generatedSite(pages: number, elsewhere: string) {
  return countingServer((url) => {
    const path = url.pathname;
    if (path === "/robots.txt") {
      return new Response(
        "User-agent: *\nDisallow: /secret/\n\nUser-agent: otherbot\nDisallow: /\n",
      );
    }
    if (path === "/") {
      return new Response(
        '<html><head><link rel="stylesheet" href="/style.css"></head>' +
          '<body><a href="p/0">start</a> <a href="/secret/">secret</a></body></html>',
        { headers: { "content-type": "text/html" } },
      );
    }
    if (path === "/style.css") {
      return new Response("a { color: red }", {
        headers: { "content-type": "text/css" },
      });
    }
    const match = /^\/p\/(\d+)$/.exec(path);
    if (match !== null && Number(match[1]) < pages) {
      const n = Number(match[1]);
      const next = (n + 1) % pages;
      const far = (n * 37 + 11) % pages;
      const base = n % 10 === 0 ? `<base href="${url.origin}/p/">` : "";
      return new Response(
        `<!doctype html><html><head>${base}<title>${n}</title></head><body>
<a href="${next}">relative</a>
<a href="${url.origin}/p/${far}">absolute</a>
<a href="#section">fragment only</a>
<a href="/p/${(n + 2) % pages}#part">with fragment</a>
<a href="../p/${n}">self</a>
<a href="/secret/${n}">forbidden</a>
<a href="${elsewhere}/x/${n}">other origin</a>
<iframe src="/p/${(n + 3) % pages}"></iframe>
<area href="/P/${n}"> <a href="javascript:void(0)">js</a>
</body></html>`,
        { headers: { "content-type": "text/html; charset=utf-8" } },
      );
    }
    return new Response("not found", { status: 404 });
  });
}

Deno.test("crawl.ts --follow fetches every allowed page of a 500-page site once, nothing forbidden, no other origin", async () => {
  await using other = countingServer(() => new Response("elsewhere"));
  await using site = generatedSite(500, other.base);
  const { code, stdout, stderr } = await crawl([
    "--follow",
    "--json",
    "--per-origin",
    "8",
    `${site.base}/`,
  ], { timeout: 60_000 });
  // /P/N (capitalised) are 404s: responses, not failures.
  assertEquals(code, 0, stderr);
  assertEquals(other.hits.size, 0, "no other origin");
  assert(![...site.hits.keys()].some((p) => p.startsWith("/secret")));
  for (let n = 0; n < 500; n++) {
    assertEquals(site.hits.get(`/p/${n}`), 1, `/p/${n} fetched once`);
  }
  assertEquals(site.hits.get("/"), 1);
  assertEquals(site.hits.get("/style.css"), 1);
  assertEquals(site.hits.get("/robots.txt"), 1);
  const results = stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
  assertEquals(
    results.length,
    site.hits.size - 1,
    "robots.txt is not a result",
  );
  const root = results.find((r) => r.url === `${site.base}/`);
  assertEquals([root.depth, root.referrer], [0, null]);
  const first = results.find((r) => r.url === `${site.base}/p/0`);
  assertEquals([first.depth, first.referrer], [1, `${site.base}/`]);
  for (const r of results) {
    assertEquals(r.attempts, 1);
    assertEquals(
      Object.keys(r.timings).sort(),
      ["connect", "firstByte", "queued", "total"],
    );
  }
  assertMatch(stderr, /robots\.txt\s+\d+ URLs excluded/);
});

Deno.test("crawl.ts --follow --depth, --origin and --ignore-robots widen or narrow the crawl", async () => {
  await using other = countingServer(() =>
    new Response("<a href='/more'>more</a>", {
      headers: { "content-type": "text/html" },
    })
  );
  await using site = generatedSite(50, other.base);
  const shallow = await crawl(["--follow", "--depth", "1", `${site.base}/`]);
  assertEquals(shallow.code, 0, shallow.stderr);
  assertEquals(site.hits.get("/p/0"), 1);
  assertEquals(site.hits.get("/p/1"), undefined, "depth 2 is not fetched");
  site.hits.clear();
  const wide = await crawl([
    "--follow",
    "--depth",
    "1",
    "--origin",
    other.base,
    "--ignore-robots",
    `${site.base}/p/5`,
  ]);
  assertEquals(wide.code, 0, wide.stderr);
  assertEquals(site.hits.get("/robots.txt"), undefined);
  assertEquals(site.hits.get("/secret/5"), 1, "robots.txt ignored");
  assertEquals(other.hits.get("/x/5"), 1, "the other origin is allowed");
  assertEquals(other.hits.get("/more"), undefined, "past --depth 1");
});

Deno.test("crawl.ts --follow queues a redirect's target as a link: in scope, asked of robots.txt, once; a seed's may move to another origin", async () => {
  await using off = countingServer(() => new Response("off"));
  await using moved = countingServer((url) =>
    url.pathname === "/robots.txt"
      ? new Response("User-agent: *\nDisallow: /no\n")
      : new Response("<a href='/no'>no</a> <a href='/yes'>yes</a>", {
        headers: { "content-type": "text/html" },
      })
  );
  await using site = countingServer((url) => {
    switch (url.pathname) {
      case "/robots.txt":
        return new Response("User-agent: *\nDisallow: /private\n");
      case "/":
        return new Response(
          "<a href='/to-private'>p</a> <a href='/to-off'>o</a> <a href='/to-page'>x</a> <a href='/page'>y</a>",
          { headers: { "content-type": "text/html" } },
        );
      case "/to-private":
        return Response.redirect(`${url.origin}/private/secret`, 302);
      case "/to-off":
        return Response.redirect(`${off.base}/offsite`, 302);
      case "/to-page":
        return Response.redirect(`${url.origin}/page`, 301);
      case "/seed-moves":
        return Response.redirect(`${moved.base}/`, 301);
    }
    return new Response("page");
  });
  const { code, stdout, stderr } = await crawl([
    "--follow",
    `${site.base}/`,
    `${site.base}/seed-moves`,
  ]);
  assertEquals(code, 0, stderr);
  assertEquals(site.hits.get("/private/secret"), undefined, "robots.txt");
  assertEquals(off.hits.size, 0, "another origin, robots.txt and all");
  assertEquals(site.hits.get("/page"), 1, "a redirect to a seen URL");
  assertStringIncludes(stdout, `302 Found  0 B`);
  assertStringIncludes(stdout, ` -> ${off.base}/offsite`);
  // The seed's new origin (its host, another port) joined the crawl, under
  // its own robots.txt.
  assertEquals(moved.hits.get("/"), 1);
  assertEquals(moved.hits.get("/robots.txt"), 1);
  assertEquals(moved.hits.get("/yes"), 1);
  assertEquals(moved.hits.get("/no"), undefined);
  assertStringIncludes(stderr, "robots.txt  2 URLs excluded");
});

Deno.test("crawl.ts --follow fetches a seed's redirect to another host once, asking its robots.txt, but does not crawl it (as wget -r)", async () => {
  await using elsewhere = countingServer(
    (url) =>
      url.pathname === "/landing"
        ? new Response(
          `<a href="/page">p</a> <a href="${site.base}/back">b</a>`,
          { headers: { "content-type": "text/html" } },
        )
        : new Response("", {
          status: url.pathname === "/robots.txt" ? 404 : 200,
        }),
    "127.0.0.2",
  );
  await using site = countingServer((url) =>
    url.pathname === "/"
      ? Response.redirect(`${elsewhere.base}/landing`, 302)
      : new Response("", { status: url.pathname === "/robots.txt" ? 404 : 200 })
  );
  const { code, stdout, stderr } = await crawl(
    ["--follow", `${site.base}/`],
    { permissions: ["--allow-net=127.0.0.1,127.0.0.2"] },
  );
  assertEquals(code, 0, stderr);
  assertStringIncludes(stdout, `${site.base}/ -> ${elsewhere.base}/landing`);
  assertStringIncludes(stdout, `200 OK`);
  assertEquals(elsewhere.hits.get("/landing"), 1, "fetched once");
  assertEquals(elsewhere.hits.get("/robots.txt"), 1, "asked as any entry");
  // Before: 127.0.0.2's origin joined the crawl, and /page was fetched.
  assertEquals(elsewhere.hits.get("/page"), undefined, "its links are out");
  // A link back to an origin the command named is in scope, as any link.
  assertEquals(site.hits.get("/back"), 1);
});

Deno.test("crawl.ts --follow lets a seed's redirect bring in its host's www. origin, on another port too, but not a host a chain of redirects reaches via another", async () => {
  // A forward proxy serving made-up hosts: no DNS needed, and the URLs are
  // the ones the crawl means.
  const hits = new Map<string, number>();
  const proxy = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const url = new URL(request.url);
      const key = `${url.host}${url.pathname}`;
      hits.set(key, (hits.get(key) ?? 0) + 1);
      const html = (body: string) =>
        new Response(body, { headers: { "content-type": "text/html" } });
      switch (key) {
        case "a.test/":
          return Response.redirect("http://www.a.test:8443/", 301);
        case "www.a.test:8443/":
          return html('<a href="/in">in</a>');
        case "a.test/away":
          return Response.redirect("http://evil.test/", 302);
        case "evil.test/":
          return Response.redirect("http://www.evil.test/", 302);
        case "www.evil.test/":
          return html('<a href="/x">x</a> <a href="http://evil.test/y">y</a>');
      }
      return new Response("", {
        status: url.pathname === "/robots.txt" ? 404 : 200,
      });
    },
  );
  try {
    const { code, stderr } = await crawl([
      "--follow",
      "--proxy",
      `http://127.0.0.1:${proxy.addr.port}`,
      "http://a.test/",
      "http://a.test/away",
    ]);
    assertEquals(code, 0, stderr);
    const pages = [...hits.keys()].filter((k) => !k.endsWith("/robots.txt"));
    assertEquals(pages.sort(), [
      "a.test/",
      "a.test/away",
      "evil.test/",
      "www.a.test:8443/",
      // a.test's www. origin joined: its links are followed.
      "www.a.test:8443/in",
      // Fetched once, by a chain a.test named neither hop of.
      "www.evil.test/",
    ]);
    assertEquals(hits.get("www.evil.test/robots.txt"), 1);
  } finally {
    await proxy.shutdown();
  }
});

Deno.test("crawl.ts --follow reads a Location sent as raw UTF-8 as the engine does: /café, not /caf%C3%83%C2%A9", async () => {
  await using site = countingServer((url) =>
    url.pathname === "/"
      // The bytes of "/café/ü?q=ß" in UTF-8, each one character here.
      ? new Response(null, {
        status: 302,
        headers: { location: "/caf\xc3\xa9/\xc3\xbc?q=\xc3\x9f" },
      })
      : new Response("page")
  );
  const { code, stdout, stderr } = await crawl([
    "--follow",
    "--json",
    `${site.base}/`,
  ]);
  assertEquals(code, 0, stderr);
  assertEquals(
    site.hits.get("/caf%C3%A9/%C3%BC"),
    1,
    [...site.hits.keys()].join(" "),
  );
  const [redirect] = stdout.trimEnd().split("\n").map((line) =>
    JSON.parse(line)
  );
  assertEquals(redirect.location, "/café/ü?q=ß");
});

Deno.test("crawl.ts --follow fails a URL whose robots.txt cannot be fetched, and a seed that is no http(s) URL, with exit code 1", async () => {
  await using down = countingServer(() =>
    new Response("down", { status: 503 })
  );
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dead = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  listener.close();
  const { code, stdout, stderr } = await crawl(["--follow", "-i", "-"], {
    stdin: `${down.base}/a\n${dead}/b\nftp://x.test/\nnot a url\n`,
  });
  assertEquals(code, 1, stderr);
  assertEquals(down.hits.get("/a"), undefined);
  const lines = stdout.trimEnd().split("\n").sort();
  assertEquals(lines.length, 4, stdout);
  assertStringIncludes(
    stdout,
    `ERR RobotsUnreachable: robots.txt of ${down.base} answered 503`,
  );
  assertStringIncludes(stdout, `ERR ConnectionRefused: robots.txt of ${dead}`);
  assertStringIncludes(
    stdout,
    `ERR TypeError: Cannot fetch: "ftp://x.test/" is not an http(s) URL  ftp://x.test/`,
  );
  assertStringIncludes(stdout, `ERR TypeError: Cannot fetch: "not a url"`);
  assertStringIncludes(stderr, "4 failed");
});

Deno.test("crawl.ts --follow --retries retries a robots.txt answering 503, then obeys it", async () => {
  let robotsHits = 0;
  await using site = countingServer((url) => {
    if (url.pathname === "/robots.txt") {
      return ++robotsHits === 1
        ? new Response("busy", { status: 503, headers: { "retry-after": "0" } })
        : new Response("User-agent: *\nDisallow: /private\n");
    }
    return new Response("<a href=/private>p</a><a href=/ok>ok</a>", {
      headers: { "content-type": "text/html" },
    });
  });
  const { code, stdout, stderr } = await crawl([
    "--follow",
    "--retries",
    "2",
    `${site.base}/`,
  ]);
  assertEquals(code, 0, stdout + stderr);
  assertEquals(robotsHits, 2);
  assertEquals(site.hits.get("/ok"), 1);
  assertEquals(site.hits.get("/private"), undefined);
});

Deno.test("crawl.ts --follow takes a robots.txt that still redirects after 5 hops as unavailable: everything allowed", async () => {
  await using site = countingServer((url) => {
    const hop = /^\/hop\/(\d+)$/.exec(url.pathname);
    if (url.pathname === "/robots.txt" || hop !== null) {
      return Response.redirect(
        `${url.origin}/hop/${Number(hop?.[1] ?? 0) + 1}`,
        302,
      );
    }
    return new Response("page");
  });
  const { code, stderr } = await crawl(["--follow", `${site.base}/page`]);
  assertEquals(code, 0, stderr);
  assertEquals(site.hits.get("/page"), 1);
  assertEquals(site.hits.get("/hop/5"), 1);
  assertEquals(site.hits.get("/hop/6"), undefined, "five redirects, no more");
});

Deno.test("crawl.ts --follow obeys the first 500 KiB of an endless or gzip-bomb robots.txt and crawls on", async () => {
  const rules = encoder.encode("User-agent: *\nDisallow: /private\n#");
  const page = () =>
    new Response("<a href=/private>p</a><a href=/ok>ok</a>", {
      headers: { "content-type": "text/html" },
    });
  let cancelled = false;
  await using endless = countingServer((url) => {
    if (url.pathname !== "/robots.txt") return page();
    let sent = 0;
    return new Response(
      new ReadableStream<Uint8Array>({
        pull(controller) {
          // Bounded, in case the client read on: 64 MiB at most.
          if (sent++ === 0) controller.enqueue(rules);
          else if (sent < 1024) {
            controller.enqueue(new Uint8Array(64 * 1024).fill(0x23));
          } else controller.close();
        },
        cancel() {
          cancelled = true;
        },
      }),
    );
  });
  const bomb = new Uint8Array(128 << 20).fill(0x23);
  bomb.set(rules);
  const gzipped = gzipSync(bomb, { level: 9 });
  await using bombed = countingServer((url) =>
    url.pathname === "/robots.txt"
      ? new Response(gzipped, { headers: { "content-encoding": "gzip" } })
      : page()
  );
  const { code, stdout, stderr, rssKiB } = await crawl(
    ["--follow", "-t", "5000", `${endless.base}/`, `${bombed.base}/`],
    { measureRss: true },
  );
  assertEquals(code, 0, stdout + stderr);
  for (const site of [endless, bombed]) {
    assertEquals(site.hits.get("/ok"), 1, stdout);
    assertEquals(site.hits.get("/private"), undefined);
  }
  assertMatch(stderr, /robots\.txt\s+2 URLs excluded/);
  if (rssKiB !== null) {
    assertLess(rssKiB, 200 * 1024, "the 128 MiB robots.txt is not held");
  }
  assert(cancelled, "the endless robots.txt is not read to its end");
});

Deno.test("crawl.ts -i fails a line too long to read alone, and fetches the rest of the list", async () => {
  await using site = countingServer(() => new Response("ok"));
  await using dir = await tempDir();
  const list = `${dir.path}/urls.txt`;
  await Deno.writeTextFile(
    list,
    `${site.base}/a\n${"x".repeat(1_100_000)}\n${site.base}/b\n`,
  );
  const { code, stdout, stderr } = await crawl(["-i", list]);
  assertEquals(code, 1, stderr);
  assertEquals(site.hits.get("/a"), 1);
  assertEquals(site.hits.get("/b"), 1);
  assertStringIncludes(
    stdout,
    `ERR RangeError: Cannot read URL list: line 2 is longer than 1048576 characters  ${list}:2`,
  );
  assertStringIncludes(stderr, "requests    3 (2 ok, 1 failed)");
});

Deno.test("crawl.ts honours a robots.txt Crawl-delay as its origin's delay", async () => {
  const starts: number[] = [];
  await using site = countingServer((url) => {
    if (url.pathname === "/robots.txt") {
      return new Response("User-agent: *\nCrawl-delay: 0.2\n");
    }
    starts.push(performance.now());
    return new Response(
      url.pathname === "/"
        ? "<a href=a>a</a><a href=b>b</a><a href=c>c</a>"
        : "leaf",
      { headers: { "content-type": "text/html" } },
    );
  });
  const { code, stderr } = await crawl(["--follow", `${site.base}/`]);
  assertEquals(code, 0, stderr);
  assertEquals(starts.length, 4);
  for (let i = 1; i < starts.length; i++) {
    // Spaced at the client; seen at the server, a first request's connect
    // (later ones reuse the conn) may eat into its gap.
    assertGreater(starts[i]! - starts[i - 1]!, 140, `gap ${i}`);
  }
  assertGreater(starts.at(-1)! - starts[0]!, 3 * 200 - 60);
});

Deno.test("crawl.ts --follow starts an origin's first page --delay or Crawl-delay after its robots.txt request", async () => {
  const sites = [404, 200].map((status) => {
    const starts: number[] = [];
    const site = countingServer((url) => {
      starts.push(performance.now());
      return url.pathname === "/robots.txt"
        ? new Response("User-agent: *\nCrawl-delay: 0.9\n", { status })
        : new Response("page");
    });
    return { ...site, starts };
  });
  await using _a = sites[0]!;
  await using _b = sites[1]!;
  const { code, stderr } = await crawl([
    "--follow",
    "--delay",
    "500",
    ...sites.map((site) => `${site.base}/`),
  ]);
  assertEquals(code, 0, stderr);
  const gaps = sites.map(({ starts }) => {
    assertEquals(starts.length, 2);
    return starts[1]! - starts[0]!;
  });
  // Seen at the server: robots.txt's connect may eat into the gap.
  assertGreater(gaps[0]!, 500 - 60, "--delay (robots.txt 404)");
  assertGreater(gaps[1]!, 900 - 60, "Crawl-delay");
});

Deno.test("crawl.ts --follow spaces robots.txt retries by --delay", async () => {
  const starts: number[] = [];
  let busy = 1;
  await using site = countingServer((url) => {
    starts.push(performance.now());
    if (url.pathname === "/robots.txt" && busy-- > 0) {
      return new Response("busy", { status: 503 });
    }
    return new Response(url.pathname === "/robots.txt" ? "" : "page");
  });
  const { code, stderr } = await crawl([
    "--follow",
    "--delay",
    "400",
    "--retries",
    "1",
    `${site.base}/`,
  ]);
  assertEquals(code, 0, stderr);
  assertEquals(starts.length, 3);
  // The retry's backoff alone is at most 250 ms.
  assertGreater(starts[1]! - starts[0]!, 400 - 60, "robots.txt retry");
  assertGreater(starts[2]! - starts[1]!, 400 - 60, "first page");
});

Deno.test("crawl.ts --follow keeps a fast origin's pages going while a slow origin's wait for its Crawl-delay", async () => {
  const site = (robots: string, pages: number, rootMs: number) => {
    const starts: number[] = [];
    const links = Array.from({ length: pages }, (_, i) => `<a href=p${i}>p</a>`)
      .join("");
    const server = countingServer(async (url) => {
      if (url.pathname === "/robots.txt") return new Response(robots);
      starts.push(performance.now());
      if (url.pathname === "/") {
        // The fast site's links come after the slow one's: behind them in a
        // first-in-first-out queue.
        await new Promise((resolve) => setTimeout(resolve, rootMs));
      }
      return new Response(url.pathname === "/" ? links : "leaf", {
        headers: { "content-type": "text/html" },
      });
    });
    return Object.assign(server, { starts });
  };
  await using slow = site("User-agent: *\nCrawl-delay: 0.05\n", 30, 0);
  await using fast = site("", 12, 200);
  // -c 2: the engine reads 2 + 8 URLs ahead, fewer than the slow site's 30.
  const { code, stderr } = await crawl([
    "--follow",
    "-c",
    "2",
    `${slow.base}/`,
    `${fast.base}/`,
  ]);
  assertEquals(code, 0, stderr);
  assertEquals([slow.starts.length, fast.starts.length], [31, 13]);
  // The slow site's pages take 30 × 50 ms. Queued behind them, the fast
  // site's links (found 200 ms in) went out only as the slow ones' did, at
  // their pace: the last ~930 ms after they were found, where it takes a few.
  const slowEnd = slow.starts.at(-1)!;
  assertGreater(slowEnd - slow.starts[0]!, 30 * 50 - 60);
  const found = fast.starts[0]! + 200;
  const fastEnd = fast.starts.at(-1)!;
  assertLess(fastEnd - found, 250, `fast pages done ${fastEnd - found} ms in`);
});

Deno.test("crawl.ts --follow ignores an infinite Crawl-delay, caps a huge one at 300 s, and says so on stderr", async () => {
  const site = (delay: string) =>
    countingServer((url) =>
      url.pathname === "/robots.txt"
        ? new Response(`User-agent: *\nCrawl-delay: ${delay}\n`)
        : new Response("<a href=/a>a</a><a href=/b>b</a>", {
          headers: { "content-type": "text/html" },
        })
    );
  await using infinite = site("Infinity");
  await using huge = site("3000000");
  await using child = spawnCrawl([], [
    "--follow",
    `${infinite.base}/`,
    `${huge.base}/`,
  ], "null");
  const crawled = () =>
    infinite.hits.has("/b") && infinite.hits.has("/a") &&
    huge.hits.has("/robots.txt");
  for (let i = 0; i < 500 && !crawled(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert(crawled(), "the infinite Crawl-delay's site was crawled");
  // Time for the huge one's note; its first page waits the 300 s.
  await new Promise((resolve) => setTimeout(resolve, 300));
  child.kill("SIGINT");
  const [status, _stdout, stderr] = await Promise.all([
    child.status,
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  // Stopped while the huge one's page waits: an interrupted crawl.
  assertEquals(status.code, 130, stderr);
  assertEquals(huge.hits.get("/"), undefined);
  const notes = stderr.split("\n").filter((l) => l.includes("Crawl-delay"));
  assertEquals(
    notes.sort(),
    [
      `crawl: robots.txt of ${huge.base} asks for Crawl-delay: 3000000: capped at 300 s`,
      `crawl: robots.txt of ${infinite.base} asks for Crawl-delay: Infinity: ignored`,
    ].sort(),
  );
});

Deno.test("crawl.ts -o saves each 2xx body byte-equal to what was served, under its host and path", async () => {
  const binary = new Uint8Array(300_000).map((_, i) => (i * 31 + 7) % 256);
  const text = "compressible text ".repeat(2000);
  await using server = countingServer((url) => {
    switch (url.pathname) {
      case "/bin/data.bin":
        return new Response(binary);
      case "/gz.txt":
        return new Response(gzipSync(encoder.encode(text)), {
          headers: { "content-encoding": "gzip" },
        });
      case "/stream":
        return new Response(
          ReadableStream.from(
            ["a", "b", "c"].map((s) => encoder.encode(s.repeat(1000))),
          ),
        );
      case "/dir/":
        return new Response("<p>index</p>");
      case "/moved":
        return Response.redirect(`${url.origin}/dir/`, 301);
      case "/empty":
        return new Response(null, { status: 204 });
    }
    return new Response("missing", { status: 404 });
  });
  await using dir = await tempDir();
  const out = `${dir.path}/out`;
  const urls = [
    "/bin/data.bin",
    "/gz.txt",
    "/stream",
    "/dir/",
    "/moved",
    "/empty",
    "/nope?q=1",
  ]
    .map((p) => `${server.base}${p}`);
  const { code, stdout, stderr } = await crawl(["-o", out, "--json", ...urls]);
  assertEquals(code, 0, stderr);
  const results = new Map(
    stdout.trimEnd().split("\n").map((l) => {
      const r = JSON.parse(l);
      return [r.url, r];
    }),
  );
  const expected: Record<string, Uint8Array> = {
    "/bin/data.bin": binary,
    "/gz.txt": encoder.encode(text),
    "/stream": encoder.encode(
      "a".repeat(1000) + "b".repeat(1000) + "c".repeat(1000),
    ),
    "/dir/": encoder.encode("<p>index</p>"),
    "/moved": encoder.encode("<p>index</p>"),
    "/empty": new Uint8Array(),
  };
  for (const [path, bytes] of Object.entries(expected)) {
    const url = `${server.base}${path}`;
    const result = results.get(url);
    assertEquals(result.file, `${out}/${urlToPath(url)}`);
    assertEquals(await Deno.readFile(result.file), bytes, path);
    assertEquals(result.bytes, bytes.length);
  }
  assertEquals(
    results.get(`${server.base}/moved`).finalUrl,
    `${server.base}/dir/`,
  );
  // A 404's body is not saved (as wget's default).
  const missing = results.get(`${server.base}/nope?q=1`);
  assertEquals([missing.status, missing.file], [404, null]);
  // Nothing but the bodies: no temporary file left over.
  const names: string[] = [];
  const host = urlToPath(`${server.base}/`).split("/")[0]!;
  for await (const entry of Deno.readDir(`${out}/${host}`)) {
    names.push(entry.name);
  }
  assertEquals(names.sort(), [
    "bin",
    "dir",
    "empty",
    "gz.txt",
    "moved",
    "stream",
  ]);
});

/** Removes chunked framing. */
function dechunk(bytes: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let at = 0;
  for (;;) {
    const eol = bytes.indexOf(10, at);
    const size = parseInt(decoder.decode(bytes.subarray(at, eol)), 16);
    at = eol + 1;
    if (size === 0) break;
    parts.push(bytes.subarray(at, at + size));
    at += size + 2;
  }
  return concat(parts);
}

function headEnd(bytes: Uint8Array): number {
  for (let i = 3; i < bytes.length; i++) {
    if (bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10) {
      return i + 1;
    }
  }
  return -1;
}

interface WarcRecord {
  type: string;
  headers: Map<string, string>;
  raw: Uint8Array;
}

async function readWarc(path: string): Promise<WarcRecord[]> {
  // Blocks whole, HTTP head included: the block digest covers them.
  const parser = new WARCParser(
    ReadableStream.from([await Deno.readFile(path)]),
    { parseHttp: false },
  );
  const records: WarcRecord[] = [];
  for await (const r of parser) {
    records.push({
      type: r.warcType!,
      // warcio.js keys the headers in lower case.
      headers: new Map(
        [...r.warcHeaders.headers.entries()].map((
          [k, v],
        ) => [k.toLowerCase(), v]),
      ),
      raw: await r.readFully(false),
    });
  }
  return records;
}

Deno.test("crawl.ts --warc writes a WARC that warcio.js indexes and reads, digests valid, payloads as served", async () => {
  const gzipped = gzipSync(encoder.encode("zipped ".repeat(3000)));
  const served = new Map<string, Uint8Array>([
    ["/plain", encoder.encode("plain body")],
    ["/gzip", new Uint8Array(gzipped)],
    ["/chunked", encoder.encode("x".repeat(5000) + "y".repeat(5000))],
    ["/big", new Uint8Array(2_000_000).map((_, i) => i % 253)],
  ]);
  await using server = countingServer((url) => {
    const body = served.get(url.pathname);
    if (url.pathname === "/redirect") {
      return Response.redirect(`${url.origin}/plain`, 302);
    }
    if (body === undefined) return new Response("nope", { status: 404 });
    if (url.pathname === "/chunked") {
      return new Response(
        ReadableStream.from([body.subarray(0, 5000), body.subarray(5000)]),
      );
    }
    return new Response(body as Uint8Array<ArrayBuffer>, {
      headers: url.pathname === "/gzip" ? { "content-encoding": "gzip" } : {},
    });
  });
  await using dir = await tempDir();
  const path = `${dir.path}/crawl.warc.gz`;
  const urls = ["/plain", "/gzip", "/chunked", "/big", "/redirect", "/missing"]
    .map((p) => `${server.base}${p}`);
  const { code, stderr } = await crawl(["--warc", path, "-X", "GET", ...urls]);
  assertEquals(code, 0, stderr);
  assertMatch(stderr, /warc\s+7 exchanges in /);

  const index = await warcioIndex(path);
  assertEquals(index[0]!["warc-type"], "warcinfo");
  assertEquals(index.length, 1 + 2 * 7);
  const records = await readWarc(path);
  const responses = records.filter((r) => r.type === "response");
  const requests = records.filter((r) => r.type === "request");
  assertEquals(responses.length, 7);
  assertEquals(requests.length, 7);
  for (const record of records) {
    if (record.type === "warcinfo") continue;
    const block = record.raw;
    assertEquals(await sha1(block), record.headers.get("warc-block-digest"));
    assertEquals(record.headers.get("warc-ip-address"), "127.0.0.1");
    assertMatch(
      record.headers.get("warc-date")!,
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    );
  }
  for (const request of requests) {
    const concurrent = request.headers.get("warc-concurrent-to");
    assert(
      responses.some((r) => r.headers.get("warc-record-id") === concurrent),
    );
    assertMatch(decoder.decode(request.raw), /^GET \/\S* HTTP\/1\.1\r\n/);
  }
  const byTarget = new Map(
    responses.map((
      r,
    ) => [new URL(r.headers.get("warc-target-uri")!).pathname, r]),
  );
  for (const [p, body] of served) {
    const record = byTarget.get(p)!;
    const block = record.raw;
    const end = headEnd(block);
    const head = decoder.decode(block.subarray(0, end));
    assertMatch(head, /^HTTP\/1\.1 200 OK\r\n/);
    const entity = /transfer-encoding: chunked/i.test(head)
      ? dechunk(block.subarray(end))
      : block.subarray(end);
    // The payload as served (gzip kept), and its digest per WARC 1.1 §6.3.2.
    assertEquals(entity, body, p);
    assertEquals(
      await sha1(entity),
      record.headers.get("warc-payload-digest"),
      p,
    );
  }
  assertMatch(
    decoder.decode(byTarget.get("/redirect")!.raw),
    /^HTTP\/1\.1 302 /,
  );
  assertMatch(
    decoder.decode(byTarget.get("/missing")!.raw),
    /^HTTP\/1\.1 404 /,
  );
});

Deno.test("crawl.ts --warc keeps a response cut short after its head as far as it came, marked WARC-Truncated, and none without a head", async () => {
  const head = "HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n";
  const sent = new Map<string, string>([
    ["/whole", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
    ["/closed", head + "a".repeat(100)],
    ["/stalled", head + "b".repeat(100)],
  ]);
  const { promise: stalled, resolve: unstall } = Promise.withResolvers<void>();
  await using server = rawServer(async ({ conn, path }) => {
    const bytes = sent.get(path);
    if (bytes !== undefined) await writeSplit(conn, bytes);
    if (path === "/stalled") await stalled;
    return "close";
  });
  await using dir = await tempDir();
  const path = `${dir.path}/cut.warc.gz`;
  try {
    const { code, stderr } = await crawl([
      "--warc",
      path,
      "-t",
      "1500",
      ...[...sent.keys(), "/no-head"].map((p) => server.url(p)),
    ]);
    assertEquals(code, 1, stderr);
    assertMatch(
      stderr,
      /warc\s+3 exchanges \(2 cut short, WARC-Truncated\) in /,
    );
  } finally {
    unstall();
  }
  const records = await readWarc(path);
  const responses = records.filter((r) => r.type === "response");
  assertEquals(records.filter((r) => r.type === "request").length, 3);
  const byTarget = new Map(
    responses.map((r) => [
      new URL(r.headers.get("warc-target-uri")!).pathname,
      r,
    ]),
  );
  assertEquals([...byTarget.keys()].sort(), ["/closed", "/stalled", "/whole"]);
  for (
    const [p, truncated] of [
      ["/whole", undefined],
      ["/closed", "disconnect"],
      ["/stalled", "time"],
    ] as const
  ) {
    const record = byTarget.get(p)!;
    assertEquals(record.headers.get("warc-truncated"), truncated, p);
    // What arrived, byte for byte, and its digest.
    assertEquals(decoder.decode(record.raw), sent.get(p), p);
    assertEquals(
      await sha1(record.raw),
      record.headers.get("warc-block-digest"),
    );
  }
});

Deno.test("crawl.ts --follow --warc keeps a robots.txt cut at the 500 KiB it reads, marked WARC-Truncated: length", async () => {
  const robots = "# filler\n".repeat(100_000); // 900,000 bytes
  await using server = countingServer((url) =>
    new Response(url.pathname === "/robots.txt" ? robots : "no links")
  );
  await using dir = await tempDir();
  const path = `${dir.path}/robots.warc.gz`;
  const { code, stderr } = await crawl([
    "--follow",
    "--warc",
    path,
    `${server.base}/`,
  ]);
  assertEquals(code, 0, stderr);
  assertMatch(stderr, /warc\s+2 exchanges \(1 cut short, WARC-Truncated\) in /);
  const records = await readWarc(path);
  const cut = records.find((r) =>
    r.type === "response" &&
    r.headers.get("warc-target-uri")!.endsWith("/robots.txt")
  )!;
  assertEquals(cut.headers.get("warc-truncated"), "length");
  const text = decoder.decode(cut.raw);
  assertMatch(text, /^HTTP\/1\.1 200 OK\r\n/);
  // At least the part kept, not the whole file.
  assertGreater(text.length - text.indexOf("\r\n\r\n") - 4, 512_000 - 1);
  assertLess(text.length, robots.length);
  assertEquals(await sha1(cut.raw), cut.headers.get("warc-block-digest"));
  const page = records.find((r) =>
    r.type === "response" && r.headers.get("warc-target-uri")!.endsWith("/")
  )!;
  assertEquals(page.headers.get("warc-truncated"), undefined);
});

Deno.test("crawl.ts on Ctrl-C (SIGINT) stops, prints the summary, counts only the URLs in flight as failed (not those queued behind them) and leaves a WARC warcio.js reads", async () => {
  await using server = countingServer(async (url) => {
    await new Promise((r) => setTimeout(r, 50));
    return new Response(`page ${url.pathname}`);
  });
  await using dir = await tempDir();
  const list = `${dir.path}/urls.txt`;
  await Deno.writeTextFile(
    list,
    Array.from({ length: 5000 }, (_, i) => `${server.base}/${i}`).join("\n"),
  );
  const path = `${dir.path}/crawl.warc.gz`;
  await using child = spawnCrawl(
    ["--allow-read", "--allow-write"],
    ["-i", list, "-c", "8", "--warc", path],
    "null",
    30_000,
  );
  const reader = child.stdout.getReader();
  let text = "";
  // Wait until some results are out, then interrupt mid-crawl.
  while ((text.match(/\n/g)?.length ?? 0) < 40) {
    const next = await reader.read();
    if (next.done) break;
    text += decoder.decode(next.value);
  }
  child.kill("SIGINT");
  for (;;) {
    const next = await reader.read();
    if (next.done) break;
    text += decoder.decode(next.value);
  }
  const status = await child.status;
  const stderr = decoder.decode(
    new Uint8Array(await new Response(child.stderr).arrayBuffer()),
  );
  assertEquals(status.code, 130, stderr);
  assertMatch(stderr, /requests\s+\d+ \(\d+ ok, \d+ failed\), interrupted/);
  // Only the 8 in flight fail; the URLs queued behind them never started.
  const failed = Number(/(\d+) failed\)/.exec(stderr)?.[1]);
  assertLessOrEqual(failed, 8, stderr);
  assertEquals(
    text.split("\n").filter((line) => line.startsWith("ERR")).length,
    failed,
  );
  assertLess(server.hits.size, 5000, "stopped mid-crawl");
  const index = await warcioIndex(path);
  const responses = index.filter((r) => r["warc-type"] === "response");
  assertGreater(responses.length, 30);
  assertEquals(
    index.filter((r) => r["warc-type"] === "request").length,
    responses.length,
  );
  const written = Number(/warc\s+(\d+) exchanges/.exec(stderr)?.[1]);
  assertEquals(responses.length, written);
});

Deno.test("crawl.ts on SIGINT while it finishes the WARC (a 48 MiB record being compressed) writes the record, prints the summary and leaves no temporary file; a second one cuts the record off and exits 1", async () => {
  // Random bytes: gzip takes a second or more over them.
  const body = new Uint8Array(48 * 1024 * 1024);
  for (let at = 0; at < body.length; at += 65_536) {
    crypto.getRandomValues(body.subarray(at, at + 65_536));
  }
  await using server = countingServer(() => new Response(body));
  await using dir = await tempDir();
  for (const signals of [1, 2]) {
    const path = `${dir.path}/big${signals}.warc.gz`;
    await using child = spawnCrawl(
      ["--allow-read", "--allow-write"],
      ["--warc", path, `${server.base}/big`],
      "null",
      60_000,
    );
    // The URL's line: the crawl is over, the record is being written.
    assertStringIncludes(await firstLine(child), "200 OK");
    child.kill("SIGINT");
    if (signals === 2) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      child.kill("SIGINT");
    }
    const { status, stderr } = await exited(child);
    // The crawl was over: nothing was interrupted but the WARC's writing.
    assertMatch(stderr, /requests\s+1 \(1 ok, 0 failed\)\n/);
    const index = await warcioIndex(path);
    const responses = index.filter((r) => r["warc-type"] === "response");
    assertEquals(responses.length, signals === 1 ? 1 : 0, stderr);
    assertMatch(stderr, new RegExp(`warc\\s+${responses.length} exchanges`));
    // Cut off: the archive misses a page that was fetched, and the exit says so.
    assertEquals(status.code, signals === 1 ? 0 : 1, stderr);
    if (signals === 2) {
      assertStringIncludes(stderr, "1 read and not written (cut off)");
    }
  }
  const left: string[] = [];
  for await (const entry of Deno.readDir(dir.path)) left.push(entry.name);
  assertEquals(left.sort(), ["big1.warc.gz", "big2.warc.gz"]);
});

Deno.test("crawl.ts on SIGINT mid-download leaves no temporary file: -o's part file and --warc's spool file are removed before it exits", async () => {
  const piece = new Uint8Array(1 << 20);
  crypto.getRandomValues(piece.subarray(0, 65_536));
  await using server = countingServer(() => {
    let sent = 0;
    // 2 GiB, far more than is read before the signal.
    return new Response(
      new ReadableStream({
        pull(controller) {
          if (sent++ < 2048) controller.enqueue(piece);
          else controller.close();
        },
      }),
    );
  });
  await using dir = await tempDir();
  for (
    const save of [["-o", `${dir.path}/out`], [
      "--warc",
      `${dir.path}/a.warc.gz`,
    ]]
  ) {
    await using child = spawnCrawl(
      ["--allow-read", "--allow-write"],
      [...save, `${server.base}/big`],
      "null",
      60_000,
    );
    // Until the body is on disk, in its temporary file.
    const temporary = async () => {
      const names: string[] = [];
      for await (const entry of walkNames(dir.path)) {
        if (/^\.(~part-|warc-spool-)/.test(entry)) names.push(entry);
      }
      return names;
    };
    for (let i = 0; i < 1_000 && (await temporary()).length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assertGreater((await temporary()).length, 0, "a temporary file was begun");
    child.kill("SIGINT");
    const { status, stderr } = await exited(child);
    assertEquals(status.signal, null, stderr);
    assertEquals(await temporary(), [], stderr);
  }
});

/** The names of every file under `dir`, at any depth. */
async function* walkNames(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory) yield* walkNames(`${dir}/${entry.name}`);
    else yield entry.name;
  }
}

Deno.test("crawl.ts stopped by SIGTERM or SIGHUP between two requests exits 143 or 129, though every URL it fetched got a response", async () => {
  for (const [signal, code] of [["SIGTERM", 143], ["SIGHUP", 129]] as const) {
    await using server = countingServer(() => new Response("ok"));
    await using child = spawnCrawl([], [
      "--delay",
      "2000",
      `${server.base}/1`,
      `${server.base}/2`,
      `${server.base}/3`,
    ], "null");
    assertStringIncludes(await firstLine(child), "200 OK");
    child.kill(signal); // while /2 waits its turn
    const { status, stderr } = await exited(child);
    assertEquals(status.code, code, `${signal}: ${stderr}`);
    assertEquals(server.hits.size, 1);
    assertMatch(stderr, /requests\s+1 \(1 ok, 0 failed\), interrupted/);
  }
});

Deno.test("crawl.ts whose reader closed its stdout stops and exits 141, as a shell shows SIGPIPE", async () => {
  await using server = countingServer(() => new Response("ok"));
  await using child = spawnCrawl([], [
    "--delay",
    "300",
    `${server.base}/1`,
    `${server.base}/2`,
    `${server.base}/3`,
    `${server.base}/4`,
  ], "null");
  assertStringIncludes(await firstLine(child), "200 OK");
  // `| head -1`: the reader goes.
  const { status, stderr } = await exited(child);
  assertEquals(status.code, 141, stderr);
  assertLess(server.hits.size, 4);
  assertMatch(stderr, /interrupted/);
});

Deno.test("crawl.ts whose reader of stdout pauses longer than -t waits for it: nothing times out", async () => {
  await using server = countingServer(() => new Response("ok"));
  await using dir = await tempDir();
  // 1,500 result lines: more than a pipe holds (64 KiB).
  const list = `${dir.path}/urls.txt`;
  await Deno.writeTextFile(
    list,
    Array.from({ length: 1_500 }, (_, i) => `${server.base}/${i}\n`).join(""),
  );
  // `| less` on its first page: nothing read for twice the timeout.
  const { code, stdout, stderr: err } = await crawlInShell(
    '"$0" "$@" | (sleep 2; cat)',
    ["-c", "16", "-t", "1000", "-i", list],
    ["--allow-read"],
    30_000,
  );
  assertEquals(code, 0, err);
  assertMatch(err, /requests\s+1500 \(1500 ok, 0 failed\)/);
  assertEquals(stdout.match(/^200 OK /gm)?.length, 1_500);
});

Deno.test("crawl.ts whose stdout fails (a full disk) stops, says so and exits 1", async () => {
  await using server = countingServer(() => new Response("ok"));
  const { code, stderr: err } = await crawlInShell(
    'exec "$0" "$@" > /dev/full',
    [`${server.base}/1`, `${server.base}/2`],
  );
  assertEquals(code, 1, err);
  assertStringIncludes(
    err,
    "crawl: Cannot write the results to 'standard output': No space left on device",
  );
  assertMatch(err, /requests\s+\d/); // the summary still comes
});

Deno.test("crawl.ts whose stderr fails (a full disk) still exits with the crawl's status: 0 when every URL was fetched, notes and summary lost", async () => {
  // A Crawl-delay it ignores, and says so on stderr, from inside the robots
  // check: that write failed the page.
  await using server = countingServer((url) =>
    url.pathname === "/robots.txt"
      ? new Response("User-agent: *\nCrawl-delay: 1e999\n")
      : new Response("ok")
  );
  for (const args of [[`${server.base}/1`], ["--follow", `${server.base}/2`]]) {
    const { code, stdout: out } = await crawlInShell(
      'exec "$0" "$@" 2> /dev/full',
      args,
    );
    // Before: the summary's write failed, and so did the line saying so: exit 1.
    assertEquals(code, 0, `${args}: ${out}`);
    assertMatch(out, /^200 OK /, `${args}`);
  }
});

Deno.test("crawl.ts --demo whose stdout fails (a full disk) shows its summary on stderr, says so and exits 1", async () => {
  const { code, stderr: err } = await crawlInShell(
    'exec "$0" "$@" > /dev/full',
    ["--demo"],
    ["--allow-run"],
    30_000,
  );
  assertEquals(code, 1, err);
  assertMatch(err, /requests\s+500 \(500 ok, 0 failed\)/);
  assertStringIncludes(
    err,
    "crawl: Cannot write the summary to 'standard output': No space left on device",
  );
});

Deno.test("crawl.ts refuses a --warc file that is its -i URL list, which opening it would empty", async () => {
  await using dir = await tempDir();
  const list = `${dir.path}/urls.txt`;
  await Deno.writeTextFile(list, "http://127.0.0.1:1/\n");
  const { code, stderr } = await crawl(["-i", list, "--warc", list]);
  assertEquals(code, 2, stderr);
  assertStringIncludes(stderr, "is the URL list (-i): it would be overwritten");
  assertEquals(await Deno.readTextFile(list), "http://127.0.0.1:1/\n");
});

Deno.test("sameFile() tells apart two files whose Windows file IDs round to one JS number", async () => {
  await using dir = await tempDir();
  const a = `${dir.path}/urls.txt`;
  const b = `${dir.path}/x.warc`;
  const link = `${dir.path}/link`;
  await Deno.writeTextFile(a, "a");
  await Deno.writeTextFile(b, "b");
  await Deno.link(a, link);
  assert(await sameFile(a, link));
  assertFalse(await sameFile(a, b));
  assertFalse(await sameFile(a, `${dir.path}/missing`));
  // NTFS file IDs of sequence number 40, MFT records 1000 and 1001, as Deno
  // gives them on Windows: Number(u64), past 2^53, so one number.
  const id = (record: bigint) => Number((40n << 48n) | record);
  assertEquals(id(1000n), id(1001n));
  const stats = new Map([
    [a, {
      ...await Deno.stat(a),
      dev: 7,
      ino: id(1000n),
      birthtime: new Date(1),
    }],
    [b, {
      ...await Deno.stat(b),
      dev: 7,
      ino: id(1001n),
      birthtime: new Date(2),
    }],
  ]);
  const stat = Deno.stat;
  Object.defineProperty(Deno, "stat", {
    value: (path: string) => Promise.resolve(stats.get(path)!),
  });
  try {
    assertFalse(await sameFile(a, b));
    assert(await sameFile(b, b));
  } finally {
    Object.defineProperty(Deno, "stat", { value: stat });
  }
  assert(Deno.stat === stat, "Deno.stat restored");
});

Deno.test("crawl.ts shows the control characters of a URL from its list escaped, not raw on the terminal", async () => {
  const { code, stdout } = await crawl([], {
    stdin: "\x1b[2Jfoo\nhttp://127.0.0.1:1/\x1b]0;t\x07\n",
  });
  assertEquals(code, 1);
  // deno-lint-ignore no-control-regex
  assertEquals(/[\x00-\x08\x0b-\x1f\x7f]/.test(stdout), false, stdout);
  assertStringIncludes(stdout, "\\x1b[2Jfoo");
});

Deno.test("crawl.ts --json escapes the C1 controls of a server's Location and body, not raw on the terminal", async () => {
  // U+009B (CSI, C2 9B in UTF-8): JSON.stringify leaves it raw.
  await using server = rawServer(async ({ conn, path }) => {
    await writeSplit(
      conn,
      path === "/"
        ? "HTTP/1.1 302 Found\r\nLocation: /\xc2\x9b2J\r\nContent-Length: 0\r\n\r\n"
        : "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n\xc2\x9b31m",
    );
    return "close";
  });
  const { code, stdout } = await crawl([
    "--follow",
    "--ignore-robots",
    "--json",
    "--print-body",
    server.url("/"),
  ]);
  assertEquals(code, 0);
  // deno-lint-ignore no-control-regex
  assertEquals(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/.test(stdout), false, stdout);
  const [moved, target] = stdout.trim().split("\n").map((line) =>
    JSON.parse(line)
  );
  assertEquals(moved.location, "/\x9b2J");
  assertEquals(target.body, "\x9b31m");
});

Deno.test("crawl.ts on Ctrl-C (SIGINT) exits while its URL list on stdin is still open", async () => {
  await using server = countingServer(() => new Response("ok"));
  await using child = spawnCrawl([], ["-i", "-"], "piped");
  const writer = child.stdin.getWriter();
  try {
    await writer.write(encoder.encode(`${server.base}/a\n`));
    assertStringIncludes(await firstLine(child), "200 OK");
    // stdin stays open: a pending read of it must not keep the process alive.
    const interrupted = performance.now();
    child.kill("SIGINT");
    const { status, stderr } = await exited(child);
    assertLess(performance.now() - interrupted, 5_000);
    assertEquals(status.code, 130, stderr);
    assertMatch(stderr, /requests\s+1 \(1 ok, 0 failed\), interrupted/);
  } finally {
    await writer.close().catch(() => {});
  }
});

Deno.test("crawl.ts --follow on Ctrl-C while a robots.txt is on its way reports nothing of it as failed", async () => {
  // The robots.txt is held until the crawl has exited (20 s at most): on its
  // way all through the signal, however late the signal lands.
  let release = () => {};
  const exitedOrLate = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 20_000);
    release = () => {
      clearTimeout(timer);
      resolve();
    };
  });
  await using site = countingServer(async (url) => {
    if (url.pathname === "/robots.txt") {
      await exitedOrLate;
      return new Response("User-agent: *\nDisallow:\n");
    }
    return new Response("page");
  });
  try {
    await using dir = await tempDir();
    await using child = spawnCrawl(["--allow-read", "--allow-write"], [
      "--follow",
      "--warc",
      `${dir.path}/x.warc.gz`,
      `${site.base}/`,
      `${site.base}/b`,
    ], "null");
    for (let i = 0; i < 500 && !site.hits.has("/robots.txt"); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert(site.hits.has("/robots.txt"), "robots.txt was asked for");
    child.kill("SIGINT");
    const [status, stdout, stderr] = await Promise.all([
      child.status,
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
    ]);
    assertEquals(stdout, "", "no URL failed");
    assertEquals(status.code, 130, stderr);
    assertMatch(stderr, /requests\s+0 \(0 ok, 0 failed\), interrupted/);
    assertMatch(stderr, /robots\.txt\s+0 URLs excluded/);
  } finally {
    release();
  }
});

Deno.test("crawl.ts --retries retries a body cut short mid-way, with -o and without: the retry's file is whole and no partial file is left", async () => {
  const body = "0123456789".repeat(10_000);
  let requests = 0;
  await using server = rawServer(async ({ conn }) => {
    const head = `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`;
    // Every other request is cut short at half its body, then the conn closed.
    await writeSplit(
      conn,
      head + (requests++ % 2 === 0 ? body.slice(0, body.length / 2) : body),
    );
    return "close";
  });
  await using dir = await tempDir();
  for (const save of [[], ["-o", `${dir.path}/out`]]) {
    const out = await crawl([
      "--json",
      "--retries",
      "1",
      ...save,
      server.url("/page.txt"),
    ]);
    assertEquals(out.code, 0, out.stderr);
    const line = JSON.parse(out.stdout);
    assertEquals([line.ok, line.attempts, line.bytes], [true, 2, body.length]);
  }
  const files: string[] = [];
  for await (
    const entry of Deno.readDir(`${dir.path}/out/127.0.0.1_${server.port}`)
  ) {
    files.push(entry.name);
  }
  assertEquals(files, ["page.txt"]);
  assertEquals(
    await Deno.readTextFile(
      `${dir.path}/out/127.0.0.1_${server.port}/page.txt`,
    ),
    body,
  );
});

Deno.test("crawl.ts --follow sends -X and -d to the starting URL only: the links found, and where they redirect, are fetched with GET", async () => {
  const seen: string[] = [];
  await using server = countingServer(async (url, request) => {
    seen.push(`${request.method} ${url.pathname} ${await request.text()}`);
    if (url.pathname === "/robots.txt") {
      return new Response("", { status: 404 });
    }
    if (url.pathname === "/moved") {
      return new Response(null, { status: 302, headers: { location: "/b" } });
    }
    return new Response(
      url.pathname === "/"
        ? '<a href="/a">a</a><a href="/moved">m</a>'
        : "leaf",
      { headers: { "content-type": "text/html" } },
    );
  });
  const out = await crawl([
    "--follow",
    "-X",
    "PUT",
    "-d",
    "q=1",
    `${server.base}/`,
  ]);
  assertEquals(out.code, 0, out.stderr);
  assertEquals(seen.filter((line) => !line.includes("robots")).sort(), [
    "GET /a ",
    "GET /b ",
    "GET /moved ",
    "PUT / q=1",
  ]);
});

Deno.test("crawl.ts --follow repeats -X and -d where a seed's 307, 308 or (but for POST) 302 leads, and turns a 303 or a POST's 301 into a GET", async () => {
  const seen: string[] = [];
  const hops: Record<string, [number, string]> = {
    "/t": [307, "/t2"],
    "/t2": [308, "/t3"],
    "/o": [303, "/o2"],
    "/p": [302, "/p2"],
    "/m": [301, "/m2"],
  };
  await using server = countingServer(async (url, request) => {
    seen.push(`${request.method} ${url.pathname} ${await request.text()}`);
    if (url.pathname === "/robots.txt") {
      return new Response("", { status: 404 });
    }
    const hop = hops[url.pathname];
    if (hop !== undefined) {
      return new Response(null, {
        status: hop[0],
        headers: { location: hop[1] },
      });
    }
    return new Response("leaf", { headers: { "content-type": "text/plain" } });
  });
  const posted = await crawl([
    "--follow",
    "-d",
    "q=1",
    `${server.base}/t`,
    `${server.base}/o`,
    `${server.base}/m`,
  ]);
  assertEquals(posted.code, 0, posted.stderr);
  assertEquals(seen.filter((line) => !line.includes("robots")).sort(), [
    "GET /m2 ",
    "GET /o2 ",
    "POST /m q=1",
    "POST /o q=1",
    "POST /t q=1",
    "POST /t2 q=1",
    "POST /t3 q=1",
  ]);
  seen.length = 0;
  const put = await crawl([
    "--follow",
    "-X",
    "PUT",
    "-d",
    "q=2",
    `${server.base}/p`,
  ]);
  assertEquals(put.code, 0, put.stderr);
  assertEquals(seen.filter((line) => !line.includes("robots")), [
    "PUT /p q=2",
    "PUT /p2 q=2",
  ]);
});

Deno.test("crawl.ts sends -X, -H, -d and --data-file, retries with --retries and spaces requests with --delay", async () => {
  const seen: {
    method: string;
    body: string;
    header: string | null;
    at: number;
  }[] = [];
  let busy = 1;
  await using server = countingServer(async (url, request) => {
    seen.push({
      method: request.method,
      body: await request.text(),
      header: request.headers.get("x-test"),
      at: performance.now(),
    });
    if (url.pathname === "/busy" && busy-- > 0) {
      return new Response("busy", { status: 503 });
    }
    return new Response("ok");
  });
  await using dir = await tempDir();
  const posted = await crawl([
    "-X",
    "PUT",
    "-H",
    "X-Test: yes",
    "-d",
    "a=1",
    "--retries",
    "2",
    `${server.base}/busy`,
  ]);
  assertEquals(posted.code, 0, posted.stderr);
  assertEquals(seen.map((s) => [s.method, s.body, s.header]), [
    ["PUT", "a=1", "yes"],
    ["PUT", "a=1", "yes"],
  ]);
  seen.length = 0;
  await Deno.writeTextFile(`${dir.path}/body.json`, '{"x":1}');
  const fromFile = await crawl([
    "--data-file",
    `${dir.path}/body.json`,
    "--delay",
    "150",
    `${server.base}/1`,
    `${server.base}/2`,
    `${server.base}/3`,
  ]);
  assertEquals(fromFile.code, 0, fromFile.stderr);
  assertEquals(seen.map((s) => [s.method, s.body]), [
    ["POST", '{"x":1}'],
    ["POST", '{"x":1}'],
    ["POST", '{"x":1}'],
  ]);
  // Spaced at the client; seen at the server, the first request's connect
  // (later ones reuse the conn) may eat into the first gap.
  for (let i = 1; i < 3; i++) assertGreater(seen[i]!.at - seen[i - 1]!.at, 100);
  assertGreater(seen[2]!.at - seen[0]!.at, 2 * 150 - 40);
  // A curl habit: -H Content-Length is said to be ignored, and the body framed right.
  seen.length = 0;
  const framed = await crawl([
    "-H",
    "Content-Length: 99",
    "-d",
    "b=2",
    `${server.base}/4`,
  ]);
  assertEquals(framed.code, 0, framed.stderr);
  assertStringIncludes(framed.stderr, "-H Content-Length ignored");
  assertEquals(seen.map((s) => [s.method, s.body]), [["POST", "b=2"]]);
});

Deno.test("crawl.ts rejects bad flags and bad input with one line and exit code 2", async () => {
  const cases: [string[], RegExp][] = [
    [["--bogus", "http://127.0.0.1/"], /unknown option --bogus/],
    [
      ["http://127.0.0.1/", "-c"],
      /^crawl: option -c needs a value \(see --help\)$/,
    ],
    [
      ["--delay", "-5", "http://127.0.0.1/"],
      /option --delay takes a value starting with "-" only as --delay=VALUE/,
    ],
    [["-c", "0", "http://127.0.0.1/"], /--concurrency must be an integer >= 1/],
    // Past what a timer can wait: it would fire at once.
    [
      ["--delay", "9999999999999999999", "http://127.0.0.1/"],
      /--delay must be at most 2147483647/,
    ],
    [["--per-origin", "x", "http://127.0.0.1/"], /--per-origin/],
    [
      ["--depth", "2", "http://127.0.0.1/"],
      /--depth and --origin need --follow/,
    ],
    [["--follow", "--origin", "nope", "http://127.0.0.1/"], /invalid --origin/],
    [
      ["-d", "x", "-X", "GET", "http://127.0.0.1/"],
      /body cannot be sent with GET/,
    ],
    [
      ["--data-file", "/nonexistent/body", "http://127.0.0.1/"],
      /cannot read --data-file/,
    ],
    [
      ["-i", "/nonexistent/urls.txt"],
      /Cannot read URL list '\/nonexistent\/urls.txt'/,
    ],
    [["--proxy", "ftp://x/", "http://127.0.0.1/"], /invalid --proxy/],
    [["--demo", "http://127.0.0.1/"], /--demo crawls its own server/],
    [["not a url"], /invalid URL "not a url"/],
    [
      [
        "--cacert",
        new URL("../deno.json", import.meta.url).pathname,
        "https://127.0.0.1/",
      ],
      /caCerts\[0\] is not PEM certificates/,
    ],
  ];
  // Each a process that mostly starts up: four at a time, checked in order.
  const outs: Awaited<ReturnType<typeof crawl>>[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < cases.length) {
      const i = next++;
      outs[i] = await crawl(cases[i]![0]);
    }
  }));
  for (const [i, [args, message]] of cases.entries()) {
    const { code, stdout, stderr } = outs[i]!;
    assertEquals(code, 2, `${args.join(" ")}: ${stderr}`);
    assertEquals(stdout, "");
    const line = oneLine(stderr);
    assertMatch(line, /^crawl: /);
    assertMatch(line, message);
  }
});

Deno.test("crawl.ts reports an unwritable -o or --warc in one line with exit code 1, before any request", async () => {
  await using server = countingServer(() => new Response("ok"));
  await using dir = await tempDir();
  const file = `${dir.path}/a-file`;
  await Deno.writeTextFile(file, "in the way");
  const output = await crawl(["-o", `${file}/out`, `${server.base}/`]);
  assertEquals(output.code, 1);
  assertMatch(
    oneLine(output.stderr),
    /^crawl: Cannot create directory '.*a-file\/out': /,
  );
  const warc = await crawl(["--warc", `${file}/x.warc.gz`, `${server.base}/`]);
  assertEquals(warc.code, 1);
  assertMatch(
    oneLine(warc.stderr),
    /^crawl: Cannot create WARC file '.*x\.warc\.gz': /,
  );
  // -W without -R: saving looks at what a path holds.
  const unread = await crawl(["-o", `${dir.path}/out`, `${server.base}/`], {
    permissions: ["--allow-net=127.0.0.1", "--allow-write"],
  });
  assertEquals(unread.code, 1, unread.stderr);
  assertMatch(
    oneLine(unread.stderr),
    /^crawl: Cannot inspect in directory '.*out': Requires read access/,
  );
  assertEquals(server.hits.size, 0);
});

/** A server whose pages of paths longer than `length` link to /e, the others "body of N". */
function linkingLongPaths(length: number) {
  return countingServer((url) =>
    url.pathname.length > length
      ? new Response(`<a href="/e">e</a>`, {
        headers: { "content-type": "text/html" },
      })
      : new Response(`body of ${url.pathname.length}`)
  );
}

/** crawl.ts saving to `out` and `warc`, following links (robots.txt ignored), one at a time. */
function crawlSaving(out: string, warc: string, urls: string[]) {
  return crawl([
    "-o",
    out,
    "--warc",
    warc,
    "--follow",
    "--ignore-robots",
    "-c",
    "1",
    ...urls,
  ]);
}

/** Makes a folder whose path is `length` bytes, below `root`, in `segment`-byte names. */
async function folderOfLength(
  root: string,
  length: number,
  segment: number,
): Promise<string> {
  let path = root;
  while (path.length + segment + 1 < length - 1) {
    path += `/${"x".repeat(segment)}`;
  }
  path += `/${"y".repeat(length - path.length - 1)}`;
  await Deno.mkdir(path, { recursive: true });
  return path;
}

Deno.test("crawl.ts -o fails a URL whose path is too long for the file system alone, and saves the others; the WARC holds it and --follow takes its links", async () => {
  await using server = linkingLongPaths(4_000);
  await using dir = await tempDir();
  const out = `${dir.path}/out`;
  const warc = `${dir.path}/a.warc`;
  // 2,100 segments: each fits, the whole path does not (PATH_MAX is 4,096).
  const deep = `${server.base}/${"d/".repeat(2_100)}x`;
  const { code, stdout, stderr } = await crawlSaving(out, warc, [
    `${server.base}/a`,
    deep,
    `${server.base}/b`,
    `${server.base}/c`,
  ]);
  assertEquals(code, 1, stderr);
  assertMatch(stdout, /^ERR DiskError: .*File name too long/m);
  assertEquals(stdout.match(/^ERR /gm)?.length, 1, stdout);
  assertStringIncludes(stderr, "5 (4 ok, 1 failed)");
  assert(!/^crawl: Cannot/m.test(stderr), "not a fatal disk error");
  const host = urlToPath(`${server.base}/`).split("/")[0]!;
  for (const name of ["a", "b", "c", "e"]) {
    assertEquals(
      await Deno.readTextFile(`${out}/${host}/${name}`),
      "body of 2",
    );
  }
  // What the server sent for it came whole: the archive has it, unmarked.
  const records = await Deno.readTextFile(warc);
  assertEquals(records.match(/^WARC-Type: response\r$/gm)?.length, 5);
  assert(records.includes(`WARC-Target-URI: ${deep}\r\n`), "deep archived");
  assert(!/^WARC-Truncated/m.test(records), "nothing cut short");
});

Deno.test("crawl.ts -o fails a URL whose file's path is too long only as it is renamed into place (its temporary one fits) alone: the WARC holds it and --follow takes its links", async () => {
  await using server = linkingLongPaths(200);
  await using dir = await tempDir();
  // A folder where the hidden `.~part-<uuid>` (43 bytes) fits in PATH_MAX
  // (4,096), and a 250-byte name does not.
  const out = await folderOfLength(dir.path, 3_900, 100);
  const warc = `${dir.path}/a.warc`;
  const long = `${server.base}/${"n".repeat(250)}`;
  const { code, stdout, stderr } = await crawlSaving(out, warc, [long]);
  assertEquals(code, 1, stderr);
  assertMatch(stdout, /^ERR DiskError: Cannot write .*File name too long/m);
  assertEquals(stdout.match(/^ERR /gm)?.length, 1, stdout);
  // Before: "1 (0 ok, 1 failed)": its link was not taken, and the WARC had
  // no record of it.
  assertStringIncludes(stderr, "2 (1 ok, 1 failed)");
  assert(!/^crawl: Cannot/m.test(stderr), "not a fatal disk error");
  const host = urlToPath(`${server.base}/`).split("/")[0]!;
  assertEquals(await Deno.readTextFile(`${out}/${host}/e`), "body of 2");
  const records = await Deno.readTextFile(warc);
  assertEquals(records.match(/^WARC-Type: response\r$/gm)?.length, 2);
  assert(records.includes(`WARC-Target-URI: ${long}\r\n`), "long archived");
});

Deno.test("crawl.ts --demo -o prints the line of every URL whose file's path is too long, as it counts it failed", async () => {
  await using dir = await tempDir();
  // A folder that fits (PATH_MAX is 4,096), none of its files does.
  const out = await folderOfLength(dir.path, 4_050, 200);
  const { code, stdout, stderr } = await crawl(
    ["--demo", "--follow", "-o", out],
    {
      permissions: [
        "--allow-net=127.0.0.1",
        "--allow-read",
        "--allow-write",
        "--allow-run",
      ],
    },
  );
  assertEquals(code, 1, stderr);
  const failed = Number(
    /requests\s+\d+ \(\d+ ok, (\d+) failed\)/.exec(stdout)?.[1],
  );
  assertGreater(failed, 0, stdout.slice(0, 400));
  // Before: the summary counted them failed, and no line said which.
  assertEquals(
    stdout.match(/^ERR DiskError: .*File name too long/gm)?.length,
    failed,
    stdout.slice(0, 400),
  );
});

Deno.test("crawl.ts stops on a disk error mid-crawl with one line, exit code 1, and the WARC readable", async () => {
  await using server = countingServer((url) =>
    new Response(`body of ${url.pathname}`)
  );
  await using dir = await tempDir();
  const out = `${dir.path}/out`;
  const host = urlToPath(`${server.base}/`).split("/")[0]!;
  await Deno.mkdir(out);
  // The folder is writable (the check at start passes), but the host's folder
  // cannot be made: a link to /dev/full stands where it must go.
  await Deno.symlink("/dev/full", `${out}/${host}`);
  const warcPath = `${dir.path}/crawl.warc.gz`;
  const { code, stdout, stderr } = await crawl([
    "-o",
    out,
    "--warc",
    warcPath,
    "-c",
    "1",
    `${server.base}/a`,
    `${server.base}/b`,
    `${server.base}/c`,
  ]);
  assertEquals(code, 1, stderr);
  const last = stderr.trimEnd().split("\n").at(-1)!;
  assertMatch(last, /^crawl: Cannot create directory '.*': /);
  assertStringIncludes(stderr, "Summary");
  assertMatch(stdout, /^ERR DiskError: /m);
  assertLess(server.hits.size, 3, "the crawl stopped");
  const index = await warcioIndex(warcPath);
  assertEquals(index[0]!["warc-type"], "warcinfo");
});

Deno.test("crawl.ts stopped by one URL's disk error fails the URLs in flight as stopped, not with that URL's error", async () => {
  await using server = countingServer(async (url) => {
    // /a comes at once; the others are in flight when its file fails.
    if (url.pathname !== "/a") await new Promise((r) => setTimeout(r, 300));
    return new Response(`body of ${url.pathname}`);
  });
  await using dir = await tempDir();
  const out = `${dir.path}/out`;
  const host = urlToPath(`${server.base}/`).split("/")[0]!;
  await Deno.mkdir(out);
  await Deno.symlink("/dev/full", `${out}/${host}`);
  const { code, stdout, stderr } = await crawl([
    "-o",
    out,
    "-c",
    "4",
    ...["a", "b", "c", "d"].map((p) => `${server.base}/${p}`),
  ]);
  assertEquals(code, 1, stderr);
  const failed = stdout.split("\n").filter((line) => line.startsWith("ERR "));
  assertEquals(failed.length, 4, stdout);
  assertEquals(
    failed.filter((line) => /^ERR DiskError: /.test(line)).length,
    1,
  );
  for (const line of failed.filter((l) => !l.endsWith("/a"))) {
    assertMatch(line, /^ERR AbortError: Stopped: Cannot create directory /);
  }
});

Deno.test({
  name: "crawl.ts --unix-socket sends every request over the socket",
  fn: async () => {
    await using dir = await tempDir();
    const socket = `${dir.path}/s.sock`;
    const server = Deno.serve(
      { path: socket, transport: "unix", onListen() {} },
      (request) => new Response(`via socket ${new URL(request.url).pathname}`),
    );
    try {
      const { code, stdout, stderr } = await crawl(
        ["--unix-socket", socket, "--print-body", "http://localhost/x"],
        {
          // Deno 2.9 checks net access to "unix:<path>", and read and write.
          permissions: [
            `--allow-net=unix:${socket}`,
            `--allow-read=${socket}`,
            `--allow-write=${socket}`,
          ],
        },
      );
      assertEquals(code, 0, stderr);
      assertStringIncludes(stdout, "via socket /x");
    } finally {
      await server.shutdown();
    }
  },
});

Deno.test({
  name:
    "crawl.ts --proxy sends http requests through the proxy in absolute form",
  fn: async () => {
    const { startMiniProxy } = await import("./_mini_proxy.ts");
    await using proxy = await startMiniProxy();
    await using server = countingServer(() => new Response("proxied"));
    const { code, stderr } = await crawl([
      "--proxy",
      proxy.url,
      `${server.base}/p`,
    ]);
    assertEquals(code, 0, stderr);
    assertEquals(proxy.requests, [`GET ${server.base}/p HTTP/1.1`]);
    // host:port, as curl -x takes it.
    const bare = await crawl([
      "--proxy",
      proxy.url.replace("http://", ""),
      `${server.base}/q`,
    ]);
    assertEquals(bare.code, 0, bare.stderr);
    assertEquals(proxy.requests.at(-1), `GET ${server.base}/q HTTP/1.1`);
  },
});

Deno.test("crawl.ts takes the proxy from the environment under --allow-env naming only some proxy variables", async () => {
  const { startMiniProxy } = await import("./_mini_proxy.ts");
  await using proxy = await startMiniProxy();
  await using server = countingServer(() => new Response("proxied"));
  const { code, stderr } = await crawl([`${server.base}/e`], {
    permissions: ["--allow-net=127.0.0.1", "--allow-env=http_proxy,HTTP_PROXY"],
    env: { http_proxy: proxy.url, NO_PROXY: "", no_proxy: "" },
  });
  assertEquals(code, 0, stderr);
  assertEquals(proxy.requests, [`GET ${server.base}/e HTTP/1.1`]);
});

Deno.test("crawl.ts never shows the password of a --proxy that does not parse", async () => {
  for (
    const proxy of [
      "alice:SECRET@127.0.0.1:99999",
      "http://alice:TOP@SECRET@127.0.0.1:99999",
      "http://alice:TOP SECRET@127.0.0.1:99999",
      "http:/alice:SECRET@127.0.0.1:99999",
      "http:\\\\alice:SECRET@127.0.0.1:99999",
    ]
  ) {
    const { code, stderr } = await crawl([
      "--proxy",
      proxy,
      "http://127.0.0.1/",
    ]);
    assertEquals(code, 2, stderr);
    assertMatch(
      oneLine(stderr),
      /^crawl: invalid --proxy ".*alice:\*\*\*@127\.0\.0\.1:99999"/,
    );
    assertEquals(stderr.includes("SECRET"), false, stderr);
  }
});

Deno.test("crawl.ts --warc-framed-digest digests a chunked payload with its framing", async () => {
  await using server = countingServer(() =>
    new Response(
      ReadableStream.from([encoder.encode("one "), encoder.encode("two")]),
    )
  );
  await using dir = await tempDir();
  const path = `${dir.path}/framed.warc.gz`;
  const { code, stderr } = await crawl([
    "--warc",
    path,
    "--warc-framed-digest",
    `${server.base}/`,
  ]);
  assertEquals(code, 0, stderr);
  const [response] = (await readWarc(path)).filter((r) =>
    r.type === "response"
  );
  const block = response!.raw;
  const body = block.subarray(headEnd(block));
  assertEquals(dechunk(body), encoder.encode("one two"));
  assertEquals(await sha1(body), response!.headers.get("warc-payload-digest"));
});

Deno.test("crawl.ts --follow fetches many origins' robots.txt at once: a slow one holds back only its own URLs", async () => {
  const ORIGINS = 10;
  const servers = Array.from(
    { length: ORIGINS },
    () =>
      countingServer(async (url) => {
        if (url.pathname === "/robots.txt") {
          await new Promise((r) => setTimeout(r, 400));
          return new Response("User-agent: *\nDisallow: /no\n");
        }
        return new Response("<a href=/no>no</a><a href=/yes>yes</a>", {
          headers: { "content-type": "text/html" },
        });
      }),
  );
  try {
    const { code, stderr, ms } = await crawl([
      "--follow",
      ...servers.map((s) => `${s.base}/`),
    ]);
    assertEquals(code, 0, stderr);
    for (const server of servers) {
      assertEquals(server.hits.get("/robots.txt"), 1);
      assertEquals(server.hits.get("/yes"), 1);
      assertEquals(server.hits.get("/no"), undefined);
    }
    // One after the other, the robots.txt alone would take 10 × 400 ms.
    assertLess(ms, 3_000);
  } finally {
    await Promise.all(servers.map((s) => s[Symbol.asyncDispose]()));
  }
});

Deno.test("crawl.ts --follow -o saves no file for a redirect: /docs answering 301 to /docs/ after /docs/ was saved leaves docs/index.html the page's", async () => {
  await using server = countingServer(async (url) => {
    const html = (text: string) =>
      new Response(text, { headers: { "content-type": "text/html" } });
    switch (url.pathname) {
      case "/robots.txt":
        return new Response("", { status: 404 });
      case "/":
        return html('<a href="/docs/">docs</a> <a href="/later">later</a>');
      case "/docs/":
        return html("<p>the docs</p>");
      case "/later":
        // Found after /docs/ was saved.
        await new Promise((resolve) => setTimeout(resolve, 200));
        return html('<a href="/docs">docs again</a>');
      case "/docs":
        return new Response("Moved", {
          status: 301,
          headers: { location: "/docs/" },
        });
    }
    return new Response("nope", { status: 404 });
  });
  await using dir = await tempDir();
  const out = await crawl(["--follow", "-o", dir.path, `${server.base}/`]);
  assertEquals(out.code, 0, out.stderr);
  assertStringIncludes(out.stdout, "301 Moved Permanently");
  assertEquals(server.hits.get("/docs"), 1);
  const site = `${dir.path}/${urlToPath(`${server.base}/`).split("/")[0]}`;
  assertEquals(
    await Deno.readTextFile(`${site}/docs/index.html`),
    "<p>the docs</p>",
  );
  assertMatch(out.stderr, /files\s+3 saved/);
});

Deno.test("crawl.ts --follow -o follows the links of pages streamed to disk", async () => {
  await using other = countingServer(() => new Response("elsewhere"));
  await using site = generatedSite(20, other.base);
  await using dir = await tempDir();
  const out = `${dir.path}/site`;
  const { code, stderr } = await crawl([
    "--follow",
    "-o",
    out,
    `${site.base}/`,
  ]);
  assertEquals(code, 0, stderr);
  for (let n = 0; n < 20; n++) {
    const url = `${site.base}/p/${n}`;
    assertEquals(site.hits.get(`/p/${n}`), 1);
    const saved = await Deno.readTextFile(`${out}/${urlToPath(url)}`);
    assertStringIncludes(saved, `<title>${n}</title>`);
  }
  assertMatch(stderr, /files\s+\d+ saved under /);
});

Deno.test("crawl.ts --follow finds the same links with -o as without in a page starting with a BOM or with text", async () => {
  const html = (link: string) => `<a href="${link}">x</a>`;
  const pages: Record<string, () => Response> = {
    "/": () =>
      new Response(html("/bom") + html("/text"), {
        headers: { "content-type": "text/html" },
      }),
    "/bom": () =>
      new Response("\ufeff" + html("/from-bom"), {
        headers: { "content-type": "text/html; charset=utf-8" },
      }),
    "/text": () =>
      new Response("Hello " + html("/from-text"), {
        headers: { "content-type": "text/html" },
      }),
  };
  await using server = countingServer((url) =>
    pages[url.pathname]?.() ?? new Response("leaf")
  );
  await using dir = await tempDir();
  for (const args of [[], ["-o", `${dir.path}/out`]]) {
    server.hits.clear();
    const { code, stderr } = await crawl([
      "--follow",
      "--ignore-robots",
      ...args,
      `${server.base}/`,
    ]);
    assertEquals(code, 0, stderr);
    assertEquals(
      [...server.hits.keys()].sort(),
      ["/", "/bom", "/from-bom", "/from-text", "/text"],
      args.join(" "),
    );
  }
});

Deno.test("crawl.ts never prints a URL's password, in its lines or in --json", async () => {
  await using server = countingServer((url, request) =>
    url.pathname === "/r"
      ? Response.redirect(`${url.origin}/final`, 302)
      : new Response(request.headers.get("authorization") ?? "none")
  );
  const url = server.base.replace("//", "//alice:s3cret@");
  for (const json of [[], ["--json"]]) {
    const { code, stdout, stderr } = await crawl([
      ...json,
      `${url}/r`,
      `${url}/page`,
    ]);
    assertEquals(code, 0, stderr);
    assert(!stdout.includes("s3cret"), stdout);
    assertStringIncludes(stdout, "alice:***@");
  }
  // With --follow: a referrer (the page's URL), and a URL failed before any
  // fetch (its robots.txt answered 500).
  await using site = countingServer((url) =>
    url.pathname === "/robots.txt"
      ? new Response("", { status: 200 })
      : new Response('<a href="/next">n</a>', {
        headers: { "content-type": "text/html" },
      })
  );
  await using broken = countingServer((url) =>
    new Response("down", { status: url.pathname === "/robots.txt" ? 500 : 200 })
  );
  for (const json of [[], ["--json"]]) {
    const { stdout } = await crawl([
      ...json,
      "--follow",
      "--origin",
      broken.base,
      site.base.replace("//", "//alice:s3cret@") + "/",
      broken.base.replace("//", "//bob:s3cret@") + "/",
    ]);
    assert(!stdout.includes("s3cret"), stdout);
    assertStringIncludes(stdout, "bob:***@");
    if (json.length > 0) {
      assertStringIncludes(stdout, '"referrer":"http://alice:***@');
    }
  } // A URL that does not parse: a usage error, its password hidden too.
  const bad = await crawl(["http://alice:s3cret@exa mple/"]);
  assertEquals(bad.code, 2);
  assert(!bad.stderr.includes("s3cret"), bad.stderr);
  assertStringIncludes(bad.stderr, "alice:***@");
});

Deno.test("crawl.ts --follow reads a page's links in the charset its Content-Type names", async () => {
  await using server = countingServer((url) =>
    url.pathname === "/"
      ? new Response(
        // "café" in windows-1252: é is the one byte 0xE9.
        new Uint8Array([
          ...encoder.encode('<a href="/caf'),
          0xe9,
          ...encoder.encode('">x</a>'),
        ]),
        { headers: { "content-type": "text/html; charset=windows-1252" } },
      )
      : new Response("leaf")
  );
  const { code, stderr } = await crawl([
    "--follow",
    "--ignore-robots",
    `${server.base}/`,
  ]);
  assertEquals(code, 0, stderr);
  assertEquals([...server.hits.keys()].sort(), ["/", "/caf%C3%A9"]);
});

Deno.test("crawl.ts --follow reads a page's links in the charset its <meta> names when Content-Type names none", async () => {
  const page = (meta: string) =>
    new Uint8Array([
      ...encoder.encode(`<html><head>${meta}</head><a href="/caf`),
      0xe9, // "é" in windows-1252
      ...encoder.encode('">x</a>'),
    ]);
  await using server = countingServer((url) =>
    url.pathname === "/charset"
      ? new Response(page('<meta charset="windows-1252">'), {
        headers: { "content-type": "text/html" },
      })
      : url.pathname === "/http-equiv"
      ? new Response(
        page(
          '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">',
        ),
        { headers: { "content-type": "text/html" } },
      )
      // Neither a commented-out meta nor a description's "charset=" counts.
      : url.pathname === "/decoys"
      ? new Response(
        page(
          '<!-- <meta charset="windows-1251"> -->' +
            '<meta name="description" content="Set charset=shift_jis">' +
            "<meta charset=windows-1252>",
        ),
        { headers: { "content-type": "text/html" } },
      )
      // The header wins over the meta (here: a wrong one).
      : url.pathname === "/header"
      ? new Response(
        new Uint8Array([
          ...encoder.encode('<meta charset="windows-1252"><a href="/h'),
          0xc3,
          0xa9, // "é" in UTF-8
          ...encoder.encode('">x</a>'),
        ]),
        { headers: { "content-type": "text/html; charset=utf-8" } },
      )
      : new Response("leaf")
  );
  const { code, stderr } = await crawl([
    "--follow",
    "--ignore-robots",
    `${server.base}/charset`,
    `${server.base}/http-equiv`,
    `${server.base}/decoys`,
    `${server.base}/header`,
  ]);
  assertEquals(code, 0, stderr);
  assertEquals([...server.hits.keys()].sort(), [
    "/caf%C3%A9",
    "/charset",
    "/decoys",
    "/h%C3%A9",
    "/header",
    "/http-equiv",
  ]);
});

Deno.test("crawl.ts -A 'Mozilla/5.0 (compatible; MyBot/1.0; ...)' obeys robots.txt's MyBot group, not Mozilla's", async () => {
  const agents: (string | null)[] = [];
  await using site = countingServer((url, request) => {
    agents.push(request.headers.get("user-agent"));
    return url.pathname === "/robots.txt"
      ? new Response(
        "User-agent: Mozilla\nAllow: /\n\nUser-agent: MyBot\nDisallow: /\n",
      )
      : new Response("page");
  });
  const ua = "Mozilla/5.0 (compatible; MyBot/1.0; +http://example.com/bot)";
  const { code, stderr } = await crawl([
    "--follow",
    "-A",
    ua,
    `${site.base}/`,
  ]);
  assertEquals(code, 0, stderr);
  assertEquals([...site.hits.keys()], ["/robots.txt"]);
  assertEquals(agents, [ua]);
  assertMatch(stderr, /robots\.txt\s+1 URLs excluded/);
});

Deno.test("crawl.ts -H 'User-Agent: ...' is the crawl's agent, robots.txt's too, as -A", async () => {
  const agents: string[] = [];
  await using server = countingServer((url, request) => {
    agents.push(request.headers.get("user-agent") ?? "");
    return url.pathname === "/robots.txt"
      ? new Response("User-agent: other\nDisallow: /\n")
      : new Response('<a href="/a">a</a>', {
        headers: { "content-type": "text/html" },
      });
  });
  const args = ["--follow", `${server.base}/`];
  const { code, stdout } = await crawl([
    "-H",
    "User-Agent: other/1.0",
    ...args,
  ]);
  assertEquals([...server.hits.keys()], ["/robots.txt"], stdout);
  assertEquals(agents, ["other/1.0"]);
  assertEquals(code, 0, "kept out by robots.txt: no failure");
  const both = await crawl(["-A", "x", "-H", "user-agent: y", ...args]);
  assertEquals(both.code, 2);
  assertStringIncludes(both.stderr, "not both");
});

Deno.test("crawl.ts --warc FILE.warc writes a plain WARC, FILE.warc.gz a gzip member per record", async () => {
  await using server = countingServer(() => new Response("body"));
  await using dir = await tempDir();
  for (const name of ["plain.warc", "packed.warc.gz"]) {
    const path = `${dir.path}/${name}`;
    const { code, stderr } = await crawl(["--warc", path, `${server.base}/`]);
    assertEquals(code, 0, stderr);
    const head = (await Deno.readFile(path)).subarray(0, 8);
    if (name.endsWith(".gz")) {
      assertEquals([...head.subarray(0, 2)], [0x1f, 0x8b]);
    } else assertEquals(decoder.decode(head), "WARC/1.1");
    const index = await warcioIndex(path);
    assertEquals(index.map((r) => r["warc-type"]), [
      "warcinfo",
      "response",
      "request",
    ]);
  }
});

Deno.test("crawl.ts --cacert trusts a private CA for https, and without it the URL fails", async () => {
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert,
    key,
    onListen() {},
  }, () => new Response("secure"));
  try {
    const url = `https://localhost:${server.addr.port}/`;
    const permissions = ["--allow-net=localhost", "--allow-read"];
    const trusted = await crawl(
      ["--cacert", new URL("ca.crt", testdata).pathname, "--print-body", url],
      { permissions },
    );
    assertEquals(trusted.code, 0, trusted.stderr);
    assertStringIncludes(trusted.stdout, "secure");
    const untrusted = await crawl([url], { permissions });
    assertEquals(untrusted.code, 1);
    assertMatch(untrusted.stdout, /^ERR /m);
  } finally {
    await server.shutdown();
  }
});

Deno.test("crawl.ts --follow sends -H Authorization and Cookie only to the origins it named: not to one a seed redirects to, nor to links found there", async () => {
  const seen: Array<
    { host: string; path: string; auth: string | null; cookie: string | null }
  > = [];
  const record = (host: string) => (request: Request) => {
    seen.push({
      host,
      path: new URL(request.url).pathname,
      auth: request.headers.get("authorization"),
      cookie: request.headers.get("cookie"),
    });
  };
  const other = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      record("other")(request);
      const path = new URL(request.url).pathname;
      return path === "/robots.txt"
        ? new Response("", { status: 404 })
        : new Response('<a href="/page">p</a>', {
          headers: { "content-type": "text/html" },
        });
    },
  );
  const otherBase = `http://127.0.0.1:${other.addr.port}`;
  const seed = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      record("seed")(request);
      const path = new URL(request.url).pathname;
      if (path === "/robots.txt") return new Response("", { status: 404 });
      return path === "/"
        ? Response.redirect(`${otherBase}/landing`, 302)
        : new Response("x");
    },
  );
  const seedBase = `http://127.0.0.1:${seed.addr.port}`;
  try {
    const credentials = [
      "-H",
      "Authorization: Bearer SECRET",
      "-H",
      "Cookie: session=SECRET",
    ];
    const { code } = await crawl(["--follow", ...credentials, `${seedBase}/`]);
    assertEquals(code, 0);
    const pages = seen.filter((s) => s.path !== "/robots.txt");
    assertEquals(
      pages.map((s) => [s.host, s.path, s.auth, s.cookie]),
      [
        ["seed", "/", "Bearer SECRET", "session=SECRET"],
        // Before: the secret went here, and to /page.
        ["other", "/landing", null, null],
        ["other", "/page", null, null],
      ],
    );
    // Named with --origin, the other origin gets them.
    seen.length = 0;
    await crawl([
      "--follow",
      "--origin",
      otherBase,
      ...credentials,
      `${seedBase}/`,
    ]);
    assert(
      seen.some((s) => s.path === "/landing" && s.auth === "Bearer SECRET"),
      JSON.stringify(seen),
    );
  } finally {
    await seed.shutdown();
    await other.shutdown();
  }
});

Deno.test("crawl.ts --follow sends a seed URL's user name and password to its links and same-origin redirects, fetching the seed's page once", async () => {
  const auths: string[] = [];
  await using site = countingServer((url, request) => {
    const auth = request.headers.get("authorization");
    if (url.pathname === "/robots.txt") {
      return new Response("", { status: 404 });
    }
    auths.push(`${url.pathname} ${auth}`);
    if (auth === null) {
      return new Response("", {
        status: 401,
        headers: { "www-authenticate": 'Basic realm="x"' },
      });
    }
    if (url.pathname === "/r") return Response.redirect(`${url.origin}/final`);
    return new Response(
      url.pathname === "/"
        ? '<a href="/">self</a><a href="/page">p</a><a href="/r">r</a>'
        : "leaf",
      { headers: { "content-type": "text/html" } },
    );
  });
  const { code, stderr } = await crawl([
    "--follow",
    site.base.replace("//", "//alice:s%C3%A9cret@") + "/",
  ]);
  assertEquals(code, 0, stderr);
  // alice:s\u00e9cret as UTF-8; before: "/" a second time and the others
  // without it (401s).
  const basic = "Basic YWxpY2U6c8OpY3JldA==";
  assertEquals(auths.sort(), [
    `/ ${basic}`,
    `/final ${basic}`,
    `/page ${basic}`,
    `/r ${basic}`,
  ]);
});

Deno.test("crawl.ts --follow sends each seed with its own user name and password, not an earlier seed's of its origin", async () => {
  const auths: string[] = [];
  await using site = countingServer((url, request) => {
    if (url.pathname === "/robots.txt") {
      return new Response("", { status: 404 });
    }
    const auth = request.headers.get("authorization");
    auths.push(`${url.pathname} ${auth && atob(auth.slice("Basic ".length))}`);
    return new Response(url.pathname === "/" ? '<a href="/page">p</a>' : "", {
      headers: { "content-type": "text/html" },
    });
  });
  const { code, stderr } = await crawl([
    "--follow",
    site.base.replace("//", "//alice:one@") + "/",
    site.base.replace("//", "//bob:two@") + "/private",
  ]);
  assertEquals(code, 0, stderr);
  // Before: /private went as alice, the first seed's.
  assertEquals(auths.sort(), [
    "/ alice:one",
    "/page alice:one",
    "/private bob:two",
  ]);
});

Deno.test("crawl.ts --max-bytes fails a body past it, a gzip of gzips too, and saves no file of it; the other URLs go on", async () => {
  // 8 MiB of zeros, gzipped twice: a few KB on the wire.
  const bomb = gzipSync(gzipSync(new Uint8Array(8 << 20)), { level: 9 });
  await using site = countingServer((url) =>
    url.pathname === "/bomb"
      ? new Response(bomb, { headers: { "content-encoding": "gzip, gzip" } })
      : new Response("fine")
  );
  await using dir = await tempDir();
  const { code, stdout } = await crawl([
    "--json",
    "--max-bytes",
    "1000000",
    "-o",
    dir.path,
    `${site.base}/bomb`,
    `${site.base}/fine`,
  ]);
  assertEquals(code, 1);
  // In the order they end.
  const lines = stdout.trim().split("\n").map((line) => JSON.parse(line));
  const bombed = lines.find((line) => line.url.endsWith("/bomb"));
  const fine = lines.find((line) => line.url.endsWith("/fine"));
  assertEquals(bombed.ok, false);
  assertEquals(bombed.error.name, "HttpParseError");
  assertMatch(bombed.error.message, /1000000/);
  assertEquals(fine.ok, true);
  const saved: string[] = [];
  for await (const name of walkNames(dir.path)) saved.push(name);
  assertEquals(saved.filter((name) => name.includes("bomb")), []);
  assert(saved.some((name) => name.endsWith("fine")), saved.join());
});

Deno.test("crawl.ts --max-bytes takes a non-negative integer, 0 for no limit, and says so in --help", async () => {
  const help = await crawl(["--help"]);
  assertMatch(help.stdout, /--max-bytes N\s+largest body taken/);
  assertMatch(help.stdout, /default 1073741824/);
  const bad = await crawl(["--max-bytes=1.5", "http://127.0.0.1:9/"]);
  assertEquals(bad.code, 2);
  assertMatch(bad.stderr, /--max-bytes must be an integer >= 0/);
  await using site = countingServer(() => new Response("x".repeat(5000)));
  const none = await crawl(["--json", "--max-bytes", "0", `${site.base}/`]);
  assertEquals(JSON.parse(none.stdout).bytes, 5000);
});

Deno.test("crawl.ts -o saves 2xx bodies only: a 404 at /p.html/ leaves p.html the 200 page, and no error page is saved", async () => {
  await using server = countingServer(async (url) => {
    const html = (text: string, status = 200) =>
      new Response(text, { status, headers: { "content-type": "text/html" } });
    switch (url.pathname) {
      case "/robots.txt":
        return new Response("", { status: 404 });
      case "/":
        return html('<a href="/p.html">p</a> <a href="/later">later</a>');
      case "/p.html":
        return html("<p>the page</p>");
      case "/later":
        // Found after /p.html was saved.
        await new Promise((resolve) => setTimeout(resolve, 200));
        return html('<a href="/p.html/">typo</a> <a href="/gone">gone</a>');
    }
    return html('<p>not found</p><a href="/from-404">x</a>', 404);
  });
  await using dir = await tempDir();
  const out = await crawl(["--follow", "-o", dir.path, `${server.base}/`]);
  assertEquals(out.code, 0, out.stderr);
  const site = `${dir.path}/${urlToPath(`${server.base}/`).split("/")[0]}`;
  // Before: p.html moved to p.html/index.html, the 404 page written over it.
  assertEquals(await Deno.readTextFile(`${site}/p.html`), "<p>the page</p>");
  const saved: string[] = [];
  for await (const name of walkNames(dir.path)) saved.push(name);
  assertEquals(saved.includes("gone"), false, saved.join());
  // An error page's links are not followed either.
  assertEquals(server.hits.get("/from-404"), undefined);
  assertMatch(out.stderr, /files\s+3 saved/);
});

Deno.test("crawl.ts --follow follows no link of a page whose robots meta tag or X-Robots-Tag says nofollow (or none)", async () => {
  await using server = countingServer((url) => {
    const html = (text: string, headers: Record<string, string> = {}) =>
      new Response(text, {
        headers: { "content-type": "text/html", ...headers },
      });
    switch (url.pathname) {
      case "/robots.txt":
        return new Response("", { status: 404 });
      case "/":
        return html(
          '<a href="/meta">m</a><a href="/meta-none">n</a><a href="/header">h</a><a href="/other-bot">o</a><a href="/us">u</a><a href="/other-list">l</a>',
        );
      case "/meta":
        return html(
          '<meta name="Robots" content="noindex, NOFOLLOW"><a href="/m1">x</a>',
        );
      case "/meta-none":
        return html('<a href="/n1">x</a><meta name="robots" content="none">');
      case "/header":
        return html('<a href="/h1">x</a>', { "x-robots-tag": "nofollow" });
      case "/other-bot":
        // For one crawler by name: not this one.
        return html(
          '<meta name="googlebot" content="nofollow"><a href="/o1">x</a>',
          {
            "x-robots-tag": "googlebot: nofollow",
          },
        );
      case "/us":
        // This crawler's robots.txt token by name.
        return html(
          '<meta name="selectors-crawl" content="nofollow"><a href="/u1">x</a>',
        );
      case "/other-list": {
        // Two fields, one for everyone: joined, the stricter reading holds.
        const headers = new Headers({ "content-type": "text/html" });
        headers.append("x-robots-tag", "googlebot: noindex");
        headers.append("x-robots-tag", "nofollow");
        return new Response('<a href="/l1">x</a>', { headers });
      }
    }
    return html("leaf");
  });
  const out = await crawl(["--follow", `${server.base}/`]);
  assertEquals(out.code, 0, out.stderr);
  for (const path of ["/meta", "/meta-none", "/header", "/other-bot"]) {
    assertEquals(server.hits.get(path), 1, path);
  }
  for (const path of ["/m1", "/n1", "/h1", "/u1"]) {
    assertEquals(server.hits.get(path), undefined, path);
  }
  assertEquals(server.hits.get("/o1"), 1);
  assertEquals(server.hits.get("/l1"), undefined);
});

Deno.test("crawl.ts -o saves a 2xx body whose head ends its lines with a bare LF, as the engine reads it; not an interim 103's", async () => {
  await using server = rawServer(async ({ conn, path }) => {
    await writeSplit(
      conn,
      path === "/lf"
        ? "HTTP/1.1 200 OK\nContent-Length: 5\n\nhello"
        : "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhints",
    );
    return "close";
  });
  await using dir = await tempDir();
  const out = await crawl([
    "--json",
    "-o",
    dir.path,
    server.url("/lf"),
    server.url("/hints"),
  ]);
  assertEquals(out.code, 0, out.stderr);
  const files = Object.fromEntries(
    out.stdout.trim().split("\n").map((line) => JSON.parse(line)).map((r) => [
      new URL(r.url).pathname,
      r.file,
    ]),
  );
  // Before the fix: the LF head read as unfinished, its body not saved.
  assertEquals(await Deno.readTextFile(files["/lf"]), "hello");
  assertEquals(await Deno.readTextFile(files["/hints"]), "hints");
});

Deno.test("crawl.ts --follow follows a 300 Multiple Choices' Location, as wget and curl -L do", async () => {
  await using server = countingServer((url) => {
    switch (url.pathname) {
      case "/robots.txt":
        return new Response("", { status: 404 });
      case "/c300":
        return new Response("choices", {
          status: 300,
          headers: { location: "/choice1" },
        });
    }
    return new Response("chosen");
  });
  const out = await crawl(["--follow", `${server.base}/c300`]);
  assertEquals(out.code, 0, out.stderr);
  assertEquals(server.hits.get("/choice1"), 1);
});

Deno.test("crawl.ts --follow fails a 21st redirect in a row, as fetchAll does, where it stopped in silence", async () => {
  await using server = countingServer((url) => {
    const hop = /^\/chain\/(\d+)$/.exec(url.pathname);
    if (hop !== null) {
      return new Response(null, {
        status: 302,
        headers: { location: `/chain/${Number(hop[1]) + 1}` },
      });
    }
    return new Response("", { status: 404 });
  });
  const out = await crawl(["--follow", "--json", `${server.base}/chain/0`]);
  assertEquals(out.code, 1, out.stderr);
  // The seed and 20 redirects followed, as fetch follows them.
  assertEquals(server.hits.get("/chain/20"), 1);
  assertEquals(server.hits.get("/chain/21"), undefined);
  const last = JSON.parse(out.stdout.trim().split("\n").at(-1)!);
  assertEquals(last.url, `${server.base}/chain/21`);
  assertEquals(last.ok, false);
  assertEquals(last.referrer, `${server.base}/chain/20`);
  assertMatch(last.error.message, /more than 20 redirects in a row/);
});

Deno.test("crawl.ts --follow fails no 21st redirect it would not have followed anyway: back to a URL fetched, or off the crawl's origins", async () => {
  await using server = countingServer((url) => {
    const hop = /^\/(back|away)\/(\d+)$/.exec(url.pathname);
    if (hop !== null) {
      const next = Number(hop[2]) + 1;
      const location = next < 21
        ? `/${hop[1]}/${next}`
        : hop[1] === "back"
        ? "/page"
        : "http://127.0.0.2:9/elsewhere";
      return new Response(null, { status: 302, headers: { location } });
    }
    return url.pathname === "/page"
      ? new Response('<a href="/back/0">b</a><a href="/away/0">a</a>', {
        headers: { "content-type": "text/html" },
      })
      : new Response("", { status: 404 });
  });
  const out = await crawl(["--follow", "--json", `${server.base}/page`]);
  assertEquals(out.code, 0, out.stderr);
  assertEquals(server.hits.get("/back/20"), 1);
  assertEquals(server.hits.get("/away/20"), 1);
  assertEquals(server.hits.get("/page"), 1);
  assertEquals(out.stdout.includes('"ok":false'), false, out.stdout);
});
