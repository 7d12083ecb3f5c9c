import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertStrictEquals,
  assertStringIncludes,
} from "@std/assert";
import { type HopRequest, nextHop } from "../client/_redirect.ts";
import { fetchAll, redirectLocation } from "../mod.ts";
import { readHead, scriptedServer, writeAll } from "./_client_util.ts";

function request(
  init: Partial<Omit<HopRequest, "url">> & { url: string },
): HopRequest {
  return {
    method: "GET",
    headers: new Headers(),
    body: null,
    ...init,
    url: new URL(init.url),
  };
}

function response(status: number, location?: string) {
  return { status, location: location ?? null };
}

Deno.test("nextHop() follows 301, 302, 307 and 308 with the method and body of the request", () => {
  const body = new Uint8Array([1]);
  for (const status of [301, 302, 307, 308]) {
    const next = nextHop(
      response(status, "/b"),
      request({ url: "http://a.test/a", method: "PUT", body }),
      0,
    );
    assertEquals(next.request?.url.href, "http://a.test/b");
    assertEquals(next.request?.method, "PUT");
    assertStrictEquals(next.request?.body, body);
  }
});

Deno.test("nextHop() turns 303 into GET without body or body headers, except for HEAD", () => {
  const headers = new Headers({
    "content-type": "text/plain",
    "content-language": "en",
    "x-keep": "1",
  });
  const next = nextHop(
    response(303, "/done"),
    request({ url: "http://a.test/form", method: "POST", body: "x", headers }),
    0,
  );
  assertEquals(next.request?.method, "GET");
  assertEquals(next.request?.body, null);
  assertEquals(next.request?.headers.get("content-type"), null);
  assertEquals(next.request?.headers.get("content-language"), null);
  assertEquals(next.request?.headers.get("x-keep"), "1");
  assertEquals(headers.get("content-type"), "text/plain", "input mutated");
  const head = nextHop(
    response(303, "/done"),
    request({ url: "http://a.test/", method: "HEAD" }),
    0,
  );
  assertEquals(head.request?.method, "HEAD");
});

Deno.test("nextHop() turns a POST into GET on 301 and 302 only", () => {
  for (
    const [status, method] of [[301, "GET"], [302, "GET"], [307, "POST"], [
      308,
      "POST",
    ]] as const
  ) {
    const next = nextHop(
      response(status, "/b"),
      request({ url: "http://a.test/", method: "POST", body: "x" }),
      0,
    );
    assertEquals(next.request?.method, method, String(status));
  }
  const put = nextHop(
    response(302, "/b"),
    request({ url: "http://a.test/", method: "PUT", body: "x" }),
    0,
  );
  assertEquals(put.request?.method, "PUT");
});

Deno.test("nextHop() drops credentials, a caller-set Host and URL userinfo on a cross-origin hop only", () => {
  const headers = new Headers({
    authorization: "Bearer t",
    cookie: "a=b",
    "proxy-authorization": "Basic x",
    host: "a.test",
    "x-keep": "1",
  });
  const cross = nextHop(
    response(302, "http://b.test/x"),
    request({ url: "http://u:p@a.test/", headers }),
    0,
  );
  for (
    const name of ["authorization", "cookie", "proxy-authorization", "host"]
  ) {
    assertEquals(cross.request?.headers.get(name), null, name);
  }
  assertEquals(cross.request?.headers.get("x-keep"), "1");
  assertEquals(cross.request?.url.href, "http://b.test/x");
  // Another port or scheme is another origin too.
  for (const location of ["http://a.test:8080/", "https://a.test/"]) {
    const next = nextHop(
      response(307, location),
      request({ url: "http://a.test/", headers }),
      0,
    );
    assertEquals(next.request?.headers.get("authorization"), null, location);
  }
  const same = nextHop(
    response(302, "/y"),
    request({ url: "http://u:p@a.test/", headers }),
    0,
  );
  assertStrictEquals(same.request?.headers, headers);
  assertEquals(same.request?.url.password, "p");
  const explicit = nextHop(
    response(302, "http://v:q@b.test/"),
    request({ url: "http://a.test/" }),
    0,
  );
  assertEquals(explicit.request?.url.username, "");
  assertEquals(explicit.request?.url.password, "");
});

