// Where a differential run against Node's llhttp 9.3.1 (strict mode, 15,000
// generated responses) found ResponseParser reading a response otherwise and RFC
// 9110/9112 side with ours: pinned, so that nobody "fixes" them towards llhttp.
import { assert, assertEquals, assertInstanceOf } from "@std/assert";
import { ResponseParser } from "../client/_response_parser.ts";
import { HttpParseError } from "../client/http_parse_error.ts";
import { latin1Bytes as bytesOf, splitEvery } from "./_net.ts";

function textOf(chunks: Uint8Array[]): string {
  let s = "";
  for (const c of chunks) for (const b of c) s += String.fromCharCode(b);
  return s;
}

/**
 * Parses `text` fed whole, then byte by byte; both must agree on the body and on
 * reuse. Returns what the parser fed whole made of it.
 */
function parse(text: string): { body: string; keepAlive: boolean } {
  const bytes = bytesOf(text);
  const results = [[bytes], splitEvery(bytes, 1)].map((pieces) => {
    const parser = new ResponseParser();
    let body = "";
    for (const piece of pieces) {
      parser.receive(piece);
      body += textOf(parser.takeBody());
    }
    if (!parser.done) parser.receive(null);
    body += textOf(parser.takeBody());
    assert(parser.done);
    return { body, keepAlive: parser.keepAlive };
  });
  assertEquals(results[1], results[0], "fed byte by byte");
  return results[0]!;
}

// RFC 9110 section 5.6.1: empty list elements are ignored, so "chunked," is chunked
// (llhttp reads it as an unknown coding and the body until close).
Deno.test("ResponseParser reads Transfer-Encoding 'chunked,' as chunked", () => {
  const p = parse(
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
  );
  assertEquals(p.body, "hi");
});

// RFC 9110 section 5.5: whitespace around a field value is not part of it, so
// "chunked<TAB>" is chunked (Node 20's llhttp reads such a body until close and
// hands back its chunk framing as the body; h11 decodes it, as we do).
Deno.test("ResponseParser reads Transfer-Encoding 'chunked' with a tab after it as chunked, and reuses the conn", () => {
  const p = parse(
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\t\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
  );
  assertEquals(p.body, "hi");
  assert(p.keepAlive);
});

// RFC 9112 section 6.3 rule 5: identical Content-Length values (a list, or repeated
// fields) may be read as one (llhttp rejects both).
Deno.test("ResponseParser accepts identical Content-Length values as a list or repeated", () => {
  for (
    const cl of [
      "Content-Length: 2, 2",
      "Content-Length: 2\r\nContent-Length: 2",
    ]
  ) {
    const p = parse(`HTTP/1.1 200 OK\r\n${cl}\r\n\r\nhi`);
    assertEquals(p.body, "hi");
    assert(p.keepAlive);
  }
});

// RFC 9112 section 6.3 rule 3: Transfer-Encoding overrides Content-Length, and the
// connection is not reused (llhttp rejects the response outright).
Deno.test("ResponseParser lets Transfer-Encoding override Content-Length and does not reuse the conn", () => {
  const p = parse(
    "HTTP/1.1 200 OK\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
  );
  assertEquals(p.body, "hi");
  assert(!p.keepAlive);
});

// RFC 9112 section 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing
// and the connection closes after it, keep-alive or not (llhttp reuses it).
Deno.test("ResponseParser never reuses the conn after an HTTP/1.0 chunked response", () => {
  const p = parse(
    "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
  );
  assertEquals(p.body, "hi");
  assert(!p.keepAlive);
});

// RFC 9112 section 9.3: "close" ends persistence whatever else Connection lists
// (llhttp reuses an HTTP/1.0 conn whose Connection has both).
Deno.test("ResponseParser does not reuse an HTTP/1.0 conn whose Connection lists keep-alive and close", () => {
  const p = parse(
    "HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nhi",
  );
  assert(!p.keepAlive);
});

// RFC 9112 section 7.1.1: BWS may come around ";" and "=" of a chunk extension
// (llhttp's strict mode rejects it); an empty extension value is no token.
Deno.test("ResponseParser accepts BWS in chunk extensions and rejects an empty extension value", () => {
  for (const line of ["2 ;a", "2; a", "2;a = b"]) {
    const p = parse(
      `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${line}\r\nhi\r\n0\r\n\r\n`,
    );
    assertEquals(p.body, "hi", line);
  }
  const parser = new ResponseParser();
  let error: unknown = null;
  try {
    parser.receive(bytesOf(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a=\r\nhi\r\n0\r\n\r\n",
    ));
  } catch (e) {
    error = e;
  }
  assertInstanceOf(error, HttpParseError);
  assertEquals(error.code, "invalid-chunk-extension");
});

// RFC 9112 section 6.3 rule 1: a 304's (or 204's, or HEAD's) Content-Length
// frames nothing, so an invalid one does not fail the response; but the server's
// framing is suspect, so the conn is not reused (h11 and llhttp reject it).
Deno.test("ResponseParser reads a 304 or 204 with an invalid Content-Length as bodiless, and does not reuse the conn", () => {
  for (const status of ["304 Not Modified", "204 No Content"]) {
    for (const cl of ["5, 6", "abc", "-1"]) {
      const p = parse(`HTTP/1.1 ${status}\r\nContent-Length: ${cl}\r\n\r\n`);
      assertEquals(p.body, "", `${status} ${cl}`);
      assert(!p.keepAlive, `${status} ${cl}`);
    }
    // A valid one is what the body would have been: the conn stays.
    assert(parse(`HTTP/1.1 ${status}\r\nContent-Length: 5\r\n\r\n`).keepAlive);
  }
});
