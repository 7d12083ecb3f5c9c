/**
 * A field section of a response (its header fields, or a chunked body's trailer
 * fields): the field-line grammar (RFC 9112 section 5), obs-fold unfolding, the
 * field count limit, and storage that builds a `Headers` only when asked.
 *
 * @module
 */

import {
  COLON,
  EMPTY,
  fail,
  isFieldVchar,
  isWs,
  latin1,
  quote,
  skipWs,
  SP,
  TCHAR,
  trimWsEnd,
  unexpected,
} from "./_parser_bytes.ts";

/** Numbers per field in `#spans`. */
const SPAN = 4;

/**
 * The fields of one section, validated as they arrive. Names and values are kept
 * as bytes (copied out of the caller's arrays, which it reuses) and decoded only
 * by {@linkcode FieldSection.toHeaders}: a response whose headers nobody reads
 * never pays for strings or a `Headers`.
 */
export class FieldSection {
  readonly #maxFields: number;
  readonly #trailer: boolean;

  /** Each field's name then value bytes, back to back, fields in order. */
  #buf: Uint8Array = EMPTY;
  #len = 0;
  /**
   * Per field, 3 indexes into `#buf` (name start, value start, value end) and the
   * stream offset of the value's first byte.
   */
  #spans: number[] = [];
  #count = 0;
  /** Whether the last field may still be continued by an obs-fold line. */
  #open = false;

  /**
   * @param maxFields Limit on the number of fields.
   * @param trailer Whether this is a trailer section (for messages and codes).
   */
  constructor(maxFields: number, trailer: boolean) {
    this.#maxFields = maxFields;
    this.#trailer = trailer;
  }

  /** How many fields so far. */
  get count(): number {
    return this.#count;
  }

  /** The bytes the spans index into. */
  get buf(): Uint8Array {
    return this.#buf;
  }

  nameStart(i: number): number {
    return this.#spans[i * SPAN]!;
  }

  valueStart(i: number): number {
    return this.#spans[i * SPAN + 1]!;
  }

  valueEnd(i: number): number {
    return this.#spans[i * SPAN + 2]!;
  }

  /** Stream offset of the first byte of field `i`'s value, for errors. */
  valueOffset(i: number): number {
    return this.#spans[i * SPAN + 3]!;
  }

  /** Forgets every field (an interim response's), keeping the buffer. */
  reset(): void {
    this.#len = 0;
    this.#spans.length = 0;
    this.#count = 0;
    this.#open = false;
  }

  /**
   * Closes the last field: no obs-fold may continue it any more.
   *
   * @returns Its index, or -1 if no field was open.
   */
  close(): number {
    if (!this.#open) return -1;
    this.#open = false;
    return this.#count - 1;
  }

  /**
   * Reads the non-empty line `bytes[start:end]`, at stream offset `offset`: the
   * continuation of the open field, or a new field, which closes the open one.
   *
   * @returns The index of the field this line closed, or -1.
   */
  line(bytes: Uint8Array, start: number, end: number, offset: number): number {
    if (isWs(bytes[start])) {
      if (this.#open) {
        this.#unfold(bytes, start, end, offset);
        return -1;
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
    this.#checkValue(bytes, start, v, vEnd, end, offset, "header value");
    const closed = this.close();
    if (++this.#count > this.#maxFields) {
      fail(
        "too-many-headers",
        `more than ${this.#maxFields} ${
          this.#trailer ? "trailer" : "header"
        } fields`,
        offset,
      );
    }
    const name = this.#len;
    this.#copy(bytes, start, i);
    const value = this.#len;
    this.#copy(bytes, v, vEnd);
    this.#spans.push(name, value, this.#len, offset + v - start);
    this.#open = true;
    return closed;
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
    const at = this.#spans.length - SPAN;
    if (this.#len === this.#spans[at + 1]) {
      this.#spans[at + 3] = offset + v - start;
    } else {
      this.#reserve(1);
      this.#buf[this.#len++] = SP;
    }
    this.#copy(bytes, v, vEnd);
    this.#spans[at + 2] = this.#len;
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
    if (b === 0 || b === 13) {
      unexpected(
        b,
        "",
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
    const grown = new Uint8Array(Math.max(need, this.#buf.length * 2, 512));
    grown.set(this.#buf);
    this.#buf = grown;
  }

  /** A new `Headers` with every field, values decoded as latin1, in order. */
  toHeaders(): Headers {
    const headers = new Headers();
    const buf = this.#buf;
    const spans = this.#spans;
    for (let s = 0; s < spans.length; s += SPAN) {
      headers.append(
        latin1(buf, spans[s]!, spans[s + 1]!),
        latin1(buf, spans[s + 1]!, spans[s + 2]!),
      );
    }
    return headers;
  }
}
