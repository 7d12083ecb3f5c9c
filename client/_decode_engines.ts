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
 * - zlib (gzip, deflate, raw deflate): `writeSync` calls `handle.onerror(message,
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
import { ZstdFrames } from "./_decode_zstd_frames.ts";
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
const Z_NO_FLUSH = C.Z_NO_FLUSH!;
const Z_FINISH = C.Z_FINISH!;
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
    const windowBits = mode === C.INFLATERAW ? 15 : 0;
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
    const handle = open("brotli", C.BROTLI_DECODE!);
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

  constructor() {
    const handle = open("zstd", C.ZSTD_DECOMPRESS!);
    // Slots left at 0xFFFFFFFF are "not set".
    const params = new Uint32Array(C.ZSTD_d_windowLogMax! + 1).fill(
      0xffffffff,
    );
    params[C.ZSTD_d_windowLogMax!] = ZSTD_WINDOW_LOG_MAX;
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
    return this.#frames.complete;
  }
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
      this.#inner = new ZlibEngine(wrapped ? C.INFLATE! : C.INFLATERAW!);
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

/** The codings decoded, by their lower-case `Content-Encoding` name. */
export const ENGINES: Record<string, () => Engine> = {
  gzip: kept(() => new ZlibEngine(C.GUNZIP!)),
  "x-gzip": kept(() => new ZlibEngine(C.GUNZIP!)),
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
      } else {
        specimen.close();
        keepSpecimens(specimen);
      }
    }
    return make();
  };
}

export { EMPTY };
