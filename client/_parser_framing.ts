/**
 * The header fields that decide how a response's body is framed and whether its
 * connection may be reused (`Content-Length`, `Transfer-Encoding`, `Connection`;
 * RFC 9112 sections 6 and 9.3), read from the field bytes without decoding them.
 *
 * @module
 */

import {
  ascii,
  COMMA,
  equalsLower,
  fail,
  latin1,
  parseError,
  quoteText,
  skipWs,
  trimWsEnd,
} from "./_parser_bytes.ts";
import type { FieldSection } from "./_parser_fields.ts";
import type { Framing } from "./_parser_readers.ts";
import type { HttpParseError } from "./http_parse_error.ts";

const CONTENT_LENGTH = ascii("content-length");
const TRANSFER_ENCODING = ascii("transfer-encoding");
const CONNECTION = ascii("connection");
const CONTENT_ENCODING = ascii("content-encoding");
const CHUNKED = ascii("chunked");
const CLOSE = ascii("close");
const KEEP_ALIVE = ascii("keep-alive");
const TIMEOUT_EQ = ascii("timeout=");
const QUOTE = 0x22;
const SEMICOLON = 0x3b;

/**
 * Collects the framing fields of one head as its fields close, then decides the
 * body's framing once the head is complete.
 */
export class FramingFields {
  readonly #fields: FieldSection;
  readonly #maxBodyBytes: number;

  /** The agreed `Content-Length` value; -1 if none (Infinity: past the limit). */
  #contentLength = -1;
  /** The first problem with `Content-Length`, raised only if it frames the body. */
  #contentLengthError: HttpParseError | null = null;
  /** How many `Transfer-Encoding` fields. */
  #teFields = 0;
  #teOffset = 0;
  /** Non-empty transfer codings over every `Transfer-Encoding` field. */
  #codings = 0;
  #chunked = 0;
  #lastChunked = false;
  #close = false;
  #keepAlive = false;

  /** The framing {@linkcode FramingFields.decide} chose. */
  framing: Framing = "none";
  /** The body length, for `"content-length"` framing. */
  length = -1;
  /** Whether the connection may carry another response after this one. */
  reusable = false;
  /**
   * Whether the head has a `Content-Encoding` field: a response without one
   * (most) needs no lookup of it by name.
   */
  contentEncoded = false;
  /**
   * The idle timeout a `Keep-Alive` field's `timeout=` parameter announces
   * (seconds; RFC 2068 section 19.7.1.1, as Apache and Node send it), `-1`
   * without one: the server closes the conn once idle that long.
   */
  keepAliveTimeout = -1;

  constructor(fields: FieldSection, maxBodyBytes: number) {
    this.#fields = fields;
    this.#maxBodyBytes = maxBodyBytes;
  }

  /** Forgets an interim response's fields. */
  reset(): void {
    this.#contentLength = -1;
    this.#contentLengthError = null;
    this.#teFields = 0;
    this.#codings = 0;
    this.#chunked = 0;
    this.#lastChunked = false;
    this.#close = false;
    this.#keepAlive = false;
    this.contentEncoded = false;
    this.keepAliveTimeout = -1;
  }

