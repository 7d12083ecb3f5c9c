/**
 * `Selector`: Python's `selectors.DefaultSelector` over Deno pollables.
 *
 * @module
 */
import { KeyError } from "./errors.ts";
import { ALL_EVENTS, EVENT_READ, EVENT_WRITE } from "./events.ts";
import type { Pollable } from "./pollable.ts";
import type { SelectorKey } from "./selector_key.ts";
import { nextTurn, waited } from "./_immediate.ts";
import {
  isPollable,
  kReady,
  kResume,
  kUnwatch,
  kWatch,
  type PollableInternals,
  type Watcher,
} from "./_pollable.ts";
import { describe } from "./_util.ts";

const mapGet = Map.prototype.get;
const mapSet = Map.prototype.set;
const mapDelete = Map.prototype.delete;
const mapClear = Map.prototype.clear;
const mapHas = Map.prototype.has;
/**
 * The timer to arm for a wait of `remaining` ms (rounded up: timers may fire a
 * fraction early): its 4 leading bits, the loop arming the next for what is
 * left. Deno 2.9.6's timers keep a list per distinct duration until that
 * duration has passed, cleared or not; a wait counting down to a deadline by
 * the millisecond made one per millisecond of it (a 30 s request timeout:
 * ~30,000 lists, ~2 MiB). 4 bits make at most 8 durations an octave (~250),
 * and a wait ends in 2 or 3 timers: with 1 bit (powers of two, ~31 durations)
 * each halving woke the loop, a `select(1000)` ~10 times. Longer than 2^30 ms,
 * a timer would fire after 1 ms (over 2^31 - 1): the steps stay below.
 */
function timerStep(remaining: number): number {
  const ms = Math.min(Math.ceil(remaining), 2 ** 30);
  const unit = 2 ** Math.max(0, Math.floor(Math.log2(ms)) - 3);
  return Math.floor(ms / unit) * unit;
}

/**
 * The live, read-only view of a selector's registrations that
 * {@linkcode Selector.getMap} returns: a `Map` from pollable to key whose mutating
 * methods throw `TypeError`. As Python's `get_map()`, `get` and `has` also take
 * a pollable's `fd`.
 *
 * @typeParam T The type of the keys' `data`.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { DefaultSelector, EVENT_READ, PollableListener } from "@seed/selectors";
 *
 * using sel = new DefaultSelector();
 * const map = sel.getMap();
 * using listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
 * sel.register(listener, EVENT_READ);
 * assert(map.size === 1 && map.get(listener)?.fd === listener.fd);
 * assert(map.get(listener.fd)?.fileobj === listener && map.has(listener.fd));
 * try {
 *   map.clear();
 * } catch (e) {
 *   assert(e instanceof TypeError);
 * }
 * ```
 */
export class SelectorMapping<T = unknown, P extends Pollable = Pollable>
  extends Map<P, SelectorKey<T, P>> {
  readonly #byFd: ReadonlyMap<number, Pollable> | undefined;

  /**
   * An empty view; a selector makes its own.
   *
   * @param byFd The selector's registered pollables by `fd`, for lookups by fd.
   */
  constructor(byFd?: ReadonlyMap<number, Pollable>) {
    super();
    this.#byFd = byFd;
  }

  /**
   * The key of a registered pollable, given itself or its `fd`.
   *
   * @param key A pollable, or its `fd`.
   */
  override get(key: P | number): SelectorKey<T, P> | undefined {
    const p = typeof key === "number" ? this.#byFd?.get(key) : key;
    return p === undefined ? undefined : mapGet.call(this, p);
  }

  /**
   * Whether a pollable, given itself or its `fd`, is registered.
   *
   * @param key A pollable, or its `fd`.
   */
  override has(key: P | number): boolean {
    const p = typeof key === "number" ? this.#byFd?.get(key) : key;
    return p !== undefined && mapHas.call(this, p);
  }

  /**
   * Always throws: the view is read-only.
   *
   * @throws {TypeError}
   */
  override set(_key: P, _value: SelectorKey<T, P>): this {
    throw new TypeError("Cannot set: the selector map is read-only");
  }

  /**
   * Always throws: the view is read-only.
   *
   * @throws {TypeError}
   */
  override delete(_key: P): boolean {
    throw new TypeError("Cannot delete: the selector map is read-only");
  }

  /**
   * Always throws: the view is read-only.
   *
   * @throws {TypeError}
   */
  override clear(): void {
    throw new TypeError("Cannot clear: the selector map is read-only");
  }
}

