/**
 * Content decoding (RFC 9110 section 8.4) of a response body as it arrives, in
 * bounded slices, with the decoded size bounded so a decompression bomb stops
 * as soon as it passes the limit.
 *
 * @module
 */
import { EMPTY, type Engine, ENGINES } from "./_decode_engines.ts";
import { HttpParseError } from "./http_parse_error.ts";
import { keepSpecimens } from "./_specimens.ts";

/** The codings a request advertises unless the caller set `Accept-Encoding`. */
export const ACCEPT_ENCODING = "gzip, deflate, br, zstd";

/** A decoder was made: `_specimens.ts` keeps one already. */
let decoderKept = false;

/**
 * What {@linkcode ContentDecoder.read} returns at most, and unless told: large
 * enough that calls cost little next to the decoding, small enough to keep
 * each call short.
 */
const SLICE = 256 * 1024;

/** The most content codings a response may stack (curl's limit too). */
const MAX_CODINGS = 5;
/**
 * The most input one stage consumes in one `read()` while producing nothing
 * (a long gzip header comment, empty deflate blocks): the work bound per call.
 */
const INPUT_BUDGET = 1024 * 1024;

/** Feeds `body` without copying it (decodeBody's body is not reused). */
let adopt: (decoder: ContentDecoder, body: Uint8Array) => void;

/**
 * Decodes a response body coded per its `Content-Encoding`, fed in pieces as
 * they arrive and read back in slices of bounded size. Synchronous: a driver
 * that writes what arrived, then reads until `null` (yielding to the event loop
 * between reads as it likes), never blocks for more than one slice of work.
 *
 * Codings: `gzip` and `x-gzip` (several members in a row are decoded one after
 * the other), `deflate` (zlib-wrapped as RFC 9110 says, or raw as some servers
 * send it), `br` and `zstd` (windows up to 8 MiB, as RFC 9659 allows). Several
 * codings are undone last first; a list with a coding it does not know is not
 * decoded at all, so the bytes are handed on as sent, as the header says they
 * are (as `fetch` does: undoing only the known layers would leave bytes that
 * match no header).
 *
 * Guarantees:
 * - A corrupt coded stream, and one cut short (a gzip member without its
 *   trailer too), fail with {@linkcode HttpParseError} code
 *   `invalid-content-encoding`. Bytes after the end of a whole stream (its
 *   checksum checked where the coding has one) are dropped, as browsers drop
 *   them: a further gzip member or zstd frame is decoded only when they start
 *   with its whole magic (so a tail shorter than a magic, or a member whose
 *   magic is damaged, is dropped too, as gzip(1) drops "trailing garbage").
 *   A body of zero bytes decodes to zero bytes (a `HEAD` or `304` response, or
 *   a server labelling an empty body).
 * - At most `maxBytes` decoded bytes come out (a coding undone in the middle of
 *   several counts too); the call that would pass it fails with
 *   `body-too-large` having decoded at most one byte more.
 * - Each `read()` returns a standalone `Uint8Array` (its `.buffer` holds those
 *   bytes only, never a shared pool) and does bounded work: at most `max`
 *   (and 256 KiB) bytes out and about 1 MiB of input in per coding.
 * - Errors are sticky: once `read()` threw, it throws the same error again.
 *
 * @example Decoding a gzip body that arrives in two pieces
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { gzipSync } from "node:zlib";
 * import { ContentDecoder } from "./_decode.ts";
 *
 * const coded = new Uint8Array(gzipSync("hello, world"));
 * const decoder = ContentDecoder.for("gzip", 1024)!;
 * const parts: number[] = [];
 * decoder.write(coded.subarray(0, 10));
 * for (let chunk; (chunk = decoder.read()) !== null;) parts.push(...chunk);
 * decoder.write(coded.subarray(10));
 * decoder.end();
 * for (let chunk; (chunk = decoder.read()) !== null;) parts.push(...chunk);
 * assertEquals(new TextDecoder().decode(new Uint8Array(parts)), "hello, world");
 * assertEquals(decoder.finished, true);
 * ```
 */
export class ContentDecoder {
  /** The innermost stage: its output is the decoded body. */
  #last: Stage;
  /** The outermost stage, fed by `write()`. */
  #first: Stage;
  #maxBytes: number;
  #count = 0;
  #received = 0;
  #ended = false;
  #finished = false;
  #closed = false;
  #error: HttpParseError | null = null;

