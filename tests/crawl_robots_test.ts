/**
 * Tests of the crawl CLI's robots.txt cache (examples/crawl/robots.ts): origins on
 * 127.0.0.1 serving robots.txt with each status RFC 9309 distinguishes, redirect
 * chains followed by a fetch function as the engine will, and the rule semantics of
 * RFC 9309 §2.2 on the RFC's own examples.
 *
 * @module
 */
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import {
  productToken,
  RobotsCache,
  type RobotsFetcher,
} from "../examples/crawl/robots.ts";

/** GET with up to 5 redirects followed (any origin), as the CLI's engine fetch does. */
const fetchRobots: RobotsFetcher = async (url) => {
  let target = url;
  for (let redirects = 0;; redirects++) {
    const response = await fetch(target, {
      redirect: "manual",
      signal: AbortSignal.timeout(5_000),
    });
    const location = response.headers.get("location");
    if (
      response.status >= 300 && response.status <= 399 && location &&
      redirects < 5
    ) {
      await response.body?.cancel();
      target = new URL(location, target);
      continue;
    }
    return {
      status: response.status,
      body: new Uint8Array(await response.arrayBuffer()),
    };
  }
};

/** One origin on 127.0.0.1 answering with `handler`, counting robots.txt requests. */
function origin(handler: (path: string) => Response) {
  const hits: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const path = new URL(request.url).pathname;
      hits.push(path);
      return handler(path);
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}`;
  return { url, hits, server, [Symbol.asyncDispose]: () => server.shutdown() };
}

const text = (body: string, status = 200) => new Response(body, { status });

Deno.test("RobotsCache.isAllowed() fetches an origin's robots.txt once for concurrent questions", async () => {
  await using site = origin(() =>
    text("User-agent: *\nDisallow: /private/\nAllow: /private/ok")
  );
  const robots = new RobotsCache(fetchRobots, { userAgent: "testbot" });
  const paths = [
    "/",
    "/a",
    "/private/",
    "/private/x",
    "/private/ok",
    "/public/private/",
  ];
  const answers = await Promise.all(
    paths.map((p) => robots.isAllowed(site.url + p)),
  );
  assertEquals(answers, [true, true, false, false, true, true]);
  assertEquals(site.hits, ["/robots.txt"]);
  assertEquals(await robots.isAllowed(site.url + "/private/y?q"), false);
  assertEquals(site.hits.length, 1);
  assertEquals((await robots.rules(site.url)).outcome, "parsed");
});

Deno.test("RobotsCache.isAllowed() allows everything when robots.txt is 4xx but 429", async () => {
  for (const status of [400, 401, 403, 404, 410, 451]) {
    await using site = origin(() => text("User-agent: *\nDisallow: /", status));
    const robots = new RobotsCache(fetchRobots);
    assertEquals(
      await robots.isAllowed(site.url + "/anything"),
      true,
      `status ${status}`,
    );
    assertEquals(await robots.rules(site.url), {
      outcome: "unavailable",
      status,
      error: undefined,
    });
  }
});

Deno.test("RobotsCache.isAllowed() disallows everything when robots.txt is 5xx or 429", async () => {
  for (const status of [429, 500, 502, 503, 504]) {
    await using site = origin(() => text("User-agent: *\nAllow: /", status));
    const robots = new RobotsCache(fetchRobots);
    assertEquals(
      await robots.isAllowed(site.url + "/"),
      false,
      `status ${status}`,
    );
    // robots.txt itself stays allowed, so a crawler may try it again.
    assertEquals(await robots.isAllowed(site.url + "/robots.txt"), true);
    assertEquals((await robots.rules(site.url)).outcome, "unreachable");
  }
});

Deno.test("RobotsCache.isAllowed() disallows everything when the origin is unreachable", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const robots = new RobotsCache(fetchRobots);
  assertEquals(await robots.isAllowed(`http://127.0.0.1:${port}/page`), false);
  const rules = await robots.rules(`http://127.0.0.1:${port}`);
  assertEquals(rules.outcome, "unreachable");
  assertEquals(rules.status, undefined);
  assert(rules.error instanceof TypeError, String(rules.error));
});

