/**
 * Tests of the crawl CLI's link extraction and frontier (examples/crawl/links.ts,
 * examples/crawl/frontier.ts): a real rustdoc page checked against Python's
 * html.parser as an independent tokenizer, a table of tricky HTML fed whole and
 * split at every byte, and the frontier driven as the CLI will drive it.
 *
 * @module
 */
import { assert, assertEquals, assertLess, assertThrows } from "@std/assert";
import { gunzipSync } from "node:zlib";
import {
  extractLinks,
  LinkExtractor,
  normalizeUrl,
  robotsNofollow,
} from "../examples/crawl/links.ts";
import { sameOriginLinks } from "../examples/distributed/_links.ts";
import { Frontier, type FrontierEntry } from "../examples/crawl/frontier.ts";
import { redirectLocation } from "../mod.ts";
import { splitEvery } from "./_net.ts";

// Gzipped so that it stays byte for byte what rustdoc wrote (deno fmt formats .html).
const PAGE = new URL("./testdata/rust_std_tcpstream.html.gz", import.meta.url);
const PAGE_URL = "https://doc.rust-lang.org/std/net/struct.TcpStream.html";

/** (tag, raw attribute value) pairs found by Python's html.parser, with the first base. */
async function pythonLinks(
  path: string,
): Promise<{ base: string | null; raw: string[] }> {
  const script = `
import html.parser, json, sys
ATTRS = {"a": "href", "link": "href", "area": "href", "iframe": "src", "frame": "src"}
class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.base = None; self.raw = []; self.base_seen = False
    def handle_starttag(self, tag, attrs):
        d = {}
        for k, v in attrs:
            d.setdefault(k, v)
        if tag == "base" and d.get("href") is not None and not self.base_seen:
            self.base_seen = True; self.base = d["href"]
        elif tag in ATTRS and d.get(ATTRS[tag]) is not None:
            self.raw.append(d[ATTRS[tag]])
p = P(); p.feed(open(sys.argv[1], encoding="utf-8").read()); p.close()
print(json.dumps({"base": p.base, "raw": p.raw}))
`;
  const output = await new Deno.Command("python3", {
    args: ["-c", script, path],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  assert(output.success, new TextDecoder().decode(output.stderr));
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

Deno.test("extractLinks() finds on a real rustdoc page what Python's html.parser finds", async () => {
  const bytes = new Uint8Array(gunzipSync(await Deno.readFile(PAGE)));
  const html = await Deno.makeTempFile({ suffix: ".html" });
  await Deno.writeFile(html, bytes);
  const oracle = await pythonLinks(html).finally(() => Deno.remove(html));
  assertEquals(oracle.base, null);
  const expected = oracle.raw
    .map((href) => normalizeUrl(href, PAGE_URL))
    .filter((url) => url !== null);
  assert(expected.length > 800, `only ${expected.length} links in the fixture`);
  // Whole, in 4 KiB pieces (as a socket delivers), and in 7-byte pieces.
  for (const size of [bytes.length, 4096, 7]) {
    const links = await Array.fromAsync(
      extractLinks(splitEvery(bytes, size), PAGE_URL),
    );
    assertEquals(links, expected);
  }
  const links = new Set(expected);
  assert(links.has("https://doc.rust-lang.org/std/io/trait.Read.html"));
  assert(links.has("https://doc.rust-lang.org/std/net/struct.TcpStream.html"));
  for (const link of links) assert(!link.includes("#"), link);
});

/** HTML, its document URL, and the links it must give, in order. */
const CASES: { name: string; html: string; url?: string; links: string[] }[] = [
  {
    name: "every link element and attribute",
    html:
      `<a href="a">A</a><link rel=stylesheet href="s.css"><map><area href="m"></map>
      <iframe src="f.html"></iframe><frameset><frame src="fr.html"></frameset>
      <img src="not-a-link.png"><script src="not-followed.js"></script>
      <a name="no-href">x</a><form action="not-followed"></form>`,
    links: [
      "http://h.test/d/a",
      "http://h.test/d/s.css",
      "http://h.test/d/m",
      "http://h.test/d/f.html",
      "http://h.test/d/fr.html",
    ],
  },
  {
    name: "first base only, resolved against the document URL",
    html:
      `<head><base href="../other/"><base href="http://ignored.test/"></head>
      <a href="x">x</a><a href="/abs">y</a>`,
    links: ["http://h.test/other/x", "http://h.test/abs"],
  },
  {
    name: "links before the base resolve against the document URL",
    html:
      `<a href="before"></a><base href="http://b.test/"><a href="after"></a>`,
    links: ["http://h.test/d/before", "http://b.test/after"],
  },
  {
    name: "a javascript: base is ignored",
    html: `<base href="javascript:void(0)"><a href="x"></a>`,
    links: ["http://h.test/d/x"],
  },
  {
    name: "non-http schemes dropped",
    html: `<a href="mailto:me@h.test"></a><a href="javascript:go()"></a>
      <a href="data:text/html,hi"></a><a href="ftp://h.test/f"></a><a href="tel:+1"></a>
      <a href="HTTPS://H.TEST/ok"></a>`,
    links: ["https://h.test/ok"],
  },
  {
    name: "normalisation: fragment, case, default port, empty path, escapes",
    html: `<a href="#top"></a><a href="HTTP://Other.TEST:80"></a>
      <a href="https://h.test:443/x?q=1#f"></a><a href="http://h.test:8080/%7euser/%2f%e9"></a>
      <a href="/a/./b/../c"></a><a href="//cdn.test/p"></a>`,
    links: [
      "http://h.test/d/page.html",
      "http://other.test/",
      "https://h.test/x?q=1",
      "http://h.test:8080/~user/%2F%E9",
      "http://h.test/a/c",
      "http://cdn.test/p",
    ],
  },
  {
    name: "entities, unquoted and upper-case attributes, white space in values",
    html: `<A HREF="q?a=1&amp;b=2">x</A><a href=plain>y</a><a href="
      spaced
    "></a><a href='single'></a>`,
    links: [
      "http://h.test/d/q?a=1&b=2",
      "http://h.test/d/plain",
      "http://h.test/d/spaced",
      "http://h.test/d/single",
    ],
  },
  {
    name: "nothing from comments, scripts or styles",
    html:
      `<!-- <a href="commented"></a> --><script>document.write('<a href="s">')</script>
      <style>a[href="css"] {}</style><textarea><a href="ta"></a></textarea>
      <a href="real"></a>`,
    links: ["http://h.test/d/real"],
  },
  {
    name: "an invalid URL is dropped, the rest goes on",
    html:
      `<a href="http://[bad/"></a><a href="http://h.test:99999/"></a><a href="ok"></a>`,
    links: ["http://h.test/d/ok"],
  },
];

Deno.test("LinkExtractor.write() gives the same links whole and split at every byte", () => {
  const encoder = new TextEncoder();
  for (const { name, html, url, links } of CASES) {
    const bytes = encoder.encode(html);
    for (const size of [bytes.length, 1, 2, 3]) {
      const extractor = new LinkExtractor(url ?? "http://h.test/d/page.html");
      const found = [];
      for (const chunk of splitEvery(bytes, size)) {
        found.push(...extractor.write(chunk));
      }
      found.push(...extractor.end());
      assertEquals(found, links, `${name} (${size}-byte pieces)`);
    }
  }
});

Deno.test("LinkExtractor.write() returns each link as soon as its tag is complete", () => {
  const extractor = new LinkExtractor("http://h.test/");
  assertEquals(extractor.write('<a href="/one">'), ["http://h.test/one"]);
  assertEquals(extractor.write('<a href="/tw'), []);
  assertEquals(extractor.write('o">'), ["http://h.test/two"]);
  assertEquals(extractor.end(), []);
});

Deno.test("LinkExtractor.write() decodes a legacy encoding when told", () => {
  const extractor = new LinkExtractor("http://h.test/", {
    encoding: "windows-1252",
  });
  const bytes = new Uint8Array([
    ...new TextEncoder().encode('<a href="/caf'),
    0xe9,
    0x22,
    0x3e,
  ]);
  assertEquals([...extractor.write(bytes), ...extractor.end()], [
    "http://h.test/caf%C3%A9",
  ]);
});

/** Drives a frontier over a fake site as the CLI will: fetch, add links, done. */
async function crawl(
  frontier: Frontier,
  site: Record<string, string[]>,
  options: { concurrency?: number } = {},
): Promise<FrontierEntry[]> {
  const fetched: FrontierEntry[] = [];
  const inFlight: Promise<void>[] = [];
  for await (const entry of frontier) {
    fetched.push(entry);
    const task = (async () => {
      // Links arrive after a delay, while other entries are being handed out.
      await new Promise((resolve) => setTimeout(resolve, fetched.length % 3));
      for (const link of site[entry.url] ?? []) frontier.add(link, entry);
      frontier.done(entry);
    })();
    inFlight.push(task);
    if (inFlight.length >= (options.concurrency ?? 4)) await inFlight.shift();
  }
  await Promise.all(inFlight);
  return fetched;
}

Deno.test("Frontier[Symbol.asyncIterator]() yields every reachable same-origin page exactly once, breadth first", async () => {
  const site: Record<string, string[]> = {
    "http://a.test/": [
      "/p1",
      "/p2#frag",
      "p1",
      "http://b.test/x",
      "mailto:x@a.test",
    ],
    "http://a.test/p1": ["/", "/p3", "/P1"],
    "http://a.test/p2": ["/p1", "/p3?x", "HTTP://A.TEST:80/p4"],
    "http://a.test/p3": ["/p1"],
    "http://a.test/p3?x": [],
    "http://a.test/P1": [],
    "http://a.test/p4": ["/p5"],
  };
  const frontier = new Frontier({ seeds: ["http://a.test/"] });
  const fetched = await crawl(frontier, site);
  assertEquals(
    fetched.map((e) => e.url).sort(),
    [...Object.keys(site), "http://a.test/p5"].sort(),
  );
  assertEquals(fetched[0], {
    url: "http://a.test/",
    depth: 0,
    referrer: undefined,
    redirects: 0,
    seedRequest: true,
  });
  const depths = Object.fromEntries(fetched.map((e) => [e.url, e.depth]));
  assertEquals(depths["http://a.test/p4"], 2);
  assertEquals(depths["http://a.test/p5"], 3);
  assertEquals(
    fetched.find((e) => e.url === "http://a.test/p5")?.referrer,
    "http://a.test/p4",
  );
  // Breadth first: depths never decrease along the hand-out order.
  for (let i = 1; i < fetched.length; i++) {
    assert(fetched[i]!.depth >= fetched[i - 1]!.depth);
  }
  assertEquals(frontier.inFlight, 0);
  assertEquals(frontier.queued, 0);
});

Deno.test("Frontier.add() stops at maxDepth and widens to the origins allowed", async () => {
  const site: Record<string, string[]> = {
    "http://a.test/": ["/1", "http://b.test/", "https://a.test/"],
    "http://a.test/1": ["/2"],
    "http://b.test/": ["http://b.test/deep"],
    "http://a.test/2": ["/3"],
  };
  const shallow = await crawl(
    new Frontier({ seeds: ["http://a.test/"], maxDepth: 1 }),
    site,
  );
  assertEquals(shallow.map((e) => e.url), [
    "http://a.test/",
    "http://a.test/1",
  ]);
  const wide = await crawl(
    new Frontier({
      seeds: ["http://a.test/"],
      maxDepth: 2,
      origins: ["http://b.test"],
    }),
    site,
    { concurrency: 1 },
  );
  assertEquals(wide.map((e) => e.url), [
    "http://a.test/",
    "http://a.test/1",
    "http://b.test/",
    "http://a.test/2",
    "http://b.test/deep",
  ]);
  const any = await crawl(
    new Frontier({ seeds: ["http://a.test/"], sameOrigin: false }),
    site,
  );
  assertEquals(any.length, 7);
  assertEquals(
    await crawl(new Frontier({ seeds: ["http://a.test/"], maxDepth: 0 }), site),
    [
      {
        url: "http://a.test/",
        depth: 0,
        referrer: undefined,
        redirects: 0,
        seedRequest: true,
      },
    ],
  );
});

Deno.test("Frontier.add() drops a link seen before in any spelling, and tells origins apart by scheme, port and IPv6 host, a seed's credentials aside", () => {
  const frontier = new Frontier({
    seeds: [],
    origins: ["http://[::1]:9/"],
  });
  const seed = frontier.seed("http://u:p@a.test:8080/")!;
  assertEquals(seed.url, "http://u:p@a.test:8080/");
  const added = [
    "/x",
    "/x",
    "HTTP://A.TEST:8080/x#top",
    "http://u:p@a.test:8080/%78",
    "/",
    "http://a.test/x",
    "https://a.test:8080/x",
    "http://[::1]:9/y",
    "http://[0:0::1]:9/y#z",
    "http://[::1]:10/y",
  ].map((link) => frontier.add(link, seed)?.url ?? null);
  assertEquals(added, [
    "http://a.test:8080/x",
    null,
    null,
    null,
    null,
    null,
    null,
    "http://[::1]:9/y",
    null,
    null,
  ]);
  assertEquals(frontier.queued, 3);
  assertEquals(frontier.seen, 3);
});

Deno.test("Frontier[Symbol.asyncIterator]() pulls seeds lazily, one when no link is waiting", async () => {
  let pulled = 0;
  async function* seeds() {
    for (let i = 0; i < 1000; i++) {
      pulled++;
      yield `http://s${i}.test/`;
    }
  }
  const frontier = new Frontier({ seeds: seeds() });
  const iterator = frontier[Symbol.asyncIterator]();
  const first = await iterator.next();
  assertEquals(first.value?.url, "http://s0.test/");
  assertEquals(pulled, 1);
  frontier.add("/a", first.value!);
  frontier.add("/b", first.value!);
  assertEquals((await iterator.next()).value?.url, "http://s0.test/a");
  assertEquals((await iterator.next()).value?.url, "http://s0.test/b");
  assertEquals(pulled, 1);
  assertEquals((await iterator.next()).value?.url, "http://s1.test/");
  assertEquals(pulled, 2);
  frontier.close();
  assertEquals((await iterator.next()).done, true);
});

Deno.test("Frontier[Symbol.asyncIterator]() hands out first the entries of the origin with the fewest not done, each origin's in order", async () => {
  const frontier = new Frontier({
    origins: ["http://a.test", "http://b.test"],
  });
  for (const origin of ["http://a.test", "http://b.test"]) {
    for (let i = 1; i <= 4; i++) frontier.seed(`${origin}/${i}`);
  }
  const iterator = frontier[Symbol.asyncIterator]();
  const next = async () => (await iterator.next()).value!;
  // a.test's entries were queued first, but b.test has none out.
  const a1 = await next();
  assertEquals(a1.url, "http://a.test/1");
  assertEquals((await next()).url, "http://b.test/1");
  // As many out: the entry queued first.
  assertEquals((await next()).url, "http://a.test/2");
  const b2 = await next();
  assertEquals(b2.url, "http://b.test/2");
  // a.test is slow: two of its entries stay out while b.test's come back.
  frontier.done(b2);
  assertEquals((await next()).url, "http://b.test/3");
  frontier.done(a1);
  assertEquals(
    [(await next()).url, (await next()).url, (await next()).url],
    // Then as many out (2 each): a.test/4 was queued before b.test/4.
    ["http://a.test/3", "http://a.test/4", "http://b.test/4"],
  );
  assertEquals(frontier.queued, 0);
  frontier.close();
});

Deno.test("Frontier.close() ends an iteration waiting on pages in flight", async () => {
  const frontier = new Frontier({ seeds: ["http://a.test/"] });
  const iterator = frontier[Symbol.asyncIterator]();
  assertEquals((await iterator.next()).value?.url, "http://a.test/");
  const waiting = iterator.next();
  frontier.close();
  assertEquals((await waiting).done, true);
  assertEquals(frontier.seed("http://c.test/"), undefined);
});

Deno.test("Frontier.markSeen() keeps a redirect target from being queued again", async () => {
  const frontier = new Frontier({ seeds: ["http://a.test/old"] });
  const fetched = [];
  for await (const entry of frontier) {
    fetched.push(entry.url);
    if (entry.url === "http://a.test/old") {
      assert(frontier.markSeen("http://a.test/new#x"));
      assertEquals(frontier.add("/new", entry), undefined);
      frontier.add("/other", entry);
    }
    frontier.done(entry);
  }
  assertEquals(fetched, ["http://a.test/old", "http://a.test/other"]);
});

Deno.test("Frontier.redirect() queues a Location at its page's depth, in scope like a link except after a seed, up to 20 in a row", async () => {
  const invalid: unknown[] = [];
  const frontier = new Frontier({
    seeds: ["http://a.test/", "ftp://x.test/", "not a url", "http://a.test/p"],
    onInvalidSeed: (seed) => void invalid.push(seed),
  });
  const fetched: string[] = [];
  for await (const entry of frontier) {
    fetched.push(`${entry.depth}/${entry.redirects} ${entry.url}`);
    if (entry.url === "http://a.test/") {
      // A seed moved to its host's www. origin: that origin joins the crawl.
      assertEquals(
        frontier.redirect("https://www.a.test/", entry)?.referrer,
        "http://a.test/",
      );
    } else if (entry.url === "https://www.a.test/") {
      frontier.add("/page", entry);
      frontier.add("http://c.test/", entry); // out of scope as a link
    } else if (entry.url === "https://www.a.test/page") {
      // Past the seeds, a redirect is in scope as a link would be.
      assertEquals(frontier.redirect("http://c.test/moved", entry), undefined);
      assertEquals(frontier.redirect("/page", entry), undefined, "seen");
      frontier.redirect("/r/1", entry);
    } else if (entry.url.startsWith("https://www.a.test/r/")) {
      const n = Number(entry.url.split("/").pop());
      frontier.redirect(`/r/${n + 1}`, entry);
    }
    frontier.done(entry);
  }
  // Seeds are pulled only when nothing else waits: a.test/p comes last.
  assertEquals(fetched.slice(0, 3), [
    "0/0 http://a.test/",
    "0/1 https://www.a.test/",
    "1/0 https://www.a.test/page",
  ]);
  assertEquals(fetched.at(-1), "0/0 http://a.test/p");
  const chain = fetched.filter((f) => f.includes("/r/"));
  assertEquals(chain.length, 20, "20 redirects in a row, then no more");
  assertEquals(chain.at(-1), "1/20 https://www.a.test/r/20");
  assertEquals(invalid, ["ftp://x.test/", "not a url"]);
});

Deno.test("Frontier.redirect() after a seed allows the target's origin only on a host a seed or origins entry names, give or take www.", () => {
  const frontier = new Frontier({ origins: ["http://o.test:81"] });
  const seed = frontier.seed("http://a.test/")!;
  // Scheme, port and a leading www. may change.
  const www = frontier.redirect("https://www.a.test:8443/", seed)!;
  assertEquals([www.depth, www.redirects], [0, 1]);
  assert(frontier.allows("https://www.a.test:8443/x"));
  assertEquals(frontier.add("/x", www)?.depth, 1);
  // Another host: queued once, at depth 0, but its origin stays out.
  const away = frontier.redirect("http://b.test/", www)!;
  assertEquals([away.depth, away.redirects], [0, 2]);
  assertEquals(frontier.allows("http://b.test/x"), false);
  assertEquals(frontier.add("/x", away), undefined, "its links are out");
  assertEquals(frontier.redirect("http://b.test/", seed), undefined, "seen");
  // Judged by the named hosts, not the last hop's: www.b.test stays out.
  const further = frontier.redirect("http://www.b.test/", away)!;
  assertEquals(frontier.allows("http://www.b.test/"), false);
  assertEquals(frontier.add("/y", further), undefined);
  // An origins entry's host is named too, and a www. seed names the bare host.
  frontier.redirect("http://www.o.test/", further);
  assert(frontier.allows("http://www.o.test/z"));
  const c = frontier.seed("http://www.c.test/")!;
  frontier.redirect("https://c.test/", c);
  assert(frontier.allows("https://c.test/"));
  // An IP address is a host like any: another port joins, another address not.
  const ip = frontier.seed("http://127.0.0.1:1/")!;
  const port = frontier.redirect("http://127.0.0.1:2/", ip)!;
  assert(frontier.allows("http://127.0.0.1:2/"));
  frontier.redirect("http://127.0.0.2:2/", port);
  assertEquals(frontier.allows("http://127.0.0.2:2/"), false);
  // Past the seeds, a redirect is in scope as a link would be, named host or not.
  const link = frontier.add("/page", www)!;
  assertEquals(frontier.redirect("http://a.test:9/", link), undefined);
  assertEquals(frontier.allows("http://a.test:9/"), false);
});

Deno.test("Frontier.seed() and redirect() crawl a seed's redirect target fetched before a seed read later named its host: it is queued again", () => {
  // Seeds are read lazily (a long -i list): old.test's redirect to new.test is
  // fetched, as a page not crawled, before the line naming new.test is read.
  const frontier = new Frontier();
  const old = frontier.seed("http://old.test/")!;
  const early = frontier.redirect("http://new.test/", old)!;
  const www = frontier.redirect("https://www.later.test/", old)!;
  assertEquals(frontier.add("/page", early), undefined, "not named yet");
  assertEquals(frontier.add("/page", www), undefined, "not named yet");
  // The same URL as a seed: queued again, as a seed, its origin allowed.
  const again = frontier.seed("http://new.test/")!;
  assertEquals([again.depth, again.seedRequest], [0, true]);
  assertEquals(frontier.add("/page", again)?.url, "http://new.test/page");
  assertEquals(frontier.seed("http://new.test/"), undefined, "seen");
  // Another URL of a host named late: the seed's redirect to the target
  // fetched early queues it again, now crawled.
  const later = frontier.seed("http://later.test/")!;
  const moved = frontier.redirect("https://www.later.test/", later)!;
  assertEquals(moved.url, "https://www.later.test/");
  assertEquals(frontier.add("/x", moved)?.url, "https://www.later.test/x");
  assertEquals(frontier.redirect("https://www.later.test/", later), undefined);
  assertEquals(frontier.redirectTarget("https://www.later.test/", later), null);
  // A host never named stays out, seen once.
  const away = frontier.redirect("http://away.test/", old)!;
  assertEquals(frontier.redirect("http://away.test/", later), undefined);
  assertEquals(frontier.redirectTarget("http://away.test/", later), null);
  assertEquals(frontier.add("/x", away), undefined);
});

Deno.test("Frontier.redirect() marks an entry seedRequest only along a seed's chain of redirects that keep the request", () => {
  const frontier = new Frontier();
  const seed = frontier.seed("http://a.test/")!;
  assertEquals(seed.seedRequest, true);
  const kept = frontier.redirect("/307", seed, true)!;
  assertEquals(kept.seedRequest, true);
  assertEquals(frontier.redirect("/308", kept, true)!.seedRequest, true);
  const dropped = frontier.redirect("/303", kept)!;
  assertEquals(dropped.seedRequest, false);
  // Once a GET, always a GET: a later 307 repeats the GET.
  assertEquals(frontier.redirect("/after", dropped, true)!.seedRequest, false);
  assertEquals(frontier.add("/link", seed)!.seedRequest, false);
});

Deno.test("Frontier() rejects a bad maxDepth or origin, done() an entry not handed out", () => {
  assertThrows(() => new Frontier({ maxDepth: -1 }), RangeError, "maxDepth");
  assertThrows(() => new Frontier({ maxDepth: 1.5 }), RangeError, "maxDepth");
  assertThrows(
    () => new Frontier({ origins: ["not a url"] }),
    TypeError,
    "'not a url'",
  );
  const frontier = new Frontier();
  const entry = frontier.seed("http://a.test/")!;
  assertThrows(() => frontier.done(entry), RangeError, "no entry is in flight");
});

Deno.test("LinkExtractor.write() keeps a UTF-8 character split between chunks for the next one (non-ASCII href split at every byte)", () => {
  const bytes = new TextEncoder().encode(
    '<a href="/café/ü?q=€">x</a><a href="/日本">y</a>',
  );
  for (const size of [bytes.length, 1, 2, 3]) {
    const extractor = new LinkExtractor("http://h.test/");
    const found: string[] = [];
    for (const chunk of splitEvery(bytes, size)) {
      found.push(...extractor.write(chunk));
    }
    found.push(...extractor.end());
    assertEquals(found, [
      "http://h.test/caf%C3%A9/%C3%BC?q=%E2%82%AC",
      "http://h.test/%E6%97%A5%E6%9C%AC",
    ], `${size}-byte pieces`);
  }
});

Deno.test("redirectLocation() reads a Location's raw UTF-8 as UTF-8 and percent-encodes other bytes as they came, as the engine does", () => {
  const at = (location: string) =>
    redirectLocation({ status: 302, headers: new Headers({ location }) });
  // Field values arrive one byte a character: "é" in UTF-8 is "\u00c3\u00a9".
  assertEquals(at("/caf\u00c3\u00a9"), "/café");
  assertEquals(at("/caf\u00e9"), "/caf%E9"); // Latin-1, as curl sends it
  assertEquals(at("/\u00c3("), "/%C3(");
  assertEquals(at("//caf\u00e9.test/\u00e9"), "//caf\u00e9.test/%E9");
  assertEquals(at("/plain%20x"), "/plain%20x");
  assertEquals(
    redirectLocation({ status: 200, headers: new Headers({ location: "/x" }) }),
    null,
  );
});

Deno.test("LinkExtractor.nofollow says whether a robots meta tag of the document asked for nofollow or none; robotsNofollow() reads the directives", () => {
  const read = (html: string) => {
    const extractor = new LinkExtractor("http://a.test/");
    const links = [...extractor.write(html), ...extractor.end()];
    return { links: links.length, nofollow: extractor.nofollow };
  };
  assertEquals(
    read('<meta name="robots" content="nofollow"><a href="/x">x</a>'),
    { links: 1, nofollow: true },
  );
  assertEquals(read('<META NAME=" ROBOTS " CONTENT="None">').nofollow, true);
  assertEquals(read('<meta name="robots" content="noindex">').nofollow, false);
  assertEquals(
    read('<meta name="googlebot" content="nofollow">').nofollow,
    false,
  );
  // Not the document's: inert template content.
  assertEquals(
    read('<template><meta name="robots" content="nofollow"></template>')
      .nofollow,
    false,
  );
  // A <meta> in <svg> is an HTML one (the parser closes the svg before it).
  assertEquals(
    read('<svg><meta name="robots" content="nofollow"></svg>').nofollow,
    true,
  );
  assert(robotsNofollow("noindex, NoFollow"));
  assert(robotsNofollow(" none "));
  assert(!robotsNofollow("googlebot: nofollow"));
  assert(robotsNofollow("GoogleBot: nofollow", "googlebot"));
  assert(robotsNofollow("otherbot: noindex, mybot: nofollow", "mybot"));
  // One field's list after a name, or two fields joined ("googlebot:
  // noindex" and "nofollow"): the stricter reading.
  assert(robotsNofollow("googlebot: noindex, nofollow"));
  // A directive's own colon names no crawler.
  assert(robotsNofollow("unavailable_after: 25 Jun 2010, nofollow"));
  assert(!robotsNofollow("nofollowing"));
  assert(!robotsNofollow(null));
  assertEquals(
    sameOriginLinks(
      '<meta name="robots" content="nofollow"><a href="/b">b</a>',
      "http://a.test/",
    ),
    [],
  );
  assertEquals(
    sameOriginLinks(
      new TextEncoder().encode('<a href="/b">b</a>'),
      "http://a.test/",
      Infinity,
      new Headers({ "x-robots-tag": "none" }),
    ),
    [],
  );
});

Deno.test("LinkExtractor reads a page of 200,000 unclosed elements in time linear in their number, and the link after them", () => {
  // htmlparser2 keeps open elements in an array it grows at the front: 40 s
  // for 400,000 unclosed <div>s, the crawl's loop held the while.
  const read = (n: number) => {
    const extractor = new LinkExtractor("http://example.test/");
    const html = "<div>".repeat(n) + "<svg>".repeat(n / 10) +
      "</span>".repeat(n / 10) +
      '<a href="/after">';
    const started = performance.now();
    const links: string[] = [];
    for (let i = 0; i < html.length; i += 16_384) {
      links.push(...extractor.write(html.slice(i, i + 16_384)));
    }
    links.push(...extractor.end());
    return { ms: performance.now() - started, links };
  };
  read(5_000); // compiled
  const small = read(25_000);
  const large = read(200_000);
  assertEquals(large.links, ["http://example.test/after"]);
  // 8x the elements: ~8x the time; the nesting cost made it ~64x.
  const ratio = large.ms / Math.max(small.ms, 1);
  assertLess(ratio, 24, `${small.ms} ms, then ${large.ms} ms`);
});
