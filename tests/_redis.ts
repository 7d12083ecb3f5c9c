/**
 * A real Redis for the tests and the bench: Debian's `redis-server` started on a
 * free loopback port with no persistence in its own temporary directory, and a
 * minimal RESP2 client to look at what the programs under test wrote (the tests
 * stay independent of the npm client the example uses).
 *
 * Everything here is bounded in time: starting waits at most `startTimeout` ms for
 * `PING`, stopping sends `SIGTERM` and then `SIGKILL` after a bound, and every
 * command of {@linkcode RespClient} has a deadline.
 *
 * @module
 */

/** Where Debian puts it; `PATH` is searched when it is not there. */
const REDIS_SERVER_PATHS = ["/usr/bin/redis-server", "redis-server"];
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A RESP2 reply: strings, integers, arrays, `null`, or an error reply. */
export type RespReply = string | number | null | RespReply[] | RespError;

/** An error reply (`-ERR ...`), returned rather than thrown by {@linkcode RespClient.send}. */
export class RespError extends Error {
  override name = "RespError";
}

/** Options of {@linkcode startRedis}. */
export interface StartRedisOptions {
  /** The most milliseconds until the server answers `PING`. @default {10000} */
  startTimeout?: number;
  /**
   * Keep the data across {@linkcode RedisServer.restart} in an append-only file
   * (in the server's temporary directory, fsync'd on every write); without it
   * nothing is persisted.
   *
   * @default {false}
   */
  appendOnly?: boolean;
}

/** A running `redis-server`: its URL, its pid, `restart()` and `stop()`. */
export interface RedisServer extends AsyncDisposable {
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** The pid of the current process (a restart changes it). */
  readonly pid: number;
  /**
   * Stops the server (`SIGTERM`: it writes its append-only file and exits) and
   * starts it again on the same port and directory, `downFor` ms later (0 by
   * default), then waits for `PING`.
   */
  restart(downFor?: number): Promise<void>;
  /** Stops the server (`SIGTERM`, then `SIGKILL` after 3 s) and removes its directory; idempotent. */
  stop(): Promise<void>;
}

function findRedisServer(): string {
  for (const path of REDIS_SERVER_PATHS) {
    if (!path.includes("/")) return path;
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // Not there: try the next one.
    }
  }
  return "redis-server";
}

/** Whether `redis-server` is installed (in a system directory or on PATH). */
export const hasRedis: boolean = (() => {
  let path = "/usr/local/bin:/usr/bin:/bin";
  try {
    path = Deno.env.get("PATH") ?? path;
  } catch {
    // No --allow-env: the usual directories.
  }
  for (const dir of ["/usr/bin", "/usr/local/bin", ...path.split(":")]) {
    try {
      if (Deno.statSync(`${dir}/redis-server`).isFile) return true;
    } catch {
      // Not there: try the next one.
    }
  }
  return false;
})();

/**
 * `Deno.test(name, fn)` for a test that needs `redis-server`: while it is
 * missing (a machine with only Node and npm) the test is ignored, its name
 * saying how to install it, unless `CI=true`, where it must run (and fails).
 */
export function redisTest(name: string, fn: () => Promise<void>): void {
  let ci = false;
  try {
    ci = Deno.env.get("CI") === "true";
  } catch {
    // No --allow-env: not told we are on CI.
  }
  Deno.test(
    hasRedis ? { name, fn } : {
      name: `${name} [needs redis-server: apt-get install -y redis-server]`,
      ignore: !ci,
      fn,
    },
  );
}

function freePort(): number {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return listener.addr.port;
}

/**
 * Starts `redis-server` on a free 127.0.0.1 port, with `--save ""`, `--appendonly
 * no` (unless `appendOnly`) and its own temporary directory, and waits until it
 * answers `PING`.
 *
 * @throws {Error} Naming `apt-get install -y redis-server` when it is not installed,
 *   or with its output when it does not answer in time.
 */
export async function startRedis(
  { startTimeout = 10_000, appendOnly = false }: StartRedisOptions = {},
): Promise<RedisServer> {
  const dir = await Deno.makeTempDir({ prefix: "selectors-redis-" });
  // A port taken between freePort() and the bind fails the start: try a few.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = freePort();
    const args = [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      appendOnly ? "yes" : "no",
      "--appendfsync",
      "always",
      "--dir",
      dir,
      "--daemonize",
      "no",
      "--loglevel",
      "warning",
    ];
    let server: Server;
    try {
      server = new Server(args, port, dir, startTimeout);
    } catch (e) {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw e;
    }
    try {
      await server.waitForPing();
      return server;
    } catch (e) {
      lastError = e;
      await server.stop(false);
    }
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  throw lastError;
}

class Server implements RedisServer {
  readonly url: string;
  readonly port: number;
  readonly #args: string[];
  readonly #dir: string;
  readonly #startTimeout: number;
  #child!: Deno.ChildProcess;
  #output!: Promise<string>;
  #exited = false;
  #stopping: Promise<void> | null = null;

  /** @throws {Error} When `redis-server` is not installed. */
  constructor(args: string[], port: number, dir: string, startTimeout: number) {
    this.#args = args;
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
    this.#dir = dir;
    this.#startTimeout = startTimeout;
    this.#spawn();
  }

  get pid(): number {
    return this.#child.pid;
  }

