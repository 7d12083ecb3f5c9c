import { assert, assertEquals } from "@std/assert";
import { freeze, loopNow, thaw } from "../client/_clock.ts";

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
