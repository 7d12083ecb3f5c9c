/**
 * The response parser's body readers, one per framing (RFC 9112 section 6.3), as
 * in h11's `_readers.py`: each owns its counters and its end-of-stream rule, and
 * the parser picks one from {@linkcode READERS} once the head is read.
 *
 * @module
 */

import {
  BACKSLASH,
  CR,
  DQUOTE,
  EQUALS,
  fail,
  HEX,
  isFieldVchar,
  isWs,
  LF,
  quote,
  SEMICOLON,
  skipToken,
  skipWs,
  unexpected,
} from "./_parser_bytes.ts";
import { FieldSection } from "./_parser_fields.ts";
import { type LineAssembler, MORE, TOO_LONG } from "./_parser_lines.ts";

/** How a response's body is delimited. */
export type Framing = "none" | "content-length" | "chunked" | "until-close";

/** The parser's limits a reader enforces. */
export interface ReaderLimits {
  maxBodyBytes: number;
  maxHeadBytes: number;
  maxHeaders: number;
}

/** Reads one body from the bytes that follow the head. */
export interface BodyReader {
  /** Whether the body (and its trailers) is complete. */
  readonly done: boolean;
  /**
   * `Content-Length` bodies only: the bytes still expected (at least 1 until
   * done); -1 for other readers.
   */
  readonly remaining: number;
  /** The trailer fields of a finished chunked body; else `null`. */
  readonly trailers: FieldSection | null;
  /**
   * Reads from `data[pos:]` until the body ends or the bytes run out, adding body
   * bytes to `body` as views of `data`.
   *
   * @param base Stream offset of `data[0]`, for errors.
   * @returns The index in `data` after the last byte used.
   */
  read(data: Uint8Array, pos: number, base: number, body: Uint8Array[]): number;
  /**
   * `Content-Length` bodies only: accounts for `n` body bytes read around the
   * parser, at most `remaining`.
   */
  skip?(n: number): void;
  /** The peer closed at stream offset `at`: ends the body or throws. */
  eof(at: number): void;
}

/** A chunk-size line is tiny unless a server abuses chunk extensions. */
export const MAX_CHUNK_HEADER_BYTES = 8192;

/** Appends `data[pos:pos+n]` to `body`, as `data` itself when that is all of it. */
function push(body: Uint8Array[], data: Uint8Array, pos: number, n: number) {
  body.push(n === data.length ? data : data.subarray(pos, pos + n));
}

/** A body of exactly `length` bytes; closing before them is an error. */
class ContentLengthReader implements BodyReader {
  readonly #length: number;
  #remaining: number;

  constructor(length: number) {
    this.#length = length;
    this.#remaining = length;
  }

  get done(): boolean {
    return this.#remaining === 0;
  }

  get remaining(): number {
    return this.#remaining;
  }

  get trailers(): null {
    return null;
  }

  read(data: Uint8Array, pos: number, _base: number, body: Uint8Array[]) {
    const n = Math.min(this.#remaining, data.length - pos);
    push(body, data, pos, n);
    this.#remaining -= n;
    return pos + n;
  }

  skip(n: number): void {
    this.#remaining -= n;
  }

  eof(at: number): never {
    return fail(
      "truncated-body",
      `connection closed after ${
        this.#length - this.#remaining
      } of ${this.#length} body bytes`,
      at,
    );
  }
}

/** A body that runs until the peer closes (RFC 9112 section 6.3, rule 8). */
class UntilCloseReader implements BodyReader {
  readonly #max: number;
  #bytes = 0;
  #done = false;

  constructor(maxBodyBytes: number) {
    this.#max = maxBodyBytes;
  }

  get done(): boolean {
    return this.#done;
  }

  get remaining(): number {
    return -1;
  }

  get trailers(): null {
    return null;
  }

  read(data: Uint8Array, pos: number, base: number, body: Uint8Array[]) {
    const n = data.length - pos;
    if (this.#bytes + n > this.#max) {
      fail(
        "body-too-large",
        `body larger than the ${this.#max} byte limit`,
        base + pos + this.#max - this.#bytes,
      );
    }
    this.#bytes += n;
    push(body, data, pos, n);
    return data.length;
  }