/**
 * Readiness-based I/O multiplexing with the API of Python's `selectors` module:
 * register pollables with the events they wait for, then `await select()` to learn
 * which are ready.
 *
 * Guarantees:
 * - **Level-triggered**: a key is reported by every `select()` for as long as it is
 *   ready (reading part of the buffered data leaves it ready).
 * - A batch holds each ready key **at most once**, with a mask that is a non-empty
 *   subset of its registered events. Closed pollables are never reported.
 * - `register`, `modify`, `unregister` and `close` may be called while a `select()`
 *   is pending and take effect for it: a key that becomes ready wakes it.
 * - **Cost**: a `select()` costs in proportion to the keys that became ready since
 *   the last one, not to the keys registered: pollables tell the selector when they
 *   may have become ready, and `select()` only looks at those. Memory does not grow
 *   with the number of calls.
 * - **Fairness**: every `select()` lets at least one turn of the event loop run
 *   before it resolves: one that finds keys ready when it is called, a poll
 *   (`timeout <= 0`), one after {@linkcode Selector.wakeup}, and one with nothing
 *   registered yield a turn first, so finished I/O and timers get in even when some
 *   key is always ready and `while (true) await sel.select()` never starves them;
 *   one that finds nothing ready waits, which lets them in anyway (and when a
 *   call, `wakeup()` or `register()` say, ends the wait, it yields a turn too:
 *   the call may come from the very turn the wait began in).
 * - {@linkcode Selector.wakeup} ends the pending `select()` (or, with none pending,
 *   the next one) after that one turn, with whatever is ready.
 *
 * Not guaranteed: how readiness that arrives within one turn is batched.
 *
 * Differences from Python: `timeout` is in **milliseconds**; with nothing registered
 * and no timeout `select()` resolves `[]` after one turn of the event loop (Python
 * would block forever); only one `select()` may be pending at a time.
 *
 * Typing: with `T` that does not include `undefined` (a callback type, say),
 * `register` and `modify` require `data`, so `key.data` is always a `T`; with the
 * default `unknown` or a `T | undefined`, `data` may be left out and `key.data` is
 * typed to allow `undefined`. `P` narrows what `key.fileobj` is: a selector of
 * `PollableConn`s only is a `Selector<T, PollableConn>`; with the default
 * `Pollable`, `key.fileobj instanceof PollableConn` narrows it, no cast needed.
 *
 * @typeParam T The type of the keys' `data` (Python code often stores a callback).
 * @typeParam P The pollables it holds: `Pollable` (any), or `PollableConn` or
 * `PollableListener` alone.
 *
 * @example An echo server, as in Python's `selectors` documentation
 * ```ts
 * import { assert } from "@std/assert";
 * import {
 *   DefaultSelector,
 *   EVENT_READ,
 *   PollableConn,
 *   PollableListener,
 *   type SelectorKey,
 * } from "@seed/selectors";
 *
 * type Callback = (key: SelectorKey<Callback>, mask: number) => void;
 * using sel = new DefaultSelector<Callback>();
 * using listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
 *
 * const read: Callback = (key) => {
 *   const conn = key.fileobj;
 *   if (!(conn instanceof PollableConn)) return; // narrows the type: no cast
 *   const data = conn.recv(1000);
 *   if (data === null) {
 *     sel.unregister(conn);
 *     conn.close();
 *   } else {
 *     conn.send(data); // small echo: fits the write buffer
 *   }
 * };
 * sel.register(listener, EVENT_READ, () => {
 *   sel.register(listener.accept(), EVENT_READ, read);
 * });
 *
 * // A client, driven by plain Deno I/O.
 * const client = (async () => {
 *   using conn = await Deno.connect({ port: listener.addr.port });
 *   await conn.write(new TextEncoder().encode("ping"));
 *   const buf = new Uint8Array(4);
 *   let n = 0;
 *   while (n < 4) n += (await conn.read(buf.subarray(n))) ?? 4;
 *   return new TextDecoder().decode(buf);
 * })();
 *
 * let done = false;
 * client.then(() => done = true);
 * for (let round = 0; !done && round < 100; round++) {
 *   for (const [key, mask] of await sel.select(100)) key.data(key, mask);
 * }
 * assert(await client === "ping");
 * // The client closed: serve its end of stream, then clean up.
 * for (let round = 0; sel.getMap().size > 1 && round < 100; round++) {
 *   for (const [key, mask] of await sel.select(100)) key.data(key, mask);
 * }
 * ```
 */
