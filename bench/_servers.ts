/**
 * The servers the HTTP rows run against, each started by the bench on free
 * 127.0.0.1 ports with its own files in a temp dir, and stopped by pid:
 *
 * - {@linkcode startNginx}: Debian's nginx (`worker_processes 1`, keep-alive on,
 *   access log off, `sendfile`), serving generated files `/1k`, `/64k`, `/64m` and
 *   `/1g` on one port, plus `extraPorts` more ports of the same server (the
 *   many-origins row), and with `tls` the same files over https on one more
 *   port (the `tls` row; `tests/testdata/localhost.crt`, signed by
 *   {@linkcode TEST_CA});
 * - {@linkcode startDenoOrigin}: `_origin.ts`, the same paths from a raw
 *   `Deno.listen` server, used when nginx is missing or with `--origin deno`;
 * - {@linkcode startTinyproxy}: Debian's tinyproxy, for the proxy row.
 *
 * @module
 */
import { cleanupOnKill, spawnDeno } from "./_util.ts";

/** A running origin server. */
export interface Origin {
  kind: "nginx" | "deno";
  /** What it is, for the report. */
  describe: string;
  /** The port of the single-origin rows. */
  port: number;
  /** More ports of the same server: one origin each. */
  extraPorts: number[];
  /**
   * The port of the same files over https (certificate for `localhost`,
   * `127.0.0.1` and `::1`, signed by {@linkcode TEST_CA}), when the server was
   * started with one (nginx only).
   */
  tlsPort?: number;
  stop(): Promise<void>;
}

/** A running tinyproxy. */
export interface Proxy {
  url: string;
  /** Its log so far (`LogLevel Connect`: one `Request (...)` line per request). */
  log(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * The private CA (PEM file) that signed the https origin's certificate: the
 * tests' (`tests/testdata/README.md`).
 */
export const TEST_CA: string =
  new URL("../tests/testdata/ca.crt", import.meta.url).pathname;

const TESTDATA = new URL("../tests/testdata/", import.meta.url).pathname;

const KiB = 1024;
const MiB = 1024 * KiB;

/** The paths every origin serves, with their sizes. */
export const PATHS = {
  "/1k": KiB,
  "/64k": 64 * KiB,
  "/64m": 64 * MiB,
  "/1g": 1024 * MiB,
} as const;

function findProgram(name: string): string | null {
  for (
    const dir of ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
  ) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
    } catch {
      // Not there.
    }
  }
  return null;
}

/** Distinct ports that were free a moment ago (the servers cannot report theirs). */
function freePorts(n: number): number[] {
  const listeners = Array.from(
    { length: n },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => l.addr.port);
  for (const l of listeners) l.close();
  return ports;
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

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits until every port accepts, or the child exits, or `ms` pass. */
async function waitListening(
  ports: number[],
  exited: () => boolean,
  ms: number,
): Promise<boolean> {
  const deadline = performance.now() + ms;
  let i = 0;
  while (!exited() && performance.now() < deadline && i < ports.length) {
    if (await canConnect(ports[i]!)) i++;
    else await delay(10);
  }
  return i === ports.length && !exited();
}

/** Sends `signal`, waits up to `ms` for the exit, then SIGKILLs `pids` and it. */
async function stopProcess(
  child: Deno.ChildProcess,
  status: Promise<unknown>,
  signal: Deno.Signal,
  ms: number,
  alsoKill: () => number[] = () => [],
): Promise<void> {
  try {
    child.kill(signal);
  } catch {
    // Already exited.
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const exited = await Promise.race([
    status.then(() => true),
    new Promise<boolean>((r) => timer = setTimeout(() => r(false), ms)),
  ]);
  clearTimeout(timer);
  if (!exited) {
    for (const pid of alsoKill()) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch {
        // Gone.
      }
    }
    try {
      child.kill("SIGKILL");
    } catch {
      // Exited meanwhile.
    }
    await status;
  }
}

/** The pids of `pid`'s children (Linux), so a stuck nginx leaves no worker behind. */
function childPids(pid: number): number[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim()
      .split(/\s+/).filter((s) => s !== "").map(Number);
  } catch {
    return [];
  }
}

