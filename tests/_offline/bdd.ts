/**
 * Offline stand-in for `@std/testing/bdd`, served by `node:test`, which Deno maps
 * onto `Deno.test` steps.
 *
 * @module
 */
export {
  after as afterAll,
  before as beforeAll,
  describe,
  it,
} from "node:test";
