/**
 * robots.txt as Google's robotstxt reads it where RFC 9309 leaves room, checked
 * against cases of its robots_test.cc: misspelt and prefixed keys, a missing
 * colon, a BOM, `*` as an agent, `index.html`, an empty query.
 */
import { assertEquals } from "@std/assert";
import { RobotsCache } from "../examples/crawl/robots.ts";
import { parseRobotsTxt } from "../examples/crawl/robots_txt.ts";

function fixed(body: string | Uint8Array, userAgent = "foobot") {
  return new RobotsCache(() => Promise.resolve({ status: 200, body }), {
    userAgent,
  });
}

const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);

Deno.test("RobotsCache.isAllowed() reads Google's misspellings of Disallow as Disallow", async () => {
  for (
    const key of ["disalow", "Dissallow", "dissalow", "DIASLLOW", "disallaw"]
  ) {
    const robots = fixed(`User-agent: *\n${key}: /private\n`);
    assertEquals(await robots.isAllowed("http://a.test/private/1"), false, key);
    assertEquals(await robots.isAllowed("http://a.test/public"), true, key);
  }
});

Deno.test("RobotsCache.isAllowed() reads a key by its prefix, as Google does: Disallowed, User-agents", async () => {
  assertEquals(
    await fixed("User-agent: *\nDisallowed: /p\n").isAllowed("http://a.test/p"),
    false,
  );
  assertEquals(
    await fixed("User-agents: foobot\nDisallow: /p\n").isAllowed(
      "http://a.test/p",
    ),
    false,
  );
  // A prefix of "allow" stays Allow, "disallow" is tested first in no case
  // where it matters: "allowed" is not a prefix of "disallow".
  assertEquals(
    await fixed("User-agent: *\nDisallow: /\nAllowed: /ok\n").isAllowed(
      "http://a.test/ok",
    ),
    true,
  );
});

Deno.test("RobotsCache.isAllowed() reads a two-word line without a colon as key and value", async () => {
  assertEquals(
    await fixed("user-agent FooBot\ndisallow /\n").isAllowed(
      "http://foo.bar/x/y",
    ),
    false,
  );
  assertEquals(
    await fixed("User-agent: *\nDisallow\t/private\n").isAllowed(
      "http://foo.bar/private",
    ),
    false,
  );
  // Three words: not a rule (Google: only exactly two).
  assertEquals(
    await fixed("User-agent: *\nDisallow /p q\n").isAllowed("http://foo.bar/p"),
    true,
  );
  // Unknown keys stay unknown.
  assertEquals(
    await fixed("foo FooBot\nbar /\n").isAllowed("http://foo.bar/x/y"),
    true,
  );
});

Deno.test("RobotsCache.isAllowed() skips a leading UTF-8 BOM, whole or partial, in any file", async () => {
  const rest = "User-Agent: foo\nDisallow: /AnyValue\n";
  for (
    const [name, body] of [
      ["whole BOM", latin1("\xEF\xBB\xBF" + rest)],
      ["2-byte partial BOM", latin1("\xEF\xBB" + rest)],
      ["1-byte partial BOM", latin1("\xEF" + rest)],
      [
        "whole BOM, a Latin-1 byte later",
        latin1("\xEF\xBB\xBF" + rest + "# caf\xE9\n"),
      ],
    ] as const
  ) {
    assertEquals(
      await fixed(body, "foo").isAllowed("http://foo.bar/AnyValue"),
      false,
      name,
    );
  }
  // A broken BOM is garbage on the first line (Google: that line is lost).
  assertEquals(
    await fixed(latin1("\xEF\x11\xBF" + rest), "foo").isAllowed(
      "http://foo.bar/AnyValue",
    ),
    true,
  );
});

Deno.test("parseRobotsTxt() skips a leading U+FEFF", () => {
  const robots = parseRobotsTxt("\uFEFFUser-agent: *\nDisallow: /\n");
  assertEquals(robots.isAllowed("/x", "foo"), false);
});

Deno.test("RobotsCache.isAllowed() reads only a lone * (or * and a space) as any crawler", async () => {
  assertEquals(
    await fixed("User-agent: *bot\nDisallow: /\n").isAllowed("http://a.test/x"),
    true,
  );
  assertEquals(
    await fixed("User-agent: * everyone\nDisallow: /\n").isAllowed(
      "http://a.test/x",
    ),
    false,
  );
  assertEquals(
    await fixed("User-agent: *\nDisallow: /\n").isAllowed("http://a.test/x"),
    false,
  );
});

Deno.test("RobotsCache.isAllowed() reads Allow: /dir/index.html as allowing /dir/ too, as Google does", async () => {
  const robots = new RobotsCache(() =>
    Promise.resolve({
      status: 200,
      body: "User-Agent: *\nAllow: /allowed-slash/index.html\nDisallow: /\n",
    })
  );
  assertEquals(await robots.isAllowed("http://foo.com/allowed-slash/"), true);
  assertEquals(
    await robots.isAllowed("http://foo.com/allowed-slash/index.htm"),
    false,
  );
  assertEquals(
    await robots.isAllowed("http://foo.com/allowed-slash/index.html"),
    true,
  );
  assertEquals(await robots.isAllowed("http://foo.com/allowed-slash/x"), false);
  assertEquals(await robots.isAllowed("http://foo.com/anyother-url"), false);
});

Deno.test("RobotsCache.isAllowed() matches a URL's empty query: /page? is no /page", async () => {
  const robots = new RobotsCache(
    () =>
      Promise.resolve({
        status: 200,
        body: "User-agent: *\nDisallow: /*?\n",
      }),
  );
  assertEquals(await robots.isAllowed("http://a.test/page?"), false);
  assertEquals(await robots.isAllowed("http://a.test/page?#top"), false);
  assertEquals(await robots.isAllowed("http://a.test/page"), true);
  assertEquals(await robots.isAllowed("http://a.test/page#a?b"), true);
  // And the other way: `/exact$` is not `/exact?`.
  const exact = new RobotsCache(
    () =>
      Promise.resolve({
        status: 200,
        body: "User-agent: *\nDisallow: /exact$\n",
      }),
  );
  assertEquals(await exact.isAllowed("http://a.test/exact"), false);
  assertEquals(await exact.isAllowed("http://a.test/exact?"), true);
});
