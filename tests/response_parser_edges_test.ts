import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { ResponseParser } from "../client/_response_parser.ts";
import { HttpParseError } from "../client/http_parse_error.ts";
import { latin1Bytes as bytesOf, splitEvery } from "./_net.ts";

function textOf(chunks: Uint8Array[]): string {
  let s = "";
  for (const c of chunks) for (const b of c) s += String.fromCharCode(b);
  return s;
}

/** Feeds `pieces`; returns the error thrown, or null if none was. */
function errorOf(pieces: Uint8Array[]): unknown {
  const parser = new ResponseParser();
  try {
    for (const piece of pieces) parser.receive(piece);
    parser.receive(null);
  } catch (e) {
    return e;
  }
  return null;
}

// RFC 9112 section 7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF.
// A bare LF is a tolerated line ending, but "\r\r\n" after chunk data is no line
// ending at all: a parser that skips the extra CR disagrees with one that does
// not on where the next chunk starts.
Deno.test("ResponseParser rejects CR CR LF after chunk data as an invalid chunk terminator, whole or byte by byte", () => {
  const bytes = bytesOf(
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\r\n0\r\n\r\n",
  );
  for (const pieces of [[bytes], splitEvery(bytes, 1)]) {
    const error = errorOf(pieces);
    assertInstanceOf(error, HttpParseError);
    assertEquals(error.code, "invalid-chunk-terminator");
  }
});

// RFC 9112 section 6.3: only a 2xx to CONNECT turns the conn into a tunnel; any
// other status (a 3xx included) has a body framed as usual.
Deno.test("ResponseParser for CONNECT reads the Content-Length body of a 300, not a tunnel", () => {
  for (const status of [300, 407]) {
    const parser = new ResponseParser({ method: "CONNECT" });
    const head = `HTTP/1.1 ${status} No\r\nContent-Length: 3\r\n\r\n`;
    const used = parser.receive(bytesOf(`${head}abc`));
    assertEquals(used, head.length + 3, `${status}: the body is consumed`);
    assert(parser.done);
    assertEquals(textOf(parser.takeBody()), "abc");
  }
  // A 2xx is a tunnel: the parser stops right after the head.
  const tunnel = new ResponseParser({ method: "CONNECT" });
  const head = "HTTP/1.1 299 Ok\r\nContent-Length: 3\r\n\r\n";
  assertEquals(tunnel.receive(bytesOf(`${head}abc`)), head.length);
  assert(tunnel.done);
});

// The reason phrase is handed back as sent (RFC 9112 section 4); "OK" is only a
// shortcut for a reason that is exactly "OK", not for one that starts with it.
Deno.test('ResponseParser keeps a reason phrase that starts with "OK" whole', () => {
  for (const reason of ["OK", "OKAY", "OK then", "OK?"]) {
    const parser = new ResponseParser();
    parser.receive(
      bytesOf(`HTTP/1.1 200 ${reason}\r\nContent-Length: 0\r\n\r\n`),
    );
    assert(parser.done);
    assertEquals(parser.head!.statusText, reason);
  }
});

// A head sound in itself is kept when only the body's size fails it (a crawl
// still follows a redirect whose body it will not read); a head whose framing
// is invalid is not a response at all.
Deno.test("ResponseParser keeps the head of a response whose Content-Length passes maxBodyBytes, and none when its Content-Length is invalid", () => {
  const tooLarge = new ResponseParser({ maxBodyBytes: 10 });
  const error = assertThrows(
    () =>
      tooLarge.receive(
        bytesOf(
          "HTTP/1.1 301 Moved\r\nLocation: /x\r\nContent-Length: 11\r\n\r\n",
        ),
      ),
    HttpParseError,
  );
  assertEquals(error.code, "body-too-large");
  assertEquals(tooLarge.head?.status, 301);
  assertEquals(tooLarge.head?.field("location"), "/x");

  const invalid = new ResponseParser({ maxBodyBytes: 10 });
  const framing = assertThrows(
    () =>
      invalid.receive(
        bytesOf(
          "HTTP/1.1 301 Moved\r\nLocation: /x\r\nContent-Length: 1x\r\n\r\n",
        ),
      ),
    HttpParseError,
  );
  assertEquals(framing.code, "invalid-content-length");
  assertEquals(invalid.head, null);
});

