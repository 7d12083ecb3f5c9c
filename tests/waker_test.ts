import { assertEquals } from "@std/assert";
import { Selector } from "../mod.ts";
import { Waker } from "../client/_waker.ts";

Deno.test("Waker.wake() makes a pending select() return once, until reset()", async () => {
  using sel = new Selector();
  const waker = new Waker();
  sel.register(waker, 1);
  const pending = sel.select(5_000);
  waker.wake();
  waker.wake(); // idempotent
  assertEquals((await pending).length, 1);
  assertEquals((await sel.select(0)).length, 1, "level-triggered until reset");
  waker.reset();
  assertEquals(await sel.select(0), []);
  waker.close();
  waker.wake(); // closed: nothing happens
  assertEquals(waker.closed, true);
  assertEquals(await sel.select(0), []);
  sel.unregister(waker);
});
