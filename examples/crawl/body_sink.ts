/**
 * The sink the crawl CLI gives a URL with `--output-dir`: the body streams to
 * its file, and what `--follow` or `--print-body` need of it is kept aside.
 *
 * @module
 */
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
   * Keep it only if its first non-blank byte is `<` (it may be HTML), so images
   * and archives are not held.
   *
   * @default {false}
   */
  keepMarkupOnly?: boolean;
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
  #markupOnly: boolean;
  #sniffed = false;

  /**
   * @param dir The output folder.
   * @param url The URL whose body this is: it names the file.
   * @param options What to keep in memory.
   */
  constructor(dir: OutputDir, url: string, options: BodySinkOptions = {}) {
    this.#keep = options.keep ?? 0;
    this.#markupOnly = options.keepMarkupOnly ?? false;
    const open = async () => {
      if (this.#writer === null) {
        this.#file = await dir.open(url);
        this.#writer = this.#file.writable.getWriter();
      }
      return this.#writer;
    };
    this.writable = new WritableStream<Uint8Array>({
      write: async (chunk) => {
        this.bytes += chunk.length;
        this.#keepChunk(chunk);
        const writer = await open();
        await writer.write(chunk);
      },
      close: async () => {
        await (await open()).close();
      },
      abort: async (reason) => {
        await this.#writer?.abort(reason).catch(() => {});
      },
    });
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
    if (this.#markupOnly && !this.#sniffed) {
      const first = chunk.findIndex((b) => b > 32);
      if (first < 0) return;
      this.#sniffed = true;
      if (chunk[first] !== 0x3c) {
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
