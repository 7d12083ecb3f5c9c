/**
 * Tests of the crawl CLI's output folder (examples/crawl/output_dir.ts): the URL to
 * path mapping on a table of hostile URLs and on seeded random ones, bodies fetched
 * from a loopback server written byte for byte, file/folder collisions in both
 * orders, and real disk errors (a full device, a file where a folder must be).
 *
 * @module
 */
import {
  assert,
  assertEquals,
  assertNotEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { OutputDir, urlToPath } from "../examples/crawl/output_dir.ts";
import { DiskError } from "../examples/crawl/disk_error.ts";
import { BodySink } from "../examples/crawl/body_sink.ts";

const encoder = new TextEncoder();

Deno.test("urlToPath() lays URLs out as DIR/<host>[_port]/<path>", () => {
  const cases: [string, string][] = [
    ["http://example.com", "example.com/index.html"],
    ["http://example.com/", "example.com/index.html"],
    ["https://EXAMPLE.com:443/a/b.css", "example.com/a/b.css"],
    ["http://example.com/a/", "example.com/a/index.html"],
    ["http://example.com:8080/s?q=1&x", "example.com_8080/s%3Fq=1&x"],
    ["http://example.com/?page=2", "example.com/index.html%3Fpage=2"],
    ["http://example.com/a#frag", "example.com/a"],
    ["http://[::1]:8000/x", "%3A%3A1_8000/x"],
    ["http://127.0.0.1/x", "127.0.0.1/x"],
    ["http://example.com/%7Efoo/a%20b", "example.com/~foo/a b"],
    ["http://example.com/caf%C3%A9/%E9", "example.com/café/%25E9"],
    ["http://example.com/ünï", "example.com/ünï"],
    // A "_" of the host's own is not the port's.
    ["http://a.test_8080/x", "a.test%5F8080/x"],
    ["http://a.test:8080/x", "a.test_8080/x"],
  ];
  for (const [url, path] of cases) assertEquals(urlToPath(url), path, url);
});

Deno.test("urlToPath() never leaves the folder nor names a device", () => {
  const cases: [string, string][] = [
    ["http://h.test/../../etc/passwd", "h.test/etc/passwd"],
    ["http://h.test/%2e%2e/%2E%2e/x", "h.test/x"],
    ["http://h.test/a/%2e%2e%2fb", "h.test/a/..%2Fb"],
    ["http://h.test/a%2F..%2F..%2Fx", "h.test/a%2F..%2F..%2Fx"],
    ["http://h.test/..%5C..%5Cwin", "h.test/..%5C..%5Cwin"],
    ["http://h.test/a\\b", "h.test/a/b"],
    ["http://h.test/x%00y%0Az", "h.test/x%00y%0Az"],
    ["http://h.test/a//b", "h.test/a/%/b"],
    ["http://h.test//etc/passwd", "h.test/%/etc/passwd"],
    ["http://h.test/CON", "h.test/%43ON"],
    ["http://h.test/con.txt", "h.test/%63on.txt"],
    ["http://h.test/lpt1/x", "h.test/%6Cpt1/x"],
    ["http://h.test/console", "h.test/console"],
    ["http://h.test/trailing.", "h.test/trailing%2E"],
    ["http://h.test/sp%20", "h.test/sp%20"],
    ["http://h.test/q?../../x", "h.test/q%3F..%2F..%2Fx"],
    ["http://h.test/%25", "h.test/%25"],
    ["http://h.test/%zz", "h.test/%25zz"],
    ['http://h.test/a:b*c"d<e>f|g', "h.test/a%3Ab%2Ac%22d%3Ce%3Ef%7Cg"],
  ];
  for (const [url, path] of cases) assertEquals(urlToPath(url), path, url);
  assertThrows(
    () => urlToPath("file:///etc/passwd"),
    TypeError,
    "not an http(s) URL",
  );
  assertThrows(() => urlToPath("/relative"), TypeError, "not an http(s) URL");
});

Deno.test("urlToPath() cuts a long name to 255 bytes, keeping names distinct", () => {
  const long = "é".repeat(300);
  const a = urlToPath(`http://h.test/${long}a`).split("/")[1]!;
  const b = urlToPath(`http://h.test/${long}b`).split("/")[1]!;
  for (const name of [a, b]) {
    assert(
      encoder.encode(name).length <= 255,
      `${encoder.encode(name).length} bytes`,
    );
    assert(name.startsWith("é".repeat(100) + "~"), name);
  }
  assertNotEquals(a, b);
  const query = urlToPath(`http://h.test/s?${"q".repeat(1000)}`).split("/")[1]!;
  assert(query.length <= 255 && query.startsWith("s%3Fqqq"), query);
});

/** A seeded PRNG (mulberry32) so a failure is reproducible. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test('urlToPath() keeps a host folder with its escaped "_"s and port within 255 bytes', () => {
  const host = "a_".repeat(125);
  const top = urlToPath(`http://${host}:8080/x`).split("/")[0]!;
  assert(new TextEncoder().encode(top).length <= 255, `${top.length} bytes`);
  assert(top.endsWith("_8080"), top);
  assert(!top.slice(0, -5).includes("_"), top);
});

Deno.test("urlToPath() gives safe segments for 20,000 random hostile URLs", () => {
  const next = random(20261127);
  const alphabet = [
    "a",
    "Z",
    ".",
    "..",
    "/",
    "\\",
    "%",
    "%2e",
    "%2F",
    "%00",
    "?",
    "#",
    "~",
    ":",
    " ",
    "é",
    "%ff",
    "CON",
    "nul.",
    "\t",
    "&",
    "=",
  ];
  for (let i = 0; i < 20_000; i++) {
    let path = "";
    const length = Math.floor(next() * 12);
    for (let j = 0; j < length; j++) {
      path += alphabet[Math.floor(next() * alphabet.length)];
    }
    const url = `http://h${i % 3}.test:${8000 + (i % 2)}/${path}`;
    const relative = urlToPath(url);
    const segments = relative.split("/");
    assertEquals(segments[0], `h${i % 3}.test_${8000 + (i % 2)}`, url);
    for (const segment of segments) {
      assert(
        segment !== "" && segment !== "." && segment !== "..",
        `${url} -> ${relative}`,
      );
      // deno-lint-ignore no-control-regex
      assert(!/[\x00-\x1f\\:*?"<>|]/.test(segment), `${url} -> ${relative}`);
      assert(!/[. ]$/.test(segment), `${url} -> ${relative}`);
      assert(!windowsReserved(segment), `${url} -> ${relative}`);
      assert(encoder.encode(segment).length <= 255, `${url} -> ${relative}`);
    }
  }
});

/**
 * Whether Windows reserves `name`, as CPython 3.13's `ntpath.isreserved` rules
 * (Lib/ntpath.py `_isreservedname`): a trailing dot or space, a reserved
 * character, or a device name before the first dot once spaces are dropped.
 */
function windowsReserved(name: string): boolean {
  if (/[. ]$/.test(name)) return name !== "." && name !== "..";
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f"*:<>?/\\|]/.test(name)) return true;
  const device = name.split(".")[0]!.replace(/ +$/, "").toUpperCase();
  return /^(CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|COM[1-9¹²³]|LPT[1-9¹²³])$/.test(
    device,
  );
}

Deno.test("urlToPath() names no Windows device, with spaces before the dot or as CONIN$", () => {
  const names = [
    "nul%20.txt",
    "CON%20%20",
    "con%20%20.x",
    "AUX%20",
    "com1%20.tar.gz",
    "Lpt%C2%B9%20.log",
    "CONIN$",
    "conout$.log",
    "CONIN$%20.x",
    "nul",
    "nul.txt",
    "console",
    "conin",
    "nul%20x",
  ];
  for (const name of names) {
    for (const url of [`http://h.test/${name}`, `http://h.test/${name}/x`]) {
      for (const segment of urlToPath(url).split("/")) {
        assert(!windowsReserved(segment), `${url} -> ${urlToPath(url)}`);
      }
    }
  }
  // A host too: one named "conin$" is a device on Windows as a folder.
  assertEquals(urlToPath("http://conin$.test/"), "%63onin$.test/index.html");
  assertEquals(urlToPath("http://h.test/nul%20.txt"), "h.test/%6Eul .txt");
  // Names that are no device keep their letters.
  assertEquals(urlToPath("http://h.test/nul%20x"), "h.test/nul x");
  assertEquals(urlToPath("http://h.test/conin"), "h.test/conin");
});

/** A loopback server answering each path with `bodies[path]`, chunked. */
function serve(bodies: Record<string, Uint8Array>) {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const url = new URL(request.url);
      const body = bodies[url.pathname + url.search];
      if (body === undefined) return new Response("missing", { status: 404 });
      // Several pieces, so the sink sees several writes.
      const pieces = [];
      for (let i = 0; i < body.length; i += 16_384) {
        pieces.push(
          body.subarray(i, i + 16_384),
        );
      }
      return new Response(ReadableStream.from(pieces));
    },
  );
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "crawl_output_" });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

