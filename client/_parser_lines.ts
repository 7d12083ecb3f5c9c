/**
 * The line assembler of the response parser (h11's receive buffer): finds the
 * LF that ends a line in bytes fed in pieces of any size, looking at each byte
 * once whatever the split.
 *
 * @module
 */

import { CR, EMPTY, LF } from "./_parser_bytes.ts";

/** What {@linkcode LineAssembler.take} returns when the line goes on. */
export const MORE = -1;
/** What {@linkcode LineAssembler.take} returns when the line passes its limit. */
export const TOO_LONG = -2;

/**
 * Assembles one line at a time. A line wholly inside one `data` array is
 * reported in place (`bytes` is that array, nothing copied); a line split across
 * calls is copied once into a buffer that grows as needed and is kept for the
 * next split line.
 */
export class LineAssembler {
  /** The last complete line is `bytes[start:end]`, without its LF or a CR before it. */
  bytes: Uint8Array = EMPTY;
  start = 0;
  end = 0;
  /** Stream offset of the first byte of the line being read (or just read). */
  offset = 0;

  #pending: Uint8Array = EMPTY;
  #pendingLen = 0;

  /** The bytes of the unfinished line received so far: `pending[0:pendingLength]`. */
  get pending(): Uint8Array {
    return this.#pending;
  }

  get pendingLength(): number {
    return this.#pendingLen;
  }

  /**
   * Reads the line that starts at `data[pos]` (or earlier, if a previous call
   * kept its first bytes).
   *
   * @param base Stream offset of `data[0]`.
   * @param limit Stream offset the line's LF must come before. Checked before
   *   any byte is kept, so that the outcome does not depend on the split.
   * @returns The index in `data` just after the line's LF, with the line in
   *   `bytes[start:end]`; else {@linkcode MORE} (every byte of `data` from `pos`
   *   kept), or {@linkcode TOO_LONG} (nothing kept).
   */
  take(data: Uint8Array, pos: number, base: number, limit: number): number {
    const pending = this.#pendingLen;
    if (pending === 0) this.offset = base + pos;
    const lf = findLf(data, pos);
    if (base + (lf === -1 ? data.length : lf + 1) > limit) return TOO_LONG;
    if (lf === -1) {
      this.#append(data, pos, data.length);
      return MORE;
    }
    let bytes = data;
    let start = pos;
    let end = lf;
    if (pending !== 0) {
      this.#append(data, pos, lf);
      bytes = this.#pending;
      start = 0;
      end = this.#pendingLen;
      this.#pendingLen = 0;
    }
    if (end > start && bytes[end - 1] === CR) end--;
    this.bytes = bytes;
    this.start = start;
    this.end = end;
    return lf + 1;
  }

  /** Forgets any unfinished line, for the next response on a connection. */
  reset(): void {
    this.bytes = EMPTY;
    this.start = this.end = this.offset = 0;
    this.#pendingLen = 0;
  }

  #append(data: Uint8Array, start: number, end: number): void {
    const need = this.#pendingLen + end - start;
    if (need > this.#pending.length) {
      const grown = new Uint8Array(
        Math.max(need, this.#pending.length * 2, 256),
      );
      grown.set(this.#pending.subarray(0, this.#pendingLen));
      this.#pending = grown;
    }
    this.#pending.set(data.subarray(start, end), this.#pendingLen);
    this.#pendingLen = need;
  }
}

/**
 * `data.indexOf(LF, pos)`. Head lines are short: a loop over their first bytes
 * costs less than the call into the builtin (~25 ns a line), which then scans
 * the rest of a long one.
 */
function findLf(data: Uint8Array, pos: number): number {
  const stop = Math.min(data.length, pos + 128);
  for (let i = pos; i < stop; i++) if (data[i] === LF) return i;
  return stop === data.length ? -1 : data.indexOf(LF, stop);
}