  #spawn(): void {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(findRedisServer(), {
        args: this.#args,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new Error(
          "Cannot start redis-server: it is not installed (apt-get install -y redis-server)",
        );
      }
      throw e;
    }
    this.#child = child;
    this.#exited = false;
    child.status.then(() => {
      if (this.#child === child) this.#exited = true;
    });
    this.#output = Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
    ]).then(([out, err]) => (out + err).trim());
  }

  async waitForPing(): Promise<void> {
    const timeout = this.#startTimeout;
    const deadline = performance.now() + timeout;
    while (performance.now() < deadline) {
      if (this.#exited) {
        throw new Error(
          `Cannot start redis-server: it exited: ${await this.#output}`,
        );
      }
      try {
        await using client = await RespClient.connect(this.port, 1_000);
        if (await client.send("PING") === "PONG") return;
      } catch {
        // Not listening yet (or still loading its data).
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(
      `Cannot start redis-server: no answer to PING within ${timeout} ms`,
    );
  }

  /** Ends the current process: SIGTERM, then SIGKILL after 3 s. */
  async #end(): Promise<void> {
    const child = this.#child;
    if (!this.#exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* exited meanwhile */ }
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* exited meanwhile */ }
    }, 3_000);
    try {
      await child.status;
      await this.#output;
    } finally {
      clearTimeout(timer);
    }
  }

  async restart(downFor = 0): Promise<void> {
    if (this.#stopping !== null) {
      throw new Error("Cannot restart redis-server: it was stopped");
    }
    await this.#end();
    if (downFor > 0) {
      await new Promise((resolve) => setTimeout(resolve, downFor));
    }
    this.#spawn();
    await this.waitForPing();
  }

  stop(removeDir = true): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#end();
      if (removeDir) {
        await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
      }
    })();
    return this.#stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/**
 * A minimal RESP2 client on one connection: one command at a time, each with a
 * deadline. Enough to inspect streams and sets in tests; not for production.
 */
export class RespClient implements AsyncDisposable {
  readonly #conn: Deno.TcpConn;
  readonly #timeout: number;
  #buffer = new Uint8Array(0);
  #closed = false;

  private constructor(conn: Deno.TcpConn, timeout: number) {
    this.#conn = conn;
    this.#timeout = timeout;
  }

  /** Connects to `127.0.0.1:port`; commands then fail after `timeout` ms each. */
  static async connect(port: number, timeout = 5_000): Promise<RespClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    return new RespClient(conn, timeout);
  }

  /** Sends one command; resolves its reply (an error reply as a {@linkcode RespError}). */
  async send(...args: (string | number)[]): Promise<RespReply> {
    let request = `*${args.length}\r\n`;
    for (const arg of args) {
      const bytes = encoder.encode(String(arg));
      request += `$${bytes.length}\r\n${String(arg)}\r\n`;
    }
    const bytes = encoder.encode(request);
    const timer = setTimeout(() => this.close(), this.#timeout);
    try {
      for (let sent = 0; sent < bytes.length;) {
        sent += await this.#conn.write(bytes.subarray(sent));
      }
      return await this.#reply();
    } catch (e) {
      if (this.#closed) {
        throw new Error(
          `Cannot read the reply to ${
            args[0]
          }: no answer within ${this.#timeout} ms`,
        );
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends one command and throws if its reply is an error. */
  async call(...args: (string | number)[]): Promise<RespReply> {
    const reply = await this.send(...args);
    if (reply instanceof RespError) throw reply;
    return reply;
  }

  async #line(): Promise<string> {
    while (true) {
      const end = this.#buffer.indexOf(10);
      if (end > 0 && this.#buffer[end - 1] === 13) {
        const line = decoder.decode(this.#buffer.subarray(0, end - 1));
        this.#buffer = this.#buffer.subarray(end + 1);
        return line;
      }
      await this.#fill();
    }
  }

  async #fill(): Promise<void> {
    const chunk = new Uint8Array(65536);
    const n = await this.#conn.read(chunk);
    if (n === null) {
      throw new Error("Cannot read a reply: redis closed the connection");
    }
    const joined = new Uint8Array(this.#buffer.length + n);
    joined.set(this.#buffer);
    joined.set(chunk.subarray(0, n), this.#buffer.length);
    this.#buffer = joined;
  }

  async #reply(): Promise<RespReply> {
    const line = await this.#line();
    const rest = line.slice(1);
    switch (line[0]) {
      case "+":
        return rest;
      case "-":
        return new RespError(rest);
      case ":":
        return Number(rest);
      case "$": {
        const length = Number(rest);
        if (length < 0) return null;
        while (this.#buffer.length < length + 2) await this.#fill();
        const text = decoder.decode(this.#buffer.subarray(0, length));
        this.#buffer = this.#buffer.subarray(length + 2);
        return text;
      }
      case "*": {
        const count = Number(rest);
        if (count < 0) return null;
        const items: RespReply[] = [];
        for (let i = 0; i < count; i++) items.push(await this.#reply());
        return items;
      }
      default:
        throw new Error(`Cannot parse a RESP reply: unexpected line "${line}"`);
    }
  }

  /** Closes the connection; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/** Reads a stream's entries as `{ id, fields }`, in pages of 1,000. */
export async function readStream(
  client: RespClient,
  key: string,
): Promise<{ id: string; fields: Record<string, string> }[]> {
  const entries: { id: string; fields: Record<string, string> }[] = [];
  let start = "-";
  for (let page = 0; page < 10_000; page++) {
    const reply = await client.call("XRANGE", key, start, "+", "COUNT", 1000);
    const items = reply as [string, string[]][];
    for (const [id, flat] of items) {
      const fields: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) {
        fields[flat[i]!] = flat[i + 1]!;
      }
      entries.push({ id, fields });
    }
    if (items.length < 1000) return entries;
    start = `(${items[items.length - 1]![0]}`;
  }
  throw new Error(`Cannot read stream ${key}: more than 10,000 pages`);
}
