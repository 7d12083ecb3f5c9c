/**
 * A sans-IO, incremental HTTP/1.1 response parser (RFC 9112), in the manner of
 * h11 and llhttp: bytes go in through {@linkcode ResponseParser.receive}, the head,
 * body chunks and trailers come out. It never touches a connection.
 *
 * It is built as h11 is: the byte grammar (`_parser_bytes.ts`), a line assembler
 * that never rescans a byte (`_parser_lines.ts`), field sections
 * (`_parser_fields.ts`), the framing fields (`_parser_framing.ts`), one body
 * reader per framing chosen from a table (`_parser_readers.ts`), and here the
 * head state machine on top.
 *
 * @module
 */

import {
  CR,
  fail,
  isFieldVchar,
  isWs,
  latin1,
  quote,
  SP,
  unexpected,
} from "./_parser_bytes.ts";
import { FieldSection, fieldValue, toHeaders } from "./_parser_fields.ts";
import { FramingFields } from "./_parser_framing.ts";
import { LineAssembler, MORE, TOO_LONG } from "./_parser_lines.ts";
import {
  type BodyReader,
  type ReaderLimits,
  READERS,
} from "./_parser_readers.ts";
import { HttpParseError } from "./http_parse_error.ts";
import { shown } from "./_redact.ts";

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
  /** The status code, 100..999 (never 1xx here: interim responses are skipped). */
  status: number;
  /** The reason phrase, possibly empty, decoded as latin1. */
  statusText: string;
  /**
   * The header fields, values decoded as latin1; duplicates appended in order.
   * Built on first read (the parser keeps the validated field bytes until then),
   * so a caller that never looks at them never pays for them; every read returns
   * the same object.
   */
  headers: Headers;
  /**
   * What `headers.get(name)` returns (values of the fields named `name`, ASCII
   * case-insensitively, joined with ", "; `null` if none), read from the kept
   * field bytes without building `headers`: for a caller that needs one field
   * of every response, such as `Content-Encoding`.
   *
   * @param name A field name, in any case.
   */
  field(name: string): string | null;
}

/** A final head whose `headers` is built from its field section when first read. */
class Head implements ResponseHead {
  readonly version: "1.0" | "1.1";
  readonly status: number;
  readonly statusText: string;
  /**
   * The field section's bytes, `#fields[0:#length]`, handed over by the parser;
   * the bytes after them went back to the slab (other buffers use them).
   */
  readonly #fields: Uint8Array;
  readonly #length: number;
  #headers: Headers | null = null;

  constructor(
    version: "1.0" | "1.1",
    status: number,
    statusText: string,
    fields: Uint8Array,
    length: number,
  ) {
    this.version = version;
    this.status = status;
    this.statusText = statusText;
    this.#fields = fields;
    this.#length = length;
  }

  get headers(): Headers {
    return this.#headers ??= toHeaders(this.#fields, this.#length);
  }

