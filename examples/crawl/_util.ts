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

/** The longest wait a timer takes, 2^31 - 1 ms (~24.8 days): a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
