/**
 * Incremental decoders for one content coding each, over the native handles
 * behind Deno's `node:zlib` streams.
 *
 * Why the handles and not the public API: `node:zlib`'s one-shot functions
 * decode a whole body in one blocking call, its streams are asynchronous, and
 * in Deno 2.9 its one-shot brotli and zstd decoders accept corrupt or
 * truncated input without an error. The handles (Node's binding shape: `init`,
 * `writeSync`/`write(flush, input, inOff, inLen, out, outOff, outLen, state)`
 * leaving `[availOut, availIn]` in `state`) decode synchronously in slices as
 * large as the caller's output buffer. How each reports failure, as read from
 * Deno's `ext/node/ops/zlib/mod.rs` and checked by `tests/decode_test.ts`:
 *
 * - zlib (deflate, raw deflate; gzip's deflate data, its layout read by
 *   {@linkcode GzipEngine}): `writeSync` calls `handle.onerror(message,
 *   errno)` before it returns, for corrupt data and, with `Z_FINISH`, for a
 *   stream that has not ended ("unexpected end of file").
 * - brotli: `writeSync` drops the decoder's result, so corrupt data looks like
 *   a stall; `write` (synchronous too, despite its name) calls `onerror`. Neither
 *   reports a stream that has not ended: a probe byte fed after the end tells
 *   (a finished brotli decoder consumes no more input, an unfinished one does).
 * - zstd: `writeSync` throws for corrupt data and reports nothing for a stream
 *   cut off inside a frame: {@linkcode ZstdFrames} follows the frame layout to
 *   tell.
 *
 * @module
 */
import zlib from "node:zlib";
import {
  SKIPPABLE_MAGIC,
  SKIPPABLE_MASK,
  ZSTD_MAGIC,
  ZstdFrames,
} from "./_decode_zstd_frames.ts";
import { keepSpecimens } from "./_specimens.ts";

/** A native decoder handle of Deno's `node:zlib`, in Node's binding shape. */
interface NativeHandle {
  init(...args: unknown[]): unknown;
  write(...args: WriteArgs): void;
  writeSync(...args: WriteArgs): void;
  close(): void;
  /** Called by the native code for a failure; it must be a function. */
  onerror: (message: string, errno: number) => void;
  /** The failure `onerror` recorded during the last call, else null. */
  failure: string | null;
}

type WriteArgs = [
  flush: number,
  input: Uint8Array,
  inOff: number,
  inLen: number,
  out: Uint8Array,
  outOff: number,
  outLen: number,
  state: Uint32Array,
];

type NativeClass = new (mode: number) => NativeHandle;

const C = zlib.constants as unknown as Record<string, number>;
const Z_NO_FLUSH = C["Z_NO_FLUSH"]!;
const Z_FINISH = C["Z_FINISH"]!;
/** RFC 9659 section 3: zstd windows above 8 MiB need not be decoded. */
const ZSTD_WINDOW_LOG_MAX = 23;
const EMPTY = new Uint8Array(0);
/** Fed to a brotli decoder after the last input: see the module doc. */
const PROBE = new Uint8Array(1);
/** Enough room that a brotli decoder given the probe byte never stops for output. */
const PROBE_OUT = new Uint8Array(4096);

/**
 * One coding's decoder. `run()` decodes `input[inOff, inOff + inLen)` into
 * `out[outOff, outOff + outLen)` and leaves what it did not use of each in
 * {@linkcode Engine.availIn} and {@linkcode Engine.availOut}. It stops only
 * when the output is full, the input is used up, or the coded stream ended
 * (input left over then is data after the end).
 */
export interface Engine {
  /**
   * @param last No input follows this call's.
   * @throws {Error} with the decoder's reason for corrupt data (or, with
   *   `last`, for a zlib stream that has not ended).
   */
  run(
    input: Uint8Array,
    inOff: number,
    inLen: number,
    out: Uint8Array,
    outOff: number,
    outLen: number,
    last: boolean,
  ): void;
  readonly availIn: number;
  readonly availOut: number;
  /**
   * Asked once, after the last input was given and every byte of output
   * taken: whether the coded stream ended where the input did.
   */
  complete(): boolean;
  /** Frees the native state. Idempotent; the engine is unusable afterwards. */
  close(): void;
}

let classes: Record<"zlib" | "brotli" | "zstd", NativeClass> | undefined;

