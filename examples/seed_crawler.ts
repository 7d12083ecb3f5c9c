/**
 * The program this project started from: a Python crawler built on
 * `selectors.DefaultSelector` (a `Client` per URL, a `Select` holder, callbacks in
 * `key.data` and a hand-written event loop), ported line for line in spirit, minus
 * its bugs:
 *
 * - the loop ends when nothing is registered (the original `while True` spun
 *   forever);
 * - an error on one URL (bad URL, refused connection, malformed response, timeout)
 *   is reported and does not stop the others;
 * - the body comes from an HTTP/1.1 parser, so `Content-Length`, chunked and
 *   close-delimited bodies all work (the original split on the first blank line,
 *   which keeps the chunk framing in the body);
 * - partial sends are handled, and every connection has a deadline.
 *
 * It speaks plain HTTP/1.1 itself (no redirects, no compression); `https:` URLs go
 * over `PollableConn.connectTls`. For a real client, use `fetchAll` (see
 * `crawl.ts`).
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 examples/seed_crawler.ts http://127.0.0.1:8000/ http://127.0.0.1:8000/a
 * ```
 *
 * @module
 */
import {
  BlockingIOError,
  DefaultSelector,
  EVENT_READ,
  EVENT_WRITE,
  PollableConn,
  type SelectorKey,
} from "../mod.ts";
import { ResponseParser } from "../client/_response_parser.ts";
import { printOrExit } from "./_args.ts";

const print = (line: string) => printOrExit("seed_crawler.ts", line);

/** A callback stored in `key.data`, called as `callback(key, mask)`. */
// Keys of PollableConns: `key.fileobj` needs no cast.
type Callback = (
  key: SelectorKey<Callback, PollableConn>,
  mask: number,
) => void;

/** Each URL gets this long, connect to last byte. */
const TIMEOUT_MS = 10_000;

/** Connects, sends the request and collects the response of one URL. */
class Client {
  readonly url: string;
  readonly host: string;
  readonly path: string;
  readonly sock: PollableConn;
  readonly deadline = performance.now() + TIMEOUT_MS;
  readonly #request: Uint8Array;
  #sent = 0;
  readonly #parser = new ResponseParser({ method: "GET" });
  #body: Uint8Array[] = [];
  #size = 0;

  /** @throws {TypeError} If `url` is not an http(s) URL. */
  constructor(url: string) {
    this.url = url;
    const parsed = new URL(url); // throws TypeError on a malformed URL
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new TypeError(`Cannot crawl "${url}": not an http(s) URL`);
    }
    this.host = parsed.host;
    this.path = parsed.pathname + parsed.search; // "" never happens: URL gives "/"
    this.#request = new TextEncoder().encode(
      `GET ${this.path} HTTP/1.1\r\nHost: ${this.host}\r\n` +
        `User-Agent: seed-crawler\r\nAccept: */*\r\nConnection: close\r\n\r\n`,
    );
    const hostname = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = Number(parsed.port) ||
      (parsed.protocol === "https:" ? 443 : 80);
    // Like sock.setblocking(False); sock.connect(...): returns at once.
    this.sock = parsed.protocol === "https:"
      ? PollableConn.connectTls({ hostname, port })
      : PollableConn.connect({ hostname, port });
  }

  /** Sends what the socket takes; returns `true` once the whole request is sent. */
  sendRequest(): boolean {
    if (this.sock.error) throw this.sock.error; // the connect failed
    while (this.#sent < this.#request.length) {
      try {
        this.#sent += this.sock.send(this.#request.subarray(this.#sent));
      } catch (e) {
        if (e instanceof BlockingIOError) return false;
        throw e;
      }
    }
    return true;
  }

  /** Reads what has arrived; returns `false` once the response is complete. */
  recvResponse(): boolean {
    let data: Uint8Array | null;
    try {
      data = this.sock.recv(65536);
    } catch (e) {
      if (e instanceof BlockingIOError) return true;
      throw e;
    }
    this.#parser.receive(data); // null: end of stream (b"" in Python)
    for (const chunk of this.#parser.takeBody()) {
      this.#body.push(chunk);
      this.#size += chunk.length;
    }
    return !this.#parser.done;
  }

  /** Closes the socket and reports the response. */
  end(): Uint8Array {
    this.sock.close();
    const head = this.#parser.head!;
    const body = new Uint8Array(this.#size);
    let offset = 0;
    for (const chunk of this.#body) {
      body.set(chunk, offset);
      offset += chunk.length;
    }
    print(
      `${head.status} ${head.statusText} ${this.url} ${body.length} bytes`,
    );
    return body;
  }
}

