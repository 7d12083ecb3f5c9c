/**
 * Malformed HTTP/1.1 responses, each with the `HttpParseError.code` the response
 * parser gives for it. Every entry is a complete server output: serve `bytes`
 * (latin1: one char, one byte) and close the connection, and the request must
 * fail with that code. `method` is the request method when it matters.
 *
 * The parser's own tests feed each entry whole and one byte at a time, then EOF,
 * and check the code; other tests serve them over TCP.
 *
 * @module
 */

/** One malformed response and the error code it must produce. */
export interface MalformedCase {
  /** What is wrong, for test names. */
  name: string;
  /** The whole server output, latin1-encoded (char codes 0..255). */
  bytes: string;
  /** The expected `HttpParseError.code`. */
  code: string;
  /** The request method, when not `GET`. */
  method?: string;
  /** The expected `HttpParseError.offset`, when a case pins it. */
  offset?: number;
}

const OK = "HTTP/1.1 200 OK\r\n";
const CHUNKED = `${OK}Transfer-Encoding: chunked\r\n\r\n`;

/** The corpus: at least one entry per parser error code. */
export const MALFORMED: MalformedCase[] = [
  // The connection closes early.
  { name: "no bytes at all", bytes: "", code: "empty-response" },
  {
    name: "partial status line",
    bytes: "HTTP/1.1 200",
    code: "truncated-head",
  },
  { name: "partial HTTP prefix", bytes: "HTT", code: "truncated-head" },
  { name: "status line only", bytes: OK, code: "truncated-head" },
  {
    name: "status line ending in CR",
    bytes: "HTTP/1.1 200 OK\r",
    code: "truncated-head",
  },
  {
    name: "headers without the empty line",
    bytes: `${OK}Content-Length: 5\r\n`,
    code: "truncated-head",
  },
  {
    name: "headers ending in a lone CR",
    bytes: `${OK}Content-Length: 0\r\n\r`,
    code: "truncated-head",
  },
  { name: "empty lines only", bytes: "\r\n\r\n", code: "truncated-head" },
  {
    name: "interim response only",
    bytes: "HTTP/1.1 100 Continue\r\n\r\n",
    code: "truncated-head",
  },
  {
    name: "interim 103 then close",
    bytes: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
    code: "truncated-head",
  },
  {
    name: "HEAD response cut in its head",
    bytes: `${OK}Content-Length: 10\r\n`,
    code: "truncated-head",
    method: "HEAD",
  },
  {
    name: "Content-Length body cut short",
    bytes: `${OK}Content-Length: 10\r\n\r\nhello`,
    code: "truncated-body",
  },
  {
    name: "Content-Length body missing",
    bytes: `${OK}Content-Length: 5\r\n\r\n`,
    code: "truncated-body",
  },
  {
    name: "chunked body without any chunk",
    bytes: CHUNKED,
    code: "truncated-body",
  },
  {
    name: "chunk data cut short",
    bytes: `${CHUNKED}a\r\nhello`,
    code: "truncated-body",
  },
  {
    name: "chunk without its CRLF",
    bytes: `${CHUNKED}5\r\nhello`,
    code: "truncated-body",
  },
  {
    name: "chunk-size line without LF",
    bytes: `${CHUNKED}5\r\nhello\r\n5`,
    code: "truncated-body",
  },
  {
    name: "missing last chunk",
    bytes: `${CHUNKED}5\r\nhello\r\n`,
    code: "truncated-body",
  },
  {
    name: "last chunk without the final CRLF",
    bytes: `${CHUNKED}5\r\nhello\r\n0\r\n`,
    code: "truncated-body",
  },
  {
    name: "trailer section cut short",
    bytes: `${CHUNKED}0\r\nX-Trailer: 1\r\n`,
    code: "truncated-body",
  },

  // Status line.
  {
    name: "not HTTP",
    bytes: "ICY 200 OK\r\n\r\n",
    code: "invalid-status-line",
  },
  {
    name: "SSH banner",
    bytes: "SSH-2.0-OpenSSH_9.6\r\n",
    code: "invalid-status-line",
  },
  {
    name: "TLS alert bytes",
    bytes: "\x15\x03\x03\x00\x02\x02\x46",
    code: "invalid-status-line",
  },
  {
    name: "lower-case protocol name",
    bytes: "http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    code: "invalid-status-line",
  },
  {
    name: "leading space",
    bytes: " HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    code: "invalid-status-line",
  },
  {
    name: "status line shorter than HTTP/",
    bytes: "HTTP\r\nContent-Length: 0\r\n\r\n",
    code: "invalid-status-line",
  },
  {
    name: "CR inside HTTP/",
    bytes: "HT\rTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    code: "bare-cr",
  },
  {
    name: "non-digit major version",
    bytes: "HTTP/x.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    code: "invalid-status-line",
    offset: 5,
  },
  {
    name: "non-digit minor version",
    bytes: "HTTP/1.x 200 OK\r\nContent-Length: 0\r\n\r\n",
    code: "invalid-status-line",
    offset: 7,
  },
  {
    name: "version without its dot",
    bytes: "HTTP/1-1 200 OK\r\nContent-Length: 0\r\n\r\n",
    code: "invalid-status-line",
    offset: 6,
  },
  {
    name: "colon as minor version",
    bytes: "HTTP/1.: 200 OK\r\nContent-Length: 0\r\n\r\n",
    code: "invalid-status-line",
    offset: 7,
  },
  {
    name: "version without minor",
    bytes: "HTTP/1 200 OK\r\nContent-Length: 0\r\n\r\n",
    code: "invalid-status-line",
  },
  {
    name: "two-digit minor version",
    bytes: "HTTP/1.10 200 OK\r\nContent-Length: 0\r\n\r\n",
    code: "invalid-status-line",
    offset: 8,
  },
  {
    name: "no status code",
    bytes: "HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    code: "invalid-status-line",
  },
  {
    name: "control character in reason",
    bytes: "HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n",
    code: "invalid-status-line",
  },
  {
    name: "DEL in reason",
    bytes: "HTTP/1.1 200 OK\x7f\r\nContent-Length: 0\r\n\r\n",
    code: "invalid-status-line",
  },
  {
    name: "garbage after interim response",
    bytes: "HTTP/1.1 100 Continue\r\n\r\nHELLO\r\n\r\n",
    code: "invalid-status-line",
  },
  {
    name: "HTTP/2.0 status line",
    bytes: "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
    code: "unsupported-http-version",
  },
  {
    name: "HTTP/0.9 status line",
    bytes: "HTTP/0.9 200 OK\r\nContent-Length: 0\r\n\r\n",
    code: "unsupported-http-version",
  },
  {
    name: "HTTP/9.1 status line",
    bytes: "HTTP/9.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    code: "unsupported-http-version",
  },
  {
    name: "two spaces before status code",
    bytes: "HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n",
    code: "invalid-status-code",
  },
  {
    name: "two-digit status code",
    bytes: "HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
    code: "invalid-status-code",
    offset: 11,
  },
  {
    name: "colon in status code",
    bytes: "HTTP/1.1 2:0 OK\r\nContent-Length: 0\r\n\r\n",
    code: "invalid-status-code",
    offset: 10,
  },
  {
    name: "four-digit status code",
    bytes: "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
    code: "invalid-status-code",
  },
  {
    name: "status code glued to reason",
    bytes: "HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n",
    code: "invalid-status-code",
  },
  {
    name: "non-numeric status code",
    bytes: "HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n",
    code: "invalid-status-code",
  },
  {
    name: "status code below 100",
    bytes: "HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n",
    code: "invalid-status-code",
    offset: 9,
  },
  {
    name: "status code 000",
    bytes: "HTTP/1.1 000 Zero\r\nContent-Length: 0\r\n\r\n",
    code: "invalid-status-code",
  },
  {
    name: "101 without an upgrade request",
    bytes:
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    code: "unexpected-upgrade",
    offset: 9,
  },

  // Header lines.
  {
    name: "control character in an obs-fold continuation",
    bytes: `${OK}X-A: 1\r\n a\x01b\r\nContent-Length: 0\r\n\r\n`,
    code: "invalid-header-value",
  },
  {
    name: "NUL in an obs-fold continuation",
    bytes: `${OK}X-A: 1\r\n a\0b\r\nContent-Length: 0\r\n\r\n`,
    code: "nul-byte",
  },
  {
    name: "bare CR in an obs-fold continuation",
    bytes: `${OK}X-A: 1\r\n a\rb\r\nContent-Length: 0\r\n\r\n`,
    code: "bare-cr",
  },
  {
    name: "whitespace line after the status line",
    bytes: `${OK} X-A: 1\r\nContent-Length: 0\r\n\r\n`,
    code: "whitespace-after-start-line",
  },
  {
    name: "header line without colon",
    bytes: `${OK}NoColonHere\r\nContent-Length: 0\r\n\r\n`,
    code: "header-no-colon",
  },
  {
    name: "header name and value without colon",
    bytes: `${OK}X-A 1\r\nContent-Length: 0\r\n\r\n`,
    code: "header-no-colon",
  },
  {
    name: "space before colon",
    bytes: `${OK}Content-Length : 0\r\n\r\n`,
    code: "header-whitespace-before-colon",
  },
  {
    name: "tab before colon",
    bytes: `${OK}X-A\t: 1\r\nContent-Length: 0\r\n\r\n`,
    code: "header-whitespace-before-colon",
  },
  {
    name: "empty header name",
    bytes: `${OK}: empty\r\nContent-Length: 0\r\n\r\n`,
    code: "invalid-header-name",
  },
  {
    name: "parenthesis in header name",
    bytes: `${OK}X(A): 1\r\nContent-Length: 0\r\n\r\n`,
    code: "invalid-header-name",
  },
  {
    name: "space inside header name",
    bytes: `${OK}X A: 1\r\nContent-Length: 0\r\n\r\n`,
    code: "invalid-header-name",
  },
  {
    name: "non-ASCII header name",
    bytes: `${OK}\xdcmlaut: 1\r\nContent-Length: 0\r\n\r\n`,
    code: "invalid-header-name",
  },
  {
    name: "control character in header value",
    bytes: `${OK}X-A: a\x01b\r\nContent-Length: 0\r\n\r\n`,
    code: "invalid-header-value",
  },
  {
    name: "DEL in header value",
    bytes: `${OK}X-A: a\x7fb\r\nContent-Length: 0\r\n\r\n`,
    code: "invalid-header-value",
  },
  {
    name: "header value of DEL alone",
    bytes: `${OK}X-A: \x7f\r\nContent-Length: 0\r\n\r\n`,
    code: "invalid-header-value",
  },
  {
    name: "escape character in header value",
    bytes: `${OK}X-A: \x1b[31m\r\nContent-Length: 0\r\n\r\n`,
    code: "invalid-header-value",
  },
  {
    name: "NUL in header value",
    bytes: `${OK}X-A: a\0b\r\nContent-Length: 0\r\n\r\n`,
    code: "nul-byte",
  },
  {
    name: "NUL in header name",
    bytes: `${OK}X\0A: 1\r\nContent-Length: 0\r\n\r\n`,
    code: "nul-byte",
  },
  {
    name: "NUL in reason phrase",
    bytes: "HTTP/1.1 200 O\0K\r\nContent-Length: 0\r\n\r\n",
    code: "nul-byte",
  },
  {
    name: "bare CR in header value",
    bytes: `${OK}X-A: a\rb\r\nContent-Length: 0\r\n\r\n`,
    code: "bare-cr",
  },
  {
    name: "bare CR splitting headers",
    bytes: `${OK}X-A: 1\rContent-Length: 0\r\n\r\n`,
    code: "bare-cr",
  },
  {
    name: "CR CR LF line ending",
    bytes: `${OK}X-A: 1\r\r\nContent-Length: 0\r\n\r\n`,
    code: "bare-cr",
  },
  {
    name: "CR CR LF ending the head",
    bytes: `${OK}Content-Length: 0\r\n\r\r\n`,
    code: "bare-cr",
  },
  {
    name: "bare CR in reason phrase",
    bytes: "HTTP/1.1 200 O\rK\r\nContent-Length: 0\r\n\r\n",
    code: "bare-cr",
  },
  {
    name: "head over 64 KiB",
    bytes: `${OK}X-Big: ${"a".repeat(70_000)}\r\nContent-Length: 0\r\n\r\n`,
    code: "head-too-large",
  },
  {
    name: "head over 64 KiB in many fields",
    bytes: `${OK}${"X-Many: 0123456789abcdef\r\n".repeat(99)}X-Big: ${
      "b".repeat(64_000)
    }\r\n\r\n`,
    code: "head-too-large",
  },
  {
    name: "head line without LF over 64 KiB",
    bytes: `${OK}X-Big: ${"c".repeat(70_000)}`,
    code: "head-too-large",
  },
  {
    name: "101 header fields",
    bytes: `${OK}${"X-Many: 1\r\n".repeat(100)}Content-Length: 0\r\n\r\n`,
    code: "too-many-headers",
  },

  // Content-Length.
  {
    name: "non-numeric Content-Length",
    bytes: `${OK}Content-Length: abc\r\n\r\n`,
    code: "invalid-content-length",
  },
  {
    name: "Content-Length with a colon after its digits",
    bytes: `${OK}Content-Length: 1:\r\n\r\nhello`,
    code: "invalid-content-length",
  },
  {
    // Not a head to act on: a client that follows it has read a response
    // whose framing it cannot know.
    name: "invalid Content-Length on a redirect",
    bytes:
      "HTTP/1.1 302 Found\r\nLocation: /good\r\nContent-Length: 1x\r\n\r\n",
    code: "invalid-content-length",
  },
  {
    name: "negative Content-Length",
    bytes: `${OK}Content-Length: -1\r\n\r\n`,
    code: "invalid-content-length",
  },
  {
    name: "Content-Length with a plus sign",
    bytes: `${OK}Content-Length: +5\r\n\r\nhello`,
    code: "invalid-content-length",
  },
  {
    name: "fractional Content-Length",
    bytes: `${OK}Content-Length: 5.0\r\n\r\nhello`,
    code: "invalid-content-length",
  },
  {
    name: "hexadecimal Content-Length",
    bytes: `${OK}Content-Length: 0x5\r\n\r\nhello`,
    code: "invalid-content-length",
  },
  {
    name: "empty Content-Length",
    bytes: `${OK}Content-Length:\r\n\r\n`,
    code: "invalid-content-length",
  },
  {
    name: "Content-Length with inner space",
    bytes: `${OK}Content-Length: 1 2\r\n\r\nhello world!`,
    code: "invalid-content-length",
  },
  {
    name: "Content-Length above 2^53",
    bytes: `${OK}Content-Length: 99999999999999999999\r\n\r\n`,
    code: "invalid-content-length",
  },
  {
    name: "Content-Length list with an empty element",
    bytes: `${OK}Content-Length: 5,\r\n\r\nhello`,
    code: "invalid-content-length",
  },
  {
    name: "invalid then valid Content-Length",
    bytes: `${OK}Content-Length: five\r\nContent-Length: 5\r\n\r\nhello`,
    code: "invalid-content-length",
  },
  {
    name: "valid then invalid Content-Length",
    bytes: `${OK}Content-Length: 5\r\nContent-Length: five\r\n\r\nhello`,
    code: "invalid-content-length",
  },
  {
    name: "obs-fold making Content-Length a list of words",
    bytes: `${OK}Content-Length: 5\r\n 5\r\n\r\nhello`,
    code: "invalid-content-length",
  },
  {
    name: "two different Content-Length fields",
    bytes: `${OK}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`,
    code: "conflicting-content-length",
  },
  {
    name: "Content-Length list of different values",
    bytes: `${OK}Content-Length: 5, 6\r\n\r\nhello!`,
    code: "conflicting-content-length",
  },

  // Transfer-Encoding.
  {
    name: "gzip transfer coding",
    bytes: `${OK}Transfer-Encoding: gzip\r\n\r\n\x1f\x8b`,
    code: "unsupported-transfer-encoding",
  },
  {
    name: "gzip then chunked transfer codings",
    bytes: `${OK}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
    code: "unsupported-transfer-encoding",
  },
  {
    name: "identity transfer coding",
    bytes: `${OK}Transfer-Encoding: identity\r\n\r\nbody`,
    code: "unsupported-transfer-encoding",
  },
  {
    name: "misspelled chunked",
    bytes: `${OK}Transfer-Encoding: chunkedx\r\n\r\n0\r\n\r\n`,
    code: "unsupported-transfer-encoding",
  },
  {
    name: "chunked with a parameter",
    bytes: `${OK}Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n`,
    code: "unsupported-transfer-encoding",
  },
  {
    name: "obs-fold making Transfer-Encoding one unknown coding",
    bytes: `${OK}Transfer-Encoding: chunked\r\n gzip\r\n\r\n0\r\n\r\n`,
    code: "unsupported-transfer-encoding",
  },
  {
    name: "chunked not last",
    bytes: `${OK}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`,
    code: "invalid-transfer-encoding",
  },
  {
    name: "chunked twice",
    bytes: `${OK}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n`,
    code: "invalid-transfer-encoding",
  },
  {
    name: "chunked then gzip in two fields",
    bytes:
      `${OK}Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n`,
    code: "invalid-transfer-encoding",
  },
  {
    name: "empty Transfer-Encoding",
    bytes: `${OK}Transfer-Encoding:\r\n\r\n0\r\n\r\n`,
    code: "invalid-transfer-encoding",
  },

  // Chunked framing.
  {
    name: "non-hex chunk size",
    bytes: `${CHUNKED}zz\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-size",
  },
  {
    name: "chunk size g, one past f",
    bytes: `${CHUNKED}g\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-size",
  },
  {
    name: "chunk size with a colon, one past 9",
    bytes: `${CHUNKED}5:\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-size",
  },
  {
    name: "chunk size with byte 0xff",
    bytes: `${CHUNKED}5\xff\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-size",
  },
  {
    name: "empty chunk size",
    bytes: `${CHUNKED}\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-size",
  },
  {
    name: "negative chunk size",
    bytes: `${CHUNKED}-5\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-size",
  },
  {
    name: "0x-prefixed chunk size",
    bytes: `${CHUNKED}0x5\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-size",
  },
  {
    name: "chunk size with inner space",
    bytes: `${CHUNKED}5 5\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-size",
  },
  {
    name: "spaces after chunk size",
    bytes: `${CHUNKED}5  \r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-size",
  },
  {
    name: "tab after chunk size",
    bytes: `${CHUNKED}5\t\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-size",
  },
  {
    name: "space after the last chunk size",
    bytes: `${CHUNKED}5\r\nhello\r\n0 \r\n\r\n`,
    code: "invalid-chunk-size",
  },
  {
    name: "leading space before chunk size",
    bytes: `${CHUNKED} 5\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-size",
  },
  {
    name: "chunk size of 2^53",
    bytes: `${CHUNKED}20000000000000\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-size",
  },
  {
    name: "chunk size far beyond 2^64",
    bytes: `${CHUNKED}${"f".repeat(40)}\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-size",
  },
  {
    name: "chunk size of 2^53 - 1, cut short",
    bytes: `${CHUNKED}1fffffffffffff\r\nhello`,
    code: "truncated-body",
  },
  {
    name: "empty chunk extension",
    bytes: `${CHUNKED}5;\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-extension",
  },
  {
    name: "chunk extension without a name",
    bytes: `${CHUNKED}5;=x\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-extension",
  },
  {
    name: "chunk extension with a space in its name",
    bytes: `${CHUNKED}5;a b\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-extension",
  },
  {
    name: "space after a chunk extension value",
    bytes: `${CHUNKED}5;a=b \r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-extension",
  },
  {
    name: "space after a chunk extension name",
    bytes: `${CHUNKED}5;a\t\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-extension",
  },
  {
    name: "chunk extensions separated by a comma",
    bytes: `${CHUNKED}5;a=b,c\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-extension",
  },
  {
    name: "chunk extension with an empty value",
    bytes: `${CHUNKED}5;a=\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-extension",
  },
  {
    name: "chunk extension ending in a backslash inside its quote",
    bytes: `${CHUNKED}5;a="b\\\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-extension",
  },
  {
    name: "chunk extension with a control character inside its quote",
    bytes: `${CHUNKED}5;a="b\x01"\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-extension",
  },
  {
    name: "chunk extension with an unterminated quote",
    bytes: `${CHUNKED}5;a="b\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-extension",
  },
  {
    name: "chunk extension escaping a control character",
    bytes: `${CHUNKED}5;a="\\\x01"\r\nhello\r\n0\r\n\r\n`,
    code: "invalid-chunk-extension",
  },
  {
    name: "chunk-size line over 8 KiB",
    bytes: `${CHUNKED}5${";a=b".repeat(3000)}\r\nhello\r\n0\r\n\r\n`,
    code: "chunk-header-too-large",
  },
  {
    name: "NUL in chunk-size line",
    bytes: `${CHUNKED}5\0\r\nhello\r\n0\r\n\r\n`,
    code: "nul-byte",
  },
  {
    name: "bare CR in chunk-size line",
    bytes: `${CHUNKED}5\rX\r\nhello\r\n0\r\n\r\n`,
    code: "bare-cr",
  },
  {
    name: "chunk data longer than its size",
    bytes: `${CHUNKED}5\r\nhelloXX\r\n0\r\n\r\n`,
    code: "invalid-chunk-terminator",
  },
  {
    name: "chunk data without CRLF before the next chunk",
    bytes: `${CHUNKED}5\r\nhello0\r\n\r\n`,
    code: "invalid-chunk-terminator",
  },
  {
    name: "chunk data followed by CR and garbage",
    bytes: `${CHUNKED}5\r\nhello\rX\n0\r\n\r\n`,
    code: "invalid-chunk-terminator",
  },
  {
    name: "whitespace-preceded first trailer line",
    bytes: `${CHUNKED}0\r\n X-T: 1\r\n\r\n`,
    code: "obs-fold",
  },
  {
    name: "trailer line without colon",
    bytes: `${CHUNKED}0\r\nnot a trailer\r\n\r\n`,
    code: "header-no-colon",
  },
  {
    name: "NUL in trailer value",
    bytes: `${CHUNKED}0\r\nX-T: a\0\r\n\r\n`,
    code: "nul-byte",
  },
  {
    name: "trailer section over 64 KiB",
    bytes: `${CHUNKED}0\r\nX-T: ${"t".repeat(70_000)}\r\n\r\n`,
    code: "trailers-too-large",
  },
  {
    name: "101 trailer fields",
    bytes: `${CHUNKED}0\r\n${"X-T: 1\r\n".repeat(101)}\r\n`,
    code: "too-many-headers",
  },

  // Framing errors after an interim response.
  {
    name: "invalid Content-Length after 100 Continue",
    bytes:
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n",
    code: "invalid-content-length",
  },
];

