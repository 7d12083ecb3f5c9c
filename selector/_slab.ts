/**
 * Small byte buffers carved from shared slabs. In Deno every `new Uint8Array` costs
 * at least a microsecond (its backing store is allocated off the V8 heap), which is
 * more than parsing a small response; cutting small buffers from a 128 KiB slab
 * makes them nearly free. Node's `Buffer` pool does the same.
 *
 * The price: a small buffer is a view that keeps its whole slab alive, and its
 * `.buffer` is the slab, which holds other requests' bytes (their heads, their
 * `Authorization` headers). So only internal buffers come from here: request
 * bytes, conn read buffers, the copies `send()` queues, the TLS records handed
 * to `node:tls` and the field bytes of response heads (which reach a caller as
 * strings). Nothing cut from a slab may reach a caller: `recv()` copies, and
 * response bodies and sink chunks are standalone arrays.
 */

const SLAB_SIZE = 128 * 1024;
/** Larger buffers get their own allocation. */
export const MAX_SMALL = 4 * 1024;

let slab = new Uint8Array(0);
let offset = 0;

/** A zero-filled buffer of `size` bytes, from the current slab when small. */
export function allocate(size: number): Uint8Array {
  if (size > MAX_SMALL) return new Uint8Array(size);
  if (offset + size > slab.length) {
    slab = new Uint8Array(SLAB_SIZE);
    offset = 0;
  }
  const out = slab.subarray(offset, offset + size);
  offset += (size + 7) & ~7; // keep views 8-byte aligned
  return out;
}

/**
 * Gives the end of `view` past its first `used` bytes back to the slab when
 * `view` is the last buffer cut from it, so that a buffer sized for the worst
 * case keeps no more of the slab alive than it holds. The caller must never
 * touch `view[used:]` again: later buffers may be cut from those bytes. (No new
 * view is made: that would cost more than the bytes given back.)
 */
export function giveBack(view: Uint8Array, used: number): void {
  if (
    view.buffer === slab.buffer &&
    view.byteOffset + ((view.length + 7) & ~7) === offset
  ) {
    offset = view.byteOffset + ((used + 7) & ~7);
  }
}
