/**
 * The echo server from Python's `selectors` documentation, on one selector and a
 * `PollableListener`, serving many clients at once.
 *
 * Python's version calls `conn.send(data)` and hopes it takes everything; here each
 * connection keeps an outbound buffer, and is registered for `EVENT_WRITE` as well
 * as `EVENT_READ` while the buffer holds bytes. When a slow reader lets the buffer
 * grow past 256 KiB, the server stops reading from it until it catches up, so memory
 * stays bounded whatever the clients do.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 examples/echo_server.ts --port 8000
 * ```
 *
 * Options: `--host H` (default 127.0.0.1), `--port P` (default 0: an ephemeral
 * port), `--max-clients N` (exit once N clients have come and gone), `--verbose`
 * (log each connection). The first line on stdout is `listening on HOST:PORT`.
 * Ctrl-C stops it at once, clients still connected or not.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  BlockingIOError,
  DefaultSelector,
  EVENT_READ,
  EVENT_WRITE,
  type PollableConn,
  PollableListener,
  type SelectorKey,
} from "../mod.ts";

/** What every key's `data` holds: the function to call when it is ready. */
type Callback = (key: SelectorKey<Callback>, mask: number) => void;

/** Stop reading from a client while this many of its bytes wait to be echoed. */
const MAX_PENDING = 256 * 1024;

const USAGE =
  `Usage: echo_server.ts [--host H] [--port P] [--max-clients N] [--verbose]

  --host H         address to listen on (default 127.0.0.1)
  --port P         port to listen on; 0 picks a free one (default 0)
  --max-clients N  exit after N clients have disconnected (default: run until Ctrl-C)
  --verbose        log every connection and disconnection to stderr
  --help           show this help`;

/** One client connection: its conn and the bytes still to echo back. */
interface Client {
  conn: PollableConn;
  peer: string;
  outbound: Uint8Array[];
  pending: number;
  eof: boolean;
}

function fail(message: string): never {
  console.error(`echo_server: ${message}`);
  Deno.exit(2);
}

function parseOptions() {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        host: { type: "string", default: "127.0.0.1" },
        port: { type: "string", default: "0" },
        "max-clients": { type: "string" },
        verbose: { type: "boolean", default: false },
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
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port) || port > 65535) {
    fail(`--port must be an integer in 0..65535, received "${values.port}"`);
  }
  let maxClients = Infinity;
  if (values["max-clients"] !== undefined) {
    maxClients = Number(values["max-clients"]);
    if (!/^\d+$/.test(values["max-clients"]) || maxClients < 1) {
      fail(
        `--max-clients must be a positive integer, received "${
          values["max-clients"]
        }"`,
      );
    }
  }
  return { host: values.host, port, maxClients, verbose: values.verbose };
}

function address(addr: Deno.Addr | null): string {
  if (addr === null) return "?";
  if ("hostname" in addr) {
    return addr.hostname.includes(":")
      ? `[${addr.hostname}]:${addr.port}`
      : `${addr.hostname}:${addr.port}`;
  }
  return "path" in addr ? addr.path : "?";
}

const options = parseOptions();
const log = options.verbose
  ? (message: string) => console.error(message)
  : () => {};

const sel = new DefaultSelector<Callback>();
let listener: PollableListener;
try {
  listener = PollableListener.listen({
    hostname: options.host,
    port: options.port,
  });
} catch (e) {
  fail(`cannot listen on ${options.host}:${options.port}: ${String(e)}`);
}
const clients = new Set<Client>();
let finished = 0;
let echoed = 0;
let stopping = false;
let interrupted = false;

/** The events a client needs now, or 0 when it is finished. */
function wanted(client: Client): number {
  let events = 0;
  if (!client.eof && client.pending < MAX_PENDING) events |= EVENT_READ;
  if (client.pending > 0) events |= EVENT_WRITE;
  return events;
}

function finish(client: Client, reason?: unknown): void {
  sel.unregister(client.conn);
  client.conn.close();
  clients.delete(client);
  finished++;
  log(
    reason === undefined
      ? `closed ${client.peer}`
      : `dropped ${client.peer}: ${String(reason)}`,
  );
  if (finished >= options.maxClients) stop();
}

const accept: Callback = () => {
  let conn: PollableConn;
  try {
    conn = listener.accept();
  } catch (e) {
    if (e instanceof BlockingIOError) return;
    log(`accept failed: ${String(e)}`); // e.g. too many open files: keep serving
    return;
  }
  const client: Client = {
    conn,
    peer: address(conn.remoteAddr),
    outbound: [],
    pending: 0,
    eof: false,
  };
  clients.add(client);
  log(`accepted ${client.peer}`);
  sel.register(conn, EVENT_READ, (key, mask) => serve(client, key, mask));
};

function serve(client: Client, key: SelectorKey<Callback>, mask: number) {
  try {
    if (mask & EVENT_READ) {
      const data = client.conn.recv(65536);
      if (data === null) {
        client.eof = true;
      } else {
        client.outbound.push(data);
        client.pending += data.length;
      }
    }
    if (mask & EVENT_WRITE || client.pending > 0) flush(client);
  } catch (e) {
    if (!(e instanceof BlockingIOError)) {
      finish(client, e); // reset by peer and the like: this client only
      return;
    }
  }
  const events = wanted(client);
  if (events === 0) finish(client);
  else if (events !== key.events) sel.modify(client.conn, events, key.data);
}

/** Sends what the conn will take now; partial sends leave the rest queued. */
function flush(client: Client): void {
  while (client.outbound.length > 0) {
    const head = client.outbound[0]!;
    let n: number;
    try {
      n = client.conn.send(head);
    } catch (e) {
      if (e instanceof BlockingIOError) return; // write buffer full: wait
      throw e;
    }
    client.pending -= n;
    echoed += n;
    if (n === head.length) client.outbound.shift();
    else client.outbound[0] = head.subarray(n);
  }
}

function stop(): void {
  if (stopping) return;
  stopping = true;
  sel.close(); // a pending select() resolves []
}

const onSignal = () => {
  log("interrupted");
  interrupted = true;
  stop();
};
let signals = true;
try {
  Deno.addSignalListener("SIGINT", onSignal);
} catch {
  signals = false; // not supported here: Ctrl-C just ends the process
}

sel.register(listener, EVENT_READ, accept);
console.log(`listening on ${address(listener.addr)}`);

try {
  while (!stopping) {
    const events = await sel.select();
    for (const [key, mask] of events) {
      if (stopping) break;
      key.data(key, mask);
    }
  }
} finally {
  if (signals) Deno.removeSignalListener("SIGINT", onSignal);
  sel.close();
  listener.close();
  for (const client of clients) client.conn.close();
}
console.log(`served ${finished} clients, echoed ${echoed} bytes`);
// Python's server exits here at once and the kernel goes on flushing. Here
// close() keeps flushing what send() accepted, and the process with it, for
// up to 10 s when a client stopped reading: on Ctrl-C, those bytes go.
if (interrupted) Deno.exit(0);
