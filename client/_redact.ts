/**
 * How a URL is shown back to the caller: as given, except that a password in it
 * reads `***` (curl and Python's requests hide it the same way); and how a bad
 * option value is shown in an error message.
 *
 * @module
 */

/** `scheme://user:` then the password up to the last `@` of the authority. */
const PASSWORD = /^(\s*[A-Za-z][A-Za-z0-9+.-]*:[/\\]*[^/\\?#:]*:)[^/\\?#]*@/;

/**
 * The input as given, with its password (if the URL has one) replaced by `***`.
 *
 * @param input What the source yielded as the URL.
 * @param parsed The parsed URL, or `null` when it did not parse.
 */
export function redactUrl(input: string | URL, parsed: URL | null): string {
  if (parsed === null || !parsed.href.includes("@") || parsed.password === "") {
    return String(input);
  }
  if (input instanceof URL) {
    const copy = new URL(input.href);
    copy.password = "***";
    return copy.href;
  }
  const hidden = input.replace(PASSWORD, "$1***@");
  // A form the pattern does not know: show the parsed URL rather than the secret.
  if (hidden === input) {
    const copy = new URL(parsed.href);
    copy.password = "***";
    return copy.href;
  }
  return hidden;
}

/**
 * {@linkcode redactUrl} for input that may not be a URL a crawl can fetch (or
 * not parse at all): what looks like a password in it reads `***` all the same.
 */
export function redactInput(input: unknown): string {
  const text = textOf(input);
  let parsed: URL | null = null;
  try {
    parsed = input instanceof URL ? input : new URL(text);
  } catch {
    return text.replace(/(\/\/[^/@:]*:)[^/@]*@/, "$1***@");
  }
  return redactUrl(input instanceof URL ? input : text, parsed);
}

/** `String(value)`, or its `[object Type]` tag when that throws (no `toString`). */
export function textOf(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** A bad option value as an error message shows it: strings quoted. */
export function shown(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : textOf(value);
}

/** What a bad option value is, for an error message. */
export function typeName(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  return `an object (${value.constructor?.name ?? "no prototype"})`;
}
