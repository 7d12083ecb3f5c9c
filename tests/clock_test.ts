import { assert, assertEquals } from "@std/assert";
import { freeze, loopNow, refresh, thaw } from "../client/_clock.ts";

Deno.test("loopNow() holds the time of freeze() until thaw(), then reads the real clock again", async () => {
  const frozen = freeze();
  try {
    await new Promise((resolve) => setTimeout(resolve, 5));
    assertEquals(loopNow(), frozen, "inside a span: the span's time");
  } finally {
    thaw();
  }
  const after = loopNow();
  assert(after >= frozen + 4, `thawed: ${after - frozen} ms later`);
  assert(loopNow() >= after);
});

Deno.test("refresh() moves a span's time on to the real clock's, and does nothing outside a span", async () => {
  refresh(); // outside a span: the clock keeps running
  const frozen = freeze();
  try {
    await new Promise((resolve) => setTimeout(resolve, 5));
    refresh();
    const moved = loopNow();
    assert(moved >= frozen + 4, `refreshed: ${moved - frozen} ms later`);
    await new Promise((resolve) => setTimeout(resolve, 5));
    assertEquals(loopNow(), moved, "still frozen, at the refreshed time");
  } finally {
    thaw();
  }
  assert(loopNow() > frozen);
});
