/**
 * Content decoding (RFC 9110 section 8.4) of a complete response body, with the
 * decoded size bounded so a decompression bomb stops at the limit.
 */
import zlib from "node:zlib";
import { HttpParseError } from "./http_parse_error.ts";

/** The codings a request advertises unless the caller set `Accept-Encoding`. */
export const ACCEPT_ENCODING = "gzip, deflate, br";

type Decoder = (data: Uint8Array, options: zlib.ZlibOptions) => Uint8Array;

const DECODERS: Record<string, Decoder> = {
  gzip: zlib.gunzipSync,
  "x-gzip": zlib.gunzipSync,
  br: zlib.brotliDecompressSync as Decoder,
  deflate: inflateEither,
};

/**
 * Decodes `body` by the `Content-Encoding` header value, last coding first.
 * Unknown codings (and `identity`) leave the bytes as they are from that point
 * on, as `fetch` does.
 *
 * @param body The body as received.
 * @param contentEncoding The header value, or `null` when absent.
 * @param maxBytes The most decoded bytes allowed.
 * @returns The decoded body (or `body` itself when nothing applied).
 * @throws {HttpParseError} `invalid-content-encoding` for corrupt or truncated
 *   data, `body-too-large` past `maxBytes`.
 */
export function decodeBody(
  body: Uint8Array,
  contentEncoding: string | null,
  maxBytes: number,
): Uint8Array {
  // HEAD, 204 and 304 responses carry the header but no body to decode.
  if (contentEncoding === null || body.length === 0) return body;
  const codings = contentEncoding.toLowerCase().split(",");
  for (let i = codings.length - 1; i >= 0; i--) {
    const coding = codings[i]!.trim();
    if (coding === "" || coding === "identity") continue;
    const decode = DECODERS[coding];
    if (decode === undefined) return body;
    const options: zlib.ZlibOptions = Number.isFinite(maxBytes)
      ? { maxOutputLength: Math.max(1, maxBytes) }
      : {};
    try {
      body = decode(body, options);
    } catch (e) {
      if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
        throw new HttpParseError(
          "body-too-large",
          `Cannot decode response: the ${coding} body decodes to more than ${maxBytes} bytes`,
          -1,
          { cause: e },
        );
      }
      throw new HttpParseError(
        "invalid-content-encoding",
        `Cannot decode response: corrupt ${coding} body (${
          (e as Error).message
        })`,
        -1,
        { cause: e },
      );
    }
    if (body.length > maxBytes) {
      throw new HttpParseError(
        "body-too-large",
        `Cannot decode response: the ${coding} body decodes to more than ${maxBytes} bytes`,
      );
    }
  }
  // node:zlib hands back a Buffer; callers get a plain Uint8Array view of it.
  return Object.getPrototypeOf(body) === Uint8Array.prototype
    ? body
    : new Uint8Array(body.buffer, body.byteOffset, body.length);
}

/** `deflate` is meant to be zlib-wrapped, but some servers send raw deflate; browsers accept both. */
function inflateEither(
  data: Uint8Array,
  options: zlib.ZlibOptions,
): Uint8Array {
  // A zlib stream starts with a CMF byte whose low nibble is 8 and a check sum.
  const cmf = data[0] ?? 0, flg = data[1] ?? 0;
  const zlibWrapped = (cmf & 0x0f) === 8 && ((cmf << 8) | flg) % 31 === 0;
  return zlibWrapped
    ? zlib.inflateSync(data, options)
    : zlib.inflateRawSync(data, options);
}