  private constructor(stages: Stage[], maxBytes: number) {
    this.#first = stages[0]!;
    this.#last = stages[stages.length - 1]!;
    this.#maxBytes = maxBytes;
  }

  /**
   * The decoder for a `Content-Encoding` value, or `null` when nothing is to
   * be decoded (no header, only `identity`, or an unknown last coding).
   *
   * @param contentEncoding The header value, or `null` when absent.
   * @param maxBytes The most decoded bytes allowed (`Infinity` for no limit).
   * @throws {RangeError} When `maxBytes` is negative or NaN.
   * @throws {HttpParseError} `invalid-content-encoding` for more than 5
   *   codings.
   */
  static for(
    contentEncoding: string | null,
    maxBytes: number,
  ): ContentDecoder | null {
    if (!(maxBytes >= 0)) {
      throw new RangeError(
        `Cannot decode content: maxBytes must be a non-negative number, got ${maxBytes}`,
      );
    }
    if (contentEncoding === null) return null;
    const names: string[] = [];
    const codings = contentEncoding.toLowerCase().split(",");
    for (let i = codings.length - 1; i >= 0; i--) {
      const coding = codings[i]!.trim();
      if (coding === "" || coding === "identity") continue;
      if (!Object.hasOwn(ENGINES, coding)) return null;
      names.push(coding);
    }
    if (names.length === 0) return null;
    if (names.length > MAX_CODINGS) {
      // Each coding is a native decoder and a stage of the pipeline: a head
      // listing thousands (60 KB fits the head limit) took gigabytes and
      // overflowed the stack, taking down the whole crawl (curl's
      // CVE-2022-32206, capped at 5 there too).
      throw new HttpParseError(
        "invalid-content-encoding",
        `Cannot decode content: more than ${MAX_CODINGS} content codings (${names.length})`,
        -1,
      );
    }
    const stages: Stage[] = [];
    for (const name of names) {
      stages.push(new Stage(name, stages[stages.length - 1] ?? null));
    }
    if (!decoderKept) {
      // `_specimens.ts` keeps one, closed, from the first decoding on (not
      // at import: see `_decode_engines.ts`).
      decoderKept = true;
      const specimen = new ContentDecoder(
        [new Stage(names[0]!, null)],
        maxBytes,
      );
      specimen.close();
      keepSpecimens(specimen);
    }
    return new ContentDecoder(stages, maxBytes);
  }

  /** `end()` was called and everything was decoded and read. */
  get finished(): boolean {
    return this.#finished;
  }

  /**
   * Feeds the next coded bytes. They are copied: `chunk` may be reused as soon
   * as this returns. Nothing is decoded until `read()`. Ignored after a failure.
   *
   * @throws {TypeError} After `end()`.
   */
  write(chunk: Uint8Array): void {
    // Not chunk.slice(): on a Buffer that is a view, not a copy.
    this.#feed(new Uint8Array(chunk));
  }

  /**
   * Abandons decoding (the request failed or was cancelled): frees the native
   * decoder state now rather than when the decoder is collected. Afterwards
   * `read()` returns `null` and `finished` stays false unless it was true.
   * Idempotent; not needed after `finished` or a failure.
   */
  close(): void {
    if (this.#finished || this.#closed) return;
    this.#closed = true;
    this.#last.close();
  }

  /** Same as {@linkcode ContentDecoder.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * No more input: the coded stream must be complete, else `read()` throws
   * `invalid-content-encoding`. Idempotent.
   */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#closed) return;
    // A body of zero bytes has nothing to decode.
    if (this.#received === 0) {
      this.#finished = true;
      this.#last.close();
      return;
    }
    this.#first.end();
  }

