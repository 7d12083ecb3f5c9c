/**
 * The link extractor where a differential run against parse5 (the WHATWG HTML
 * parsing algorithm) and Node's WHATWG URL, over 4,261 documents, found it
 * wrong: each case fed whole and in 1-, 2- and 3-byte pieces.
 */
import { assert, assertEquals } from "@std/assert";
import {
  isHtml,
  LinkExtractor,
  normalizeUrl,
} from "../examples/crawl/links.ts";
import { Frontier } from "../examples/crawl/frontier.ts";
import { StdoutLines } from "../examples/crawl/stdout_lines.ts";
import { splitEvery } from "./_net.ts";

/** The links of `html`, whole and in 1-, 2- and 3-byte pieces; all must agree. */
function linksOf(html: string, url = "http://h.test/d/page.html"): string[] {
  const bytes = new TextEncoder().encode(html);
  let first: string[] | null = null;
  for (const size of [bytes.length, 1, 2, 3]) {
    const extractor = new LinkExtractor(url);
    const found: string[] = [];
    for (const chunk of splitEvery(bytes, size)) {
      found.push(...extractor.write(chunk));
    }
    found.push(...extractor.end());
    if (first === null) first = found;
    else assertEquals(found, first, `${size}-byte pieces`);
  }
  return first!;
}

Deno.test("LinkExtractor reads a <![CDATA[ outside <svg>/<math> as HTML does: a bogus comment ending at the first '>', not at ']]>'", () => {
  // HTML (13.2.5.42 markup declaration open state): in HTML content "[CDATA[" opens a
  // bogus comment, closed by the next ">". htmlparser2 waits for "]]>", so one stray
  // "<![CDATA[" hides every link after it up to the end of the page.
  assertEquals(
    linksOf(
      `<div><![CDATA[if (a > b) {}</div><a href="/next">Next</a>` +
        `<p><![CDATA[><a href="/second">2</a>`,
    ),
    ["http://h.test/next", "http://h.test/second"],
  );
});

Deno.test("LinkExtractor takes a non-http(s) <base href> as the base, so relative links do not fall back to the page URL", () => {
  // HTML's "set the frozen base URL" ignores only a failed parse and data:/javascript:
  // bases. With a file: or ftp: base a browser resolves "page2.html" to a file:/ftp:
  // URL (never requested over http); ours asked the page's server for /d/page2.html.
  assertEquals(
    linksOf(
      `<base href="file:///C:/site/"><a href="page2.html"></a><a href="http://h.test/abs"></a>`,
    ),
    ["http://h.test/abs"],
  );
  assertEquals(
    linksOf(
      `<base href="ftp://f.test/pub/"><a href="x"></a><a href="//h.test/y"></a>`,
    ),
    [],
  );
  // data: and javascript: bases stay ignored (as now).
  assertEquals(linksOf(`<base href="data:text/html,x"><a href="x">`), [
    "http://h.test/d/x",
  ]);
});

Deno.test("LinkExtractor ignores a <base> inside <template>, <svg> or <math>: it is not the document's base element", () => {
  // A template's contents are not in the document, and <svg><base> is an SVG element
  // with no meaning; a browser resolves "x" against the page. Ours re-based every
  // later link of the page on them.
  assertEquals(
    linksOf(
      `<template><base href="/tpl/"></template><svg><base href="/svg/"></base></svg>` +
        `<math><base href="/math/"></math>` +
        `<a href="x"></a><base href="/real/"><a href="y"></a>`,
    ),
    ["http://h.test/d/x", "http://h.test/real/y"],
  );
});

Deno.test("LinkExtractor follows an SVG <a xlink:href> as a browser does", () => {
  // SVG 1.1 links (still what most inline SVG uses) carry xlink:href; browsers follow
  // them. <use xlink:href> is not a link.
  assertEquals(
    linksOf(`<svg><a xlink:href="/icon-link"><use xlink:href="#i"/></a></svg>`),
    ["http://h.test/icon-link"],
  );
});

