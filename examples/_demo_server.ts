/**
 * The local HTTP server that `crawl.ts` starts in a separate process when it is
 * given no URLs, so the demo needs no internet. It listens on 127.0.0.1 (port from
 * `--port`, default 0 = a free one), prints `listening on http://127.0.0.1:PORT/`
 * as its first stdout line, and runs until SIGINT/SIGTERM, or, with
 * `--exit-on-stdin-eof` (what `crawl.ts` passes), until its stdin closes, so it
 * never outlives the crawler.
 *
 * Routes (sizes in bytes):
 *
 * | path | response |
 * |---|---|
 * | `/bytes/N` | 200, N bytes with `Content-Length` |
 * | `/chunked/N` | 200, N bytes sent as a stream (`Transfer-Encoding: chunked`) in up to 8 chunks |
 * | `/gzip/N` | 200, N bytes of text, `Content-Encoding: gzip` |
 * | `/status/CODE` | that status, with a short body (none for 204 and 304) |
 * | `/redirect/N` | 302 to `/bytes/N` |
 * | `/slow/MS/N` | 200, N bytes after MS milliseconds (at most 5000) |
 * | `/site/`, `/site/p/N` | a small linked site for `crawl.ts --demo --follow`: 40 HTML pages in a cycle, with relative, absolute, fragment and outside links |
 * | `/site/private/N` | pages that `/robots.txt` disallows (linked from the site) |
 * | `/robots.txt` | `Disallow: /site/private/` for every crawler |
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 examples/_demo_server.ts --port 8000
 * ```
 *
 * @module
 */

const MAX_SIZE = 16 * 1024 * 1024;

/** Deterministic bytes, so a client could check them: byte i is i mod 251. */
function bytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = i % 251;
  return out;
}

function text(n: number): Uint8Array {
  const line = "the quick brown fox jumps over the lazy dog\n";
  return new TextEncoder().encode(line.repeat(Math.ceil(n / line.length)))
    .subarray(0, n);
}

async function gzip(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const gzipCache = new Map<number, Uint8Array>();

function size(text: string | undefined): number | null {
  if (text === undefined || !/^\d+$/.test(text)) return null;
  const n = Number(text);
  return n <= MAX_SIZE ? n : null;
}

const octets = { "content-type": "application/octet-stream" };

const SITE_PAGES = 40;
const html = { "content-type": "text/html; charset=utf-8" };

/** A page of the demo site: links forward (a cycle), back home, to a fragment, out. */
function sitePage(n: number, origin: string): string {
  const next = (n + 1) % SITE_PAGES;
  const skip = (n * 7 + 3) % SITE_PAGES;
  return `<!doctype html><title>Page ${n}</title>
<h1>Page ${n}</h1>
<p><a href="${next}">next</a> <a href="${origin}/site/p/${skip}">absolute</a>
<a href="../">home</a> <a href="#top">top</a> <a href="/site/p/${next}#part">fragment</a>
<a href="/site/private/${n}">private</a> <a href="http://example.invalid/">elsewhere</a>
<a href="mailto:nobody@example.invalid">mail</a></p>\n`;
}

async function handler(request: Request): Promise<Response> {
  const url = new URL(request.url);
  const [, route, a, b] = url.pathname.split("/");
  switch (route) {
    case "robots.txt":
      return new Response("User-agent: *\nDisallow: /site/private/\n", {
        headers: { "content-type": "text/plain" },
      });
    case "site": {
      if (a === "" || a === undefined) {
        const links = Array.from(
          { length: 5 },
          (_, i) => `<a href="p/${i * 8}">page ${i * 8}</a>`,
        );
        return new Response(
          `<!doctype html><title>Demo site</title>${links.join(" ")}\n`,
          { headers: html },
        );
      }
      const n = size(b);
      if (a === "p" && n !== null && n < SITE_PAGES) {
        return new Response(sitePage(n, url.origin), { headers: html });
      }
      if (a === "private") {
        return new Response("private\n", { headers: html });
      }
      break;
    }
    case "bytes": {
      const n = size(a);
      if (n !== null) {
        return new Response(bytes(n) as Uint8Array<ArrayBuffer>, {
          headers: octets,
        });
      }
      break;
    }
    case "chunked": {
      const n = size(a);
      if (n === null) break;
      const data = bytes(n);
      const step = Math.max(1, Math.ceil(n / 8));
      let offset = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (offset >= n) return controller.close();
          controller.enqueue(data.slice(offset, offset + step));
          offset += step;
        },
      });
      return new Response(body, { headers: octets });
    }
    case "gzip": {
      const n = size(a);
      if (n === null) break;
      let body = gzipCache.get(n);
      if (body === undefined) {
        body = await gzip(text(n));
        gzipCache.set(n, body);
      }
      return new Response(body as Uint8Array<ArrayBuffer>, {
        headers: {
          "content-type": "text/plain; charset=utf-8",
          "content-encoding": "gzip",
        },
      });
    }
    case "status": {
      const code = Number(a);
      if (!/^\d{3}$/.test(a ?? "") || code < 200 || code > 599) break;
      const empty = code === 204 || code === 304;
      return new Response(empty ? null : `status ${code}\n`, {
        status: code,
        headers: { "content-type": "text/plain" },
      });
    }
    case "redirect": {
      const n = size(a);
      if (n === null) break;
      return new Response(null, {
        status: 302,
        headers: { location: `/bytes/${n}` },
      });
    }
    case "slow": {
      const ms = size(a);
      const n = size(b);
      if (ms === null || n === null) break;
      await new Promise((resolve) => setTimeout(resolve, Math.min(ms, 5000)));
      return new Response(bytes(n) as Uint8Array<ArrayBuffer>, {
        headers: octets,
      });
    }
  }
  return new Response("not found\n", {
    status: 404,
    headers: { "content-type": "text/plain" },
  });
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--port");
  const port = i >= 0 ? Number(Deno.args[i + 1]) : 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error("_demo_server: --port must be an integer in 0..65535");
    Deno.exit(2);
  }
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port,
    onListen({ hostname, port }) {
      console.log(`listening on http://${hostname}:${port}/`);
    },
  }, handler);

  const stop = () => server.shutdown();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    try {
      Deno.addSignalListener(signal, stop);
    } catch {
      // Refused (SIGTERM on Windows before Deno 2.7.6); stdin closing still
      // stops us.
    }
  }
  // Exit when the parent closes our stdin (or dies): drain it to end of stream.
  if (Deno.args.includes("--exit-on-stdin-eof")) {
    (async () => {
      try {
        for await (const _ of Deno.stdin.readable) { /* ignore input */ }
      } catch { /* stdin unavailable */ }
      await server.shutdown();
    })();
  }
  await server.finished;
  Deno.exit(0);
}
