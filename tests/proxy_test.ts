import {
  assert,
  assertEquals,
  assertMatch,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  absoluteTarget,
  connectAuthority,
  encodeConnect,
  matchesNoProxy,
  parseProxy,
  type ProxyConfig,
  proxyFromEnv,
} from "../client/_proxy.ts";
import { ProxyError } from "../client/proxy_error.ts";
import { startMiniProxy } from "./_mini_proxy.ts";
import {
  startTinyproxy,
  type Tinyproxy,
  tinyproxyTest as test,
} from "./_tinyproxy.ts";
import {
  bytesEqual,
  closeQuietly,
  concat,
  indexOf,
  readAll,
  Rng,
  within,
} from "./_net.ts";
import { ca, listenTls } from "./_tls.ts";

const encoder = new TextEncoder();
const HEAD_END = encoder.encode("\r\n\r\n");
const decoder = new TextDecoder();

// ---------------------------------------------------------------------------
// parseProxy()

Deno.test("parseProxy() reads host, port, authority and origin", () => {
  const cases: Array<
    [string | URL, Omit<ProxyConfig, "key" | "authorization">]
  > = [
    ["http://127.0.0.1:8888", {
      host: "127.0.0.1",
      port: 8888,
      authority: "127.0.0.1:8888",
      origin: "http://127.0.0.1:8888",
    }],
    ["http://Proxy.Example:3128/", {
      host: "proxy.example",
      port: 3128,
      authority: "proxy.example:3128",
      origin: "http://proxy.example:3128",
    }],
    ["HTTP://proxy.example", {
      host: "proxy.example",
      port: 80,
      authority: "proxy.example:80",
      origin: "http://proxy.example:80",
    }],
    ["http://[::1]:3128", {
      host: "::1",
      port: 3128,
      authority: "[::1]:3128",
      origin: "http://[::1]:3128",
    }],
    ["http://[0:0:0:0:0:0:0:1]", {
      host: "::1",
      port: 80,
      authority: "[::1]:80",
      origin: "http://[::1]:80",
    }],
    [new URL("http://10.0.0.1:65535"), {
      host: "10.0.0.1",
      port: 65535,
      authority: "10.0.0.1:65535",
      origin: "http://10.0.0.1:65535",
    }],
  ];
  for (const [input, expected] of cases) {
    const proxy = parseProxy(input);
    assertEquals(
      {
        host: proxy.host,
        port: proxy.port,
        authority: proxy.authority,
        origin: proxy.origin,
      },
      expected,
      String(input),
    );
    assertEquals(proxy.authorization, null, String(input));
    assertEquals(proxy.key, proxy.origin, String(input));
  }
});

Deno.test("parseProxy() turns percent-decoded userinfo into a Basic Proxy-Authorization", () => {
  // Expected values computed apart, with Python's base64 over the UTF-8 bytes.
  const cases: Array<[string, string]> = [
    ["http://alice:s3cret@h:1", "Basic YWxpY2U6czNjcmV0"],
    ["http://al%69ce:p%40ss%3Aw0rd@h:1", "Basic YWxpY2U6cEBzczp3MHJk"],
    ["http://alice@h:1", "Basic YWxpY2U6"],
    ["http://alice:@h:1", "Basic YWxpY2U6"],
    ["http://:pw@h:1", "Basic OnB3"],
    ["http://J%C3%B6rg:p%C3%A4ss@h:1", "Basic SsO2cmc6cMOkc3M="],
    ["http://Jörg:päss@h:1", "Basic SsO2cmc6cMOkc3M="],
  ];
  for (const [input, expected] of cases) {
    assertEquals(parseProxy(input).authorization, expected, input);
  }
});