Deno.test("LinkExtractor follows a <meta http-equiv=refresh> URL as HTML's declarative refresh parses it, as wget and Scrapy follow it", () => {
  const refresh = (content: string, before = "") =>
    linksOf(`${before}<meta http-equiv="Refresh" content="${content}">`);
  assertEquals(refresh("0; url=/next"), ["http://h.test/next"]);
  assertEquals(refresh("5,URL = 'n?a=1' x"), ["http://h.test/d/n?a=1"]);
  assertEquals(refresh(".5 other.html"), ["http://h.test/d/other.html"]);
  // A "u" that starts no "url =" is the URL's own, its quote too.
  assertEquals(refresh("1; up.html"), ["http://h.test/d/up.html"]);
  assertEquals(refresh(`1; &#39;q.html&#39;`), ["http://h.test/d/q.html"]);
  // Against the document's <base>, credentials dropped as from any link.
  assertEquals(
    refresh("0;url=//u:p@o.test/x", `<base href="https://b.test/">`),
    ["https://o.test/x"],
  );
  // A reload of the page itself, or content that does not parse: no link.
  for (const content of ["5", "0; url=", "soon; url=/x", "5x; url=/x", ""]) {
    assertEquals(refresh(content), [], content);
  }
  // An unclosed quote: the URL runs to the end, as HTML reads it.
  assertEquals(refresh("0; url='/q"), ["http://h.test/q"]);
  // No content at all: a refresh of nothing, no link (and no error).
  assertEquals(linksOf(`<meta http-equiv=refresh><a href=/a>`), [
    "http://h.test/a",
  ]);
  // Not in a <template> (inert); not other http-equivs.
  assertEquals(
    linksOf(
      `<template><meta http-equiv=refresh content="0;url=/t"></template>` +
        `<meta http-equiv=content-type content="0;url=/c">`,
    ),
    [],
  );
  // A <meta> in <svg> or <math> is an HTML one: the HTML parser closes the
  // foreign element before it (parse5, browsers), and the refresh happens.
  assertEquals(
    linksOf(
      `<svg><meta http-equiv=refresh content="0;url=/s"></svg>` +
        `<math><meta http-equiv=refresh content="0;url=/m"></math>`,
    ),
    ["http://h.test/s", "http://h.test/m"],
  );
});

Deno.test("normalizeUrl() resolves '///host/path' as WHATWG URL does (Deno's URL throws: denoland/deno#35172)", () => {
  // Chrome, Firefox, Node: new URL("///x", "http://h.test/") is http://x/. Deno 2.9.6
  // throws "Invalid URL", so the link was dropped.
  assertEquals(
    normalizeUrl("///other.test/x", "http://h.test/d/"),
    "http://other.test/x",
  );
  assertEquals(linksOf(`<a href="///h.test/p">`), ["http://h.test/p"]);
  // Tabs and newlines go before the slashes are counted, as the parser drops them.
  assertEquals(
    normalizeUrl("/\t//x.test/p", "http://h.test/"),
    "http://x.test/p",
  );
});

Deno.test("LinkExtractor keeps a U+FEFF that a chunk boundary splits off (Deno's streaming TextDecoder drops it)", () => {
  // Only a BOM at the very start of the stream is dropped; Deno's TextDecoder with
  // {stream: true} drops U+FEFF at the start of any later piece's output too.
  assertEquals(linksOf(`<a href="/a\ufeffb">`), ["http://h.test/a%EF%BB%BFb"]);
  // A leading BOM still goes.
  assertEquals(linksOf(`\ufeff<a href="/c">`), ["http://h.test/c"]);
});

Deno.test("normalizeUrl() escapes what RFC 3986 allows neither in a path nor in a query, so the raw and escaped forms are one page", () => {
  const base = "http://h.test/";
  for (
    const [raw, escaped] of [
      ["/p|", "/p%7C"],
      ["/p|", "/p%7c"],
      ["/a[b]^", "/a%5Bb%5D%5E"],
      ["/q?x={1}&y=`z`|^", "/q?x=%7B1%7D&y=%60z%60%7C%5E"],
      ["/q?a\\b", "/q?a%5Cb"],
    ]
  ) {
    assertEquals(normalizeUrl(raw!, base), normalizeUrl(escaped!, base), raw);
  }
  assertEquals(normalizeUrl("/p|", base), "http://h.test/p%7C");
  // Unreserved escapes are still decoded; a backslash in a path is a slash.
  assertEquals(normalizeUrl("/%41%7e\\b", base), "http://h.test/A~/b");
});

/**
 * normalizeUrl() as it was written with URL's setters (each parses the whole
 * URL again): the reference its string surgery must agree with.
 */
