/**
 * Follows the frame layout of a zstd stream (RFC 8878 section 3) from its
 * headers alone, so the decoder can tell a stream that ends between frames from
 * one cut off inside a frame.
 *
 * Deno's native zstd decoder reports neither: given a truncated frame it
 * returns what it could decode and no error. The layout is cheap to follow:
 * only the frame and block headers are read, block contents are skipped by
 * their length, and decoding proper (with its checks) stays with the native
 * decoder.
 *
 * @module
 */

export const ZSTD_MAGIC = 0xfd2fb528;
/** Skippable frames use magics 0x184D2A50 to 0x184D2A5F. */
export const SKIPPABLE_MASK = 0xfffffff0;
export const SKIPPABLE_MAGIC = 0x184d2a50;

// Where in the layout the next byte belongs.
/** The 4-byte magic number of the next frame. */
const MAGIC = 0;
/** The frame header after the magic: `#need` bytes, the first says how many. */
const FRAME_HEADER = 1;
/** A 3-byte block header. */
const BLOCK_HEADER = 2;
/** `#skip` bytes of block content, checksum or skippable frame data. */
const SKIP = 3;
/** The 4-byte size of a skippable frame. */
const SKIPPABLE_SIZE = 4;

/** Tracks zstd frame boundaries over a stream fed in pieces. */
export class ZstdFrames {
  #at = MAGIC;
  /** Header bytes gathered so far (magic, frame header, block header, size). */
  #head = new Uint8Array(14);
  #headLength = 0;
  /** Header bytes wanted before the current header can be read. */
  #need = 4;
  /** Bytes left to skip in `SKIP`. */
  #skip = 0;
  /** The frame in progress has a 4-byte content checksum after its last block. */
  #checksum = false;
  /** Frames begun, complete or not. */
  #frames = 0;
  /** The block just announced is the frame's last. */
  #lastBlock = false;
  /** The bytes being skipped are a skippable frame's data. */
  #inSkippable = false;
  /** The bytes being skipped are the frame's checksum. */
  #inChecksum = false;

  /**
   * Whether the bytes seen so far end exactly at the end of a frame, after at
   * least one frame.
   */
  get complete(): boolean {
    return this.#at === MAGIC && this.#headLength === 0 &&
      this.#frames > 0;
  }

  /**
   * Reads the layout from `bytes`, the next bytes of the stream.
   *
   * @throws {Error} with the reason when the bytes cannot be zstd frames.
   */
  feed(bytes: Uint8Array): void {
    let i = 0;
    while (i < bytes.length) {
      if (this.#at === SKIP) {
        const n = Math.min(this.#skip, bytes.length - i);
        this.#skip -= n;
        i += n;
        if (this.#skip === 0) this.#afterSkip();
        continue;
      }
      const n = Math.min(this.#need - this.#headLength, bytes.length - i);
      this.#head.set(bytes.subarray(i, i + n), this.#headLength);
      this.#headLength += n;
      i += n;
      if (this.#headLength === this.#need) this.#parseHead();
    }
  }

  /** The header gathered in `#head` is complete: act on it. */
  #parseHead(): void {
    const head = this.#head;
    switch (this.#at) {
      case MAGIC: {
        const magic = new DataView(head.buffer).getUint32(0, true);
        this.#frames++;
        if (magic === ZSTD_MAGIC) {
          this.#expect(FRAME_HEADER, 1);
        } else if (((magic & SKIPPABLE_MASK) >>> 0) === SKIPPABLE_MAGIC) {
          this.#expect(SKIPPABLE_SIZE, 4);
        } else {
          throw new Error("unknown frame magic number");
        }
        return;
      }
      case FRAME_HEADER: {
        const descriptor = head[0]!;
        if (this.#need === 1) {
          // RFC 8878 section 3.1.1.1.1: the descriptor sizes the rest.
          if ((descriptor & 0x08) !== 0) {
            throw new Error("reserved frame header bit set");
          }
          const contentSizeFlag = descriptor >> 6;
          const singleSegment = (descriptor & 0x20) !== 0;
          const dictionaryIdSize = [0, 1, 2, 4][descriptor & 0x03]!;
          const contentSizeSize = [singleSegment ? 1 : 0, 2, 4, 8][
            contentSizeFlag
          ]!;
          this.#checksum = (descriptor & 0x04) !== 0;
          const rest = (singleSegment ? 0 : 1) + dictionaryIdSize +
            contentSizeSize;
          if (rest > 0) {
            this.#need = 1 + rest;
            return;
          }
        }
        this.#expect(BLOCK_HEADER, 3);
        return;
      }
      case BLOCK_HEADER: {
        const header = head[0]! | (head[1]! << 8) | (head[2]! << 16);
        const last = (header & 1) !== 0;
        const type = (header >> 1) & 3;
        const size = header >>> 3;
        if (type === 3) throw new Error("reserved block type");
        // An RLE block carries one byte however long it decodes.
        this.#skip = type === 1 ? 1 : size;
        this.#lastBlock = last;
        this.#afterBlockHeader();
        return;
      }
      case SKIPPABLE_SIZE: {
        this.#skip = new DataView(head.buffer).getUint32(0, true);
        this.#lastBlock = false;
        this.#inSkippable = true;
        this.#afterBlockHeader();
        return;
      }
    }
  }

  #afterBlockHeader(): void {
    this.#headLength = 0;
    this.#at = SKIP;
    if (this.#skip === 0) this.#afterSkip();
  }

  /** Whatever was being skipped is fully seen. */
  #afterSkip(): void {
    if (this.#inSkippable || this.#inChecksum) {
      this.#inSkippable = this.#inChecksum = false;
      this.#expect(MAGIC, 4);
    } else if (!this.#lastBlock) {
      this.#expect(BLOCK_HEADER, 3);
    } else if (this.#checksum) {
      this.#lastBlock = false;
      this.#inChecksum = true;
      this.#skip = 4;
      this.#at = SKIP;
    } else {
      this.#lastBlock = false;
      this.#expect(MAGIC, 4);
    }
  }

  #expect(at: number, need: number): void {
    this.#at = at;
    this.#need = need;
    this.#headLength = 0;
  }
}
