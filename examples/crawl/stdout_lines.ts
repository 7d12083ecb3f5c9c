/**
 * Lines to stdout without blocking the event loop, for the crawl CLIs: a
 * synchronous write to a reader that pauses (`| less`, Ctrl-S) held the whole
 * process, so a crawl's connections timed out and no signal got through, and
 * a distributed worker could not renew its leases (another worker took its
 * URLs and fetched them again).
 *
 * @module
 */

const encoder = new TextEncoder();

/** How many characters may wait for a slow reader before `write()` waits too. */
const AHEAD = 1 << 16;

/** What {@linkcode StdoutLines} writes to: `Deno.stdout` unless told. */
export interface LineSink {
  write(bytes: Uint8Array): Promise<number>;
}

/** Options of {@linkcode StdoutLines}. */
export interface StdoutLinesOptions {
  /** Called once, with the error of the first write that failed; no more is written. */
  onError: (error: unknown) => void;
  /** Told when a write starts and ends (a progress bar on the same terminal). */
  around?: { pause(): void; resume(): void } | null;
  /** Where the lines go (default `Deno.stdout`). */
  sink?: LineSink;
}

/**
 * Lines written in order. Those given while a write is under way go out
 * together in the next one (a write per line cost a quarter of a fast
 * crawl's time); past 64 KiB waiting, `write()`'s promise waits for the
 * reader, so a caller that awaits it goes at the reader's pace.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { StdoutLines } from "./stdout_lines.ts";
 *
 * const got: string[] = [];
 * const out = new StdoutLines({
 *   onError: () => {},
 *   sink: {
 *     write(bytes) {
 *       got.push(new TextDecoder().decode(bytes));
 *       return Promise.resolve(bytes.length);
 *     },
 *   },
 * });
 * await out.write("a\n");
 * await out.write("b\n");
 * await out.flushed();
 * assertEquals(got.join(""), "a\nb\n");
 * ```
 */
export class StdoutLines {
  readonly #onError: (error: unknown) => void;
  readonly #around: { pause(): void; resume(): void } | null;
  readonly #sink: LineSink;
  #waiting: string[] = [];
  #waitingLength = 0;
  #writing: Promise<void> | null = null;
  #open = true;

  /** @param options Where the lines go, and who hears of a failure. */
  constructor(options: StdoutLinesOptions) {
    this.#onError = options.onError;
    this.#around = options.around ?? null;
    this.#sink = options.sink ?? Deno.stdout;
  }

  /** Whether lines are still written: no write has failed. */
  get open(): boolean {
    return this.#open;
  }

  /**
   * Queues `text` (its line break included).
   *
   * @returns A promise that waits for the reader only past 64 KiB waiting.
   */
  write(text: string): Promise<void> {
    if (!this.#open) return Promise.resolve();
    this.#waiting.push(text);
    this.#waitingLength += text.length;
    const writing = this.#writing ??= this.#drain();
    return this.#waitingLength > AHEAD ? writing : Promise.resolve();
  }

  /** Resolves once everything queued is written, or a write failed. */
  async flushed(): Promise<void> {
    await this.#writing;
  }

  async #drain(): Promise<void> {
    this.#around?.pause();
    try {
      while (this.#waiting.length > 0 && this.#open) {
        const bytes = encoder.encode(this.#waiting.join(""));
        this.#waiting = [];
        this.#waitingLength = 0;
        for (let n = 0; n < bytes.length;) {
          n += await this.#sink.write(bytes.subarray(n));
        }
      }
    } catch (error) {
      this.#open = false;
      try {
        this.#onError(error);
      } catch {
        // Its own report failed too (stderr on a full disk): nothing left to
        // tell, and no one awaits this write to hear of it.
      }
    } finally {
      this.#waiting = [];
      this.#waitingLength = 0;
      this.#writing = null;
      this.#around?.resume();
    }
  }
}
