/**
 * Line reading for the bench's parent/child protocol (benches import nothing but
 * `../mod.ts` and built-ins, so no `@std/streams`).
 *
 * @module
 */

/** Yields the `\n`-separated lines of a byte stream, without the line ends. */
export async function* readLines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      yield pending.slice(0, nl).replace(/\r$/, "");
      pending = pending.slice(nl + 1);
    }
  }
  pending += decoder.decode();
  if (pending !== "") yield pending;
}

/**
 * A line reader whose `next()` fails after `timeoutMs`, so a parent never waits
 * forever on a child that hung.
 */
export class LineReader {
  #it: AsyncGenerator<string>;
  #what: string;

  constructor(stream: ReadableStream<Uint8Array>, what: string) {
    this.#it = readLines(stream);
    this.#what = what;
  }

  /** The next line; throws at end of stream or after `timeoutMs`. */
  async next(timeoutMs: number): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`${this.#what}: no answer within ${timeoutMs} ms`),
          ),
        timeoutMs,
      );
    });
    try {
      const r = await Promise.race([this.#it.next(), timeout]);
      if (r.done) throw new Error(`${this.#what}: ended early`);
      return r.value;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Reads lines until one parses as JSON (skipping stray log lines). */
  async json<T>(timeoutMs: number): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    for (let i = 0; i < 1000; i++) {
      const line = await this.next(Math.max(1, deadline - performance.now()));
      if (line.startsWith("{")) return JSON.parse(line) as T;
    }
    throw new Error(`${this.#what}: no JSON line`);
  }
}