/** Owns the selector; registers sockets for writing until connected, then reading. */
class Select {
  readonly selector = new DefaultSelector<Callback, PollableConn>();
  readonly clients = new Map<PollableConn, Client>();
  failures = 0;

  startListening(client: Client): void {
    this.clients.set(client.sock, client);
    // A non-blocking connect reports completion as write readiness.
    this.selector.register(client.sock, EVENT_WRITE, this.connected);
  }

  connected: Callback = (key) => {
    const client = this.clients.get(key.fileobj)!;
    this.guard(client, () => {
      if (client.sendRequest()) {
        // Python unregisters and registers again; modify() does both at once.
        this.selector.modify(client.sock, EVENT_READ, this.doRead);
      }
    });
  };

  doRead: Callback = (key) => {
    const client = this.clients.get(key.fileobj)!;
    this.guard(client, () => {
      if (client.recvResponse()) return;
      this.done(client);
      client.end();
    });
  };

  /** Runs a step of one client; an error ends that client only. */
  guard(client: Client, step: () => void): void {
    try {
      step();
    } catch (e) {
      this.fail(client, e);
    }
  }

  fail(client: Client, error: unknown): void {
    // A step that failed after its client was done (printing its line).
    if (this.clients.has(client.sock)) this.done(client);
    client.sock.close();
    this.failures++;
    const reason = error instanceof Error
      ? `${error.name}: ${error.message}`
      : String(error);
    print(`ERROR ${client.url} ${reason}`);
  }

  done(client: Client): void {
    this.selector.unregister(client.sock);
    this.clients.delete(client.sock);
  }

  /** Fails the clients whose deadline passed; returns ms until the next one. */
  expire(): number {
    const now = performance.now();
    let next = Infinity;
    for (const client of [...this.clients.values()]) {
      if (client.deadline <= now) {
        this.fail(
          client,
          new Deno.errors.TimedOut(`no response within ${TIMEOUT_MS} ms`),
        );
      } else if (client.deadline < next) next = client.deadline;
    }
    return next - now;
  }
}

/** The explicit event loop: select, then call each ready key's callback. */
async function eventLoop(sel: Select): Promise<void> {
  // Ends when nothing is left registered (the original looped forever).
  while (sel.selector.getMap().size > 0) {
    const events = await sel.selector.select(sel.expire());
    for (const [key, mask] of events) {
      const callback = key.data;
      callback(key, mask);
    }
    sel.expire();
  }
}

if (import.meta.main) {
  const urls = Deno.args;
  if (urls.length === 0 || urls.includes("--help") || urls.includes("-h")) {
    console.error(
      "Usage: seed_crawler.ts URL...\n\n" +
        "Fetches each http:// (or https://) URL with one selector and prints its status\n" +
        "and body size. Example:\n" +
        "  deno run --allow-net=example.com examples/seed_crawler.ts http://example.com/",
    );
    Deno.exit(urls.length === 0 ? 2 : 0);
  }
  const sel = new Select();
  for (const url of urls) {
    let client: Client;
    try {
      client = new Client(url);
    } catch (e) {
      sel.failures++;
      print(`ERROR ${url} ${e instanceof Error ? e.message : e}`);
      continue;
    }
    sel.startListening(client);
  }
  await eventLoop(sel);
  sel.selector.close();
  Deno.exit(sel.failures === 0 ? 0 : 1);
}
