/**
 * The error classes of the selector core.
 *
 * @module
 */

/**
 * Thrown by the synchronous I/O calls (`recv`, `send`, `accept`) when the operation
 * would have to wait, exactly like Python's `BlockingIOError` on a non-blocking
 * socket. Register the pollable with a selector and retry when it is reported ready.
 *
 * @example Nothing to read yet
 * ```ts
 * import { assert } from "@std/assert";
 * import { BlockingIOError, PollableConn, PollableListener } from "@seed/selectors";
 *
 * using listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
 * using conn = PollableConn.connect(listener.addr);
 * try {
 *   conn.recv();
 * } catch (e) {
 *   assert(e instanceof BlockingIOError);
 * }
 * ```
 */
export class BlockingIOError extends Error {
  /**
   * Creates the error.
   *
   * @param message What would have blocked.
   * @param options Standard error options (`cause`).
   */
  constructor(
    message = "Resource temporarily unavailable",
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "BlockingIOError";
  }
}

/**
 * Thrown by a selector for a pollable that is registered twice, or that is not
 * registered when it is unregistered, modified or looked up: Python's `KeyError`.
 *
 * @example Looking up an unknown pollable
 * ```ts
 * import { assert } from "@std/assert";
 * import { DefaultSelector, KeyError, PollableListener } from "@seed/selectors";
 *
 * using sel = new DefaultSelector();
 * using listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
 * try {
 *   sel.getKey(listener);
 * } catch (e) {
 *   assert(e instanceof KeyError && e.name === "KeyError");
 * }
 * ```
 */
export class KeyError extends Error {
  /**
   * Creates the error.
   *
   * @param message Which pollable and what was attempted.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "KeyError";
  }
}