export class Selector<T = unknown, P extends Pollable = Pollable>
  implements Disposable {
  #byFd = new Map<number, PollableInternals>();
  #map = new SelectorMapping<T, P>(this.#byFd);
  /** Pollables that may be ready: every registered ready one is in here. */
  #ready = new Set<PollableInternals>();
  #wake: (() => void) | null = null;
  #selecting = false;
  /** `wakeup()` was called and no `select()` has returned since. */
  #woken = false;
  /**
   * The pending wait was ended by a call (`wakeup`, `register`, `modify`,
   * `unregister`), which may come from a microtask of the turn it began in:
   * no I/O or timer has had a turn yet.
   */
  #nudged = false;
  #closed = false;

  /** Called by a watched pollable when it is ready for some of its key's events. */
  #watcher: Watcher = (p) => {
    this.#ready.add(p);
    this.#wake?.();
  };

  /**
   * Registers a pollable for `events`.
   *
   * @example
   * ```ts
   * import { assert } from "@std/assert";
   * import { DefaultSelector, EVENT_READ, EVENT_WRITE, PollableConn, PollableListener } from "@seed/selectors";
   *
   * using sel = new DefaultSelector();
   * using listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
   * using conn = PollableConn.connect(listener.addr);
   * const key = sel.register(conn, EVENT_READ | EVENT_WRITE, { id: 1 });
   * assert(key.events === 3);
   * ```
   *
   * @param fileobj A {@linkcode PollableConn} or {@linkcode PollableListener}.
   * @param events `EVENT_READ`, `EVENT_WRITE`, or both.
   * @param data Any value, handed back in the key (Python's `data`); required when
   * `T` does not include `undefined`.
   * @returns The new key.
   * @throws {TypeError} If `fileobj` is not a pollable.
   * @throws {RangeError} If `events` is 0, not an integer, or has other bits, or the pollable is closed.
   * @throws {KeyError} If `fileobj` is already registered (closed meanwhile or not).
   * @throws {Error} If the selector is closed.
   */
  register<Q extends P>(
    fileobj: Q,
    events: number,
    ...data: DataArgument<T>
  ): SelectorKey<T, Q> {
    this.#assertOpen("register");
    // Python's order: the mask first, then the object (a port that catches one
    // error type sees the same one here).
    checkEvents("register", events);
    if (!isPollable(fileobj)) {
      const name = describe(fileobj);
      // One of ours by name, not by its internals: made by another copy of
      // this module (two versions loaded in one process).
      const copy = name === "PollableConn" || name === "PollableListener"
        ? " from another copy of this module (a selector takes its own copy's pollables)"
        : "";
      throw new TypeError(
        `Cannot register: expected a pollable (PollableConn or PollableListener), received ${name}${copy}`,
      );
    }
    // Python's order: a registered object is a KeyError even once closed
    // (its lookup finds the old key), an unregistered closed one a ValueError.
    if (this.#map.has(fileobj)) {
      throw new KeyError(
        `Cannot register: fd ${fileobj.fd} is already registered`,
      );
    }
    if (fileobj.closed) {
      throw new RangeError(
        `Cannot register: the pollable is closed (fd ${fileobj.fd})`,
      );
    }
    return this.#set(fileobj, events, data[0]) as SelectorKey<T, Q>;
  }

  /**
   * Stops watching a pollable. Works on a pollable that was closed meanwhile.
   *
   * @example
   * ```ts
   * import { assert } from "@std/assert";
   * import { DefaultSelector, EVENT_READ, PollableListener } from "@seed/selectors";
   *
   * using sel = new DefaultSelector();
   * const listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
   * sel.register(listener, EVENT_READ);
   * listener.close();
   * assert(sel.unregister(listener).fileobj === listener);
   * ```
   *
   * @param fileobj The registered pollable, or its `fd`.
   * @returns The key that was removed.
   * @throws {KeyError} If it is not registered.
   * @throws {Error} If the selector is closed.
   */
  unregister(fileobj: P | number): SelectorKey<T, P> {
    this.#assertOpen("unregister");
    const key = this.#lookup("unregister", fileobj);
    const p = key.fileobj as unknown as PollableInternals;
    mapDelete.call(this.#map, p);
    this.#byFd.delete(p.fd);
    this.#ready.delete(p);
    p[kUnwatch](this.#watcher);
    if (this.#map.size === 0) this.#nudge(); // an endless select() ends with []
    return key;
  }

  /**
   * Changes the events or data of a registration (Python's `modify`). Without
   * `data`, the key's data becomes `undefined`, as Python's `data=None`.
   *
   * @example Switch from waiting for the connect to reading
   * ```ts
   * import { assert } from "@std/assert";
   * import { DefaultSelector, EVENT_READ, EVENT_WRITE, PollableConn, PollableListener } from "@seed/selectors";
   *
   * using sel = new DefaultSelector();
   * using listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
   * using conn = PollableConn.connect(listener.addr);
   * const before = sel.register(conn, EVENT_WRITE);
   * const after = sel.modify(conn, EVENT_READ, "reading");
   * assert(before.events === EVENT_WRITE && after.events === EVENT_READ);
   * sel.unregister(conn);
   * ```
   *
   * @param fileobj The registered pollable, or its `fd`.
   * @param events The new events.
   * @param data The new data; required when `T` does not include `undefined`.
   * @returns The new key (old keys are not mutated).
   * @throws {RangeError} If `events` is invalid.
   * @throws {KeyError} If it is not registered.
   * @throws {Error} If the selector is closed.
   */
  modify(
    fileobj: P | number,
    events: number,
    ...data: DataArgument<T>
  ): SelectorKey<T, P> {
    this.#assertOpen("modify");
    // Python's order: KeyError for an unregistered object whatever the mask.
    const key = this.#lookup("modify", fileobj);
    checkEvents("modify", events);
    return this.#set(
      key.fileobj as unknown as PollableInternals,
      events,
      data[0],
    );
  }

  /**
   * Waits until some registered pollables are ready.
   *
   * @example Poll, wait with a timeout, or wait for readiness
   * ```ts
   * import { assert } from "@std/assert";
   * import { DefaultSelector, EVENT_READ, PollableListener } from "@seed/selectors";
   *
   * using sel = new DefaultSelector();
   * using listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
   * sel.register(listener, EVENT_READ);
   * assert((await sel.select(0)).length === 0); // poll
   * assert((await sel.select(10)).length === 0); // ~10 ms, nothing came
   * using client = await Deno.connect({ port: listener.addr.port });
   * const [first] = await sel.select(); // until ready
   * assert(first?.[0].fd === listener.fd && first[1] === EVENT_READ);
   * using _conn = listener.accept();
   * ```
   *
   * @param timeout In **milliseconds**: `undefined`, `null` or `Infinity` wait until
   * a key is ready; `0` or less polls; a positive number waits at most that long.
   * @returns Each ready key once, with the mask of its registered events that are
   * ready; `[]` on timeout, when the selector is closed meanwhile, when a
   * `wakeup()` ended it with nothing ready, or (after one turn of the event loop)
   * when nothing is registered and there is no timeout.
   * @throws {Error} (as a rejection) If the selector is closed, or another
   * `select()` is pending.
   * @throws {TypeError} (as a rejection) If `timeout` is not a number.
   * @throws {RangeError} (as a rejection) If `timeout` is `NaN`.
   */
  select(
    timeout?: number | null,
  ): Promise<Array<[SelectorKey<T, P>, number]>> {
    if (this.#closed) {
      return Promise.reject(
        new Error("Cannot select: the selector is closed"),
      );
    }
    if (this.#selecting) {
      return Promise.reject(
        new Error("Cannot select: another select() is already pending"),
      );
    }
    if (
      timeout !== undefined && timeout !== null &&
      (typeof timeout !== "number" || Number.isNaN(timeout))
    ) {
      // A number that is no number of milliseconds is Python's ValueError.
      const Kind = typeof timeout === "number" ? RangeError : TypeError;
      return Promise.reject(
        new Kind(
          `Cannot select: timeout must be a number of milliseconds or null, received ${
            describe(timeout)
          }`,
        ),
      );
    }
    this.#selecting = true;
    return this.#select(timeout ?? Infinity);
  }

  /**
   * The key of a registered pollable.
   *
   * @example
   * ```ts
   * import { assert } from "@std/assert";
   * import { DefaultSelector, EVENT_READ, PollableListener } from "@seed/selectors";
   *
   * using sel = new DefaultSelector();
   * using listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
   * sel.register(listener, EVENT_READ, "data");
   * assert(sel.getKey(listener).data === "data");
   * assert(sel.getKey(listener.fd).data === "data");
   * ```
   *
   * @param fileobj The pollable, or its `fd`.
   * @returns Its key.
   * @throws {KeyError} If it is not registered.
   * @throws {Error} If the selector is closed.
   */
  getKey(fileobj: P | number): SelectorKey<T, P> {
    this.#assertOpen("getKey");
    return this.#lookup("getKey", fileobj);
  }

  /**
   * A live, read-only `Map` from pollable to key (Python's `get_map()`).
   *
   * @example
   * ```ts
   * import { assert } from "@std/assert";
   * import { DefaultSelector } from "@seed/selectors";
   *
   * using sel = new DefaultSelector();
   * assert(sel.getMap().size === 0);
   * ```
   *
   * @returns The view; it reflects later registrations.
   * @throws {Error} If the selector is closed.
   */
  getMap(): SelectorMapping<T, P> {
    this.#assertOpen("getMap");
    return this.#map;
  }

  /**
   * Closes the selector: a pending `select()` resolves `[]`, every registration is
   * dropped, and every later call throws. Registered pollables stay open.
   * Idempotent.
   *
   * @example
   * ```ts
   * import { assert } from "@std/assert";
   * import { DefaultSelector } from "@seed/selectors";
   *
   * const sel = new DefaultSelector();
   * sel.close();
   * sel.close();
   * await sel.select().catch((e) => assert(e instanceof Error));
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#map.keys()) {
      (p as unknown as PollableInternals)[kUnwatch](this.#watcher);
    }
    mapClear.call(this.#map);
    this.#byFd.clear();
    this.#ready.clear();
    this.#wake?.();
  }

  /**
   * Makes the pending `select()` resolve, after one turn of the event loop
   * (timers and I/O completions get in even when the call comes from the turn
   * the wait began in), with whatever is ready (often `[]`); with none
   * pending, the next `select()` does (Java's `Selector.wakeup()`, mio's
   * `Waker`). A wakeup is used up by the `select()`
   * it ends; several before one `select()` count as one. Safe to call from any
   * async code (a timer, another task, an abort listener); after `close()` it
   * does nothing.
   *
   * @example End an endless select() from a timer
   * ```ts
   * import { assert } from "@std/assert";
   * import { DefaultSelector, EVENT_READ, PollableListener } from "@seed/selectors";
   *
   * using sel = new DefaultSelector();
   * using listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
   * sel.register(listener, EVENT_READ); // nobody connects: never ready
   * const timer = setTimeout(() => sel.wakeup(), 10);
   * const batch = await sel.select(); // no timeout: only the wakeup ends it
   * clearTimeout(timer);
   * assert(batch.length === 0);
   * ```
   *
   * @example A wakeup before select() makes it return at once
   * ```ts
   * import { assert } from "@std/assert";
   * import { DefaultSelector, EVENT_READ, PollableListener } from "@seed/selectors";
   *
   * using sel = new DefaultSelector();
   * using listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
   * sel.register(listener, EVENT_READ);
   * sel.wakeup();
   * assert((await sel.select()).length === 0);
   * ```
   */
  wakeup(): void {
    if (this.#closed) return;
    this.#woken = true;
    this.#nudge();
  }

  /**
   * {@linkcode Selector.wakeup} without the turn it yields first: for the
   * crawl's own callbacks (a sink's write or a decoding turn done), whose
   * chains are bounded (a sink is written after a read, which waits on I/O; a
   * decoding turn is a turn), so they starve nothing. The turn cost 13% of a
   * body's CPU streamed to a sink that writes at once, a turn more per chunk.
   *
   * @ignore
   */
  [kResume](): void {
    if (this.#closed) return;
    this.#woken = true;
    this.#wake?.();
  }

  /** Ends the pending wait from a call, not from I/O or a timer. */
  #nudge(): void {
    if (this.#wake === null) return;
    this.#nudged = true;
    this.#wake();
  }

  /** Closes the selector, so `using sel = new DefaultSelector()` works. */
  [Symbol.dispose](): void {
    this.close();
  }

  async #select(
    timeout: number,
  ): Promise<Array<[SelectorKey<T, P>, number]>> {
    try {
      let ready: Array<[SelectorKey<T, P>, number]>;
      // Fairness: when something may be ready already, for a poll, after a
      // wakeup() and with nothing to wait for, let one turn of I/O and timers in
      // before reporting. When nothing is ready, the wait below does that by
      // itself, and skipping the extra turn matters: it is a whole event-loop
      // iteration per select() on a busy connection. (A pollable no longer
      // ready for its key's events, drained by recv() or modified to others,
      // is not "something ready": #pruned() drops it first.)
      if (
        this.#pruned() > 0 || timeout <= 0 || this.#woken ||
        (timeout === Infinity && this.#map.size === 0)
      ) {
        await nextTurn();
        ready = this.#collect();
        if (ready.length > 0 || timeout <= 0 || this.#woken) return ready;
      }
      const deadline = performance.now() + timeout;
      while (!this.#closed) {
        if (timeout === Infinity && this.#map.size === 0) return [];
        const remaining = deadline - performance.now();
        if (remaining <= 0) return [];
        const { promise, resolve } = Promise.withResolvers<void>();
        this.#wake = resolve;
        // A timer even with no timeout: the pollables' reads and accepts keep
        // no process alive (as sockets do not in Python), the wait does.
        const timer = setTimeout(resolve, timerStep(remaining));
        try {
          await promise;
          // A call (wakeup(), register(), kResume ...) or close() can end the
          // wait from a microtask, before any park: only I/O and timers vouch
          // for a poll of the OS.
          if (!this.#nudged && !this.#woken && !this.#closed) waited();
        } finally {
          clearTimeout(timer);
          this.#wake = null;
        }
        if (this.#nudged) {
          // Fairness: ended by a call, perhaps in the very turn the wait
          // began (code that calls wakeup() right after select(), a task
          // registering from a promise chain): let one turn of I/O and
          // timers in before reporting, as a select() that finds keys ready
          // when it is called does.
          this.#nudged = false;
          if (!this.#closed) await nextTurn();
        }
        ready = this.#collect();
        if (ready.length > 0 || this.#woken) return ready;
      }
      return [];
    } finally {
      this.#selecting = false;
      this.#nudged = false;
      this.#woken = false; // a wakeup() is used up by the select() it ended
    }
  }

  /**
   * Drops from #ready the pollables no longer ready for their keys' events
   * (they notify us when they are again), as #collect() does; how many are left.
   */
  #pruned(): number {
    for (const p of this.#ready) {
      const key = mapGet.call(this.#map, p) as SelectorKey<T, P>;
      if ((p[kReady]() & key.events) === 0) this.#ready.delete(p);
    }
    return this.#ready.size;
  }

  #collect(): Array<[SelectorKey<T, P>, number]> {
    const out: Array<[SelectorKey<T, P>, number]> = [];
    for (const p of this.#ready) {
      const key = mapGet.call(this.#map, p) as SelectorKey<T, P>;
      const mask = p[kReady]() & key.events;
      if (mask !== 0) out.push([key, mask]);
      else this.#ready.delete(p); // no longer ready: it notifies us when it is
    }
    return out;
  }

  #set(
    p: PollableInternals,
    events: number,
    data: T | undefined,
  ): SelectorKey<T, P> {
    const key: SelectorKey<T, P> = Object.freeze({
      fileobj: p as Pollable as P,
      fd: p.fd,
      events,
      data: data as T,
    });
    mapSet.call(this.#map, p, key);
    this.#byFd.set(p.fd, p);
    p[kWatch](this.#watcher, events);
    if ((p[kReady]() & events) !== 0) { // ready already
      this.#ready.add(p);
      this.#nudge();
    }
    return key;
  }

  #lookup(action: string, fileobj: P | number): SelectorKey<T, P> {
    const p = typeof fileobj === "number" ? this.#byFd.get(fileobj) : fileobj;
    const key = p === undefined
      ? undefined
      : mapGet.call(this.#map, p) as SelectorKey<T, P> | undefined;
    if (key === undefined) {
      const fd = typeof fileobj === "number"
        ? fileobj
        : (fileobj as Partial<Pollable> | null)?.fd;
      throw new KeyError(
        `Cannot ${action}: ${
          fd === undefined ? describe(fileobj) : `fd ${fd}`
        } is not registered`,
      );
    }
    return key;
  }

  #assertOpen(action: string): void {
    if (this.#closed) {
      throw new Error(`Cannot ${action}: the selector is closed`);
    }
  }
}

/**
 * The same class as {@linkcode Selector}, under the name Python code imports.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { DefaultSelector, Selector } from "@seed/selectors";
 *
 * using sel = new DefaultSelector();
 * assert(sel instanceof Selector);
 * ```
 */
export const DefaultSelector: typeof Selector = Selector;
/**
 * The type of a {@linkcode DefaultSelector} instance.
 *
 * @typeParam T The type of the keys' `data`.
 * @typeParam P The pollables it takes.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { DefaultSelector, EVENT_READ, PollableListener } from "@seed/selectors";
 *
 * function watch(sel: DefaultSelector<string>, listener: PollableListener) {
 *   sel.register(listener, EVENT_READ, "accept");
 * }
 * using sel = new DefaultSelector<string>();
 * using listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
 * watch(sel, listener);
 * assert(sel.getKey(listener).data === "accept");
 * ```
 */
export type DefaultSelector<T = unknown, P extends Pollable = Pollable> =
  Selector<T, P>;

/**
 * The `data` argument of `register` and `modify`: optional when `T` allows
 * `undefined` (Python's `data=None`), required otherwise, so a key's `data` is
 * never typed `T` while it holds `undefined`.
 *
 * @typeParam T The type of the keys' `data`.
 *
 * @example
 * ```ts
 * import type { DataArgument } from "@seed/selectors";
 *
 * const optional: DataArgument<string | undefined> = [];
 * const required: DataArgument<string> = ["callback name"];
 * console.log(optional, required);
 * ```
 */
export type DataArgument<T> = undefined extends T ? [data?: T] : [data: T];

function checkEvents(
  action: string,
  events: unknown,
): asserts events is number {
  // Compared as numbers: bitwise operators would truncate to 32 bits first, and
  // 2 ** 32 + 1 would pass as EVENT_READ.
  if (
    events !== EVENT_READ && events !== EVENT_WRITE && events !== ALL_EVENTS
  ) {
    throw new RangeError(
      `Cannot ${action}: events must be EVENT_READ, EVENT_WRITE or both, received ${
        describe(events)
      }`,
    );
  }
}
