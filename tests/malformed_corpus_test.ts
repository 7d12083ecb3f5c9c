import {
  assert,
  assertEquals,
  assertGreaterOrEqual,
  assertInstanceOf,
  assertLessOrEqual,
  assertStrictEquals,
  assertStringIncludes,
  fail,
} from "@std/assert";
import { ResponseParser } from "../client/_response_parser.ts";
import { HttpParseError } from "../client/http_parse_error.ts";
import { ACCEPTED, MALFORMED } from "./_malformed_corpus.ts";
import { latin1Bytes, latin1Text } from "./_net.ts";

/** Feeds `pieces` then EOF; returns the error the parser threw. */
function parseError(
  pieces: Iterable<Uint8Array>,
  method: string | undefined,
): HttpParseError {
  const parser = new ResponseParser(method ? { method } : {});
  try {
    for (const piece of pieces) parser.receive(piece);
    parser.receive(null);
  } catch (e) {
    assertInstanceOf(e, HttpParseError);
    return e;
  }
  return fail(`parsed without error, status ${parser.head?.status}`);
}

function* oneByteAtATime(bytes: Uint8Array): Iterable<Uint8Array> {
  for (let i = 0; i < bytes.length; i++) yield bytes.subarray(i, i + 1);
}

Deno.test("MALFORMED has at least 70 cases with unique names", () => {
  assertGreaterOrEqual(MALFORMED.length, 70);
  assertStrictEquals(
    new Set(MALFORMED.map((c) => c.name)).size,
    MALFORMED.length,
  );
});

for (const c of MALFORMED) {
  Deno.test(`ResponseParser.receive() fails with ${c.code}: ${c.name}`, () => {
    const bytes = latin1Bytes(c.bytes);
    const whole = parseError([bytes], c.method);
    assertStrictEquals(whole.code, c.code, whole.message);
    assertStrictEquals(whole.name, "HttpParseError");
    assertStringIncludes(whole.message, "Cannot parse response: ");
    assert(!whole.message.endsWith("."), "no trailing period");
    assertGreaterOrEqual(whole.offset, 0);
    assertLessOrEqual(whole.offset, bytes.length);

    const byByte = parseError(oneByteAtATime(bytes), c.method);
    assertStrictEquals(byByte.code, c.code, byByte.message);
    assertStrictEquals(
      byByte.offset,
      whole.offset,
      "same offset however split",
    );
    assertStrictEquals(byByte.message, whole.message, "same message");
    if (c.offset !== undefined) assertStrictEquals(whole.offset, c.offset);
  });
}

for (const c of ACCEPTED) {
  Deno.test(`ResponseParser.receive() reads ${c.name}`, () => {
    const bytes = latin1Bytes(c.bytes);
    for (const pieces of [[bytes], [...oneByteAtATime(bytes)]]) {
      const parser = new ResponseParser();
      const body: Uint8Array[] = [];
      for (const piece of pieces) {
        parser.receive(piece);
        body.push(...parser.takeBody());
      }
      if (!parser.done) parser.receive(null);
      body.push(...parser.takeBody());
      assert(parser.done && parser.head !== null);
      assertStrictEquals(parser.head.status, c.status);
      if (c.statusText !== undefined) {
        assertStrictEquals(parser.head.statusText, c.statusText);
      }
      for (const [name, value] of Object.entries(c.headers)) {
        assertStrictEquals(parser.head.headers.get(name), value, name);
      }
      assertEquals(
        parser.trailers && Object.fromEntries(parser.trailers),
        c.trailers ?? null,
      );
      assertStrictEquals(latin1Text(body), c.body);
    }
  });
}