function normalizeUrlBySetters(url: string, base: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url, base);
  } catch {
    return normalizeUrl(url, base); // the '///host' repair, not at issue here
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return null;
  const escapes = (text: string) =>
    text.replace(/%([0-9A-Fa-f]{2})|[[\]|^{}`\\]/g, (match, hex) => {
      if (hex === undefined) {
        return `%${match.charCodeAt(0).toString(16).toUpperCase()}`;
      }
      const char = String.fromCharCode(parseInt(hex, 16));
      return /^[A-Za-z0-9\-._~]$/.test(char) ? char : `%${hex.toUpperCase()}`;
    });
  parsed.hash = "";
  parsed.pathname = escapes(parsed.pathname);
  if (parsed.search !== "") parsed.search = escapes(parsed.search);
  return parsed.href;
}

Deno.test("normalizeUrl() gives what URL's setters give: fragment dropped, escapes normalised in the path and query only", () => {
  const bases = [
    "http://h.test/a/b?c#d",
    "https://u%41:p@h.test:8443/x/",
    "http://[::1]:8080/p",
  ];
  const pieces = [
    "/",
    "a",
    "%7e",
    "%2E",
    "%2f",
    "%zz",
    "?",
    "#",
    "|",
    "[",
    "{",
    "`",
    "\\",
    "..",
    "é",
    " ",
    "@",
    "%3F",
    "~",
  ];
  let cases = 0;
  for (
    const prefix of ["", "//g.test", "HTTP://X.Test:80", "https://a:b@c.test"]
  ) {
    for (const a of pieces) {
      for (const b of pieces) {
        for (const base of bases) {
          const url = `${prefix}/${a}x${b}`;
          assertEquals(
            normalizeUrl(url, base),
            normalizeUrlBySetters(url, base),
            `${url} on ${base}`,
          );
          cases++;
        }
      }
    }
  }
  assertEquals(cases, 4 * 19 * 19 * 3);
  const base = "http://h.test/";
  assertEquals(normalizeUrl("/x?#f", base), "http://h.test/x?");
  assertEquals(normalizeUrl("/x#", base), "http://h.test/x");
  assertEquals(normalizeUrl("/p?a#b?c%41", base), "http://h.test/p?a");
  // Credentials and an IPv6 host are left as the URL parser wrote them.
  assertEquals(
    normalizeUrl("http://u%7e:p@[::1]:81/%7e[?|", base),
    "http://u%7e:p@[::1]:81/~%5B?%7C",
  );
});

Deno.test("LinkExtractor drops the user name and password a page put in a link: they are not the operator's to send", () => {
  const extractor = new LinkExtractor("http://h.test/");
  assertEquals(
    [
      ...extractor.write(
        '<a href="http://u:p@h.test/x"></a><a href="//u@h.test/w"></a><a href="/y@z">',
      ),
      ...extractor.end(),
    ],
    ["http://h.test/x", "http://h.test/w", "http://h.test/y@z"],
  );
});

Deno.test("isHtml() takes text/html and application/xhtml+xml with or without parameters, not types that only begin so", () => {
  const empty = new Uint8Array();
  const typed = (type: string) =>
    isHtml(new Headers({ "content-type": type }), empty);
  assert(typed("text/html"));
  assert(typed(" TEXT/HTML ; charset=utf-8"));
  assert(typed("application/xhtml+xml;charset=utf-8"));
  assert(!typed("text/html-sandboxed"));
  assert(!typed("text/htmlx"));
  assert(!typed("application/xhtml+xml2"));
  // Two fields, as Headers joins them.
  assert(typed("text/html, text/html; charset=utf-8"));
});

Deno.test("Frontier drops the user name and password of a redirect's Location as of a link's", async () => {
  const frontier = new Frontier({ seeds: ["http://h.test/"] });
  const seed = await frontier[Symbol.asyncIterator]().next();
  assert(!seed.done);
  const moved = frontier.redirect("http://u:secret@h.test/moved", seed.value);
  assertEquals(moved?.url, "http://h.test/moved");
  frontier.done(seed.value);
  frontier.close();
});

Deno.test("StdoutLines: a failed write ends the lines, tells onError once, and an onError that throws too loses nothing else", async () => {
  let errors = 0;
  let writes = 0;
  const out = new StdoutLines({
    onError: () => {
      errors++;
      // As console.error does with stderr on a full disk.
      throw new Error("No space left on device (os error 28)");
    },
    sink: {
      write() {
        writes++;
        return Promise.reject(
          new Error("No space left on device (os error 28)"),
        );
      },
    },
  });
  await out.write("a\n");
  await out.flushed(); // resolves: the failure is onError's, not a rejection
  assertEquals(out.open, false);
  await out.write("b\n"); // dropped
  await out.flushed();
  assertEquals([errors, writes], [1, 1]);
});
