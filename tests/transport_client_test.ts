import * as tls from "node:tls";
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { fetchAll, HttpClient, PollableConn } from "../mod.ts";
import { tempDir } from "./_net.ts";
import {
  ca,
  cert,
  clientCa,
  clientCert,
  clientKey,
  key,
  type MtlsServer,
  mtlsServer as startMtlsServer,
} from "./_tls.ts";
import { ok } from "./_client_util.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A keep-alive HTTP/1.1 server on a Unix socket, raw so that its conns can be
 * counted: it answers every request head with the request line and `Host`.
 */
function unixServer(path: string) {
  const listener = Deno.listen({ transport: "unix", path });
  let connections = 0;
  const loops: Promise<void>[] = [];
  const serve = async (conn: Deno.Conn) => {
    let pending = "";
    const buf = new Uint8Array(16 * 1024);
    try {
      for (let n; (n = await conn.read(buf)) !== null;) {
        pending += decoder.decode(buf.subarray(0, n));
        let end;
        while ((end = pending.indexOf("\r\n\r\n")) !== -1) {
          const head = pending.slice(0, end);
          pending = pending.slice(end + 4);
          const [line = ""] = head.split("\r\n");
          const host = /\r\nhost: *([^\r]*)/i.exec(head)?.[1] ?? "";
          const body = encoder.encode(`${line}\n${host}`);
          await conn.write(encoder.encode(
            `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`,
          ));
          await conn.write(body);
        }
      }
    } catch {
      // The client went away.
    } finally {
      conn.close();
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        connections++;
        loops.push(serve(conn));
      }
    } catch {
      // Closed.
    }
  })();
  return {
    get connections() {
      return connections;
    },
    async close() {
      listener.close();
      await accepting;
      await Promise.all(loops);
    },
  };
}

Deno.test("fetchAll() with unixSocket sends every request over the socket, Host from the URL, one pooled conn per origin", async () => {
  using dir = tempDir();
  const path = dir.path("http.sock");
  const server = unixServer(path);
  try {
    const urls = [
      "http://docker/v1.45/containers/json?all=1",
      "http://docker/_ping",
      "http://api.test:8080/x",
      "http://docker/version",
    ];
    const results = await fetchAll(urls, {
      unixSocket: path,
      concurrency: 1,
    });
    const answers = results.map((r) => decoder.decode(ok(r).body));
    assertEquals(answers, [
      "GET /v1.45/containers/json?all=1 HTTP/1.1\ndocker",
      "GET /_ping HTTP/1.1\ndocker",
      "GET /x HTTP/1.1\napi.test:8080",
      "GET /version HTTP/1.1\ndocker",
    ]);
    // A conn for docker, kept for its three requests, and one for api.test.
    assertEquals(server.connections, 2);
  } finally {
    await server.close();
  }
});

Deno.test("fetchAll() with a RequestSpec unixSocket sends that URL over the socket and the others by TCP", async () => {
  using dir = tempDir();
  const path = dir.path("spec.sock");
  await using unix = Deno.serve(
    { path, onListen() {} },
    (req) => new Response(`unix ${req.headers.get("host")}`),
  );
  await using tcp = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("tcp"),
  );
  const results = await fetchAll([
    { url: "http://localhost/", unixSocket: path },
    `http://127.0.0.1:${tcp.addr.port}/`,
  ]);
  assertEquals(decoder.decode(ok(results[0]).body), "unix localhost");
  assertEquals(decoder.decode(ok(results[1]).body), "tcp");
  assert(unix.addr.transport === "unix");
});

Deno.test("HttpClient with unixSocket speaks TLS over the socket for an https URL", async () => {
  using dir = tempDir();
  const path = dir.path("tls.sock");
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ cert, key }, (socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.once("data", () => {
      socket.end(
        "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecure",
      );
    });
  });
  await new Promise<void>((done) => server.listen(path, done));
  try {
    const [result] = await fetchAll(["https://localhost/"], {
      unixSocket: path,
      caCerts: [ca],
    });
    assertEquals(decoder.decode(ok(result).body), "secure");
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((done) => server.close(done));
  }
});

Deno.test("fetchAll() with unixSocket tries the default roots on a new conn when caCerts do not anchor the chain, as direct", async () => {
  using dir = tempDir();
  const path = dir.path("tls.sock");
  const sockets = new Set<tls.TLSSocket>();
  let connections = 0;
  const server = tls.createServer({ cert, key }, (socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
  });
  server.on("connection", () => connections++);
  await new Promise<void>((done) => server.listen(path, done));
  try {
    // The client CA did not sign the server's certificate, and the test CA is
    // no default root: both conns fail, as a direct connect would.
    const [result] = await fetchAll(["https://localhost/"], {
      unixSocket: path,
      caCerts: [clientCa],
    });
    assert(result !== undefined && !result.ok);
    assertEquals((result.error as Error).name, "InvalidData");
    assertEquals(connections, 2);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((done) => server.close(done));
  }
});

