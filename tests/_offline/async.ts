/**
 * Offline stand-in for the `@std/async` functions the tests use, built on
 * `node:timers/promises`. Same names and signatures as `jsr:@std/async`.
 *
 * @module
 */
import { setTimeout as sleep } from "node:timers/promises";

/** Resolves after `ms` milliseconds, or rejects when `options.signal` aborts. */
export function delay(
  ms: number,
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  return sleep(ms, undefined, options);
}
