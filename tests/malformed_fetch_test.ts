import { assert, assertEquals, assertInstanceOf } from "@std/assert";
import { fetchAll, HttpParseError } from "../mod.ts";
import { ACCEPTED, MALFORMED } from "./_malformed_corpus.ts";
import { rawServer, writeSplit } from "./_raw_http.ts";

const GOOD = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

Deno.test(`fetchAll() fails each of the ${MALFORMED.length} malformed responses with its HttpParseError code, and a good URL in the same batch succeeds`, async () => {
  await using server = rawServer(async ({ conn, path }) => {
    const index = Number(path.slice(1));
    await writeSplit(
      conn,
      Number.isNaN(index) ? GOOD : MALFORMED[index]!.bytes,
    );
    return "close";
  });
  for (const method of new Set(MALFORMED.map((c) => c.method ?? "GET"))) {
    const cases = MALFORMED.map((c, i) => ({ c, i })).filter(({ c }) =>
      (c.method ?? "GET") === method
    );
    const urls = [
      server.url("/good"),
      ...cases.map(({ i }) => server.url(`/${i}`)),
      server.url("/good"),
    ];
    const results = await fetchAll(urls, {
      method,
      keepAlive: false,
      concurrency: 16,
      timeout: 5_000,
    });
    for (const r of [results[0], results.at(-1)]) {
      assert(r?.ok, `the good URL failed: ${r?.ok === false ? r.error : ""}`);
      assertEquals(
        new TextDecoder().decode(r.response.body),
        method === "HEAD" ? "" : "ok",
      );
    }
    cases.forEach(({ c }, k) => {
      const r = results[k + 1]!;
      assert(
        !r.ok,
        `${c.name}: expected ${c.code}, got a ${
          r.ok && r.response.status
        } response`,
      );
      assertInstanceOf(r.error, HttpParseError, `${c.name}: ${r.error}`);
      assertEquals(r.error.code, c.code, `${c.name}: ${r.error.message}`);
    });
  }
});

Deno.test(`fetchAll() reads each of the ${ACCEPTED.length} tolerated responses as RFC 9112 lets a user agent read them`, async () => {
  await using server = rawServer(async ({ conn, path }) => {
    await writeSplit(conn, ACCEPTED[Number(path.slice(1))]!.bytes);
    return "close";
  });
  const results = await fetchAll(ACCEPTED.map((_, i) => server.url(`/${i}`)), {
    keepAlive: false,
    concurrency: 16,
    timeout: 5_000,
  });
  ACCEPTED.forEach((c, i) => {
    const r = results[i]!;
    assert(r.ok, `${c.name}: ${!r.ok && r.error}`);
    assertEquals(r.response.status, c.status, c.name);
    if (c.statusText !== undefined) {
      assertEquals(r.response.statusText, c.statusText, c.name);
    }
    for (const [name, value] of Object.entries(c.headers)) {
      assertEquals(r.response.headers.get(name), value, `${c.name}: ${name}`);
    }
    assertEquals(
      String.fromCharCode(...r.response.body),
      c.body,
      c.name,
    );
  });
});
