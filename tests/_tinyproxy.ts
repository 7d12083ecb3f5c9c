/**
 * Starts a real HTTP proxy for the tests: Debian's `tinyproxy`, in the foreground
 * on a free 127.0.0.1 port, with its own config and log in a temp dir, stopped by
 * pid. `.ci/run` installs the package when it is missing.
 *
 * What tinyproxy 1.11 does, as the proxy tests observe it:
 * - http: one request per client conn. It forwards the request with
 *   `Connection: close`, relays the response (an HTTP/1.1 one keeps its framing,
 *   without adding `Connection: close`) and then closes the client conn, whatever
 *   `Connection`/`Proxy-Connection` asked (tinyproxy issues #511 and #563).
 * - `CONNECT` answers `HTTP/1.0 200 Connection established`, then relays bytes.
 * - An upstream that refuses the connection, for http and for `CONNECT` alike:
 *   `500 Unable to connect`; a `CONNECT` to a port outside the `ConnectPort`
 *   lines: `403 Access violation`.
 * - `BasicAuth`: no credentials, `407` with `Proxy-Authenticate`; wrong ones,
 *   `401` with `WWW-Authenticate` (sic). Its config only takes user names and
 *   passwords made of `[-A-Za-z0-9._]`.
 *
 * @module
 */

/** Options of {@linkcode startTinyproxy}. */
export interface TinyproxyOptions {
  /**
   * A user and password the proxy requires (`BasicAuth`); letters, digits and
   * `-._` only, as tinyproxy's config parser takes nothing else.
   *
   * @default {undefined} no authentication
   */
  basicAuth?: [user: string, password: string];
  /**
   * The ports `CONNECT` may reach (`ConnectPort`); any other gets `403`.
   *
   * @default {undefined} every port
   */
  connectPorts?: number[];
  /**
   * The tinyproxy binary.
   *
   * @default {the first of /usr/bin, /usr/sbin and /usr/local/bin that has it}
   */
  binary?: string;
}

/** A running tinyproxy. */
export interface Tinyproxy extends AsyncDisposable {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Its process id. */
  readonly pid: number;
  /** Its temp dir (config and log), removed by {@linkcode Tinyproxy.stop}. */
  readonly dir: string;
  /** Its log so far. */
  log(): Promise<string>;
  /**
   * Sends SIGTERM, waits for the exit (SIGKILL after 3 s), removes the temp dir.
   * Idempotent.
   */
  stop(): Promise<void>;
}

const SEARCH_PATH = ["/usr/bin", "/usr/sbin", "/usr/local/bin"];
/** What tinyproxy's config grammar accepts for a BasicAuth user or password. */
const AUTH_WORD = /^[-A-Za-z0-9._]+$/;
const START_ATTEMPTS = 3;
const READY_TIMEOUT = 5_000;
const STOP_GRACE = 3_000;

function locate(): string | null {
  for (const dir of SEARCH_PATH) {
    try {
      if (Deno.statSync(`${dir}/tinyproxy`).isFile) return `${dir}/tinyproxy`;
    } catch {
      // Not there: try the next one.
    }
  }
  return null;
}

/** Whether the tinyproxy binary is installed (in /usr/bin, /usr/sbin or /usr/local/bin). */
export const hasTinyproxy: boolean = locate() !== null;

function onCi(): boolean {
  try {
    return Deno.env.get("CI") === "true";
  } catch {
    return false; // no --allow-env: not told we are on CI
  }
}

/**
 * What a test that needs tinyproxy passes to `Deno.test`: its name, marked
 * when tinyproxy is missing, and `ignore` set then, unless the environment
 * variable `CI` is `"true"`, where a missing proxy must fail the run rather
 * than skip half the proxy tests unseen.
 *
 * @example
 * ```ts ignore
 * Deno.test({ ...needsTinyproxy("fetchAll() goes through tinyproxy"), async fn() {} });
 * ```
 */
export function needsTinyproxy(
  name: string,
): { name: string; ignore: boolean } {
  if (hasTinyproxy) return { name, ignore: false };
  return {
    name: `${name} [needs tinyproxy: apt-get install -y tinyproxy]`,
    ignore: !onCi(),
  };
}

/**
 * `Deno.test(name, fn)` for a test that needs tinyproxy: ignored, with its
 * name marked, while tinyproxy is missing (see {@linkcode needsTinyproxy}).
 */
export function tinyproxyTest(name: string, fn: () => Promise<void>): void {
  Deno.test(needsTinyproxy(name), fn);
}