Deno.test("parseProxy() key tells credentials apart without holding them", () => {
  const plain = parseProxy("http://127.0.0.1:8888");
  const alice = parseProxy("http://alice:s3cret@127.0.0.1:8888");
  const alice2 = parseProxy("http://alice:s3cret@127.0.0.1:8888/");
  const bob = parseProxy("http://bob:s3cret@127.0.0.1:8888");
  assertEquals(alice.key, alice2.key);
  assertNotEquals(alice.key, plain.key);
  assertNotEquals(alice.key, bob.key);
  assertMatch(alice.key, /^http:\/\/127\.0\.0\.1:8888#[0-9a-f]{16}$/);
  // A pair that 32 bits of FNV-1a did not tell apart.
  assertNotEquals(
    parseProxy("http://user76823:pw@127.0.0.1:8888").key,
    parseProxy("http://user106400:pw@127.0.0.1:8888").key,
  );
  for (const proxy of [alice, bob]) {
    assert(!proxy.key.includes("s3cret"));
    assert(!proxy.key.includes(proxy.authorization!.slice(6)));
    assert(!proxy.origin.includes("s3cret") && !proxy.authority.includes("@"));
  }
});

Deno.test("parseProxy() refuses what is not an http proxy URL, never showing the password", () => {
  const cases: Array<[unknown, string]> = [
    ["https://u:hunter2@h:443", "https proxies are not supported"],
    ["socks5://u:hunter2@h:1080", 'unsupported scheme "socks5:"'],
    ["http://u:hunter2@h:1/path", "no path, query or fragment"],
    ["http://u:hunter2@h:1/?", "no path, query or fragment"],
    ["http://u:hunter2@h:1/?q=1", "no path, query or fragment"],
    ["http://u:hunter2@h:1/#", "no path, query or fragment"],
    ["http://u:hunter2@h:0", "port 0"],
    ["http://u:hunter2@h:99999", "not a valid URL"],
    ["http://u:hunter2@:1", "not a valid URL"],
    ["u:hunter2@h:1", "expected a URL like http://host:port"],
    ["h:1", "expected a URL like http://host:port"],
    ["http://u%3Ax:hunter2@h:1", "user name holds a colon"],
    ["http://u%zz:hunter2@h:1", "user name is not valid percent-encoding"],
    ["http://u:hunter2%zz@h:1", "password is not valid percent-encoding"],
    [42, "expected a string or URL, received number"],
  ];
  assertThrows(
    () => parseProxy("socks5://h:1080"),
    TypeError,
    'Cannot use proxy socks5://h:1080: unsupported scheme "socks5:"',
  );
  for (const [input, fragment] of cases) {
    const error = assertThrows(
      () => parseProxy(input as string),
      TypeError,
      fragment,
      String(input),
    );
    assert(error.message.startsWith("Cannot use proxy"), error.message);
    assert(!error.message.includes("hunter2"), error.message);
  }
  assertThrows(
    () => parseProxy("http://u:hunter2@h:1/x"),
    TypeError,
    "Cannot use proxy http://u:***@h:1/x: a proxy URL has no path",
  );
});

// ---------------------------------------------------------------------------
// matchesNoProxy() and proxyFromEnv()

Deno.test("matchesNoProxy() matches names, suffixes, IPs, CIDR and ports like curl", () => {
  const cases: Array<[string, string, boolean]> = [
    // Names: the host itself and its subdomains, never a longer label.
    ["http://example.com/", "example.com", true],
    ["http://a.example.com/", "example.com", true],
    ["http://a.b.example.com/", "example.com", true],
    ["http://badexample.com/", "example.com", false],
    ["http://example.com.org/", "example.com", false],
    ["http://example.com/", "a.example.com", false],
    ["http://a.example.com/", ".example.com", true],
    ["http://example.com/", ".example.com", true],
    ["http://EXAMPLE.com./", "Example.COM.", true],
    ["http://xn--bcher-kva.example/", "bücher.example", true],
    ["http://localhost/", "localhost", true],
    ["http://localhost/", "127.0.0.1", false],
    // Lists: commas and blanks; `*` alone matches all, `*` in a list nothing.
    ["http://example.com/", "*", true],
    ["http://example.com/", " * ", true],
    ["http://example.com/", "other.org,*", false],
    ["http://example.com/", "*.example.com", false],
    ["http://example.com/", "", false],
    ["http://example.com/", "a.org,,  example.com", true],
    ["http://example.com/", "a.org example.com", true],
    ["http://example.com/", "a.org\texample.com", true],
    ["http://example.com/", "a.org, b.org", false],
    // Ports: an entry's port must equal the URL's, default filled in.
    ["http://example.com/", "example.com:80", true],
    ["http://example.com/", "example.com:8080", false],
    ["https://example.com/", "example.com:443", true],
    ["https://example.com/", "example.com:80", false],
    ["http://example.com:8080/", "example.com:8080", true],
    ["http://a.example.com:8080/", ".example.com:8080", true],
    ["http://example.com/", "example.com:0", false],
    ["http://example.com/", "example.com:x", false],
    // IPv4: compared as addresses, optional CIDR prefix.
    ["http://127.0.0.1:8080/", "127.0.0.1", true],
    ["http://127.1/", "127.0.0.1", true],
    ["http://127.0.0.1/", "127.0.0.2", false],
    ["http://127.0.0.1/", "127.0.0.0/8", true],
    ["http://127.0.0.1/", "10.0.0.0/8", false],
    ["http://192.168.1.7/", "192.168.0.0/16", true],
    ["http://192.169.1.7/", "192.168.0.0/16", false],
    ["http://127.0.0.1/", "127.0.0.1/33", false],
    ["http://127.0.0.1/", "127.0.0.1/32", true],
    ["http://127.0.0.1:8080/", "127.0.0.1:8080", true],
    ["http://127.0.0.1:8080/", "127.0.0.1:9090", false],
    ["http://127.0.0.1/", "::1", false],
    // IPv6: bare (as curl writes them) or bracketed (with a port).
    ["http://[::1]:8080/", "::1", true],
    ["http://[::1]:8080/", "[::1]", true],
    ["http://[::1]:8080/", "[::1]:8080", true],
    ["http://[::1]:8080/", "[::1]:9090", false],
    ["http://[::1]/", "0:0:0:0:0:0:0:1", true],
    ["http://[::1]/", "::2", false],
    ["http://[::1]/", "127.0.0.1", false],
    ["http://[fe80::1]/", "fe80::/10", true],
    ["http://[febf::1]/", "fe80::/10", true],
    ["http://[fec0::1]/", "fe80::/10", false],
    ["http://[2001:db8::1]/", "2001:db8::/32", true],
    ["http://[2001:db9::1]/", "2001:db8::/32", false],
    ["http://[::ffff:7f00:1]/", "::ffff:127.0.0.1", true],
    ["http://[::1]/", "::1/129", false],
    ["http://[::1]/", "1:::2", false],
    // Entries that can never match are skipped, not fatal.
    ["http://[::1]:8080/", "[::1, [::1]x, [::1]8080", false],
    ["http://example.com/", ",example.com", true],
    ["http://example.com/", ". .. example.com", true],
    ["http://example.com/", "bü%zz.example example.com", true],
    ["http://127.0.0.1/", "127.0.0.1/x 256.0.0.1 127.0.0.1/8", true],
    ["http://127.0.0.1/", "127.0.0.1/x 256.0.0.1", false],
  ];
  for (const [url, list, expected] of cases) {
    assertEquals(
      matchesNoProxy(new URL(url), list),
      expected,
      `${url} with NO_PROXY=${JSON.stringify(list)}`,
    );
  }
});

Deno.test("proxyFromEnv() picks the variable curl would, HTTP_PROXY unless REQUEST_METHOD says CGI, and counts one it may not read as unset", () => {
  const A = "http://a.proxy:1";
  const B = "http://b.proxy:2";
  const C = "http://c.proxy:3";
  const D = "http://d.proxy:4";
  const http = "http://example.com/";
  const https = "https://example.com/";
  const cases: Array<[Record<string, string>, string, string | null]> = [
    [{}, http, null],
    [{ http_proxy: A }, http, "a.proxy:1"],
    [{ HTTP_PROXY: A }, http, "a.proxy:1"],
    [{ http_proxy: B, HTTP_PROXY: A }, http, "b.proxy:2"],
    // An http_proxy set to "" hides HTTP_PROXY, which curl never reads.
    [{ http_proxy: "", HTTP_PROXY: A }, http, null],
    [{ http_proxy: " ", HTTP_PROXY: A }, http, null],
    [{ http_proxy: "", HTTP_PROXY: A, all_proxy: C }, http, "c.proxy:3"],
    [{ HTTP_PROXY: A, all_proxy: C }, http, "a.proxy:1"],
    // httpoxy: under CGI, HTTP_PROXY comes from a request's `Proxy:` header.
    [{ HTTP_PROXY: A, REQUEST_METHOD: "GET" }, http, null],
    [{ HTTP_PROXY: A, REQUEST_METHOD: "GET", all_proxy: C }, http, "c.proxy:3"],
    [{ http_proxy: B, REQUEST_METHOD: "GET" }, http, "b.proxy:2"],
    [{ HTTP_PROXY: A }, https, null],
    [{ http_proxy: A }, https, null],
    [{ https_proxy: B }, http, null],
    [{ https_proxy: B }, https, "b.proxy:2"],
    [{ HTTPS_PROXY: B }, https, "b.proxy:2"],
    [{ https_proxy: A, HTTPS_PROXY: B }, https, "a.proxy:1"],
    [{ https_proxy: "", HTTPS_PROXY: B }, https, "b.proxy:2"],
    [{ https_proxy: "  ", HTTPS_PROXY: B }, https, "b.proxy:2"],
    [{ ALL_PROXY: C }, http, "c.proxy:3"],
    [{ ALL_PROXY: C }, https, "c.proxy:3"],
    [{ all_proxy: D, ALL_PROXY: C }, https, "d.proxy:4"],
    [{ all_proxy: "", ALL_PROXY: C }, https, "c.proxy:3"],
    [{ http_proxy: A, all_proxy: C }, http, "a.proxy:1"],
    [{ HTTPS_PROXY: B, all_proxy: C }, https, "b.proxy:2"],
    [{ ALL_PROXY: C }, "ftp://example.com/", "c.proxy:3"],
    [{ http_proxy: "127.0.0.1:3128" }, http, "127.0.0.1:3128"],
    [{ http_proxy: "  http://a.proxy:1/  " }, http, "a.proxy:1"],
    // A path, query or fragment is ignored, as curl, Python and Go do.
    [{ http_proxy: "http://a.proxy:1/some/path?x=1#y" }, http, "a.proxy:1"],
    [{ https_proxy: "b.proxy:2/pac" }, https, "b.proxy:2"],
    // NO_PROXY: lower case first; an empty value counts as unset.
    [{ http_proxy: A, no_proxy: "example.com" }, http, null],
    [
      { http_proxy: A, no_proxy: "example.com" },
      "http://other.org/",
      "a.proxy:1",
    ],
    [{ http_proxy: A, NO_PROXY: "example.com" }, http, null],
    [{ http_proxy: A, NO_PROXY: "*" }, http, null],
    [{ ALL_PROXY: C, NO_PROXY: ".com" }, https, null],
    [
      { http_proxy: A, no_proxy: "other.org", NO_PROXY: "example.com" },
      http,
      "a.proxy:1",
    ],
    [{ http_proxy: A, no_proxy: "", NO_PROXY: "example.com" }, http, null],
    [{ no_proxy: "other.org" }, http, null],
  ];
  for (const [vars, url, expected] of cases) {
    const proxy = proxyFromEnv((name) => vars[name], new URL(url));
    assertEquals(
      proxy?.authority ?? null,
      expected,
      `${url} with ${JSON.stringify(vars)}`,
    );
  }
  // --allow-env scoped to the proxy variables: REQUEST_METHOD is read only
  // when HTTP_PROXY is set, and one that may not be read is no CGI.
  const scoped = (vars: Record<string, string>) => (name: string) => {
    if (name === "REQUEST_METHOD") {
      throw new Deno.errors.NotCapable(`Requires env access to "${name}"`);
    }
    return vars[name];
  };
  // Windows: names ignore case, so http_proxy reads HTTP_PROXY, which under
  // CGI (IIS) is the request's `Proxy:` header; Go and Python drop it there.
  const windows = (vars: Record<string, string>) => (name: string) =>
    vars[name.toUpperCase()];
  const build = Deno.build;
  Object.defineProperty(Deno, "build", { value: { ...build, os: "windows" } });
  try {
    assertEquals(
      proxyFromEnv(
        windows({ HTTP_PROXY: A, REQUEST_METHOD: "GET" }),
        new URL(http),
      ),
      null,
    );
    assertEquals(
      proxyFromEnv(windows({ HTTP_PROXY: A }), new URL(http))?.authority,
      "a.proxy:1",
    );
    assertEquals(
      proxyFromEnv(
        windows({ HTTPS_PROXY: B, REQUEST_METHOD: "GET" }),
        new URL(https),
      )?.authority,
      "b.proxy:2",
    );
  } finally {
    Object.defineProperty(Deno, "build", { value: build });
  }
  assertEquals(proxyFromEnv(scoped({}), new URL(http)), null);
  assertEquals(
    proxyFromEnv(scoped({ http_proxy: A }), new URL(http))?.authority,
    "a.proxy:1",
  );
  assertEquals(
    proxyFromEnv(scoped({ HTTP_PROXY: B }), new URL(http))?.authority,
    "b.proxy:2",
  );
  // Scoped to some of the names only: the others count as unset; with none
  // of them readable, the permission error is the caller's.
  const only =
    (vars: Record<string, string>, granted: string[]) => (name: string) => {
      if (!granted.includes(name)) {
        throw new Deno.errors.NotCapable(`Requires env access to "${name}"`);
      }
      return vars[name];
    };
  const upper = ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"];
  assertEquals(
    proxyFromEnv(only({ HTTP_PROXY: B }, upper), new URL(http))?.authority,
    "b.proxy:2",
  );
  assertEquals(
    proxyFromEnv(
      only({ HTTP_PROXY: B, NO_PROXY: "example.com" }, upper),
      new URL(http),
    ),
    null,
  );
  assertEquals(proxyFromEnv(only({}, upper), new URL(http)), null);
  assertThrows(
    () => proxyFromEnv(only({ HTTP_PROXY: B }, []), new URL(http)),
    Deno.errors.NotCapable,
  );
});

Deno.test("proxyFromEnv() names the variable and hides the password of a proxy it refuses", () => {
  const vars: Record<string, string> = {
    https_proxy: "https://u:hunter2@h:1",
    http_proxy: "http://u:hunter2@h:0",
    no_proxy: "skip.example",
  };
  const env = (name: string) => vars[name];
  const https = assertThrows(
    () => proxyFromEnv(env, new URL("https://example.com/")),
    TypeError,
    "Cannot use proxy from https_proxy https://u:***@h:1/: https proxies",
  );
  assert(!https.message.includes("hunter2"));
  assertThrows(
    () => proxyFromEnv(env, new URL("http://example.com/")),
    TypeError,
    "Cannot use proxy from http_proxy http://u:***@h:0/: port 0",
  );
  // A bypassed host never reads the proxy variable, so its error cannot arise.
  assertEquals(proxyFromEnv(env, new URL("https://skip.example/")), null);
});

Deno.test("proxyFromEnv() names a proxy variable that is no URL without echoing it (the password it may hold)", () => {
  // No path to drop from it: it is reported as it was before that step.
  for (const value of ["http://u:hunter2@[bad:1/x", "u:hunter2@h:99999"]) {
    const error = assertThrows(
      () =>
        proxyFromEnv(
          (name) => name === "http_proxy" ? value : undefined,
          new URL("http://example.com/"),
        ),
      TypeError,
      "Cannot use proxy from http_proxy: not a valid URL",
    );
    assert(!error.message.includes("hunter2"), error.message);
  }
});

Deno.test("proxyFromEnv() keeps the credentials of the variable it picks", () => {
  const proxy = proxyFromEnv(
    (name) =>
      name === "HTTPS_PROXY" ? "http://alice:s3cret@[::1]:3128" : undefined,
    new URL("https://example.com/"),
  );
  assertEquals(proxy?.host, "::1");
  assertEquals(proxy?.authorization, "Basic YWxpY2U6czNjcmV0");
});

// ---------------------------------------------------------------------------
// encodeConnect(), connectAuthority(), absoluteTarget()

Deno.test("encodeConnect() writes an authority-form CONNECT with a matching Host", () => {
  const plain = parseProxy("http://127.0.0.1:8888");
  const authed = parseProxy("http://alice:s3cret@127.0.0.1:8888");
  const cases: Array<[string, ProxyConfig, string, string]> = [
    [
      "https://example.com/x?y#z",
      plain,
      "ua/1",
      "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: ua/1\r\n\r\n",
    ],
    [
      "https://example.com:8443/",
      plain,
      "ua/1",
      "CONNECT example.com:8443 HTTP/1.1\r\nHost: example.com:8443\r\nUser-Agent: ua/1\r\n\r\n",
    ],
    [
      "https://[::1]/",
      plain,
      "ua/1",
      "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\nUser-Agent: ua/1\r\n\r\n",
    ],
    [
      "http://Example.COM/",
      plain,
      "ua/1",
      "CONNECT example.com:80 HTTP/1.1\r\nHost: example.com:80\r\nUser-Agent: ua/1\r\n\r\n",
    ],
    [
      "https://user:pw@bücher.example/",
      plain,
      "",
      "CONNECT xn--bcher-kva.example:443 HTTP/1.1\r\nHost: xn--bcher-kva.example:443\r\n\r\n",
    ],
    [
      "https://example.com/",
      authed,
      "ua/1",
      "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: ua/1\r\nProxy-Authorization: Basic YWxpY2U6czNjcmV0\r\n\r\n",
    ],
  ];
  for (const [url, proxy, userAgent, expected] of cases) {
    const bytes = encodeConnect(new URL(url), proxy, userAgent);
    assertEquals(decoder.decode(bytes), expected, url);
  }
});

Deno.test("encodeConnect() refuses a User-Agent that would break the head, and a URL without a port", () => {
  const proxy = parseProxy("http://127.0.0.1:8888");
  const target = new URL("https://example.com/");
  for (const ua of ["a\r\nX-Evil: 1", "a\nb", "a\0b", "snow\u2603"]) {
    assertThrows(
      () => encodeConnect(target, proxy, ua),
      TypeError,
      "Cannot build CONNECT request: invalid User-Agent",
    );
  }
  assertThrows(
    () => connectAuthority(new URL("foo://example.com/")),
    TypeError,
    'no host and port in "foo:" URL',
  );
  assertEquals(
    connectAuthority(new URL("foo://example.com:7/")),
    "example.com:7",
  );
  assertEquals(
    connectAuthority(new URL("wss://[2001:db8::1]/")),
    "[2001:db8::1]:443",
  );
});

Deno.test("absoluteTarget() sends scheme, host, port, path and query (an empty one too), never userinfo or fragment", () => {
  const cases: Array<[string, string]> = [
    ["http://u:p@example.com:80/a?b#c", "http://example.com/a?b"],
    ["http://example.com", "http://example.com/"],
    ["http://example.com:8080", "http://example.com:8080/"],
    ["http://[::1]:8080/x", "http://[::1]:8080/x"],
    ["http://example.com/a b?c d", "http://example.com/a%20b?c%20d"],
    ["http://bücher.example/ü", "http://xn--bcher-kva.example/%C3%BC"],
    ["http://example.com/a?", "http://example.com/a?"],
    ["http://example.com/a?#b?", "http://example.com/a?"],
    ["http://example.com/a#b?", "http://example.com/a"],
  ];
  for (const [url, expected] of cases) {
    assertEquals(absoluteTarget(new URL(url)), expected, url);
  }
  assertThrows(
    () => absoluteTarget(new URL("https://example.com/")),
    TypeError,
    'absolute-form is for http: URLs, received "https:"',
  );
});

// ---------------------------------------------------------------------------
// ProxyError

Deno.test("ProxyError() carries status and proxy, and says the proxy answered", () => {
  const cause = new Error("inner");
  const error = new ProxyError("[::1]:3128", 502, "Bad Gateway", { cause });
  assert(error instanceof Error);
  assertEquals(error.name, "ProxyError");
  assertEquals(error.status, 502);
  assertEquals(error.proxy, "[::1]:3128");
  assertEquals(error.cause, cause);
  assertEquals(
    error.message,
    "Cannot connect through proxy [::1]:3128: it answered 502 Bad Gateway",
  );
  assertEquals(
    new ProxyError("h:1", 407).message,
    "Cannot connect through proxy h:1: it answered 407",
  );
  const odd = new ProxyError("h:1", 500, "Bad\r\nX: y\u2603" + "z".repeat(500));
  assert(!/[\r\n\u2603]/.test(odd.message), odd.message);
  assert(odd.message.length < 200, odd.message);
});

// ---------------------------------------------------------------------------
// Through a real tinyproxy

/** Reads until the end of a response head; returns it and the bytes after it. */
async function readHead(
  conn: Deno.Conn,
): Promise<{ head: string; rest: Uint8Array }> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(16 * 1024);
  for (let total = 0; total < 64 * 1024;) {
    const n = await conn.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    total += n;
    const all = concat(chunks);
    const end = indexOf(all, HEAD_END);
    if (end !== -1) {
      return {
        head: decoder.decode(all.subarray(0, end)),
        rest: all.slice(end + 4),
      };
    }
  }
  throw new Error(
    `readHead: no complete head in ${
      JSON.stringify(decoder.decode(concat(chunks)))
    }`,
  );
}