  /** Notes the field the section closed last, now complete (obs-folds included). */
  field(): void {
    const fields = this.#fields;
    const buf = fields.buf;
    const name = fields.closedName;
    const start = fields.closedValue;
    const end = fields.closedEnd;
    // Dispatch on the name's length (with its colon): most fields are none of these.
    switch (start - name - 1) {
      case 14:
        if (equalsLower(buf, name, start - 1, CONTENT_LENGTH)) {
          this.#contentLengthField(buf, start, end);
        }
        break;
      case 17:
        if (equalsLower(buf, name, start - 1, TRANSFER_ENCODING)) {
          this.#teFields++;
          this.#teOffset = fields.closedOffset;
          for (let s = start; s <= end;) {
            s = element(buf, s, end);
            const a = elementStart;
            const b = elementEnd;
            if (a === b) continue;
            const chunked = equalsLower(buf, a, b, CHUNKED);
            this.#codings++;
            if (chunked) this.#chunked++;
            this.#lastChunked = chunked;
          }
        }
        break;
      case 16:
        if (equalsLower(buf, name, start - 1, CONTENT_ENCODING)) {
          this.contentEncoded = true;
        }
        break;
      case 10:
        if (equalsLower(buf, name, start - 1, CONNECTION)) {
          for (let s = start; s <= end;) {
            s = element(buf, s, end);
            const a = elementStart;
            const b = elementEnd;
            if (equalsLower(buf, a, b, CLOSE)) this.#close = true;
            else if (equalsLower(buf, a, b, KEEP_ALIVE)) this.#keepAlive = true;
          }
        } else if (equalsLower(buf, name, start - 1, KEEP_ALIVE)) {
          this.#keepAliveField(buf, start, end);
        }
        break;
    }
  }

