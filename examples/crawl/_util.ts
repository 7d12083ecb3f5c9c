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

/**
 * Whether two paths name one file that exists (not if either cannot be looked at).
 *
 * A Windows file ID is 64 bits and `ino` a JS number: past 2^53 (an NTFS ID whose
 * sequence number is 32 or more) IDs a few records apart round to one number, so
 * the creation time must match too.
 *
 * @param a A path.
 * @param b Another path.
 * @returns Whether `a` and `b` are one file.
 */
export async function sameFile(a: string, b: string): Promise<boolean> {
  try {
    const [x, y] = await Promise.all([Deno.stat(a), Deno.stat(b)]);
    return x.dev === y.dev && x.ino !== null && x.ino === y.ino &&
      x.birthtime?.getTime() === y.birthtime?.getTime();
  } catch {
    return false;
  }
}