Deno.test("nextHop() stops on a non-redirect, a missing or unusable Location, too many hops and a stream body", () => {
  const get = request({ url: "http://a.test/" });
  assertEquals(nextHop(response(200, "/x"), get, 0).stop, "not-redirect");
  assertEquals(nextHop(response(304, "/x"), get, 0).stop, "not-redirect");
  assertEquals(nextHop(response(302), get, 0).stop, "not-redirect");
  for (
    const location of ["http://[::1", "ftp://a.test/", "data:,x", "http://"]
  ) {
    const next = nextHop(response(302, location), get, 0);
    assertEquals(next.stop, "unusable-location", location);
    assertEquals(next.location, location);
  }
  assertEquals(nextHop(response(302, "/x"), get, 19).stop, null);
  assertEquals(
    nextHop(response(302, "/x"), get, 20).stop,
    "too-many-redirects",
  );
  assertEquals(
    nextHop(response(302, "/x"), get, 2, 2).stop,
    "too-many-redirects",
  );
  const stream = new ReadableStream<Uint8Array>();
  const post = request({ url: "http://a.test/", method: "POST", body: stream });
  assertEquals(
    nextHop(response(307, "/x"), post, 0).stop,
    "body-not-replayable",
  );
  // A 303 drops the body, so a stream is no obstacle.
  assert(nextHop(response(303, "/x"), post, 0).request !== null);
});

Deno.test("nextHop() resolves a relative Location and keeps the request's fragment", () => {
  const next = nextHop(
    response(301, "../c?q=1"),
    request({ url: "http://a.test/x/y/z#frag" }),
    0,
  );
  assertEquals(next.request?.url.href, "http://a.test/x/c?q=1#frag");
  const own = nextHop(
    response(301, "/c#own"),
    request({ url: "http://a.test/#frag" }),
    0,
  );
  assertEquals(own.request?.url.hash, "#own");
});

Deno.test("nextHop() reads a Location's raw UTF-8 bytes as UTF-8, as browsers and curl do, and percent-encodes other bytes as they came, as curl does", () => {
  // Field values arrive one byte a character: "é" in UTF-8 is "\u00c3\u00a9".
  const cases: Array<[string, string]> = [
    [
      "/caf\u00c3\u00a9?q=\u00e2\u0082\u00ac",
      "http://a.test/caf%C3%A9?q=%E2%82%AC",
    ],
    ["/caf\u00e9", "http://a.test/caf%E9"], // not UTF-8: Latin-1 "é"
    ["/\u00c3(", "http://a.test/%C3("], // a broken sequence, byte for byte
    // In the host, the URL parser's IDN form.
    ["http://caf\u00e9.test/\u00e9", "http://xn--caf-dma.test/%E9"],
    ["/plain%20x", "http://a.test/plain%20x"],
  ];
  for (const [location, href] of cases) {
    const next = nextHop(
      response(302, location),
      request({ url: "http://a.test/" }),
      0,
    );
    assertEquals(next.request?.url.href, href, location);
  }
});

/** Answers `/dup-*` with the Location fields its path names, anything else 200. */
function locationServer() {
  const heads: Record<string, string> = {
    "/dup-same": "Location: /target\r\nLocation: /target\r\n",
    "/dup-empty-first": "Location: \r\nLocation: /target\r\n",
    "/dup-differ": "Location: /a\r\nLocation: /b\r\n",
    "/only-empty": "Location: \r\n",
  };
  return scriptedServer(async (conn) => {
    const path = (await readHead(conn)).split(" ")[1] ?? "";
    const fields = heads[path];
    await writeAll(
      conn,
      new TextEncoder().encode(
        fields === undefined
          ? `HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\nConnection: close\r\n\r\n${path}`
          : `HTTP/1.1 301 Moved\r\n${fields}Content-Length: 0\r\nConnection: close\r\n\r\n`,
      ),
    );
  });
}

