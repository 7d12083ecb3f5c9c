import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertStrictEquals,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { ResponseParser } from "../client/_response_parser.ts";
import { HttpParseError } from "../client/http_parse_error.ts";
import {
  latin1Bytes as bytesOf,
  mulberry32,
  splitAt,
  splitEvery,
} from "./_net.ts";

function textOf(chunks: Uint8Array[]): string {
  let s = "";
  for (const c of chunks) for (const b of c) s += String.fromCharCode(b);
  return s;
}

interface ValidCase {
  name: string;
  bytes: string;
  method?: string;
  status: number;
  statusText: string;
  version?: "1.0" | "1.1";
  /** Fields that must be present with exactly these values (`Headers.get`). */
  headers?: Record<string, string>;
  setCookie?: string[];
  body: string;
  trailers?: Record<string, string> | null;
  keepAlive: boolean;
  /** Body delimited by the peer closing: trailing bytes are part of it. */
  closeDelimited?: boolean;
}

const CHUNKED_HEAD =
  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n";

const VALID: ValidCase[] = [
  {
    name: "Content-Length body",
    bytes: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
    status: 200,
    statusText: "OK",
    headers: { "content-length": "5", "x-a": "b" },
    body: "hello",
    keepAlive: true,
  },
  {
    name: "Content-Length zero",
    bytes: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    status: 200,
    statusText: "OK",
    body: "",
    keepAlive: true,
  },
  {
    name: "chunked body with extensions and trailers",
    bytes: CHUNKED_HEAD +
      '5;name=value;quoted="a \\"b\\" c"\r\nhello\r\n' +
      "1 ; lone\r\n,\r\n" +
      "6\r\n world\r\n" +
      "0;last=1\r\nX-Checksum: abc\r\nX-Other:  two words \r\n\r\n",
    status: 200,
    statusText: "OK",
    headers: { "transfer-encoding": "chunked", "content-type": "text/plain" },
    body: "hello, world",
    trailers: { "x-checksum": "abc", "x-other": "two words" },
    keepAlive: true,
  },
  {
    name: "chunked body with upper-case hex and leading zeros",
    bytes: CHUNKED_HEAD + "000A\r\n0123456789\r\n00\r\n\r\n",
    status: 200,
    statusText: "OK",
    body: "0123456789",
    trailers: {},
    keepAlive: true,
  },
  {
    name: "chunked body with bare LF framing",
    bytes: CHUNKED_HEAD + "3\nabc\n0\n\n",
    status: 200,
    statusText: "OK",
    body: "abc",
    trailers: {},
    keepAlive: true,
  },
  {
    name: "chunked body containing CRLF and NUL bytes",
    bytes: CHUNKED_HEAD + "4\r\n\r\n\0\n\r\n0\r\n\r\n",
    status: 200,
    statusText: "OK",
    body: "\r\n\0\n",
    trailers: {},
    keepAlive: true,
  },
  {
    name: "Transfer-Encoding with Content-Length",
    bytes:
      "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    status: 200,
    statusText: "OK",
    body: "ok",
    trailers: {},
    keepAlive: false,
  },
  {
    name: "Transfer-Encoding list with empty elements",
    bytes:
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: , CHUNKED\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    status: 200,
    statusText: "OK",
    body: "ok",
    trailers: {},
    keepAlive: true,
  },
  {
    name: "close-delimited body",
    bytes: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
    status: 200,
    statusText: "OK",
    body: "until the end",
    keepAlive: false,
    closeDelimited: true,
  },
  {
    name: "close-delimited empty body",
    bytes: "HTTP/1.1 200 OK\r\n\r\n",
    status: 200,
    statusText: "OK",
    body: "",
    keepAlive: false,
    closeDelimited: true,
  },
  {
    name: "HEAD response with Content-Length",
    bytes: "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
    method: "HEAD",
    status: 200,
    statusText: "OK",
    headers: { "content-length": "1234" },
    body: "",
    keepAlive: true,
  },
  {
    name: "HEAD response with chunked",
    bytes: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    method: "HEAD",
    status: 200,
    statusText: "OK",
    body: "",
    keepAlive: true,
  },
  {
    name: "204 without framing",
    bytes: "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
    status: 204,
    statusText: "No Content",
    body: "",
    keepAlive: true,
  },
  {
    name: "304 with Content-Length",
    bytes:
      'HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: "x"\r\n\r\n',
    status: 304,
    statusText: "Not Modified",
    headers: { etag: '"x"' },
    body: "",
    keepAlive: true,
  },
  {
    name: "interim 100 and 103 before the final response",
    bytes: "HTTP/1.1 100 Continue\r\n\r\n" +
      "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" +
      "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
    status: 201,
    statusText: "Created",
    headers: { "content-length": "2" },
    body: "ok",
    keepAlive: true,
  },
  {
    name: "HTTP/1.0 close-delimited",
    bytes: "HTTP/1.0 200 OK\r\nServer: old\r\n\r\nbody",
    version: "1.0",
    status: 200,
    statusText: "OK",
    body: "body",
    keepAlive: false,
    closeDelimited: true,
  },
  {
    name: "HTTP/1.0 Content-Length without keep-alive",
    bytes: "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc",
    version: "1.0",
    status: 200,
    statusText: "OK",
    body: "abc",
    keepAlive: false,
  },
  {
    name: "HTTP/1.0 keep-alive",
    bytes:
      "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 3\r\n\r\nabc",
    version: "1.0",
    status: 200,
    statusText: "OK",
    body: "abc",
    keepAlive: true,
  },
  {
    name: "HTTP/1.0 chunked is read but not kept",
    bytes:
      "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
    version: "1.0",
    status: 200,
    statusText: "OK",
    body: "x",
    trailers: {},
    keepAlive: false,
  },
  {
    name: "HTTP/1.1 Connection: close",
    bytes:
      "HTTP/1.1 200 OK\r\nConnection: upgrade, CLOSE\r\nContent-Length: 3\r\n\r\nabc",
    status: 200,
    statusText: "OK",
    body: "abc",
    keepAlive: false,
  },
  {
    name: "HTTP/1.2 read as 1.1",
    bytes: "HTTP/1.2 200 OK\r\nContent-Length: 1\r\n\r\nz",
    version: "1.1",
    status: 200,
    statusText: "OK",
    body: "z",
    keepAlive: true,
  },
  {
    name: "bare LF line endings",
    bytes: "HTTP/1.1 200 OK\nContent-Length: 2\nX-A: b\n\nhi",
    status: 200,
    statusText: "OK",
    headers: { "x-a": "b" },
    body: "hi",
    keepAlive: true,
  },
  {
    name: "empty lines before the status line",
    bytes: "\r\n\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    status: 200,
    statusText: "OK",
    body: "hi",
    keepAlive: true,
  },
  {
    name: "identical duplicate Content-Length",
    bytes:
      "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\nhello",
    status: 200,
    statusText: "OK",
    headers: { "content-length": "5, 5, 5" },
    body: "hello",
    keepAlive: true,
  },
  {
    name: "empty reason phrase after a space",
    bytes: "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n",
    status: 404,
    statusText: "",
    body: "",
    keepAlive: true,
  },
  {
    name: "missing space before an empty reason phrase",
    bytes: "HTTP/1.1 500\r\nContent-Length: 0\r\n\r\n",
    status: 500,
    statusText: "",
    body: "",
    keepAlive: true,
  },
  {
    name:
      "status code 999 above the classes RFC 9110 defines (LinkedIn's to crawlers)",
    bytes: "HTTP/1.1 999 Request denied\r\nContent-Length: 2\r\n\r\nno",
    status: 999,
    statusText: "Request denied",
    body: "no",
    keepAlive: true,
  },
  {
    name: "status code 600 without a reason",
    bytes: "HTTP/1.1 600\r\nContent-Length: 0\r\n\r\n",
    status: 600,
    statusText: "",
    body: "",
    keepAlive: true,
  },
  {
    name: "reason phrase with spaces, tabs and latin1",
    bytes: "HTTP/1.1 200 Tr\xe8s  bien\tmerci\r\nContent-Length: 0\r\n\r\n",
    status: 200,
    statusText: "Tr\xe8s  bien\tmerci",
    body: "",
    keepAlive: true,
  },
  {
    name: "multiple Set-Cookie fields",
    bytes: "HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nset-cookie: b=2\r\n" +
      "X-Dup: one\r\nX-Dup: two\r\nContent-Length: 0\r\n\r\n",
    status: 200,
    statusText: "OK",
    headers: { "x-dup": "one, two" },
    setCookie: ["a=1; Path=/", "b=2"],
    body: "",
    keepAlive: true,
  },
  {
    name: "header values with OWS, empty values and obs-text",
    bytes: "HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Spaces: \t a  b \t\r\n" +
      "X-Latin1: caf\xe9\x80\xff\r\nX-Tchar!#$%&'*+-.^_`|~09: v\r\nContent-Length: 0\r\n\r\n",
    status: 200,
    statusText: "OK",
    headers: {
      "x-empty": "",
      "x-spaces": "a  b",
      "x-latin1": "caf\xe9\x80\xff",
      "x-tchar!#$%&'*+-.^_`|~09": "v",
    },
    body: "",
    keepAlive: true,
  },
  {
    name: "large Content-Length body",
    bytes: "HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" +
      "x".repeat(70000),
    status: 200,
    statusText: "OK",
    body: "x".repeat(70000),
    keepAlive: true,
  },
];