  field(name: string): string | null {
    return fieldValue(this.#fields, this.#length, name);
  }

  /** The field section's bytes, `bytes(head)[0:length(head)]`. */
  static bytes(head: Head): Uint8Array {
    return head.#fields;
  }

  static length(head: Head): number {
    return head.#length;
  }
}

/**
 * The field bytes a final head keeps (never written again): a response object
 * can build its `headers` from them without keeping the head itself alive.
 */
export function fieldBytes(head: ResponseHead): Uint8Array {
  return Head.bytes(head as Head);
}

/** How many of {@linkcode fieldBytes} are the section (and the head's at all). */
export function fieldLength(head: ResponseHead): number {
  return Head.length(head as Head);
}

// The head state machine. Its transitions, by what was read:
//   STATUS_LINE  empty line                  -> STATUS_LINE (RFC 9112 2.2)
//   STATUS_LINE  status line                 -> FIELDS
//   FIELDS       field line, obs-fold line   -> FIELDS
//   FIELDS       empty line, 1xx status      -> STATUS_LINE (interim: dropped)
//   FIELDS       empty line, final status    -> BODY, with READERS[framing];
//                                               DONE if that reader is done
//   BODY         the reader's last byte      -> DONE
//   BODY         end of stream               -> DONE if the reader allows it
const STATUS_LINE = 0;
const FIELDS = 1;
const BODY = 2;
const DONE = 3;

/** `"HTTP/"` as bytes, checked as soon as they arrive so a non-HTTP peer fails fast. */
const HTTP_PREFIX = [72, 84, 84, 80, 47];

/** Byte `p` of the line `bytes[start:start+n]`, or -1 past its end. */
function at(bytes: Uint8Array, start: number, n: number, p: number): number {
  return p < n ? bytes[start + p]! : -1;
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
      `Cannot create response parser: ${name} must be an integer >= ${min} or Infinity, received ${
        shown(value)
      }`,
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
 *   an error (`unexpected-upgrade`): this client does not switch protocols (a
 *   caller's `Upgrade` header goes out as given), and the bytes after it would
 *   not be HTTP.
 * - Body framing follows RFC 9112 section 6.3: none for `HEAD`, `204`, `304`
 *   and a `2xx` to `CONNECT` (their framing headers are ignored; the bytes after
 *   a `CONNECT`'s head belong to the tunnel), else `Transfer-Encoding: chunked`
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
  #method: string;
  readonly #limits: ReaderLimits;

  #state = STATUS_LINE;
  #error: HttpParseError | null = null;
  /** Bytes consumed so far: the stream offset of the next byte to parse. */
  #offset = 0;
  #started = false;

  readonly #lines = new LineAssembler();

  // The head being read (interim or final).
  #version: "1.0" | "1.1" = "1.1";
  #status = 0;
  #statusText = "";
  #statusOffset = 0;
  readonly #fields: FieldSection;
  readonly #framing: FramingFields;

  #head: ResponseHead | null = null;
  #reader: BodyReader | null = null;
  #trailers: Headers | null = null;
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
    this.#limits = {
      maxHeadBytes: limit("maxHeadBytes", options.maxHeadBytes, 65536, 1),
      maxHeaders: limit("maxHeaders", options.maxHeaders, 100, 0),
      maxBodyBytes: limit("maxBodyBytes", options.maxBodyBytes, Infinity, 0),
    };
    this.#fields = new FieldSection(this.#limits.maxHeaders, false);
    this.#framing = new FramingFields(
      this.#fields,
      this.#limits.maxBodyBytes,
    );
  }

  /**
   * Readies the parser for the next response on the same connection, to a
   * request with `method`: as a new parser with the same limits, without the
   * allocations of one. The last head keeps its fields.
   */
  reset(method: string): void {
    this.#method = method;
    this.#state = STATUS_LINE;
    this.#error = null;
    this.#offset = 0;
    this.#started = false;
    this.#lines.reset();
    this.#fields.reset();
    this.#framing.reset();
    this.#head = null;
    this.#reader = null;
    this.#trailers = null;
    this.#declaredLength = -1;
    this.clearBody();
  }

