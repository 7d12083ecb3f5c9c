/**
 * The bodies of one request, apart from the state machine that drives them: the
 * request body read from a caller's stream, and the response body kept in memory
 * or written to a caller's sink. No I/O on conns here.
 *
 * @module
 */

import { setImmediate } from "node:timers";

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();
/** The end of a chunked body (no trailer fields). */
const LAST_CHUNK = encoder.encode("0\r\n\r\n");
/** The ASCII hex digits, for chunk sizes. */
const HEX = encoder.encode("0123456789abcdef");
const noop = () => {};

/** Bodies with at least this much left are read straight into their buffer. */
export const DIRECT_READ_MIN = 8 * 1024;
/** How far a body buffer grows ahead of the bytes that arrived (a `Content-Length` is a claim). */
export const GROW_AHEAD = 1024 * 1024;
/**
 * The address space a body of unknown length reserves to grow in place (only
 * the pages it fills take memory): past this, it grows by copies.
 */
const UNKNOWN_RESERVE = 16 * 1024 ** 3;
/** How far past its bytes a body of unknown length grows in place, at most. */
const GROW_STEP = 4 * 1024 * 1024;
/** Bodies of unknown length up to this size end in a buffer of their own size. */
const COPY_UP_TO = 4 * 1024 * 1024;

/** What `value` is, for a message: "Number", "String", "Null", "ArrayBuffer"... */
function describe(value: unknown): string {
  return Object.prototype.toString.call(value).slice(8, -1);
}

/** A body stream someone already reads (another request, or the caller). */
export function lockedError(): TypeError {
  return new TypeError(
    "Cannot build request: the body stream is locked (already being read)",
  );
}

/**
 * Why `stream` cannot be a request body, or `null`: it is locked, or it is
 * disturbed (read from, or cancelled, before): what is left of it is not the
 * body the caller made (a drained or cancelled stream would go out as an empty
 * body, a partly read one without its start), and `fetch` refuses it too.
 * Streams have no public "disturbed"; a `Response` over the stream tells it
 * (the Fetch standard's own check) without reading or locking it.
 */
export function unusableStreamError(
  stream: ReadableStream<Uint8Array>,
): TypeError | null {
  if (stream.locked) return lockedError();
  try {
    new Response(stream);
  } catch {
    return new TypeError(
      "Cannot build request: the body stream was read from or cancelled before (it is disturbed)",
    );
  }
  return null;
}

/**
 * How many framed bytes a body stream reads ahead of what was handed out. A
 * stream whose chunks come at once (from memory, a generator) then goes out a
 * select turn per this much, not per chunk; the caller's stream keeps its own
 * queue besides.
 */
export const READ_AHEAD = 256 * 1024;
/**
 * The largest buffer chunks are joined in, one after another, and so the most
 * bytes of them handed out in one piece: a write call. Chunks of 16-64 KiB
 * went out a write each (~270 a 6 MB upload of 20,000 B chunks, against ~75
 * for `fetch`), and each such write also runs the receiver's TCP path on
 * loopback.
 */
const ARENA_MAX = 256 * 1024;
/**
 * A body stream's first buffer for joined chunks; each next one 4x the last,
 * up to {@linkcode ARENA_MAX}, and in the same steps as large as a chunk
 * needs: a small body takes little.
 */
const FIRST_ARENA = 16 * 1024;
/** Chunks up to this size (framed: a 64 KiB chunk still) are joined; larger ones are copied alone. */
const JOINED_MAX = ARENA_MAX / 4 + 16;
/**
 * Buffers chunks were copied into that their conn has written, for the next
 * chunks of any stream: a 1 MiB upload in 64 KiB chunks is over before its
 * own first buffers are written.
 */
const spare: ArrayBuffer[] = [];
/**
 * The bytes of the spare buffers and of those handed out that a stream keeps
 * to make spare once written: at most {@linkcode POOL_BYTES}, as a buffer a
 * stream keeps would otherwise be freed once written (many uploads at once
 * held ~40 MiB more without this bound).
 */
