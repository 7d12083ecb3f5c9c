import {
  assert,
  assertEquals,
  assertGreater,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { HttpClient } from "../mod.ts";
import { requestTarget, responseUrl, toHttpUrl } from "../client/_http_url.ts";
import { RequestWriter } from "../client/_request.ts";

/** Deterministic: a failure names its seed and case. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(next: () => number, items: readonly T[]): T {
  return items[Math.floor(next() * items.length)]!;
}

/** What the WHATWG parser makes of `s`, in the parts a request uses. */
function whatwg(s: string) {
  const url = new URL(s);
  // The href from the path on, without the fragment: `search` leaves out the
  // "?" of an empty query, which is sent.
  const cut = url.href.indexOf("#"); // the first "#" starts the fragment
  const href = cut < 0 ? url.href : url.href.slice(0, cut);
  return {
    href: url.href,
    target: href.slice(href.indexOf("/", url.protocol.length + 2)),
    origin: url.origin,
  };
}

function parts(s: string) {
  const url = toHttpUrl(s);
  return {
    href: url.href,
    target: url.target,
    origin: url.site.origin,
  };
}

const ORIGINS = [
  "http://127.0.0.1:8080",
  "https://example.com",
  "http://[::1]:9000",
  "http://xn--bcher-kva.example",
];

// Seen once the long way, so that later strings on them may take the short one.
for (const origin of ORIGINS) toHttpUrl(`${origin}/`);

Deno.test("toHttpUrl() takes a string the parser would write as is, on an origin it has seen, without parsing it", () => {
  for (
    const s of [
      "http://127.0.0.1:8080/1k",
      "http://127.0.0.1:8080/",
      "https://example.com/a/b/c.html?x=1&y=%41&z=a:b@c",
      "http://[::1]:9000/~user/a-b_c.d!$&()*+,;=:@/",
      "http://xn--bcher-kva.example/%ff%2f..x/.a/a./...?q=..",
      "https://example.com//double//slash",
      "https://example.com/a?b?c/../d",
      "http://127.0.0.1:8080/..%2f/a", // "..%2f" is no dot segment
    ]
  ) {
    const url = toHttpUrl(s);
    assert(url.plain, s);
    assertStrictEquals(url.href, s);
    assertEquals(parts(s), whatwg(s));
    assertStrictEquals(url.url.href, s);
  }
});

Deno.test("toHttpUrl() leaves to the parser every string it would rewrite, and agrees with it", () => {
  for (
    const s of [
      "http://127.0.0.1:8080/a/./b", // dot segments
      "http://127.0.0.1:8080/a/../b",
      "http://127.0.0.1:8080/a/..",
      "http://127.0.0.1:8080/.?q",
      "http://127.0.0.1:8080/a/%2e/b", // a dot segment spelled %2e
      "http://127.0.0.1:8080/a/.%2E/b",
      "http://127.0.0.1:8080/a b", // percent-encoded
      "http://127.0.0.1:8080/a\\b", // a slash for http(s)
      "http://127.0.0.1:8080/a\tb\n", // removed
      "http://127.0.0.1:8080/a#frag", // not sent
      "http://127.0.0.1:8080/a?", // an empty query
      "http://127.0.0.1:8080/é",
      "http://127.0.0.1:8080/?it's",
      "http://127.0.0.1:8080/a|b^c[d]",
      " http://127.0.0.1:8080/a",
      "http://127.0.0.1:8080", // no path
      "HTTP://127.0.0.1:8080/a", // not the serializer's own spelling
      "http://127.0.0.1:08080/a",
      "http://user:pw@127.0.0.1:8080/a",
      "https://example.com:443/a",
      "https://EXAMPLE.com/a",
      "http://127.1:8080/a",
    ]
  ) {
    const url = toHttpUrl(s);
    assert(!url.plain, s);
    assertEquals(parts(s), whatwg(s), s);
  }
});

Deno.test("toHttpUrl() tells apart origins that share a prefix", () => {
  toHttpUrl("http://127.0.0.1:8080/"); // the last origin seen
  for (
    const s of [
      "http://127.0.0.1:80800/a",
      "http://127.0.0.1:8080@evil.test/a",
      "http://127.0.0.1:8080.evil.test/a",
      "http://127.0.0.1:8080:80/a",
      "https://127.0.0.1:8080/a",
    ]
  ) {
    let expected: ReturnType<typeof whatwg> | TypeError;
    try {
      expected = whatwg(s);
    } catch (e) {
      expected = e as TypeError;
    }
    if (expected instanceof TypeError) {
      assertThrows(() => toHttpUrl(s), TypeError, "invalid URL");
      continue;
    }
    assertEquals(parts(s), expected, s);
    assertStrictEquals(toHttpUrl(s).credentials, s.includes("@"), s);
  }
  assertThrows(() => toHttpUrl("http://127.0.0.1:0/a"), TypeError, "port 0");
});

Deno.test("toHttpUrl() agrees with the parser on 20,000 generated URLs, a third of them on the short path", () => {
  const next = random(0x5eed);
  const tokens = [
    "a",
    "Z",
    "0",
    "/",
    "/",
    "/",
    ".",
    "..",
    "%2e",
    "%2E",
    "%41",
    "%",
    "%zz",
    "?",
    "?",
    "=",
    "&",
    "@",
    ":",
    "~",
    "-",
    "_",
    "!",
    "$",
    "(",
    ")",
    "*",
    "+",
    ",",
    ";",
    "'",
    "#",
    " ",
    "\\",
    "\t",
    '"',
    "<",
    ">",
    "`",
    "{",
    "}",
    "|",
    "^",
    "[",
    "]",
    "é",
    "\u0000",
    "\u007f",
    "\u2028",
  ];
  let plain = 0;
  for (let n = 0; n < 20_000; n++) {
    let tail = "/";
    const length = 1 + Math.floor(next() * 8);
    // Mostly characters the short path takes, so that it is really exercised.
    const from = next() < 0.6 ? tokens.slice(0, 30) : tokens;
    for (let i = 0; i < length; i++) tail += pick(next, from);
    const s = pick(next, ORIGINS) + tail;
    const url = toHttpUrl(s);
    assertEquals(parts(s), whatwg(s), `case ${n}: ${JSON.stringify(s)}`);
    if (url.plain) {
      assertStrictEquals(url.href, s);
      plain++;
    }
  }
  assertGreater(plain, 6_000);
});

Deno.test("RequestWriter.encodeUrl() writes the bytes encode() writes, origins in turn and in runs", () => {
  const writers = [
    new RequestWriter({ method: "GET", keepAlive: true }),
    new RequestWriter({ method: "POST", body: "hi", keepAlive: false }),
    new RequestWriter({
      method: "GET",
      headers: { host: "virtual.test", "x-a": "1" },
      keepAlive: true,
    }),
  ];
  // Origins in turn, and in runs of two and three (where the bytes after the
  // target are kept for the next request), then back.
  const urls = [
    "http://127.0.0.1:8080/a?b=1",
    "https://example.com/x/y",
    "http://127.0.0.1:8080/c",
    "http://127.0.0.1:8080/d",
    "http://127.0.0.1:8080/e",
    "https://example.com/z",
    "https://example.com/",
    "http://user:pw@127.0.0.1:8080/private",
    "http://127.0.0.1:8080/a/../d#frag",
    "http://127.0.0.1:8080/f",
    "http://[::1]:9000/v6",
    "http://[::1]:9000/v6?again",
    "http://127.0.0.1:8080/g",
  ];
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  for (const writer of writers) {
    for (const s of urls) {
      assertStrictEquals(
        text(writer.encodeUrl(toHttpUrl(s))),
        text(writer.encode(new URL(s))),
        s,
      );
    }
  }
});

Deno.test("HttpClient.url is the caller's URL object, or one parsed from the string", () => {
  const given = new URL("http://127.0.0.1:8080/a");
  const client = new HttpClient(given, { timeout: 1_000 });
  const other = new HttpClient("http://127.0.0.1:8080/b", { timeout: 1_000 });
  try {
    assertStrictEquals(client.url, given);
    assert(other.url instanceof URL);
    assertStrictEquals(other.url.href, "http://127.0.0.1:8080/b");
    assertStrictEquals(other.url, other.url);
  } finally {
    client.close();
    other.close();
  }
});

Deno.test("toHttpUrl() forgets the origins it has seen past 1,024 of them, and parses their URLs again", () => {
  const first = "http://127.0.0.1:10000";
  toHttpUrl(`${first}/`);
  assert(toHttpUrl(`${first}/a`).plain);
  for (let port = 10_001; port <= 11_100; port++) {
    toHttpUrl(`http://127.0.0.1:${port}/`);
  }
  // The last origin is remembered (the short path), so the first is looked up.
  assert(toHttpUrl("http://127.0.0.1:11100/b").plain);
  const again = toHttpUrl(`${first}/a`);
  assert(!again.plain);
  assertEquals(parts(`${first}/a`), whatwg(`${first}/a`));
  assert(toHttpUrl(`${first}/a`).plain);
});

Deno.test('requestTarget() and responseUrl() keep an empty query\'s "?" and drop any fragment, an empty one too', () => {
  const cases: Array<[string, string, string]> = [
    ["http://h/x?", "/x?", "http://h/x?"],
    ["http://h/x?#", "/x?", "http://h/x?"],
    ["http://h/x?#f?", "/x?", "http://h/x?"],
    ["http://h/x#", "/x", "http://h/x"],
    ["http://h/x#?", "/x", "http://h/x"],
    ["http://u:p@h/x?q#f", "/x?q", "http://u:p@h/x?q"],
  ];
  for (const [input, target, shown] of cases) {
    assertEquals(requestTarget(new URL(input)), target, input);
    assertEquals(responseUrl(toHttpUrl(input)), shown, input);
  }
});
