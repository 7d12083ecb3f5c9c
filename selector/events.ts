/**
 * Readiness events, as in Python's `selectors` module. They are bit flags: combine
 * them with `|` to register for both.
 *
 * @module
 */

/**
 * The pollable has data to read, reached end of stream, failed, or (for a listener)
 * has a connection waiting to be accepted.
 *
 * @example Register for reading
 * ```ts
 * import { assert } from "@std/assert";
 * import { DefaultSelector, EVENT_READ, PollableListener } from "@seed/selectors";
 *
 * using sel = new DefaultSelector();
 * using listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
 * const key = sel.register(listener, EVENT_READ);
 * assert(key.events === EVENT_READ);
 * ```
 */
export const EVENT_READ = 1;

/**
 * The pollable is connected (or its connection failed) and its write buffer has
 * room: `send()` will accept at least one byte.
 *
 * @example Wait until a connection is established
 * ```ts
 * import { assert } from "@std/assert";
 * import { DefaultSelector, EVENT_WRITE, PollableConn, PollableListener } from "@seed/selectors";
 *
 * using sel = new DefaultSelector();
 * using listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
 * using conn = PollableConn.connect(listener.addr);
 * sel.register(conn, EVENT_WRITE);
 * const [first] = await sel.select(5_000);
 * assert(first?.[0].fileobj === conn && first[1] === EVENT_WRITE);
 * ```
 */
export const EVENT_WRITE = 2;

/**
 * Every event bit a selector accepts: `EVENT_READ | EVENT_WRITE`.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { ALL_EVENTS, EVENT_READ, EVENT_WRITE } from "@seed/selectors";
 *
 * assert(ALL_EVENTS === (EVENT_READ | EVENT_WRITE));
 * ```
 */
export const ALL_EVENTS: number = EVENT_READ | EVENT_WRITE;