function nativeClasses(): NonNullable<typeof classes> {
  if (classes !== undefined) return classes;
  // The classes are not exported: a throwaway stream of each kind shows them.
  classes = {
    zlib: classOf(zlib.createInflateRaw(), "zlib"),
    brotli: classOf(zlib.createBrotliDecompress(), "brotli"),
    zstd: classOf(
      (zlib as unknown as { createZstdDecompress(): unknown })
        .createZstdDecompress(),
      "zstd",
    ),
  };
  return classes;
}

function classOf(stream: unknown, name: string): NativeClass {
  const handle = (stream as { _handle?: { constructor?: unknown } })._handle;
  const ctor = handle?.constructor as NativeClass | undefined;
  const proto = ctor?.prototype as Partial<NativeHandle> | undefined;
  if (
    typeof ctor !== "function" || typeof proto?.init !== "function" ||
    typeof proto.write !== "function" ||
    typeof proto.writeSync !== "function" || typeof proto.close !== "function"
  ) {
    throw new Error(
      `Cannot decode content: node:zlib in this runtime has no ${name} handle in the expected shape`,
    );
  }
  // Frees the throwaway stream's own native state.
  (stream as { close(): void }).close();
  return ctor;
}

function recordFailure(this: NativeHandle, message: string): void {
  this.failure = message;
}

function open(kind: "zlib" | "brotli" | "zstd", mode: number): NativeHandle {
  const handle = new (nativeClasses()[kind])(mode);
  handle.onerror = recordFailure;
  handle.failure = null;
  return handle;
}

function noop(): void {}

/**
 * Deno frees a handle's native state only in `close()`, not when the handle is
 * collected (a brotli decoder's window is up to 16 MiB): an engine dropped
 * without `close()` (a request abandoned mid-body) has its handle closed here.
 */
const reaper = new FinalizationRegistry<NativeHandle>((handle) => {
  handle.close();
});

/** The state every engine reports through. */
abstract class NativeEngine implements Engine {
  protected handle: NativeHandle | null;
  protected readonly state = new Uint32Array(2);

  constructor(handle: NativeHandle) {
    this.handle = handle;
    reaper.register(this, handle, this);
  }

  get availOut(): number {
    return this.state[0]!;
  }

  get availIn(): number {
    return this.state[1]!;
  }

  abstract run(
    input: Uint8Array,
    inOff: number,
    inLen: number,
    out: Uint8Array,
    outOff: number,
    outLen: number,
    last: boolean,
  ): void;

  abstract complete(): boolean;

  close(): void {
    const handle = this.handle;
    if (handle === null) return;
    this.handle = null;
    reaper.unregister(this);
    handle.close();
  }

  /** `engine` closed, and the handle it had: what `_specimens.ts` keeps. */
  static specimens(engine: NativeEngine): object[] {
    const handle = engine.live();
    engine.close();
    return [engine, handle];
  }

  protected live(): NativeHandle {
    if (this.handle === null) throw new Error("the decoder is closed");
    return this.handle;
  }
}

/** gzip, zlib-wrapped deflate or raw deflate. */
class ZlibEngine extends NativeEngine {
  constructor(mode: number) {
    const handle = open("zlib", mode);
    // windowBits 0 takes the window from the zlib/gzip header; raw deflate has none.
    const windowBits = mode === C["INFLATERAW"] ? 15 : 0;
    handle.init(windowBits, -1, 8, 0, noop, undefined);
    super(handle);
  }

  run(
    input: Uint8Array,
    inOff: number,
    inLen: number,
    out: Uint8Array,
    outOff: number,
    outLen: number,
    last: boolean,
  ): void {
    const handle = this.live();
    handle.failure = null;
    handle.writeSync(
      last ? Z_FINISH : Z_NO_FLUSH,
      input,
      inOff,
      inLen,
      out,
      outOff,
      outLen,
      this.state,
    );
    if (handle.failure !== null) throw new Error(handle.failure);
  }

  complete(): boolean {
    // The last run() used Z_FINISH, which fails a stream that has not ended.
    return true;
  }
}

class BrotliEngine extends NativeEngine {
  constructor() {
    const handle = open("brotli", C["BROTLI_DECODE"]!);
    // Explicit, because Deno applies every slot: 0 = ring buffer grows as
    // needed (a small body allocates little), 1 = no large-window extension.
    handle.init(new Uint32Array([0, 0]), noop);
    super(handle);
  }

  run(
    input: Uint8Array,
    inOff: number,
    inLen: number,
    out: Uint8Array,
    outOff: number,
    outLen: number,
  ): void {
    const handle = this.live();
    handle.failure = null;
    handle.write(0, input, inOff, inLen, out, outOff, outLen, this.state);
    if (handle.failure !== null) throw new Error(handle.failure);
  }

