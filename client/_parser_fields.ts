/**
 * A field section of a response (its header fields, or a chunked body's trailer
 * fields): the field-line grammar (RFC 9112 section 5), obs-fold unfolding, the
 * field count limit, and storage that builds a `Headers` only when asked.
 *
 * @module
 */

import {
  COLON,
  CR,
  EMPTY,
  fail,
  HTAB,
  isFieldVchar,
  isWs,
  latin1,
  LF,
  quote,
  skipWs,
  SP,
  TCHAR,
  trimWsEnd,
  unexpected,
} from "./_parser_bytes.ts";
import { fieldArena } from "../selector/_slab.ts";

/** DEL, the one control character above SP. */
const DEL = 0x7f;

/**
 * The fields of one section, validated as they arrive. Names and values are kept
 * as bytes (copied out of the caller's arrays, which it reuses) and decoded only
 * by {@linkcode FieldSection.toHeaders}: a response whose headers nobody reads
 * never pays for strings or a `Headers`.
 *
 * The bytes are laid out as `name ":" value LF` per field, in order: a name has
 * no colon (not a `tchar`) and a value no LF, so the layout needs no index.
 */
export class FieldSection {
  readonly #maxFields: number;
  readonly #trailer: boolean;

  #buf: Uint8Array = EMPTY;
  #len = 0;
  #count = 0;
  /** Whether the last field may still be continued by an obs-fold line. */
  #open = false;
  /** Where the open field's name and value start in `#buf`. */
  #openName = 0;
  #openValue = 0;
  #openOffset = 0;

  /** The field {@linkcode FieldSection.close} closed last, in `buf`. */
  closedName = 0;
  closedValue = 0;
  closedEnd = 0;
  /** Stream offset of the first byte of the closed field's value, for errors. */
  closedOffset = 0;

  /**
   * @param maxFields Limit on the number of fields.
   * @param trailer Whether this is a trailer section (for messages and codes).
   */
  constructor(maxFields: number, trailer: boolean) {
    this.#maxFields = maxFields;
    this.#trailer = trailer;
  }

  /** The bytes the `closed*` indexes point into. */
  get buf(): Uint8Array {
    return this.#buf;
  }

  /** The bytes of the section so far: `buf[0:length]`. */
  get length(): number {
    return this.#len;
  }

