import { assert, assertEquals, assertInstanceOf } from "@std/assert";
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
