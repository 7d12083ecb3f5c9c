/**
 * How a request reaches its server when that is not a plain connection to the
 * URL's host: through an HTTP proxy (absolute-form for `http:`, a `CONNECT`
 * tunnel for `https:`) or over a Unix socket. Pure: reading the environment
 * for `proxy: "env"` is the only outside look.
 *
 * @module
 */
import { parseProxy, type ProxyConfig, proxyFromEnv } from "./_proxy.ts";

/** A `proxy` option once read: a proxy, `"env"` (chosen per URL), or none. */
export type ProxySetting = ProxyConfig | "env" | null;

/** The transport options of a request, once read. */
export interface TransportSetting {
  readonly proxy: ProxySetting;
  readonly unixSocket: string | null;
}

/** How one request reaches its server. */
export interface Route {
  /**
   * `"proxy"`: an `http:` URL sent to the proxy in absolute-form;
   * `"tunnel"`: an `https:` URL through a `CONNECT` tunnel, then TLS;
   * `"unix"`: over a Unix socket (TLS over it for `https:`).
   */
  readonly kind: "proxy" | "tunnel" | "unix";
  /** The proxy of `"proxy"` and `"tunnel"`, else `null`. */
  readonly proxy: ProxyConfig | null;
  /** The socket path of `"unix"`, else `null`. */
  readonly unixSocket: string | null;
  /**
   * The idle pool's key for conns on this route. An http proxy conn carries
   * requests to any origin, so it is keyed by the proxy alone; a tunnel and a
   * Unix socket conn serve one origin. No key equals a URL origin, the key
   * of a direct conn.
   */
  readonly key: string;
}

/**
 * Reads a `proxy` option.
 *
 * @throws {TypeError} If it is not a string, a URL or `"env"`, or the proxy URL
 *   is not one `parseProxy` takes.
 */
export function readProxy(value: unknown): ProxySetting {
  if (value === undefined || value === null) return null;
  if (value === "env") return "env";
  if (typeof value !== "string" && !(value instanceof URL)) {
    throw new TypeError(
      `Cannot use proxy: expected a URL string, a URL or "env", received ${typeof value}`,
    );
  }
  return parseProxy(value);
}

/**
 * Reads a `unixSocket` option.
 *
 * @throws {TypeError} If it is not a non-empty string without NUL.
 */
export function readUnixSocket(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "string" || value === "" || value.includes("\0")) {
    throw new TypeError(
      `Cannot use unixSocket: expected a non-empty path, received ${
        typeof value === "string" ? JSON.stringify(value) : typeof value
      }`,
    );
  }
  return value;
}

/** Reads both transport options; `undefined` when neither is set. */
export function readTransport(
  proxy: unknown,
  unixSocket: unknown,
): TransportSetting | undefined {
  if (proxy === undefined && unixSocket === undefined) return undefined;
  return { proxy: readProxy(proxy), unixSocket: readUnixSocket(unixSocket) };
}

/**
 * The route of `url`, or `null` to connect to its host directly. A Unix socket
 * wins over a proxy, as in curl (a proxy is a TCP notion). `"env"` is resolved
 * for this URL from `Deno.env`, by curl's rules (see `proxyFromEnv`).
 *
 * @throws {TypeError} If the environment names a proxy `parseProxy` refuses.
 * @throws {Deno.errors.NotCapable} For `"env"` without `--allow-env`.
 */
export function routeFor(
  url: URL,
  setting: TransportSetting,
): Route | null {
  if (setting.unixSocket !== null) {
    return {
      kind: "unix",
      proxy: null,
      unixSocket: setting.unixSocket,
      key: `unix:${setting.unixSocket} ${url.origin}`,
    };
  }
  const proxy = setting.proxy === "env"
    ? proxyFromEnv((name) => Deno.env.get(name), url)
    : setting.proxy;
  if (proxy === null) return null;
  return url.protocol === "http:"
    ? { kind: "proxy", proxy, unixSocket: null, key: `proxy:${proxy.key}` }
    : {
      kind: "tunnel",
      proxy,
      unixSocket: null,
      key: `tunnel:${proxy.key} ${url.origin}`,
    };
}
