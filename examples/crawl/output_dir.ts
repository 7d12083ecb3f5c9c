/**
 * `--output-dir` for the crawl CLI: where a URL's body goes on disk, and a
 * `WritableStream` (the engine's `sink`) that puts it there.
 *
 * Layout: `DIR/<host>[_<port>]/<path>`, as `wget -r` lays it out:
 *
 * | URL                                   | file under DIR                      |
 * | ------------------------------------- | ----------------------------------- |
 * | `http://example.com/`                 | `example.com/index.html`            |
 * | `http://example.com/a/b.css`          | `example.com/a/b.css`               |
 * | `http://example.com/a/`               | `example.com/a/index.html`          |
 * | `http://example.com:8080/s?q=1&x`     | `example.com_8080/s%3Fq=1&x`        |
 * | `https://[::1]/%7Efoo/a%20b`          | `%3A%3A1/~foo/a b`                  |
 *
 * Names are safe on Linux, macOS and Windows: each path segment is percent-decoded
 * (when it decodes as UTF-8), then `%`, `/`, `\`, control characters and
 * `: * ? " < > |` are percent-encoded, as are a name's trailing dot or space, the
 * dots of `.` and `..`, and the first letter of a Windows device name (`CON`,
 * `nul.txt`, `nul .txt`, `COM1`, `CONIN$`, ...). An empty segment (`a//b`)
 * becomes `%`, which no encoded name can be. A name longer than 255 bytes (the
 * usual file name limit) is cut to 200 bytes plus `~` and 16 hex digits of its
 * SHA-1. So nothing can name a path
 * outside `DIR`, and the URL of a query is kept in the file name (`?` → `%3F`).
 * http and https URLs of one host share its folder.
 *
 * Collisions between a file and a folder (`/a` is a page, and so is `/a/b`) are
 * settled so that the result does not depend on which finishes first: the page `/a`
 * always ends up as `a/index.html` once any URL below `/a/` is saved. When `/a` is
 * saved first, the file `a` is moved into the new folder `a/` as `a/index.html`
 * when `/a/b` is opened; when `/a` finishes after the folder `a/` exists, it is
 * renamed into place as `a/index.html` directly (`a/index.html/index.html` when
 * `a/index.html` is a folder too, made by `/a/index.html/x`). `/a` and `/a/` thus share
 * `a/index.html` (the last one finished wins), as they are nearly always one page,
 * the one redirecting to the other.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { DiskError } from "./disk_error.ts";
import { httpUrl } from "./_util.ts";

const MAX_NAME_BYTES = 255;
const CUT_NAME_BYTES = 200;
// Control characters are exactly what this must catch.
// deno-lint-ignore no-control-regex
const UNSAFE = /[\x00-\x1f\x7f%/\\:*?"<>|]/g;
/** In a host, "_" too: it marks the port. */
// deno-lint-ignore no-control-regex
const HOST_UNSAFE = /[\x00-\x1f\x7f%/\\:*?"<>|_]/g;
/**
 * A Windows device name: before its first dot, spaces after it dropped, as
 * Windows reads one (`nul .txt` is NUL, as `nul.txt` is), `CONIN$` and `CONOUT$`
 * too: the names Python's `ntpath.isreserved` takes for devices.
 */
const WINDOWS_DEVICE =
  /^(con|prn|aux|nul|conin\$|conout\$|com[0-9¹²³]|lpt[0-9¹²³]) *(\.|$)/i;
const encoder = new TextEncoder();

/**
 * The path, relative to the output folder and with `/` separators, where the body
 * of `url` is saved (before a file/folder collision moves it; see the module doc).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { urlToPath } from "./output_dir.ts";
 *
 * assertEquals(urlToPath("http://example.com/"), "example.com/index.html");
 * assertEquals(urlToPath("http://example.com:8080/a/../CON.txt?x"), "example.com_8080/%43ON.txt%3Fx");
 * assertEquals(urlToPath("http://my_host:8080/"), "my%5Fhost_8080/index.html");
 * ```
 *
 * @param url An http(s) URL.
 * @returns The relative path: never absolute, never with a `.` or `..` segment.
 * @throws {TypeError} When `url` is not an http(s) URL.
 */
export function urlToPath(url: string | URL): string {
  const parsed = httpUrl(url, "map URL to a file");
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  // "_" may be in a host too: escaped there, it marks the port alone (host
  // a_1 on port 80 and host a on port 1 would share a folder).
  const port = parsed.port === "" ? "" : `_${parsed.port}`;
  const top = safeName(host, HOST_UNSAFE, port.length) + port;
  const segments = parsed.pathname.slice(1).split("/");
  const last = segments.pop()!;
  const file = (last === "" ? "index.html" : decode(last)) +
    (parsed.search === "" ? "" : decode(parsed.search));
  return [top, ...segments.map((s) => safeName(decode(s))), safeName(file)]
    .join("/");
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * `name` as a file or folder name, `unsafe` characters percent-encoded, of at
 * most 255 bytes with `suffix` more bytes after it.
 */
function safeName(name: string, unsafe = UNSAFE, suffix = 0): string {
  if (name === "") return "%";
  let safe = name.replace(unsafe, percent);
  if (safe === "." || safe === "..") safe = safe.replaceAll(".", "%2E");
  if (WINDOWS_DEVICE.test(safe)) safe = percent(safe[0]!) + safe.slice(1);
  if (/[. ]$/.test(safe)) safe = safe.slice(0, -1) + percent(safe.slice(-1));
  return encoder.encode(safe).length + suffix <= MAX_NAME_BYTES
    ? safe
    : shorten(safe);
}

function percent(char: string): string {
  return [...encoder.encode(char)]
    .map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, "0")}`)
    .join("");
}

function shorten(name: string): string {
  const hash = createHash("sha1").update(name).digest("hex").slice(0, 16);
  let cut = "";
  let bytes = 0;
  for (const char of name) {
    bytes += encoder.encode(char).length;
    if (bytes > CUT_NAME_BYTES) break;
    cut += char;
  }
  return `${cut}~${hash}`;
}

/** A body's file, opened by {@linkcode OutputDir.open}. */
export interface OutputFile {
  /**
   * Where the body is saved: the output folder joined with
   * {@linkcode urlToPath}'s path, or `<that path>/index.html` when a folder of that
   * name exists by the time the body ends. Final once `writable` is closed.
   */
  readonly path: string;
  /**
   * Writes the body: hand it to the engine as the request's `sink`. The bytes go
   * to a hidden temporary file beside the target (`.~part-<uuid>`), renamed into
   * place when the stream closes, so a file under its real name is always a whole
   * body, and two bodies for one name (`/a` and `/a/`, or http and https) never
   * mix: the last one closed wins. When aborted (the request failed) or when a
   * write fails, the temporary file is removed; a failed write or rename errors
   * the stream with a {@linkcode DiskError}.
   */
  readonly writable: WritableStream<Uint8Array>;
}

/**
 * The output folder of a crawl: maps URLs to files (see the module doc for the
 * layout) and opens them for writing, creating folders as needed.
 *
 * Folder creation, file/folder moves and the final renames run one at a time
 * (they decide where a body goes); writing the bodies runs in parallel. One
 * `OutputDir` per folder: two processes writing one folder may race on a
 * collision.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { OutputDir } from "./output_dir.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const output = new OutputDir(dir);
 * const file = await output.open("http://example.com/a/");
 * await ReadableStream.from([new TextEncoder().encode("hi")]).pipeTo(file.writable);
 * assertEquals(file.path, `${dir}/example.com/a/index.html`);
 * assertEquals(await Deno.readTextFile(file.path), "hi");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class OutputDir {
  #dir: string;
  #queue: Promise<unknown> = Promise.resolve();
  /**
   * Folders known to be folders: made or seen so by an earlier open. A folder
   * never turns back into a file here, so each is looked at once, not at
   * every file under it (each look is a file-system call, in turn with every
   * other open: they took 3.5 s for 2,900 files, against 1 s for the crawl).
   */
  #folders = new Set<string>();

  /**
   * Names the output folder; nothing is created before the first `open`.
   *
   * @param dir The output folder; created on the first `open` if missing.
   */
  constructor(dir: string) {
    this.#dir = dir.replace(/(.)\/+$/, "$1");
  }

  /** The output folder, as given (without a trailing `/`). */
  get dir(): string {
    return this.#dir;
  }

  /**
   * Creates the folders above the file for `url` and a temporary file to write it.
   *
   * @param url An http(s) URL.
   * @returns The file's path and a stream writing it.
   * @throws {TypeError} When `url` is not an http(s) URL.
   * @throws {DiskError} When a folder or the temporary file cannot be created.
   */
  open(url: string | URL): Promise<OutputFile> {
    const relative = urlToPath(url);
    const cut = relative.lastIndexOf("/");
    const name = relative.slice(cut + 1);
    const folders = relative.slice(0, cut);
    return this.#serial(() => this.#ensureFolders(folders))
      // The folder is there for good: the temporary file needs no turn.
      .then((folder) => this.#create(folder, name, folders));
  }

  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Makes the folders of `relative` (`host/a/b`), in turn; returns the last. */
  async #ensureFolders(relative: string): Promise<string> {
    let folder = this.#dir;
    const folders = this.#folders;
    // Bounded: a crawl of millions of folders looks at them again.
    if (folders.size >= MAX_KNOWN_FOLDERS) folders.clear();
    if (!folders.has(folder)) {
      await ensureTop(folder);
      folders.add(folder);
    }
    for (const segment of relative.split("/")) {
      folder = `${folder}/${segment}`;
      if (folders.has(folder)) continue;
      await ensureFolder(folder);
      folders.add(folder);
    }
    return folder;
  }

  /** Where a page named `target` goes: `index.html` in each known folder of that name. */
  #landing(target: string): string {
    let path = target;
    while (this.#folders.has(path)) path = `${path}/index.html`;
    return path;
  }

  async #create(
    folder: string,
    name: string,
    relative: string,
  ): Promise<OutputFile> {
    const target = `${folder}/${name}`;
    let path = this.#landing(target);
    const part = `${folder}/.~part-${crypto.randomUUID()}`;
    let file: Deno.FsFile;
    // Its errors name the page's file, not the hidden one it is written to
    // first: that is the name a user knows.
    try {
      file = await Deno.open(part, { write: true, createNew: true });
    } catch (cause) {
      if (
        !(cause instanceof Deno.errors.NotFound ||
          cause instanceof Deno.errors.NotADirectory)
      ) throw new DiskError("create file", path, cause);
      // The tree changed under the crawl (a folder removed, or a file in
      // its place): every folder is looked at again, once.
      this.#folders.clear();
      await this.#serial(() => this.#ensureFolders(relative));
      try {
        file = await Deno.open(part, { write: true, createNew: true });
      } catch (cause) {
        throw new DiskError("create file", path, cause);
      }
    }
    // Where it lands is settled at the end, in turn with the folders made: a
    // folder of its name may have appeared meanwhile (one made here is
    // known; one from an earlier run makes the rename fail, and it goes in).
    const place = () =>
      this.#serial(async () => {
        path = this.#landing(target);
        try {
          // A folder in its place (one from an earlier run, or `a/index.html`
          // made a folder by `/a/index.html/x`): the page goes in it as
          // index.html, as deep as folders go. Bounded: each turn is 11
          // bytes longer, until the name is too long.
          for (;;) {
            try {
              await Deno.rename(part, path);
              break;
            } catch (error) {
              // The rename's error stands when that look fails too (a name
              // too long fails both, and is no fatal error).
              const info = await Deno.lstat(path).catch(() => null);
              if (!info?.isDirectory) throw error;
              this.#folders.add(path);
              path = this.#landing(path);
            }
          }
        } catch (cause) {
          throw new DiskError("write", path, cause);
        }
      });
    return {
      get path() {
        return path;
      },
      writable: partWritable(file, part, () => path, place),
    };
  }
}

/** The most folders {@linkcode OutputDir} remembers (~100 bytes each). */
const MAX_KNOWN_FOLDERS = 100_000;

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw new DiskError("inspect", path, error);
  }
}

/**
 * Makes the output folder, or takes it as it is: a symbolic link to a folder
 * too (`-o ~/out` with `out` one), as the user named it.
 */
async function ensureTop(path: string): Promise<void> {
  let info: Deno.FileInfo | null = null;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new DiskError("inspect", path, error);
    }
  }
  if (info?.isDirectory) return;
  try {
    if (info !== null) throw new Deno.errors.NotADirectory("Not a directory");
    await Deno.mkdir(path, { recursive: true });
  } catch (cause) {
    throw new DiskError("create directory", path, cause);
  }
}

/** Makes `path` a folder; a file in the way is moved into it as `index.html`. */
async function ensureFolder(path: string): Promise<void> {
  const info = await statOrNull(path);
  if (info?.isDirectory) return;
  try {
    if (info === null) {
      await Deno.mkdir(path);
      return;
    }
    // Not a symbolic link's target: a link in the tree leads out of it.
    if (!info.isFile) {
      throw new Deno.errors.NotADirectory(
        info.isSymlink
          ? "Not a directory but a symbolic link, which may lead out of the output folder"
          : "Not a directory",
      );
    }
    // Beside it under a short name: the file's own name plus a suffix may not
    // fit in the 255 bytes a name may have.
    const aside = `${
      path.slice(0, path.lastIndexOf("/"))
    }/.~aside-${crypto.randomUUID()}`;
    await Deno.rename(path, aside);
    try {
      await Deno.mkdir(path);
      await Deno.rename(aside, `${path}/index.html`);
    } catch (error) {
      // Put the page back under its name (`a/index.html` too long a path,
      // or no room for the folder): it is not left under a hidden one.
      await Deno.remove(path).catch(() => {});
      await Deno.rename(aside, path).catch(() => {});
      throw error;
    }
  } catch (cause) {
    throw new DiskError("create directory", path, cause);
  }
}

function partWritable(
  file: Deno.FsFile,
  part: string,
  path: () => string,
  place: () => Promise<void>,
): WritableStream<Uint8Array> {
  let open = true;
  const discard = async () => {
    if (open) {
      open = false;
      file.close();
    }
    await Deno.remove(part).catch(() => {});
  };
  return new WritableStream<Uint8Array>({
    async write(chunk) {
      try {
        for (let written = 0; written < chunk.length;) {
          written += await file.write(chunk.subarray(written));
        }
      } catch (cause) {
        await discard();
        // Named after the body's file: the temporary name means nothing to a user.
        throw new DiskError("write", path(), cause);
      }
    },
    async close() {
      open = false;
      file.close();
      try {
        await place();
      } catch (error) {
        await discard();
        throw error;
      }
    },
    abort: discard,
  });
}
