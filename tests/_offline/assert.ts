/**
 * Offline stand-in for the few `@std/assert` functions the tests use, built on
 * `node:assert`. Same names and argument order as `jsr:@std/assert`, so a test
 * runs unchanged against either; keep it this small.
 *
 * @module
 */
import nodeAssert from "node:assert";

// deno-lint-ignore no-explicit-any
type Constructor = new (...args: any[]) => Error;

export { AssertionError } from "node:assert";

/** Asserts that `expr` is truthy. */
export function assert(expr: unknown, msg?: string): asserts expr {
  nodeAssert.ok(expr, msg);
}

/** Asserts deep equality. */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg);
}

/** Asserts deep inequality. */
export function assertNotEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.notDeepStrictEqual(actual, expected, msg);
}

/** Asserts `Object.is` equality. */
export function assertStrictEquals<T>(
  actual: unknown,
  expected: T,
  msg?: string,
): asserts actual is T {
  nodeAssert.strictEqual(actual, expected, msg);
}

/** Asserts that `actual` is an instance of `type`. */
export function assertInstanceOf<T extends Constructor>(
  actual: unknown,
  type: T,
  msg?: string,
): asserts actual is InstanceType<T> {
  nodeAssert.ok(
    actual instanceof type,
    msg ?? `Expected an instance of ${type.name}, got ${String(actual)}`,
  );
}

/** Asserts that `actual` matches `expected`. */
export function assertMatch(actual: string, expected: RegExp, msg?: string) {
  nodeAssert.match(actual, expected, msg);
}

/** Asserts that `actual` includes `expected`. */
export function assertStringIncludes(
  actual: string,
  expected: string,
  msg?: string,
): void {
  nodeAssert.ok(
    actual.includes(expected),
    msg ??
      `Expected ${JSON.stringify(actual)} to include ${
        JSON.stringify(expected)
      }`,
  );
}

/** Asserts `actual < expected`. */
export function assertLess<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.ok(actual < expected, msg ?? `Expected ${actual} < ${expected}`);
}

/** Asserts `actual <= expected`. */
export function assertLessOrEqual<T>(actual: T, expected: T, msg?: string) {
  nodeAssert.ok(actual <= expected, msg ?? `Expected ${actual} <= ${expected}`);
}

/** Asserts `actual > expected`. */
export function assertGreater<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.ok(actual > expected, msg ?? `Expected ${actual} > ${expected}`);
}

/** Asserts `actual >= expected`. */
export function assertGreaterOrEqual<T>(actual: T, expected: T, msg?: string) {
  nodeAssert.ok(actual >= expected, msg ?? `Expected ${actual} >= ${expected}`);
}

/** Fails unconditionally. */
export function fail(msg?: string): never {
  nodeAssert.fail(msg ?? "Failed assertion");
}

function check(e: unknown, type?: Constructor, includes?: string): void {
  if (type && !(e instanceof type)) {
    nodeAssert.fail(
      `Expected error to be instance of "${type.name}", but was "${
        (e as Error)?.constructor?.name
      }": ${String(e)}`,
    );
  }
  if (
    includes !== undefined && !String((e as Error)?.message).includes(includes)
  ) {
    nodeAssert.fail(
      `Expected error message to include ${JSON.stringify(includes)}, but got ${
        JSON.stringify((e as Error)?.message)
      }`,
    );
  }
}

/** Asserts that `fn` throws, optionally an instance of `type` whose message includes `includes`. */
export function assertThrows<E extends Constructor = Constructor>(
  fn: () => unknown,
  type?: E,
  includes?: string,
): InstanceType<E> {
  try {
    fn();
  } catch (e) {
    check(e, type, includes);
    return e as InstanceType<E>;
  }
  nodeAssert.fail("Expected function to throw");
}

/** Asserts that `fn` rejects, optionally with an instance of `type` whose message includes `includes`. */
export async function assertRejects<E extends Constructor = Constructor>(
  fn: () => PromiseLike<unknown>,
  type?: E,
  includes?: string,
): Promise<InstanceType<E>> {
  try {
    await fn();
  } catch (e) {
    check(e, type, includes);
    return e as InstanceType<E>;
  }
  nodeAssert.fail("Expected function to reject");
}
