/**
 * The TLS test material in `testdata/` (see its README), read once for every
 * test file, and the servers built from it.
 */
import * as tls from "node:tls";

/** The folder holding the certificates and keys. */
export const testdata: URL = new URL("./testdata/", import.meta.url);

function read(name: string): string {
  return Deno.readTextFileSync(new URL(name, testdata));
}

/** The server certificate for `localhost`/127.0.0.1, signed by {@link ca}. */
export const cert: string = read("localhost.crt");
/** The key of {@link cert}. */
export const key: string = read("localhost.key");
/** The CA that signed {@link cert}. */
export const ca: string = read("ca.crt");
/** The CA that signed {@link clientCert}. */
export const clientCa: string = read("client_ca.crt");
/** The client certificate, CN "selectors test client". */
export const clientCert: string = read("client.crt");
/** The key of {@link clientCert}. */
export const clientKey: string = read("client.key");

/** The CA that signed {@link expiredCert} and {@link notYetValidCert}. */
export const datedCa: string = read("dated_ca.crt");
/** For `localhost`, valid in 2020 only. */
export const expiredCert: string = read("expired.crt");
/** For `localhost`, valid in 2100 only. */
export const notYetValidCert: string = read("not_yet_valid.crt");
/** The key of {@link expiredCert} and {@link notYetValidCert}. */
export const datedKey: string = read("dated.key");
/** For `localhost`, signed by its own key. */
export const selfSignedCert: string = read("self_signed.crt");
/** The key of {@link selfSignedCert}. */
export const selfSignedKey: string = read("self_signed.key");
/** A root CA whose intermediate expired (valid in 2020 only). */
export const chainCa: string = read("chain_ca.crt");
/** For `localhost` (100 years), then the expired intermediate that signed it. */
export const chainedCert: string = read("chained.crt");
/** The key of {@link chainedCert}. */
export const chainedKey: string = read("chained.key");

/** A `Deno.listenTls` listener on 127.0.0.1, any port, serving {@link cert}. */
export function listenTls(): Deno.TlsListener {
  return Deno.listenTls({ hostname: "127.0.0.1", port: 0, cert, key });
}

/** A TLS server that requires client certificates signed by {@link clientCa}. */
export interface MtlsServer extends AsyncDisposable {
  readonly port: number;
  /** The first client's certificate CN, or "refused" when it had none. */
  readonly peer: Promise<string>;
  /** Every client's certificate CN, or "refused", in order. */
  readonly peers: string[];
}

/**
 * `Deno.listenTls` cannot ask for client certificates, so this server is
 * `node:tls`'s, with `requestCert` and `rejectUnauthorized`. On the first bytes
 * a verified client sends, `answer` is called with its socket and CN.
 */
export async function mtlsServer(
  answer: (socket: tls.TLSSocket, cn: string) => void,
): Promise<MtlsServer> {
  const { promise: peer, resolve } = Promise.withResolvers<string>();
  const peers: string[] = [];
  const seen = (cn: string) => {
    peers.push(cn);
    resolve(cn);
  };
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({
    cert,
    key,
    ca: [clientCa],
    requestCert: true,
    rejectUnauthorized: true,
  }, (socket) => {
    sockets.add(socket);
    const cn = String(socket.getPeerCertificate().subject?.CN);
    seen(cn);
    socket.on("error", () => {});
    socket.once("data", () => answer(socket, cn));
  });
  server.on("tlsClientError", () => seen("refused"));
  server.on("connection", (socket) => sockets.add(socket as tls.TLSSocket));
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  return {
    port: (server.address() as { port: number }).port,
    peer,
    peers,
    async [Symbol.asyncDispose]() {
      for (const socket of sockets) socket.destroy();
      await new Promise((done) => server.close(done));
    },
  };
}