let pooledBytes = 0;
/**
 * The bound of {@linkcode pooledBytes}: what a few uploads have in flight
 * (each its read-ahead, its arena and a conn's write queue: ~1.5 MiB of
 * chunks up to 64 KiB, ~3 MiB of 1 MiB ones), so that files' chunks reuse a
 * few buffers; what may stay allocated after the last upload. (4 uploads of
 * 64 KiB chunks at once: 4 MiB took ~10% more CPU, and ~16 MiB more peak RSS
 * in buffers waiting for V8 to free them.)
 */
const POOL_BYTES = 8 * 1024 * 1024;

/**
 * A buffer of `size` bytes: a spare one of `size` to `2 * size` bytes if
 * there is one (not larger: uploads of mixed sizes would keep the largest).
 * In Deno a new 64 KiB buffer costs ~6x copying 64 KiB into one (8 against
 * 1.4 µs here: its zeroed pages, V8's accounting, its collection).
 */
function pooled(size: number): Uint8Array {
  for (let i = spare.length - 1; i >= 0; i--) {
    const buffer = spare[i]!;
    if (buffer.byteLength >= size && buffer.byteLength <= 2 * size) {
      spare[i] = spare[spare.length - 1]!;
      spare.pop();
      pooledBytes -= buffer.byteLength;
      return new Uint8Array(buffer, 0, size);
    }
  }
  // None fits: if the new one would find no room in the pool once written,
  // the oldest go, so that the pool follows the sizes in use.
  while (pooledBytes + size > POOL_BYTES && spare.length > 0) {
    pooledBytes -= spare.shift()!.byteLength;
  }
  // (Not `new ArrayBuffer(size)` and a view: ~10% slower for 1 MiB here.)
  return new Uint8Array(size);
}

/**
 * A request body read from the caller's stream, framed for the wire. Each chunk
 * is copied as it arrives (its producer may reuse it once the next is asked
 * for): up to 64 KiB ones one after another into an arena, and handed out
 * together. Reads go on ahead while less than
 * {@linkcode READ_AHEAD} waits. A wait for bytes ends one event-loop turn after
 * the first arrive (at once when the stream ends or fails, or the read-ahead is
 * full): the chunks a stream has at hand all come in that turn, and go out in
 * one piece.
 *
 * Arenas, and the buffers larger chunks are copied into alone, are those of
 * earlier ones (of any stream) that their conn has written, when there are
 * ({@linkcode pooled}): `next()`'s caller says how many bytes it has not
 * written, and `release()` at the end.
 */
export class BodyStream {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  /** The bytes announced with `Content-Length`; -1 when sent chunked. */
  readonly #length: number;
  /** Bytes of the body read so far. */
  #read = 0;
  /**
   * Framed pieces read ahead, in order, before the open part of the arena; a
   * failure or the end comes after them all.
   */
  #queue: Uint8Array[] = [];
  /** Framed bytes read ahead, not handed out: the queue's and the arena's. */
  #queued = 0;
  /**
   * Joined chunks' bytes: `[#handed, #used)` are read ahead and still in the
   * arena (what was before is handed out or queued).
   */
  #arena: Uint8Array = EMPTY;
  #handed = 0;
  #used = 0;
  /** The last piece cut from the arena into the queue, while still there. */
  #cut: Uint8Array | null = null;
  /** The stream's read in flight (never two: their chunks could land out of order). */
  #reading = false;
  #ended = false;
  #error: unknown = null;
  #failed = false;
  /** Bytes `next()` handed out in all. */
  #handedTotal = 0;
  /**
   * The pieces in the queue that are the last cut from their buffer (a large
   * chunk's, or an arena's that is full): once handed out, the conn has the
   * whole buffer (see {@linkcode spare}).
   */
  #last = new Set<Uint8Array>();
  /**
   * Those handed out and kept, in order, each with `#handedTotal` at its end;
   * their bytes count in {@linkcode pooledBytes}.
   */
  #lent: { buffer: ArrayBufferLike; end: number }[] = [];
  /** What `next()` answered while nothing was at hand: the same until it settles. */
  #waiter: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #wakeScheduled = false;
  finished = false;

