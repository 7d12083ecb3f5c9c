/**
 * Tests of the crawl CLI's URL list reader (examples/crawl/input.ts): real files,
 * a real stdin (a child process), and a slow stream that counts what was pulled.
 *
 * @module
 */
import {
  assert,
  assertEquals,
  assertLess,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { openUrlList, readUrls } from "../examples/crawl/input.ts";
import { splitEvery } from "./_net.ts";

const encoder = new TextEncoder();

/** A stream of `lines` URL lines, `perChunk` to a chunk, counting chunks pulled. */
function countingStream(lines: number, perChunk: number) {
  const stats = { pulled: 0, total: Math.ceil(lines / perChunk) };
  let next = 0;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      // A slow source: a timer turn per chunk, as a disk or a pipe would take.
      await new Promise((resolve) => setTimeout(resolve, 0));
      let text = "";
      for (let i = 0; i < perChunk && next < lines; i++, next++) {
        text += `http://h${next % 7}.test/page/${next}\n`;
      }
      stats.pulled++;
      controller.enqueue(encoder.encode(text));
      if (next >= lines) controller.close();
    },
  }, { highWaterMark: 0 });
  return { stream, stats };
}

Deno.test("readUrls() yields the first URL before the source is read to its end", async () => {
  const { stream, stats } = countingStream(100_000, 1000);
  const urls = readUrls(stream);
  const first = await urls.next();
  assertEquals(first.value, "http://h0.test/page/0");
  assertEquals(stats.pulled, 1);
  // Reading on pulls one chunk per 1000 lines, never more than one ahead.
  let count = 1;
  for await (const url of urls) {
    count++;
    assertLess(stats.pulled, Math.ceil(count / 1000) + 2);
    if (count === 100_000) assertEquals(url, "http://h4.test/page/99999");
  }
  assertEquals(count, 100_000);
  assertEquals(stats.pulled, stats.total);
});

Deno.test("readUrls() cancels the source when the consumer stops early", async () => {
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(encoder.encode("http://a.test/\n".repeat(10)));
    },
    cancel() {
      cancelled = true;
    },
  });
  for await (const url of readUrls(stream)) {
    assertEquals(url, "http://a.test/");
    break;
  }
  assert(cancelled);
});

Deno.test("readUrls() skips blank lines and comments, strips CR and white space", async () => {
  const text = [
    "# a comment",
    "",
    "http://a.test/1",
    "   ",
    "\thttp://a.test/2\t",
    "  # an indented comment",
    "http://a.test/3#frag\r",
    "not a url",
    "http://a.test/last-without-newline",
  ].join("\n");
  const expected = [
    "http://a.test/1",
    "http://a.test/2",
    "http://a.test/3#frag",
    "not a url",
    "http://a.test/last-without-newline",
  ];
  const bytes = encoder.encode(text);
  // Whole, one byte at a time, and split inside the CRLF.
  for (const size of [bytes.length, 1, 7]) {
    assertEquals(
      await Array.fromAsync(
        readUrls(ReadableStream.from(splitEvery(bytes, size))),
      ),
      expected,
    );
  }
});

Deno.test("readUrls() decodes a UTF-8 character split across chunks", async () => {
  const bytes = encoder.encode("http://é.test/ü\n");
  const chunks = [
    bytes.subarray(0, 8),
    bytes.subarray(8, 9),
    bytes.subarray(9),
  ];
  assertEquals(await Array.fromAsync(readUrls(ReadableStream.from(chunks))), [
    "http://é.test/ü",
  ]);
});

/** `text` in UTF-16 with its byte order mark, as Windows PowerShell 5.1 saves it. */
function utf16(text: string, order: "le" | "be"): Uint8Array {
  const bytes = new Uint8Array(2 + 2 * text.length);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, 0xfeff, order === "le");
  for (let i = 0; i < text.length; i++) {
    view.setUint16(2 + 2 * i, text.charCodeAt(i), order === "le");
  }
  return bytes;
}

Deno.test("readUrls() reads UTF-16 (LE or BE) after its byte order mark, whole or a byte at a time; UTF-8 and its BOM as before", async () => {
  const text =
    "# saved by PowerShell\r\nhttp://a.test/\r\nhttp://é.test/😀\r\n";
  const urls = ["http://a.test/", "http://é.test/😀"];
  for (const bytes of [utf16(text, "le"), utf16(text, "be")]) {
    for (const size of [bytes.length, 1, 3]) {
      const chunks = ReadableStream.from(splitEvery(bytes, size));
      assertEquals(await Array.fromAsync(readUrls(chunks)), urls, `${size}`);
    }
  }
  const utf8 = encoder.encode(`\ufeff${text}`);
  for (const size of [utf8.length, 1]) {
    const chunks = ReadableStream.from(splitEvery(utf8, size));
    assertEquals(await Array.fromAsync(readUrls(chunks)), urls);
  }
  // Shorter than a BOM: UTF-8.
  for (const short of ["", "x"]) {
    const chunks = ReadableStream.from([encoder.encode(short)]);
    assertEquals(await Array.fromAsync(readUrls(chunks)), short ? [short] : []);
  }
});