Deno.test("RobotsCache.isAllowed() applies robots.txt reached through 5 redirects, even to another origin", async () => {
  await using target = origin(() => text("User-agent: *\nDisallow: /no"));
  await using site = origin((path) => {
    const hop = path === "/robots.txt" ? 1 : Number(path.slice(1)) + 1;
    if (hop === 5) return Response.redirect(target.url + "/robots.txt", 301);
    return new Response(null, {
      status: 302,
      headers: { location: `/${hop}` },
    });
  });
  const robots = new RobotsCache(fetchRobots);
  assertEquals(await robots.isAllowed(site.url + "/no"), false);
  assertEquals(await robots.isAllowed(site.url + "/yes"), true);
  assertEquals(site.hits, ["/robots.txt", "/1", "/2", "/3", "/4"]);
  assertEquals(target.hits, ["/robots.txt"]);
});

Deno.test("RobotsCache.isAllowed() allows everything after more than 5 redirects", async () => {
  await using site = origin((path) => {
    const hop = path === "/robots.txt" ? 1 : Number(path.slice(1)) + 1;
    if (hop > 10) return text("User-agent: *\nDisallow: /");
    return new Response(null, {
      status: 307,
      headers: { location: `/${hop}` },
    });
  });
  const robots = new RobotsCache(fetchRobots);
  assertEquals(await robots.isAllowed(site.url + "/x"), true);
  assertEquals(await robots.rules(site.url), {
    outcome: "unavailable",
    status: 307,
    error: undefined,
  });
  assertEquals(site.hits.length, 6);
});

Deno.test("RobotsCache.crawlDelay() gives the matching group's Crawl-delay in ms", async () => {
  await using site = origin(() =>
    text(
      "User-agent: slowbot\nCrawl-delay: 2.5\nDisallow: /s\n\n" +
        // Only a rule ends a run of agents: Crawl-delay alone would not.
        "User-agent: *\nCrawl-delay: 1\nDisallow: /s\n\n" +
        "User-agent: nodelay\nDisallow:\n",
    )
  );
  const robots = new RobotsCache(fetchRobots, { userAgent: "SlowBot" });
  assertEquals(await robots.crawlDelay(site.url), 2500);
  assertEquals(
    await robots.crawlDelay(site.url + "/any/path", "otherbot"),
    1000,
  );
  assertEquals(await robots.crawlDelay(site.url, "nodelay"), undefined);
  assertEquals(site.hits.length, 1);
  await using missing = origin(() => text("", 404));
  assertEquals(await robots.crawlDelay(missing.url), undefined);
});

Deno.test("RobotsCache.isAllowed() fetches robots.txt again once maxAge has passed", async () => {
  let body = "User-agent: *\nDisallow: /a";
  await using site = origin(() => text(body));
  let now = 1_000_000;
  const robots = new RobotsCache(fetchRobots, {
    maxAge: 60_000,
    now: () => now,
  });
  assertEquals(await robots.isAllowed(site.url + "/a"), false);
  body = "User-agent: *\nDisallow: /b";
  now += 59_999;
  assertEquals(await robots.isAllowed(site.url + "/a"), false);
  assertEquals(site.hits.length, 1);
  now += 1;
  assertEquals(await robots.isAllowed(site.url + "/a"), true);
  assertEquals(await robots.isAllowed(site.url + "/b"), false);
  assertEquals(site.hits.length, 2);
});

Deno.test("RobotsCache counts maxAge on the monotonic clock: a wall clock stepped back an hour does not keep robots.txt longer", async () => {
  await using site = origin(() => text("User-agent: *\nDisallow: /a"));
  const realNow = Date.now;
  let step = 0;
  // Before the cache exists: one that took Date.now would keep this one.
  Date.now = () => realNow() + step;
  try {
    const robots = new RobotsCache(fetchRobots, { maxAge: 100 });
    assertEquals(await robots.isAllowed(site.url + "/a"), false);
    step = -3_600_000;
    await new Promise((resolve) => setTimeout(resolve, 150));
    assertEquals(await robots.isAllowed(site.url + "/a"), false);
  } finally {
    Date.now = realNow;
  }
  assertEquals(site.hits.length, 2);
});

/** A cache over a fixed robots.txt body, without a server. */
function fixed(body: string | Uint8Array, options = {}) {
  return new RobotsCache(() => Promise.resolve({ status: 200, body }), options);
}