  eof(): void {
    this.#done = true;
  }
}

/**
 * A bodiless response (`HEAD`, `204`, `304`, `Content-Length: 0`): done at once,
 * so nothing ever changes it and one instance serves every response.
 */
const NO_BODY = new ContentLengthReader(0);

// The chunked reader's states.
const SIZE = 0;
const DATA = 1;
const DATA_CR = 2;
const DATA_LF = 3;
const TRAILERS = 4;
const DONE = 5;

/**
 * A chunked body (RFC 9112 section 7.1): chunk-size lines with their extension
 * grammar, chunk data and its CRLF, the last chunk and the trailer section.
 */
class ChunkedReader implements BodyReader {
  readonly #limits: ReaderLimits;
  readonly #lines: LineAssembler;
  #state = SIZE;
  /** Bytes left in the current chunk. */
  #remaining = 0;
  /** Body bytes so far, against `maxBodyBytes`. */
  #bytes = 0;
  #trailers: FieldSection | null = null;
  #trailerLimit = 0;

  constructor(limits: ReaderLimits, lines: LineAssembler) {
    this.#limits = limits;
    this.#lines = lines;
  }

  get done(): boolean {
    return this.#state === DONE;
  }

  get remaining(): number {
    return -1;
  }

  get trailers(): FieldSection | null {
    return this.#trailers;
  }

  read(data: Uint8Array, pos: number, base: number, body: Uint8Array[]) {
    const end = data.length;
    while (pos < end) {
      switch (this.#state) {
        case SIZE: {
          const lines = this.#lines;
          const limit = lines.pendingLength === 0
            ? base + pos + MAX_CHUNK_HEADER_BYTES
            : lines.offset + MAX_CHUNK_HEADER_BYTES;
          const next = lines.take(data, pos, base, limit);
          if (next === MORE) return end;
          if (next === TOO_LONG) {
            fail(
              "chunk-header-too-large",
              `chunk-size line longer than ${MAX_CHUNK_HEADER_BYTES} bytes`,
              limit,
            );
          }
          pos = next;
          this.#sizeLine(base + pos);
          break;
        }
        case DATA: {
          const n = Math.min(this.#remaining, end - pos);
          push(body, data, pos, n);
          pos += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = DATA_CR;
          break;
        }
        case DATA_CR:
        case DATA_LF: {
          // Byte by byte rather than as a line: chunk data running past its
          // size must fail here, not be searched for the next LF.
          const b = data[pos]!;
          if (b === LF) this.#state = SIZE;
          else if (b === CR && this.#state === DATA_CR) this.#state = DATA_LF;
          else {
            fail(
              "invalid-chunk-terminator",
              `expected CRLF after chunk data, received ${
                quote(data, pos, pos + 1)
              }`,
              base + pos,
            );
          }
          pos++;
          break;
        }
        case TRAILERS: {
          const next = this.#lines.take(data, pos, base, this.#trailerLimit);
          if (next === MORE) return end;
          if (next === TOO_LONG) {
            fail(
              "trailers-too-large",
              `trailer section larger than ${this.#limits.maxHeadBytes} bytes`,
              this.#trailerLimit,
            );
          }
          pos = next;
          this.#trailerLine();
          break;
        }
        default: // DONE
          return pos;
      }
    }
    return pos;
  }

  eof(at: number): never {
    return fail(
      "truncated-body",
      "connection closed before the end of the chunked body",
      at,
    );
  }

  /**
   * Parses `chunk-size [ chunk-ext ]` (RFC 9112 section 7.1); extensions are
   * checked and dropped. `next` is the stream offset just after the line's LF.
   */
  #sizeLine(next: number): void {
    const { bytes, start, end, offset } = this.#lines;
    let size = 0;
    let i = start;
    for (; i < end; i++) {
      const d = HEX[bytes[i]!]!;
      if (d < 0) break;
      size = size * 16 + d;
      if (size > Number.MAX_SAFE_INTEGER) {
        fail(
          "invalid-chunk-size",
          `chunk size ${quote(bytes, start, end)} above 2^53 - 1`,
          offset,
        );
      }
    }
    // RFC 9112 section 7.1: whitespace (BWS) may only come before an extension's
    // ";". Trailing whitespace is refused, as llhttp does: parsers that disagree
    // on where a chunk starts are how request smuggling works.
    const j = skipWs(bytes, i, end);
    if (i === start || (j < end ? bytes[j] !== SEMICOLON : j !== i)) {
      unexpected(
        i < end ? bytes[i]! : -1,
        "invalid-chunk-size",
        `invalid chunk size ${quote(bytes, start, end)}`,
        offset + i - start,
        `chunk-size line ${quote(bytes, start, end)}`,
      );
    }
    if (j < end) this.#extensions(j);
    if (size === 0) {
      this.#trailerLimit = next + this.#limits.maxHeadBytes;
      this.#trailers = new FieldSection(this.#limits.maxHeaders, true);
      this.#state = TRAILERS;
      return;
    }
    const max = this.#limits.maxBodyBytes;
    if (this.#bytes + size > max) {
      fail(
        "body-too-large",
        `chunk of ${size} bytes takes the body over the ${max} byte limit`,
        offset,
      );
    }
    this.#bytes += size;
    this.#remaining = size;
    this.#state = DATA;
  }

  /**
   * Checks the line from `i`, which is ";", against
   * `*( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )`: no
   * whitespace at the end of the line.
   */
  #extensions(i: number): void {
    const { bytes, end } = this.#lines;
    while (i < end) {
      // bytes[i] is ";" here.
      i = skipWs(bytes, i + 1, end);
      const name = skipToken(bytes, i, end);
      if (name === i) this.#badExtension(i);
      i = this.#bws(name);
      if (i < end && bytes[i] === EQUALS) {
        i = skipWs(bytes, i + 1, end);
        if (i < end && bytes[i] === DQUOTE) {
          i = this.#quotedString(i + 1);
        } else {
          const value = skipToken(bytes, i, end);
          if (value === i) this.#badExtension(i);
          i = value;
        }
        i = this.#bws(i);
      }
      if (i < end && bytes[i] !== SEMICOLON) this.#badExtension(i);
    }
  }

