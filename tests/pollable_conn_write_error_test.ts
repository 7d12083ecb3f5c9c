import { assert, assertEquals } from "@std/assert";
import { DefaultSelector, EVENT_WRITE } from "../mod.ts";
import { fillUntilBlocked, maskOf, selectUntil, tcpPair } from "./_net.ts";

// API.md: write readiness is "connected (or failed) and the write buffer below
// its high-water mark"; send "throws the connection's error (for example a
// reset) if writing failed". A conn whose write buffer is full, registered for
// EVENT_WRITE only, must be reported once its pending write fails: that is the
// only event that tells the caller, and without it the loop waits forever.
Deno.test("PollableConn with a full write buffer, registered for EVENT_WRITE only, is reported write-ready when the peer resets", async () => {
  using pair = await tcpPair();
  const { conn, peer } = pair;
  using sel = new DefaultSelector();
  await fillUntilBlocked(sel, conn, { timeout: 5_000 });
  sel.register(conn, EVENT_WRITE);
  assertEquals(await sel.select(0), []); // full: not write-ready
  // Unread data in the peer's receive buffer makes its close() send a reset.
  peer.close();
  const batch = await selectUntil(sel, (b) => maskOf(b, conn) !== 0, {
    timeout: 1_500,
  });
  assertEquals(maskOf(batch, conn), EVENT_WRITE);
  let error: unknown = null;
  try {
    conn.send("x");
  } catch (e) {
    error = e;
  }
  assert(
    error instanceof Deno.errors.ConnectionReset ||
      error instanceof Deno.errors.BrokenPipe,
    `send after reset: ${String(error)}`,
  );
});