Deno.test("fetchAll() follows the first Location that is not empty: a repeated one, or one behind an empty field, leads to its target", async () => {
  await using server = locationServer();
  const results = await fetchAll(
    ["/dup-same", "/dup-empty-first", "/dup-differ", "/only-empty"].map((p) =>
      server.url(p)
    ),
    { keepAlive: false },
  );
  assertEquals(
    results.map((r) =>
      r.ok && `${r.response.status} ${new URL(r.response.url).pathname}`
    ),
    [
      "200 /target",
      // Before: the empty one led back to the same URL, 20 times.
      "200 /target",
      "200 /a",
      // No URL to go to: the 301 is the answer.
      "301 /only-empty",
    ],
  );
});

Deno.test("redirectLocation() of a response fetchAll got with redirect: manual gives its first non-empty Location, not the fields joined", async () => {
  await using server = locationServer();
  const results = await fetchAll(
    ["/dup-same", "/dup-empty-first", "/dup-differ", "/only-empty", "/x"].map(
      (p) => server.url(p),
    ),
    { keepAlive: false, redirect: "manual" },
  );
  assertEquals(
    results.map((r) => r.ok ? redirectLocation(r.response) : "failed"),
    ["/target", "/target", "/a", null, null],
  );
  // The joined value, which the crawl CLI followed before: no URL.
  const first = results[0]!;
  assert(first.ok);
  assertEquals(first.response.headers.get("location"), "/target, /target");
});

Deno.test("redirectLocation() gives a 300 Multiple Choices' Location, which fetchAll does not follow (as fetch), for code that does (as curl and wget)", async () => {
  await using server = scriptedServer(async (conn) => {
    await readHead(conn);
    await writeAll(
      conn,
      new TextEncoder().encode(
        "HTTP/1.1 300 Multiple Choices\r\nLocation: /choice1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
      ),
    );
  });
  const [result] = await fetchAll([server.url("/c300")]);
  assert(result?.ok);
  assertEquals(result.response.status, 300);
  assertEquals(redirectLocation(result.response), "/choice1");
  assertEquals(
    redirectLocation({ status: 305, headers: new Headers({ location: "/p" }) }),
    null,
  );
});

Deno.test("fetchAll() names where a connect failed, as curl does: a redirect's refused target is not the result's URL, and the error keeps its kind, code and cause", async () => {
  const refused = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const refusedPort = refused.addr.port;
  refused.close();
  await using server = scriptedServer(async (conn) => {
    await readHead(conn);
    await writeAll(
      conn,
      new TextEncoder().encode(
        `HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:${refusedPort}/gone\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      ),
    );
  });
  const results = await fetchAll([
    server.url("/moved"),
    `http://127.0.0.1:${refusedPort}/direct`,
  ], { keepAlive: false });
  for (const result of results) {
    assert(!result.ok);
    const error = result.error as Error & { code?: string };
    assertInstanceOf(error, Deno.errors.ConnectionRefused);
    assertStringIncludes(
      error.message,
      `Cannot connect to 127.0.0.1:${refusedPort}: `,
    );
    assertEquals(error.code, "ECONNREFUSED");
    assertInstanceOf(error.cause, Deno.errors.ConnectionRefused);
  }
  assertEquals(results[0]!.url, server.url("/moved"));
});

Deno.test('fetchAll() of a host whose name does not resolve names it once: the lookup\'s "Cannot connect to" is not prefixed again with host:port', async () => {
  const [result] = await fetchAll(["http://selectors-test.invalid:8/"], {
    retry: { limit: 0 },
  });
  assert(result !== undefined && !result.ok);
  const error = result.error as Error;
  assert(
    error.message.startsWith('Cannot connect to "selectors-test.invalid": '),
    error.message,
  );
  assertEquals(error.message.split("Cannot connect to").length, 2);
});
