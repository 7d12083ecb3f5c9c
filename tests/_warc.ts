/**
 * Independent checks of the WARC files the crawl example writes: digests computed
 * apart from the writer, and warcio.js's own CLI reading the file.
 */
import { assert, assertEquals } from "@std/assert";
import base32Encode from "npm:base32-encode@2.0.0";

/** The warcio.js release both WARC test files read with. */
export const WARCIO = "npm:warcio@2.4.11";

const decoder = new TextDecoder();

/** `sha1:` + base32 (RFC 4648, no padding), computed apart from the writer. */
export async function sha1(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    bytes as Uint8Array<ArrayBuffer>,
  );
  return "sha1:" +
    base32Encode(new Uint8Array(digest), "RFC4648", { padding: false });
}

/** `warcio index` (warcio.js's CLI) on a file: one object per record. */
export async function warcioIndex(
  path: string,
): Promise<Record<string, string>[]> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--no-config",
      "--allow-read",
      "--allow-env",
      WARCIO,
      "index",
      path,
      "--fields",
      "offset,length,warc-type,warc-target-uri",
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  assertEquals(decoder.decode(output.stderr), "");
  assert(output.success);
  return decoder.decode(output.stdout).trim().split("\n").map((line) =>
    JSON.parse(line)
  );
}