Deno.test("openUrlList() reads a file Windows PowerShell 5.1 saved (UTF-16LE with a BOM)", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeFile(
      path,
      utf16("http://a.test/\r\nhttp://b.test/x\r\n", "le"),
    );
    assertEquals(await Array.fromAsync(await openUrlList(path)), [
      "http://a.test/",
      "http://b.test/x",
    ]);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("readUrls() rejects a line longer than maxLineLength with RangeError", async () => {
  const endless = ReadableStream.from(
    (function* () {
      for (let i = 0; i < 100; i++) yield encoder.encode("x".repeat(1000));
    })(),
  );
  await assertRejects(
    () => Array.fromAsync(readUrls(endless, { maxLineLength: 10_000 })),
    RangeError,
    "line 1 is longer than 10000 characters",
  );
  await assertRejects(
    () =>
      Array.fromAsync(
        readUrls(
          ReadableStream.from([encoder.encode("ok\n" + "y".repeat(50) + "\n")]),
          {
            maxLineLength: 20,
          },
        ),
      ),
    RangeError,
    "line 2 is longer",
  );
});

Deno.test("openUrlList() reads a 100,000-line file in order", async () => {
  const path = await Deno.makeTempFile({ suffix: ".txt" });
  try {
    const lines = [];
    for (let i = 0; i < 100_000; i++) {
      lines.push(
        i % 1000 === 0
          ? `# block ${i}\n\nhttp://a.test/${i}`
          : `http://a.test/${i}`,
      );
    }
    await Deno.writeTextFile(path, lines.join("\n") + "\n");
    let count = 0;
    for await (const url of await openUrlList(path)) {
      assertEquals(url, `http://a.test/${count}`);
      count++;
    }
    assertEquals(count, 100_000);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("openUrlList() closes the file when the consumer stops early", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(path, "http://a.test/\n".repeat(100_000));
    for await (const url of await openUrlList(path)) {
      assertEquals(url, "http://a.test/");
      break;
    }
    // The resource sanitizer fails this test if the file were left open.
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("openUrlList() rejects a missing file or a directory at once, naming it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assertRejects(
      () => openUrlList(`${dir}/missing.txt`),
      Error,
      `Cannot read URL list '${dir}/missing.txt': No such file`,
    );
    await assertRejects(
      () => openUrlList(dir),
      Error,
      `Cannot read URL list '${dir}': Is a directory`,
    );
  } finally {
    await Deno.remove(dir);
  }
});

Deno.test("openUrlList() reads stdin for '-'", async () => {
  const script = `
    import { openUrlList } from ${
    JSON.stringify(new URL("../examples/crawl/input.ts", import.meta.url).href)
  };
    let n = 0, last = "";
    for await (const url of await openUrlList("-")) { n++; last = url; }
    console.log(n, last);
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  try {
    for (let i = 0; i < 10; i++) {
      await writer.write(
        encoder.encode(`# part ${i}\n` + `http://a.test/${i}\n`.repeat(1000)),
      );
    }
    await writer.close();
  } finally {
    writer.releaseLock();
  }
  const timer = setTimeout(() => child.kill(), 30_000);
  const output = await child.output().finally(() => clearTimeout(timer));
  assertEquals(new TextDecoder().decode(output.stderr), "");
  assertStringIncludes(
    new TextDecoder().decode(output.stdout),
    "10000 http://a.test/9",
  );
});

Deno.test("readUrls() with onTooLong skips a line longer than maxLineLength, within a chunk or across many, and goes on", async () => {
  const text = "a\n" + "x".repeat(50) + "\nb\n" + "y".repeat(95) + "\nc\n" +
    "z".repeat(30);
  const bytes = encoder.encode(text);
  for (const size of [1, 7, 16, 64, bytes.length]) {
    const chunks = [];
    for (let i = 0; i < bytes.length; i += size) {
      chunks.push(bytes.slice(i, i + size));
    }
    const tooLong: number[] = [];
    const urls = await Array.fromAsync(
      readUrls(ReadableStream.from(chunks), {
        maxLineLength: 20,
        onTooLong: (line) => void tooLong.push(line),
      }),
    );
    assertEquals(urls, ["a", "b", "c"], `chunks of ${size}`);
    assertEquals(tooLong, [2, 4, 6], `chunks of ${size}`);
  }
});
