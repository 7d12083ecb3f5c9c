/**
 * The sink the crawl CLI gives a URL: with `--output-dir` the body streams to
 * its file, and what `--follow` or `--print-body` need of it is kept aside;
 * without, it is counted and only that is kept (a crawl of large files holds
 * none of them in memory).
 *
 * @module
 */
import { DiskError } from "./disk_error.ts";
import type { OutputDir, OutputFile } from "./output_dir.ts";

/** Options of {@linkcode BodySink}. */
export interface BodySinkOptions {
  /**
   * Keep the body in memory too, up to this many bytes (what is past it is not
   * kept): for link extraction and `--print-body`.
   *
   * @default {0}
   */
  keep?: number;
  /**
   * Keep it only if its first bytes hold no binary byte (a control character
   * no text has, as the WHATWG MIME Sniffing standard defines them), so images
   * and archives are not held; whether it is HTML is the response's
   * `Content-Type`'s to say (a page may start with a BOM or with text).
   *
   * @default {false}
   */
  keepTextOnly?: boolean;
  /**
   * Asked once, before the file would be created: `false` saves nothing (the
   * body is still counted and kept), for a response that is no page of its
   * own, such as a redirect `--follow` queues (its empty body, saved under
   * the name of the page it leads to, would replace that page).
   *
   * @default {() => true}
   */
  save?: () => boolean;
}

/** How much of a body's first chunk is looked at (the resource header of MIME Sniffing). */
const SNIFF_BYTES = 1445;

/**
 * Whether `bytes` hold a binary data byte (MIME Sniffing 3: 0x00-0x08, 0x0B,
 * 0x0E-0x1A, 0x1C-0x1F): PNG, GIF, JPEG, gzip and zip all do early on.
 */
function looksBinary(bytes: Uint8Array): boolean {
  // A byte order mark says text first (UTF-16 is full of 0x00 bytes).
  const [a, b, c] = bytes;
  if ((a === 0xfe && b === 0xff) || (a === 0xff && b === 0xfe)) return false;
  if (a === 0xef && b === 0xbb && c === 0xbf) return false;
  for (const b of bytes) {
    if (
      b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0c && b !== 0x0d &&
      b !== 0x1b
    ) {
      return true;
    }
  }
  return false;
}

/**
 * A body's way to disk: the file is opened at the first byte (or at the end, for
 * an empty body), so URLs waiting in the crawl's queue hold no file, and a URL
 * that fails before its body leaves nothing behind.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { BodySink } from "./body_sink.ts";
 * import { OutputDir } from "./output_dir.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const sink = new BodySink(new OutputDir(dir), "http://a.test/x", { keep: 100 });
 * await ReadableStream.from([new TextEncoder().encode("<p>")]).pipeTo(sink.writable);
 * assertEquals(await Deno.readTextFile(`${dir}/a.test/x`), "<p>");
 * assertEquals(new TextDecoder().decode(sink.kept()), "<p>");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class BodySink {
  /** Hand it to the engine as the URL's `sink`. */
  readonly writable: WritableStream<Uint8Array>;
  /** Body bytes written. */
  bytes = 0;
  #file: OutputFile | null = null;
  #writer: WritableStreamDefaultWriter<Uint8Array> | null = null;
  #kept: Uint8Array[] = [];
  #keptBytes = 0;
  #keep: number;
  #textOnly: boolean;
  #sniffed = false;
  #failure: DiskError | null = null;
  readonly #ended = Promise.withResolvers<void>();

  /**
   * @param dir The output folder, or `null` to save nothing (count and keep only).
   * @param url The URL whose body this is: it names the file.
   * @param options What to keep in memory.
   */
  constructor(
    dir: OutputDir | null,
    url: string,
    options: BodySinkOptions = {},
  ) {
    this.#keep = options.keep ?? 0;
    this.#textOnly = options.keepTextOnly ?? false;
    if (dir === null) {
      this.writable = new WritableStream<Uint8Array>({
        write: (chunk) => {
          this.bytes += chunk.length;
          this.#keepChunk(chunk);
        },
      });
      this.#ended.resolve();
      return;
    }
    const save = options.save;
    // Whether the body is saved: asked at its first write, or at its close.
    let saved: boolean | undefined = save === undefined ? true : undefined;
    const open = async () => {
      saved ??= save!();
      if (!saved) return null;
      if (this.#writer === null) {
        try {
          this.#file = await dir.open(url);
        } catch (error) {
          this.#fileFailed(error);
          saved = false;
          return null;
        }
        this.#writer = this.#file.writable.getWriter();
      }
      return this.#writer;
    };
    this.writable = new WritableStream<Uint8Array>({
      write: async (chunk) => {
        this.bytes += chunk.length;
        this.#keepChunk(chunk);
        try {
          await (await open())?.write(chunk);
        } catch (error) {
          // The stream errors without a close or abort: the file is gone
          // (a failed write removes it), so nothing is left to wait for.
          this.#ended.resolve();
          throw error;
        }
      },
      close: async () => {
        try {
          await (await open())?.close();
        } catch (error) {
          // Found as it is renamed into place (its hidden temporary name,
          // shorter, fitted): the file is removed, no path is reported.
          this.#fileFailed(error);
          this.#file = null;
        } finally {
          this.#ended.resolve();
        }
      },
      abort: async (reason) => {
        try {
          await this.#writer?.abort(reason).catch(() => {});
        } finally {
          this.#ended.resolve();
        }
      },
    });
  }

  /**
   * Settled once the body's file is in place or removed (the stream's close or
   * abort is done), at once when the sink saves nothing: what a process about to
   * exit waits for, so that no temporary file is left.
   */
  get done(): Promise<void> {
    return this.#ended.promise;
  }

  /**
   * Keeps a {@linkcode DiskError} that is not `fatal` (a name too long for the
   * file system) as this URL's failure: its file alone fails, and the body is
   * still read (counted, kept for its links, and archived whole by --warc).
   * Throws any other error.
   */
  #fileFailed(error: unknown): void {
    if (!(error instanceof DiskError) || error.fatal) throw error;
    this.#failure = error;
  }

  /**
   * Why the body could not be saved though its response came whole: a name
   * too long for the file system (a {@linkcode DiskError} that is not
   * `fatal`), found as the file was created or renamed into place; `null`
   * otherwise.
   */
  get failure(): DiskError | null {
    return this.#failure;
  }

  /** Where the body was saved, once the stream closed; `null` before. */
  get path(): string | null {
    return this.#file?.path ?? null;
  }

  /** The bytes kept in memory (see the options). */
  kept(): Uint8Array {
    const out = new Uint8Array(this.#keptBytes);
    let at = 0;
    for (const chunk of this.#kept) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }

  #keepChunk(chunk: Uint8Array): void {
    if (this.#keep === 0) return;
    if (this.#textOnly && !this.#sniffed) {
      this.#sniffed = true;
      if (looksBinary(chunk.subarray(0, SNIFF_BYTES))) {
        this.#keep = 0;
        return;
      }
    }
    const room = this.#keep - this.#keptBytes;
    if (room <= 0) return;
    const piece = chunk.length <= room ? chunk : chunk.subarray(0, room);
    this.#kept.push(piece.slice());
    this.#keptBytes += piece.length;
  }
}
