/**
 * The crawl CLI's gate between the frontier and the engine: an entry goes on only
 * once its origin's robots.txt said yes, and the questions about many origins are
 * asked at once, so a slow robots.txt holds back only its own origin's URLs.
 *
 * @module
 */

import { MAX_TIMER_MS } from "./_util.ts";

/** What {@linkcode gate} does with an entry the check refused. */
export type Refused<T> = (entry: T, error: unknown) => void;

/** Options of {@linkcode gate}. */
export interface GateOptions<T> {
  /**
   * Checks in progress at once, at most: entries are pulled from the source
   * only while fewer are being checked.
   *
   * @default {64}
   */
  window?: number;
  /**
   * Called for an entry the check refused (`error` `undefined`) or threw on
   * (the entry is then refused too).
   */
  onRefused?: Refused<T>;
  /**
   * When an allowed entry may go on at the earliest (a `performance.now()`
   * time; earlier or absent: at once). It waits for it without holding a
   * check's place, so other origins' entries go on meanwhile.
   */
  notBefore?: (entry: T) => number | undefined;
  /**
   * Allowed entries waiting for their time at once, at most: past it, no more
   * are pulled until some go on.
   *
   * @default {16 × window}
   */
  maxHeld?: number;
  /** Ends the gate: entries waiting for their time are dropped. */
  signal?: AbortSignal;
}

/**
 * Yields the entries of `source` that `check` allows, in the order their checks
 * finish (source order among the entries of one origin, as a cached robots.txt
 * answers them in turn). Up to `window` checks run at once.
 *
 * Breaking out of the loop lets go of the source without waiting for it (a
 * frontier may be waiting for entries in flight).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { gate } from "./robots_gate.ts";
 *
 * const slow = (ms: number) => new Promise((r) => setTimeout(r, ms));
 * const refused: string[] = [];
 * const allowed = await Array.fromAsync(gate(
 *   ["http://slow.test/a", "http://fast.test/b", "http://fast.test/private"],
 *   async (url) => {
 *     if (url.startsWith("http://slow")) await slow(50);
 *     return !url.endsWith("/private");
 *   },
 *   { onRefused: (url) => void refused.push(url) },
 * ));
 * // The fast origin is not held back by the slow one.
 * assertEquals(allowed, ["http://fast.test/b", "http://slow.test/a"]);
 * assertEquals(refused, ["http://fast.test/private"]);
 * ```
 *
 * @param source The entries, e.g. a frontier.
 * @param check Whether an entry may go on.
 * @param options How many checks at once, and what to do with refused entries.
 * @returns The allowed entries.
 * @throws {RangeError} When `window` or `maxHeld` is not a positive integer.
 */
export async function* gate<T>(
  source: AsyncIterable<T> | Iterable<T>,
  check: (entry: T) => Promise<boolean>,
  options: GateOptions<T> = {},
): AsyncGenerator<T, void, undefined> {
  const window = options.window ?? 64;
  if (!Number.isInteger(window) || window < 1) {
    throw new RangeError(
      `Cannot gate entries: window must be a positive integer, got ${window}`,
    );
  }
  const maxHeld = options.maxHeld ?? 16 * window;
  if (!Number.isInteger(maxHeld) || maxHeld < 1) {
    throw new RangeError(
      `Cannot gate entries: maxHeld must be a positive integer, got ${maxHeld}`,
    );
  }
  const iterator = Symbol.asyncIterator in source
    ? source[Symbol.asyncIterator]()
    : source[Symbol.iterator]();
  type Checked = {
    kind: "checked";
    entry: T;
    allowed: boolean;
    error: unknown;
  };
  type Pulled = { kind: "pulled"; result: IteratorResult<T> };
  type PullFailed = { kind: "pull-failed"; error: unknown };
  /** Its timer's id: one cleared after it fired, its event queued, is stale. */
  type Due = { kind: "due"; id: ReturnType<typeof setTimeout> };
  type Aborted = { kind: "aborted" };
  type Event = Checked | Pulled | PullFailed | Due | Aborted;
  // What settled, in order, and the wait for the next: each settling posts
  // here. (A Promise.race over the promises in flight would add a reaction
  // to each at every turn, and one that waits long, the abort's, kept them
  // all and what they resolved with: ~850 B a URL for the whole crawl.)
  const events: Event[] = [];
  let wake: (() => void) | null = null;
  const post = (event: Event) => {
    events.push(event);
    const woken = wake;
    wake = null;
    woken?.();
  };
  const signal = options.signal;
  const onAbort = () => post({ kind: "aborted" });
  signal?.addEventListener("abort", onAbort, { once: true });
  let checking = 0;
  // Allowed entries waiting for their time, and one timer for the earliest.
  const held: { at: number; entry: T }[] = [];
  let timer: { at: number; id: ReturnType<typeof setTimeout> } | null = null;
  let pulling = false;
  let exhausted = false;
  let finished = false;
  try {
    for (;;) {
      if (signal?.aborted) return;
      const now = performance.now();
      for (let i = 0; i < held.length;) {
        if (held[i]!.at > now) {
          i++;
          continue;
        }
        const { entry } = held.splice(i, 1)[0]!;
        yield entry;
        // Aborted while the consumer had it: the rest held are dropped.
        if (signal?.aborted) return;
      }
      if (
        !exhausted && !pulling && checking < window && held.length < maxHeld
      ) {
        pulling = true;
        Promise.resolve(iterator.next()).then(
          (result) => post({ kind: "pulled", result }),
          (error) => post({ kind: "pull-failed", error }),
        );
      }
      if (!pulling && checking === 0 && held.length === 0) {
        finished = true;
        return;
      }
      if (held.length > 0) {
        const at = Math.min(...held.map((h) => h.at));
        if (timer === null || timer.at !== at) {
          if (timer !== null) clearTimeout(timer.id);
          // Past 2^31 - 1 ms a timer fires at once: wake at most then, and
          // look again (the loop above holds what is not yet due).
          const id: ReturnType<typeof setTimeout> = setTimeout(
            () => post({ kind: "due", id }),
            Math.min(MAX_TIMER_MS, Math.max(0, at - performance.now())),
          );
          timer = { at, id };
        }
      }
      if (events.length === 0) {
        await new Promise<void>((resolve) => wake = resolve);
      }
      const next = events.shift()!;
      if (next.kind === "aborted") return;
      if (next.kind === "due") {
        // A later timer may have replaced this one since it fired.
        if (timer?.id === next.id) timer = null;
        continue;
      }
      if (next.kind === "pull-failed") throw next.error;
      if (next.kind === "pulled") {
        pulling = false;
        if (next.result.done) {
          exhausted = true;
          continue;
        }
        const entry = next.result.value;
        checking++;
        Promise.resolve().then(() => check(entry)).then(
          (allowed) =>
            post({ kind: "checked", entry, allowed, error: undefined }),
          (error) => post({ kind: "checked", entry, allowed: false, error }),
        );
        continue;
      }
      checking--;
      if (!next.allowed) {
        options.onRefused?.(next.entry, next.error);
        continue;
      }
      const at = options.notBefore?.(next.entry);
      if (at !== undefined && at > performance.now()) {
        held.push({ at, entry: next.entry });
      } else {
        yield next.entry;
      }
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (timer !== null) clearTimeout(timer.id);
    if (!finished) {
      // Not awaited: a source waiting for entries in flight may never answer.
      Promise.resolve(iterator.return?.()).catch(() => {});
    }
  }
}
