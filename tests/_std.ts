/**
 * Runs a `deno` subcommand with the `@std` packages resolved from JSR when JSR is
 * reachable, and otherwise from the thin adapters in `tests/_offline/` (built on
 * `node:` built-ins), so the tests run the same online and offline.
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

async function jsrReachable(): Promise<boolean> {
  if (Deno.env.get("SELECTORS_OFFLINE") === "1") return false;
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

const args = [subcommand];
if (!(await jsrReachable())) {
  const map = new URL("./_offline/import_map.json", import.meta.url);
  args.push(`--import-map=${map.pathname}`);
  console.error("JSR is not reachable: using tests/_offline/import_map.json");
}
args.push(...rest);
const { code } = await new Deno.Command(Deno.execPath(), { args }).spawn()
  .status;
Deno.exit(code);
