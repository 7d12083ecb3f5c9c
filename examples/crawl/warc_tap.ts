/**
 * `--warc` wiring: the engine's raw-bytes tap (`HttpTap`) feeding a
 * {@linkcode WarcWriter}, one `request` + `response` record pair per exchange.
 *
 * @module
 */
import { HttpParseError, type HttpTap } from "../../mod.ts";
import { DiskError } from "./disk_error.ts";
import { EnoughKept } from "./robots_fetch.ts";
import {
  type WarcExchange,
  type WarcWriter,
  WarcWriterClosed,
} from "./warc.ts";

/** Bytes queued for the writer past which the tap holds the connection. */
const HIGH_WATER = 512 * 1024;
/** Bytes queued for the writer at which the held connection goes on. */
const LOW_WATER = 128 * 1024;

/**
 * Bytes pushed by the tap, read by the WARC writer as an async iterable. A
 * chunk counts as queued until the writer asks for the next one (it has
 * spooled it): {@linkcode ByteQueue.ready} is the tap's backpressure.
 */
class ByteQueue implements AsyncIterable<Uint8Array> {
  #chunks: Uint8Array[] = [];
  #queued = 0;
  #ended = false;
  /** The writer stopped reading (it failed): nothing drains any more. */
  #abandoned = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;
  #drained: PromiseWithResolvers<void> | null = null;

