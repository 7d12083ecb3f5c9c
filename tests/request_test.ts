import {
  assert,
  assertEquals,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import {
  buildWriter,
  DEFAULT_ACCEPT_ENCODING,
  DEFAULT_USER_AGENT,
  encodeRequest,
  type EncodeRequestInit,
  normalizeHeaders,
  RequestWriter,
  validateMethod,
} from "../client/_request.ts";
import { parseProxy } from "../client/_proxy.ts";
import { toHttpUrl } from "../client/_http_url.ts";

function text(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}

function encode(
  url: string,
  init: Partial<EncodeRequestInit> = {},
): string {
  return text(
    encodeRequest({
      method: "GET",
      url: new URL(url),
      keepAlive: true,
      ...init,
    }),
  );
}

const DEFAULTS =
  `User-Agent: ${DEFAULT_USER_AGENT}\r\nAccept: */*\r\nAccept-Encoding: ${DEFAULT_ACCEPT_ENCODING}\r\n`;

Deno.test("encodeRequest() writes a plain GET", () => {
  assertStrictEquals(
    encode("http://example.com/"),
    `GET / HTTP/1.1\r\nHost: example.com\r\n${DEFAULTS}\r\n`,
  );
  assertStrictEquals(DEFAULT_USER_AGENT, "selectors-deno/0.1");
  assertStrictEquals(DEFAULT_ACCEPT_ENCODING, "gzip, deflate, br, zstd");
});

Deno.test("encodeRequest() writes a POST with its body and caller's headers", () => {
  const bytes = encodeRequest({
    method: "post",
    url: new URL("https://api.example.com:8443/v1/items?x=1&y=%20#frag"),
    headers: { "Content-Type": "application/json", "X-Request-Id": "42" },
    body: new TextEncoder().encode('{"a":1}'),
    keepAlive: false,
  });
  assertStrictEquals(
    text(bytes),
    "POST /v1/items?x=1&y=%20 HTTP/1.1\r\nHost: api.example.com:8443\r\n" +
      DEFAULTS +
      "Connection: close\r\ncontent-type: application/json\r\nx-request-id: 42\r\n" +
      'Content-Length: 7\r\n\r\n{"a":1}',
  );
});

Deno.test("encodeRequest() omits default ports from Host", () => {
  const host = (url: string) => encode(url).split("\r\n")[1];
  assertStrictEquals(host("http://example.com:80/"), "Host: example.com");
  assertStrictEquals(host("https://example.com:443/"), "Host: example.com");
  assertStrictEquals(host("http://example.com:443/"), "Host: example.com:443");
  assertStrictEquals(host("https://example.com:80/"), "Host: example.com:80");
  assertStrictEquals(host("http://127.0.0.1:8080/"), "Host: 127.0.0.1:8080");
});

Deno.test("encodeRequest() brackets IPv6 hosts", () => {
  const host = (url: string) => encode(url).split("\r\n")[1];
  assertStrictEquals(host("http://[::1]:8080/"), "Host: [::1]:8080");
  assertStrictEquals(host("http://[::1]/"), "Host: [::1]");
  assertStrictEquals(
    host("https://[2001:db8::1]:443/x"),
    "Host: [2001:db8::1]",
  );
});

Deno.test("encodeRequest() keeps the query and drops the fragment", () => {
  const line = (url: string) => encode(url).split("\r\n")[0];
  assertStrictEquals(
    line("http://h/a/b?c=d&e#frag"),
    "GET /a/b?c=d&e HTTP/1.1",
  );
  assertStrictEquals(line("http://h#frag"), "GET / HTTP/1.1");
  assertStrictEquals(line("http://h/?"), "GET /? HTTP/1.1");
  // Spaces and non-ASCII are percent-encoded by the URL parser.
  assertStrictEquals(
    line("http://h/a b/é?q=ü"),
    "GET /a%20b/%C3%A9?q=%C3%BC HTTP/1.1",
  );
});

Deno.test("encodeRequest() sends URL credentials as Authorization: Basic, percent-decoded", () => {
  const request = encode("http://us%40er:p%C3%A4ss%3Aw@example.com/private");
  assertStrictEquals(request.includes("p%C3%A4ss"), false);
  assertStrictEquals(request.split("\r\n")[0], "GET /private HTTP/1.1");
  // base64 of the bytes "us@er:p\xc3\xa4ss:w" (UTF-8 of "pass" with an a-umlaut)
  assertStrictEquals(
    request.split("\r\n")[2],
    `Authorization: Basic ${btoa("us@er:p\xc3\xa4ss:w")}`,
  );
  assertStrictEquals(
    encode("http://user@h/").split("\r\n")[2],
    `Authorization: Basic ${btoa("user:")}`,
  );
  assertStrictEquals(
    encode("http://:pw@h/").split("\r\n")[2],
    `Authorization: Basic ${btoa(":pw")}`,
  );
  // A malformed escape is sent as written.
  assertStrictEquals(
    encode("http://a%zz:b@h/").split("\r\n")[2],
    `Authorization: Basic ${btoa("a%zz:b")}`,
  );
});

Deno.test("encodeRequest() leaves a caller's Authorization alone and adds none without credentials", () => {
  const request = encode("http://user:secret@example.com/", {
    headers: { authorization: "Bearer t0k3n" },
  });
  assertStrictEquals(request.match(/authorization/gi)?.length, 1);
  assertStrictEquals(request.includes("authorization: Bearer t0k3n"), true);
  assertStrictEquals(
    encode("http://example.com/").includes("Authorization"),
    false,
  );
  // An "@" outside the authority is no userinfo; nor is an empty one.
  for (const url of ["http://h/a@b?c=d@e", "http://@h/"]) {
    assertStrictEquals(encode(url).includes("Authorization"), false, url);
  }
});

Deno.test("encodeRequest() joins repeated fields it manages, as Headers does", () => {
  assertStrictEquals(
    encode("http://h/", {
      headers: [["Accept", "text/html"], ["accept", "*/*;q=0.1"]],
    }).split("\r\n")[3],
    "Accept: text/html, */*;q=0.1",
  );
});

Deno.test("encodeRequest() lets the caller replace the default headers", () => {
  assertStrictEquals(
    encode("http://example.com/", {
      headers: {
        "accept-encoding": "identity",
        "User-Agent": "custom/1",
        accept: "text/html",
        host: "virtual.example",
      },
    }),
    "GET / HTTP/1.1\r\nHost: virtual.example\r\nUser-Agent: custom/1\r\n" +
      "Accept: text/html\r\nAccept-Encoding: identity\r\n\r\n",
  );
  assertStrictEquals(
    encode("http://example.com/", { userAgent: "option/2" }).split("\r\n")[2],
    "User-Agent: option/2",
  );
});

Deno.test("encodeRequest() sends the default Accept-Encoding whatever decompress says", () => {
  for (const decompress of [true, false]) {
    assertStrictEquals(
      encode("http://h/", { decompress }).includes(
        "\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n",
      ),
      true,
    );
  }
});

Deno.test("encodeRequest() asks for identity with a Range header unless Accept-Encoding is set", () => {
  assertStrictEquals(
    encode("http://h/", { headers: { range: "bytes=0-99" } }).split("\r\n")[4],
    "Accept-Encoding: identity",
  );
  assertStrictEquals(
    encode("http://h/", {
      headers: { range: "bytes=0-99", "accept-encoding": "br" },
    }).split("\r\n")[4],
    "Accept-Encoding: br",
  );
});

Deno.test("encodeRequest() writes Connection only when it is not to be kept", () => {
  assertStrictEquals(encode("http://h/").includes("Connection"), false);
  assertStrictEquals(
    encode("http://h/", { keepAlive: false }).includes(
      "\r\nConnection: close\r\n",
    ),
    true,
  );
  assertStrictEquals(
    encode("http://h/", {
      keepAlive: false,
      headers: { connection: "keep-alive" },
    }).includes("\r\nConnection: close\r\n"),
    true,
  );
  assertStrictEquals(
    encode("http://h/", { headers: { connection: "close" } }).includes(
      "\r\nConnection: close\r\n",
    ),
    true,
  );
});

Deno.test("encodeRequest() frames the body itself", () => {
  const tail = (init: Partial<EncodeRequestInit>) =>
    encode("http://h/", init).split("\r\n").slice(5).join("|");
  assertStrictEquals(tail({ method: "POST" }), "Content-Length: 0||");
  assertStrictEquals(tail({ method: "PUT" }), "Content-Length: 0||");
  assertStrictEquals(tail({ method: "PATCH" }), "Content-Length: 0||");
  assertStrictEquals(tail({ method: "DELETE" }), "|");
  assertStrictEquals(
    tail({ method: "OPTIONS", body: new Uint8Array(0) }),
    "Content-Length: 0||",
  );
  assertStrictEquals(
    tail({
      method: "PUT",
      body: Uint8Array.of(1, 2, 3),
      headers: { "content-length": "99", "transfer-encoding": "chunked" },
    }),
    "Content-Length: 3||\x01\x02\x03",
  );
});

Deno.test("RequestWriter keeps a body of over 64 KiB out of the head it encodes (RequestWriter.body); encodeRequest() still returns both", () => {
  const large = new Uint8Array(64 * 1024 + 1).fill(0x61);
  const writer = new RequestWriter({
    method: "PUT",
    body: large,
    keepAlive: true,
  });
  assertEquals(writer.body?.length, large.length);
  assertStrictEquals(
    text(writer.encode(new URL("http://a.test/x"))),
    `PUT /x HTTP/1.1\r\nHost: a.test\r\n${DEFAULTS}Content-Length: 65537\r\n\r\n`,
  );
  const whole = encode("http://a.test/x", { method: "PUT", body: large });
  assertStrictEquals(
    whole.length,
    writer.encode(new URL("http://a.test/x")).length + large.length,
  );
  assertStrictEquals(whole.endsWith("a".repeat(100)), true);
  // 64 KiB exactly goes with the head, as smaller bodies do.
  const small = new RequestWriter({
    method: "PUT",
    body: new Uint8Array(64 * 1024),
    keepAlive: true,
  });
  assertStrictEquals(small.body, null);
});

Deno.test("encodeRequest() sends latin1 header values byte for byte", () => {
  const bytes = encodeRequest({
    method: "GET",
    url: new URL("http://h/"),
    headers: { "X-Name": "caf\xe9" },
    keepAlive: true,
  });
  const at = text(bytes).indexOf("caf");
  assertEquals([...bytes.subarray(at, at + 4)], [0x63, 0x61, 0x66, 0xe9]);
});

Deno.test("validateMethod() normalizes like fetch and keeps other tokens", () => {
  assertStrictEquals(validateMethod("get"), "GET");
  assertStrictEquals(validateMethod("Head"), "HEAD");
  assertStrictEquals(validateMethod("options"), "OPTIONS");
  assertStrictEquals(validateMethod("patch"), "patch");
  assertStrictEquals(validateMethod("PROPFIND"), "PROPFIND");
  assertStrictEquals(validateMethod("M-SEARCH"), "M-SEARCH");
});

Deno.test("validateMethod() rejects CR, LF, NUL and other non-token methods", () => {
  for (
    const method of [
      "GET\r\nX-Evil: 1",
      "GET\n",
      "GE\rT",
      "GET\0",
      "G ET",
      "GET /",
      "",
      "GÉT",
      "GET(",
      "\tGET",
    ]
  ) {
    assertThrows(
      () => validateMethod(method),
      TypeError,
      "Cannot build request: invalid method",
    );
    assertThrows(
      () =>
        encodeRequest({ method, url: new URL("http://h/"), keepAlive: true }),
      TypeError,
      "invalid method",
    );
  }
  assertThrows(
    () => validateMethod("CONNECT"),
    TypeError,
    "unsupported method",
  );
  assertThrows(
    () => validateMethod(42 as unknown as string),
    TypeError,
    "invalid method",
  );
});

Deno.test("normalizeHeaders() and encodeRequest() reject every control but HTAB in header values, from a record, pairs, a Headers or userAgent, as fetch does", () => {
  for (
    const value of ["a\x01b", "\x0cleading", "trailing\x0b", "a\x7fb", "\x1f"]
  ) {
    for (
      const init of [
        { "X-A": value },
        [["X-A", value]],
        new Headers({ "X-A": value }),
      ] as HeadersInit[]
    ) {
      assertThrows(
        () => normalizeHeaders(init),
        TypeError,
        "a control character in the value of header",
      );
    }
    assertThrows(
      () =>
        encodeRequest({
          method: "GET",
          url: new URL("http://h/"),
          keepAlive: true,
          userAgent: value,
        }),
      TypeError,
      'a control character in the value of header "User-Agent"',
    );
  }
  // DEL shows escaped in the message (JSON leaves it as it is).
  assertThrows(
    () => normalizeHeaders({ "X-A": "a\x7f" }),
    TypeError,
    '"a\\u007f"',
  );
  // HTAB inside, and latin1 bytes (obs-text), are field-value.
  assertEquals(normalizeHeaders({ "X-A": "a\tb\xe9" }).get("x-a"), "a\tb\xe9");
});

Deno.test("normalizeHeaders() rejects CR, LF and NUL in header values", () => {
  for (
    const value of [
      "a\r\nX-Evil: 1",
      "a\nb",
      "a\rb",
      "a\0b",
      "trailing\r\n",
      "\nleading",
    ]
  ) {
    for (
      const init of [
        { "X-A": value },
        [["X-A", value]],
      ] as HeadersInit[]
    ) {
      assertThrows(
        () => normalizeHeaders(init),
        TypeError,
        'CR, LF or NUL in the value of header "X-A"',
      );
      assertThrows(
        () =>
          encodeRequest({
            method: "GET",
            url: new URL("http://h/"),
            headers: init,
            keepAlive: true,
          }),
        TypeError,
        "Cannot build request",
      );
    }
  }
});

Deno.test("normalizeHeaders() rejects CR, LF, NUL and other non-token header names", () => {
  for (
    const name of [
      "X-A\r\nX-Evil",
      "X\nA",
      "X\rA",
      "X\0A",
      "X A",
      "X:A",
      "",
      "Ü",
    ]
  ) {
    assertThrows(
      () => normalizeHeaders({ [name]: "v" }),
      TypeError,
      "Cannot build request: invalid header name",
    );
    assertThrows(
      () => normalizeHeaders([[name, "v"]]),
      TypeError,
      "invalid header name",
    );
  }
});

Deno.test("normalizeHeaders() turns any other bad input into a TypeError", () => {
  assertThrows(
    () => normalizeHeaders(["ab"] as unknown as HeadersInit),
    TypeError,
    "received 1 items",
  );
  const throwing = (value: unknown) =>
    ({
      [Symbol.iterator]() {
        throw value;
      },
    }) as unknown as HeadersInit;
  assertThrows(
    () => normalizeHeaders(throwing(new RangeError("boom"))),
    TypeError,
    "Cannot build request: invalid headers: boom",
  );
  assertThrows(
    () => normalizeHeaders(throwing("plain")),
    TypeError,
    "Cannot build request: invalid headers: plain",
  );
  assertThrows(
    () => normalizeHeaders([["a", "b", "c"]] as unknown as HeadersInit),
    TypeError,
    "pair",
  );
  assertThrows(
    () => normalizeHeaders({ "X-A": "\u20ac" }),
    TypeError,
    "Cannot build request: invalid headers",
  );
  assertThrows(
    () => normalizeHeaders(42 as unknown as HeadersInit),
    TypeError,
    "Cannot build request",
  );
});

Deno.test("normalizeHeaders() copies valid input into a new Headers", () => {
  assertEquals([...normalizeHeaders(undefined)], []);
  const original = new Headers({ "X-A": "1" });
  const copy = normalizeHeaders(original);
  copy.set("x-b", "2");
  assertEquals([...original], [["x-a", "1"]]);
  assertEquals([...normalizeHeaders([["X-A", " padded\t"], ["x-a", "2"]])], [[
    "x-a",
    "padded, 2",
  ]]);
  assertEquals(
    normalizeHeaders(new Map([["Set-Cookie", "a=1"]]) as unknown as HeadersInit)
      .getSetCookie(),
    ["a=1"],
  );
});

Deno.test("encodeRequest() refuses URLs that are not http(s) or not what they claim", () => {
  assertThrows(
    () =>
      encodeRequest({
        method: "GET",
        url: new URL("ftp://h/"),
        keepAlive: true,
      }),
    TypeError,
    "unsupported URL scheme",
  );
  // A URL-like object whose parts were never through the WHATWG parser.
  const fake = {
    protocol: "http:",
    host: "h",
    pathname: "/a\r\nX-Evil: 1",
    search: "",
  } as unknown as URL;
  assertThrows(
    () => encodeRequest({ method: "GET", url: fake, keepAlive: true }),
    TypeError,
    "invalid request target",
  );
  const fakeHost = {
    protocol: "http:",
    host: "h\r\nX: 1",
    pathname: "/",
    search: "",
  } as unknown as URL;
  assertThrows(
    () => encodeRequest({ method: "GET", url: fakeHost, keepAlive: true }),
    TypeError,
    "invalid host",
  );
  // With the caller's Host and a proxy, the absolute-form still carries the
  // URL's host: it is checked too.
  const withHost = new RequestWriter({
    method: "GET",
    keepAlive: true,
    headers: new Headers({ Host: "h.test" }),
  });
  assertThrows(
    () =>
      withHost.encode(
        { ...fakeHost, protocol: "http:" } as unknown as URL,
        parseProxy("http://127.0.0.1:3128"),
      ),
    TypeError,
    "invalid host",
  );
  assertThrows(
    () =>
      encodeRequest({
        method: "GET",
        url: new URL("http://h/"),
        keepAlive: true,
        userAgent: "ua\r\nX-Evil: 1",
      }),
    TypeError,
    "CR, LF or NUL",
  );
  assertThrows(
    () =>
      encodeRequest({
        method: "GET",
        url: new URL("http://h/"),
        keepAlive: true,
        userAgent: "ua \u20ac",
      }),
    TypeError,
    "U+20AC cannot be sent in a header",
  );
});

Deno.test('RequestWriter and normalizeHeaders() send repeated Cookie fields as one, pairs joined by "; " (RFC 6265 section 5.4), not the ", " of other fields', () => {
  const pairs: [string, string][] = [
    ["Cookie", "a=1"],
    ["X-D", "1"],
    ["Cookie", "b=2"],
    ["X-D", "2"],
  ];
  const head = text(
    new RequestWriter({ method: "GET", keepAlive: true, headers: pairs })
      .encode(new URL("http://example.com/")),
  );
  assertEquals(head.match(/^cookie: .*$/gim), ["cookie: a=1; b=2"]);
  assertEquals(head.match(/^x-d: .*$/gim), ["x-d: 1", "x-d: 2"]);
  const headers = normalizeHeaders(pairs);
  assertEquals(headers.get("cookie"), "a=1; b=2");
  assertEquals(headers.get("x-d"), "1, 2");
});

Deno.test("RequestWriter.encode() with a proxy writes the absolute-form target and the proxy's Proxy-Authorization; a caller's own goes to the proxy, never to an origin", () => {
  const proxy = parseProxy("http://u:p%40ss@127.0.0.1:3128");
  const url = new URL("http://a:b@example.com:8080/x/y?q=1#frag");
  const writer = new RequestWriter({ method: "GET", keepAlive: true });
  assertEquals(
    text(writer.encode(url, proxy)),
    "GET http://example.com:8080/x/y?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n" +
      `Authorization: Basic ${btoa("a:b")}\r\n` +
      `Proxy-Authorization: Basic ${btoa("u:p@ss")}\r\n${DEFAULTS}\r\n`,
  );
  // Without a proxy the same writer writes origin-form.
  assertEquals(
    text(writer.encode(new URL("http://example.com/z"))),
    `GET /z HTTP/1.1\r\nHost: example.com\r\n${DEFAULTS}\r\n`,
  );
  // The caller's own Proxy-Authorization is kept, not doubled.
  const own = new RequestWriter({
    method: "GET",
    keepAlive: true,
    headers: { "proxy-authorization": "Bearer t" },
  });
  const head = text(own.encode(new URL("http://example.com/"), proxy));
  assertEquals(head.match(/Proxy-Authorization/gi)?.length, 1);
  assertEquals(/proxy-authorization: Bearer t\r\n/i.test(head), true);
  // To an origin, through a tunnel (it went in the CONNECT) or straight (a
  // NO_PROXY host), never.
  for (
    const direct of [
      own.encode(new URL("https://example.com/")),
      own.encodeUrl(toHttpUrl("https://example.com/")),
      own.encode(new URL("http://example.com/")),
      own.encodeUrl(toHttpUrl("http://example.com/")),
    ]
  ) {
    assertEquals(/proxy-authorization/i.test(text(direct)), false);
  }
});

Deno.test("buildWriter() takes the last writer for the same method, keepAlive and header fields of a bodiless request, however the fields are given, and builds one for anything else", () => {
  const url = toHttpUrl("http://example.com/a");
  const build = (
    init: Partial<EncodeRequestInit> = {},
    last?: ReturnType<typeof buildWriter>,
  ) => buildWriter({ method: "GET", keepAlive: true, ...init }, last);
  const ua = build({ headers: { "User-Agent": "seed " } });
  assertStrictEquals(build({ headers: [["user-agent", "seed"]] }, ua), ua);
  assertStrictEquals(
    build({ headers: new Headers({ "user-agent": "seed" }) }, ua),
    ua,
  );
  assertEquals(
    text(ua.writer.encodeUrl(url)),
    `GET /a HTTP/1.1\r\nHost: example.com\r\nUser-Agent: seed\r\nAccept: */*\r\nAccept-Encoding: ${DEFAULT_ACCEPT_ENCODING}\r\n\r\n`,
  );
  // Anything that changes the bytes is another writer.
  for (
    const init of [
      {},
      { method: "HEAD", headers: { "user-agent": "seed" } },
      { keepAlive: false, headers: { "user-agent": "seed" } },
      { headers: { "user-agent": "seed", "x-a": "1" } },
      { headers: { "user-agent": "seed2" } },
      { headers: { "user-agent": "seed" }, userAgent: "other" },
    ]
  ) {
    const other = build(init, ua);
    assert(other !== ua && other.writer !== ua.writer, JSON.stringify(init));
  }
  // A body is the request's own: never taken, never given.
  const post = build({ method: "POST", body: "x" });
  assertEquals(post.fields, null);
  assert(build({ method: "POST", body: "x" }, post).writer !== post.writer);
  // What cannot be sent throws what the constructor throws, a bad method
  // before bad headers.
  for (
    const init of [
      { method: "G ET" },
      { headers: { "x\n": "1" } },
      { method: "G ET", headers: { "x\n": "1" } },
    ]
  ) {
    const full = { method: "GET", keepAlive: true, ...init };
    const expected = assertThrows(() => new RequestWriter(full), TypeError);
    const got = assertThrows(() => buildWriter(full, ua), TypeError);
    assertStrictEquals(got.message, expected.message);
  }
});