function statusOf(head: string): { status: number; reason: string } {
  const match = /^HTTP\/1\.[01] (\d{3}) ?([^\r\n]*)/.exec(head);
  if (match === null) throw new Error(`not a status line: ${head}`);
  return { status: Number(match[1]), reason: match[2]! };
}

function headerOf(head: string, name: string): string | null {
  for (const line of head.split("\r\n").slice(1)) {
    const colon = line.indexOf(":");
    if (line.slice(0, colon).toLowerCase() === name.toLowerCase()) {
      return line.slice(colon + 1).trim();
    }
  }
  return null;
}

/** Reads one response with a `Content-Length` body (or to EOF without one). */
async function readResponse(
  conn: Deno.Conn,
): Promise<{ head: string; status: number; body: Uint8Array }> {
  const { head, rest } = await readHead(conn);
  const length = headerOf(head, "content-length");
  let body = rest;
  if (length === null) {
    body = concat([rest, await readAll(conn)]);
  } else {
    const chunks = [rest];
    let got = rest.length;
    const buf = new Uint8Array(64 * 1024);
    while (got < Number(length)) {
      const n = await conn.read(buf);
      if (n === null) throw new Error(`EOF after ${got} of ${length} bytes`);
      chunks.push(buf.slice(0, n));
      got += n;
    }
    body = concat(chunks);
  }
  return { head, status: statusOf(head).status, body };
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let sent = 0; sent < data.length;) {
    sent += await conn.write(data.subarray(sent));
  }
}

