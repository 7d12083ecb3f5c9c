/**
 * The error raised when an HTTP proxy refuses to carry a request.
 *
 * @module
 */

/** Anything but visible ASCII and space, which has no place in a message. */
const UNPRINTABLE = /[^\x20-\x7e]/g;
/** A reason phrase comes from the network: keep the message a readable size. */
const MAX_REASON = 100;

/**
 * Thrown when the HTTP proxy a request goes through answers with an error
 * status instead of carrying the request: a `CONNECT` that did not get a `2xx`
 * (the tunnel for an `https:` URL was never opened), or a `407 Proxy
 * Authentication Required` to an `http:` request. The origin server was never
 * reached; the request fails with this error and the other URLs go on. Any
 * other answer of the proxy to an `http:` request is that request's response
 * (Squid's `503` for an origin it cannot reach, with its `X-Squid-Error`).
 *
 * `status` is the proxy's status code and `proxy` its `host:port` (an IPv6
 * address in brackets), never its credentials. A proxy that cannot be reached
 * at all is reported as a connection error (`Deno.errors.ConnectionRefused`,
 * ...), not as this error, since nothing answered.
 *
 * @example Telling a proxy's refusal apart
 * ```ts
 * import { assert, assertEquals } from "@std/assert";
 * import { ProxyError } from "@seed/selectors";
 *
 * const error = new ProxyError(
 *   "127.0.0.1:8888",
 *   407,
 *   "Proxy Authentication Required",
 * );
 * assert(error instanceof Error);
 * assertEquals(error.name, "ProxyError");
 * assertEquals(error.status, 407);
 * assertEquals(error.proxy, "127.0.0.1:8888");
 * assertEquals(
 *   error.message,
 *   "Cannot connect through proxy 127.0.0.1:8888: it answered 407 Proxy Authentication Required",
 * );
 * ```
 */
export class ProxyError extends Error {
  /** The status code the proxy answered with, e.g. `407` or `502`. */
  readonly status: number;
  /** The proxy as `host:port` (IPv6 in brackets), without credentials. */
  readonly proxy: string;

  /**
   * Creates the error.
   *
   * @param proxy The proxy as `host:port`, without credentials.
   * @param status The status code the proxy answered with.
   * @param reason The proxy's reason phrase, shown after the status; control
   *   and non-ASCII characters are replaced by `?` and it is cut at 100
   *   characters.
   * @param options Standard error options (`cause`).
   */
  constructor(
    proxy: string,
    status: number,
    reason = "",
    options?: ErrorOptions,
  ) {
    const shown = reason.slice(0, MAX_REASON).replace(UNPRINTABLE, "?").trim();
    super(
      `Cannot connect through proxy ${proxy}: it answered ${status}${
        shown === "" ? "" : ` ${shown}`
      }`,
      options,
    );
    this.name = "ProxyError";
    this.status = status;
    this.proxy = proxy;
  }
}