interface Outcome {
  status: number;
  statusText: string;
  version: string;
  body: string;
  trailers: Array<[string, string]> | null;
  keepAlive: boolean;
  consumed: number;
}

/** Feeds `pieces` in order, then EOF if needed, collecting the body as it comes. */
function parse(
  pieces: Uint8Array[],
  method: string | undefined,
): { parser: ResponseParser; outcome: Outcome } {
  const parser = new ResponseParser(method ? { method } : {});
  const body: Uint8Array[] = [];
  let used = 0;
  for (const piece of pieces) {
    used += parser.receive(piece);
    body.push(...parser.takeBody());
  }
  if (!parser.done) parser.receive(null);
  body.push(...parser.takeBody());
  assert(parser.done, "the response is complete");
  assertStrictEquals(used, parser.bytesConsumed);
  const head = parser.head!;
  return {
    parser,
    outcome: {
      status: head.status,
      statusText: head.statusText,
      version: head.version,
      body: textOf(body),
      trailers: parser.trailers ? [...parser.trailers] : null,
      keepAlive: parser.keepAlive,
      consumed: parser.bytesConsumed,
    },
  };
}

function randomSplits(bytes: Uint8Array, random: () => number): Uint8Array[] {
  const n = Math.floor(random() * 8);
  return splitAt(
    bytes,
    Array.from({ length: n }, () => Math.floor(random() * (bytes.length + 1))),
  );
}

