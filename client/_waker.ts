/**
 * A pollable that async code outside the crawl loop makes read-ready to wake the
 * loop's pending `select()` (mio's `Waker`): the abort listener, a request body
 * or sink that became ready, an async source that delivered a URL. The callers
 * only set a flag and wake; the loop does the work when it runs.
 *
 * @module
 */
import { EVENT_READ } from "../selector/events.ts";
import {
  kReady,
  kUnwatch,
  kWatch,
  nextFd,
  type PollableInternals,
  type Watcher,
} from "../selector/_pollable.ts";

/** A selector-registrable flag. */
export class Waker implements PollableInternals {
  readonly fd: number = nextFd();
  #closed = false;
  #set = false;
  #watcher: Watcher | null = null;

  get closed(): boolean {
    return this.#closed;
  }

  /** Makes it read-ready (idempotent): a pending or the next `select()` returns. */
  wake(): void {
    if (this.#set || this.#closed) return;
    this.#set = true;
    this.#watcher?.(this);
  }

  /** Clears the readiness, once the loop has seen it. */
  reset(): void {
    this.#set = false;
  }

  close(): void {
    this.#closed = true;
    this.#set = false;
  }

  [kReady](): number {
    return this.#set ? EVENT_READ : 0;
  }

  [kWatch](watcher: Watcher, _events: number): void {
    this.#watcher = watcher;
  }

  [kUnwatch](_watcher: Watcher): void {
    this.#watcher = null;
  }
}
