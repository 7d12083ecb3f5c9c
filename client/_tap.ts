/**
 * One `HttpClient`'s side of the raw-bytes tap (see `http_tap.ts`): opens each
 * exchange at its first request byte, leaves interim `1xx` heads out of the
 * response bytes, and ends the exchange once.
 *
 * @module
 */
import { refresh } from "./_clock.ts";
import type { HttpExchangeTap, HttpTap } from "./http_tap.ts";
import { ignoreRejection, isThenable } from "../selector/_util.ts";

/** What the recorder needs of the response parser. */
interface ParserOffsets {
  /** Stream offset after the bytes parsed so far. */
  readonly bytesConsumed: number;
  /** Stream offset of the final head's status line; -1 before it is parsed. */
  readonly headOffset: number;
}

/** The tap of one client's exchanges, one at a time. */
export class TapRecorder {
  readonly #open: HttpTap;
  readonly #url: string;
  readonly #viaProxy: boolean;
  #opened = false;
  #exchange: HttpExchangeTap | undefined = undefined;
  #remoteAddr: Deno.Addr | null = null;
  /** Response bytes received before the final head was known (copies). */
  #held: Uint8Array[] = [];
  /** Stream offset of `#held[0]`. */
  #heldFrom = 0;
  #headSeen = false;

  constructor(open: HttpTap, url: string, viaProxy: boolean) {
    this.#open = open;
    this.#url = url;
    this.#viaProxy = viaProxy;
  }

  /** Request bytes accepted by the connection; the first ones open the exchange. */
  request(bytes: Uint8Array, remoteAddr: Deno.Addr | null): void {
    if (!this.#opened) {
      this.#opened = true;
      this.#remoteAddr = remoteAddr;
      const exchange: unknown = this.#open({
        url: this.#url,
        remoteAddr,
        viaProxy: this.#viaProxy,
        date: new Date(),
      });
      // The caller's code ran (a WARC writer opening a file, say): in a span
      // of the crawl's loop, what starts after it is stamped after it.
      refresh();
      // An async tap gives a promise, not the exchange's callbacks.
      if (isThenable(exchange)) ignoreRejection(exchange);
      else this.#exchange = exchange as HttpExchangeTap | undefined;
    }
    ignoreRejection(this.#exchange?.request?.(bytes));
  }

  /**
   * The first `used` bytes of `data` were just parsed (`parser` already counts
   * them). Before the final head is parsed they are held, as they may be an
   * interim head, which is dropped; a head is at most the parser's head limit.
   */
  response(data: Uint8Array, used: number, parser: ParserOffsets): void {
    const tap = this.#exchange?.response;
    if (tap === undefined || used === 0) return;
    const bytes = data.subarray(0, used);
    if (this.#headSeen) {
      ignoreRejection(tap(bytes));
      return;
    }
    const start = parser.bytesConsumed - used;
    const head = parser.headOffset;
    if (head < 0) {
      if (this.#held.length === 0) this.#heldFrom = start;
      this.#held.push(bytes.slice());
      return;
    }
    this.#headSeen = true;
    let at = this.#heldFrom;
    for (const piece of this.#held) {
      const from = head - at;
      if (from < piece.length) {
        ignoreRejection(tap(from <= 0 ? piece : piece.subarray(from)));
      }
      at += piece.length;
    }
    this.#held = [];
    const from = head - start;
    if (from < bytes.length) {
      ignoreRejection(tap(from <= 0 ? bytes : bytes.subarray(from)));
    }
  }

  /** The open exchange's `ready()`: a promise to wait on, or `null` to read on. */
  ready(): Promise<unknown> | null {
    const ready = this.#exchange?.ready;
    if (ready === undefined) return null;
    const wait: unknown = ready.call(this.#exchange);
    return isThenable(wait) ? Promise.resolve(wait) : null;
  }

  /** Ends the open exchange, if any; the next request byte opens another. */
  end(ok: boolean, error: unknown): void {
    if (!this.#opened) return;
    const exchange = this.#exchange;
    this.#opened = false;
    this.#exchange = undefined;
    this.#held = [];
    this.#headSeen = false;
    try {
      ignoreRejection(
        exchange?.end?.({
          url: this.#url,
          remoteAddr: this.#remoteAddr,
          ok,
          error: ok ? null : error,
        }),
      );
    } catch {
      // Documented: an exception from `end` is ignored, as handle() never throws.
    }
  }
}
