/**
 * WARC 1.1 fields the crawl CLI once wrote off the spec, found by a run against
 * local servers whose files were read back with warcio.js: WARC-Target-URI as
 * an RFC 3986 URI, WARC-IP-Address never a proxy's.
 */
import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { WARCParser } from "npm:warcio@2.4.11";
import { WarcWriter } from "../examples/crawl/warc.ts";

const CRAWL = new URL("../examples/crawl.ts", import.meta.url).href;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The WARC headers of every record, as warcio.js reads them. */
async function warcHeaders(path: string): Promise<Map<string, string>[]> {
  const parser = new WARCParser(
    ReadableStream.from([await Deno.readFile(path)]),
  );
  const out: Map<string, string>[] = [];
  for await (const record of parser) {
    await record.readFully(false);
    // Lower-case names (warcio.js keeps them in a Headers under Deno).
    out.push(
      new Map(
        [...record.warcHeaders.headers.entries()].map(([k, v]) => [
          k.toLowerCase(),
          v,
        ]),
      ),
    );
  }
  return out;
}

// RFC 3986 §2, §3: a URI holds only unreserved, reserved and '%' (of a pct-encoded
// triplet); '[' and ']' only around an IP-literal host.
function isRfc3986(uri: string): boolean {
  const match = /^([a-z][a-z0-9+.-]*):\/\/(\[[0-9A-Fa-f:.]+\]|[^/?#[\]]*)(.*)$/
    .exec(uri);
  if (match === null) return false;
  const rest = match[3]!;
  return /^([A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*$/.test(rest);
}

Deno.test("WarcWriter.writeExchange() writes WARC-Target-URI as RFC 3986 requires (WARC 1.1 §5.14)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "crawl_warc_conformance_" });
  try {
    const path = `${dir}/uri.warc.gz`;
    const warc = await WarcWriter.create(path);
    // As the WHATWG URL parser leaves them: '|', '^', '`', '{', '}', '[', ']' raw.
    const url =
      "http://example.com/a|b[1]^?family=Roboto|Open+Sans&j={%22a%22:[1]}&c=`x`";
    await warc.writeExchange({
      url,
      ipAddress: "127.0.0.1",
      request: encoder.encode(
        "GET /a|b[1]^?family=Roboto|Open+Sans&j={%22a%22:[1]}&c=`x` HTTP/1.1\r\nHost: example.com\r\n\r\n",
      ),
      response: encoder.encode(
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
      ),
    });
    await warc.close();
    const records = (await warcHeaders(path)).filter((h) =>
      h.has("warc-target-uri")
    );
    assertEquals(records.length, 2);
    for (const headers of records) {
      const target = headers.get("warc-target-uri")!;
      assert(isRfc3986(target), `not an RFC 3986 URI: ${target}`);
      // The same resource: percent-decoding gives back what was requested.
      assertEquals(decodeURI(target), decodeURI(new URL(url).href));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("WarcWriter.writeExchange() writes a '%' that starts no escape as %25 in WARC-Target-URI", async () => {
  const dir = await Deno.makeTempDir({ prefix: "crawl_warc_conformance_" });
  try {
    const path = `${dir}/percent.warc.gz`;
    const warc = await WarcWriter.create(path);
    // The URL parser keeps such a '%' as it is: new URL(url).href === url.
    const url = "http://example.com/a%zz/b?q=100%&r=%41";
    assertEquals(new URL(url).href, url);
    await warc.writeExchange({
      url,
      request: encoder.encode(
        "GET /a%zz/b?q=100%&r=%41 HTTP/1.1\r\nHost: example.com\r\n\r\n",
      ),
      response: encoder.encode(
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
      ),
    });
    await warc.close();
    const targets = (await warcHeaders(path)).flatMap((h) =>
      h.has("warc-target-uri") ? [h.get("warc-target-uri")!] : []
    );
    // A real escape (%41) stays as it is.
    assertEquals(targets, [
      "http://example.com/a%25zz/b?q=100%25&r=%41",
      "http://example.com/a%25zz/b?q=100%25&r=%41",
    ]);
    for (const target of targets) assert(isRfc3986(target), target);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** An HTTP/1.1 server on 127.0.0.1 answering every request with "ok". */
function origin() {
  return Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("ok"),
  );
}

/**
 * A forward proxy on 127.0.0.2 (another loopback address than the origin's):
 * reads one absolute-form request, sends it to its origin in origin form, pipes
 * the answer back, closes.
 */
function proxy() {
  const listener = Deno.listen({ hostname: "127.0.0.2", port: 0 });
  const conns = new Set<Promise<void>>();
  const serving = (async () => {
    for await (const conn of listener) {
      const done = (async () => {
        let upstream: Deno.TcpConn | null = null;
        try {
          let head = "";
          const buffer = new Uint8Array(16_384);
          while (!head.includes("\r\n\r\n")) {
            const n = await conn.read(buffer);
            if (n === null) return;
            head += decoder.decode(buffer.subarray(0, n));
          }
          const [method, target, ...rest] = head.split(" ");
          const url = new URL(target!);
          upstream = await Deno.connect({
            hostname: url.hostname,
            port: Number(url.port),
          });
          const forwarded = [method, url.pathname + url.search, ...rest]
            .join(" ")
            .replace(/\r\nConnection: [^\r]*/i, "") // one exchange per conn
            .replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
          await upstream.write(encoder.encode(forwarded));
          for (;;) {
            const n = await upstream.read(buffer);
            if (n === null) break;
            for (let at = 0; at < n;) {
              at += await conn.write(buffer.subarray(at, n));
            }
          }
        } catch {
          // a test failure shows in the crawl's output
        } finally {
          upstream?.close();
          conn.close();
        }
      })();
      conns.add(done);
      done.finally(() => conns.delete(done));
    }
  })();
  return {
    port: listener.addr.port,
    [Symbol.asyncDispose]: async () => {
      listener.close();
      await serving.catch(() => {});
      await Promise.all(conns);
    },
  };
}

Deno.test("crawl.ts --warc through a proxy does not give the proxy's address as WARC-IP-Address (WARC 1.1 §5.10)", async () => {
  await using server = origin();
  await using relay = proxy();
  const dir = await Deno.makeTempDir({ prefix: "crawl_warc_conformance_" });
  try {
    const path = `${dir}/proxied.warc.gz`;
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        "--no-config",
        "--allow-net=127.0.0.1,127.0.0.2",
        "--allow-read",
        "--allow-write",
        CRAWL,
        "--no-keep-alive",
        "--proxy",
        `http://127.0.0.2:${relay.port}`,
        "--warc",
        path,
        `http://127.0.0.1:${server.addr.port}/page`,
      ],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
      signal: AbortSignal.timeout(30_000),
    }).output();
    assertEquals(output.code, 0, decoder.decode(output.stderr));
    const records = (await warcHeaders(path)).filter((h) =>
      h.get("warc-type") === "response" || h.get("warc-type") === "request"
    );
    assertEquals(records.length, 2);
    for (const headers of records) {
      assertEquals(
        headers.get("warc-target-uri"),
        `http://127.0.0.1:${server.addr.port}/page`,
      );
      // §5.10: "the IP address used at retrieval time corresponding to the
      // hostname in the record's target-Uri": 127.0.0.1, or no field when it is
      // not known (the proxy resolved it), never the proxy's 127.0.0.2.
      assertNotEquals(headers.get("warc-ip-address"), "127.0.0.2");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
