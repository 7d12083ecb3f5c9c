/**
 * A sans-IO, incremental HTTP/1.1 response parser (RFC 9112), in the manner of
 * h11 and llhttp: bytes go in through {@linkcode ResponseParser.receive}, the head,
 * body chunks and trailers come out. It never touches a connection.
 *
 * @module
 */

import { HttpParseError } from "./http_parse_error.ts";

/** Options for {@linkcode ResponseParser}. */
export interface ResponseParserOptions {
  /**
   * The request method, exactly as sent. `"HEAD"` means the response has no body
   * whatever its framing headers say.
   *
   * @default {"GET"}
   */
  method?: string;
  /**
   * Limit on the bytes of the response head: the status line, header lines and the
   * empty line ending them. Interim `1xx` heads count towards the same limit, so a
   * server cannot keep the parser busy with an endless run of them. The same limit
   * applies, separately, to a chunked body's trailer section.
   *
   * @default {65536}
   */
  maxHeadBytes?: number;
  /**
   * Limit on the number of header fields in one head (and of trailer fields).
   *
   * @default {100}
   */
  maxHeaders?: number;
  /**
   * Limit on the body bytes as they arrive (after removing chunked framing, before
   * any content decoding). A `Content-Length` or chunk size announcing more fails
   * at once, before the bytes are read.
   *
   * @default {Infinity}
   */
  maxBodyBytes?: number;
}

/** The final (non-`1xx`) status line and header section of a response. */
export interface ResponseHead {
  /** `"1.0"` for HTTP/1.0; `"1.1"` for HTTP/1.1 and any later HTTP/1.x. */
  version: "1.0" | "1.1";
  /** The status code, 100..599 (never 1xx here: interim responses are skipped). */
  status: number;
  /** The reason phrase, possibly empty, decoded as latin1. */
  statusText: string;
  /** The header fields, values decoded as latin1; duplicates appended in order. */
  headers: Headers;
}

// Parser states. The head is read line by line; each body framing (RFC 9112
// section 6.3) has its own reader state with its own counters.
const HEAD = 0;
const LENGTH = 1;
const CLOSE = 2;
const CHUNK_SIZE = 3;
const CHUNK_DATA = 4;
const CHUNK_CR = 5;
const CHUNK_LF = 6;
const TRAILERS = 7;
const DONE = 8;

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;
const SEMICOLON = 59;
const EQUALS = 61;
const DQUOTE = 34;
const BACKSLASH = 92;

/** `"HTTP/"` as bytes, checked as soon as they arrive so a non-HTTP peer fails fast. */
const HTTP_PREFIX = [72, 84, 84, 80, 47];

/**
 * A chunk-size line is tiny unless a server abuses chunk extensions; bound it so
 * such a line cannot grow the line buffer without limit.
 */
const MAX_CHUNK_HEADER_BYTES = 8192;

/** Shared, as allocating even an empty typed array costs more than a parse. */
const EMPTY = new Uint8Array(0);

/** RFC 9110 `tchar`, indexed by byte. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let b = 48; b <= 57; b++) TCHAR[b] = 1;
for (let b = 65; b <= 90; b++) TCHAR[b] = 1;
for (let b = 97; b <= 122; b++) TCHAR[b] = 1;

/** Hexadecimal digit values indexed by byte, -1 for other bytes. */
const HEX = new Int8Array(256).fill(-1);
for (let b = 0; b < 10; b++) HEX[48 + b] = b;
for (let b = 0; b < 6; b++) HEX[65 + b] = HEX[97 + b] = 10 + b;

/** True for bytes allowed in a field value or reason phrase besides SP and HTAB. */
function isFieldVchar(b: number): boolean {
  return (b > 0x20 && b < 0x7f) || (b > 0x7f && b < 0x100);
}

function isWs(b: number | undefined): boolean {
  return b === SP || b === HTAB;
}

/** Returns the index of the first byte at or after `i` that is not SP or HTAB. */
function skipWs(line: Uint8Array, i: number, end: number): number {
  while (i < end && isWs(line[i])) i++;
  return i;
}

/** Returns the index of the first byte at or after `i` that is not a `tchar`. */
function skipToken(line: Uint8Array, i: number, end: number): number {
  while (i < end && TCHAR[line[i]!] === 1) i++;
  return i;
}

/**
 * Decodes bytes with latin1 semantics (one byte, one UTF-16 unit), which is what
 * `Headers` expects; `TextDecoder("latin1")` would not do, as the Encoding
 * standard maps that label to windows-1252.
 */