function bytes(length: number, seed: number): Uint8Array {
  const next = random(seed);
  return Uint8Array.from({ length }, () => Math.floor(next() * 256));
}

Deno.test("OutputDir.open() writes fetched bodies byte-equal to what was served", async () => {
  const bodies: Record<string, Uint8Array> = {
    "/": encoder.encode("<html>home</html>"),
    "/img/logo.png": bytes(300_000, 1),
    "/docs/": encoder.encode("docs index"),
    "/search?q=a%2Fb": encoder.encode("results"),
    "/empty": new Uint8Array(0),
  };
  await using server = serve(bodies);
  await using dir = await tempDir();
  const output = new OutputDir(`${dir.path}/out/`);
  await Promise.all(
    Object.keys(bodies).map(async (path) => {
      const response = await fetch(server.base + path);
      const file = await output.open(server.base + path);
      await response.body!.pipeTo(file.writable);
    }),
  );
  const port = new URL(server.base).port;
  const root = `${dir.path}/out/127.0.0.1_${port}`;
  assertEquals(await Deno.readFile(`${root}/index.html`), bodies["/"]);
  assertEquals(
    await Deno.readFile(`${root}/img/logo.png`),
    bodies["/img/logo.png"],
  );
  assertEquals(
    await Deno.readFile(`${root}/docs/index.html`),
    bodies["/docs/"],
  );
  assertEquals(
    await Deno.readFile(`${root}/search%3Fq=a%2Fb`),
    bodies["/search?q=a%2Fb"],
  );
  assertEquals(await Deno.readFile(`${root}/empty`), new Uint8Array(0));
});