Deno.test("RobotsCache.isAllowed() follows RFC 9309 matching: longest rule, Allow on a tie, * and $", async () => {
  // RFC 9309 §2.2.2 and §5.2 examples.
  const robots = fixed(
    [
      "User-Agent: *",
      "Disallow: *.gif$",
      "Disallow: /example/",
      "Allow: /publications/",
      "",
      "User-Agent: foobot",
      "Disallow:/",
      "Allow:/example/page.html",
      "Allow:/example/allowed.gif",
      "",
      "User-Agent: barbot",
      "User-Agent: bazbot",
      "Disallow: /example/page.html",
      "",
      "User-Agent: quxbot",
      "# no rules: all allowed",
      "",
      "User-agent: tiebot",
      "Allow: /same",
      "Disallow: /same",
      "Disallow: /fish*.php",
    ].join("\n"),
  );
  const base = "http://example.com";
  const cases: [string, string, boolean][] = [
    ["anybot", "/example/x", false],
    ["anybot", "/images/a.gif", false],
    ["anybot", "/images/a.gif?x", true],
    ["anybot", "/publications/", true],
    ["FooBot", "/", false],
    ["foobot", "/example/page.html", true],
    ["foobot", "/example/allowed.gif", true],
    ["foobot", "/example/other.gif", false],
    ["barbot", "/example/page.html", false],
    ["bazbot", "/example/page.html", false],
    ["bazbot", "/example/other.gif", true],
    ["quxbot", "/example/", true],
    ["tiebot", "/same", true],
    ["tiebot", "/fish.php", false],
    ["tiebot", "/fishheads/catfish.php?parameters", false],
    ["tiebot", "/Fish.PHP", true],
  ];
  for (const [userAgent, path, allowed] of cases) {
    assertEquals(
      await robots.isAllowed(base + path, userAgent),
      allowed,
      `${userAgent} ${path}`,
    );
  }
});

Deno.test("RobotsCache.isAllowed() compares rules and paths with unreserved characters percent-decoded, as RFC 9309 §2.2.2 says", async () => {
  const robots = fixed(
    [
      "User-agent: *",
      "Disallow: /%7Ejoe/ # a comment",
      "disallow:/a%2db",
      "Disallow: /path%2Fsep",
      "Allow: /%7Ejoe/public%2fpage",
    ].join("\n"),
  );
  const base = "http://example.com";
  const cases: [string, boolean][] = [
    ["/~joe/index.html", false],
    ["/%7ejoe/index.html", false],
    ["/%7Ejoe/index.html", false],
    ["/a-b", false],
    ["/a%2Db", false],
    // %2F is no unreserved character: it stays an escape, apart from "/".
    ["/path%2fsep", false],
    ["/path/sep", true],
    ["/~joe/public%2Fpage", true],
    ["/joe/", true],
  ];
  for (const [path, allowed] of cases) {
    assertEquals(await robots.isAllowed(base + path), allowed, path);
  }
});

Deno.test("RobotsCache.isAllowed() matches rules holding [ ] | ^ { } ` ' whether the URL parser left them literal or encoded them", async () => {
  await using site = origin(() =>
    text(
      [
        "User-agent: *",
        "Disallow: /*?f[",
        "Disallow: /a|b",
        "Disallow: /x[1]",
        "Disallow: /c^d",
        "Disallow: /{y}",
        "Disallow: /*?q={x}",
        "Disallow: /*?t=`",
        "Disallow: /p'q",
        "Disallow: /*?s='",
        "Disallow: /caf\u00e9",
      ].join("\n"),
    )
  );
  const robots = new RobotsCache(fetchRobots, { userAgent: "testbot" });
  // Links as a page writes them, resolved as the crawl resolves them.
  const cases: [string, boolean][] = [
    ["/search?f[0]=x", false],
    ["/search?f%5B0%5D=x", false],
    ["/search?g[0]=x", true],
    ["/a|b", false],
    ["/a%7cb", false],
    ["/x[1]", false],
    ["/x[2]", true],
    ["/c^d", false],
    ["/{y}", false], // the path gets %7By%7D
    ["/s?q={x}", false], // the query keeps {x}
    ["/s?t=`", false],
    ["/p'q", false],
    ["/s?s='1'", false], // the query gets %27
    ["/caf\u00e9", false],
    ["/caf%C3%A9", false],
    // An escape of a reserved character keeps its meaning.
    ["/a%2Fb", true],
  ];
  for (const [href, allowed] of cases) {
    const url = new URL(href, site.url).href;
    assertEquals(await robots.isAllowed(url), allowed, `${href} (${url})`);
  }
  assertEquals(site.hits, ["/robots.txt"]);
});

