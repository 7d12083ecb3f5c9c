/**
 * The `Pollable` interface: what a selector accepts.
 *
 * @module
 */

/**
 * Something a {@linkcode Selector} can watch for readiness: a
 * {@linkcode PollableConn} or a {@linkcode PollableListener}.
 *
 * Deno has no readiness system calls, so a pollable keeps the one Deno operation
 * that can tell it something (a pending `read`, `write`, `connect` or `accept`) in
 * flight and reports when it settles. Its contract:
 *
 * - `fd` is a unique integer for the life of the process (Deno 2 exposes no
 *   resource ids); it is never reused.
 * - Readiness is level-triggered and derived from buffered state: a pollable stays
 *   ready until the condition is consumed (`recv` drains the buffer, `send` fills
 *   it, `accept` takes the waiting connection).
 * - A closed pollable is never ready.
 *
 * Only the classes of this module implement it: the selector recognises them by
 * private state and throws `TypeError` for any other object.
 *
 * @example Any pollable can be registered
 * ```ts
 * import { assert } from "@std/assert";
 * import { DefaultSelector, EVENT_READ, type Pollable, PollableListener } from "@seed/selectors";
 *
 * using sel = new DefaultSelector();
 * using listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
 * const p: Pollable = listener;
 * assert(sel.register(p, EVENT_READ).fd === p.fd);
 * ```
 */
export interface Pollable {
  /** A unique integer that identifies the pollable, like a file descriptor. */
  readonly fd: number;
  /** Whether `close()` was called. */
  readonly closed: boolean;
  /** Closes the underlying Deno resource; idempotent. */
  close(): void;
}