async function layout(root: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  async function walk(dir: string, prefix: string) {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isDirectory) {
        await walk(`${dir}/${entry.name}`, `${prefix}${entry.name}/`);
      } else {files[prefix + entry.name] = await Deno.readTextFile(
          `${dir}/${entry.name}`,
        );}
    }
  }
  await walk(root, "");
  return files;
}

async function save(
  output: OutputDir,
  url: string,
  body: string,
): Promise<string> {
  const file = await output.open(url);
  await ReadableStream.from([encoder.encode(body)]).pipeTo(file.writable);
  return file.path;
}

Deno.test("OutputDir.open() settles a file/folder collision the same way in either order", async () => {
  const expected = {
    "h.test/a/index.html": "page a",
    "h.test/a/b": "page a/b",
    "h.test/a/c/index.html": "page a/c",
    "h.test/a/c/d": "page a/c/d",
  };
  const pages: [string, string][] = [
    ["http://h.test/a", "page a"],
    ["http://h.test/a/b", "page a/b"],
    ["http://h.test/a/c", "page a/c"],
    ["http://h.test/a/c/d", "page a/c/d"],
  ];
  for (
    const order of [pages, [...pages].reverse(), [
      pages[2]!,
      pages[0]!,
      pages[3]!,
      pages[1]!,
    ]]
  ) {
    await using dir = await tempDir();
    const output = new OutputDir(dir.path);
    for (const [url, body] of order) await save(output, url, body);
    assertEquals(
      await layout(dir.path),
      expected,
      order.map(([u]) => u).join(" "),
    );
  }
  // All at once, as a crawl opens them.
  await using dir = await tempDir();
  const output = new OutputDir(dir.path);
  await Promise.all(pages.map(([url, body]) => save(output, url, body)));
  assertEquals(await layout(dir.path), expected);
});