  /**
   * Hands the bytes over to a response head, which keeps them, and starts
   * empty: the next section's first field cuts a buffer of its own.
   */
  release(): Uint8Array {
    const bytes = this.#buf;
    // The head reads bytes[0:length] only: the rest may serve other buffers.
    fieldArena.giveBack(bytes, this.#len);
    this.#buf = EMPTY;
    this.reset();
    return bytes;
  }

  /** Forgets every field (an interim response's), keeping the buffer. */
  reset(): void {
    this.#len = 0;
    this.#count = 0;
    this.#open = false;
  }

  /**
   * Closes the last field: no obs-fold may continue it any more. Its bounds go
   * to the `closed*` fields.
   *
   * @returns Whether a field was open.
   */
  close(): boolean {
    if (!this.#open) return false;
    this.#open = false;
    this.closedName = this.#openName;
    this.closedValue = this.#openValue;
    this.closedEnd = this.#len;
    this.closedOffset = this.#openOffset;
    this.#reserve(1);
    this.#buf[this.#len++] = LF;
    return true;
  }

  /**
   * Reads the non-empty line `bytes[start:end]`, at stream offset `offset`: the
   * continuation of the open field, or a new field, which closes the open one.
   *
   * @returns Whether this line closed a field (see {@linkcode FieldSection.close}).
   */
  line(bytes: Uint8Array, start: number, end: number, offset: number): boolean {
    if (isWs(bytes[start])) {
      if (this.#open) {
        this.#unfold(bytes, start, end, offset);
        return false;
      }
      if (!this.#trailer) {
        // RFC 9112 section 2.2: such a line is either rejected or consumed
        // unread; silently dropping header bytes hides attacks, so reject.
        fail(
          "whitespace-after-start-line",
          `whitespace-preceded line after the status line ${
            quote(bytes, start, end)
          }`,
          offset,
        );
      }
      fail(
        "obs-fold",
        `whitespace-preceded first trailer line ${quote(bytes, start, end)}`,
        offset,
      );
    }
    let i = start;
    while (i < end && TCHAR[bytes[i]!] === 1) i++;
    if (i === end) this.#noColon(bytes, start, end, offset);
    const b = bytes[i]!;
    if (b !== COLON) this.#badName(bytes, start, i, end, offset);
    if (i === start) {
      fail(
        "invalid-header-name",
        `empty header name ${quote(bytes, start, end)}`,
        offset,
      );
    }
    // field-value with its surrounding OWS dropped.
    const v = skipWs(bytes, i + 1, end);
    const vEnd = trimWsEnd(bytes, v, end);
    const closed = this.close();
    // The name (checked above) and the value are copied in one pass that checks
    // the value as it goes: each byte is read once. A bad value throws before
    // the count is checked, as when it was checked first.
    this.#reserve(i + 1 - start + vEnd - v);
    const buf = this.#buf;
    let at = this.#len;
    this.#openName = at;
    for (let k = start; k <= i; k++) buf[at++] = bytes[k]!; // with its colon
    this.#openValue = at;
    for (let k = v; k < vEnd; k++) {
      const c = bytes[k]!;
      // Not field-vchar, SP or HTAB: a control character (obs-text is allowed).
      if ((c < SP && c !== HTAB) || c === DEL) {
        this.#checkValue(bytes, start, k, k + 1, end, offset, "header value");
      }
      buf[at++] = c;
    }
    this.#len = at;
    if (++this.#count > this.#maxFields) {
      fail(
        "too-many-headers",
        `more than ${this.#maxFields} ${
          this.#trailer ? "trailer" : "header"
        } fields`,
        offset,
      );
    }
    this.#openOffset = offset + v - start;
    this.#open = true;
    return closed;
  }

  /** Whether a field is open: the next field line closes it. */
  get open(): boolean {
    return this.#open;
  }

  /**
   * The common case of {@linkcode FieldSection.line} read straight from the
   * received bytes: a field line that starts at `data[pos]` and ends, LF and
   * all, before `data[stop]`, with a valid name, a value without control
   * characters, and no obs-fold after the open field. One pass checks each
   * byte and copies it; the line assembler's search for the LF and the second
   * pass over the line are what this saves (about half of a head's parse).
   *
   * Anything else (a line not complete before `stop`, an empty or folded
   * line, a byte the grammar rejects, the field limit reached) returns -1
   * having changed nothing: the caller reads the line the general way, which
   * accepts or rejects it, and words the error, exactly as before.
   *
   * @param base The stream offset of `data[0]`, for the field's error offsets.
   * @returns The index after the line's LF, or -1.
   */
  lineAt(data: Uint8Array, pos: number, stop: number, base: number): number {
    if (
      pos >= stop || this.#count >= this.#maxFields || TCHAR[data[pos]!] !== 1
    ) return -1;
    const buf = this.#buf;
    // The open field's LF goes in front once the line is known to be whole.
    const name = this.#len + (this.#open ? 1 : 0);
    // Each byte read is copied at most once, so the bytes before `lim` fit.
    const lim = Math.min(stop, pos + buf.length - name);
    let i = pos;
    let at = name;
    let c = 0;
    while (i < lim && TCHAR[c = data[i]!] === 1) {
      buf[at++] = c;
      i++;
    }
    if (i >= lim) return this.#lineAtGrown(data, pos, stop, base, lim);
    if (c !== COLON) return -1;
    buf[at++] = COLON;
    i++;
    while (i < lim && ((c = data[i]!) === SP || c === HTAB)) i++;
    const value = at;
    const valueOffset = base + i;
    // Up to the first control character (HTAB aside), as line() checks them.
    while (i < lim && (((c = data[i]!) >= SP && c !== DEL) || c === HTAB)) {
      buf[at++] = c;
      i++;
    }
    if (i >= lim) return this.#lineAtGrown(data, pos, stop, base, lim);
    let next: number;
    if (c === LF) next = i + 1;
    else if (c === CR && i + 1 < stop && data[i + 1] === LF) next = i + 2;
    else return -1;
    while (at > value && isWs(buf[at - 1])) at--;
    this.close();
    this.#openName = name;
    this.#openValue = value;
    this.#openOffset = valueOffset;
    this.#open = true;
    this.#len = at;
    this.#count++;
    return next;
  }

  /**
   * {@linkcode FieldSection.lineAt} stopped at `lim`: the end of the bytes (-1,
   * the line is not whole), or of the buffer's room, which then doubles before
   * the line is read again. The buffer grows as `line()` grows it, when full.
   */
  #lineAtGrown(
    data: Uint8Array,
    pos: number,
    stop: number,
    base: number,
    lim: number,
  ): number {
    if (lim >= stop) return -1;
    this.#reserve(this.#buf.length - this.#len + 1);
    return this.lineAt(data, pos, stop, base);
  }

  /**
   * Appends an obs-fold continuation line to the open field's value. RFC 9112
   * section 5.2: a user agent replaces each obs-fold (`OWS CRLF RWS`) with SP
   * before interpreting the value; the field's trailing OWS is dropped as usual.
   * The open field is the last one in `#buf`, so its value just grows.
   */
  #unfold(bytes: Uint8Array, start: number, end: number, offset: number): void {
    const v = skipWs(bytes, start, end);
    const vEnd = trimWsEnd(bytes, v, end);
    this.#checkValue(
      bytes,
      start,
      start,
      end,
      end,
      offset,
      "folded header value",
    );
    if (v === vEnd) return;
    if (this.#len === this.#openValue) {
      this.#openOffset = offset + v - start;
    } else {
      this.#reserve(1);
      this.#buf[this.#len++] = SP;
    }
    this.#copy(bytes, v, vEnd);
  }

  /** Fails on the first byte of `bytes[from:to]` not allowed in a value. */
  #checkValue(
    bytes: Uint8Array,
    start: number,
    from: number,
    to: number,
    end: number,
    offset: number,
    what: string,
  ): void {
    for (let k = from; k < to; k++) {
      const c = bytes[k]!;
      if (!isFieldVchar(c) && !isWs(c)) {
        unexpected(
          c,
          "invalid-header-value",
          `control character in ${what} ${quote(bytes, start, end)}`,
          offset + k - start,
          `header line ${quote(bytes, start, end)}`,
        );
      }
    }
  }

  #noColon(
    bytes: Uint8Array,
    start: number,
    end: number,
    offset: number,
  ): never {
    return fail(
      "header-no-colon",
      `header line without a colon ${quote(bytes, start, end)}`,
      offset,
    );
  }

  /** Fails on `bytes[i]`, the first byte of the line that is not a `tchar`. */
  #badName(
    bytes: Uint8Array,
    start: number,
    i: number,
    end: number,
    offset: number,
  ): never {
    const b = bytes[i]!;
    if (b === 0 || b === CR) {
      unexpected(
        b,
        "invalid-header-name", // never used: b is NUL or CR
        "",
        offset + i - start,
        `header line ${quote(bytes, start, end)}`,
      );
    }
    if (isWs(b) && bytes[skipWs(bytes, i, end)] === COLON) {
      fail(
        "header-whitespace-before-colon",
        `whitespace between header name and colon ${quote(bytes, start, end)}`,
        offset + i - start,
      );
    }
    let colon = i;
    while (colon < end && bytes[colon] !== COLON) colon++;
    if (colon === end) this.#noColon(bytes, start, end, offset);
    return fail(
      "invalid-header-name",
      `invalid header name ${quote(bytes, start, colon)}`,
      offset + i - start,
    );
  }

  #copy(bytes: Uint8Array, from: number, to: number): void {
    this.#reserve(to - from);
    const buf = this.#buf;
    let at = this.#len;
    // Field bytes are few: a loop beats the view `set()` would need.
    for (let k = from; k < to; k++) buf[at++] = bytes[k]!;
    this.#len = at;
  }

  /** Makes room for `n` more bytes in `#buf`. */
  #reserve(n: number): void {
    const need = this.#len + n;
    if (need <= this.#buf.length) return;
    // Internal bytes (headers reach a caller as strings): cut from a slab, as
    // a buffer of its own per response costs more than parsing it; from small
    // slabs of their own, as a kept response keeps its slab.
    const grown = fieldArena.allocate(
      Math.max(need, this.#buf.length * 2, 512),
    );
    grown.set(this.#buf);
    this.#buf = grown;
  }

  /**
   * A new `Headers` with every field (all closed), values decoded as latin1, in
   * order.
   */
  toHeaders(): Headers {
    return toHeaders(this.#buf, this.#len);
  }

  /**
   * What `toHeaders().get(name)` would return, read from the bytes without
   * building anything when no field has that name: the values of the closed
   * fields named `name` (ASCII case-insensitively), joined with ", ", or `null`.
   */
  get(name: string): string | null {
    return fieldValue(this.#buf, this.#len, name);
  }
}

/** {@linkcode FieldSection.toHeaders} of a section's bytes, `buf[0:len]`. */
export function toHeaders(buf: Uint8Array, len: number): Headers {
  const headers = new Headers();
  // One decode for the section; names and values are slices of it.
  const text = latin1(buf, 0, len);
  for (let i = 0; i < text.length;) {
    const colon = text.indexOf(":", i);
    const lf = text.indexOf("\n", colon);
    headers.append(text.slice(i, colon), text.slice(colon + 1, lf));
    i = lf + 1;
  }
  return headers;
}

/**
 * {@linkcode FieldSection.get} of a section's bytes, `buf[0:len]`; with
 * `first`, the value of the first field named `name` that is not empty.
 */
export function fieldValue(
  buf: Uint8Array,
  len: number,
  name: string,
  first = false,
): string | null {
  let value: string | null = null;
  for (let i = 0; i < len;) {
    let colon = i;
    while (colon < len && buf[colon] !== COLON) colon++;
    let lf = colon;
    while (lf < len && buf[lf] !== LF) lf++;
    if (sameName(buf, i, colon, name)) {
      const v = latin1(buf, colon + 1, lf);
      if (!first) value = value === null ? v : `${value}, ${v}`;
      // The first with a value: an empty Location ahead of the real one
      // (a misconfigured proxy adds it) would lead back to the same URL.
      else if (v !== "") return v;
    }
    i = lf + 1;
  }
  return value;
}

/** Whether `buf[start:end]` and `name` are equal ignoring ASCII case. */
function sameName(
  buf: Uint8Array,
  start: number,
  end: number,
  name: string,
): boolean {
  if (end - start !== name.length) return false;
  for (let k = 0; k < name.length; k++) {
    let a = buf[start + k]!;
    let b = name.charCodeAt(k);
    if (a >= 65 && a <= 90) a += 32;
    if (b >= 65 && b <= 90) b += 32;
    if (a !== b) return false;
  }
  return true;
}