  /**
   * Locks `stream` at once, so that a second request built over the same stream
   * before this one reads it fails up front, not after its head went out.
   *
   * @throws {TypeError} If the stream is locked or disturbed.
   */
  constructor(stream: ReadableStream<Uint8Array>, length: number) {
    const unusable = unusableStreamError(stream);
    if (unusable !== null) throw unusable;
    this.#reader = stream.getReader();
    this.#length = length;
  }

  /**
   * The next bytes to send (chunks read ahead come joined, up to
   * {@linkcode ARENA_MAX}), or a promise that settles when they can be known.
   * Each piece must be handed whole to one conn before the next is asked for:
   * with `unwritten`, that conn's bytes accepted and not yet written (the
   * pieces before them may be overwritten from now on).
   */
  next(unwritten?: number): Uint8Array | Promise<unknown> {
    if (unwritten !== undefined) this.#written(unwritten);
    let out = this.#queue.shift();
    if (out === undefined && this.#used > this.#handed) {
      if (this.#ended && !this.#failed) this.#endInArena();
      out = this.#arena.subarray(this.#handed, this.#used);
      this.#handed = this.#used;
    }
    if (out === this.#cut) this.#cut = null;
    if (out !== undefined) {
      this.#queued -= out.length;
      this.#handedTotal += out.length;
      if (this.#last.size > 0 && this.#last.delete(out)) this.#lend(out);
      this.#readAhead();
      return out;
    }
    if (this.#failed) throw this.#error;
    if (!this.#ended) {
      this.#readAhead();
      return this.#waiter ??= new Promise((resolve) => this.#wake = resolve);
    }
    this.finished = true;
    if (this.#length < 0) return LAST_CHUNK;
    if (this.#read !== this.#length) {
      throw new TypeError(
        `Cannot send request: the body stream ended after ${this.#read} of the ${this.#length} bytes of its Content-Length`,
      );
    }
    return EMPTY;
  }

  /**
   * The exchange is over: the pieces the conn has written are spare, and the
   * stream lets go of the others, which the conn drops once written (a kept
   * client would otherwise hold them until its next request).
   */
  release(unwritten: number): void {
    // Everything was handed out: the arena's last piece too.
    if (this.#used === this.#handed && this.#queue.length === 0) {
      this.#retireArena();
    }
    this.#written(unwritten);
    this.#drop();
  }

  /** The conn took the last piece of `piece`'s buffer: it is spare once written. */
  #lend(piece: Uint8Array): void {
    const buffer = piece.buffer;
    const size = buffer.byteLength;
    if (pooledBytes + size <= POOL_BYTES) {
      this.#lent.push({ buffer, end: this.#handedTotal });
      pooledBytes += size;
    }
  }

  /**
   * The conn that took every piece handed out still holds `unwritten` bytes
   * of them (the last ones): the buffers of the pieces before are spare.
   */
  #written(unwritten: number): void {
    const lent = this.#lent;
    const written = this.#handedTotal - unwritten;
    let i = 0;
    // Their bytes stay counted: they move from lent to spare.
    while (i < lent.length && lent[i]!.end <= written) {
      spare.push(lent[i++]!.buffer as ArrayBuffer);
    }
    if (i > 0) lent.splice(0, i);
  }

  /** Lets go of the buffers the conn may still hold: not spare, not counted. */
  #drop(): void {
    for (const { buffer } of this.#lent) pooledBytes -= buffer.byteLength;
    this.#lent = [];
    this.#last.clear();
  }

  /** Cancels the stream (the request failed); never throws. */
  cancel(reason: unknown): void {
    // Finished too: the buffers handed out leave the pool's count.
    this.#drop();
    if (this.finished) return;
    this.finished = true;
    this.#queue = [];
    this.#queued = 0;
    this.#arena = EMPTY;
    this.#handed = this.#used = 0;
    this.#cut = null;
    this.#reader.cancel(reason).catch(noop);
    this.#wakeNow();
  }

  /** Reads on if no read is in flight, nothing ended the stream, and there is room. */
  #readAhead(): void {
    if (
      this.#reading || this.#ended || this.#failed || this.finished ||
      this.#queued >= READ_AHEAD
    ) return;
    this.#reading = true;
    this.#reader.read().then(this.#onRead, this.#onError);
  }

  #onRead = (result: ReadableStreamReadResult<Uint8Array>): void => {
    this.#reading = false;
    if (this.finished) return; // cancelled meanwhile
    if (result.done) {
      this.#ended = true;
      return this.#wakeNow();
    }
    const chunk: unknown = result.value;
    if (!(chunk instanceof Uint8Array)) {
      return this.#fail(
        new TypeError(
          `Cannot send request: the body stream yielded a ${
            describe(chunk)
          }, expected a Uint8Array`,
        ),
      );
    }
    // An empty chunk would end a chunked body: skipped.
    if (chunk.length > 0) {
      this.#read += chunk.length;
      if (this.#length >= 0 && this.#read > this.#length) {
        return this.#fail(
          new TypeError(
            `Cannot send request: the body stream yielded more than the ${this.#length} bytes of its Content-Length`,
          ),
        );
      }
      this.#queued += this.#take(chunk);
      if (this.#queued >= READ_AHEAD) this.#wakeNow();
      else if (this.#wake !== null && !this.#wakeScheduled) {
        // Not at once: what else the stream has at hand comes in this turn.
        this.#wakeScheduled = true;
        setImmediate(this.#wakeNow);
      }
    }
    this.#readAhead();
  };

  /** Copies `chunk`, framed, behind what waits; returns the bytes it takes. */
  #take(chunk: Uint8Array): number {
    const n = chunk.length;
    const chunked = this.#length < 0;
    // Chunked: the size in hex, CRLF, the chunk, CRLF.
    let digits = chunked ? 1 : 0;
    for (let v = n; chunked && v >= 16; v = Math.floor(v / 16)) digits++;
    const framed = chunked ? digits + n + 4 : n;
    let out: Uint8Array;
    let at = 0;
    if (framed > JOINED_MAX) {
      this.#closeArena();
      out = pooled(framed);
      this.#queue.push(out);
      this.#last.add(out);
    } else {
      if (this.#used + framed > this.#arena.length) {
        const prev = this.#arena.length;
        this.#retireArena();
        let size = prev === 0 ? FIRST_ARENA : Math.min(ARENA_MAX, 4 * prev);
        while (size < framed) size *= 4; // at most ARENA_MAX: framed ≤ JOINED_MAX
        this.#arena = pooled(size);
        this.#handed = this.#used = 0;
      }
      out = this.#arena;
      at = this.#used;
      this.#used += framed;
    }
    if (chunked) {
      for (let i = digits - 1, v = n; i >= 0; i--, v = Math.floor(v / 16)) {
        out[at + i] = HEX[v % 16]!;
      }
      out[at + digits] = 13;
      out[at + digits + 1] = 10;
      at += digits + 2;
    }
    out.set(chunk, at);
    if (chunked) {
      out[at + n] = 13;
      out[at + n + 1] = 10;
    }
    return framed;
  }