function connectTo(port: number): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: "127.0.0.1", port });
}

/** A port nothing listens on (closed right after being bound). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/**
 * `Deno.serve` on 127.0.0.1 answering `/<path>` with `payload` preceded by the
 * path; paths starting with `/stream` get it chunked.
 */
function serveHttp(payload: Uint8Array) {
  const seen: Array<{ url: string; headers: Headers }> = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      seen.push({ url: req.url, headers: req.headers });
      const pathname = new URL(req.url).pathname;
      const body = concat([encoder.encode(pathname), payload]);
      if (!pathname.startsWith("/stream")) {
        return new Response(body as Uint8Array<ArrayBuffer>);
      }
      // A body of unknown length: Deno.serve sends it chunked.
      const third = Math.ceil(body.length / 3);
      return new Response(
        new ReadableStream({
          start(controller) {
            for (let at = 0; at < body.length; at += third) {
              controller.enqueue(body.slice(at, at + third));
            }
            controller.close();
          },
        }),
      );
    },
  );
  return { server, port: server.addr.port, seen };
}

/**
 * A raw TLS server on 127.0.0.1 answering `count` conns, each with the same fixed
 * response bytes (no `Date`), so a direct and a tunnelled fetch must match byte
 * for byte.
 */
function serveTls(response: Uint8Array, count: number) {
  const listener = listenTls();
  const done = (async () => {
    try {
      for (let i = 0; i < count; i++) {
        const conn = await listener.accept();
        try {
          await readHead(conn);
          await writeAll(conn, response);
        } finally {
          conn.close();
        }
      }
    } finally {
      listener.close();
    }
  })();
  return { port: listener.addr.port, done };
}

