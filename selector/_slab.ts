/**
 * Small byte buffers carved from shared slabs. In Deno every `new Uint8Array` costs
 * at least a microsecond (its backing store is allocated off the V8 heap), which is
 * more than parsing a small response; cutting small buffers from a slab makes them
 * nearly free. Node's `Buffer` pool does the same.
 *
 * The price: a small buffer is a view that keeps its whole slab alive, and its
 * `.buffer` is the slab, which holds other requests' bytes (their heads, their
 * `Authorization` headers). So only internal buffers come from here: request
 * bytes, the copies `send()` queues, the TLS records handed to `node:tls` and
 * the field bytes of response heads (which reach a caller as strings). Nothing
 * cut from a slab may reach a caller: `recv()` copies, and response bodies and
 * sink chunks are standalone arrays.
 *
 * Nor should a buffer that lives long be cut from the shared slab: one kept
 * response in a thousand, or one idle conn, must not keep 128 KiB each. Field
 * bytes live as long as the response that holds them, which the caller may keep
 * for the rest of the process: they come from {@linkcode fieldArena}, of 4 KiB
 * slabs that hold nothing but other responses' field bytes. A conn's read
 * buffer is an allocation of its own.
 */

/** Buffers of up to `max` bytes cut from slabs of `size` bytes. */
export class Arena {
  readonly #size: number;
  readonly #max: number;
  #slab = new Uint8Array(0);
  #offset = 0;

  constructor(size: number, max: number) {
    this.#size = size;
    this.#max = max;
  }

  /** A zero-filled buffer of `size` bytes, from the current slab when small. */
  allocate(size: number): Uint8Array {
    if (size > this.#max) return new Uint8Array(size);
    if (this.#offset + size > this.#slab.length) {
      this.#slab = new Uint8Array(this.#size);
      this.#offset = 0;
    }
    const out = this.#slab.subarray(this.#offset, this.#offset + size);
    this.#offset += (size + 7) & ~7; // keep views 8-byte aligned
    return out;
  }

  /**
   * Gives the end of `view` past its first `used` bytes back to the slab when
   * `view` is the last buffer cut from it, so that a buffer sized for the worst
   * case keeps no more of the slab alive than it holds. The caller must never
   * touch `view[used:]` again: later buffers may be cut from those bytes. (No new
   * view is made: that would cost more than the bytes given back.)
   */
  giveBack(view: Uint8Array, used: number): void {
    if (
      view.buffer === this.#slab.buffer &&
      view.byteOffset + ((view.length + 7) & ~7) === this.#offset
    ) {
      this.#offset = view.byteOffset + ((used + 7) & ~7);
    }
  }
}

const SLAB_SIZE = 128 * 1024;
/** Larger buffers get their own allocation. */
export const MAX_SMALL = 4 * 1024;

const shared = new Arena(SLAB_SIZE, MAX_SMALL);

/** Response heads' field bytes: see the module comment. */
export const fieldArena: Arena = new Arena(4 * 1024, 2 * 1024);

/** A zero-filled buffer of `size` bytes, from the shared slab when small. */
export function allocate(size: number): Uint8Array {
  return shared.allocate(size);
}