  /** The `maxBodyBytes` it was made with. */
  get maxBodyBytes(): number {
    return this.#limits.maxBodyBytes;
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
    return this.#state === DONE && this.#framing.reusable;
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

  /**
   * Whether the final head has a `Content-Encoding` field; `false` before it.
   * When `false`, `head.field("content-encoding")` is `null` without a lookup.
   */
  get contentEncoded(): boolean {
    return this.#head !== null && this.#framing.contentEncoded;
  }

  /**
   * The idle timeout (ms) the final head's `Keep-Alive: timeout=N` announces,
   * `-1` without one (or before the head): the server closes the conn once it
   * has been idle that long.
   */
  get keepAliveTimeout(): number {
    const seconds = this.#head === null ? -1 : this.#framing.keepAliveTimeout;
    return seconds < 0 ? -1 : seconds * 1000;
  }

  /** A chunked body's trailer fields once it is done (possibly empty); else `null`. */
  get trailers(): Headers | null {
    if (this.#trailers === null && this.#state === DONE) {
      this.#trailers = this.#reader?.trailers?.toHeaders() ?? null;
    }
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

  /**
   * The stream offset of the final head's status line once
   * {@linkcode ResponseParser.head} is set (interim `1xx` heads and ignored empty
   * lines come before it); `-1` before.
   */
  get headOffset(): number {
    return this.#head === null ? -1 : this.#statusOffset;
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
    return this.#state === BODY && this.#error === null
      ? this.#reader!.remaining
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
    const remaining = this.bodyRemaining;
    if (!(n >= 0 && n <= remaining)) {
      throw new RangeError(
        `Cannot skip ${n} body bytes: ${remaining} expected`,
      );
    }
    const reader = this.#reader!;
    reader.skip!(n);
    this.#offset += n;
    if (reader.done) this.#state = DONE;
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

  /**
   * The body chunks parsed and not taken yet, like
   * {@linkcode ResponseParser.takeBody} but without handing over a new array:
   * valid until {@linkcode ResponseParser.clearBody}, `takeBody()` or the next
   * `receive()`. A client that reads each step's chunks at once allocates
   * nothing per step this way.
   */
  peekBody(): readonly Uint8Array[] {
    return this.#body;
  }

  /** Drops the chunks {@linkcode ResponseParser.peekBody} showed. */
  clearBody(): void {
    // Pops keep the array's storage; a new array would have to grow again.
    const body = this.#body;
    while (body.length > 0) body.pop();
  }

  /** Parses `data` from its start; returns how many bytes were used. */
  #feed(data: Uint8Array): number {
    const base = this.#offset;
    const end = data.length;
    let pos = 0;
    while (pos < end) {
      if (this.#state === BODY) {
        const reader = this.#reader!;
        pos = reader.read(data, pos, base, this.#body);
        if (reader.done) this.#state = DONE;
        return pos;
      }
      if (this.#state === DONE) return pos;
      // Interim heads count towards the same limit as the final one.
      const headLimit = this.#limits.maxHeadBytes;
      const lines = this.#lines;
      if (this.#state === FIELDS && lines.pendingLength === 0) {
        const fields = this.#fields;
        const closes = fields.open;
        const stop = Math.min(end, headLimit - base);
        const after = fields.lineAt(data, pos, stop, base);
        if (after >= 0) {
          if (closes) this.#framing.field();
          pos = after;
          continue;
        }
      }
      const next = lines.take(data, pos, base, headLimit);
      if (next < 0) {
        if (this.#state === STATUS_LINE) {
          // Only the bytes kept (MORE), or those within the limit (TOO_LONG).
          this.#checkStatusPrefix(
            data,
            pos,
            next === MORE ? pos : headLimit - base,
          );
        }
        if (next === TOO_LONG) {
          fail(
            "head-too-large",
            `response head larger than ${headLimit} bytes`,
            headLimit,
          );
        }
        return end;
      }
      pos = next;
      this.#headLine(base + pos);
    }
    return pos;
  }

  /**
   * Fails early on a status line that cannot start with `HTTP/`, so a peer that
   * speaks another protocol (and may never send an LF) is caught at once. It
   * looks at the line's bytes so far (the assembler's, then `data[pos:stop]`) and
   * quotes only the bytes up to the bad one, so that neither the outcome nor the
   * message depends on how much of the line has arrived. A CR is left to
   * `#statusLine()`, as only the next byte tells whether the CR ends the line.
   */
  #checkStatusPrefix(data: Uint8Array, pos: number, stop: number): void {
    const lines = this.#lines;
    const pending = lines.pendingLength;
    const byteAt = (k: number): number =>
      k < pending ? lines.pending[k]! : data[pos + k - pending]!;
    const n = Math.min(pending + stop - pos, HTTP_PREFIX.length);
    for (let k = 0; k < n; k++) {
      const b = byteAt(k);
      if (b === CR) return;
      if (b !== HTTP_PREFIX[k]) {
        const seen = Uint8Array.from({ length: k + 1 }, (_, j) => byteAt(j));
        unexpected(
          b,
          "invalid-status-line",
          `invalid status line ${quote(seen, 0, k + 1)}`,
          lines.offset + k,
          `status line ${quote(seen, 0, k + 1)}`,
        );
      }
    }
  }

  /** Handles a complete head line; `next` is the stream offset after its LF. */
  #headLine(next: number): void {
    const { bytes, start, end, offset } = this.#lines;
    if (this.#state === STATUS_LINE) {
      // RFC 9112 section 2.2: empty lines before the start line may be ignored.
      if (end !== start) this.#statusLine(bytes, start, end, offset);
      return;
    }
    const fields = this.#fields;
    const closed = end !== start
      ? fields.line(bytes, start, end, offset)
      : fields.close();
    if (closed) this.#framing.field();
    if (end === start) this.#endHead(next);
  }

  /**
   * `HTTP-version SP status-code SP reason-phrase`, from `bytes[start:end]`,
   * read by index (`p` is the position in the line).
   */
  #statusLine(
    bytes: Uint8Array,
    start: number,
    end: number,
    offset: number,
  ): void {
    const n = end - start;
    for (let p = 0; p < HTTP_PREFIX.length; p++) {
      const b = at(bytes, start, n, p);
      if (b === HTTP_PREFIX[p]) continue;
      // Quoted as #checkStatusPrefix() does, unless only the whole line tells.
      this.#badStatusLine(bytes, start, p, b === -1 || b === CR ? n : p + 1);
    }
    // HTTP-version = "HTTP/" DIGIT "." DIGIT
    const major = at(bytes, start, n, 5) - 48;
    if (!(major >= 0 && major <= 9)) this.#badStatusLine(bytes, start, 5, n);
    if (at(bytes, start, n, 6) !== 46) this.#badStatusLine(bytes, start, 6, n);
    const minor = at(bytes, start, n, 7) - 48;
    if (!(minor >= 0 && minor <= 9)) this.#badStatusLine(bytes, start, 7, n);
    if (at(bytes, start, n, 8) !== SP) this.#badStatusLine(bytes, start, 8, n);
    if (major !== 1) {
      fail(
        "unsupported-http-version",
        `unsupported HTTP version ${quote(bytes, start, start + 8)}`,
        offset,
      );
    }
    // status-code = 3DIGIT, then SP and the reason, or (tolerated) nothing.
    let status = 0;
    for (let p = 9; p < 13; p++) {
      const b = at(bytes, start, n, p);
      const d = b - 48;
      if (p < 12 ? d >= 0 && d <= 9 : b === SP || b === -1) {
        status = p < 12 ? status * 10 + d : status;
        continue;
      }
      unexpected(
        b,
        "invalid-status-code",
        `invalid status code ${
          quote(bytes, start + 9, Math.min(end, start + 13))
        }`,
        offset + p,
        `status line ${quote(bytes, start, end)}`,
      );
    }
    // 600..999 are kept, as fetch, curl and llhttp do (RFC 9110 section 15: an
    // unknown code is read as its class's x00; a class above 5 has none, so the
    // caller sees the code itself, LinkedIn's 999 to crawlers, say).
    if (status < 100) {
      fail(
        "invalid-status-code",
        `status code ${
          quote(bytes, start + 9, start + 12)
        } out of range 100..999`,
        offset + 9,
      );
    }
    const reason = start + 13;
    for (let i = reason; i < end; i++) {
      const b = bytes[i]!;
      if (!isFieldVchar(b) && !isWs(b)) {
        unexpected(
          b,
          "invalid-status-line",
          `control character in reason phrase ${quote(bytes, reason, end)}`,
          offset + i - start,
          `status line ${quote(bytes, start, end)}`,
        );
      }
    }
    this.#state = FIELDS;
    this.#version = minor === 0 ? "1.0" : "1.1";
    this.#status = status;
    // Most reasons are "OK": spare decoding it.
    this.#statusText = n === 15 && bytes[reason] === 79 &&
        bytes[reason + 1] === 75
      ? "OK"
      : n > 13
      ? latin1(bytes, reason, end)
      : "";
    this.#statusOffset = offset;
  }