Deno.test("fetchAll() with unixSocket whose path has no socket names the socket, not the URL's host, in its error, of its own kind and code with Deno's as cause", async () => {
  using dir = tempDir();
  const path = dir.path("none.sock");
  const [result] = await fetchAll(["http://docker/"], { unixSocket: path });
  assert(result !== undefined && !result.ok);
  const error = result.error as Error & { code?: string };
  assertInstanceOf(error, Deno.errors.NotFound);
  assertEquals(
    error.message,
    `Cannot connect to unix socket ${path}: No such file or directory (os error 2)`,
  );
  assertEquals(error.code, "ENOENT");
  assertInstanceOf(error.cause, Deno.errors.NotFound);
  assertEquals(
    (error.cause as Error).message,
    "No such file or directory (os error 2)",
  );
});

Deno.test("HttpClient with unixSocket refuses an empty path before connecting", () => {
  const error = assertThrows(
    () => new HttpClient("http://docker/", { unixSocket: "" }),
    TypeError,
  );
  assertStringIncludes(error.message, "Cannot use unixSocket");
});

/** The server of the mTLS tests: answers one HTTP response and closes. */
function mtlsServer(): Promise<MtlsServer> {
  return startMtlsServer((socket, cn) => {
    const body = `hi ${cn}`;
    socket.end(
      `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}

Deno.test("fetchAll() with cert and key presents the client certificate to a server that requires one", async () => {
  await using server = await mtlsServer();
  const url = `https://localhost:${server.port}/`;
  const [withCert] = await fetchAll([url], {
    caCerts: [ca],
    cert: clientCert,
    key: clientKey,
  });
  assertEquals(decoder.decode(ok(withCert).body), "hi selectors test client");
  const [without] = await fetchAll([url], {
    caCerts: [ca],
    retry: { limit: 0 },
  });
  assert(!without!.ok, "a request without a client certificate succeeded");
  assertEquals(server.peers, ["selectors test client", "refused"]);
});

/**
 * TLS options that HttpClient, fetchAll() and PollableConn.connectTls() all
 * refuse with a TypeError saying `message`, before any connection.
 */
async function assertRefusedEverywhere(
  options: { cert?: string; key?: string; caCerts?: string[] },
  message: string,
): Promise<void> {
  assertThrows(
    () => new HttpClient("https://localhost/", options),
    TypeError,
    message,
  );
  await assertRejects(
    () => fetchAll(["https://127.0.0.1:1/"], options),
    TypeError,
    message,
  );
  assertThrows(
    () =>
      PollableConn.connectTls({ hostname: "127.0.0.1", port: 1, ...options }),
    TypeError,
    message,
  );
}

Deno.test("HttpClient and fetchAll() reject a cert or key that is no PEM, or a key that is not the cert's, with TypeError before connecting", async () => {
  const cases: [{ cert: string; key: string }, string][] = [
    [{ cert: "x", key: clientKey }, "cert is not a PEM certificate"],
    [{ cert: clientCert, key: "y" }, "key is not an unencrypted PEM"],
    [{ cert: clientCert, key }, "key is not the private key of cert"],
  ];
  for (const [options, message] of cases) {
    await assertRefusedEverywhere(options, message);
  }
});

Deno.test("HttpClient, fetchAll() and PollableConn.connectTls() reject caCerts that are no PEM certificates, whole, with TypeError before connecting, and take TRUSTED and X509 ones", async () => {
  const cases: [unknown, string][] = [
    [["x"], "caCerts[0] is not PEM certificates"],
    [[""], "caCerts[0] is not PEM certificates"],
    // An entry that is not a string at all: refused as no PEM, not thrown on.
    [[42], "caCerts[0] is not PEM certificates"],
    [[ca, null], "caCerts[1] is not PEM certificates"],
    [[ca, ca.slice(0, 200)], "caCerts[1] is not PEM certificates"],
    [[ca + ca.slice(0, 200)], "caCerts[0] is not PEM certificates"],
    [[ca.replace(/[A-Za-z]{8}\n/, "\n")], "does not parse"],
    [ca, "must be an array"],
  ];
  for (const [caCerts, message] of cases) {
    await assertRefusedEverywhere({ caCerts: caCerts as string[] }, message);
  }
  // A bundle of several is fine, and so are the labels OpenSSL reads too.
  for (
    const pem of [
      ca + clientCa,
      ca.replaceAll("CERTIFICATE", "TRUSTED CERTIFICATE"),
      ca.replaceAll("CERTIFICATE", "X509 CERTIFICATE"),
    ]
  ) new HttpClient("https://localhost/", { caCerts: [pem] }).close();
});

Deno.test("HttpClient and fetchAll() with only one of cert and key throw a TypeError", async () => {
  for (const options of [{ cert: clientCert }, { key: clientKey }]) {
    const error = assertThrows(
      () => new HttpClient("https://localhost/", options),
      TypeError,
    );
    assertStringIncludes(error.message, "cert and key");
    await assertRejects(() => fetchAll([], options), TypeError, "cert and key");
  }
});