Deno.test("RobotsCache.isAllowed() reads a User-agent value's leading [A-Za-z_-] as its token, and lines between User-agent lines do not split their group", async () => {
  await using site = origin(() =>
    text(
      [
        "User-agent: selectors-crawl (+http://example.com/bot)",
        "Disallow: /private",
        "",
        "User-agent: firstbot",
        "Sitemap: http://example.com/sitemap.xml",
        "Crawl-delay: 3",
        "Host: example.com",
        "User-agent: secondbot/2.0",
        "Disallow: /both",
        "",
        "User-agent: *",
        "Disallow: /all",
      ].join("\n"),
    )
  );
  const robots = new RobotsCache(fetchRobots, {
    userAgent: "selectors-crawl",
  });
  assertEquals(await robots.isAllowed(site.url + "/private"), false);
  assertEquals(await robots.isAllowed(site.url + "/all"), true);
  for (const agent of ["firstbot", "secondbot", "SecondBot/1.0"]) {
    assertEquals(await robots.isAllowed(site.url + "/both", agent), false);
    assertEquals(await robots.isAllowed(site.url + "/all", agent), true);
    assertEquals(await robots.crawlDelay(site.url, agent), 3000);
  }
  assertEquals(await robots.isAllowed(site.url + "/all", "otherbot"), false);
});

Deno.test("RobotsCache.isAllowed() reads only maxBytes of a robots.txt, after a BOM", async () => {
  const body = new TextEncoder().encode(
    "\uFEFFUser-agent: *\nDisallow: /first\n" + "#".repeat(100) +
      "\nDisallow: /late\n",
  );
  const short = fixed(body, { maxBytes: 60 });
  assertEquals(await short.isAllowed("http://a.test/first"), false);
  assertEquals(await short.isAllowed("http://a.test/late"), true);
  const full = fixed(body);
  assertEquals(await full.isAllowed("http://a.test/late"), false);
});

Deno.test("RobotsCache.isAllowed() drops the line a maxBytes cut leaves partial, and keeps the last line of a file of exactly maxBytes", async () => {
  const body = "User-agent: *\nDisallow: /tmp/x\nDisallow: /private-area\n";
  // Cut inside the last rule: `Disallow: /` would refuse everything.
  const robots = fixed(body, { maxBytes: body.indexOf("private") });
  assertEquals(await robots.isAllowed("http://a.test/"), true);
  assertEquals(await robots.isAllowed("http://a.test/tmp/x"), false);
  // Whole, with no final line break: nothing was cut.
  const exact = "User-agent: *\nDisallow: /private";
  const whole = fixed(exact, { maxBytes: exact.length });
  assertEquals(await whole.isAllowed("http://a.test/private"), false);
});

Deno.test("RobotsCache.isAllowed() reads RFC 9309's %2A and %24 as the characters, a $ before the end as one, a # comment to its end, and a Latin-1 rule's bytes as they are", async () => {
  const latin1 = Uint8Array.from(
    "User-agent: *\nDisallow: /caf\xE9\n# Disallow: /page\u2028x\n" +
      "Disallow: /a$b\nDisallow: /*$sid=\n" +
      "Disallow: /path/file-with-a-%2A.html\nDisallow: /path/foo-%24\n" +
      "Disallow: /private # a note\u2028more\n",
    (c) => c.charCodeAt(0) & 0xff,
  );
  const robots = fixed(latin1);
  for (
    const [path, allowed] of [
      ["/caf%E9", false],
      ["/caf%C3%A9", true],
      ["/page", true],
      ["/path/file-with-a-*.html", false],
      ["/path/file-with-a-x.html", true],
      ["/path/foo-$", false],
      ["/path/foo-", true],
      ["/private", false],
      ["/a$b", false],
      ["/a", true],
      ["/x?$sid=1", false],
    ] as const
  ) {
    assertEquals(await robots.isAllowed(`http://a.test${path}`), allowed, path);
  }
});

