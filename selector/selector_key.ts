/**
 * `SelectorKey`: what a selector knows about one registration.
 *
 * @module
 */
import type { Pollable } from "./pollable.ts";

/**
 * A registration, as Python's `selectors.SelectorKey` namedtuple: a frozen object.
 * `register` and `modify` return a new key; old keys are never mutated.
 *
 * @typeParam T The type of `data`. A selector whose `T` does not include
 * `undefined` requires `data` at registration; otherwise `data` may be left out
 * and is then `undefined`, which `T` allows.
 * @typeParam P The type of `fileobj`: `Pollable` unless the selector holds one
 * kind (a key returned by `register` has the type of the pollable passed in).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { DefaultSelector, EVENT_READ, PollableListener, type SelectorKey } from "@seed/selectors";
 *
 * using sel = new DefaultSelector<string>();
 * using listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
 * const key: SelectorKey<string> = sel.register(listener, EVENT_READ, "accept");
 * assert(key.fileobj === listener && key.fd === listener.fd);
 * assert(key.events === EVENT_READ && key.data === "accept");
 * assert(Object.isFrozen(key));
 * ```
 */
export interface SelectorKey<T = unknown, P extends Pollable = Pollable> {
  /** The pollable that was registered. */
  readonly fileobj: P;
  /** Its `fd`. */
  readonly fd: number;
  /** The events registered: `EVENT_READ`, `EVENT_WRITE` or both. */
  readonly events: number;
  /** The value given at registration; `undefined` if none was. */
  readonly data: T;
}
