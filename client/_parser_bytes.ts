/**
 * The byte grammar of HTTP/1.1 (RFC 9110 section 5.6, RFC 9112) that the response
 * parser's pieces share: byte classes, scanning helpers, latin1 decoding and the
 * errors that name what was received.
 *
 * @module
 */

import { HttpParseError, type HttpParseErrorCode } from "./http_parse_error.ts";

export const HTAB = 9;
export const LF = 10;
export const CR = 13;
export const SP = 32;
export const DQUOTE = 34;
export const COMMA = 44;
export const COLON = 58;
export const SEMICOLON = 59;
export const EQUALS = 61;
export const BACKSLASH = 92;

/** Shared, as allocating even an empty typed array costs more than a parse. */
export const EMPTY: Uint8Array = new Uint8Array(0);

/** RFC 9110 `tchar`, indexed by byte. */
export const TCHAR: Uint8Array = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let b = 48; b <= 57; b++) TCHAR[b] = 1;
for (let b = 65; b <= 90; b++) TCHAR[b] = 1;
for (let b = 97; b <= 122; b++) TCHAR[b] = 1;

/** Hexadecimal digit values indexed by byte, -1 for other bytes. */
export const HEX: Int8Array = new Int8Array(256).fill(-1);
for (let b = 0; b < 10; b++) HEX[48 + b] = b;
for (let b = 0; b < 6; b++) HEX[65 + b] = HEX[97 + b] = 10 + b;

/**
 * True for `field-vchar` (VCHAR / obs-text): bytes allowed in a field value or
 * reason phrase besides SP and HTAB.
 */
export function isFieldVchar(b: number): boolean {
  return (b > 0x20 && b < 0x7f) || (b > 0x7f && b < 0x100);
}

/** True for SP and HTAB (`OWS`, `BWS`, `RWS` are runs of them). */
export function isWs(b: number | undefined): boolean {
  return b === SP || b === HTAB;
}

/** Returns the index of the first byte at or after `i` that is not SP or HTAB. */
export function skipWs(bytes: Uint8Array, i: number, end: number): number {
  while (i < end && isWs(bytes[i])) i++;
  return i;
}

/** Returns the index just after the last byte before `end` that is not SP or HTAB. */
export function trimWsEnd(
  bytes: Uint8Array,
  start: number,
  end: number,
): number {
  while (end > start && isWs(bytes[end - 1])) end--;
  return end;
}

/** Returns the index of the first byte at or after `i` that is not a `tchar`. */
export function skipToken(bytes: Uint8Array, i: number, end: number): number {
  while (i < end && TCHAR[bytes[i]!] === 1) i++;
  return i;
}

/**
 * Whether `bytes[start:end]` is `lower` (lower-case ASCII) compared without
 * regard to ASCII case.
 */
export function equalsLower(
  bytes: Uint8Array,
  start: number,
  end: number,
  lower: Uint8Array,
): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    // Setting 0x20 lower-cases letters; the only other byte it maps onto a
    // letter or "-" is CR, which never reaches here.
    if ((bytes[start + i]! | 0x20) !== lower[i]) return false;
  }
  return true;
}

/** Latin1 bytes of a lower-case ASCII string, for {@linkcode equalsLower}. */
export function ascii(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/**
 * Decodes bytes with latin1 semantics (one byte, one UTF-16 unit), which is what
 * `Headers` expects; `TextDecoder("latin1")` would not do, as the Encoding
 * standard maps that label to windows-1252.
 */
export function latin1(bytes: Uint8Array, start: number, end: number): string {
  const CHUNK = 8192;
  let s = "";
  for (let i = start; i < end; i += CHUNK) {
    s += String.fromCharCode.apply(
      null,
      bytes.subarray(i, Math.min(end, i + CHUNK)) as unknown as number[],
    );
  }
  return s;
}

/** Quotes received bytes for an error message: short, printable, escaped. */
export function quote(bytes: Uint8Array, start: number, end: number): string {
  return quoteCodes((i) => bytes[i]!, start, end);
}

/** {@linkcode quote} for a field value the parser already read as latin1 text. */
export function quoteText(text: string): string {
  return quoteCodes((i) => text.charCodeAt(i), 0, text.length);
}

function quoteCodes(
  code: (i: number) => number,
  start: number,
  end: number,
): string {
  const MAX = 40;
  let s = '"';
  const stop = Math.min(end, start + MAX);
  for (let i = start; i < stop; i++) {
    const b = code(i);
    if (b === DQUOTE || b === BACKSLASH) s += "\\" + String.fromCharCode(b);
    else if (b === CR) s += "\\r";
    else if (b === HTAB) s += "\\t";
    else if (b < 0x20 || b >= 0x7f) {
      s += "\\x" + b.toString(16).padStart(2, "0");
    } else s += String.fromCharCode(b);
  }
  return s + (end > stop ? '..."' : '"');
}

/** The error for `code`, its message ending with the stream offset. */
export function parseError(
  code: HttpParseErrorCode,
  detail: string,
  offset: number,
): HttpParseError {
  return new HttpParseError(
    code,
    `Cannot parse response: ${detail} at byte ${offset}`,
    offset,
  );
}

/** Throws {@linkcode parseError}. */
export function fail(
  code: HttpParseErrorCode,
  detail: string,
  offset: number,
): never {
  throw parseError(code, detail, offset);
}

/**
 * Fails on an unexpected byte, naming NUL and bare CR specifically since those
 * are what request smuggling and response splitting attacks are made of.
 *
 * @param b The byte, or -1 for the end of the line.
 */
export function unexpected(
  b: number,
  code: HttpParseErrorCode,
  detail: string,
  offset: number,
  where: string,
): never {
  if (b === 0) fail("nul-byte", `NUL byte in ${where}`, offset);
  if (b === CR) fail("bare-cr", `CR not followed by LF in ${where}`, offset);
  return fail(code, detail, offset);
}
