/**
 * The crawl CLI's URL list: one URL a line, read lazily from a file, stdin or any
 * byte stream.
 *
 * The bytes are UTF-8, or UTF-16 when they start with its byte order mark (as
 * Windows PowerShell 5.1's `>` and `Out-File` write a file).
 * Lines are split on LF (a CR before it is dropped) and trimmed of white space;
 * blank lines and lines starting with `#` are skipped. Nothing is read ahead of the
 * consumer: the next chunk of the source is pulled only when the lines already
 * decoded are used up, so a 10,000,000-line file yields its first URL at once and
 * memory stays at one chunk plus one line whatever the file's size.
 *
 * @module
 */

/** Options of {@linkcode readUrls} and {@linkcode openUrlList}. */
export interface ReadUrlsOptions {
  /**
   * Longest line accepted, in UTF-16 code units after decoding. A longer line (or a
   * file without line breaks) throws a `RangeError` instead of growing memory.
   *
   * @default {1048576}
   */
  maxLineLength?: number;
  /**
   * Called with the number of a line longer than `maxLineLength`, which is then
   * skipped (read to its end and dropped, never held) and the list goes on:
   * that one entry fails, as a line that is no URL does. Without it such a
   * line throws.
   */
  onTooLong?: (lineNumber: number, maxLineLength: number) => void;
}

const DEFAULT_MAX_LINE = 1 << 20;

/**
 * Yields the URLs of a byte stream holding one URL a line, as they are read.
 *
 * The bytes are decoded as UTF-8 (invalid sequences become U+FFFD), or as
 * UTF-16LE or UTF-16BE after a byte order mark FF FE or FE FF, as browsers sniff
 * one (the WHATWG Encoding "decode"). Nothing is
 * validated: a line that is not a URL is yielded as it stands, so that the fetch of
 * that one line fails and the rest of the list goes on. Breaking out of the loop
 * cancels the source (a file stream then closes its file).
 *
 * @example Reading a list with comments
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { readUrls } from "./input.ts";
 *
 * const text = "# seeds\nhttp://a.test/\n\n  http://b.test/x \r\n";
 * const urls = await Array.fromAsync(readUrls(ReadableStream.from([
 *   new TextEncoder().encode(text),
 * ])));
 * assertEquals(urls, ["http://a.test/", "http://b.test/x"]);
 * ```
 *
 * @param source The bytes of the list.
 * @param options Limits.
 * @returns The URLs in list order.
 * @throws {RangeError} When a line is longer than `maxLineLength` and no
 * `onTooLong` is given.
 */
export async function* readUrls(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  options: ReadUrlsOptions = {},
): AsyncGenerator<string, void, undefined> {
  for await (const { url } of readListedUrls(source, options)) yield url;
}

/** A URL of a list, with the number of its line (the first is 1). */
export interface ListedUrl {
  url: string;
  line: number;
}

/**
 * Yields the URLs of a byte stream as {@linkcode readUrls} does, each with the
 * number of its line, for a message about that line.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { readListedUrls } from "./input.ts";
 *
 * const bytes = new TextEncoder().encode("# seeds\n\nhttp://a.test/\nnope");
 * const urls = await Array.fromAsync(readListedUrls(ReadableStream.from([bytes])));
 * assertEquals(urls, [{ url: "http://a.test/", line: 3 }, { url: "nope", line: 4 }]);
 * ```
 *
 * @param source The bytes of the list.
 * @param options Limits.
 * @returns The URLs in list order, with their line numbers.
 * @throws {RangeError} As {@linkcode readUrls}.
 */