  complete(): boolean {
    const handle = this.live();
    handle.failure = null;
    handle.write(0, PROBE, 0, 1, PROBE_OUT, 0, PROBE_OUT.length, this.state);
    return handle.failure === null && this.availIn === 1 &&
      this.availOut === PROBE_OUT.length;
  }
}

class ZstdEngine extends NativeEngine {
  #frames = new ZstdFrames();
  /** After a frame: the next bytes, held until they show a frame's magic. */
  #peek = new Uint8Array(4);
  #peeked = 0;
  /** Bytes after the last frame, which are dropped. */
  #ignoring = false;

  constructor() {
    const handle = open("zstd", C["ZSTD_DECOMPRESS"]!);
    // Slots left at 0xFFFFFFFF are "not set".
    const params = new Uint32Array(C["ZSTD_d_windowLogMax"]! + 1).fill(
      0xffffffff,
    );
    params[C["ZSTD_d_windowLogMax"]!] = ZSTD_WINDOW_LOG_MAX;
    if (handle.init(params, noop, -1) !== true) {
      throw new Error("Cannot decode content: zstd decoder setup failed");
    }
    super(handle);
  }

  run(
    input: Uint8Array,
    inOff: number,
    inLen: number,
    out: Uint8Array,
    outOff: number,
    outLen: number,
  ): void {
    const handle = this.live();
    for (;;) {
      if (this.#ignoring) {
        this.state[0] = outLen;
        this.state[1] = 0;
        return;
      }
      if (this.#frames.complete) {
        // At a frame's end: the native decoder would fail on bytes that start
        // no frame, so they are looked at first, and dropped unless they do
        // (as browsers drop bytes after a whole stream).
        while (this.#peeked < 4 && inLen > 0) {
          this.#peek[this.#peeked++] = input[inOff++]!;
          inLen--;
        }
        if (!startsFrame(this.#peek, this.#peeked)) {
          this.#ignoring = true;
          continue;
        }
        if (this.#peeked < 4) {
          this.state[0] = outLen;
          this.state[1] = 0;
          return;
        }
        this.#peeked = 0;
        handle.writeSync(0, this.#peek, 0, 4, out, outOff, outLen, this.state);
        if (this.availIn !== 0) throw new Error("frame magic not taken");
        this.#frames.feed(this.#peek);
        outOff += outLen - this.availOut;
        outLen = this.availOut;
        continue;
      }
      handle.writeSync(0, input, inOff, inLen, out, outOff, outLen, this.state);
      const used = inLen - this.availIn;
      if (used > 0) this.#frames.feed(input.subarray(inOff, inOff + used));
      // The decoder stops at the end of each frame; RFC 8878 streams may
      // hold several.
      if (this.availIn === 0 || this.availOut === 0) return;
      inOff += used;
      inLen -= used;
      outOff += outLen - this.availOut;
      outLen = this.availOut;
    }
  }

  complete(): boolean {
    return this.#ignoring || this.#frames.complete;
  }
}

/** Whether the `n` bytes of `b` can start a zstd or a skippable frame's magic (LE). */
function startsFrame(b: Uint8Array, n: number): boolean {
  let zstd = true;
  let skippable = true;
  for (let k = 0; k < n; k++) {
    const shift = 8 * k;
    zstd &&= b[k] === ((ZSTD_MAGIC >>> shift) & 0xff);
    skippable &&= (b[k]! & ((SKIPPABLE_MASK >>> shift) & 0xff)) ===
      ((SKIPPABLE_MAGIC >>> shift) & 0xff);
  }
  return zstd || skippable;
}

/**
 * `deflate` is meant to be zlib-wrapped (RFC 9110 section 8.4.1.2), but some
 * servers send raw deflate and browsers accept both: the first two bytes tell.
 */
class DeflateEngine implements Engine {
  #inner: Engine | null = null;
  /** The first byte, when it came alone. */
  #first = -1;
  #availIn = 0;
  #availOut = 0;

  get availIn(): number {
    return this.#inner === null ? this.#availIn : this.#inner.availIn;
  }

  get availOut(): number {
    return this.#inner === null ? this.#availOut : this.#inner.availOut;
  }

  run(
    input: Uint8Array,
    inOff: number,
    inLen: number,
    out: Uint8Array,
    outOff: number,
    outLen: number,
    last: boolean,
  ): void {
    if (this.#inner === null) {
      if (this.#first < 0 && inLen === 1 && !last) {
        this.#first = input[inOff]!;
        this.#availIn = 0;
        this.#availOut = outLen;
        return;
      }
      const cmf = this.#first >= 0 ? this.#first : input[inOff] ?? 0;
      const flg = this.#first >= 0 ? input[inOff] ?? 0 : input[inOff + 1] ?? 0;
      // RFC 1950: CM = 8 in the low nibble, and CMF * 256 + FLG a multiple of 31.
      const wrapped = (cmf & 0x0f) === 8 && ((cmf << 8) | flg) % 31 === 0;
      this.#inner = new ZlibEngine(wrapped ? C["INFLATE"]! : C["INFLATERAW"]!);
      if (this.#first >= 0) {
        this.#inner.run(
          new Uint8Array([this.#first]),
          0,
          1,
          out,
          outOff,
          outLen,
          false,
        );
      }
    }
    this.#inner.run(input, inOff, inLen, out, outOff, outLen, last);
  }

  complete(): boolean {
    return this.#inner?.complete() ?? false;
  }

  close(): void {
    this.#inner?.close();
  }
}

// Where a GzipEngine is in the member layout (RFC 1952 section 2.3).
const HEADER = 0;
const BODY = 1;
const TRAILER = 2;
/** After a whole, checked member: another, or bytes to ignore. */
const NEXT = 3;
const IGNORE = 4;

// Gzip header flags (FLG).
const FHCRC = 0x02;
const FEXTRA = 0x04;
const FNAME = 0x08;
const FCOMMENT = 0x10;
const FRESERVED = 0xe0;

/**
 * gzip and x-gzip (RFC 1952): the member layout read here, each member's
 * deflate data by a raw-deflate decoder, its CRC-32 and length checked here.
 * zlib's own gzip mode reads whatever follows a member as the next member, so
 * bytes after the last one (a newline, zero padding, a snippet a server
 * appended) failed a page browsers show. Members follow one another while the
 * next bytes are the gzip magic; anything else after a whole, checked member
 * is ignored, as Chromium ignores it.
 */
class GzipEngine implements Engine {
  #inner: ZlibEngine;
  #phase = HEADER;
  /** The header's fixed part, then the trailer, as gathered. */
  #bytes = new Uint8Array(10);
  #have = 0;
  /** Header fields still to read: the FLG bits not yet done. */
  #flags = -1;
  /** Bytes left to skip (FEXTRA's data, FHCRC), or -1 to read XLEN. */
  #skip = 0;
  #crc = 0;
  #size = 0;
  #availIn = 0;
  #availOut = 0;
  #closed = false;

  constructor() {
    this.#inner = new ZlibEngine(C["INFLATERAW"]!);
  }

  get availIn(): number {
    return this.#availIn;
  }

  get availOut(): number {
    return this.#availOut;
  }

  /** The closed engine and the native handle it had, for `_specimens.ts`. */
  specimens(): object[] {
    return [this, ...NativeEngine.specimens(this.#inner)];
  }

  run(
    input: Uint8Array,
    inOff: number,
    inLen: number,
    out: Uint8Array,
    outOff: number,
    outLen: number,
    last: boolean,
  ): void {
    // As a native engine's: not even header bytes are taken once closed.
    if (this.#closed) throw new Error("the decoder is closed");
    let i = inOff;
    const end = inOff + inLen;
    let o = outOff;
    const outEnd = outOff + outLen;
    loop: for (;;) {
      switch (this.#phase) {
        case HEADER:
          i = this.#header(input, i, end);
          if (this.#phase === HEADER) break loop;
          break;
        case BODY: {
          if (o === outEnd) break loop;
          const inner = this.#inner;
          inner.run(input, i, end - i, out, o, outEnd - o, last);
          const made = outEnd - o - inner.availOut;
          if (made > 0) {
            this.#crc = zlib.crc32(out.subarray(o, o + made), this.#crc);
            this.#size = (this.#size + made) >>> 0;
          }
          i = end - inner.availIn;
          o += made;
          // Stopped with input and room left: the deflate data ended.
          if (inner.availIn > 0 && inner.availOut > 0) {
            this.#phase = TRAILER;
            this.#have = 0;
            break;
          }
          break loop;
        }
        case TRAILER: {
          while (i < end && this.#have < 8) {
            this.#bytes[this.#have++] = input[i++]!;
          }
          if (this.#have < 8) break loop;
          const view = new DataView(this.#bytes.buffer);
          if (view.getUint32(0, true) !== this.#crc >>> 0) {
            throw new Error("incorrect data check");
          }
          if (view.getUint32(4, true) !== this.#size) {
            throw new Error("incorrect length check");
          }
          this.#phase = NEXT;
          this.#have = 0;
          break;
        }
        case NEXT: {
          while (i < end && this.#have < 2) {
            this.#bytes[this.#have++] = input[i++]!;
          }
          const b = this.#bytes;
          if (
            (this.#have >= 1 && b[0] !== 0x1f) ||
            (this.#have === 2 && b[1] !== 0x8b)
          ) {
            this.#phase = IGNORE;
            break;
          }
          if (this.#have < 2) break loop;
          // Another member: the magic is read already.
          this.#inner.close();
          this.#inner = new ZlibEngine(C["INFLATERAW"]!);
          this.#phase = HEADER;
          this.#flags = -1;
          this.#crc = 0;
          this.#size = 0;
          break;
        }
        case IGNORE:
          i = end;
          break loop;
      }
    }
    this.#availIn = end - i;
    this.#availOut = outEnd - o;
  }

  /** Reads header bytes from `input[i, end)`; the index after them. */
  #header(input: Uint8Array, i: number, end: number): number {
    if (this.#flags < 0) {
      while (i < end && this.#have < 10) {
        this.#bytes[this.#have++] = input[i++]!;
      }
      if (this.#have < 10) return i;
      const b = this.#bytes;
      if (b[0] !== 0x1f || b[1] !== 0x8b) {
        throw new Error("incorrect header check");
      }
      if (b[2] !== 8) throw new Error("unknown compression method");
      if ((b[3]! & FRESERVED) !== 0) {
        throw new Error("unknown header flags set");
      }
      this.#flags = b[3]!;
      this.#have = 0;
      this.#skip = (this.#flags & FEXTRA) !== 0 ? -1 : 0;
    }
    for (;;) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, end - i);
        this.#skip -= n;
        i += n;
        if (this.#skip > 0) return i;
      }
      if ((this.#flags & FEXTRA) !== 0) {
        if (this.#skip === -1) {
          while (i < end && this.#have < 2) {
            this.#bytes[this.#have++] = input[i++]!;
          }
          if (this.#have < 2) return i;
          this.#skip = this.#bytes[0]! | (this.#bytes[1]! << 8);
          this.#have = 0;
          continue;
        }
        this.#flags &= ~FEXTRA;
      } else if ((this.#flags & (FNAME | FCOMMENT)) !== 0) {
        // Zero-terminated; the name before the comment.
        const zero = input.indexOf(0, i);
        if (zero < 0 || zero >= end) return end;
        i = zero + 1;
        this.#flags &= (this.#flags & FNAME) !== 0 ? ~FNAME : ~FCOMMENT;
      } else if ((this.#flags & FHCRC) !== 0) {
        // The header's own CRC is skipped, not checked: no byte decoded
        // depends on the header, and the trailer checks the data.
        this.#flags &= ~FHCRC;
        this.#skip = 2;
      } else {
        this.#phase = BODY;
        this.#have = 0;
        return i;
      }
    }
  }

  complete(): boolean {
    return this.#phase === NEXT || this.#phase === IGNORE;
  }

  close(): void {
    this.#closed = true;
    this.#inner.close();
  }
}

/** The codings decoded, by their lower-case `Content-Encoding` name. */
export const ENGINES: Record<string, () => Engine> = {
  gzip: kept(() => new GzipEngine()),
  "x-gzip": kept(() => new GzipEngine()),
  deflate: kept(() => new DeflateEngine()),
  br: kept(() => new BrotliEngine()),
  zstd: kept(() => new ZstdEngine()),
};

/**
 * `make`, which also keeps its first engine's twin as a specimen for
 * `_specimens.ts`: closed, with the native handle (Deno's own class) it
 * wrapped. Kept when a coding is first decoded, not at import: native decoders
 * cost ~2 MiB and ~20 ms to set up, which a process that never decodes should
 * not pay.
 */
function kept(make: () => Engine): () => Engine {
  let first = true;
  return () => {
    if (first) {
      first = false;
      const specimen = make();
      if (specimen instanceof NativeEngine) {
        keepSpecimens(...NativeEngine.specimens(specimen));
      } else if (specimen instanceof GzipEngine) {
        keepSpecimens(...specimen.specimens());
      } else {
        specimen.close();
        keepSpecimens(specimen);
      }
    }
    return make();
  };
}

export { EMPTY };
