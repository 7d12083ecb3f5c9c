/**
 * `PollableListener`: a Deno listener with Python's non-blocking `accept()`.
 *
 * @module
 */
import { BlockingIOError } from "./errors.ts";
import { EVENT_READ } from "./events.ts";
import type { Pollable } from "./pollable.ts";
import { PollableConn } from "./pollable_conn.ts";
import { asError, closeQuietly, describe, isShortage } from "./_util.ts";
import {
  kReady,
  kUnwatch,
  kWatch,
  nextFd,
  type Watcher,
  Watchers,
} from "./_pollable.ts";

/**
 * Connections accepted ahead of `accept()` calls, while the listener is read:
 * a burst waits in the kernel's backlog beyond them. Few: each holds a
 * descriptor (there, a connection costs the process none), which a server at
 * its `ulimit -n` needs for its own files.
 */
const ACCEPT_AHEAD = 4;

/**
 * Options of {@linkcode PollableListener.listen}: TCP or Unix socket, as
 * `Deno.listen` takes them.
 *
 * @example
 * ```ts
 * import type { PollableListenOptions } from "@seed/selectors";
 *
 * const tcp: PollableListenOptions = { hostname: "127.0.0.1", port: 0 };
 * const unix: PollableListenOptions = { transport: "unix", path: "/tmp/app.sock" };
 * console.log(tcp, unix);
 * ```
 */
export type PollableListenOptions =
  | (Deno.TcpListenOptions & { transport?: "tcp" })
  | Deno.UnixListenOptions & { transport: "unix" };

/**
 * A TCP or Unix-socket listener (or a TLS one, through
 * {@linkcode PollableListener.from}) with a synchronous `accept()`.
 *
 * While it is registered for `EVENT_READ` it keeps one `accept()` in flight and holds
 * up to 4 accepted connections until `accept()` takes them (a loop of `accept()`
 * until `BlockingIOError` takes them in one round, as with a Python listening
 * socket), the kernel's backlog the rest; once out of descriptors, one. They stay
 * held, and taken by `accept()`, after it is unregistered. It is read-ready while a
 * connection is waiting, or after accepting failed (the next `accept()` throws that
 * error once).
 *
 * @example The accept loop of Python's selectors documentation
 * ```ts
 * import { assert } from "@std/assert";
 * import { DefaultSelector, EVENT_READ, PollableConn, PollableListener } from "@seed/selectors";
 *
 * using sel = new DefaultSelector();
 * using listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
 * sel.register(listener, EVENT_READ);
 * using client = await Deno.connect({ port: listener.addr.port });
 * for (const [key] of await sel.select(5_000)) {
 *   if (key.fileobj === listener) {
 *     using conn: PollableConn = listener.accept();
 *     assert(conn.remoteAddr !== null);
 *   }
 * }
 * ```
 */
export class PollableListener implements Pollable, Disposable {
  /** A process-unique integer identifying this listener. */
  readonly fd: number = nextFd();

  #listener: Deno.Listener;
  #closed = false;
  #accepting = false;
  /** The wait before accepting again after a shortage of descriptors (ms). */
  #backoff = 0;
  #retry: ReturnType<typeof setTimeout> | undefined;
  /** Accepted and not yet taken, first first: at most `#ahead`. */
  #waiting: Deno.Conn[] = [];
  #error: Error | null = null;
  #ahead = ACCEPT_AHEAD;
  #watchers = new Watchers();

  /**
   * Wraps a listener. Prefer {@linkcode PollableListener.listen} and
   * {@linkcode PollableListener.from}.
   *
   * @param listener An open `Deno.Listener` (TCP, TLS or Unix).
   * @throws {TypeError} If `listener` is not one.
   */
  constructor(listener: Deno.Listener) {
    if (
      typeof listener !== "object" || listener === null ||
      typeof (listener as Deno.Listener).accept !== "function"
    ) {
      throw new TypeError(
        `Cannot create PollableListener: expected a Deno.Listener, received ${
          describe(listener)
        }`,
      );
    }
    this.#listener = listener;
    // Its accepts keep no process alive: a pending select() does (as in
    // Python, a script that ends with a listener open exits).
    listener.unref?.();
  }

  /**
   * Listens with `Deno.listen` (synchronous, like `bind()` + `listen()`).
   *
   * @example Listen on an ephemeral loopback port
   * ```ts
   * import { assert } from "@std/assert";
   * import { PollableListener } from "@seed/selectors";
   *
   * using listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
   * assert(listener.addr.port > 0); // a TCP listener's addr is a Deno.NetAddr
   * ```
   *
   * @param options What `Deno.listen` takes (TCP or Unix).
   * @returns The listener, its `addr` typed by its transport, as `Deno.listen`'s.
   */
  static listen(
    options: Deno.TcpListenOptions & { transport?: "tcp" },
  ): PollableListener & { readonly addr: Deno.NetAddr };
  /**
   * Listens on a Unix socket with `Deno.listen`.
   *
   * @param options What `Deno.listen` takes for a Unix socket.
   * @returns The listener, its `addr` a `Deno.UnixAddr`.
   */
  static listen(
    options: Deno.UnixListenOptions & { transport: "unix" },
  ): PollableListener & { readonly addr: Deno.UnixAddr };
  /**
   * Listens with `Deno.listen`, TCP or Unix.
   *
   * @param options What `Deno.listen` takes (TCP or Unix).
   * @returns The listener.
   */
  static listen(options: PollableListenOptions): PollableListener;
  static listen(options: PollableListenOptions): PollableListener {
    return new PollableListener(Deno.listen(options as Deno.TcpListenOptions));
  }