export async function* readListedUrls(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  options: ReadUrlsOptions = {},
): AsyncGenerator<ListedUrl, void, undefined> {
  const maxLine = options.maxLineLength ?? DEFAULT_MAX_LINE;
  const onTooLong = options.onTooLong ??
    ((lineNumber: number) => {
      throw tooLong(lineNumber, maxLine);
    });
  /** Chosen by the first two bytes, held in `head` until they are in. */
  let decoder: TextDecoder | undefined;
  let head: Uint8Array = new Uint8Array(0);
  let pending = "";
  let lineNumber = 0;
  /** Inside a line too long, reported already: drop up to its LF. */
  let skipping = false;
  for await (let chunk of source) {
    if (decoder === undefined) {
      if (head.length > 0) chunk = concat(head, chunk);
      if (chunk.length < 2) {
        head = chunk;
        continue;
      }
      decoder = new TextDecoder(encodingOf(chunk));
    }
    let text = pending + decoder.decode(chunk, { stream: true });
    if (skipping) {
      const end = text.indexOf("\n");
      if (end === -1) continue;
      skipping = false;
      text = text.slice(end + 1);
    }
    let start = 0;
    for (
      let end = text.indexOf("\n");
      end !== -1;
      end = text.indexOf("\n", start)
    ) {
      lineNumber++;
      const line = text.slice(start, end);
      start = end + 1;
      if (line.length > maxLine) {
        onTooLong(lineNumber, maxLine);
        continue;
      }
      const url = urlOf(line);
      if (url !== null) yield { url, line: lineNumber };
    }
    pending = text.slice(start);
    if (pending.length > maxLine) {
      lineNumber++;
      onTooLong(lineNumber, maxLine);
      pending = "";
      skipping = true;
    }
  }
  if (skipping) return;
  pending += decoder?.decode() ?? new TextDecoder().decode(head);
  if (pending === "") return;
  if (pending.length > maxLine) {
    onTooLong(lineNumber + 1, maxLine);
    return;
  }
  const url = urlOf(pending);
  if (url !== null) yield { url, line: lineNumber + 1 };
}

/**
 * Opens a URL list (a file path, or `-` for stdin) and yields its URLs lazily, as
 * {@linkcode readUrls} does.
 *
 * The file is opened before this resolves, so a missing or unreadable file fails at
 * once with one clear message, before any crawling starts; it is closed when the
 * iteration ends or is broken out of.
 *
 * @example Reading a file
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { openUrlList } from "./input.ts";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "http://a.test/\n# done\n");
 * const urls = await Array.fromAsync(await openUrlList(path));
 * assertEquals(urls, ["http://a.test/"]);
 * await Deno.remove(path);
 * ```
 *
 * @param path A file path, or `-` for stdin.
 * @param options Limits.
 * @returns The URLs in list order.
 * @throws {Error} "Cannot read URL list '<path>': <reason>" when the file cannot be
 * opened; the system error is its `cause`.
 */
export async function openUrlList(
  path: string,
  options: ReadUrlsOptions = {},
): Promise<AsyncGenerator<string, void, undefined>> {
  return readUrls(await openList(path), options);
}

/**
 * Opens a URL list as {@linkcode openUrlList} does, and yields its URLs with
 * their line numbers, as {@linkcode readListedUrls} does.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { openListedUrls } from "./input.ts";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "# done\nhttp://a.test/\n");
 * const urls = await Array.fromAsync(await openListedUrls(path));
 * assertEquals(urls, [{ url: "http://a.test/", line: 2 }]);
 * await Deno.remove(path);
 * ```
 *
 * @param path A file path, or `-` for stdin.
 * @param options Limits.
 * @returns The URLs in list order, with their line numbers.
 * @throws {Error} As {@linkcode openUrlList}.
 */
export async function openListedUrls(
  path: string,
  options: ReadUrlsOptions = {},
): Promise<AsyncGenerator<ListedUrl, void, undefined>> {
  return readListedUrls(await openList(path), options);
}

/** The bytes of a list: stdin for `-`, else the file, opened (and checked) now. */
async function openList(path: string): Promise<ReadableStream<Uint8Array>> {
  if (path === "-") return Deno.stdin.readable;
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(path, { read: true });
    // Reading a directory fails only at the first read, after the crawl started.
    if ((await file.stat()).isDirectory) throw new Error("Is a directory");
  } catch (cause) {
    file?.close();
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new Error(`Cannot read URL list '${path}': ${reason}`, { cause });
  }
  return file.readable;
}

/** The encoding a byte order mark names, else UTF-8 (whose BOM the decoder drops). */
function encodingOf(bytes: Uint8Array): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return "utf-16le";
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return "utf-16be";
  return "utf-8";
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function urlOf(line: string): string | null {
  const url = line.trim();
  return url === "" || url.startsWith("#") ? null : url;
}

/** The error of a line longer than `maxLine`. */
export function tooLong(lineNumber: number, maxLine: number): RangeError {
  return new RangeError(
    `Cannot read URL list: line ${lineNumber} is longer than ${maxLine} characters`,
  );
}
