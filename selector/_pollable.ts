/**
 * The private protocol between pollables and selectors. The symbols are not
 * exported from mod.ts, which is how the selector tells our pollables from look-alikes.
 */
import type { Pollable } from "./pollable.ts";

/** Called by a pollable each time it may have become ready for the events watched. */
export type Watcher = (p: PollableInternals) => void;

/** Returns the events (`EVENT_READ | EVENT_WRITE` bits) the pollable is ready for now. */
export const kReady: unique symbol = Symbol("selectors.ready");
/** `(watcher, events)`: start or change watching; the pollable issues I/O for `events`. */
export const kWatch: unique symbol = Symbol("selectors.watch");
/** `(watcher)`: stop watching. */
export const kUnwatch: unique symbol = Symbol("selectors.unwatch");

/** `PollableConn`'s zero-copy `recv` for the HTTP client: a view of the buffered bytes. */
export const kPeek: unique symbol = Symbol("selectors.peek");
/** `(n, readOn = true)`: marks `n` peeked bytes consumed; `readOn: false` when about to close. */
export const kConsume: unique symbol = Symbol("selectors.consume");
/** `(bytes)`: `send` without the defensive copy, for bytes the caller will not touch again. */
export const kSendOwned: unique symbol = Symbol("selectors.sendOwned");
/**
 * `()`: bytes `send` accepted that are not written yet, the last ones accepted;
 * the ones before them the conn no longer holds.
 */
export const kUnwritten: unique symbol = Symbol("selectors.unwritten");

/**
 * `(target)`: the next read goes straight into `target` (the HTTP client's body
 * buffer) instead of the conn's buffer, saving a copy of large bodies. Set only
 * while the buffer is drained; one read, then it is cleared.
 */
export const kReadInto: unique symbol = Symbol("selectors.readInto");
/**
 * `(options)`: starts TLS over the open connection, in place (the HTTP client's
 * tunnel through a proxy): the conn is connecting again until the handshake
 * ends, and `close()` cancels it. Only on a quiet conn: no read in flight, no
 * byte buffered either way.
 */
export const kStartTls: unique symbol = Symbol("selectors.startTls");
/**
 * `()`: whether the conn speaks TLS (`connectTls`, `kStartTls`, a wrapped
 * `Deno.TlsConn`), `null` while a caller's promise of a conn is unsettled.
 */
export const kTls: unique symbol = Symbol("selectors.tls");
/**
 * A Selector's `()`: `wakeup()` without the turn it yields first, for callers
 * whose wakeups come in bounded chains (the crawl's sinks and decoding turns).
 */
export const kResume: unique symbol = Symbol("selectors.resume");
/** `()`: how many bytes the last `kReadInto` read placed in its target (then 0). */
export const kTakeDirect: unique symbol = Symbol("selectors.takeDirect");
/**
 * `()`: whether the last read filled the conn's buffer, so the peer may have
 * sent more that waits in the kernel, unseen yet.
 */
export const kFilled: unique symbol = Symbol("selectors.filled");
/**
 * `()`: `close()` that drops what `send` accepted and did not write yet, for a
 * conn whose exchange failed: nobody needs those bytes, and flushing them to a
 * peer that stopped reading would hold the socket (and the process) for the
 * whole linger time.
 */
export const kCloseNow: unique symbol = Symbol("selectors.closeNow");
/** `()`: the capacity of the read buffer a conn holds now, 0 for none (for tests). */
export const kReadBufferSize: unique symbol = Symbol(
  "selectors.readBufferSize",
);

/** A pollable as the selector sees it. */
export interface PollableInternals extends Pollable {
  [kReady](): number;
  [kWatch](watcher: Watcher, events: number): void;
  [kUnwatch](watcher: Watcher): void;
}

/** Whether `value` is one of this module's pollables. */
export function isPollable(value: unknown): value is PollableInternals {
  return typeof value === "object" && value !== null &&
    typeof (value as Partial<PollableInternals>)[kReady] === "function";
}

let lastFd = 2;

/** A process-unique integer, starting above the three standard streams. */
export function nextFd(): number {
  return ++lastFd;
}

/**
 * The watchers of one pollable and the union of the events they want. Nearly every
 * pollable has exactly one watcher; a Map keeps the rare second selector correct.
 */
export class Watchers {
  /** The watcher while there is one: most pollables have one selector. */
  #one: Watcher | null = null;
  #oneEvents = 0;
  /** Every watcher, once there were two at once. */
  #map: Map<Watcher, number> | null = null;
  /** The union of the watched events. */
  events = 0;

  set(watcher: Watcher, events: number): void {
    if (this.#map === null) {
      if (this.#one === null || this.#one === watcher) {
        this.#one = watcher;
        this.#oneEvents = this.events = events;
        return;
      }
      // A second selector: a map from now on (no conn per selector pays for it).
      this.#map = new Map([[this.#one, this.#oneEvents]]);
      this.#one = null;
    }
    this.#map.set(watcher, events);
    this.#recompute();
  }

  delete(watcher: Watcher): void {
    if (this.#map === null) {
      if (this.#one === watcher) {
        this.#one = null;
        this.#oneEvents = this.events = 0;
      }
      return;
    }
    if (this.#map.delete(watcher)) this.#recompute();
  }

  clear(): void {
    this.#one = null;
    this.#map = null;
    this.#oneEvents = this.events = 0;
  }

  /**
   * Tells every watcher whose events `p` is ready for that it is: a watcher is
   * only called when it has something to report, so it needs no lookup of its own.
   */
  notify(p: PollableInternals): void {
    if (this.#map === null) {
      if (this.#one !== null && (p[kReady]() & this.#oneEvents) !== 0) {
        this.#one(p);
      }
      return;
    }
    const ready = p[kReady]();
    // forEach, not for..of: no iterator object per read completion.
    this.#map.forEach((events, watcher) => {
      if ((ready & events) !== 0) watcher(p);
    });
  }

  #recompute(): void {
    let events = 0;
    this.#map!.forEach((e) => events |= e);
    this.events = events;
  }
}