  /**
   * Reads `timeout=N` among a `Keep-Alive` field's parameters (`timeout=5,
   * max=100`, or a `;` list as some servers write it, `timeout=5; max=100` or
   * `max=100; timeout=5`, as undici reads them); the smallest wins when it
   * comes more than once. Anything else in it is ignored.
   */
  #keepAliveField(buf: Uint8Array, start: number, end: number): void {
    for (let s = start; s <= end;) {
      s = element(buf, s, end);
      const last = elementEnd;
      for (let p = elementStart; p < last;) {
        let semicolon = p;
        while (semicolon < last && buf[semicolon] !== SEMICOLON) semicolon++;
        const a = skipWs(buf, p, semicolon);
        this.#keepAliveParam(buf, a, trimWsEnd(buf, a, semicolon));
        p = semicolon + 1;
      }
    }
  }

  /** One `Keep-Alive` parameter, in `buf[a:b]`: `timeout=N` or ignored. */
  #keepAliveParam(buf: Uint8Array, a: number, b: number): void {
    if (b - a < 9 || !equalsLower(buf, a, a + 8, TIMEOUT_EQ)) return;
    let k = a + 8;
    let stop = b;
    if (buf[k] === QUOTE) {
      // A quoted-string value: `timeout="5"`.
      if (stop - k < 3 || buf[stop - 1] !== QUOTE) return;
      k++;
      stop--;
    }
    const first = k;
    let n = 0;
    for (; k < stop; k++) {
      const d = buf[k]! - 48;
      if (d < 0 || d > 9) break;
      n = n * 10 + d;
    }
    if (k === first || k !== stop) return;
    if (this.keepAliveTimeout < 0 || n < this.keepAliveTimeout) {
      this.keepAliveTimeout = n;
    }
  }

  /**
   * Records the `Content-Length` value, or the first problem with it; the error
   * is raised at the end of the head, and only if `Transfer-Encoding` does not
   * override the field. A list ("5, 5") is what a recipient sees of repeated
   * fields (RFC 9110 section 8.6).
   */
  #contentLengthField(buf: Uint8Array, start: number, end: number): void {
    if (this.#contentLengthError) return;
    const offset = this.#fields.closedOffset;
    for (let s = start; s <= end;) {
      s = element(buf, s, end);
      const a = elementStart;
      const b = elementEnd;
      let n = a === b ? NaN : 0;
      for (let k = a; k < b; k++) {
        const d = buf[k]! - 48;
        if (d < 0 || d > 9) {
          n = NaN;
          break;
        }
        // Exact up to 2^53 - 1; beyond, it only grows, which is all we need.
        n = n * 10 + d;
      }
      if (n > Number.MAX_SAFE_INTEGER && this.#maxBodyBytes !== Infinity) {
        // Valid, only too large: the body limit fails it once the head is read.
        n = Infinity;
      } else if (!(n <= Number.MAX_SAFE_INTEGER)) {
        this.#contentLengthError = parseError(
          "invalid-content-length",
          `invalid Content-Length ${JSON.stringify(latin1(buf, start, end))}`,
          offset,
        );
        return;
      }
      if (this.#contentLength !== -1 && this.#contentLength !== n) {
        this.#contentLengthError = parseError(
          "conflicting-content-length",
          `conflicting Content-Length values ${this.#contentLength} and ${n}`,
          offset,
        );
        return;
      }
      this.#contentLength = n;
    }
  }

  /**
   * Chooses the framing of a final response's body (RFC 9112 section 6.3), and
   * whether its connection may be reused.
   *
   * @param next Stream offset just after the head, for errors.
   * @throws {HttpParseError} If the framing fields are invalid, unsupported or
   *   announce a body past `maxBodyBytes`.
   */
  decide(
    method: string,
    status: number,
    version: "1.0" | "1.1",
    next: number,
  ): void {
    const te = this.#teFields > 0;
    const length = this.#contentLength;
    this.reusable = !this.#close && (version === "1.1" || this.#keepAlive) &&
      // RFC 9112 sections 6.1 and 6.3: both framings, or Transfer-Encoding in
      // HTTP/1.0, mean the framing is suspect; finish this response only.
      !(te && (length !== -1 || this.#contentLengthError !== null ||
        version === "1.0"));
    this.length = -1;
    // RFC 9112 section 6.3: a 2xx to CONNECT turns the conn into a tunnel right
    // after the head, whatever Content-Length or Transfer-Encoding say.
    if (
      method === "HEAD" || status === 204 || status === 304 ||
      (method === "CONNECT" && status >= 200 && status < 300)
    ) {
      // Its Content-Length frames nothing, but one that does not parse (or
      // two that disagree) says the server's framing is not to be trusted
      // for the next response either (h11 and llhttp reject the response).
      if (this.#contentLengthError !== null) this.reusable = false;
      this.framing = "none";
      return;
    }
    if (te) {
      this.#checkTransferEncoding();
      this.framing = "chunked";
      return;
    }
    if (this.#contentLengthError) throw this.#contentLengthError;
    if (length === -1) {
      this.reusable = false;
      this.framing = "until-close";
      return;
    }
    if (length > this.#maxBodyBytes) {
      fail(
        "body-too-large",
        `Content-Length ${
          length === Infinity ? "above 2^53 - 1" : length
        } over the ${this.#maxBodyBytes} byte limit`,
        next,
      );
    }
    this.length = length;
    this.framing = length === 0 ? "none" : "content-length";
  }

  /** Only `chunked` alone is supported as a response's transfer coding. */
  #checkTransferEncoding(): void {
    const chunked = this.#chunked;
    if (
      this.#codings === 0 || chunked > 1 ||
      (chunked === 1 && !this.#lastChunked)
    ) {
      fail(
        "invalid-transfer-encoding",
        `invalid Transfer-Encoding ${this.#transferEncoding()}`,
        this.#teOffset,
      );
    }
    if (this.#codings !== 1 || chunked !== 1) {
      fail(
        "unsupported-transfer-encoding",
        `unsupported Transfer-Encoding ${this.#transferEncoding()}`,
        this.#teOffset,
      );
    }
  }

  /** Every `Transfer-Encoding` value as one list, quoted, for messages. */
  #transferEncoding(): string {
    return quoteText(this.#fields.get("transfer-encoding") ?? "");
  }
}

// Where element() found its element: module state rather than a returned
// tuple, so that reading a list allocates nothing.
let elementStart = 0;
let elementEnd = 0;

/**
 * Finds the list element (RFC 9110 section 5.6.1) starting at `s` in `buf[:end]`:
 * its bounds without OWS go to `elementStart` and `elementEnd`.
 *
 * @returns Where the next element starts (past `end` after the last).
 */
function element(buf: Uint8Array, s: number, end: number): number {
  let comma = s;
  while (comma < end && buf[comma] !== COMMA) comma++;
  elementStart = skipWs(buf, s, comma);
  elementEnd = trimWsEnd(buf, elementStart, comma);
  return comma + 1;
}
