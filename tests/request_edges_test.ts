import { assertStrictEquals, assertThrows } from "@std/assert";
import { encodeRequest, type EncodeRequestInit } from "../client/_request.ts";

function text(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}

function encode(url: string, init: Partial<EncodeRequestInit> = {}): string {
  return text(
    encodeRequest({
      method: "GET",
      url: new URL(url),
      keepAlive: true,
      ...init,
    }),
  );
}

// API.md 0.2: "URL credentials (http://user:pass@host/) are sent as
// Authorization: Basic". The WHATWG parser percent-encodes "@", ":" and the like
// in userinfo; each escape is decoded, the last three bytes of the userinfo too.
Deno.test("encodeRequest() percent-decodes an escape that ends the user or the password", () => {
  const cases: Array<[string, string]> = [
    ["http://user:p%40@h/", "user:p@"],
    ["http://u%3A:pw@h/", "u::pw"],
    ["http://user:%41@h/", "user:A"],
    ["http://user:pa%2@h/", "user:pa%2"], // too short to be an escape: as written
  ];
  for (const [url, userinfo] of cases) {
    assertStrictEquals(
      encode(url).split("\r\n")[2],
      `Authorization: Basic ${btoa(userinfo)}`,
      url,
    );
  }
});

// _request.ts checks a caller's Host as it checks the URL's: visible ASCII, not
// empty. A space or a non-ASCII byte in it is no host (RFC 9110 section 7.2), and
// the check is made once, when the writer is built.
Deno.test("encodeRequest() rejects a caller's Host that is empty or has a space or a non-ASCII character", () => {
  for (const host of ["", "a b.test", "h\u00e9.test"]) {
    assertThrows(
      () => encode("http://example.com/", { headers: [["Host", host]] }),
      TypeError,
      undefined,
      JSON.stringify(host),
    );
  }
  assertStrictEquals(
    encode("http://example.com/", { headers: { Host: "virtual.test" } })
      .split("\r\n")[1],
    "Host: virtual.test",
  );
});
