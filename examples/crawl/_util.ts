/**
 * Parses `url` as an http(s) URL: always a new `URL`, so callers may edit it.
 *
 * @param url The URL to parse.
 * @param action What the caller cannot do otherwise, for the error message.
 * @returns The parsed URL.
 * @throws {TypeError} When `url` does not parse or is not http(s).
 */
export function httpUrl(url: string | URL, action: string): URL {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    // Reported below.
  }
  if (
    parsed === undefined ||
    (parsed.protocol !== "http:" && parsed.protocol !== "https:")
  ) {
    throw new TypeError(`Cannot ${action}: '${url}' is not an http(s) URL`);
  }
  return parsed;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Where a redirect leads, read as the engine follows it: the `Location` of a
 * 3xx response (not 304), or `null`. `Headers` holds a field value one byte a
 * character, so a `Location` sent as raw UTF-8 (`/café`, as many servers send
 * it) reads as Latin-1 there, and `new URL()` would percent-encode each of its
 * bytes as two characters (`/caf%C3%83%C2%A9`). Bytes that are valid UTF-8 are
 * read as UTF-8, as browsers and curl do; in any other value each byte past
 * ASCII after the host is percent-encoded as it came (curl's `/p%E4`).
 *
 * @param response The status and headers of a response.
 * @returns The `Location` value, decoded, or `null`.
 */
export function redirectLocation(
  response: { status: number; headers: Headers },
): string | null {
  const { status } = response;
  if (status < 300 || status > 399 || status === 304) return null;
  const location = response.headers.get("location");
  // deno-lint-ignore no-control-regex
  if (location === null || /^[\x00-\x7f]*$/.test(location)) return location;
  try {
    return utf8.decode(Uint8Array.from(location, (c) => c.charCodeAt(0)));
  } catch {
    // Not in a host, which the URL parser maps to its IDN form.
    const authority = /^(?:[a-z][a-z\d+.-]*:)?\/\/[^/?#]*/i.exec(location)?.[0]
      .length ?? 0;
    return location.slice(0, authority) +
      location.slice(authority).replace(
        /[\x80-\xff]/g,
        (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
      );
  }
}