function expected(c: ValidCase, consumed: number): Outcome {
  return {
    status: c.status,
    statusText: c.statusText,
    version: c.version ?? "1.1",
    body: c.body,
    trailers: c.trailers === undefined || c.trailers === null
      ? null
      : Object.entries(c.trailers).sort(),
    keepAlive: c.keepAlive,
    consumed,
  };
}

function checkHeaders(c: ValidCase, parser: ResponseParser): void {
  const headers = parser.head!.headers;
  for (const [name, value] of Object.entries(c.headers ?? {})) {
    assertStrictEquals(headers.get(name), value, `${c.name}: ${name}`);
  }
  if (c.setCookie) assertEquals(headers.getSetCookie(), c.setCookie);
}

const SEED = 0x5eed;
const TRAILING = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

for (const c of VALID) {
  Deno.test(`ResponseParser.receive() parses ${c.name}, however split`, () => {
    const bytes = bytesOf(c.bytes);
    const want = expected(c, bytes.length);
    const whole = parse([bytes], c.method);
    assertEquals(whole.outcome, want, "fed whole");
    checkHeaders(c, whole.parser);
    assertEquals(
      parse(splitEvery(bytes, 1), c.method).outcome,
      want,
      "fed one byte at a time",
    );
    const random = mulberry32(SEED);
    for (let i = 0; i < 20; i++) {
      assertEquals(
        parse(randomSplits(bytes, random), c.method).outcome,
        want,
        `random split ${i} (seed ${SEED})`,
      );
    }
  });

  if (c.closeDelimited) continue;
  Deno.test(`ResponseParser.bytesConsumed stops at the end of ${c.name}`, () => {
    const bytes = bytesOf(c.bytes + TRAILING);
    const want = expected(c, c.bytes.length);
    assertEquals(parse([bytes], c.method).outcome, want, "fed whole");
    assertEquals(
      parse(splitEvery(bytes, 1), c.method).outcome,
      want,
      "fed one byte at a time",
    );
    const random = mulberry32(SEED + 1);
    for (let i = 0; i < 20; i++) {
      assertEquals(
        parse(randomSplits(bytes, random), c.method).outcome,
        want,
        `random split ${i} (seed ${SEED + 1})`,
      );
    }
  });
}

Deno.test("ResponseParser.receive() returns how many bytes it used", () => {
  const parser = new ResponseParser();
  const data = bytesOf("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokNEXT");
  assertStrictEquals(parser.receive(data.subarray(0, 10)), 10);
  assertStrictEquals(parser.receive(data.subarray(10)), data.length - 10 - 4);
  assert(parser.done);
  assertStrictEquals(parser.receive(bytesOf("more")), 0);
  assertStrictEquals(parser.receive(null), 0);
  assertStrictEquals(parser.bytesConsumed, data.length - 4);
});

Deno.test("ResponseParser.takeBody() returns views of the fed bytes", () => {
  const parser = new ResponseParser();
  const data = bytesOf(
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
  );
  parser.receive(data);
  const chunks = parser.takeBody();
  assertEquals(chunks.map((c) => textOf([c])), ["abc", "de"]);
  for (const chunk of chunks) assertStrictEquals(chunk.buffer, data.buffer);
  assertEquals(parser.takeBody(), []);
});

Deno.test("ResponseParser.head is available before the body is complete", () => {
  const parser = new ResponseParser();
  parser.receive(bytesOf("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"));
  assertStrictEquals(parser.head?.status, 200);
  assertEquals(textOf(parser.takeBody()), "ab");
  assert(!parser.done);
  assert(!parser.keepAlive, "keepAlive is false until done");
  assertStrictEquals(parser.trailers, null);
});

