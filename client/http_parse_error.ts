/**
 * The error raised for a malformed HTTP/1.1 response.
 *
 * @module
 */

/**
 * The `code` of an {@linkcode HttpParseError}: one of the reasons in its
 * table, so a `switch` over it is checked (a misspelt code does not compile)
 * and can be exhaustive.
 *
 * @example
 * ```ts
 * import type { HttpParseErrorCode } from "@seed/selectors";
 *
 * const retryable: HttpParseErrorCode[] = ["truncated-body", "empty-response"];
 * console.log(retryable.length);
 * ```
 */
export type HttpParseErrorCode =
  | "empty-response"
  | "truncated-head"
  | "truncated-body"
  | "invalid-status-line"
  | "unsupported-http-version"
  | "invalid-status-code"
  | "unexpected-upgrade"
  | "whitespace-after-start-line"
  | "obs-fold"
  | "header-no-colon"
  | "header-whitespace-before-colon"
  | "invalid-header-name"
  | "invalid-header-value"
  | "bare-cr"
  | "nul-byte"
  | "head-too-large"
  | "too-many-headers"
  | "invalid-content-length"
  | "conflicting-content-length"
  | "invalid-transfer-encoding"
  | "unsupported-transfer-encoding"
  | "invalid-chunk-size"
  | "invalid-chunk-extension"
  | "chunk-header-too-large"
  | "invalid-chunk-terminator"
  | "trailers-too-large"
  | "body-too-large"
  | "invalid-content-encoding";

/**
 * Thrown when a server's response breaks HTTP/1.1 (RFC 9112) in a way the client
 * will not recover from: the request fails with this error, and the connection must
 * not be reused. The remote side broke the protocol (h11's `RemoteProtocolError`);
 * local misuse is reported with `TypeError` or `RangeError` instead.
 *
 * `code` is a stable, kebab-case reason meant for programs; `message` is for people
 * and says what was received. `offset` is the byte offset in the response stream
 * (counted from the first byte of that response, interim `1xx` responses included)
 * where the problem was found, or `-1` when no single byte is to blame.
 *
 * | `code` | meaning |
 * |---|---|
 * | `empty-response` | the connection closed before any response byte |
 * | `truncated-head` | the connection closed inside the status line or header section |
 * | `truncated-body` | the connection closed before a `Content-Length` or chunked body (or its trailers) was complete |
 * | `invalid-status-line` | the status line is not `HTTP/1.x SP 3DIGIT SP reason` |
 * | `unsupported-http-version` | a well-formed version other than `HTTP/1.x` |
 * | `invalid-status-code` | the status code is not three digits in 100..999 |
 * | `unexpected-upgrade` | a `101 Switching Protocols` the client never asked for |
 * | `whitespace-after-start-line` | a line beginning with whitespace right after the status line |
 * | `obs-fold` | a trailer section whose first line begins with whitespace: a fold with no field to continue (folded fields are unfolded, RFC 9112 section 5.2) |
 * | `header-no-colon` | a header line without a colon |
 * | `header-whitespace-before-colon` | whitespace between a header name and its colon |
 * | `invalid-header-name` | an empty header name, or one that is not an RFC 9110 token |
 * | `invalid-header-value` | a control character other than HTAB in a header value |
 * | `bare-cr` | a CR not followed by LF in the head or chunk framing |
 * | `nul-byte` | a NUL byte in the head or chunk framing |
 * | `head-too-large` | the status line and headers exceed the head size limit |
 * | `too-many-headers` | more header (or trailer) fields than the limit |
 * | `invalid-content-length` | a `Content-Length` that is not a non-negative decimal integer, or above 2^53 - 1 when there is no body limit |
 * | `conflicting-content-length` | several `Content-Length` values that differ |
 * | `invalid-transfer-encoding` | an empty `Transfer-Encoding`, or `chunked` applied twice or not last |
 * | `unsupported-transfer-encoding` | a transfer coding other than exactly `chunked` |
 * | `invalid-chunk-size` | a chunk size that is empty, not hexadecimal, above 2^53 - 1, or followed by whitespace that does not lead to a `;` extension |
 * | `invalid-chunk-extension` | a chunk extension that does not follow RFC 9112 section 7.1.1 (whitespace at the end of the line included) |
 * | `chunk-header-too-large` | a chunk-size line (with its extensions) longer than the limit |
 * | `invalid-chunk-terminator` | chunk data not followed by CRLF |
 * | `trailers-too-large` | the trailer section exceeds the head size limit |
 * | `body-too-large` | more body bytes (as sent on the wire, before decoding) than the limit, or a `Content-Length` announcing more (failed as soon as the head is read); also raised by the client's decoder when the decoded body passes `maxResponseBytes` |
 * | `invalid-content-encoding` | a `Content-Encoding` body that is corrupt or truncated, or more than 5 codings stacked (raised by the client's decoder, not the parser) |
 *
 * @example Telling a malformed response apart
 * ```ts
 * import { assert } from "@std/assert";
 * import { HttpParseError } from "@seed/selectors";
 *
 * const error = new HttpParseError(
 *   "invalid-chunk-size",
 *   'Cannot parse response: invalid chunk size "zz" at byte 120',
 *   120,
 * );
 * assert(error instanceof Error);
 * assert(error.name === "HttpParseError");
 * assert(error.code === "invalid-chunk-size" && error.offset === 120);
 * ```
 */
export class HttpParseError extends Error {
  /** Stable kebab-case reason, one of the codes in the table above. */
  readonly code: HttpParseErrorCode;
  /** Byte offset in the response stream where the problem was found, or `-1`. */
  readonly offset: number;

  /**
   * Creates the error.
   *
   * @param code Stable kebab-case reason, e.g. `"invalid-chunk-size"`.
   * @param message What was wrong and what was received, for people.
   * @param offset Byte offset in the response stream, or `-1` if not applicable.
   * @param options Standard error options (`cause`).
   */
  constructor(
    code: HttpParseErrorCode,
    message: string,
    offset = -1,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "HttpParseError";
    this.code = code;
    this.offset = offset;
  }
}