Deno.test("OutputDir.open() puts a page that finishes after a page below it at a/index.html", async () => {
  await using dir = await tempDir();
  const output = new OutputDir(dir.path);
  const first = await output.open("http://h.test/a");
  assertEquals(first.path, `${dir.path}/h.test/a`);
  const writer = first.writable.getWriter();
  await writer.write(encoder.encode("first half, "));
  assertEquals(
    await save(output, "http://h.test/a/b", "inside"),
    `${dir.path}/h.test/a/b`,
  );
  await writer.write(encoder.encode("second half"));
  await writer.close();
  assertEquals(first.path, `${dir.path}/h.test/a/index.html`);
  assertEquals(await layout(dir.path), {
    "h.test/a/index.html": "first half, second half",
    "h.test/a/b": "inside",
  });
});

Deno.test("OutputDir.open() never mixes two bodies for one file: the last closed wins", async () => {
  await using dir = await tempDir();
  const output = new OutputDir(dir.path);
  const http = await output.open("http://h.test/same");
  const https = await output.open("https://h.test/same");
  const a = http.writable.getWriter();
  const b = https.writable.getWriter();
  for (let i = 0; i < 100; i++) {
    await a.write(encoder.encode("a".repeat(100)));
    await b.write(encoder.encode("b".repeat(100)));
  }
  // Nothing under the real name before a body is whole.
  assertEquals(
    Object.keys(await layout(dir.path)).filter((n) => !n.includes(".~part-")),
    [],
  );
  await b.close();
  assertEquals(
    await Deno.readTextFile(`${dir.path}/h.test/same`),
    "b".repeat(10_000),
  );
  await a.close();
  assertEquals(await layout(dir.path), { "h.test/same": "a".repeat(10_000) });
});

Deno.test("OutputDir.open() removes the partial file when the stream is aborted", async () => {
  await using dir = await tempDir();
  const output = new OutputDir(dir.path);
  const file = await output.open("http://h.test/partial.bin");
  const writer = file.writable.getWriter();
  await writer.write(encoder.encode("half"));
  await writer.abort(new Error("connection reset"));
  assertEquals(await layout(dir.path), {});
});

Deno.test("OutputDir.open() rejects with DiskError when a file stands where the folder goes", async () => {
  await using dir = await tempDir();
  await Deno.writeTextFile(`${dir.path}/not-a-dir`, "x");
  const output = new OutputDir(`${dir.path}/not-a-dir`);
  const error = await assertRejects(
    () => output.open("http://h.test/a"),
    DiskError,
    `Cannot create directory '${dir.path}/not-a-dir': Not a directory`,
  );
  assertEquals(error.path, `${dir.path}/not-a-dir`);
  // The next open fails the same way: the queue is not stuck on the failure.
  await assertRejects(() => output.open("http://h.test/b"), DiskError);
});

