/**
 * The crawl CLI's URL list: one URL a line, read lazily from a file, stdin or any
 * byte stream.
 *
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
}

const DEFAULT_MAX_LINE = 1 << 20;

/**
 * Yields the URLs of a byte stream holding one URL a line, as they are read.
 *
 * The bytes are decoded as UTF-8 (invalid sequences become U+FFFD). Nothing is
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
 * @throws {RangeError} When a line is longer than `maxLineLength`.
 */
export async function* readUrls(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  options: ReadUrlsOptions = {},
): AsyncGenerator<string, void, undefined> {
  const maxLine = options.maxLineLength ?? DEFAULT_MAX_LINE;
  const decoder = new TextDecoder();
  let pending = "";
  let lineNumber = 0;
  for await (const chunk of source) {
    const text = pending + decoder.decode(chunk, { stream: true });
    let start = 0;
    for (
      let end = text.indexOf("\n");
      end !== -1;
      end = text.indexOf("\n", start)
    ) {
      lineNumber++;
      const url = urlOf(text.slice(start, end), lineNumber, maxLine);
      start = end + 1;
      if (url !== null) yield url;
    }
    pending = text.slice(start);
    if (pending.length > maxLine) throw tooLong(lineNumber + 1, maxLine);
  }
  pending += decoder.decode();
  if (pending !== "") {
    const url = urlOf(pending, lineNumber + 1, maxLine);
    if (url !== null) yield url;
  }
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
  if (path === "-") return readUrls(Deno.stdin.readable, options);
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
  return readUrls(file.readable, options);
}

function urlOf(
  line: string,
  lineNumber: number,
  maxLine: number,
): string | null {
  if (line.length > maxLine) throw tooLong(lineNumber, maxLine);
  const url = line.trim();
  return url === "" || url.startsWith("#") ? null : url;
}

function tooLong(lineNumber: number, maxLine: number): RangeError {
  return new RangeError(
    `Cannot read URL list: line ${lineNumber} is longer than ${maxLine} characters`,
  );
}