Deno.test("ResponseParser.head.headers and field() read the field bytes the parser kept", () => {
  const data = bytesOf(
    "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n" +
      "Transfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\nX-T: t\r\n\r\n",
  );
  const parser = new ResponseParser();
  parser.receive(data);
  assert(parser.done);
  // The caller reuses its read buffer: the fields must not be views of it.
  data.fill(0x21);
  const head = parser.head!;
  const headers = head.headers;
  assertStrictEquals(head.headers, headers, "built once");
  assertEquals([...headers], [
    ["set-cookie", "a=1"],
    ["set-cookie", "b=2"],
    ["transfer-encoding", "chunked"],
    ["x-a", "1 2"],
  ]);
  assertEquals(headers.getSetCookie(), ["a=1", "b=2"]);
  assertStrictEquals(head.field("X-A"), "1 2");
  assertStrictEquals(head.field("set-COOKIE"), "a=1, b=2");
  assertStrictEquals(head.field("set-cookie"), headers.get("set-cookie"));
  assertStrictEquals(head.field("x-b"), null);
  assertStrictEquals(head.field("x-"), null);
  assertStrictEquals(parser.trailers, parser.trailers, "built once");
  assertEquals([...parser.trailers!], [["x-t", "t"]]);
});

Deno.test("ResponseParser.started tells a silent close from a cut one", () => {
  const silent = new ResponseParser();
  assert(!silent.started);
  silent.receive(new Uint8Array(0));
  assert(!silent.started, "an empty array is not a byte");
  const e = assertThrows(() => silent.receive(null), HttpParseError);
  assertStrictEquals(e.code, "empty-response");

  const cut = new ResponseParser();
  cut.receive(bytesOf("HTTP/1.1 2"));
  assert(cut.started);
  const e2 = assertThrows(() => cut.receive(null), HttpParseError);
  assertStrictEquals(e2.code, "truncated-head");
  assertStrictEquals(e2.offset, 10);
});

Deno.test("ResponseParser.receive() rethrows the same error once failed", () => {
  const parser = new ResponseParser();
  const e = assertThrows(
    () => parser.receive(bytesOf("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n")),
    HttpParseError,
    "invalid header name",
  );
  assertStrictEquals(e.code, "invalid-header-name");
  assertStrictEquals(e.offset, 20);
  assertStrictEquals(e.name, "HttpParseError");
  assertStrictEquals(assertThrows(() => parser.receive(null)), e);
  assertStrictEquals(assertThrows(() => parser.receive(bytesOf("x"))), e);
});