function findBinary(): string {
  for (const dir of SEARCH_PATH) {
    try {
      if (Deno.statSync(`${dir}/tinyproxy`).isFile) return `${dir}/tinyproxy`;
    } catch {
      // Not there: try the next one.
    }
  }
  throw new Error(
    `Cannot start tinyproxy: not found in ${
      SEARCH_PATH.join(", ")
    }; install it with "apt-get install -y tinyproxy" (Debian/Ubuntu)`,
  );
}

/** A port that was free a moment ago (tinyproxy cannot report the one it got). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

function config(
  port: number,
  dir: string,
  { basicAuth, connectPorts }: TinyproxyOptions,
): string {
  const lines = [
    `Port ${port}`,
    "Listen 127.0.0.1",
    "Allow 127.0.0.1",
    // Idle conns and tunnels end after this many seconds; tests never wait so long.
    "Timeout 30",
    "MaxClients 64",
    // The tests compare bytes with a direct fetch: no header of the proxy's own.
    "DisableViaHeader Yes",
    `LogFile "${dir}/tinyproxy.log"`,
    "LogLevel Info",
  ];
  if (basicAuth !== undefined) {
    const [user, password] = basicAuth;
    if (!AUTH_WORD.test(user) || !AUTH_WORD.test(password)) {
      throw new TypeError(
        "Cannot configure tinyproxy: BasicAuth takes only letters, digits and -._",
      );
    }
    lines.push(`BasicAuth ${user} ${password}`);
  }
  for (const port of connectPorts ?? []) lines.push(`ConnectPort ${port}`);
  return lines.join("\n") + "\n";
}

async function readLog(dir: string): Promise<string> {
  try {
    return await Deno.readTextFile(`${dir}/tinyproxy.log`);
  } catch {
    return "";
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves `true` when `p` settles within `ms`, `false` otherwise (timer cleared). */
async function settlesWithin(
  p: Promise<unknown>,
  ms: number,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function canConnect(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts tinyproxy (`-d`: foreground) on a free 127.0.0.1 port and resolves once
 * it accepts connections (within 5 s; a port taken in the meantime is retried
 * on another, 3 attempts in all).
 *
 * @throws {Error} If tinyproxy is not installed (the message says how to install
 *   it), exits early, or does not accept connections in time; the log is quoted.
 */
export async function startTinyproxy(
  options: TinyproxyOptions = {},
): Promise<Tinyproxy> {
  const binary = options.binary ?? findBinary();
  try {
    Deno.statSync(binary);
  } catch {
    throw new Error(
      `Cannot start tinyproxy: ${binary} not found; install it with "apt-get install -y tinyproxy" (Debian/Ubuntu)`,
    );
  }
  const dir = await Deno.makeTempDir({ prefix: "tinyproxy-" });
  let lastLog = "";
  try {
    for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
      const port = freePort();
      await Deno.writeTextFile(`${dir}/tinyproxy.log`, "");
      await Deno.writeTextFile(
        `${dir}/tinyproxy.conf`,
        config(port, dir, options),
      );
      const child = new Deno.Command(binary, {
        args: ["-d", "-c", `${dir}/tinyproxy.conf`],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      let exited = false;
      const status = child.status.finally(() => {
        exited = true;
      });
      const deadline = performance.now() + READY_TIMEOUT;
      let ready = false;
      while (!exited && performance.now() < deadline) {
        if (await canConnect(port)) {
          ready = !exited;
          break;
        }
        await delay(10);
      }
      if (ready) return handle(child, status, port, dir);
      if (!exited) {
        child.kill("SIGKILL");
        await status;
        throw new Error(
          `Cannot start tinyproxy: no connection accepted on port ${port} within ${READY_TIMEOUT} ms; log:\n${await readLog(
            dir,
          )}`,
        );
      }
      await status;
      lastLog = await readLog(dir);
      // Another process took the port between freePort() and the bind: retry.
      if (!/address already in use|bind/i.test(lastLog)) break;
    }
    throw new Error(
      `Cannot start tinyproxy: it exited early; log:\n${lastLog}`,
    );
  } catch (e) {
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
}

function handle(
  child: Deno.ChildProcess,
  status: Promise<Deno.CommandStatus>,
  port: number,
  dir: string,
): Tinyproxy {
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already exited.
      }
      if (!await settlesWithin(status, STOP_GRACE)) {
        try {
          child.kill("SIGKILL");
        } catch {
          // Exited in the meantime.
        }
      }
      await status;
      await Deno.remove(dir, { recursive: true });
    })();
    return stopping;
  };
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    dir,
    log: () => readLog(dir),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