/** Sends `CONNECT` for `target` and returns the proxy's head (and extra bytes). */
async function connectThrough(
  conn: Deno.Conn,
  target: URL,
  proxy: ProxyConfig,
): Promise<{ head: string; rest: Uint8Array }> {
  await writeAll(conn, encodeConnect(target, proxy, "proxy-test/1"));
  return await readHead(conn);
}

function getRequest(target: string, host: string, extra = ""): Uint8Array {
  return encoder.encode(
    `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: proxy-test/1\r\n${extra}\r\n`,
  );
}

test("startTinyproxy() relays absolute-form GETs, one per client conn (tinyproxy has no keep-alive)", async () => {
  const payload = new Rng(9).bytes(100_000);
  const origin = serveHttp(payload);
  await using tinyproxy = await startTinyproxy();
  const proxy = parseProxy(tinyproxy.url);
  try {
    const conn = await connectTo(proxy.port);
    try {
      const first = new URL(`http://127.0.0.1:${origin.port}/first?q=1`);
      await writeAll(conn, getRequest(absoluteTarget(first), first.host));
      const response = await within(readResponse(conn), 5_000, "first");
      assertEquals(response.status, 200, response.head);
      assert(
        bytesEqual(response.body, concat([encoder.encode("/first"), payload])),
        "first body differs",
      );
      // tinyproxy closes the client conn after the response without announcing
      // it: a second request on the same conn gets no answer, only the end.
      assertEquals(headerOf(response.head, "connection"), null);
      const again = new URL(`http://127.0.0.1:${origin.port}/again`);
      const outcome = await within(
        (async () => {
          try {
            await writeAll(conn, getRequest(absoluteTarget(again), again.host));
            return await conn.read(new Uint8Array(1));
          } catch (e) {
            if (
              e instanceof Deno.errors.ConnectionReset ||
              e instanceof Deno.errors.BrokenPipe
            ) return null;
            throw e;
          }
        })(),
        5_000,
        "second request on the same conn",
      );
      assertEquals(outcome, null, "tinyproxy answered on a reused conn");
    } finally {
      conn.close();
    }
    // So each request needs a conn of its own; the second one is served alike.
    const second = await connectTo(proxy.port);
    try {
      const url = new URL(`http://127.0.0.1:${origin.port}/second`);
      await writeAll(second, getRequest(absoluteTarget(url), url.host));
      const response = await within(readResponse(second), 5_000, "second");
      assertEquals(response.status, 200);
      assert(
        bytesEqual(response.body, concat([encoder.encode("/second"), payload])),
      );
    } finally {
      second.close();
    }
    assertEquals(origin.seen.map((r) => new URL(r.url).pathname), [
      "/first",
      "/second",
    ]);
    assertEquals(origin.seen[0]!.headers.get("connection"), "close");
    assertEquals(origin.seen[0]!.headers.get("via"), null);
  } finally {
    await origin.server.shutdown();
  }
});