Deno.test("RobotsCache.isAllowed() checks many wildcard rules against a long path in about the time of as many plain ones", async () => {
  const rules = (rule: (i: number) => string) =>
    "User-agent: *\n" +
    Array.from({ length: 8_000 }, (_, i) => `Disallow: ${rule(i)}\n`).join("");
  const wild = fixed(rules((i) => `/*a*a*a*a*a*a*a*a*b${i}`));
  const plain = fixed(rules((i) => `/plain/${i}/`));
  const url = "http://a.test/" + "a".repeat(2_000);
  // Parsed first, then timed.
  assertEquals(await wild.isAllowed(url), true);
  assertEquals(await plain.isAllowed(url), true);
  const time = async (robots: RobotsCache) => {
    const started = performance.now();
    for (let i = 0; i < 5; i++) await robots.isAllowed(url);
    return performance.now() - started;
  };
  const ratio = await time(wild) / Math.max(1, await time(plain));
  assert(ratio < 50, `wildcard rules took ${ratio.toFixed(0)}x the plain ones`);
  assertEquals(await wild.isAllowed(url + "b7"), false);
  assertEquals(await wild.isAllowed("http://a.test/ab7"), true);
});

Deno.test("productToken() takes a User-Agent's leading name, or a browser-style one's name after 'compatible;'", () => {
  const cases: [string, string][] = [
    ["selectors-crawl/0.2", "selectors-crawl"],
    ["MyBot/1.0 (+http://a.test/bot)", "mybot"],
    ["Mozilla/5.0 (compatible; MyBot/1.0; +http://a.test/bot)", "mybot"],
    [
      "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; +http://www.google.com/bot.html) Chrome/120.0.0.0 Safari/537.36",
      "googlebot",
    ],
    ["Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", "mozilla"],
    ["/1.0", "*"],
  ];
  for (const [userAgent, token] of cases) {
    assertEquals(productToken(userAgent), token, userAgent);
  }
});

Deno.test("RobotsCache.isAllowed() rejects a non-http(s) URL with TypeError", async () => {
  const robots = fixed("");
  await assertRejects(
    () => robots.isAllowed("ftp://a.test/"),
    TypeError,
    "'ftp://a.test/'",
  );
  await assertRejects(
    () => robots.crawlDelay("nope"),
    TypeError,
    "not an http(s) URL",
  );
  assertThrows(() => fixed("", { maxAge: -1 }), RangeError, "maxAge");
});

Deno.test("RobotsCache.isAllowed() lets Allow win a tie of equal-length rules whichever comes first (RFC 9309 §2.2.2)", async () => {
  const robots = fixed(
    "User-agent: *\nDisallow: /same\nAllow: /same\nDisallow: /x/$\nAllow: /x/$\n",
  );
  assertEquals(
    await robots.isAllowed("http://example.com/same", "anybot"),
    true,
  );
  assertEquals(await robots.isAllowed("http://example.com/x/", "anybot"), true);
});

Deno.test("RobotsCache.isAllowed() reads an empty Disallow as no rule: the common allow-all robots.txt allows every path", async () => {
  const robots = fixed(
    "User-agent: *\nDisallow:\n\nUser-agent: strictbot\nDisallow:\nDisallow: /private\n",
  );
  for (const path of ["/", "/index.html", "/a/b?c=d"]) {
    assertEquals(
      await robots.isAllowed(`http://example.com${path}`, "anybot"),
      true,
      path,
    );
  }
  assertEquals(
    await robots.isAllowed("http://example.com/public", "strictbot"),
    true,
  );
  assertEquals(
    await robots.isAllowed("http://example.com/private/1", "strictbot"),
    false,
  );
});

Deno.test("RobotsCache.crawlDelay() takes a group's first Crawl-delay, not a later one", async () => {
  const robots = fixed(
    "User-agent: *\nCrawl-delay: 2\nCrawl-delay: 30\nDisallow: /x\n",
  );
  assertEquals(await robots.crawlDelay("http://example.com/", "anybot"), 2000);
});

Deno.test("RobotsCache.isAllowed() reads a final $ as the path's end, in a rule with or without a *", async () => {
  const robots = fixed("User-agent: *\nDisallow: /exact$\nDisallow: /a*ab$\n");
  const at = (path: string) =>
    robots.isAllowed(`http://example.com${path}`, "anybot");
  assertEquals(await at("/exact"), false);
  assertEquals(await at("/exact.html"), true);
  assertEquals(await at("/exact/more"), true);
  assertEquals(await at("/a-ab"), false);
  // "/a" then "ab" at the end: the two pieces may not overlap.
  assertEquals(await at("/ab"), true);
});
