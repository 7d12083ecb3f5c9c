/**
 * A client for `echo_server.ts`: opens C connections at once on one selector, sends
 * N lines on each, and checks that every byte comes back in order.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 examples/echo_client.ts --port 8000 --connections 20 --lines 1000
 * ```
 *
 * Every connection is a small state machine driven by `select()`: registered for
 * `EVENT_WRITE` until connected and while it has lines left to send, and for
 * `EVENT_READ` once connected, until all its echoes are back. It prints a summary
 * and exits with code 1 if any echo differs or any connection failed.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  BlockingIOError,
  DefaultSelector,
  EVENT_READ,
  EVENT_WRITE,
  PollableConn,
  type SelectorKey,
} from "../mod.ts";
import { printOrExit } from "./_args.ts";

type Callback = (key: SelectorKey<Callback>, mask: number) => void;

const USAGE =
  `Usage: echo_client.ts --port P [--host H] [--connections C] [--lines N] [--timeout MS]

  --host H          server address (default 127.0.0.1)
  --port P          server port (required)
  --connections C   concurrent connections (default 10)
  --lines N         lines sent on each connection (default 100)
  --timeout MS      give up after this many milliseconds (default 30000)
  --help            show this help`;

function fail(message: string): never {
  console.error(`echo_client: ${message}`);
  Deno.exit(2);
}

function positiveInt(name: string, text: string, min: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min) {
    fail(`--${name} must be an integer >= ${min}, received "${text}"`);
  }
  return n;
}

function parseOptions() {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        host: { type: "string", default: "127.0.0.1" },
        port: { type: "string" },
        connections: { type: "string", default: "10" },
        lines: { type: "string", default: "100" },
        timeout: { type: "string", default: "30000" },
        help: { type: "boolean", default: false },
      },
    }));
  } catch (e) {
    fail(e instanceof Error ? e.message.split("\n")[0]! : String(e));
  }
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  if (values.port === undefined) fail("--port is required (see --help)");
  const port = positiveInt("port", values.port, 1);
  if (port > 65535) fail(`--port must be at most 65535, received "${port}"`);
  return {
    host: values.host,
    port,
    connections: positiveInt("connections", values.connections, 1),
    lines: positiveInt("lines", values.lines, 0),
    timeout: positiveInt("timeout", values.timeout, 1),
  };
}

/** One connection's progress. */
interface Session {
  id: number;
  conn: PollableConn;
  outbound: Uint8Array;
  sent: number;
  received: number;
  connected: boolean;
  error: string | null;
}

const options = parseOptions();
const encoder = new TextEncoder();
const sel = new DefaultSelector<Callback>();
const sessions: Session[] = [];
let mismatches = 0;

function payload(id: number): Uint8Array {
  let text = "";
  for (let i = 0; i < options.lines; i++) {
    text += `connection ${id} line ${i}: ${"abcdefghij".repeat(i % 8)}\n`;
  }
  return encoder.encode(text);
}

function done(session: Session, error?: string): void {
  if (error !== undefined) session.error = error;
  sel.unregister(session.conn);
  session.conn.close();
}

/** Checks received bytes against what was sent, at the same offset. */
function check(session: Session, data: Uint8Array): boolean {
  const expected = session.outbound.subarray(
    session.received,
    session.received + data.length,
  );
  if (expected.length !== data.length) return false;
  for (let i = 0; i < data.length; i++) {
    if (expected[i] !== data[i]) return false;
  }
  return true;
}

function handle(session: Session, key: SelectorKey<Callback>, mask: number) {
  const { conn } = session;
  try {
    if (!session.connected) {
      if (conn.error) throw conn.error;
      session.connected = true;
    }
    if (mask & EVENT_WRITE) {
      while (session.sent < session.outbound.length) {
        session.sent += conn.send(session.outbound.subarray(session.sent));
      }
    }
  } catch (e) {
    if (!(e instanceof BlockingIOError)) return done(session, String(e));
  }
  try {
    if (mask & EVENT_READ) {
      const data = conn.recv();
      if (data === null) {
        return done(
          session,
          `server closed after ${session.received} of ${session.outbound.length} bytes`,
        );
      }
      if (!check(session, data)) {
        mismatches++;
        return done(session, `echo differs at byte ${session.received}`);
      }
      session.received += data.length;
    }
  } catch (e) {
    if (!(e instanceof BlockingIOError)) return done(session, String(e));
  }
  if (session.received === session.outbound.length) return done(session);
  const events = EVENT_READ |
    (session.sent < session.outbound.length ? EVENT_WRITE : 0);
  if (events !== key.events) sel.modify(conn, events, key.data);
}

const started = performance.now();
for (let id = 0; id < options.connections; id++) {
  const session: Session = {
    id,
    conn: PollableConn.connect({ hostname: options.host, port: options.port }),
    outbound: payload(id),
    sent: 0,
    received: 0,
    connected: false,
    error: null,
  };
  sessions.push(session);
  // Until connected, only EVENT_WRITE: that is how a non-blocking connect reports.
  sel.register(
    session.conn,
    EVENT_WRITE,
    (key, mask) => handle(session, key, mask),
  );
}

let interrupted = false;
const onSignal = () => {
  interrupted = true;
  sel.close();
};
let signals = true;
try {
  Deno.addSignalListener("SIGINT", onSignal);
} catch {
  signals = false;
}

const deadline = started + options.timeout;
try {
  while (!interrupted && sel.getMap().size > 0) {
    const left = deadline - performance.now();
    if (left <= 0) break;
    for (const [key, mask] of await sel.select(left)) key.data(key, mask);
  }
} finally {
  if (signals) Deno.removeSignalListener("SIGINT", onSignal);
  for (const session of sessions) {
    if (!session.conn.closed) {
      session.error ??= interrupted ? "interrupted" : "timed out";
      session.conn.close();
    }
  }
  sel.close();
}

const ms = performance.now() - started;
const failed = sessions.filter((s) => s.error !== null);
const bytes = sessions.reduce((sum, s) => sum + s.received, 0);
for (const s of failed) console.error(`connection ${s.id}: ${s.error}`);
printOrExit(
  "echo_client.ts",
  `${sessions.length - failed.length}/${sessions.length} connections OK, ` +
    `${
      options.lines * (sessions.length - failed.length)
    } lines and ${bytes} bytes echoed, ` +
    `${mismatches} mismatches, in ${ms.toFixed(0)} ms`,
);
Deno.exit(failed.length === 0 ? 0 : 1);