  /**
   * The stream ended and the arena holds its last bytes: the end goes with them
   * (the last chunk's terminator, or the check of `Content-Length`), not in a
   * write of its own. Leaves the end to `next()` when it would fail.
   */
  #endInArena(): void {
    if (this.#length >= 0) {
      if (this.#read === this.#length) this.finished = true;
      return;
    }
    const at = this.#used;
    if (at + LAST_CHUNK.length > this.#arena.length) return;
    this.#arena.set(LAST_CHUNK, at);
    this.#used = at + LAST_CHUNK.length;
    this.#queued += LAST_CHUNK.length;
    this.finished = true;
  }

  /** Queues what the arena holds that was not handed out: a large piece goes after it. */
  #closeArena(): void {
    if (this.#used > this.#handed) {
      const piece = this.#arena.subarray(this.#handed, this.#used);
      this.#queue.push(piece);
      this.#cut = piece;
      this.#handed = this.#used;
    }
  }

  /**
   * No more is joined in the arena: its buffer is spare once its last piece
   * is handed out and written. That piece may wait in the queue (cut when a
   * large chunk came), or have been handed out already, and maybe large ones
   * after it: then the buffer counts as written with them, later than it is,
   * never earlier.
   */
  #retireArena(): void {
    if (this.#arena === EMPTY) return;
    this.#closeArena();
    if (this.#cut !== null) this.#last.add(this.#cut);
    else if (this.#used > 0) this.#lend(this.#arena);
    this.#arena = EMPTY;
    this.#handed = this.#used = 0;
    this.#cut = null;
  }

  #onError = (error: unknown): void => {
    this.#reading = false;
    if (!this.finished) this.#fail(error);
  };

  #fail(error: unknown): void {
    this.#failed = true;
    this.#error = error;
    this.#wakeNow();
  }