  /** Skips BWS at `i`, which must be followed by something: "=" or ";". */
  #bws(i: number): number {
    const { bytes, end } = this.#lines;
    const j = skipWs(bytes, i, end);
    if (j === end && j !== i) this.#badExtension(i);
    return j;
  }

  /** Returns the index after the closing quote of a quoted-string body at `i`. */
  #quotedString(i: number): number {
    const { bytes, end } = this.#lines;
    for (; i < end; i++) {
      const b = bytes[i]!;
      if (b === DQUOTE) return i + 1;
      if (b === BACKSLASH) {
        i++;
        const q = i < end ? bytes[i]! : -1;
        if (!isFieldVchar(q) && !isWs(q)) this.#badExtension(i);
      } else if (!isFieldVchar(b) && !isWs(b)) {
        this.#badExtension(i);
      }
    }
    return this.#badExtension(end);
  }

  #badExtension(i: number): never {
    const { bytes, start, end, offset } = this.#lines;
    return unexpected(
      i < end ? bytes[i]! : -1,
      "invalid-chunk-extension",
      `invalid chunk extension ${quote(bytes, start, end)}`,
      offset + i - start,
      `chunk-size line ${quote(bytes, start, end)}`,
    );
  }

  #trailerLine(): void {
    const { bytes, start, end, offset } = this.#lines;
    const trailers = this.#trailers!;
    if (end === start) {
      trailers.close();
      this.#state = DONE;
      return;
    }
    trailers.line(bytes, start, end, offset);
  }
}

/**
 * The reader for each framing (h11's `READERS` table), given the length a
 * `Content-Length` announced (else -1), the limits, and the parser's line
 * assembler, which is idle once the head is read.
 */
export const READERS: Record<
  Framing,
  (length: number, limits: ReaderLimits, lines: LineAssembler) => BodyReader
> = {
  "none": () => NO_BODY,
  "content-length": (length) => new ContentLengthReader(length),
  "chunked": (_, limits, lines) => new ChunkedReader(limits, lines),
  "until-close": (_, limits) => new UntilCloseReader(limits.maxBodyBytes),
};