/**
 * Responses RFC 9112 lets a user agent read although they are not well formed,
 * and well-formed ones at the edges of the grammar and of the default limits,
 * with what the parser must make of them. Serve `bytes` and close.
 */
export interface AcceptedCase {
  /** What is unusual, for test names. */
  name: string;
  /** The whole server output, latin1-encoded (char codes 0..255). */
  bytes: string;
  status: number;
  /** The reason phrase, when a case pins it. */
  statusText?: string;
  /** Fields that must have exactly these values (`Headers.get`). */
  headers: Record<string, string>;
  /** Trailer fields that must have exactly these values, for a chunked body. */
  trailers?: Record<string, string>;
  /** The body, latin1. */
  body: string;
}

/** The tolerated corpus. */
export const ACCEPTED: AcceptedCase[] = [
  // RFC 9112 section 5.2: a user agent replaces each obs-fold with SP.
  {
    name: "obs-fold with spaces",
    bytes: `${OK}X-A: 1\r\n  continued\r\nContent-Length: 0\r\n\r\n`,
    status: 200,
    headers: { "x-a": "1 continued", "content-length": "0" },
    body: "",
  },
  {
    name: "obs-fold with a tab",
    bytes: `${OK}Content-Length: 0\r\nX-A: 1\r\n\tcontinued\r\n\r\n`,
    status: 200,
    headers: { "x-a": "1 continued", "content-length": "0" },
    body: "",
  },
  {
    name: "obs-fold over several lines with whitespace around each fold",
    bytes:
      `${OK}X-A: a \r\n \t b\t\r\n  c  \r\nX-B: 2\r\nContent-Length: 2\r\n\r\nok`,
    status: 200,
    headers: { "x-a": "a b c", "x-b": "2" },
    body: "ok",
  },
  {
    name: "obs-fold of a blank continuation",
    bytes: `${OK}X-A: a\r\n   \r\nContent-Length: 0\r\n\r\n`,
    status: 200,
    headers: { "x-a": "a" },
    body: "",
  },
  {
    name: "obs-fold onto an empty value",
    bytes: `${OK}X-A:\r\n v\r\nContent-Length: 0\r\n\r\n`,
    status: 200,
    headers: { "x-a": "v" },
    body: "",
  },
  {
    name: "obs-fold with bare LF line endings",
    bytes: `${OK}X-A: 1\n 2\nContent-Length: 0\n\n`,
    status: 200,
    headers: { "x-a": "1 2" },
    body: "",
  },
  {
    name: "obs-fold in Content-Length",
    bytes: `${OK}Content-Length:\r\n 5\r\n\r\nhello`,
    status: 200,
    headers: { "content-length": "5" },
    body: "hello",
  },
  {
    name: "obs-fold in Transfer-Encoding",
    bytes: `${OK}Transfer-Encoding:\r\n\tchunked\r\n\r\n2\r\nok\r\n0\r\n\r\n`,
    status: 200,
    headers: { "transfer-encoding": "chunked" },
    trailers: {},
    body: "ok",
  },
  {
    name: "obs-fold in Connection",
    bytes: `${OK}Connection: keep-alive,\r\n close\r\n\r\nuntil close`,
    status: 200,
    headers: { connection: "keep-alive, close" },
    body: "until close",
  },
  {
    name: "obs-fold in a trailer field",
    bytes: `${CHUNKED}0\r\nX-T: 1\r\n 2\r\nX-U: 3\r\n\r\n`,
    status: 200,
    headers: { "transfer-encoding": "chunked" },
    trailers: { "x-t": "1 2", "x-u": "3" },
    body: "",
  },
  {
    name: "obs-fold in the last field of an interim response",
    bytes:
      "HTTP/1.1 103 Early Hints\r\nLink: </a.css>;\r\n rel=preload\r\n\r\n" +
      `${OK}Content-Length: 2\r\n\r\nok`,
    status: 200,
    headers: { "content-length": "2" },
    body: "ok",
  },

  // Well formed, at the edges of the grammar: each byte class's first and last
  // member, and each default limit reached but not passed.
  {
    name: "interim 199 before the final response",
    bytes:
      `HTTP/1.1 199 Misc\r\nX-A: 1\r\n\r\n${OK}Content-Length: 2\r\n\r\nok`,
    status: 200,
    headers: { "content-length": "2" },
    body: "ok",
  },
  {
    name: "100 Continue before a chunked response",
    bytes: `HTTP/1.1 100 Continue\r\n\r\n${CHUNKED}2\r\nok\r\n0\r\n\r\n`,
    status: 200,
    headers: { "transfer-encoding": "chunked" },
    trailers: {},
    body: "ok",
  },
  {
    name: "reason phrases of two letters other than OK",
    bytes: "HTTP/1.1 200 Ok\r\nContent-Length: 0\r\n\r\n",
    status: 200,
    statusText: "Ok",
    headers: {},
    body: "",
  },
  ...["NK", "OJ", "OL"].map((reason) => ({
    name: `reason phrase ${reason}`,
    bytes: `HTTP/1.1 200 ${reason}\r\nContent-Length: 0\r\n\r\n`,
    status: 200,
    statusText: reason,
    headers: {},
    body: "",
  })),
  {
    name: "~ and obs-text 0xff in a reason phrase and a folded value",
    bytes:
      "HTTP/1.1 200 ~\xff\r\nX-A: a\r\n ~\xff\r\nContent-Length: 0\r\n\r\n",
    status: 200,
    statusText: "~\xff",
    headers: { "x-a": "a ~\xff" },
    body: "",
  },
  {
    name: "field names with Z and z",
    bytes: `${OK}X-Zz: 1\r\nzZ: 2\r\nContent-Length: 0\r\n\r\n`,
    status: 200,
    headers: { "x-zz": "1", "zz": "2" },
    body: "",
  },
  {
    name: "a field named one letter off Content-Length, which frames nothing",
    bytes: `${OK}Xontent-Length: 100\r\n\r\nok`,
    status: 200,
    headers: { "xontent-length": "100" },
    body: "ok",
  },
  {
    name: "multi-digit chunk sizes with every hex digit's edge in both cases",
    bytes: `${CHUNKED}10\r\n${"a".repeat(16)}\r\n9\r\n${"b".repeat(9)}\r\n` +
      `Af\r\n${"c".repeat(175)}\r\naF\r\n${"d".repeat(175)}\r\n0\r\n\r\n`,
    status: 200,
    headers: {},
    trailers: {},
    body: `${"a".repeat(16)}${"b".repeat(9)}${"c".repeat(175)}${
      "d".repeat(175)
    }`,
  },
  {
    name: "chunked body with bare LF line endings after a shorter header line",
    bytes:
      `HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nDate: x\n\n5\nhello\n0\n\n`,
    status: 200,
    headers: { date: "x" },
    trailers: {},
    body: "hello",
  },
  {
    name: "chunk extension with an empty quoted value",
    bytes: `${CHUNKED}5;a=""\r\nhello\r\n0\r\n\r\n`,
    status: 200,
    headers: {},
    trailers: {},
    body: "hello",
  },
  {
    name: "Transfer-Encoding chunked with empty list elements",
    bytes: `${OK}Transfer-Encoding: chunked, ,\r\n\r\n2\r\nok\r\n0\r\n\r\n`,
    status: 200,
    headers: {},
    trailers: {},
    body: "ok",
  },
  {
    name: "chunk-size line of exactly 8 KiB",
    bytes: `${CHUNKED}5;a=${"b".repeat(8186)}\r\nhello\r\n0\r\n\r\n`,
    status: 200,
    headers: {},
    trailers: {},
    body: "hello",
  },
  {
    name: "100 header fields",
    bytes: `${OK}${"X-Many: 1\r\n".repeat(99)}Content-Length: 0\r\n\r\n`,
    status: 200,
    headers: { "content-length": "0" },
    body: "",
  },
  {
    name: "head of exactly 64 KiB",
    bytes: `${OK}X-Big: ${
      "a".repeat(65_536 - 47)
    }\r\nContent-Length: 0\r\n\r\n`,
    status: 200,
    headers: { "content-length": "0" },
    body: "",
  },
];