  #wakeNow = (): void => {
    this.#wakeScheduled = false;
    const wake = this.#wake;
    this.#wake = null;
    this.#waiter = null;
    wake?.();
  };
}

/**
 * A body kept in memory: one standalone buffer, never larger than what arrived
 * plus {@linkcode GROW_AHEAD} (a `Content-Length` is only the server's claim).
 * A body known to be large grows in place, inside an `ArrayBuffer` resizable up
 * to its `Content-Length`, so no byte is copied. A body of unknown length
 * (chunked, or decoded) moves into one past `GROW_AHEAD`, resizable up to the
 * body limit or {@linkcode UNKNOWN_RESERVE}, and grows in steps of up to
 * `GROW_STEP`: doubling by copies, each made at once, held the loop ~0.4 s
 * (gzip) to ~0.7 s (chunked) on a 512 MiB body.
 */
export class BodyBuffer {
  #buf: Uint8Array = EMPTY;
  #length = 0;
  readonly #declared: number;
  readonly #limit: number;
  #resizable: ArrayBuffer | null = null;

  /**
   * @param declared The `Content-Length`, or -1 when unknown.
   * @param limit The most bytes the body may hold (`maxResponseBytes`).
   */
  constructor(declared: number, limit = Infinity) {
    this.#declared = declared;
    this.#limit = limit;
  }