Deno.test("ResponseParser head.field() matches a name whole, in any case, and drops a blank obs-fold", () => {
  const parser = new ResponseParser();
  parser.receive(
    bytesOf(
      "HTTP/1.1 200 OK\r\nX-ZED: z\r\nX-A: a\r\n   \r\nContent-Length: 0\r\n\r\n",
    ),
  );
  const head = parser.head!;
  for (const name of ["x-zed", "X-ZED", "X-Zed"]) {
    assertEquals(head.field(name), "z", name);
  }
  assertEquals(head.field("y-zed"), null);
  assertEquals(head.field("x-a"), "a");
});

Deno.test("ResponseParser reports -1 for contentLength and headOffset until the final head, and receive(null) uses no bytes", () => {
  const parser = new ResponseParser();
  assertEquals(parser.contentLength, -1);
  assertEquals(parser.headOffset, -1);
  const interim = "HTTP/1.1 100 Continue\r\n\r\n";
  parser.receive(bytesOf(interim));
  assertEquals(parser.contentLength, -1);
  assertEquals(parser.headOffset, -1);
  parser.receive(bytesOf("HTTP/1.1 200 OK\r\n\r\nuntil close"));
  assertEquals(parser.headOffset, interim.length);
  assertEquals(parser.bodyRemaining, -1);
  assertEquals(parser.receive(null), 0);
  assert(parser.done);
  parser.reset("GET");
  assertEquals(parser.contentLength, -1);
  assertEquals(parser.headOffset, -1);
});

Deno.test("ResponseParser accepts maxHeadBytes of 1, the least", () => {
  const parser = new ResponseParser({ maxHeadBytes: 1 });
  const error = assertThrows(
    () => parser.receive(bytesOf("HTTP/1.1 200 OK\r\n\r\n")),
    HttpParseError,
  );
  assertEquals(error.code, "head-too-large");
  assertThrows(() => new ResponseParser({ maxHeadBytes: 0 }), RangeError);
});

Deno.test("ResponseParser error messages quote control bytes and DEL as \\xNN", () => {
  const cases: [string, string][] = [
    ["HTTP/1.1 200 O\x01K\r\n\r\n", "\\x01"],
    ["HTTP/1.1 200 O\x1fK\r\n\r\n", "\\x1f"],
    ["HTTP/1.1 200 OK\r\nX-A: a\x7fb\r\n\r\n", "\\x7f"],
  ];
  for (const [text, quoted] of cases) {
    const error = errorOf([bytesOf(text)]);
    assertInstanceOf(error, HttpParseError);
    assertStringIncludes(error.message, quoted);
  }
});

// Field bytes are kept in a buffer sized to what it holds; a fold that comes
// just as the buffer is full must still join with one SP. A line split across
// reads is copied whole, filling the buffer exactly.
Deno.test("ResponseParser unfolds an obs-fold whatever the length of the value before it, however split", () => {
  for (let n = 400; n <= 1100; n++) {
    const a = "a".repeat(n);
    const bytes = bytesOf(
      `HTTP/1.1 200 OK\r\nX-A: ${a}\r\n b\r\nContent-Length: 0\r\n\r\n`,
    );
    for (
      const pieces of [[bytes], [bytes.subarray(0, 30), bytes.subarray(30)]]
    ) {
      const parser = new ResponseParser();
      for (const piece of pieces) parser.receive(piece);
      assertEquals(parser.head!.field("x-a"), `${a} b`, `${n} bytes`);
    }
  }
});
