/**
 * The link extractor's fast paths (examples/crawl/_link_scan.ts) against what
 * they replace: htmlparser2's own tokenizer and parser, kept here as the
 * reference, over generated HTML (malformed markup, comments, scripts, CDATA,
 * unquoted attributes, references in hrefs, `<base href>`), each fed whole and
 * in random pieces; and `LinkBase.resolve()` against `normalizeLink()` (the URL
 * parser) over generated links and bases.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { Parser } from "npm:htmlparser2@12.0.0";
import {
  LinkBase,
  LinkParser,
  LinkTokenizer,
} from "../examples/crawl/_link_scan.ts";
import { LinkExtractor, normalizeLink } from "../examples/crawl/links.ts";
import { Rng } from "./_net.ts";

const OPTIONS = {
  decodeEntities: true,
  lowerCaseTags: true,
  lowerCaseAttributeNames: true,
};

/** Every event a parser gives but its text, in order, with where it says it is. */
function eventsOf(
  make: (handler: Record<string, unknown>) => Parser,
  pieces: string[],
): string[] {
  const events: string[] = [];
  let parser: Parser | null = null;
  const log = (...args: unknown[]) =>
    events.push(
      JSON.stringify([...args, parser?.startIndex, parser?.endIndex]),
    );
  parser = make({
    onopentagname: (name: string) => log("name", name),
    onopentag: (name: string, attributes: unknown, implied: boolean) =>
      log("open", name, attributes, implied),
    onclosetag: (name: string, implied: boolean) => log("close", name, implied),
    onattribute: (name: string, value: string, quote: unknown) =>
      log("attribute", name, value, quote),
    oncomment: (data: string) => log("comment", data),
    oncdatastart: () => log("cdata"),
    onprocessinginstruction: (name: string, data: string) =>
      log("pi", name, data),
    onend: () => log("end"),
  });
  for (const piece of pieces) parser.write(piece);
  parser.end();
  return events;
}

/** Pieces of markup the documents are made of. */
const MARKUP = [
  "text ",
  "a & b ",
  "&amp;&lt;&#60;&#x3C;&notin;&not &am; &",
  "<",
  "< a>",
  "<>",
  "</>",
  "</ p>",
  "</p x>",
  "<p>",
  "</p>",
  "<div class=c>",
  "</div>",
  "<li>",
  "<table><tr><td>",
  '<a href="/p/1.html" class="x">',
  "<a href='q?a=1&amp;b=2'>",
  "<a href=un&amp;quoted>",
  '<a href="&#x2F;e&#47;f&notin;&am;g">',
  '<A HREF="/Upper" HREF="/second">',
  "<a href>",
  "<a href=>",
  '<a href="a"b>',
  "<a href = 'spaced' >",
  "<a/href=/slash>",
  "</a>",
  '<link rel=stylesheet href="/s.css">',
  '<area href="/area">',
  "<iframe src=/frame>",
  "</iframe>",
  '<frame src="f.html">',
  '<base href="/base/">',
  '<base href="ftp://f.test/">',
  '<meta http-equiv="refresh" content="0; url=/next">',
  '<meta name="robots" content="nofollow">',
  "<br/>",
  "</br>",
  "<img src=x.png/>",
  "<!-- c <a href=/no> -->",
  "<!--->",
  "<!-- a --!>",
  "<!-x>",
  "<!DOCTYPE html>",
  "<?xml version='1.0'?>",
  "<![CDATA[ <a href=/cdata> ]]>",
  "]]>",
  "<script>if (a < b && c) { x = '<a href=/js>'; }</script>",
  "<script>a</script >",
  "<script>",
  "</script>",
  "<style>p > a { }</style>",
  "<title>a &amp; <a href=/t></title>",
  "<textarea><a href=/ta></textarea>",
  "<xmp><a href=/xmp></xmp>",
  "<noembed><a href=/ne></noembed>",
  "<svg>",
  '<a xlink:href="/svg-link">',
  "<foreignObject>",
  "</foreignObject>",
  "</svg>",
  "<math><mi>",
  "</math>",
  "<template>",
  "</template>",
  "<plaintext>",
  "\u00e9\u4e2d\ud83d\ude00",
  "\n\t",
];

/** A document of `count` random pieces of markup. */
function documentOf(rng: Rng, count: number): string {
  let html = "";
  for (let i = 0; i < count; i++) {
    html += MARKUP[rng.int(0, MARKUP.length - 1)];
  }
  return html;
}