  /**
   * Wraps an open listener, such as one from `Deno.listenTls`.
   *
   * @example
   * ```ts
   * import { assert } from "@std/assert";
   * import { PollableListener } from "@seed/selectors";
   *
   * using listener = PollableListener.from(Deno.listen({ hostname: "127.0.0.1", port: 0 }));
   * assert(listener.fd > 2);
   * ```
   *
   * @param listener The listener; nobody else may call its `accept()`.
   * @returns The pollable listener, its `addr` typed as the listener's.
   */
  static from<A extends Deno.Addr>(
    listener: Deno.Listener<Deno.Conn, A>,
  ): PollableListener & { readonly addr: A };
  /**
   * Wraps an open listener.
   *
   * @param listener The listener; nobody else may call its `accept()`.
   * @returns The pollable listener.
   */
  static from(listener: Deno.Listener): PollableListener;
  static from(listener: Deno.Listener): PollableListener {
    return new PollableListener(listener);
  }

  /** The address it listens on. */
  get addr(): Deno.Addr {
    return this.#listener.addr;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Takes the waiting connection, without waiting.
   *
   * @example
   * ```ts
   * import { assert } from "@std/assert";
   * import { BlockingIOError, PollableListener } from "@seed/selectors";
   *
   * using listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
   * try {
   *   listener.accept();
   * } catch (e) {
   *   assert(e instanceof BlockingIOError); // not registered, nothing waiting
   * }
   * ```
   *
   * @returns The accepted connection, already connected.
   * @throws {BlockingIOError} If no connection is waiting.
   * @throws {Deno.errors.BadResource} If the listener is closed.
   * @throws {Error} Why accepting failed, once.
   */
  accept(): PollableConn {
    if (this.#closed) {
      throw new Deno.errors.BadResource(
        `Cannot accept: the listener is closed (fd ${this.fd})`,
      );
    }
    const conn = this.#waiting.shift();
    if (conn !== undefined) {
      this.#pump();
      return PollableConn.from(conn);
    }
    const error = this.#error;
    if (error !== null) {
      this.#error = null;
      if (isShortage(error)) {
        // The connection waits in the kernel's backlog, and accepting again
        // at once fails the same way, at a core's full speed: back off, as
        // Go's server does (5 ms, doubling up to 1 s), until one succeeds.
        this.#backoff = Math.min(this.#backoff * 2 || 5, 1_000);
        // Out of descriptors: none held ahead from now on.
        this.#ahead = 1;
        this.#retry = setTimeout(() => {
          this.#retry = undefined;
          this.#pump();
        }, this.#backoff);
      } else this.#pump();
      throw error;
    }
    throw new BlockingIOError(
      `Cannot accept: no connection is waiting (fd ${this.fd})`,
    );
  }

  /**
   * Closes the listener and any accepted connection nobody took; idempotent.
   *
   * @example
   * ```ts
   * import { assert } from "@std/assert";
   * import { PollableListener } from "@seed/selectors";
   *
   * const listener = PollableListener.listen({ hostname: "127.0.0.1", port: 0 });
   * listener.close();
   * assert(listener.closed);
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#watchers.clear();
    for (const conn of this.#waiting) closeQuietly(conn);
    this.#waiting = [];
    closeQuietly(this.#listener);
  }

  /** Closes the listener, so `using` works. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * `EVENT_READ` while a connection or an error is waiting.
   *
   * @ignore
   */
  [kReady](): number {
    return !this.#closed && (this.#waiting.length > 0 || this.#error !== null)
      ? EVENT_READ
      : 0;
  }

  /**
   * Starts or changes watching; accepting starts if `events` has `EVENT_READ`.
   *
   * @ignore
   */
  [kWatch](watcher: Watcher, events: number): void {
    if (this.#closed) return;
    this.#watchers.set(watcher, events);
    this.#pump();
  }

  /**
   * Stops watching; an accept in flight still completes into the slot.
   *
   * @ignore
   */
  [kUnwatch](watcher: Watcher): void {
    this.#watchers.delete(watcher);
  }

  #pump(): void {
    if (
      this.#accepting || this.#closed ||
      this.#waiting.length >= this.#ahead ||
      this.#error !== null || this.#retry !== undefined ||
      (this.#watchers.events & EVENT_READ) === 0
    ) return;
    this.#accepting = true;
    this.#listener.accept().then(this.#onAccept, this.#onAcceptError);
  }

  #onAccept = (conn: Deno.Conn): void => {
    this.#accepting = false;
    this.#backoff = 0;
    if (this.#closed) {
      closeQuietly(conn);
      return;
    }
    this.#waiting.push(conn);
    // The next one, while this one waits to be taken: a burst is taken by
    // as many accept() calls in one select() round, as Python's loop of
    // accept() until BlockingIOError does, not one per round.
    this.#pump();
    this.#watchers.notify(this);
  };

  #onAcceptError = (error: unknown): void => {
    this.#accepting = false;
    if (this.#closed) return;
    this.#error = asError(error);
    this.#watchers.notify(this);
  };
}