  /**
   * Fails on byte `p` of the status line `bytes[start:]`, quoting its first
   * `n` bytes (or on its end, if `p >= n`).
   */
  #badStatusLine(
    bytes: Uint8Array,
    start: number,
    p: number,
    n: number,
  ): never {
    return unexpected(
      p < n ? bytes[start + p]! : -1,
      "invalid-status-line",
      `invalid status line ${quote(bytes, start, start + n)}`,
      this.#lines.offset + p,
      `status line ${quote(bytes, start, start + n)}`,
    );
  }

  /** The head is complete: skip it if interim, else choose the body reader. */
  #endHead(next: number): void {
    const status = this.#status;
    if (status < 200) {
      if (status === 101) {
        fail(
          "unexpected-upgrade",
          "101 Switching Protocols: this client does not switch protocols (an Upgrade request header is sent, never acted on)",
          this.#statusOffset + 9,
        );
      }
      this.#fields.reset();
      this.#framing.reset();
      this.#state = STATUS_LINE;
      return;
    }
    const fields = this.#fields;
    const length = fields.length;
    const framing = this.#framing;
    let tooLarge: HttpParseError | null = null;
    try {
      framing.decide(this.#method, status, this.#version, next);
    } catch (error) {
      // The head itself is sound: a caller that only needs the head (a
      // redirect to follow, a status to retry) can still have it.
      if (
        !(error instanceof HttpParseError) || error.code !== "body-too-large"
      ) {
        throw error;
      }
      tooLarge = error;
    }
    // The head keeps the bytes (the used ones only): a reset for the next
    // response must not write over them.
    this.#head = new Head(
      this.#version,
      status,
      this.#statusText,
      fields.release(),
      length,
    );
    if (tooLarge !== null) throw tooLarge;
    this.#declaredLength = framing.length;
    const reader = READERS[framing.framing](
      framing.length,
      this.#limits,
      this.#lines,
    );
    this.#reader = reader;
    this.#state = reader.done ? DONE : BODY;
  }

  #eof(): void {
    switch (this.#state) {
      case STATUS_LINE:
      case FIELDS:
        if (!this.#started) {
          throw new HttpParseError(
            "empty-response",
            "Cannot parse response: connection closed before any response byte",
            0,
          );
        }
        return fail(
          "truncated-head",
          "connection closed before the end of the response head",
          this.#offset,
        );
      default: // BODY
        this.#reader!.eof(this.#offset);
        this.#state = DONE;
    }
  }
}
