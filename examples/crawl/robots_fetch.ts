/**
 * The crawl CLI's robots.txt fetch: one request at a time through the engine
 * (`fetchAll`), redirects followed here, and only the first bytes of the body
 * kept.
 *
 * @module
 */
import {
  fetchAll,
  type FetchAllOptions,
  type HttpExchangeTap,
  type HttpTap,
  redirectLocation,
} from "../../mod.ts";
import type { RobotsFetcher } from "./robots.ts";

/** Options of {@linkcode engineRobotsFetcher}. */
export interface RobotsFetchOptions {
  /**
   * The engine's options for every robots.txt request (transport, headers,
   * signal, retry); `redirect` and `sink` are set here.
   */
  engine: FetchAllOptions;
  /**
   * Body bytes kept; once a 2xx or an error status has sent more, the transfer
   * is ended and what was kept is the body (RFC 9309 §2.5: content after the
   * limit is ignored; at least 500 KiB).
   *
   * @default {512000}
   */
  maxBytes?: number;
  /** Called as each request goes out (each redirect hop and retry too). */
  onRequest?: (url: URL) => void;
  /**
   * Least ms between two of one fetch's requests to one origin: a retry's
   * start, or a redirect hop's back to an origin it asked already (the crawl's
   * `--delay`, which counts robots.txt requests too).
   *
   * @default {0}
   */
  delay?: number;
}

/**
 * Why a robots.txt transfer was ended: enough of it is kept (a WARC record of
 * it is marked truncated for `length`).
 */
export class EnoughKept extends Error {
  override name = "EnoughKept";
}

/**
 * A robots.txt fetch function on the engine. RFC 9309 §2.3.1.2: at least five
 * redirects, to any origin; still a 3xx after five, the caller takes robots.txt
 * as unavailable. The body is decoded and kept up to `maxBytes` as it arrives,
 * so neither a decompression bomb nor an endless body grows memory or runs into
 * the timeout. A 3xx body is read to its end (discarded past the limit), as its
 * `Location` comes only with the whole response.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { engineRobotsFetcher } from "./robots_fetch.ts";
 *
 * await using server = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   () => new Response("User-agent: *\nDisallow: /private\n" + "#".repeat(1000)),
 * );
 * const fetchRobots = engineRobotsFetcher({ engine: {}, maxBytes: 33 });
 * const { status, body } = await fetchRobots(
 *   new URL(`http://127.0.0.1:${server.addr.port}/robots.txt`),
 * );
 * assertEquals(status, 200);
 * assertEquals(new TextDecoder().decode(body as Uint8Array), "User-agent: *\nDisallow: /private\n");
 * ```
 *
 * @param options The engine's options, the byte limit, a hook per request.
 * @returns The fetch function for `RobotsCache`.
 */
export function engineRobotsFetcher(
  options: RobotsFetchOptions,
): RobotsFetcher {
  const maxBytes = options.maxBytes ?? 512_000;
  const delay = options.delay ?? 0;
  // Retries within one exchange are spaced by the engine; hops, each a crawl of
  // their own, by the starts noted below.
  const engine: FetchAllOptions = delay > 0
    ? { ...options.engine, perOrigin: { ...options.engine.perOrigin, delay } }
    : options.engine;
  return async (url) => {
    let target = url;
    const started = new Map<string, number>();
    const onRequest = (url: URL) => {
      started.set(url.origin, performance.now());
      options.onRequest?.(url);
    };
    for (let redirects = 0;; redirects++) {
      const last = started.get(target.origin);
      if (last !== undefined) {
        await pause(last + delay - performance.now(), engine.signal);
      }
      // Each exchange (a retry's too) is a request the origin's delay counts from.
      const exchange = statusTap(engine.tap, onRequest);
      const body = new KeptBody(
        maxBytes,
        () => !isRedirect(exchange.status()),
      );
      const [result] = await fetchAll([{ url: target, sink: body.writable }], {
        ...engine,
        tap: exchange.tap,
        redirect: "manual",
      });
      if (!result!.ok) {
        // The sink got bytes, so the final head, and its status, came first.
        const status = exchange.status();
        if (result!.error instanceof EnoughKept && status !== undefined) {
          return { status, body: body.kept() };
        }
        throw result!.error;
      }
      const { status } = result!.response;
      // Its first non-empty Location, as the crawl's own redirects are read
      // (repeated ones joined by headers.get() are no URL).
      const location = redirectLocation(result!.response);
      if (location !== null && redirects < 5) {
        const next = URL.parse(location, target);
        if (next !== null && /^https?:$/.test(next.protocol)) {
          target = next;
          continue;
        }
      }
      return { status, body: body.kept() };
    }
  };
}

/** Resolves after `ms`, or at once when `signal` aborts (the fetch then fails). */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
  });
}

function isRedirect(status: number | undefined): boolean {
  return status !== undefined && status >= 300 && status <= 399;
}

/**
 * The status of the last exchange opened, read from the tap's response bytes
 * (the engine tells a failed URL's error, not the head it had): `caller`'s tap,
 * if any, still gets every call.
 */
function statusTap(
  caller: HttpTap | undefined,
  onRequest: ((url: URL) => void) | undefined,
): { tap: HttpTap; status: () => number | undefined } {
  let status: number | undefined;
  const tap: HttpTap = (info) => {
    onRequest?.(new URL(info.url));
    const inner = caller?.(info);
    let head = "";
    status = undefined;
    const exchange: HttpExchangeTap = {
      response(bytes) {
        if (status === undefined && head.length < 16) {
          for (const b of bytes.subarray(0, 16 - head.length)) {
            head += String.fromCharCode(b);
          }
          const code = /^HTTP\/\d\.\d (\d{3})/.exec(head)?.[1];
          if (code !== undefined) status = Number(code);
        }
        inner?.response?.(bytes);
      },
    };
    if (inner?.request !== undefined) {
      exchange.request = (bytes) => inner.request!(bytes);
    }
    if (inner?.end !== undefined) exchange.end = (end) => inner.end!(end);
    return exchange;
  };
  return { tap, status: () => status };
}

/**
 * A sink keeping the first `maxBytes` of a body. Past them it errors with
 * {@linkcode EnoughKept}, which ends the transfer, if `mayStop()` says so,
 * else it discards the rest.
 */
class KeptBody {
  readonly writable: WritableStream<Uint8Array>;
  #chunks: Uint8Array[] = [];
  #bytes = 0;

  constructor(maxBytes: number, mayStop: () => boolean) {
    this.writable = new WritableStream<Uint8Array>({
      write: (chunk) => {
        const room = maxBytes - this.#bytes;
        if (room > 0) {
          const piece = chunk.subarray(0, room);
          this.#chunks.push(piece.slice());
          this.#bytes += piece.length;
        }
        if (chunk.length > room && mayStop()) {
          throw new EnoughKept(`Kept the first ${maxBytes} bytes`);
        }
      },
    });
  }

  kept(): Uint8Array {
    const out = new Uint8Array(this.#bytes);
    let at = 0;
    for (const chunk of this.#chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }
}
