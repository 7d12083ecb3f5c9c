/**
 * Helper process for the selector scale rows: holds the far ends of the idle
 * connections (so the measuring process spends its own fd budget on its side only)
 * and runs one echo peer for the busy connection. Loopback only.
 *
 * Prints one JSON line `{ "holdPort": n, "echoPort": n }` on stdout once listening.
 * Every held connection is read (and its data dropped) so that a peer closing it is
 * noticed and the fd released at once. Exits when its stdin closes (the parent is
 * gone or done) or after `--max-ms` (default 15 minutes), whichever comes first.
 *
 * Usage: `deno run --allow-net=127.0.0.1 bench/_idle_peers.ts [--max-ms N]`
 *
 * @module
 */

const maxMsArg = Deno.args.indexOf("--max-ms");
const MAX_MS = maxMsArg >= 0 ? Number(Deno.args[maxMsArg + 1]) : 15 * 60_000;

const hold = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const conns = new Set<Deno.Conn>();
/** Idle peers never keep what they read: they share one scratch buffer. */
const scratch = new Uint8Array(4096);

async function holdOne(conn: Deno.Conn): Promise<void> {
  conns.add(conn);
  try {
    while ((await conn.read(scratch)) !== null) {
      // Idle conns send nothing; anything that arrives is dropped.
    }
  } catch {
    // Reset or closed by us at exit.
  } finally {
    conns.delete(conn);
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

async function echoOne(conn: Deno.Conn): Promise<void> {
  conns.add(conn);
  const buf = new Uint8Array(65_536);
  try {
    (conn as Deno.TcpConn).setNoDelay(true);
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      let off = 0;
      while (off < n) off += await conn.write(buf.subarray(off, n));
    }
  } catch {
    // Reset or closed at exit.
  } finally {
    conns.delete(conn);
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

async function acceptLoop(
  listener: Deno.Listener,
  serve: (conn: Deno.Conn) => Promise<void>,
): Promise<void> {
  try {
    for await (const conn of listener) serve(conn);
  } catch {
    // Listener closed at exit.
  }
}

function shutdown(): never {
  for (const c of conns) {
    try {
      c.close();
    } catch {
      // Already closed.
    }
  }
  Deno.exit(0);
}

acceptLoop(hold, holdOne);
acceptLoop(echo, echoOne);
const timer = setTimeout(shutdown, MAX_MS);
Deno.unrefTimer(timer);

console.log(JSON.stringify({
  holdPort: (hold.addr as Deno.NetAddr).port,
  echoPort: (echo.addr as Deno.NetAddr).port,
}));

// Ends when the parent closes our stdin (or dies).
const stdinBuf = new Uint8Array(256);
try {
  while ((await Deno.stdin.read(stdinBuf)) !== null) {
    // Nothing is sent on stdin; it only tells us when the parent is gone.
  }
} catch {
  // Parent gone.
}
shutdown();
