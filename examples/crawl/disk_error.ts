/**
 * The crawl CLI's one error for a failed disk operation (`--output-dir`, `--warc`).
 *
 * @module
 */

/**
 * A file or directory the crawl writes could not be created or written: disk full,
 * permission denied, a file where a directory is needed, ... The CLI stops the
 * crawl on a fatal one and prints its message as one line (exit status 1).
 *
 * The message reads "Cannot <action> '<path>': <system message>"; the system error
 * (a `Deno.errors.*` or `Error`) is the `cause`. A name too long for the file
 * system is the one error that is not {@linkcode DiskError.fatal}: that URL fails
 * alone.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { DiskError } from "./disk_error.ts";
 *
 * const error = new DiskError("write", "/out/a.html", new Error("No space left on device"));
 * assertEquals(error.message, "Cannot write '/out/a.html': No space left on device");
 * assertEquals(error.name, "DiskError");
 * assertEquals(error.fatal, true);
 * ```
 */
export class DiskError extends Error {
  /** Always `"DiskError"`. */
  override name = "DiskError";
  /** The file or directory the operation was on. */
  readonly path: string;
  /**
   * Whether every later file would meet it too (a full disk, a denied
   * permission, a read-only file system), so the crawl stops; `false` for a
   * path too long for the file system (`ENAMETOOLONG`), which fails its URL alone.
   */
  readonly fatal: boolean;

  /**
   * Builds the one-line message from the action, the path and the cause.
   *
   * @param action What was being done: "write", "create directory", ...
   * @param path The file or directory.
   * @param cause The system error.
   */
  constructor(action: string, path: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`Cannot ${action} '${path}': ${reason}`, { cause });
    this.path = path;
    this.fatal = (cause as { code?: unknown } | null)?.code !== "ENAMETOOLONG";
  }
}
