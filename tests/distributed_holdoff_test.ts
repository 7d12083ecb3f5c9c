/**
 * When a worker of `examples/distributed_crawl.ts` may claim other workers'
 * idle entries after losing Redis ({@linkcode ClaimHoldOff}), on made-up
 * times: claimIdle 4,000 ms, so an outage of 1,000 ms or more is long.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { ClaimHoldOff } from "../examples/distributed/_frontier.ts";

/** The first of `times` at which `holdOff` allows a claim. */
function firstAllowed(holdOff: ClaimHoldOff, times: number[]): number | null {
  for (const t of times) if (holdOff.allows(t)) return t;
  return null;
}

/** `from`, `from` + 100, ..., `end` (ms). */
function ticks(from: number, end: number): number[] {
  return Array.from(
    { length: (end - from) / 100 + 1 },
    (_, i) => from + i * 100,
  );
}

Deno.test("ClaimHoldOff.allows() allows at once when Redis was never lost", () => {
  assert(new ClaimHoldOff(4_000).allows(0));
});

Deno.test("ClaimHoldOff.allows() holds off for claimIdle from the first comeback, however many short drops follow", () => {
  const holdOff = new ClaimHoldOff(4_000);
  // Dropped for 100 ms every 900 ms: never up for 4,000 ms in a row.
  for (let back = 1_000; back <= 10_000; back += 1_000) {
    holdOff.back(back, 100);
    const allowed = firstAllowed(holdOff, ticks(back, back + 800));
    if (allowed !== null) {
      assertEquals(allowed, 5_000);
      return;
    }
  }
  throw new Error("Never allowed while the connection kept dropping");
});

Deno.test("ClaimHoldOff.allows() starts over after an outage of claimIdle / 4 or more", () => {
  const holdOff = new ClaimHoldOff(4_000);
  holdOff.back(0, 100);
  holdOff.back(3_000, 999);
  holdOff.back(3_500, 1_000);
  assertEquals(firstAllowed(holdOff, ticks(3_500, 10_000)), 7_500);
});

Deno.test("ClaimHoldOff.allows() is false while the reading loop's commands fail", () => {
  const holdOff = new ClaimHoldOff(4_000);
  holdOff.lost(100);
  holdOff.lost(200);
  assertEquals(firstAllowed(holdOff, ticks(100, 10_000)), null);
  // Measured from the first failure: 1,100 ms, long.
  holdOff.found(1_200);
  holdOff.back(1_300, 50);
  assertEquals(firstAllowed(holdOff, ticks(1_300, 10_000)), 5_200);
});

Deno.test("ClaimHoldOff.allows() ends the hold-off it allows: a later drop holds off again from its own comeback", () => {
  const holdOff = new ClaimHoldOff(4_000);
  holdOff.back(0, 100);
  assert(holdOff.allows(4_000));
  assert(holdOff.allows(4_500));
  holdOff.back(6_000, 100);
  assertEquals(firstAllowed(holdOff, ticks(6_000, 20_000)), 10_000);
  // A success with no failure before it changes nothing.
  holdOff.found(11_000);
  assert(holdOff.allows(11_000));
});

Deno.test("ClaimHoldOff.serverStarted() holds off for claimIdle from Redis's start, never ending a later hold-off early", () => {
  // A worker that connects 1,500 ms after a Redis restart: claims from 4,000.
  const started = new ClaimHoldOff(4_000);
  started.serverStarted(0);
  assertEquals(firstAllowed(started, ticks(1_500, 10_000)), 4_000);
  // A comeback seen after the restart (the worker's own connection) keeps
  // its later end.
  const both = new ClaimHoldOff(4_000);
  both.back(1_000, Infinity);
  both.serverStarted(0);
  assertEquals(firstAllowed(both, ticks(1_000, 10_000)), 5_000);
  // A hold-off that ended long ago does not hold a restart's off.
  const later = new ClaimHoldOff(4_000);
  later.back(0, 100);
  later.serverStarted(20_000);
  assertEquals(firstAllowed(later, ticks(21_000, 30_000)), 24_000);
});
