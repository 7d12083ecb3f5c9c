/**
 * The bodies of one request, apart from the state machine that drives them: the
 * request body read from a caller's stream, and the response body kept in memory
 * or written to a caller's sink. No I/O on conns here.
 *
 * @module
 */

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();
const noop = () => {};

/** Bodies with at least this much left are read straight into their buffer. */
export const DIRECT_READ_MIN = 8 * 1024;
/** How far a body buffer grows ahead of the bytes that arrived (a `Content-Length` is a claim). */
export const GROW_AHEAD = 1024 * 1024;

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

/** A request body read from the caller's stream, framed for the wire. */
export class BodyStream {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  /** The bytes announced with `Content-Length`; -1 when sent chunked. */
  readonly #length: number;
  #sent = 0;
  #result: ReadableStreamReadResult<Uint8Array> | null = null;
  /** The read in flight: asked again before it settles, it is the answer again. */
  #pending: Promise<unknown> | null = null;
  #error: unknown = null;
  #failed = false;
  finished = false;

  /**
   * Locks `stream` at once, so that a second request built over the same stream
   * before this one reads it fails up front, not after its head went out.
   *
   * @throws {TypeError} If the stream is locked.
   */
  constructor(stream: ReadableStream<Uint8Array>, length: number) {
    if (stream.locked) throw lockedError();
    this.#reader = stream.getReader();
    this.#length = length;
  }

  /** The next bytes to send, or a promise that settles when they can be known. */
  next(): Uint8Array | Promise<unknown> {
    for (;;) {
      if (this.#failed) throw this.#error;
      const result = this.#result;
      if (result === null) {
        // Never a second read while one is in flight: both would store their
        // chunk in #result, and one chunk would be lost.
        return this.#pending ??= this.#reader.read().then((r) => {
          this.#pending = null;
          this.#result = r;
        }, (e) => {
          this.#pending = null;
          this.#failed = true;
          this.#error = e;
        });
      }
      this.#result = null;
      if (result.done) {
        this.finished = true;
        if (this.#length < 0) return encoder.encode("0\r\n\r\n");
        if (this.#sent !== this.#length) {
          throw new TypeError(
            `Cannot send request: the body stream ended after ${this.#sent} of the ${this.#length} bytes of its Content-Length`,
          );
        }
        return EMPTY;
      }
      const chunk: unknown = result.value;
      if (!(chunk instanceof Uint8Array)) {
        throw new TypeError(
          `Cannot send request: the body stream yielded a ${
            describe(chunk)
          }, expected a Uint8Array`,
        );
      }
      if (chunk.length === 0) continue; // would end a chunked body
      this.#sent += chunk.length;
      if (this.#length < 0) {
        const size = `${chunk.length.toString(16)}\r\n`;
        const out = new Uint8Array(size.length + chunk.length + 2);
        encoder.encodeInto(size, out);
        out.set(chunk, size.length);
        out[out.length - 2] = 13;
        out[out.length - 1] = 10;
        return out;
      }
      if (this.#sent > this.#length) {
        throw new TypeError(
          `Cannot send request: the body stream yielded more than the ${this.#length} bytes of its Content-Length`,
        );
      }
      // The caller may reuse its chunk once read: send a copy.
      return chunk.slice();
    }
  }

  /** Cancels the stream (the request failed); never throws. */
  cancel(reason: unknown): void {
    if (this.finished) return;
    this.finished = true;
    this.#reader.cancel(reason).catch(noop);
  }
}

/**
 * A body kept in memory: one standalone buffer, never larger than what arrived
 * plus {@linkcode GROW_AHEAD} (a `Content-Length` is only the server's claim).
 * A body known to be large grows in place, inside an `ArrayBuffer` resizable up
 * to its `Content-Length`, so no byte is copied.
 */
export class BodyBuffer {
  #buf: Uint8Array = EMPTY;
  #length = 0;
  readonly #declared: number;
  #resizable: ArrayBuffer | null = null;

  /** @param declared The `Content-Length`, or -1 when unknown. */
  constructor(declared: number) {
    this.#declared = declared;
  }

  /** Makes room for `n` more bytes. */
  reserve(n: number): void {
    const need = this.#length + n;
    if (need <= this.#buf.length) return;
    const declared = this.#declared;
    if (declared >= need) {
      // Ahead of the bytes by at most as many as arrived (or GROW_AHEAD): a
      // resizable buffer doubles in place, so reads stay large and nothing is copied.
      const ahead = Math.max(GROW_AHEAD, this.#length);
      const size = Math.min(declared, Math.max(need, this.#length + ahead));
      if (this.#resizable !== null) {
        this.#resizable.resize(size);
        this.#buf = new Uint8Array(this.#resizable, 0, size);
        return;
      }
      if (size === declared && this.#length === 0) {
        this.#buf = new Uint8Array(size);
        return;
      }
      if (this.#length === 0) {
        try {
          this.#resizable = new ArrayBuffer(size, { maxByteLength: declared });
          this.#buf = new Uint8Array(this.#resizable, 0, size);
          return;
        } catch {
          // No address space to reserve: grow by copying instead.
        }
      }
      this.#grow(size);
      return;
    }
    // Unknown length: exact for the first bytes (often the whole body), then doubling.
    this.#grow(
      this.#buf === EMPTY ? need : Math.max(need, this.#buf.length * 2),
    );
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
    // A resizable buffer ends full: it only grows up to the Content-Length.
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