Deno.test("OutputDir.open() stream errors with one DiskError when the disk is full", async () => {
  await using dir = await tempDir();
  const output = new OutputDir(dir.path);
  await save(output, "http://h.test/x", "already saved");
  // A file size limit (ulimit -f, 512-byte blocks) with SIGXFSZ ignored makes a
  // write past it fail with EFBIG, as a full disk fails with ENOSPC.
  const module =
    new URL("../examples/crawl/output_dir.ts", import.meta.url).href;
  const script = `
    const { OutputDir } = await import(${JSON.stringify(module)});
    const file = await new OutputDir(${
    JSON.stringify(dir.path)
  }).open("http://h.test/big.bin");
    try {
      await ReadableStream.from([new Uint8Array(40_000), new Uint8Array(40_000)]).pipeTo(file.writable);
    } catch (error) {
      console.log(JSON.stringify({ name: error.name, message: error.message, cause: error.cause?.name }));
    }
  `;
  const deno = `${Deno.execPath()} eval --no-config -A '${
    script.replaceAll("'", "'\\''")
  }'`;
  const child = await new Deno.Command("sh", {
    args: ["-c", `trap '' XFSZ; ulimit -f 100; exec ${deno}`],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  assertEquals(new TextDecoder().decode(child.stderr), "");
  const error = JSON.parse(new TextDecoder().decode(child.stdout));
  assertEquals(error.name, "DiskError");
  assertStringIncludes(
    error.message,
    `Cannot write '${dir.path}/h.test/big.bin': File too large`,
  );
  assertEquals(error.cause, "Error");
  // The partial body is gone; what was saved stays.
  assertEquals(await layout(dir.path), { "h.test/x": "already saved" });
});

Deno.test("OutputDir.open() turns a file of a 240-byte name into a folder when a path goes below it", async () => {
  await using dir = await tempDir();
  const output = new OutputDir(dir.path);
  const long = "M".repeat(240);
  await save(output, `http://h.test/${long}`, "page");
  await save(output, `http://h.test/${long}/b`, "below");
  assertEquals(await layout(dir.path), {
    [`h.test/${long}/index.html`]: "page",
    [`h.test/${long}/b`]: "below",
  });
});

Deno.test("OutputDir.open() puts a page whose a/index.html is a folder (/a/index.html/x) at a/index.html/index.html", async () => {
  await using dir = await tempDir();
  const output = new OutputDir(dir.path);
  await save(output, "http://h.test/a/index.html/x", "x");
  // Before: "Cannot write '.../h.test/a/index.html': Is a directory", fatal
  // to a crawl (wget fails that URL alone).
  assertEquals(
    await save(output, "http://h.test/a", "page a"),
    `${dir.path}/h.test/a/index.html/index.html`,
  );
  // The same with the folders from an earlier run, not known to this one.
  await Deno.mkdir(`${dir.path}/h.test/b/index.html`, { recursive: true });
  await save(new OutputDir(dir.path), "http://h.test/b", "page b");
  assertEquals(await layout(dir.path), {
    "h.test/a/index.html/x": "x",
    "h.test/a/index.html/index.html": "page a",
    "h.test/b/index.html/index.html": "page b",
  });
});

Deno.test("OutputDir.open() leaves a page under its name when it cannot become a folder (a/index.html too long a path)", async () => {
  await using dir = await tempDir();
  const output = new OutputDir(dir.path);
  // The folder of page `a` (a 200-byte name) ends at byte 3,889 of the path:
  // the page itself (4,090 bytes) fits in PATH_MAX (4,096 with its NUL), and
  // so does the short name it is moved aside to, but `a/index.html` does not.
  const top = `${dir.path}/h.test`;
  const folders = [];
  let length = top.length;
  while (length + 201 < 3889 - 201) {
    folders.push("f".repeat(200));
    length += 201;
  }
  folders.push("g".repeat(3889 - length - 1));
  const a = `http://h.test/${folders.join("/")}/${"a".repeat(200)}`;
  const page = await save(output, a, "page a");
  assertEquals(page.length, 4090);
  const error = await assertRejects(
    () => save(output, `${a}/b`, "b"),
    DiskError,
    "File name too long",
  );
  assertEquals(error.fatal, false);
  // Before: the page was left as a hidden `.~aside-<uuid>` file beside an
  // empty folder `a`.
  assertEquals(await Deno.readTextFile(page), "page a");
  assertEquals(Object.values(await layout(dir.path)), ["page a"]);
});

/**
 * A folder whose files' hidden temporary names (`.~part-<uuid>`, 43 bytes)
 * fit in PATH_MAX (4,096 with its NUL) below `h.test/`, and a 250-byte name
 * does not: it fails only as it is renamed into place.
 */
async function folderTooDeepForLongNames(root: string): Promise<string> {
  let out = root;
  while (out.length + 101 < 3_740) out += `/${"x".repeat(100)}`;
  out += `/${"y".repeat(3_840 - out.length - 1)}`;
  await Deno.mkdir(out, { recursive: true });
  return out;
}

Deno.test("OutputDir fails a body's close with a DiskError that is not fatal when only its file's whole path is too long (its temporary one fits), and leaves no file", async () => {
  await using dir = await tempDir();
  const out = await folderTooDeepForLongNames(dir.path);
  const output = new OutputDir(out);
  const name = "n".repeat(250);
  const error = await assertRejects(
    () => save(output, `http://h.test/${name}`, "page"),
    DiskError,
    "File name too long",
  );
  assertEquals(error.fatal, false);
  assertStringIncludes(error.message, `Cannot write '${out}/h.test/${name}'`);
  // A name that fits there is saved.
  assertEquals(
    await save(output, "http://h.test/short", "short"),
    `${out}/h.test/short`,
  );
  assertEquals(await layout(out), { "h.test/short": "short" });
});

Deno.test("BodySink of a body whose file's whole path is too long only at its rename closes, reads it whole and says why its file failed", async () => {
  await using dir = await tempDir();
  const output = new OutputDir(await folderTooDeepForLongNames(dir.path));
  const sink = new BodySink(output, `http://h.test/${"n".repeat(250)}`, {
    keep: 100,
  });
  const body = `<a href="/e">e</a>`;
  // Before: the close rejected, and the crawl failed the fetch (the WARC
  // lost the exchange, --follow its links).
  await ReadableStream.from([encoder.encode(body)]).pipeTo(sink.writable);
  await sink.done;
  assertEquals(sink.failure?.fatal, false);
  assertStringIncludes(String(sink.failure?.message), "File name too long");
  assertEquals(sink.path, null);
  assertEquals(sink.bytes, body.length);
  assertEquals(new TextDecoder().decode(sink.kept()), body);
});

Deno.test("BodySink with keepTextOnly keeps a page starting with a BOM (UTF-8 or UTF-16) or text, not a body with binary bytes", async () => {
  await using dir = await tempDir();
  const output = new OutputDir(dir.path);
  const kept = async (name: string, bytes: Uint8Array) => {
    const sink = new BodySink(output, `http://h.test/${name}`, {
      keep: 1000,
      keepTextOnly: true,
    });
    await ReadableStream.from([bytes]).pipeTo(sink.writable);
    return sink.kept().length;
  };
  const page = encoder.encode("\ufeff<p>a</p>");
  assertEquals(await kept("bom", page), page.length);
  assertEquals(await kept("text", encoder.encode("Hi\r\n\t<a>")), 8);
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x3c];
  assertEquals(await kept("png", new Uint8Array(png)), 0);
  const gzip = [0x1f, 0x8b, 0x08, 0x00];
  assertEquals(await kept("gz", new Uint8Array(gzip)), 0);
  // UTF-16 text has 0x00 bytes everywhere; its byte order mark says text.
  const utf16 = [0xff, 0xfe, 0x3c, 0x00, 0x61, 0x00];
  assertEquals(await kept("utf16", new Uint8Array(utf16)), 6);
  // Saved whole either way.
  assertEquals((await Deno.readFile(`${dir.path}/h.test/png`)).length, 9);
});

Deno.test("OutputDir.open() looks at its folders again when they changed under it: removed, or a file in a folder's place", async () => {
  await using dir = await tempDir();
  const output = new OutputDir(`${dir.path}/out`);
  await save(output, "http://h.test/p/q", "q");
  // Known as folders now: not looked at again, unless creating fails.
  await Deno.remove(`${dir.path}/out/h.test/p`, { recursive: true });
  await save(output, "http://h.test/p/r", "r");
  await Deno.remove(`${dir.path}/out/h.test/p`, { recursive: true });
  await Deno.writeTextFile(`${dir.path}/out/h.test/p`, "a page");
  await save(output, "http://h.test/p/s", "s");
  // Before: "No such file or directory", then "Not a directory", fatal to a crawl.
  assertEquals(await layout(`${dir.path}/out`), {
    "h.test/p/index.html": "a page",
    "h.test/p/s": "s",
  });
});

Deno.test("OutputDir takes its folder as a symbolic link to a folder (-o ~/out, out a link), not below it", async () => {
  await using dir = await tempDir();
  await Deno.mkdir(`${dir.path}/real`);
  await Deno.symlink(`${dir.path}/real`, `${dir.path}/link`);
  const output = new OutputDir(`${dir.path}/link`);
  assertEquals(
    await save(output, "http://h.test/a", "a"),
    `${dir.path}/link/h.test/a`,
  );
  assertEquals(await layout(`${dir.path}/real`), { "h.test/a": "a" });
  // A link below it is no folder of the tree: it would lead out of it.
  await Deno.mkdir(`${dir.path}/elsewhere`);
  await Deno.symlink(`${dir.path}/elsewhere`, `${dir.path}/real/h.test/b`);
  await assertRejects(
    () => save(output, "http://h.test/b/c", "c"),
    DiskError,
    "Not a directory but a symbolic link, which may lead out of the output folder",
  );
  assertEquals(await layout(`${dir.path}/elsewhere`), {});
});