  push(bytes: Uint8Array): void {
    if (this.#abandoned) return;
    this.#chunks.push(bytes);
    this.#queued += bytes.length;
    this.#signal();
  }

  end(error: Error | null = null): void {
    this.#ended = true;
    this.#error = error;
    this.#signal();
    this.#release();
  }

  /** `null` while the writer keeps up; else a promise, settled once it caught up. */
  ready(): Promise<void> | null {
    if (this.#queued <= HIGH_WATER || this.#ended || this.#abandoned) {
      return null;
    }
    this.#drained ??= Promise.withResolvers<void>();
    return this.#drained.promise;
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  #release(): void {
    const drained = this.#drained;
    this.#drained = null;
    drained?.resolve();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        if (this.#chunks.length > 0) {
          const chunks = this.#chunks;
          this.#chunks = [];
          for (const chunk of chunks) {
            yield chunk;
            this.#queued -= chunk.length;
            if (this.#queued <= LOW_WATER) this.#release();
          }
          continue;
        }
        if (this.#error !== null) throw this.#error;
        if (this.#ended) return;
        const { promise, resolve } = Promise.withResolvers<void>();
        this.#wake = resolve;
        await promise;
      }
    } finally {
      this.#abandoned = true;
      this.#release();
    }
  }
}

/** Why an exchange is left out of the archive. */
class ExchangeFailed extends Error {
  override name = "ExchangeFailed";
}

/**
 * How a response whose head arrived was cut short (`WARC-Truncated`), or
 * `undefined` when its failure is no truncation worth keeping (a malformed
 * response, an abort).
 */
function truncation(error: unknown): WarcExchange["truncated"] {
  if (error instanceof Deno.errors.TimedOut) return "time";
  // A robots.txt past the size kept of it (RFC 9309 §2.5).
  if (error instanceof EnoughKept) return "length";
  if (error instanceof HttpParseError) {
    if (error.code === "body-too-large") return "length";
    return error.code === "truncated-body" ? "disconnect" : undefined;
  }
  return error instanceof Deno.errors.ConnectionReset ||
      error instanceof Deno.errors.ConnectionAborted ||
      error instanceof Deno.errors.BrokenPipe ||
      error instanceof Deno.errors.UnexpectedEof
    ? "disconnect"
    : undefined;
}

/** What {@linkcode warcTap} returns. */
export interface WarcTap {
  /** The tap to give the crawl (and the robots.txt fetches). */
  tap: HttpTap;
  /** Exchanges written so far, those cut short included. */
  readonly written: number;
  /** Of those, responses cut short, recorded with `WARC-Truncated`. */
  readonly truncated: number;
  /** Exchanges read whole but not written: the writer was closed or aborted first. */
  readonly dropped: number;
  /** The first disk error, once writing failed. */
  readonly failure: DiskError | null;
  /** Waits for every exchange under way to be written or dropped. */
  settled(): Promise<void>;
  /**
   * Resolves once fewer than `maxPending` exchanges wait to be written: await it
   * before handing the crawl another URL, so a crawl faster than the disk waits
   * for the writer instead of piling exchanges up in memory.
   */
  ready(): Promise<void>;
}

/** Options of {@linkcode warcTap}. */
export interface WarcTapOptions {
  /**
   * Exchanges opened and not yet written past which {@linkcode WarcTap.ready}
   * waits.
   *
   * @default {256}
   */
  maxPending?: number;
}

/**
 * Archives every exchange the tap reports. The bytes are copied as they come
 * and streamed to the writer, which spools large blocks to disk; a response
 * more than 512 KiB ahead of the writer holds its connection's reads, and a
 * streamed upload that far ahead holds its sending, until the writer is back
 * within 128 KiB, so memory stays at what the writer keeps per exchange however
 * fast the network. A response cut short after its head
 * arrived is kept as far as it came, marked `WARC-Truncated` (as wget and
 * Heritrix do): `"disconnect"` (the connection closed or reset mid-body),
 * `"time"` (a timeout), `"length"` (a size limit: `maxResponseBytes`, a
 * robots.txt past the part kept of it). Any other failed exchange
 * (no response head, a malformed response, Ctrl-C) is left out. On a disk
 * error, `onFailure` is called once and nothing more is written.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { fetchAll } from "../../mod.ts";
 * import { WarcWriter } from "./warc.ts";
 * import { warcTap } from "./warc_tap.ts";
 *
 * await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => new Response("hi"));
 * const dir = await Deno.makeTempDir();
 * const writer = await WarcWriter.create(`${dir}/a.warc.gz`);
 * const archive = warcTap(writer, () => {});
 * await fetchAll([`http://127.0.0.1:${server.addr.port}/`], { tap: archive.tap });
 * await archive.settled();
 * await writer.close();
 * assertEquals(archive.written, 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @param writer The WARC file.
 * @param onFailure Called with the first {@linkcode DiskError}.
 * @returns The tap and its counters.
 */
export function warcTap(
  writer: WarcWriter,
  onFailure: (error: DiskError) => void,
  options: WarcTapOptions = {},
): WarcTap {
  const maxPending = options.maxPending ?? 256;
  const pending = new Set<Promise<unknown>>();
  let waiters: (() => void)[] = [];
  let written = 0;
  let truncated = 0;
  let dropped = 0;
  let failure: DiskError | null = null;
  const tap: HttpTap = (info) => {
    if (failure !== null) return undefined;
    const request = new ByteQueue();
    const response = new ByteQueue();
    // WARC-IP-Address is the server's (WARC 1.1 §5.10): through a proxy, the
    // peer is the proxy, and the server's address is not known here.
    const address = info.remoteAddr?.transport === "tcp" && !info.viaProxy
      ? info.remoteAddr.hostname
      : undefined;
    const exchange: WarcExchange = {
      url: info.url,
      date: info.date,
      ...(address === undefined ? {} : { ipAddress: address }),
      request,
      response,
    };
    let headArrived = false;
    const writing = writer.writeExchange(exchange).then(() => {
      written++;
      if (exchange.truncated !== undefined) truncated++;
    }, (error) => {
      if (error instanceof DiskError) {
        if (failure === null) {
          failure = error;
          onFailure(error);
        }
      } else if (error instanceof WarcWriterClosed) {
        // Read whole, and the writer closed first (cut short on a second Ctrl-C).
        dropped++;
      }
    });
    pending.add(writing);
    writing.finally(() => {
      pending.delete(writing);
      if (pending.size < maxPending && waiters.length > 0) {
        const woken = waiters;
        waiters = [];
        for (const wake of woken) wake();
      }
    });
    return {
      request: (bytes) => request.push(bytes.slice()),
      response: (bytes) => {
        // The tap's response bytes start with the final head, whole.
        headArrived = true;
        response.push(bytes.slice());
      },
      // Neither an upload nor a download outruns the spool: the conn waits
      // for the writer.
      ready: () => request.ready() ?? response.ready(),
      end: (end) => {
        let error: Error | null = null;
        if (!end.ok) {
          const cut = headArrived ? truncation(end.error) : undefined;
          if (cut === undefined) error = new ExchangeFailed("exchange failed");
          // Read by the writer once both blocks have ended.
          else exchange.truncated = cut;
        }
        request.end(error);
        response.end(error);
      },
    };
  };
  return {
    tap,
    get written() {
      return written;
    },
    get truncated() {
      return truncated;
    },
    get dropped() {
      return dropped;
    },
    get failure() {
      return failure;
    },
    async settled() {
      while (pending.size > 0) await Promise.all(pending);
    },
    ready() {
      if (pending.size < maxPending || failure !== null) {
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
  };
}
