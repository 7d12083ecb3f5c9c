/**
 * Runs a `deno` subcommand with the `@std` packages resolved as a user gets them:
 * from JSR when it is reachable, and otherwise from a local copy of JSR's registry
 * (the `shared/jsr/` folder beside this repository, or `$SELECTORS_JSR_MIRROR`),
 * served on 127.0.0.1 for the run and named to Deno with `JSR_URL`. Either way the
 * tests run against the real `@std/assert`, `@std/async` and `@std/testing`.
 *
 * Usage: `deno run ... tests/_std.ts <subcommand> [args...]`
 *
 * @module
 */
const [subcommand, ...rest] = Deno.args;
if (!subcommand) {
  console.error("Usage: tests/_std.ts <deno subcommand> [args...]");
  Deno.exit(2);
}

/**
 * A fixed port first, so Deno's cache (keyed by registry URL) is reused from run to
 * run; any free port when another run holds it.
 */
const PREFERRED_PORT = 47_011;

async function jsrReachable(): Promise<boolean> {
  try {
    const res = await fetch("https://jsr.io/@std/assert/meta.json", {
      signal: AbortSignal.timeout(5_000),
    });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

function mirrorRoot(): string | null {
  const candidates = [
    Deno.env.get("SELECTORS_JSR_MIRROR"),
    new URL("../../shared/jsr/", import.meta.url).pathname,
  ];
  for (const dir of candidates) {
    if (!dir) continue;
    try {
      if (Deno.statSync(`${dir}/@std/assert/meta.json`).isFile) return dir;
    } catch {
      // Not there: try the next one.
    }
  }
  return null;
}

const CONTENT_TYPES: Record<string, string> = {
  ".ts": "application/typescript",
  ".mts": "application/typescript",
  ".tsx": "text/tsx",
  ".js": "application/javascript",
  ".mjs": "application/javascript",
  ".json": "application/json",
};

function serveMirror(root: string): Deno.HttpServer<Deno.NetAddr> {
  const handler = async (req: Request): Promise<Response> => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (path.split("/").includes("..")) {
      return new Response("Bad path", { status: 400 });
    }
    try {
      const body = await Deno.readFile(`${root}${path}`);
      const ext = path.slice(path.lastIndexOf("."));
      return new Response(body, {
        headers: {
          "content-type": CONTENT_TYPES[ext] ?? "application/octet-stream",
        },
      });
    } catch {
      return new Response("Not found", { status: 404 });
    }
  };
  const options = { hostname: "127.0.0.1", onListen() {} };
  try {
    return Deno.serve({ ...options, port: PREFERRED_PORT }, handler);
  } catch (e) {
    if (!(e instanceof Deno.errors.AddrInUse)) throw e;
    return Deno.serve({ ...options, port: 0 }, handler);
  }
}

const env: Record<string, string> = {};
let server: Deno.HttpServer<Deno.NetAddr> | null = null;
if (!Deno.env.get("JSR_URL") && !(await jsrReachable())) {
  const root = mirrorRoot();
  if (root === null) {
    console.error(
      "Cannot run: jsr.io is not reachable and no local JSR mirror was found (../shared/jsr or $SELECTORS_JSR_MIRROR)",
    );
    Deno.exit(1);
  }
  server = serveMirror(root);
  env.JSR_URL = `http://127.0.0.1:${server.addr.port}/`;
  console.error(`jsr.io is not reachable: @std from ${env.JSR_URL} (${root})`);
}

const { code } = await new Deno.Command(Deno.execPath(), {
  args: [subcommand, ...rest],
  env,
}).spawn().status;
await server?.shutdown();
Deno.exit(code);
