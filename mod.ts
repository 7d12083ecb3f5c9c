/**
 * **selectors for Deno**: Python's `selectors` (readiness-based I/O multiplexing)
 * on Deno's promise-based network APIs, and an HTTP/1.1 client driven by it.
 *
 * Wrap connections as pollables, register them with a selector for `EVENT_READ` or
 * `EVENT_WRITE`, and drive them from `await sel.select()` batches of `[key, mask]`,
 * with synchronous, non-blocking `recv`, `send` and `accept`.
 *
 * @example An echo round trip on one selector
 * ```ts
 * import { assert } from "@std/assert";
 * import { DefaultSelector, EVENT_READ, EVENT_WRITE, PollableConn } from "@seed/selectors";
 *
 * using server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * server.accept().then(async (peer) => {
 *   const buf = new Uint8Array(64);
 *   const n = await peer.read(buf);
 *   await peer.write(buf.subarray(0, n ?? 0));
 *   peer.close();
 * });
 *
 * using sel = new DefaultSelector();
 * using conn = PollableConn.connect(server.addr);
 * sel.register(conn, EVENT_WRITE);
 * await sel.select(5_000);
 * conn.send("hello");
 * sel.modify(conn, EVENT_READ);
 * let echoed = "";
 * for (let i = 0; i < 100; i++) {
 *   await sel.select(5_000);
 *   const data = conn.recv();
 *   if (data === null) break;
 *   echoed += new TextDecoder().decode(data);
 * }
 * sel.unregister(conn);
 * assert(echoed === "hello");
 * ```
 *
 * @module
 */
export { ALL_EVENTS, EVENT_READ, EVENT_WRITE } from "./selector/events.ts";
export { BlockingIOError, KeyError } from "./selector/errors.ts";
export type { Pollable } from "./selector/pollable.ts";
export {
  PollableConn,
  type PollableConnectOptions,
  type PollableConnectTlsOptions,
} from "./selector/pollable_conn.ts";
export {
  PollableListener,
  type PollableListenOptions,
} from "./selector/pollable_listener.ts";
export type { SelectorKey } from "./selector/selector_key.ts";
export {
  type DataArgument,
  DefaultSelector,
  Selector,
  SelectorMapping,
} from "./selector/selector.ts";
export {
  HttpParseError,
  type HttpParseErrorCode,
} from "./client/http_parse_error.ts";
export { ProxyError } from "./client/proxy_error.ts";
export type {
  HttpExchangeEnd,
  HttpExchangeInfo,
  HttpExchangeTap,
  HttpTap,
} from "./client/http_tap.ts";
export {
  HttpClient,
  type HttpClientOptions,
  type HttpClientState,
  type HttpResponse,
  redirectLocation,
} from "./client/http_client.ts";
export {
  type CrawlSource,
  fetchAll,
  type FetchAllOptions,
  fetchEach,
  type FetchEntry,
  type FetchResult,
  type FetchTimings,
  type PerOriginOptions,
  type RequestBody,
  type RequestSpec,
  type RetryOptions,
} from "./client/fetch_all.ts";