test("startTinyproxy() tunnels CONNECT to a TLS server: the bytes equal a direct fetch", async () => {
  const body = new Rng(11).bytes(200_000);
  const response = concat([
    encoder.encode(
      `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
    ),
    body,
  ]);
  const origin = serveTls(response, 2);
  await using tinyproxy = await startTinyproxy({ connectPorts: [origin.port] });
  const proxy = parseProxy(tinyproxy.url);
  const target = new URL(`https://127.0.0.1:${origin.port}/data`);
  const request = getRequest("/data", target.host, "Connection: close\r\n");

  const direct = await Deno.connectTls({
    hostname: "127.0.0.1",
    port: origin.port,
    caCerts: [ca],
  });
  let directBytes: Uint8Array;
  try {
    await writeAll(direct, request);
    directBytes = await within(readAll(direct), 5_000, "direct");
  } finally {
    direct.close();
  }

  const tcp = await connectTo(proxy.port);
  let tunnelled: Uint8Array;
  let tls: Deno.TlsConn | undefined;
  try {
    const { head, rest } = await within(
      connectThrough(tcp, target, proxy),
      5_000,
      "CONNECT",
    );
    assertEquals(statusOf(head), {
      status: 200,
      reason: "Connection established",
    });
    assertMatch(head, /^HTTP\/1\.0 200 /);
    assertEquals(rest.length, 0, "bytes after the CONNECT answer");
    tls = await Deno.startTls(tcp, { hostname: "127.0.0.1", caCerts: [ca] });
    await writeAll(tls, request);
    tunnelled = await within(readAll(tls), 5_000, "tunnel");
  } finally {
    if (tls) tls.close();
    else tcp.close();
  }
  await within(origin.done, 5_000, "origin");
  assertEquals(directBytes.length, response.length);
  assert(bytesEqual(tunnelled, directBytes), "tunnelled bytes differ");
});

test("startTinyproxy() with basicAuth answers 407 without credentials and 200 with them", async () => {
  const payload = encoder.encode("behind auth");
  const origin = serveHttp(payload);
  // The authorized CONNECT's target: tinyproxy only needs it to accept.
  const tunnelEnd = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const tunnelPeer = tunnelEnd.accept();
  await using tinyproxy = await startTinyproxy({
    basicAuth: ["alice", "s3cret-pw.1"],
  });
  // `%2D` is `-`: the percent-decoded password is what tinyproxy checks.
  const authed = parseProxy(
    `http://alice:s3cret%2Dpw.1@127.0.0.1:${tinyproxy.port}`,
  );
  const bare = parseProxy(tinyproxy.url);
  const wrong = parseProxy(`http://alice:nope@127.0.0.1:${tinyproxy.port}`);
  const url = new URL(`http://127.0.0.1:${origin.port}/x`);
  const target = new URL(`https://127.0.0.1:${tunnelEnd.addr.port}/`);
  try {
    const get = async (proxy: ProxyConfig) => {
      const conn = await connectTo(proxy.port);
      try {
        const auth = proxy.authorization === null
          ? ""
          : `Proxy-Authorization: ${proxy.authorization}\r\n`;
        await writeAll(conn, getRequest(absoluteTarget(url), url.host, auth));
        return await within(readResponse(conn), 5_000, "GET");
      } finally {
        conn.close();
      }
    };
    const connect = async (proxy: ProxyConfig) => {
      const conn = await connectTo(proxy.port);
      try {
        const { head } = await within(
          connectThrough(conn, target, proxy),
          5_000,
          "CONNECT",
        );
        return head;
      } finally {
        conn.close();
      }
    };

    const refused = await get(bare);
    assertEquals(refused.status, 407);
    assertEquals(
      headerOf(refused.head, "proxy-authenticate"),
      'Basic realm="Tinyproxy"',
    );
    assertEquals(statusOf(await connect(bare)).status, 407);

    const served = await get(authed);
    assertEquals(served.status, 200);
    assert(bytesEqual(served.body, concat([encoder.encode("/x"), payload])));
    assertEquals(statusOf(await connect(authed)).status, 200);
    // tinyproxy consumes the credentials: they never reach the origin.
    assertEquals(origin.seen.length, 1);
    assertEquals(origin.seen[0]!.headers.get("proxy-authorization"), null);

    // Wrong credentials: tinyproxy 1.11 answers 401, not 407.
    assertEquals((await get(wrong)).status, 401);
    assertEquals(statusOf(await connect(wrong)).status, 401);
  } finally {
    await origin.server.shutdown();
    tunnelEnd.close();
    await tunnelPeer.then((peer) => peer.close(), () => {});
  }
});

test("startTinyproxy() proxy answers 500 for a closed upstream and 403 outside ConnectPort", async () => {
  const allowed = closedPort();
  await using tinyproxy = await startTinyproxy({ connectPorts: [allowed] });
  const proxy = parseProxy(tinyproxy.url);
  const answer = async (request: Uint8Array) => {
    const conn = await connectTo(proxy.port);
    try {
      await writeAll(conn, request);
      const { head } = await within(readHead(conn), 5_000, "answer");
      return statusOf(head);
    } finally {
      conn.close();
    }
  };
  const http = new URL(`http://127.0.0.1:${closedPort()}/`);
  const cases: Array<[string, Uint8Array, { status: number; reason: string }]> =
    [
      [
        "CONNECT to a closed port",
        encodeConnect(new URL(`https://127.0.0.1:${allowed}/`), proxy, "t"),
        { status: 500, reason: "Unable to connect" },
      ],
      [
        "GET to a closed port",
        getRequest(absoluteTarget(http), http.host),
        { status: 500, reason: "Unable to connect" },
      ],
      [
        "CONNECT outside ConnectPort",
        encodeConnect(new URL(`https://127.0.0.1:${allowed + 1}/`), proxy, "t"),
        { status: 403, reason: "Access violation" },
      ],
    ];
  for (const [what, request, expected] of cases) {
    const got = await answer(request);
    assertEquals(got, expected, what);
    // The message the client will give the failed URL.
    assertEquals(
      new ProxyError(proxy.authority, got.status, got.reason).message,
      `Cannot connect through proxy ${proxy.authority}: it answered ${expected.status} ${expected.reason}`,
    );
  }
});

test("startTinyproxy() stop() ends the process, frees the port and removes its dir, even with a tunnel open", async () => {
  const origin = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const tinyproxy: Tinyproxy = await startTinyproxy();
  const proxy = parseProxy(tinyproxy.url);
  const conn = await connectTo(proxy.port);
  const accepted = origin.accept();
  let peer: Deno.Conn | undefined;
  try {
    const { head } = await within(
      connectThrough(
        conn,
        new URL(`https://127.0.0.1:${origin.addr.port}/`),
        proxy,
      ),
      5_000,
      "CONNECT",
    );
    assertEquals(statusOf(head).status, 200);
    peer = await within(accepted, 5_000, "accept");
    assertStringIncludes(await tinyproxy.log(), "Established connection");
    const started = performance.now();
    await within(tinyproxy.stop(), 10_000, "stop");
    const took = performance.now() - started;
    assert(took < 5_000, `stop took ${took} ms`);
    await tinyproxy.stop(); // idempotent
    await assertRejects(() => Deno.stat(tinyproxy.dir), Deno.errors.NotFound);
    await assertRejects(
      () => connectTo(proxy.port),
      Deno.errors.ConnectionRefused,
    );
  } finally {
    await tinyproxy.stop();
    conn.close();
    if (peer) closeQuietly(peer);
    origin.close();
  }
});

Deno.test("startTinyproxy() says how to install tinyproxy when the binary is missing", async () => {
  await assertRejects(
    () => startTinyproxy({ binary: "/nonexistent/tinyproxy" }),
    Error,
    "apt-get install -y tinyproxy",
  );
});

// ---------------------------------------------------------------------------
// The in-test proxy, for what tinyproxy cannot show

Deno.test("startMiniProxy() keeps the client conn alive across absolute-form GETs", async () => {
  const payload = new Rng(13).bytes(50_000);
  const origin = serveHttp(payload);
  await using mini = startMiniProxy();
  const proxy = parseProxy(mini.url);
  const conn = await connectTo(proxy.port);
  try {
    for (const path of ["/first", "/stream-second", "/third"]) {
      const url = new URL(`http://127.0.0.1:${origin.port}${path}`);
      await writeAll(conn, getRequest(absoluteTarget(url), url.host));
      const response = await within(readResponse(conn), 5_000, path);
      assertEquals(response.status, 200, response.head);
      assert(
        bytesEqual(response.body, concat([encoder.encode(path), payload])),
        `${path}: body differs`,
      );
    }
  } finally {
    conn.close();
    await origin.server.shutdown();
  }
  assertEquals(mini.connections, 1);
  assertEquals(mini.requests, [
    `GET http://127.0.0.1:${origin.port}/first HTTP/1.1`,
    `GET http://127.0.0.1:${origin.port}/stream-second HTTP/1.1`,
    `GET http://127.0.0.1:${origin.port}/third HTTP/1.1`,
  ]);
});

Deno.test("startMiniProxy() with authorization answers 407 without it and relays with it", async () => {
  const origin = serveHttp(encoder.encode("!"));
  const tunnelEnd = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const tunnelPeer = tunnelEnd.accept();
  const authed = parseProxy("http://alice:s3cret@127.0.0.1:1");
  await using mini = startMiniProxy({ authorization: authed.authorization! });
  const bare = parseProxy(mini.url);
  const url = new URL(`http://127.0.0.1:${origin.port}/x`);
  try {
    const get = async (auth: string) => {
      const conn = await connectTo(mini.port);
      try {
        await writeAll(conn, getRequest(absoluteTarget(url), url.host, auth));
        return await within(readResponse(conn), 5_000, "GET");
      } finally {
        conn.close();
      }
    };
    const refused = await get("");
    assertEquals(refused.status, 407);
    assertEquals(
      headerOf(refused.head, "proxy-authenticate"),
      'Basic realm="mini"',
    );
    const served = await get(
      `Proxy-Authorization: ${authed.authorization}\r\n`,
    );
    assertEquals(served.status, 200);
    assertEquals(decoder.decode(served.body), "/x!");
    assertEquals(origin.seen[0]!.headers.get("proxy-authorization"), null);

    const conn = await connectTo(mini.port);
    try {
      const target = new URL(`https://127.0.0.1:${tunnelEnd.addr.port}/`);
      const { head } = await within(
        connectThrough(conn, target, bare),
        5_000,
        "CONNECT",
      );
      assertEquals(statusOf(head).status, 407);
    } finally {
      conn.close();
    }
  } finally {
    await origin.server.shutdown();
    tunnelEnd.close();
    await tunnelPeer.then((peer) => peer.close(), () => {});
  }
});

Deno.test("startMiniProxy() with dieAfter cuts a CONNECT tunnel in the middle of a response", async () => {
  const body = new Rng(17).bytes(300_000);
  const response = concat([
    encoder.encode(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`),
    body,
  ]);
  const origin = serveTls(response, 1);
  await using mini = startMiniProxy({ dieAfter: 50_000 });
  const proxy = parseProxy(mini.url);
  const tcp = await connectTo(proxy.port);
  let tls: Deno.TlsConn | undefined;
  try {
    const target = new URL(`https://127.0.0.1:${origin.port}/`);
    const { head } = await within(
      connectThrough(tcp, target, proxy),
      5_000,
      "CONNECT",
    );
    assertEquals(statusOf(head).status, 200);
    tls = await Deno.startTls(tcp, { hostname: "127.0.0.1", caCerts: [ca] });
    await writeAll(tls, getRequest("/", target.host));
    let received = 0;
    let ending = "eof";
    const buf = new Uint8Array(64 * 1024);
    await within(
      (async () => {
        try {
          for (let n; (n = await tls!.read(buf)) !== null;) received += n;
        } catch (e) {
          ending = e instanceof Error ? e.name : String(e);
        }
      })(),
      5_000,
      "read to the cut",
    );
    assert(received > 0, "nothing came through before the cut");
    assert(received < response.length, `all ${received} bytes came through`);
    assert(
      ["eof", "UnexpectedEof", "ConnectionReset"].includes(ending),
      ending,
    );
  } finally {
    if (tls) tls.close();
    else tcp.close();
    await origin.done.catch(() => {});
  }
});