async function writeFiles(www: string): Promise<void> {
  await Deno.mkdir(www, { recursive: true });
  for (const [path, size] of Object.entries(PATHS)) {
    const file = `${www}${path}`;
    if (size <= 64 * KiB) {
      await Deno.writeFile(file, new Uint8Array(size).fill(120));
    } else {
      // Sparse: the bytes come from the page cache, nothing is written to disk.
      await Deno.writeFile(file, new Uint8Array(0));
      await Deno.truncate(file, size);
    }
  }
}

function nginxConfig(
  dir: string,
  port: number,
  extra: number[],
  tlsPort: number | undefined,
): string {
  const root = Deno.uid() === 0;
  return [
    ...(root ? ["user root;"] : []),
    "worker_processes 1;",
    "worker_rlimit_nofile 65536;",
    "daemon off;",
    "master_process on;",
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log warn;`,
    "events { worker_connections 16384; }",
    "http {",
    "  access_log off;",
    "  sendfile on;",
    "  tcp_nodelay on;",
    "  keepalive_timeout 65;",
    // nginx closes a keep-alive conn after 1,000 requests by default.
    "  keepalive_requests 100000000;",
    "  default_type application/octet-stream;",
    `  client_body_temp_path ${dir}/tmp/body;`,
    `  proxy_temp_path ${dir}/tmp/proxy;`,
    `  fastcgi_temp_path ${dir}/tmp/fastcgi;`,
    `  uwsgi_temp_path ${dir}/tmp/uwsgi;`,
    `  scgi_temp_path ${dir}/tmp/scgi;`,
    "  server {",
    `    listen 127.0.0.1:${port};`,
    ...extra.map((p) => `    listen 127.0.0.1:${p};`),
    `    root ${dir}/www;`,
    "    location / { }",
    "  }",
    // The same files over https, keep-alive as above (the http-level settings);
    // no http2: every client of the row speaks HTTP/1.1. TLS 1.3 as most
    // servers now (nginx 1.22's default stops at 1.2; 1.23.4 added 1.3).
    ...(tlsPort !== undefined
      ? [
        "  server {",
        `    listen 127.0.0.1:${tlsPort} ssl;`,
        `    ssl_certificate ${dir}/localhost.crt;`,
        `    ssl_certificate_key ${dir}/localhost.key;`,
        "    ssl_protocols TLSv1.2 TLSv1.3;",
        `    root ${dir}/www;`,
        "    location / { }",
        "  }",
      ]
      : []),
    "}",
  ].join("\n") + "\n";
}

/**
 * Starts nginx (`nginx -p dir -c dir/nginx.conf -e dir/error.log`, in the
 * foreground) or returns why it could not. With `tls`, it also serves the files
 * over https on {@linkcode Origin.tlsPort}.
 */
export async function startNginx(
  extraPorts: number,
  tls = false,
): Promise<Origin | string> {
  const nginx = findProgram("nginx");
  if (nginx === null) {
    return "nginx not found (Debian: apt-get install -y nginx)";
  }
  const dir = await Deno.makeTempDir({ prefix: "bench-nginx-" });
  let last = "";
  try {
    await Deno.chmod(dir, 0o755);
    await writeFiles(`${dir}/www`);
    await Deno.mkdir(`${dir}/tmp`);
    if (tls) {
      for (const f of ["localhost.crt", "localhost.key"]) {
        await Deno.copyFile(`${TESTDATA}${f}`, `${dir}/${f}`);
      }
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      const all = freePorts(1 + extraPorts + (tls ? 1 : 0));
      const tlsPort = tls ? all.pop() : undefined;
      const [port, ...extra] = all;
      await Deno.writeTextFile(`${dir}/error.log`, "");
      await Deno.writeTextFile(
        `${dir}/nginx.conf`,
        nginxConfig(dir, port!, extra, tlsPort),
      );
      const child = new Deno.Command(nginx, {
        args: ["-p", dir, "-c", `${dir}/nginx.conf`, "-e", `${dir}/error.log`],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      let exited = false;
      const status = child.status.finally(() => exited = true);
      const listening = [port!, ...extra, ...(tls ? [tlsPort!] : [])];
      if (await waitListening(listening, () => exited, 10_000)) {
        const version = await nginxVersion(nginx);
        return {
          kind: "nginx",
          describe:
            `${version} (worker_processes 1, keep-alive, access log off, sendfile), in its own processes`,
          port: port!,
          extraPorts: extra,
          ...(tlsPort !== undefined ? { tlsPort } : {}),
          stop: cleanupOnKill(async () => {
            await stopProcess(
              child,
              status,
              "SIGTERM",
              5_000,
              () => childPids(child.pid),
            );
            await Deno.remove(dir, { recursive: true });
          }),
        };
      }
      await stopProcess(
        child,
        status,
        "SIGTERM",
        3_000,
        () => childPids(child.pid),
      );
      last = await Deno.readTextFile(`${dir}/error.log`).catch(() => "");
      // A port taken between freePorts() and nginx's bind: try other ports.
      if (!/in use/i.test(last)) break;
    }
  } catch (e) {
    last = String(e);
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  return `nginx did not start: ${last.trim().split("\n").slice(-2).join(" ")}`;
}

async function nginxVersion(nginx: string): Promise<string> {
  try {
    const out = await new Deno.Command(nginx, {
      args: ["-v"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stderr).trim();
    return text.replace(/^nginx version: /, "") || "nginx";
  } catch {
    return "nginx";
  }
}

/** Starts `_origin.ts` (raw `Deno.listen`) with `1 + extraPorts` listeners. */
export async function startDenoOrigin(extraPorts: number): Promise<Origin> {
  const child = spawnDeno(
    ["--allow-net=127.0.0.1"],
    "./_origin.ts",
    ["--impl", "raw", "--ports", String(1 + extraPorts)],
    "origin",
  );
  try {
    const { ports } = await child.lines.json<{ ports: number[] }>(30_000);
    return {
      kind: "deno",
      describe:
        "bench/_origin.ts: raw Deno.listen HTTP/1.1 keep-alive server, precomputed responses, in its own process",
      port: ports[0]!,
      extraPorts: ports.slice(1),
      stop: cleanupOnKill(() => child.stop()),
    };
  } catch (e) {
    await child.stop();
    throw e;
  }
}

/** Starts tinyproxy (`-d`, its own config and log) or returns why it could not. */
export async function startTinyproxy(): Promise<Proxy | string> {
  const tinyproxy = findProgram("tinyproxy");
  if (tinyproxy === null) {
    return "tinyproxy not found (Debian: apt-get install -y tinyproxy)";
  }
  const dir = await Deno.makeTempDir({ prefix: "bench-tinyproxy-" });
  const log = `${dir}/tinyproxy.log`;
  let last = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const [port] = freePorts(1);
    await Deno.writeTextFile(log, "");
    await Deno.writeTextFile(
      `${dir}/tinyproxy.conf`,
      [
        `Port ${port}`,
        "Listen 127.0.0.1",
        "Allow 127.0.0.1",
        "Timeout 60",
        "MaxClients 256",
        "DisableViaHeader Yes",
        `LogFile "${log}"`,
        // Connections and request lines only ("Request (file descriptor N): GET ...").
        "LogLevel Connect",
      ].join("\n") + "\n",
    );
    const child = new Deno.Command(tinyproxy, {
      args: ["-d", "-c", `${dir}/tinyproxy.conf`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    let exited = false;
    const status = child.status.finally(() => exited = true);
    if (await waitListening([port!], () => exited, 5_000)) {
      return {
        url: `http://127.0.0.1:${port}`,
        log: () => Deno.readTextFile(log).catch(() => ""),
        stop: cleanupOnKill(async () => {
          await stopProcess(child, status, "SIGTERM", 3_000);
          await Deno.remove(dir, { recursive: true });
        }),
      };
    }
    await stopProcess(child, status, "SIGTERM", 3_000);
    last = await Deno.readTextFile(log).catch(() => "");
    if (!/in use|bind/i.test(last)) break;
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  return `tinyproxy did not start: ${
    last.trim().split("\n").slice(-2).join(" ")
  }`;
}