/** `text` cut at random places. */
function piecesOf(rng: Rng, text: string): string[] {
  const pieces: string[] = [];
  for (let at = 0; at < text.length;) {
    const size = rng.size(24);
    pieces.push(text.slice(at, at + size));
    at += size;
  }
  return pieces;
}

Deno.test("LinkParser with LinkTokenizer gives every event but text that htmlparser2's own parser gives, whole and in pieces", () => {
  const rng = new Rng(200);
  let documents = 0;
  let tags = 0;
  for (let i = 0; i < 1500; i++) {
    const html = documentOf(rng, rng.int(1, 30));
    for (const pieces of [[html], piecesOf(rng, html)]) {
      const expected = eventsOf(
        (handler) => new Parser(handler, OPTIONS),
        pieces,
      );
      const actual = eventsOf(
        (handler) =>
          new LinkParser(handler, { ...OPTIONS, Tokenizer: LinkTokenizer }),
        pieces,
      );
      assertEquals(actual, expected, JSON.stringify(pieces));
      tags += expected.length;
    }
    documents++;
  }
  assertEquals(documents, 1500);
  assert(tags > 50_000, `${tags} events`);
});

/** Pieces of links: plain ones the fast path takes, and all it must leave. */
const LINK_PIECES = [
  "/",
  "/",
  "p",
  "x.html",
  ".",
  "..",
  "?",
  "#",
  "&",
  "=",
  ":",
  "@",
  "%2e",
  "%41",
  "'",
  '"',
  " ",
  "\t",
  "\\",
  "|",
  "[",
  "{",
  "`",
  "^",
  "~",
  "!$()*+,;",
  "\u00e9",
  "\u0000",
  "A",
  "9",
  "0x",
  "http://",
  "HTTPS://",
  "//",
  "mailto:",
  "ext1.example",
  "EXAMPLE.com",
  "1.2.3.4",
  "[::1]",
  ":8080",
  "u:p@",
  "a-b.test",
  "-",
  "xn--bcher-kva",
  "\ud800",
  "\uff41",
];

const BASES = [
  "http://h.test/",
  "http://h.test/a/b",
  "https://h.test:8443/x/y.html?q=1",
  "http://h.test/a/b?c#d",
  "http://h.test/a#b?c",
  "http://h.test/%7euser/x",
  "http://u:p@h.test/d/",
  "http://[::1]:81/d/e",
  "http://h.test/a'b/c;d=e/",
  "file:///C:/site/",
  "ftp://f.test/pub/",
  "mailto:a@b.test",
];

Deno.test("LinkBase.resolve() gives what normalizeLink() gives, for every link it takes", () => {
  const rng = new Rng(7);
  const bases = BASES.map((href) => new LinkBase(href));
  let taken = 0;
  for (let i = 0; i < 40_000; i++) {
    let link = "";
    for (let n = rng.int(1, 6); n > 0; n--) {
      link += LINK_PIECES[rng.int(0, LINK_PIECES.length - 1)];
    }
    const b = rng.int(0, BASES.length - 1);
    const resolved = bases[b]!.resolve(link);
    if (resolved === undefined) continue;
    assertEquals(
      resolved,
      normalizeLink(link, BASES[b]),
      `${link} on ${BASES[b]}`,
    );
    taken++;
  }
  assert(taken > 4000, `${taken} taken`);
  // The common forms are taken.
  const base = new LinkBase("http://h.test/d/page.html?x");
  assertEquals(base.resolve("/p/1.html"), "http://h.test/p/1.html");
  assertEquals(base.resolve("1.html#s"), "http://h.test/d/1.html");
  assertEquals(base.resolve("?y=1"), "http://h.test/d/page.html?y=1");
  assertEquals(base.resolve("HTTP://Ext.Example"), "http://ext.example/");
  assertEquals(base.resolve("../up"), undefined);
  assertEquals(base.resolve("http://1.2.3.4/"), undefined);
  assertEquals(base.resolve("#top"), undefined);
});

Deno.test("LinkExtractor resolves a fragment or empty link to the page, against the base in force", () => {
  const extractor = new LinkExtractor("http://h.test/d/page?q#frag");
  assertEquals(
    [
      ...extractor.write(
        '<a href="#a"><a href=""><a href="x"><base href="/o/p?r">' +
          '<a href="#b"><a href="y"><a href="?s">',
      ),
      ...extractor.end(),
    ],
    [
      "http://h.test/d/page?q",
      "http://h.test/d/page?q",
      "http://h.test/d/x",
      "http://h.test/o/p?r",
      "http://h.test/o/y",
      "http://h.test/o/p?s",
    ],
  );
});