  /** Makes room for `n` more bytes. */
  reserve(n: number): void {
    const need = this.#length + n;
    if (need <= this.#buf.length) return;
    const length = this.#length;
    const declared = this.#declared;
    let size: number;
    let max: number;
    let start: boolean;
    if (declared >= need) {
      // Ahead of the bytes by at most as many as arrived (or GROW_AHEAD): a
      // resizable buffer doubles in place, so reads stay large and nothing is copied.
      size = Math.min(
        declared,
        Math.max(need, length + Math.max(GROW_AHEAD, length)),
      );
      if (size === declared && length === 0) {
        this.#buf = new Uint8Array(size);
        return;
      }
      max = declared;
      start = length === 0;
    } else {
      // Unknown length: exact for the first bytes (often the whole body), then
      // doubling; once in place (past GROW_AHEAD), a step at a time, as
      // shrinking to the body at its end zeroes the unfilled tail (~0.3 s for
      // 512 MiB doubled ahead).
      size = this.#resizable !== null
        ? Math.max(need, length + Math.min(length, GROW_STEP))
        : this.#buf === EMPTY
        ? need
        : Math.max(need, this.#buf.length * 2);
      max = Math.max(size, Math.min(this.#limit, UNKNOWN_RESERVE));
      start = size > GROW_AHEAD && this.#buf.length <= GROW_AHEAD;
    }
    const resizable = this.#resizable;
    if (resizable !== null) {
      if (size <= resizable.maxByteLength) {
        resizable.resize(size);
        this.#buf = new Uint8Array(resizable, 0, size);
        return;
      }
      // Past the reservation: copies from here on, doubling, as a last resort.
      this.#resizable = null;
      size = Math.max(need, this.#buf.length * 2);
    } else if (start) {
      try {
        const grown = new Uint8Array(
          this.#resizable = new ArrayBuffer(size, { maxByteLength: max }),
        );
        grown.set(this.#buf.subarray(0, length));
        this.#buf = grown;
        return;
      } catch {
        // No address space to reserve: grow by copying instead.
      }
    }
    this.#grow(size);
  }

  #grow(size: number): void {
    const grown = new Uint8Array(size);
    grown.set(this.#buf.subarray(0, this.#length));
    this.#buf = grown;
  }

  /** Appends `chunk`; an `owned`, standalone first chunk is kept as is. */
  write(chunk: Uint8Array, owned: boolean): void {
    if (
      owned && this.#buf === EMPTY && isStandalone(chunk)
    ) {
      this.#buf = chunk;
      this.#length = chunk.length;
      return;
    }
    if (this.#length + chunk.length > this.#buf.length) {
      this.reserve(chunk.length);
    }
    this.#buf.set(chunk, this.#length);
    this.#length += chunk.length;
  }

  /** Where a direct read of up to `max` bytes lands, right after the last byte. */
  room(max: number): Uint8Array {
    this.reserve(1);
    return this.#buf.subarray(
      this.#length,
      Math.min(this.#buf.length, this.#length + max),
    );
  }

  /** `n` bytes were read into the last room. */
  commit(n: number): void {
    this.#length += n;
  }

  /** The body, as a standalone array. */
  take(): Uint8Array {
    const buf = this.#buf;
    const length = this.#length;
    this.#buf = EMPTY;
    if (buf === EMPTY) return new Uint8Array(0);
    const resizable = this.#resizable;
    if (resizable !== null && this.#declared < 0) {
      this.#resizable = null;
      // A body of unknown length: its buffer reserves up to UNKNOWN_RESERVE of
      // address space for as long as it is held. A small one is copied into
      // one of its own size (~3 ms at 4 MiB), so that a crawl keeping many
      // bodies holds no more than it has; a larger one shrinks in place
      // (copying 512 MiB took 0.4 s), its count bounded by memory.
      if (length <= COPY_UP_TO) return buf.slice(0, length);
      if (length < buf.length) resizable.resize(length);
      return new Uint8Array(resizable, 0, length);
    }
    // A known length's buffer ends full: it only grows up to the Content-Length.
    return length === buf.length ? buf : buf.slice(0, length);
  }
}

/**
 * A body written to a caller's sink as it arrives. Chunks are never views of a
 * conn's or a slab's buffer: copies, or (direct reads) views of a buffer that holds
 * only this body's bytes, shared by consecutive chunks.
 */
export class SinkBody {
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #error: unknown = null;
  #room: Uint8Array = EMPTY;

  /**
   * @param failed Called if the sink fails on its own (errored by its
   *   controller): no write of ours may be pending to tell.
   */
  constructor(sink: WritableStream<Uint8Array>, failed?: () => void) {
    this.#writer = sink.getWriter();
    this.#writer.closed.catch((e) => {
      this.#onError(e);
      failed?.();
    });
  }

  /** Why the sink failed, or `null`. */
  get error(): unknown {
    return this.#error;
  }

  /** A promise of the writer's readiness while it is not ready, else `null`. */
  get ready(): Promise<void> | null {
    const desired = this.#writer.desiredSize;
    return desired !== null && desired <= 0 ? this.#writer.ready : null;
  }

  reserve(_n: number): void {}

  write(chunk: Uint8Array, owned: boolean): void {
    this.#writer.write(owned ? chunk : chunk.slice()).catch(this.#onError);
  }

  room(max: number): Uint8Array {
    if (this.#room.length < DIRECT_READ_MIN) {
      this.#room = new Uint8Array(Math.min(max, GROW_AHEAD));
    }
    return this.#room.subarray(0, Math.min(max, this.#room.length));
  }

  commit(n: number): void {
    // The rest of the buffer takes the next read: chunks of one body share it.
    this.write(this.#room.subarray(0, n), true);
    this.#room = this.#room.subarray(n);
  }

  /** Closes the sink; the promise never rejects (a failure lands in `error`). */
  close(): Promise<void> {
    return this.#writer.close().catch(this.#onError);
  }

  abort(reason: unknown): void {
    this.#writer.abort(reason).catch(noop);
  }

  #onError = (e: unknown): void => {
    this.#error ??= e ?? new TypeError("Cannot write body: the sink failed");
  };
}

/** Whether `bytes` is a plain `Uint8Array` over exactly its own `ArrayBuffer`. */
function isStandalone(bytes: Uint8Array): boolean {
  return bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength &&
    bytes.buffer instanceof ArrayBuffer &&
    Object.getPrototypeOf(bytes) === Uint8Array.prototype;
}
