/**
 * The crawl CLI's gate between the frontier and the engine: an entry goes on only
 * once its origin's robots.txt said yes, and the questions about many origins are
 * asked at once, so a slow robots.txt holds back only its own origin's URLs.
 *
 * @module
 */

/** The longest wait a timer takes (2^31 - 1 ms); a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

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
    id: number;
    entry: T;
    allowed: boolean;
    error: unknown;
  };
  type Pulled = { kind: "pulled"; result: IteratorResult<T> };
  type Due = { kind: "due" };
  type Aborted = { kind: "aborted" };
  const signal = options.signal;
  const aborted = signal === undefined
    ? null
    : new Promise<Aborted>((resolve) => {
      const end = () => resolve({ kind: "aborted" });
      if (signal.aborted) end();
      else signal.addEventListener("abort", end, { once: true });
    });
  const checks = new Map<number, Promise<Checked>>();
  // Allowed entries waiting for their time, and one timer for the earliest.
  const held: { at: number; entry: T }[] = [];
  let timer:
    | { at: number; id: ReturnType<typeof setTimeout>; due: Promise<Due> }
    | null = null;
  let pulling: Promise<Pulled> | null = null;
  let exhausted = false;
  let nextId = 0;
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
      }
      if (
        !exhausted && pulling === null && checks.size < window &&
        held.length < maxHeld
      ) {
        pulling = Promise.resolve(iterator.next()).then((result) => ({
          kind: "pulled" as const,
          result,
        }));
      }
      if (pulling === null && checks.size === 0 && held.length === 0) {
        finished = true;
        return;
      }
      const racing: Promise<Checked | Pulled | Due | Aborted>[] = [
        ...checks.values(),
      ];
      if (pulling !== null) racing.push(pulling);
      if (held.length > 0) {
        const at = Math.min(...held.map((h) => h.at));
        if (timer === null || timer.at !== at) {
          if (timer !== null) clearTimeout(timer.id);
          const { promise, resolve } = Promise.withResolvers<Due>();
          // Past 2^31 - 1 ms a timer fires at once: wake at most then, and
          // look again (the loop above holds what is not yet due).
          const id: ReturnType<typeof setTimeout> = setTimeout(
            () => resolve({ kind: "due" }),
            Math.min(MAX_TIMER_MS, Math.max(0, at - performance.now())),
          );
          timer = { at, id, due: promise };
        }
        racing.push(timer.due);
      }
      if (aborted !== null) racing.push(aborted);
      const next = await Promise.race(racing);
      if (next.kind === "aborted") return;
      if (next.kind === "due") {
        timer = null;
        continue;
      }
      if (next.kind === "pulled") {
        pulling = null;
        if (next.result.done) {
          exhausted = true;
          continue;
        }
        const id = nextId++;
        const entry = next.result.value;
        checks.set(
          id,
          Promise.resolve().then(() => check(entry)).then(
            (allowed): Checked => ({
              kind: "checked",
              id,
              entry,
              allowed,
              error: undefined,
            }),
            (error): Checked => ({
              kind: "checked",
              id,
              entry,
              allowed: false,
              error,
            }),
          ),
        );
        continue;
      }
      checks.delete(next.id);
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
    if (timer !== null) clearTimeout(timer.id);
    if (!finished) {
      // Not awaited: a source waiting for entries in flight may never answer.
      Promise.resolve(iterator.return?.()).catch(() => {});
    }
  }
}