Deno.test("ResponseParser.receive() ends a 2xx to CONNECT at its head, leaving the tunnel's bytes unused", () => {
  for (
    const head of [
      "HTTP/1.0 200 Connection established\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    ]
  ) {
    const parser = new ResponseParser({ method: "CONNECT" });
    // What follows the head is the start of a TLS handshake, not a body.
    const tunnel = "\x16\x03\x01\x00";
    const used = parser.receive(bytesOf(head + tunnel));
    assert(parser.done, head);
    assertEquals(used, head.length);
    assertEquals(parser.head?.status, 200);
    assertEquals(parser.takeBody(), []);
  }
  // A refusal has a body, framed as usual.
  const parser = new ResponseParser({ method: "CONNECT" });
  parser.receive(
    bytesOf(
      "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 2\r\n\r\n",
    ),
  );
  assert(!parser.done);
  parser.receive(bytesOf("no"));
  assert(parser.done);
  assertEquals(textOf(parser.takeBody()), "no");
});

Deno.test("ResponseParser.receive() rejects 101 Switching Protocols", () => {
  const parser = new ResponseParser();
  const e = assertThrows(
    () => parser.receive(bytesOf("HTTP/1.1 101 Switching Protocols\r\n\r\n")),
    HttpParseError,
  );
  assertStrictEquals(e.code, "unexpected-upgrade");
});

Deno.test("ResponseParser.receive() unfolds obs-fold into one field, counted once", () => {
  const parser = new ResponseParser({ maxHeaders: 1 });
  parser.receive(
    bytesOf("HTTP/1.1 204 No Content\r\nX-A: 1\r\n 2\r\n\t3\r\n\r\n"),
  );
  assert(parser.done);
  assertEquals([...parser.head!.headers], [["x-a", "1 2 3"]]);
  const e = assertThrows(
    () =>
      new ResponseParser().receive(
        bytesOf("HTTP/1.1 200 OK\r\n X-A: 1\r\n\r\n"),
      ),
    HttpParseError,
    "whitespace-preceded line after the status line",
  );
  assertStrictEquals(e.code, "whitespace-after-start-line");
  assertStrictEquals(e.offset, 17);
});

Deno.test("ResponseParser.receive() names what it received in messages", () => {
  const e = assertThrows(
    () =>
      new ResponseParser().receive(
        bytesOf(CHUNKED_HEAD + "zz\r\n"),
      ),
    HttpParseError,
  );
  assertStrictEquals(
    e.message,
    `Cannot parse response: invalid chunk size "zz" at byte ${CHUNKED_HEAD.length}`,
  );
  assertStrictEquals(e.offset, CHUNKED_HEAD.length);
  const bare = assertThrows(
    () =>
      new ResponseParser().receive(bytesOf("HTTP/1.1 200 OK\r\nX: a\rb\r\n")),
    HttpParseError,
  );
  assertStringIncludes(
    bare.message,
    'CR not followed by LF in header line "X: a\\rb" at byte 21',
  );
  const long = assertThrows(
    () =>
      new ResponseParser().receive(
        bytesOf(`HTTP/1.1 200 OK\r\nBad Name: ${"v".repeat(50)}\r\n`),
      ),
    HttpParseError,
  );
  assertStringIncludes(
    long.message,
    `invalid header name "Bad Name" at byte 20`,
  );
  const cut = assertThrows(
    () =>
      new ResponseParser().receive(
        bytesOf(`HTTP/1.1 200 OK\r\nX: ${"v".repeat(50)}\x01\r\n`),
      ),
    HttpParseError,
  );
  // Only the first 40 bytes of a line are quoted.
  assertStringIncludes(cut.message, `"X: ${"v".repeat(37)}..." at byte 70`);
  // A no-break space before chunked shows as the byte it is, not as a space.
  const te = assertThrows(
    () =>
      new ResponseParser().receive(
        bytesOf("HTTP/1.1 200 OK\r\nTransfer-Encoding: \xa0chunked\r\n\r\n"),
      ),
    HttpParseError,
  );
  assertStringIncludes(
    te.message,
    'unsupported Transfer-Encoding "\\xa0chunked"',
  );
});

Deno.test("ResponseParser.receive() enforces maxHeadBytes however split", () => {
  const head = "HTTP/1.1 200 OK\r\nX-Big: " + "a".repeat(200) + "\r\n\r\n";
  for (const pieces of [[bytesOf(head)], splitEvery(bytesOf(head), 1)]) {
    const parser = new ResponseParser({ maxHeadBytes: 100 });
    const e = assertThrows(() => {
      for (const p of pieces) parser.receive(p);
    }, HttpParseError);
    assertStrictEquals(e.code, "head-too-large");
    assertStrictEquals(e.offset, 100);
  }
  // Exactly at the limit is fine.
  const exact = "HTTP/1.1 204 No Content\r\n\r\n";
  const parser = new ResponseParser({ maxHeadBytes: exact.length });
  parser.receive(bytesOf(exact));
  assert(parser.done);
});

Deno.test("ResponseParser.receive() finds the end of a header line wherever it falls: before, at and past its first 128 bytes", () => {
  // "X-Long: " is 8 bytes: values of 118..121 put the LF at offsets 126..129
  // of the line; 1000 puts it far past.
  for (const n of [0, 118, 119, 120, 121, 1000]) {
    const value = "v".repeat(n);
    const head = `HTTP/1.1 200 OK\r\nX-Long: ${value}\r\nX-After: 1\r\n` +
      "Content-Length: 2\r\n\r\nok";
    for (const pieces of [[bytesOf(head)], splitEvery(bytesOf(head), 7)]) {
      const parser = new ResponseParser();
      for (const p of pieces) parser.receive(p);
      assert(parser.done, `value of ${n}`);
      assertStrictEquals(parser.head!.field("x-long"), value);
      assertStrictEquals(parser.head!.field("x-after"), "1");
    }
  }
});

Deno.test("ResponseParser.receive() counts interim heads towards maxHeadBytes", () => {
  const parser = new ResponseParser({ maxHeadBytes: 1000 });
  const e = assertThrows(() => {
    for (let i = 0; i < 100; i++) {
      parser.receive(bytesOf("HTTP/1.1 100 Continue\r\n\r\n"));
    }
  }, HttpParseError);
  assertStrictEquals(e.code, "head-too-large");
});

Deno.test("ResponseParser.receive() enforces maxHeaders for headers and trailers", () => {
  const fields = "X-A: 1\r\n".repeat(4);
  const ok = new ResponseParser({ maxHeaders: 4 });
  ok.receive(bytesOf(`HTTP/1.1 204 No Content\r\n${fields}\r\n`));
  assert(ok.done);
  const e = assertThrows(
    () =>
      new ResponseParser({ maxHeaders: 3 }).receive(
        bytesOf(`HTTP/1.1 204 No Content\r\n${fields}\r\n`),
      ),
    HttpParseError,
  );
  assertStrictEquals(e.code, "too-many-headers");
  const t = assertThrows(
    () =>
      new ResponseParser({ maxHeaders: 3 }).receive(
        bytesOf(`${CHUNKED_HEAD}0\r\n${fields}\r\n`),
      ),
    HttpParseError,
    "trailer",
  );
  assertStrictEquals(t.code, "too-many-headers");
});

Deno.test("ResponseParser.receive() enforces maxBodyBytes for every framing", () => {
  const cases = [
    "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n",
    `${CHUNKED_HEAD}6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n`,
    "HTTP/1.1 200 OK\r\n\r\nhello world",
  ];
  for (const response of cases) {
    const tooLarge = assertThrows(() => {
      const parser = new ResponseParser({ maxBodyBytes: 10 });
      parser.receive(bytesOf(response));
      parser.receive(null);
    }, HttpParseError);
    assertStrictEquals(tooLarge.code, "body-too-large", response);
    const body = response.includes("Length")
      ? response + "hello world"
      : response;
    const parser = new ResponseParser({ maxBodyBytes: 11 });
    parser.receive(bytesOf(body));
    parser.receive(null);
    assertEquals(textOf(parser.takeBody()), "hello world");
  }
});

Deno.test("ResponseParser.receive() fails a Content-Length past maxBodyBytes on the head, before any body byte", () => {
  for (
    const value of [
      "1048577",
      "1000000000000",
      String(2 ** 53 + 1),
      "9".repeat(30),
    ]
  ) {
    const head = bytesOf(`HTTP/1.1 200 OK\r\nContent-Length: ${value}\r\n\r\n`);
    const parser = new ResponseParser({ maxBodyBytes: 1 << 20 });
    const e = assertThrows(
      () => parser.receive(head),
      HttpParseError,
      "over the 1048576 byte limit",
    );
    assertStrictEquals(e.code, "body-too-large", value);
    assertStrictEquals(e.offset, head.length);
    assertStrictEquals(parser.contentLength, -1);
    assertStrictEquals(parser.bodyRemaining, -1);
  }
});

Deno.test("ResponseParser.contentLength and bodyRemaining are exact integers up to 2^53 - 1", () => {
  const head = (value: string) =>
    bytesOf(`HTTP/1.1 200 OK\r\nContent-Length: ${value}\r\n\r\n`);
  for (
    const [value, n] of [
      ["1000000000000", 1e12],
      [String(2 ** 53 - 1), 2 ** 53 - 1],
      ["0".repeat(29) + "7", 7],
    ] as const
  ) {
    const parser = new ResponseParser();
    parser.receive(head(value));
    assertStrictEquals(parser.contentLength, n);
    assertStrictEquals(parser.bodyRemaining, n);
    parser.skipBody(n - 1);
    assertStrictEquals(parser.bodyRemaining, 1);
    const e = assertThrows(() => parser.receive(null), HttpParseError);
    assertStrictEquals(e.code, "truncated-body");
    assertStringIncludes(e.message, `after ${n - 1} of ${n} body bytes`);
    assertStrictEquals(parser.bodyRemaining, -1, "none after an error");
  }
  // Without a body limit, what a number cannot hold exactly is invalid.
  for (const value of [String(2 ** 53), String(2 ** 53 + 1), "9".repeat(30)]) {
    const parser = new ResponseParser();
    const e = assertThrows(() => parser.receive(head(value)), HttpParseError);
    assertStrictEquals(e.code, "invalid-content-length", value);
    assertStrictEquals(parser.contentLength, -1);
  }
  // Bodiless responses announce a length they do not frame.
  const bodiless = new ResponseParser({ method: "HEAD", maxBodyBytes: 10 });
  bodiless.receive(head("9".repeat(30)));
  assert(bodiless.done);
  assertStrictEquals(bodiless.contentLength, -1);
});

Deno.test("ResponseParser.receive() throws only HttpParseError for any Content-Length digits and limit", () => {
  const random = mulberry32(SEED);
  for (let i = 0; i < 2_000; i++) {
    const digits = Array.from(
      { length: 1 + Math.floor(random() * 40) },
      () => Math.floor(random() * 10),
    ).join("");
    const limits = [Infinity, 0, 1 << 20, 2 ** 53 - 1];
    const max = limits[Math.floor(random() * limits.length)]!;
    const parser = new ResponseParser({ maxBodyBytes: max });
    try {
      parser.receive(
        bytesOf(`HTTP/1.1 200 OK\r\nContent-Length: ${digits}\r\n\r\n`),
      );
    } catch (e) {
      assertInstanceOf(e, HttpParseError);
      continue;
    }
    const n = parser.contentLength;
    assert(Number.isSafeInteger(n) && n <= max, `${digits}: ${n}`);
    assertStrictEquals(n, Number(digits));
    assertStrictEquals(parser.bodyRemaining, n === 0 ? -1 : n);
  }
});

Deno.test("ResponseParser.receive() bounds the trailer section", () => {
  const e = assertThrows(
    () =>
      new ResponseParser({ maxHeadBytes: 200 }).receive(
        bytesOf(`${CHUNKED_HEAD}0\r\nX-T: ${"t".repeat(300)}\r\n\r\n`),
      ),
    HttpParseError,
  );
  assertStrictEquals(e.code, "trailers-too-large");
});

Deno.test("ResponseParser.receive() treats only HEAD as a bodiless method", () => {
  const response = bytesOf("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  const head = new ResponseParser({ method: "HEAD" });
  assertStrictEquals(head.receive(response), response.length - 2);
  const get = new ResponseParser({ method: "GET" });
  assertStrictEquals(get.receive(response), response.length);
  assertEquals(textOf(get.takeBody()), "ok");
});

Deno.test("ResponseParser() rejects invalid limits with RangeError", () => {
  assertThrows(() => new ResponseParser({ maxHeadBytes: 0 }), RangeError);
  assertThrows(() => new ResponseParser({ maxHeaders: -1 }), RangeError);
  assertThrows(() => new ResponseParser({ maxBodyBytes: 1.5 }), RangeError);
  assertThrows(() => new ResponseParser({ maxBodyBytes: NaN }), RangeError);
  new ResponseParser({ maxBodyBytes: Infinity, maxHeaders: 0 });
});

Deno.test("ResponseParser.receive() is linear when fed one byte at a time", () => {
  // A quadratic rescan of this 60 KiB line would take seconds; linear is ms.
  const big = bytesOf(
    `HTTP/1.1 200 OK\r\nX-Big: ${
      "v".repeat(60_000)
    }\r\nContent-Length: 100000\r\n\r\n${"b".repeat(100_000)}`,
  );
  const start = performance.now();
  const parser = new ResponseParser();
  let bodyBytes = 0;
  for (let i = 0; i < big.length; i++) {
    parser.receive(big.subarray(i, i + 1));
    for (const c of parser.takeBody()) bodyBytes += c.length;
  }
  const elapsed = performance.now() - start;
  assert(parser.done);
  assertStrictEquals(bodyBytes, 100_000);
  assertStrictEquals(parser.head!.headers.get("x-big")!.length, 60_000);
  assert(elapsed < 2_000, `took ${elapsed.toFixed(0)} ms`);
});

Deno.test("ResponseParser.receive() never lets a Headers TypeError escape", () => {
  // Every byte value in a header value: either accepted or an HttpParseError.
  for (let b = 0; b < 256; b++) {
    const parser = new ResponseParser();
    try {
      parser.receive(
        bytesOf(
          `HTTP/1.1 204 No Content\r\nX-V: a${String.fromCharCode(b)}b\r\n\r\n`,
        ),
      );
      assert(parser.done);
    } catch (e) {
      assertInstanceOf(e, HttpParseError);
    }
  }
});

Deno.test("ResponseParser.skipBody() accounts for body bytes the caller read itself", () => {
  const parser = new ResponseParser();
  parser.receive(
    new TextEncoder().encode(
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
    ),
  );
  assertEquals(parser.takeBody().map((c) => c.length), [3]);
  assertEquals(parser.bodyRemaining, 7);
  parser.skipBody(4);
  assertEquals(parser.bodyRemaining, 3);
  assertThrows(() => parser.skipBody(4), RangeError);
  parser.skipBody(3);
  assert(parser.done);
  assertEquals(parser.bodyRemaining, -1);
  assertEquals(parser.bytesConsumed, 39 + 10); // head, then the whole body
  assertThrows(() => parser.skipBody(0), RangeError);
  const chunked = new ResponseParser();
  chunked.receive(
    new TextEncoder().encode(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    ),
  );
  assertEquals(chunked.bodyRemaining, -1);
  assertThrows(() => chunked.skipBody(1), RangeError);
});

Deno.test("ResponseParser.contentEncoded tells whether the final head has Content-Encoding, in any case, and not an interim head's", () => {
  const enc = new TextEncoder();
  const parse = (text: string) => {
    const parser = new ResponseParser();
    assertEquals(parser.contentEncoded, false);
    parser.receive(enc.encode(text));
    return parser;
  };
  const gzip = parse(
    "HTTP/1.1 200 OK\r\ncOnTeNt-EnCoDiNg: gzip\r\nContent-Length: 0\r\n\r\n",
  );
  assertEquals(gzip.contentEncoded, true);
  assertEquals(gzip.head?.field("content-encoding"), "gzip");
  const plain = parse(
    "HTTP/1.1 103 Early Hints\r\nContent-Encoding: br\r\n\r\n" +
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n",
  );
  assertEquals(plain.contentEncoded, false);
  assertEquals(plain.head?.field("content-encoding"), null);
  // A look-alike name of the same length is not it.
  const other = parse(
    "HTTP/1.1 200 OK\r\nContent-Encodinx: gzip\r\nContent-Length: 0\r\n\r\n",
  );
  assertEquals(other.contentEncoded, false);
  plain.reset("GET");
  assertEquals(plain.contentEncoded, false);
});

Deno.test("ResponseParser.peekBody() shows the chunks not taken yet, in order, and clearBody() drops them", () => {
  const enc = new TextEncoder();
  const parser = new ResponseParser();
  parser.receive(enc.encode("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nab"));
  parser.receive(enc.encode("cd"));
  const seen = parser.peekBody();
  assertEquals(seen.map((c) => new TextDecoder().decode(c)), ["ab", "cd"]);
  assertStrictEquals(parser.peekBody(), seen, "the same array, not a copy");
  parser.clearBody();
  assertEquals(parser.peekBody().length, 0);
  assertEquals(parser.takeBody().length, 0);
  parser.receive(enc.encode("ef"));
  assertEquals(new TextDecoder().decode(parser.peekBody()[0]), "ef");
  assert(parser.done);
  parser.reset("GET");
  assertEquals(parser.peekBody().length, 0, "reset drops untaken chunks");
});

Deno.test("ResponseParser.keepAliveTimeout reads Keep-Alive's timeout= parameter (ms), -1 without a valid one", () => {
  const timeoutOf = (fields: string, interim = "") => {
    const parser = new ResponseParser();
    parser.receive(
      bytesOf(
        `${interim}HTTP/1.1 200 OK\r\n${fields}Content-Length: 0\r\n\r\n`,
      ),
    );
    assert(parser.done);
    return parser.keepAliveTimeout;
  };
  assertStrictEquals(timeoutOf(""), -1);
  assertStrictEquals(timeoutOf("Keep-Alive: timeout=5, max=100\r\n"), 5_000);
  assertStrictEquals(timeoutOf("keep-alive: MAX=3 , Timeout=2\r\n"), 2_000);
  assertStrictEquals(timeoutOf('Keep-Alive: timeout="1"\r\n'), 1_000);
  assertStrictEquals(timeoutOf("Keep-Alive: timeout=0\r\n"), 0);
  assertStrictEquals(timeoutOf("Keep-Alive: timeout=3; max=100\r\n"), 3_000);
  assertStrictEquals(timeoutOf("Keep-Alive: timeout=7;\r\n"), 7_000);
  assertStrictEquals(timeoutOf("Keep-Alive: max=100; timeout=6\r\n"), 6_000);
  assertStrictEquals(timeoutOf("Keep-Alive: timeout=8 ; max=100\r\n"), 8_000);
  assertStrictEquals(
    timeoutOf("Keep-Alive: timeout=9\r\nKeep-Alive: timeout=4\r\n"),
    4_000,
  );
  assertStrictEquals(timeoutOf("Keep-Alive: timeout=59\r\n"), 59_000);
  assertStrictEquals(timeoutOf("Keep-Alive: timeout=0, timeout=5\r\n"), 0);
  for (
    const bad of [
      "timeout=",
      "timeout=-1",
      "timeout=1.5",
      "timeout=5s",
      "timeout=5.0;",
      'timeout="5;"',
      'timeout="5',
      'timeout="15',
      'timeout=15"',
      "timeouts=5",
      "timeout=5:",
      "max=5",
      "max=10000",
    ]
  ) {
    assertStrictEquals(timeoutOf(`Keep-Alive: ${bad}\r\n`), -1, bad);
  }
  // An interim head's fields are not the final response's.
  assertStrictEquals(
    timeoutOf("", "HTTP/1.1 100 Continue\r\nKeep-Alive: timeout=1\r\n\r\n"),
    -1,
  );
  // Connection's own keep-alive token is not the field.
  assertStrictEquals(timeoutOf("Connection: keep-alive, timeout=3\r\n"), -1);
});

Deno.test("ResponseParser.keepAliveTimeout reads a ; list without spaces, with tabs, empty parameters, mixed with a , list, the smallest timeout of all", () => {
  const timeoutOf = (value: string) => {
    const parser = new ResponseParser();
    parser.receive(
      bytesOf(
        `HTTP/1.1 200 OK\r\nKeep-Alive: ${value}\r\nContent-Length: 0\r\n\r\n`,
      ),
    );
    assert(parser.done);
    return parser.keepAliveTimeout;
  };
  const cases: [string, number][] = [
    ["max=100;timeout=5", 5_000],
    ["max=1;\ttimeout=2\t;max=3", 2_000],
    [";timeout=4", 4_000],
    ["timeout=5;;max=1", 5_000],
    ["timeout=9; timeout=3", 3_000],
    ["max=1; timeout=9, timeout=3; max=2", 3_000],
    ["timeout=3, max=1; timeout=7", 3_000],
    ["timeout=5;max=1;timeout=x", 5_000],
    ["timeout=5 max=1", -1],
    ["max=1;timeout", -1],
    [";", -1],
  ];
  for (const [value, ms] of cases) {
    assertStrictEquals(timeoutOf(value), ms, value);
  }
});

Deno.test("ResponseParser.keepAliveTimeout is -1 until the final head is whole, though its Keep-Alive field came", () => {
  const parser = new ResponseParser();
  // The field is whole once the next one starts (no obs-fold follows it).
  parser.receive(
    bytesOf(
      "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n",
    ),
  );
  assert(parser.head === null);
  assertStrictEquals(parser.keepAliveTimeout, -1);
  parser.receive(bytesOf("\r\n"));
  assert(parser.done);
  assertStrictEquals(parser.keepAliveTimeout, 5_000);
});