function latin1(bytes: Uint8Array, start: number, end: number): string {
  const CHUNK = 8192;
  if (end - start <= CHUNK) {
    return String.fromCharCode.apply(
      null,
      bytes.subarray(start, end) as unknown as number[],
    );
  }
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
function quote(bytes: Uint8Array, start: number, end: number): string {
  const MAX = 40;
  let s = '"';
  const stop = Math.min(end, start + MAX);
  for (let i = start; i < stop; i++) {
    const b = bytes[i]!;
    if (b === DQUOTE || b === BACKSLASH) s += "\\" + String.fromCharCode(b);
    else if (b === CR) s += "\\r";
    else if (b === HTAB) s += "\\t";
    else if (b < 0x20 || b >= 0x7f) {
      s += "\\x" + b.toString(16).padStart(2, "0");
    } else s += String.fromCharCode(b);
  }
  return s + (end > stop ? '..."' : '"');
}

function fail(code: string, detail: string, offset: number): never {
  throw new HttpParseError(
    code,
    `Cannot parse response: ${detail} at byte ${offset}`,
    offset,
  );
}

/**
 * Fails on an unexpected byte, naming NUL and bare CR specifically since those
 * are what request smuggling and response splitting attacks are made of.
 */
function unexpected(
  b: number,
  code: string,
  detail: string,
  offset: number,
  where: string,
): never {
  if (b === 0) fail("nul-byte", `NUL byte in ${where}`, offset);
  if (b === CR) fail("bare-cr", `CR not followed by LF in ${where}`, offset);
  return fail(code, detail, offset);
}

/** Checks a positive-integer-or-Infinity limit option. */
function limit(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== "number" || value < min ||
    (!Number.isInteger(value) && value !== Infinity)
  ) {
    throw new RangeError(
      `Cannot create response parser: ${name} must be an integer >= ${min} or Infinity, received ${value}`,
    );
  }
  return value;
}

/**
 * Parses one HTTP/1.1 response from a byte stream fed in pieces of any size,
 * without doing any I/O (the driver owns the socket).
 *
 * Contract:
 * - Feed bytes in stream order with {@linkcode ResponseParser.receive}, and `null`
 *   once the peer has closed. Work is O(n) in the bytes fed whatever the split:
 *   no byte is looked at twice, except the bytes of a head line split across
 *   calls, which are copied once into a line buffer.
 * - The outcome does not depend on how the stream was split: the same head, body
 *   bytes and trailers, or the same error (code, offset and message). A line
 *   is judged once complete, except that a line running past its size limit
 *   fails at the limit, and a status line not starting with `HTTP/` fails at
 *   its first wrong byte when that byte is within the limit.
 * - Interim `1xx` responses are read and dropped. A `101 Switching Protocols` is
 *   an error (`unexpected-upgrade`): this client never asks for an upgrade, and
 *   the bytes after it would not be HTTP.
 * - Body framing follows RFC 9112 section 6.3: none for `HEAD`, `204` and `304`
 *   (their framing headers are ignored), else `Transfer-Encoding: chunked`
 *   (which overrides `Content-Length`), else `Content-Length`, else the body runs
 *   until the peer closes.
 * - Tolerated, as RFC 9112 allows: a bare LF ending a line, empty lines before
 *   the status line, identical duplicate `Content-Length` values, a missing space
 *   before an empty reason phrase, `HTTP/1.x` with x > 1 (read as 1.1), and
 *   obs-fold in header and trailer fields, each fold replaced with one SP before
 *   the value is read (section 5.2; a framing field whose unfolded value breaks
 *   its grammar then fails as such). Everything else that is malformed throws
 *   {@linkcode HttpParseError}.
 * - After an error the parser is dead: every later call rethrows the same error.
 * - Once {@linkcode ResponseParser.done}, further bytes are not consumed: they
 *   belong to the next response on the connection (or are junk, if
 *   {@linkcode ResponseParser.keepAlive} is false); `receive` reports how many
 *   bytes of each call it used.
 *
 * @example Parsing a chunked response fed in two pieces
 * ```ts ignore
 * const parser = new ResponseParser();
 * const enc = new TextEncoder();
 * parser.receive(enc.encode("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab"));
 * parser.receive(enc.encode("c\r\n0\r\n\r\n"));
 * console.assert(parser.done && parser.head?.status === 200);
 * console.assert(parser.takeBody().length === 2); // "ab" and "c", as views
 * ```
 */
export class ResponseParser {
  readonly #method: string;
  readonly #maxHeadBytes: number;
  readonly #maxHeaders: number;
  readonly #maxBodyBytes: number;

  #state = HEAD;
  #error: HttpParseError | null = null;
  /** Bytes consumed so far: the absolute offset of the next byte to parse. */
  #offset = 0;
  #started = false;

  // Line buffer for a line split across receive() calls.
  #pending = EMPTY;
  #pendingLen = 0;
  /** Absolute offset of the first byte of the line being read. */
  #lineStart = 0;
  /** The last complete line, without its LF: a view of the input or of `#pending`. */
  #line: Uint8Array = EMPTY;

  // The head being read (interim or final).
  #sawStatusLine = false;
  #version: "1.0" | "1.1" = "1.1";
  #status = 0;
  #statusText = "";
  #statusOffset = 0;
  #headers = new Headers();
  #fieldCount = 0;
  // The last field line read, kept until the next line shows whether an obs-fold
  // continues it: only then is its value known.
  #fieldName: string | null = null;
  #fieldValue = "";
  #fieldValueOffset = 0;
  #contentLength = -1;
  #contentLengthError: HttpParseError | null = null;
  #transferEncoding: string | null = null;
  #transferEncodingOffset = 0;
  #connectionClose = false;
  #connectionKeepAlive = false;

