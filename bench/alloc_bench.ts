/**
 * Micro-benchmark of what a byte buffer costs in Deno, the reason the client
 * cuts its internal buffers from slabs (`selector/_slab.ts`) and allocates one
 * buffer per response only for the body, which the API hands over standalone.
 *
 * Deno keeps no typed array inside V8's heap: a fresh `Uint8Array` of any size
 * is an off-heap backing store, and V8 frees those on a helper thread, which
 * contends with the next allocations for the C allocator's lock. Compare the
 * per-iteration times with the sweeping kept on the main thread:
 *
 * ```sh
 * deno bench bench/alloc_bench.ts
 * deno bench --v8-flags=--no-concurrent-array-buffer-sweeping bench/alloc_bench.ts
 * ```
 *
 * (On the machine of the README's tables, 2026-11-28: 0.7 µs for a fresh array
 * of 32 bytes, 0.86 µs for 1 KiB, 0.2 and 0.34 µs without concurrent sweeping;
 * 70 to 80 ns for 1 KiB cut from a slab, 26 ns for a view.)
 *
 * @module
 */
import { allocate } from "../selector/_slab.ts";

// Stored where the optimizer cannot drop it, so that no allocation is elided.
export let kept: Uint8Array = new Uint8Array(0);

Deno.bench("new Uint8Array(32)", { group: "buffer", baseline: true }, () => {
  kept = new Uint8Array(32);
});

Deno.bench("new Uint8Array(1024)", { group: "buffer" }, () => {
  kept = new Uint8Array(1024);
});

Deno.bench("allocate(1024) from a slab", { group: "buffer" }, () => {
  kept = allocate(1024);
});

const slab = new Uint8Array(4096);

Deno.bench("subarray of 1 KiB", { group: "buffer" }, () => {
  kept = slab.subarray(1024, 2048);
});