  /**
   * Decodes up to `max` bytes.
   *
   * @param max The most bytes to return, at least 1. Defaults to 256 KiB,
   *   which is also the most one call returns whatever `max` says.
   * @returns A standalone array of decoded bytes (its `.buffer` holds exactly
   *   these); an empty array when this call used up its work budget before any
   *   byte came out (call again); `null` when more input is needed, or when
   *   finished.
   * @throws {HttpParseError} `invalid-content-encoding` for a corrupt or
   *   truncated coded stream, `body-too-large` once more than `maxBytes` bytes
   *   were decoded.
   * @throws {RangeError} When `max` is not a positive integer.
   */
  read(max: number = SLICE): Uint8Array | null {
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(
        `Cannot read decoded content: max must be a positive integer, got ${max}`,
      );
    }
    if (this.#error !== null) throw this.#error;
    if (this.#finished || this.#closed) return null;
    // One byte more than allowed is how passing the limit shows.
    const room = Math.min(max, Math.floor(this.#maxBytes) - this.#count + 1);
    let chunk: Uint8Array | null;
    try {
      chunk = this.#last.read(room, this.#maxBytes);
    } catch (e) {
      this.#fail(e);
    }
    if (chunk === null) {
      if (this.#last.done) this.#finish();
      return null;
    }
    this.#count += chunk.length;
    if (this.#count > this.#maxBytes) {
      this.#fail(tooLarge(this.#last.name, this.#maxBytes));
    }
    if (this.#last.done) this.#finish();
    return chunk;
  }

  #feed(chunk: Uint8Array): void {
    if (this.#ended) {
      throw new TypeError("Cannot write to a content decoder: it was ended");
    }
    if (this.#error !== null || this.#closed || chunk.length === 0) return;
    this.#received += chunk.length;
    this.#first.write(chunk);
  }

  #finish(): void {
    this.#finished = true;
    this.#last.close();
  }

  #fail(e: unknown): never {
    this.#last.close();
    this.#error = e instanceof HttpParseError ? e : new HttpParseError(
      "invalid-content-encoding",
      `Cannot decode content: ${(e as Error).message}`,
      -1,
      { cause: e },
    );
    throw this.#error;
  }

  static {
    adopt = (decoder, body) => decoder.#feed(body);
  }
}

/**
 * Decodes `body` by the `Content-Encoding` header value, last coding first
 * (`identity` skipped). A list with an unknown coding leaves the bytes as they
 * are, as `fetch` does.
 *
 * @param body The body as received.
 * @param contentEncoding The header value, or `null` when absent.
 * @param maxBytes The most decoded bytes allowed.
 * @returns The decoded body as a standalone array (or `body` itself when
 *   nothing applied).
 * @throws {HttpParseError} `invalid-content-encoding` for corrupt or truncated
 *   data, `body-too-large` past `maxBytes`.
 */
export function decodeBody(
  body: Uint8Array,
  contentEncoding: string | null,
  maxBytes: number,
): Uint8Array {
  // HEAD, 204 and 304 responses carry the header but no body to decode.
  if (body.length === 0) return body;
  const decoder = ContentDecoder.for(contentEncoding, maxBytes);
  if (decoder === null) return body;
  adopt(decoder, body);
  decoder.end();
  const chunks: Uint8Array[] = [];
  let length = 0;
  for (let chunk; (chunk = decoder.read()) !== null;) {
    chunks.push(chunk);
    length += chunk.length;
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

function tooLarge(coding: string, maxBytes: number): HttpParseError {
  return new HttpParseError(
    "body-too-large",
    `Cannot decode content: the ${coding} body decodes to more than ${maxBytes} bytes`,
    -1,
  );
}

/**
 * A spare output buffer shared by the decoders' last stages (decoding is
 * synchronous): a slice that fills it is handed out as is and a new spare made;
 * a shorter one is copied out, so small bodies cost one small copy and large
 * ones none.
 */
let spare: Uint8Array | null = null;

/** One coding undone: coded bytes in (from `write()` or the stage before), decoded out. */
class Stage {
  readonly name: string;
  #engine: Engine | null;
  /** The stage whose output is this one's input, or null when fed by write(). */
  #source: Stage | null;
  /** Output buffer of a stage that is another's source (the shared spare may be in use). */
  #own: Uint8Array | null = null;
  #queue: Uint8Array[] = [];
  /** The first queued chunk not used up, and the offset of its next byte. */
  #first = 0;
  #head = 0;
  #ended = false;
  /** The coded stream ended before its input did: the rest is dropped. */
  #past = false;
  #done = false;
  /** The decoder's last run filled the output: it may hold more of it. */
  #held = false;
  /** Bytes taken from the source, which count against the limit too. */
  #fromSource = 0;

  constructor(name: string, source: Stage | null) {
    this.name = name;
    this.#source = source;
    this.#engine = ENGINES[name]!();
    if (source !== null) source.#own = new Uint8Array(0);
  }

  /** The coded stream ended and every decoded byte was read. */
  get done(): boolean {
    return this.#done;
  }

  write(chunk: Uint8Array): void {
    if (!this.#past) this.#queue.push(chunk);
  }

  end(): void {
    this.#ended = true;
  }

  /** Frees this stage's and its sources' native state. Idempotent. */
  close(): void {
    this.#engine?.close();
    this.#engine = null;
    this.#queue = [];
    this.#first = 0;
    this.#source?.close();
  }

  /**
   * Up to `max` decoded bytes, an empty array when the work budget ran out
   * first, or null when more input is needed or the stream is done.
   *
   * @throws {HttpParseError} For corrupt or truncated data, or a source's
   *   output past `maxBytes`.
   */
  read(max: number, maxBytes: number): Uint8Array | null {
    if (this.#done) return null;
    max = Math.min(max, SLICE);
    const out = this.#output();
    let produced = 0;
    let budget = INPUT_BUDGET;
    try {
      while (produced < max && budget > 0) {
        if (this.#first === this.#queue.length && !this.#ended) {
          if (this.#held) {
            // The last run filled its output: the decoder may hold more output
            // for the input it has taken, which a streaming reader wants now.
            const engine = this.#engine!;
            engine.run(EMPTY, 0, 0, out, produced, max - produced, false);
            const before = produced;
            produced = max - engine.availOut;
            this.#held = engine.availOut === 0;
            if (produced > before) continue;
            this.#held = false;
          }
          if (this.#source === null || !this.#pull(budget, maxBytes)) break;
          // Each pull is up to a slice of the source's work, whatever came out.
          budget -= Math.min(SLICE, budget);
          continue;
        }
        const engine = this.#engine!;
        const chunk = this.#queue[this.#first];
        if (chunk === undefined) {
          // All input given: drain what the decoder holds, then check the end.
          engine.run(EMPTY, 0, 0, out, produced, max - produced, true);
          produced = max - engine.availOut;
          if (engine.availOut === 0) break;
          if (!engine.complete()) throw new Error("unexpected end of data");
          this.#done = true;
          break;
        }
        const inLen = Math.min(chunk.length - this.#head, budget);
        engine.run(
          chunk,
          this.#head,
          inLen,
          out,
          produced,
          max - produced,
          false,
        );
        const used = inLen - engine.availIn;
        produced = max - engine.availOut;
        this.#held = engine.availOut === 0;
        budget -= used;
        this.#head += used;
        if (this.#head === chunk.length) {
          this.#queue[this.#first++] = EMPTY;
          this.#head = 0;
          if (this.#first === this.#queue.length) {
            this.#queue.length = this.#first = 0;
          }
        }
        if (engine.availIn > 0 && engine.availOut > 0) {
          // Bytes after the end of a whole, checked stream (a newline, zero
          // padding, a snippet a server appended): dropped, as browsers do.
          this.#past = true;
          this.#queue = [];
          this.#first = this.#head = 0;
        }
      }
    } catch (e) {
      if (e instanceof HttpParseError) throw e;
      const reason = (e as Error).message.replace(
        /^zstd decompress error: /i,
        "",
      );
      throw new HttpParseError(
        "invalid-content-encoding",
        `Cannot decode ${this.name} content: ${reason}`,
        -1,
        { cause: e },
      );
    }
    if (produced === 0) return budget > 0 || this.#done ? null : EMPTY;
    if (produced < out.length) return out.slice(0, produced);
    if (out === spare) spare = null;
    if (out === this.#own) this.#own = new Uint8Array(0);
    return out;
  }

  /**
   * Takes the next slice of the source's output into the queue.
   *
   * @returns Whether there is input to go on with (or the source ended).
   */
  #pull(budget: number, maxBytes: number): boolean {
    const source = this.#source!;
    const more = source.read(Math.min(SLICE, budget), maxBytes);
    if (source.done) this.#ended = true;
    if (more === null) return this.#ended;
    this.#fromSource += more.length;
    if (this.#fromSource > maxBytes) throw tooLarge(source.name, maxBytes);
    if (more.length > 0) this.#queue.push(more);
    return true;
  }

  #output(): Uint8Array {
    if (this.#own === null) {
      return spare ??= new Uint8Array(SLICE);
    }
    if (this.#own.length === 0) this.#own = new Uint8Array(SLICE);
    return this.#own;
  }
}