  #head: ResponseHead | null = null;
  #keepAlive = false;
  #trailers: Headers | null = null;
  #trailerStart = 0;

  // Body readers' counters.
  #remaining = 0;
  #bodyBytes = 0;
  /** The Content-Length framing the body, once chosen; else -1. */
  #declaredLength = -1;
  #body: Uint8Array[] = [];

  /**
   * Creates a parser for one response.
   *
   * @param options Request method and size limits.
   * @throws {RangeError} If a limit is not a non-negative integer (or Infinity).
   */
  constructor(options: ResponseParserOptions = {}) {
    this.#method = options.method ?? "GET";
    this.#maxHeadBytes = limit("maxHeadBytes", options.maxHeadBytes, 65536, 1);
    this.#maxHeaders = limit("maxHeaders", options.maxHeaders, 100, 0);
    this.#maxBodyBytes = limit(
      "maxBodyBytes",
      options.maxBodyBytes,
      Infinity,
      0,
    );
  }

  /** The final (non-`1xx`) head, once it has been parsed; `null` before. */
  get head(): ResponseHead | null {
    return this.#head;
  }

  /** Whether the whole response, body and trailers included, has been parsed. */
  get done(): boolean {
    return this.#state === DONE;
  }

  /**
   * Whether the connection may carry another request once this response is done:
   * HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `Connection:
   * keep-alive`, and a body delimited by its length, not by the peer closing.
   * `false` while not {@linkcode ResponseParser.done}, and when both
   * `Transfer-Encoding` and `Content-Length` were sent (RFC 9112 section 6.3).
   */
  get keepAlive(): boolean {
    return this.#state === DONE && this.#keepAlive;
  }

  /**
   * The body length the head announced with `Content-Length`, once the head is
   * parsed and the body is framed by it: an integer from 0 to
   * `min(maxBodyBytes, 2 ** 53 - 1)`, as a larger value fails the head. `-1`
   * before the head, for chunked, close-delimited and bodiless (`HEAD`, `204`,
   * `304`) responses, and after an error. A caller may size its body buffer
   * with it, but it is the server's claim, not bytes that have arrived: cap
   * what you allocate ahead of them.
   */
  get contentLength(): number {
    return this.#error === null ? this.#declaredLength : -1;
  }

  /** A chunked body's trailer fields once it is done (possibly empty); else `null`. */
  get trailers(): Headers | null {
    return this.#trailers;
  }

  /**
   * How many bytes of the stream this response used so far (interim responses
   * included). Once {@linkcode ResponseParser.done}, bytes fed beyond this offset
   * belong to whatever follows the response.
   */
  get bytesConsumed(): number {
    return this.#offset;
  }

  /** Whether any byte has been received, to tell a silent close from a cut one. */
  get started(): boolean {
    return this.#started;
  }

  /**
   * Feeds the next bytes of the stream, or `null` when the peer has closed it.
   * An empty array is not end of stream and does nothing.
   *
   * Body chunks taken later with {@linkcode ResponseParser.takeBody} are views
   * into `data`, so do not overwrite `data` until they have been taken.
   *
   * @param data The next bytes received, or `null` at end of stream.
   * @returns How many bytes of `data` belong to this response: `data.length`
   *   unless the response ended inside it (0 for `null`, and once done).
   * @throws {HttpParseError} If the response is malformed, too large or cut
   *   short; the same error again on every call after that.
   */
  receive(data: Uint8Array | null): number {
    if (this.#error) throw this.#error;
    if (this.#state === DONE) return 0;
    try {
      if (data === null) {
        this.#eof();
        return 0;
      }
      if (data.length === 0) return 0;
      this.#started = true;
      const used = this.#feed(data);
      this.#offset += used;
      return used;
    } catch (e) {
      if (e instanceof HttpParseError) this.#error = e;
      throw e;
    }
  }

  /**
   * The body bytes still expected when the body is framed by `Content-Length`
   * and the parser is inside it: an integer from 1 to
   * {@linkcode ResponseParser.contentLength}. `-1` otherwise, and after an
   * error. A caller may then read up to this many bytes straight into its own
   * buffer and report them with {@linkcode ResponseParser.skipBody}.
   */
  get bodyRemaining(): number {
    return this.#state === LENGTH && this.#error === null
      ? this.#remaining
      : -1;
  }

  /**
   * Accounts for `n` body bytes the caller received straight into its own
   * buffer (never seen by the parser), as if they had been fed and taken.
   *
   * @param n How many, at most {@linkcode ResponseParser.bodyRemaining}.
   * @throws {RangeError} Outside a `Content-Length` body, or past its end.
   */
  skipBody(n: number): void {
    if (this.#state !== LENGTH || !(n >= 0 && n <= this.#remaining)) {
      throw new RangeError(
        `Cannot skip ${n} body bytes: ${this.bodyRemaining} expected`,
      );
    }
    this.#offset += n;
    this.#remaining -= n;
    if (this.#remaining === 0) this.#state = DONE;
  }

  /**
   * Takes the body bytes parsed since the last call, in order, as views into the
   * arrays given to {@linkcode ResponseParser.receive} (never copies of them).
   *
   * @returns The new body chunks, possibly none.
   */
  takeBody(): Uint8Array[] {
    if (this.#body.length === 0) return [];
    const body = this.#body;
    this.#body = [];
    return body;
  }

  /** Parses `data` from its start; returns how many bytes were used. */
  #feed(data: Uint8Array): number {
    const base = this.#offset;
    const end = data.length;
    let pos = 0;
    while (pos < end) {
      switch (this.#state) {
        case HEAD: {
          if (this.#pendingLen === 0) this.#lineStart = base + pos;
          const next = this.#takeLine(data, pos, base, this.#maxHeadBytes);
          if (next < 0) return end;
          pos = next;
          this.#headLine(base + pos);
          break;
        }
        case LENGTH: {
          const n = Math.min(this.#remaining, end - pos);
          this.#body.push(data.subarray(pos, pos + n));
          pos += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = DONE;
          break;
        }
        case CLOSE: {
          const n = end - pos;
          if (this.#bodyBytes + n > this.#maxBodyBytes) {
            this.#tooLarge(base + pos + this.#maxBodyBytes - this.#bodyBytes);
          }
          this.#bodyBytes += n;
          this.#body.push(pos === 0 ? data : data.subarray(pos));
          pos = end;
          break;
        }
        case CHUNK_SIZE: {
          if (this.#pendingLen === 0) this.#lineStart = base + pos;
          const next = this.#takeLine(
            data,
            pos,
            base,
            this.#lineStart + MAX_CHUNK_HEADER_BYTES,
          );
          if (next < 0) return end;
          pos = next;
          this.#chunkSizeLine(base + pos);
          break;
        }
        case CHUNK_DATA: {
          const n = Math.min(this.#remaining, end - pos);
          this.#body.push(data.subarray(pos, pos + n));
          pos += n;
          this.#remaining -= n;
          if (this.#remaining === 0) this.#state = CHUNK_CR;
          break;
        }
        case CHUNK_CR:
        case CHUNK_LF: {
          // Byte by byte rather than as a line: chunk data running past its
          // size must fail here, not be searched for the next LF.
          const b = data[pos]!;
          if (b === LF) this.#state = CHUNK_SIZE;
          else if (b === CR && this.#state === CHUNK_CR) this.#state = CHUNK_LF;
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
          if (this.#pendingLen === 0) this.#lineStart = base + pos;
          const next = this.#takeLine(
            data,
            pos,
            base,
            this.#trailerStart + this.#maxHeadBytes,
          );
          if (next < 0) return end;
          pos = next;
          this.#trailerLine();
          break;
        }
        case DONE:
          return pos;
      }
    }
    return pos;
  }

  /**
   * Finds the end of the line that starts at `#lineStart`. On success the line
   * (without its LF) is in `#line` and the index after the LF is returned;
   * otherwise the rest of `data` is buffered and -1 is returned.
   *
   * @param limitOffset Absolute offset the line's LF must come before.
   */
  #takeLine(
    data: Uint8Array,
    pos: number,
    base: number,
    limitOffset: number,
  ): number {
    const lf = data.indexOf(LF, pos);
    const stop = lf === -1 ? data.length : lf + 1;
    // The first offending byte decides, whatever the split: a status line's
    // prefix is checked up to the limit, then the limit itself, before any byte
    // is kept.
    if (this.#state === HEAD && !this.#sawStatusLine) {
      this.#checkStatusPrefix(
        data,
        pos,
        Math.min(lf === -1 ? data.length : lf, limitOffset - base),
      );
    }
    if (base + stop > limitOffset) this.#lineTooLong(limitOffset);
    if (lf === -1) {
      this.#append(data, pos, data.length);
      return -1;
    }
    if (this.#pendingLen === 0) {
      this.#line = data.subarray(pos, lf);
    } else {
      this.#append(data, pos, lf);
      this.#line = this.#pending.subarray(0, this.#pendingLen);
      this.#pendingLen = 0;
    }
    return lf + 1;
  }

  #lineTooLong(offset: number): never {
    if (this.#state === HEAD) {
      fail(
        "head-too-large",
        `response head larger than ${this.#maxHeadBytes} bytes`,
        offset,
      );
    }
    if (this.#state === TRAILERS) {
      fail(
        "trailers-too-large",
        `trailer section larger than ${this.#maxHeadBytes} bytes`,
        offset,
      );
    }
    return fail(
      "chunk-header-too-large",
      `chunk-size line longer than ${MAX_CHUNK_HEADER_BYTES} bytes`,
      offset,
    );
  }

  #append(data: Uint8Array, start: number, end: number): void {
    const need = this.#pendingLen + end - start;
    if (need > this.#pending.length) {
      const grown = new Uint8Array(
        Math.max(need, this.#pending.length * 2, 256),
      );
      grown.set(this.#pending.subarray(0, this.#pendingLen));
      this.#pending = grown;
    }
    this.#pending.set(data.subarray(start, end), this.#pendingLen);
    this.#pendingLen = need;
  }

  /**
   * Fails early on a status line that cannot start with `HTTP/`, so a peer that
   * speaks another protocol (and may never send an LF) is caught at once. It
   * looks at the line's bytes so far (`#pending`, then `data[pos:stop]`) and
   * quotes only the bytes up to the bad one, so that neither the outcome nor the
   * message depends on how much of the line has arrived. A CR is left to
   * `#statusLine()`, as only the next byte tells whether the CR ends the line.
   */
  #checkStatusPrefix(data: Uint8Array, pos: number, stop: number): void {
    const pending = this.#pendingLen;
    const byteAt = (k: number): number =>
      k < pending ? this.#pending[k]! : data[pos + k - pending]!;
    const n = Math.min(pending + stop - pos, HTTP_PREFIX.length);
    for (let k = 0; k < n; k++) {
      const b = byteAt(k);
      if (b === CR) return;
      if (b !== HTTP_PREFIX[k]) {
        const seen = Uint8Array.from({ length: k + 1 }, (_, j) => byteAt(j));
        this.#badStatusLine(seen, k, k + 1);
      }
    }
  }

  /** Fails on byte `i` of the status line (or its end, if `i >= end`). */
  #badStatusLine(line: Uint8Array, i: number, end: number): never {
    return unexpected(
      i < end ? line[i]! : -1,
      "invalid-status-line",
      `invalid status line ${quote(line, 0, end)}`,
      this.#lineStart + i,
      `status line ${quote(line, 0, end)}`,
    );
  }

  /** Handles a complete head line; `next` is the offset just after its LF. */
  #headLine(next: number): void {
    const line = this.#line;
    const end = line.length > 0 && line[line.length - 1] === CR
      ? line.length - 1
      : line.length;
    if (!this.#sawStatusLine) {
      // RFC 9112 section 2.2: empty lines before the start line may be ignored.
      if (end !== 0) this.#statusLine(line, end);
      return;
    }
    if (end !== 0) {
      this.#fieldLine(line, end, this.#headers, false);
      return;
    }
    this.#endField(this.#headers, false);
    this.#endHead(next);
  }

  /** `HTTP-version SP status-code SP reason-phrase`, from `line[0:end]`. */
  #statusLine(line: Uint8Array, end: number): void {
    const start = this.#lineStart;
    const at = (i: number): number => i < end ? line[i]! : -1;
    for (let i = 0; i < HTTP_PREFIX.length; i++) {
      if (at(i) !== HTTP_PREFIX[i]) this.#badStatusLine(line, i, end);
    }
    // HTTP-version = "HTTP/" DIGIT "." DIGIT
    const major = at(5) - 48;
    if (!(major >= 0 && major <= 9)) this.#badStatusLine(line, 5, end);
    if (at(6) !== 46) this.#badStatusLine(line, 6, end);
    const minor = at(7) - 48;
    if (!(minor >= 0 && minor <= 9)) this.#badStatusLine(line, 7, end);
    if (at(8) !== SP) this.#badStatusLine(line, 8, end);
    if (major !== 1) {
      fail(
        "unsupported-http-version",
        `unsupported HTTP version ${quote(line, 0, 8)}`,
        start,
      );
    }
    // status-code = 3DIGIT, then SP and the reason, or (tolerated) nothing.
    let status = 0;
    for (let i = 9; i < 13; i++) {
      const b = at(i);
      const d = b - 48;
      if (i < 12 ? d >= 0 && d <= 9 : b === SP || b === -1) {
        status = i < 12 ? status * 10 + d : status;
        continue;
      }
      unexpected(
        b,
        "invalid-status-code",
        `invalid status code ${quote(line, 9, Math.min(end, 13))}`,
        start + i,
        `status line ${quote(line, 0, end)}`,
      );
    }
    if (status < 100 || status > 599) {
      fail(
        "invalid-status-code",
        `status code ${quote(line, 9, 12)} out of range 100..599`,
        start + 9,
      );
    }
    for (let i = 13; i < end; i++) {
      const b = line[i]!;
      if (!isFieldVchar(b) && !isWs(b)) {
        unexpected(
          b,
          "invalid-status-line",
          `control character in reason phrase ${quote(line, 13, end)}`,
          start + i,
          `status line ${quote(line, 0, end)}`,
        );
      }
    }
    this.#sawStatusLine = true;
    this.#version = minor === 0 ? "1.0" : "1.1";
    this.#status = status;
    this.#statusText = end > 13 ? latin1(line, 13, end) : "";
    this.#statusOffset = start;
  }

  /**
   * Parses `name: value` into `headers`, validating it first so that `Headers`
   * never throws its own `TypeError`.
   */
  #fieldLine(
    line: Uint8Array,
    end: number,
    headers: Headers,
    trailer: boolean,
  ): void {
    const start = this.#lineStart;
    if (isWs(line[0])) {
      if (this.#fieldName !== null) {
        this.#unfold(line, end);
        return;
      }
      if (!trailer) {
        // RFC 9112 section 2.2: such a line is either rejected or consumed
        // unread; silently dropping header bytes hides attacks, so reject.
        fail(
          "whitespace-after-start-line",
          `whitespace-preceded line after the status line ${
            quote(line, 0, end)
          }`,
          start,
        );
      }
      fail(
        "obs-fold",
        `whitespace-preceded first trailer line ${quote(line, 0, end)}`,
        start,
      );
    }
    let i = 0;
    while (i < end && TCHAR[line[i]!] === 1) i++;
    if (i === end) {
      fail(
        "header-no-colon",
        `header line without a colon ${quote(line, 0, end)}`,
        start,
      );
    }
    const b = line[i]!;
    if (b !== COLON) {
      if (b === 0 || b === CR) {
        unexpected(b, "", "", start + i, `header line ${quote(line, 0, end)}`);
      }
      if (isWs(b)) {
        let j = i;
        while (j < end && isWs(line[j])) j++;
        if (line[j] === COLON) {
          fail(
            "header-whitespace-before-colon",
            `whitespace between header name and colon ${quote(line, 0, end)}`,
            start + i,
          );
        }
      }
      const colon = line.subarray(i, end).indexOf(COLON);
      if (colon === -1) {
        fail(
          "header-no-colon",
          `header line without a colon ${quote(line, 0, end)}`,
          start,
        );
      }
      fail(
        "invalid-header-name",
        `invalid header name ${quote(line, 0, i + colon)}`,
        start + i,
      );
    }
    if (i === 0) {
      fail(
        "invalid-header-name",
        `empty header name ${quote(line, 0, end)}`,
        start,
      );
    }
    // field-value with its surrounding OWS dropped.
    let v = i + 1;
    while (v < end && isWs(line[v])) v++;
    let vEnd = end;
    while (vEnd > v && isWs(line[vEnd - 1])) vEnd--;
    for (let k = v; k < vEnd; k++) {
      const c = line[k]!;
      if (!isFieldVchar(c) && c !== SP && c !== HTAB) {
        unexpected(
          c,
          "invalid-header-value",
          `control character in header value ${quote(line, 0, end)}`,
          start + k,
          `header line ${quote(line, 0, end)}`,
        );
      }
    }
    if (++this.#fieldCount > this.#maxHeaders) {
      fail(
        "too-many-headers",
        `more than ${this.#maxHeaders} ${
          trailer ? "trailer" : "header"
        } fields`,
        start,
      );
    }
    this.#endField(headers, trailer);
    // One decode per line: slices of it share its storage.
    const text = latin1(line, 0, vEnd);
    this.#fieldName = text.slice(0, i);
    this.#fieldValue = text.slice(v);
    this.#fieldValueOffset = start + v;
  }

  /**
   * Appends an obs-fold continuation line to the pending field's value. RFC
   * 9112 section 5.2: a user agent replaces each obs-fold (`OWS CRLF RWS`) with
   * SP before interpreting the value; the field's trailing OWS is dropped as
   * usual.
   */
  #unfold(line: Uint8Array, end: number): void {
    const start = this.#lineStart;
    for (let k = 0; k < end; k++) {
      const c = line[k]!;
      if (!isFieldVchar(c) && !isWs(c)) {
        unexpected(
          c,
          "invalid-header-value",
          `control character in folded header value ${quote(line, 0, end)}`,
          start + k,
          `header line ${quote(line, 0, end)}`,
        );
      }
    }
    const v = skipWs(line, 0, end);
    let vEnd = end;
    while (vEnd > v && isWs(line[vEnd - 1])) vEnd--;
    if (v === vEnd) return;
    const text = latin1(line, v, vEnd);
    if (this.#fieldValue === "") {
      this.#fieldValue = text;
      this.#fieldValueOffset = start + v;
    } else this.#fieldValue += " " + text;
  }

  /** Adds the pending field, now that no obs-fold can continue it. */
  #endField(headers: Headers, trailer: boolean): void {
    const name = this.#fieldName;
    if (name === null) return;
    this.#fieldName = null;
    headers.append(name, this.#fieldValue);
    if (!trailer) {
      this.#framingField(name, this.#fieldValue, this.#fieldValueOffset);
    }
  }

  /** Notes the fields that decide framing and connection reuse. */
  #framingField(name: string, value: string, valueOffset: number): void {
    switch (name.length) {
      case 14:
        if (name.toLowerCase() === "content-length") {
          this.#contentLengthField(value, valueOffset);
        }
        break;
      case 17:
        if (name.toLowerCase() === "transfer-encoding") {
          this.#transferEncoding = this.#transferEncoding === null
            ? value
            : `${this.#transferEncoding}, ${value}`;
          this.#transferEncodingOffset = valueOffset;
        }
        break;
      case 10:
        if (name.toLowerCase() === "connection") {
          for (const token of value.split(",")) {
            const t = token.trim().toLowerCase();
            if (t === "close") this.#connectionClose = true;
            else if (t === "keep-alive") this.#connectionKeepAlive = true;
          }
        }
        break;
    }
  }

  /**
   * Records the `Content-Length` value, or the first problem with it; the error is
   * raised at the end of the head, and only if `Transfer-Encoding` does not
   * override the field.
   */
  #contentLengthField(value: string, offset: number): void {
    if (this.#contentLengthError) return;
    // A list ("5, 5") is what a recipient sees of repeated fields (RFC 9110 8.6).
    for (const part of value.split(",")) {
      const v = part.trim();
      let n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
      if (n > Number.MAX_SAFE_INTEGER && this.#maxBodyBytes !== Infinity) {
        // Valid, only too large: the body limit fails it once the head is read.
        n = Infinity;
      } else if (!(n <= Number.MAX_SAFE_INTEGER)) {
        this.#contentLengthError = new HttpParseError(
          "invalid-content-length",
          `Cannot parse response: invalid Content-Length ${
            JSON.stringify(value)
          } at byte ${offset}`,
          offset,
        );
        return;
      }
      if (this.#contentLength !== -1 && this.#contentLength !== n) {
        this.#contentLengthError = new HttpParseError(
          "conflicting-content-length",
          `Cannot parse response: conflicting Content-Length values ${this.#contentLength} and ${n} at byte ${offset}`,
          offset,
        );
        return;
      }
      this.#contentLength = n;
    }
  }

  /** The head is complete: skip it if interim, else choose the body reader. */
  #endHead(next: number): void {
    const status = this.#status;
    if (status < 200) {
      if (status === 101) {
        fail(
          "unexpected-upgrade",
          "101 Switching Protocols without an upgrade request",
          this.#statusOffset + 9,
        );
      }
      this.#resetHead();
      return;
    }
    this.#head = {
      version: this.#version,
      status,
      statusText: this.#statusText,
      headers: this.#headers,
    };
    const te = this.#transferEncoding;
    this.#keepAlive = !this.#connectionClose &&
      (this.#version === "1.1" || this.#connectionKeepAlive) &&
      // RFC 9112 section 6.1 and 6.3: both framings, or Transfer-Encoding in
      // HTTP/1.0, mean the framing is suspect; finish this response only.
      !(te !== null && (this.#contentLength !== -1 ||
        this.#contentLengthError !== null || this.#version === "1.0"));
    if (this.#method === "HEAD" || status === 204 || status === 304) {
      this.#state = DONE;
      return;
    }
    if (te !== null) {
      this.#checkTransferEncoding(te);
      this.#state = CHUNK_SIZE;
      return;
    }
    if (this.#contentLengthError) throw this.#contentLengthError;
    const length = this.#contentLength;
    if (length === -1) {
      this.#keepAlive = false;
      this.#state = CLOSE;
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
    this.#declaredLength = length;
    this.#bodyBytes = length;
    this.#remaining = length;
    this.#state = length === 0 ? DONE : LENGTH;
  }

  #resetHead(): void {
    this.#sawStatusLine = false;
    this.#headers = new Headers();
    this.#fieldCount = 0;
    this.#contentLength = -1;
    this.#contentLengthError = null;
    this.#transferEncoding = null;
    this.#connectionClose = false;
    this.#connectionKeepAlive = false;
  }

  /** Only `chunked` alone is supported as a response's transfer coding. */
  #checkTransferEncoding(te: string): void {
    const offset = this.#transferEncodingOffset;
    const codings = te.split(",").map((c) => c.trim().toLowerCase()).filter((
      c,
    ) => c !== "");
    const chunked = codings.filter((c) => c === "chunked").length;
    if (
      codings.length === 0 || chunked > 1 ||
      (chunked === 1 && codings[codings.length - 1] !== "chunked")
    ) {
      fail(
        "invalid-transfer-encoding",
        `invalid Transfer-Encoding ${JSON.stringify(te)}`,
        offset,
      );
    }
    if (codings.length !== 1 || chunked !== 1) {
      fail(
        "unsupported-transfer-encoding",
        `unsupported Transfer-Encoding ${JSON.stringify(te)}`,
        offset,
      );
    }
  }

  /**
   * Parses `chunk-size [ chunk-ext ]` (RFC 9112 section 7.1); extensions are
   * checked and dropped. `next` is the offset just after the line's LF.
   */
  #chunkSizeLine(next: number): void {
    const line = this.#line;
    const start = this.#lineStart;
    const end = line.length > 0 && line[line.length - 1] === CR
      ? line.length - 1
      : line.length;
    let size = 0;
    let i = 0;
    for (; i < end; i++) {
      const d = HEX[line[i]!]!;
      if (d < 0) break;
      size = size * 16 + d;
      if (size > Number.MAX_SAFE_INTEGER) {
        fail(
          "invalid-chunk-size",
          `chunk size ${quote(line, 0, end)} above 2^53 - 1`,
          start,
        );
      }
    }
    // RFC 9112 section 7.1: whitespace (BWS) may only come before an extension's
    // ";". Trailing whitespace is refused, as llhttp does: parsers that disagree
    // on where a chunk starts are how request smuggling works.
    const j = skipWs(line, i, end);
    if (i === 0 || (j < end ? line[j] !== SEMICOLON : j !== i)) {
      unexpected(
        i < end ? line[i]! : -1,
        "invalid-chunk-size",
        `invalid chunk size ${quote(line, 0, end)}`,
        start + i,
        `chunk-size line ${quote(line, 0, end)}`,
      );
    }
    if (j < end) this.#chunkExtensions(line, j, end);
    if (size === 0) {
      this.#trailerStart = next;
      this.#fieldCount = 0;
      this.#trailers = new Headers();
      this.#state = TRAILERS;
      return;
    }
    if (this.#bodyBytes + size > this.#maxBodyBytes) {
      fail(
        "body-too-large",
        `chunk of ${size} bytes takes the body over the ${this.#maxBodyBytes} byte limit`,
        start,
      );
    }
    this.#bodyBytes += size;
    this.#remaining = size;
    this.#state = CHUNK_DATA;
  }

  /**
   * Checks `line[i:end]`, which starts with ";", against
   * `*( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] )`: no
   * whitespace at the end of the line.
   */
  #chunkExtensions(line: Uint8Array, i: number, end: number): void {
    while (i < end) {
      // line[i] is ";" here.
      i = skipWs(line, i + 1, end);
      const name = skipToken(line, i, end);
      if (name === i) this.#badExtension(line, i, end);
      i = this.#bws(line, name, end);
      if (i < end && line[i] === EQUALS) {
        i = skipWs(line, i + 1, end);
        if (i < end && line[i] === DQUOTE) {
          i = this.#quotedString(line, i + 1, end);
        } else {
          const value = skipToken(line, i, end);
          if (value === i) this.#badExtension(line, i, end);
          i = value;
        }
        i = this.#bws(line, i, end);
      }
      if (i < end && line[i] !== SEMICOLON) this.#badExtension(line, i, end);
    }
  }

  /** Skips BWS at `i`, which must be followed by something: "=" or ";". */
  #bws(line: Uint8Array, i: number, end: number): number {
    const j = skipWs(line, i, end);
    if (j === end && j !== i) this.#badExtension(line, i, end);
    return j;
  }

  /** Returns the index after the closing quote of a quoted-string body at `i`. */
  #quotedString(line: Uint8Array, i: number, end: number): number {
    for (; i < end; i++) {
      const b = line[i]!;
      if (b === DQUOTE) return i + 1;
      if (b === BACKSLASH) {
        i++;
        const q = i < end ? line[i]! : -1;
        if (!isFieldVchar(q) && !isWs(q)) this.#badExtension(line, i, end);
      } else if (!isFieldVchar(b) && !isWs(b)) {
        this.#badExtension(line, i, end);
      }
    }
    return this.#badExtension(line, end, end);
  }

  #badExtension(line: Uint8Array, i: number, end: number): never {
    return unexpected(
      i < end ? line[i]! : -1,
      "invalid-chunk-extension",
      `invalid chunk extension ${quote(line, 0, end)}`,
      this.#lineStart + i,
      `chunk-size line ${quote(line, 0, end)}`,
    );
  }

  #trailerLine(): void {
    const line = this.#line;
    const end = line.length > 0 && line[line.length - 1] === CR
      ? line.length - 1
      : line.length;
    if (end === 0) {
      this.#endField(this.#trailers!, true);
      this.#state = DONE;
      return;
    }
    this.#fieldLine(line, end, this.#trailers!, true);
  }

  #tooLarge(offset: number): never {
    return fail(
      "body-too-large",
      `body larger than the ${this.#maxBodyBytes} byte limit`,
      offset,
    );
  }

  #eof(): void {
    const at = this.#offset;
    switch (this.#state) {
      case HEAD:
        if (!this.#started) {
          throw new HttpParseError(
            "empty-response",
            "Cannot parse response: connection closed before any response byte",
            0,
          );
        }
        fail(
          "truncated-head",
          "connection closed before the end of the response head",
          at,
        );
        break;
      case CLOSE:
        this.#state = DONE;
        break;
      case LENGTH:
        fail(
          "truncated-body",
          `connection closed after ${
            this.#bodyBytes - this.#remaining
          } of ${this.#bodyBytes} body bytes`,
          at,
        );
        break;
      default:
        fail(
          "truncated-body",
          "connection closed before the end of the chunked body",
          at,
        );
    }
  }
}
