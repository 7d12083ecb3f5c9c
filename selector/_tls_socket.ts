/**
 * TLS client connections over `node:tls`, behind the `Deno.Conn` surface a
 * `PollableConn` uses.
 *
 * Why not `Deno.connectTls`: in Deno 2.9.6, `close()` on a `Deno.TlsConn` whose
 * handshake is still pending keeps the socket open until the peer closes it (a
 * server that accepts and never answers holds the fd for as long as it likes),
 * and a pending TCP connect inside it cannot be aborted. `node:tls`'s `destroy()`
 * releases the socket at once in both phases. It also takes a client
 * certificate, honours `DENO_CERT`, and its handshake is cheaper here (about 1 ms
 * against 3 ms on loopback).
 */
import { isIP } from "node:net";
import { Duplex } from "node:stream";
import { connect, type ConnectionOptions, type TLSSocket } from "node:tls";
import type { Connecting, Transport } from "./_transport.ts";

/** What `PollableConn.connectTls` takes: `Deno.connectTls`'s options. */
export type TlsOptions = Deno.ConnectTlsOptions & {
  cert?: string;
  key?: string;
};

/** What a TLS start over an open connection takes: no port, as it is connected. */
export type StartTlsOptions = Omit<TlsOptions, "port">;

/**
 * Starts a TLS connection; `cancel()` destroys the socket, whatever the phase.
 *
 * `caCerts` are trusted in addition to the default roots, as `Deno.connectTls`
 * does, but `node:tls`'s `ca` replaces the defaults, and handing it the default
 * roots as well costs about 8 ms of CPU per connect (and `--allow-sys`). So the
 * handshake trusts `caCerts` alone first and, only when the server's chain leads
 * to no root among them, is tried once more on a new connection with the default
 * roots. A chain is trusted by the union of two root sets exactly when it is by
 * one of them, so this is the same decision.
 */
export function connectTlsSocket(options: TlsOptions): Connecting {
  const { promise, resolve, reject } = Promise.withResolvers<Transport>();
  let socket: TLSSocket;
  const attempt = (ca: string[] | undefined) => {
    socket = connect(nodeOptions(options, ca));
    const current = socket;
    // destroy() emits no 'error', so nothing arrives here after cancel().
    const onError = (error: Error) => {
      // A failed handshake leaves the socket open: close it whatever failed.
      current.destroy();
      if (ca !== undefined && isUnknownIssuer(error)) {
        attempt(undefined); // not anchored in caCerts: try the default roots
      } else {
        reject(denoError(error));
      }
    };
    current.once("error", onError);
    current.once("secureConnect", () => {
      current.off("error", onError);
      resolve(new TlsSocketConn(current));
    });
  };
  attempt(options.caCerts?.length ? options.caCerts : undefined);
  return {
    promise,
    cancel() {
      socket.destroy();
      reject(new DOMException("The TLS connect was cancelled", "AbortError"));
    },
  };
}

/**
 * Starts TLS over `transport`, an open connection nothing else reads or writes
 * (the tunnel a proxy opened after `CONNECT`); `cancel()` destroys the TLS
 * socket and closes `transport`, whatever the phase. The resolved transport owns
 * `transport`: closing it closes both.
 *
 * `caCerts`, when given, are the only roots trusted here: unlike
 * {@linkcode connectTlsSocket} there is no second connection to try the default
 * roots on. A caller that wants both tries again with no `caCerts` on a new
 * tunnel when {@linkcode isUnknownIssuer} says the chain led to none of them.
 */
export function startTlsSocket(
  transport: Transport,
  options: StartTlsOptions,
): Connecting {
  const { promise, resolve, reject } = Promise.withResolvers<Transport>();
  const duplex = transportDuplex(transport);
  const socket = connect({
    ...nodeOptions(
      options,
      options.caCerts?.length ? options.caCerts : undefined,
    ),
    socket: duplex,
  });
  // However the TLS socket ends, the connection under it goes too.
  socket.once("close", () => duplex.destroy());
  const onError = (error: Error) => {
    socket.destroy();
    duplex.destroy();
    reject(denoError(error));
  };
  socket.once("error", onError);
  socket.once("secureConnect", () => {
    socket.off("error", onError);
    resolve(new TlsSocketConn(socket, transport));
  });
  return {
    promise,
    cancel() {
      socket.destroy();
      duplex.destroy();
      reject(new DOMException("The TLS handshake was cancelled", "AbortError"));
    },
  };
}

/** How much one read of the connection under a TLS socket asks for. */
const TUNNEL_READ = 16 * 1024;

/** A `Transport` as the stream `tls.connect({ socket })` reads and writes. */
function transportDuplex(transport: Transport): Duplex {
  let reading = false;
  let closed = false;
  const duplex: Duplex = new Duplex({
    read() {
      if (reading) return;
      reading = true;
      const buf = new Uint8Array(TUNNEL_READ);
      const pull = (): void => {
        transport.read(buf).then((n) => {
          if (n === 0) return pull(); // not the end: read again
          reading = false;
          duplex.push(n === null ? null : buf.subarray(0, n));
        }, (error) => {
          reading = false;
          duplex.destroy(error);
        });
      };
      pull();
    },
    write(chunk: Uint8Array, _encoding, callback) {
      writeAll(transport, chunk).then(() => callback(), callback);
    },
    final(callback) {
      transport.closeWrite().then(() => callback(), callback);
    },
    destroy(error, callback) {
      if (!closed) {
        closed = true;
        try {
          transport.close();
        } catch {
          // Already closed.
        }
      }
      callback(error);
    },
  });
  return duplex;
}

async function writeAll(transport: Transport, bytes: Uint8Array) {
  for (let sent = 0; sent < bytes.length;) {
    sent += await transport.write(bytes.subarray(sent));
  }
}

/** `tls.connect`'s options for `Deno.connectTls`'s, with `ca` as the roots. */
function nodeOptions(
  options: StartTlsOptions & { port?: number },
  ca: string[] | undefined,
): ConnectionOptions & { allowHalfOpen: boolean } {
  const hostname = options.hostname ?? "127.0.0.1";
  return {
    // A `net.Socket` option that `tls.connect` passes on (its type leaves it
    // out): the peer's end of stream must not end our side too. As over TCP,
    // bytes sent after it still go out (Node's default ends the socket, and
    // the write that follows failed with EPIPE after `send` took its bytes).
    allowHalfOpen: true,
    host: hostname,
    port: options.port,
    // SNI carries names only (RFC 6066); an IP address is checked as such.
    ...(isIP(hostname) === 0 ? { servername: hostname } : {}),
    ...(ca !== undefined ? { ca } : {}),
    ...(options.cert !== undefined ? { cert: options.cert } : {}),
    ...(options.key !== undefined ? { key: options.key } : {}),
    ...(options.alpnProtocols ? { ALPNProtocols: options.alpnProtocols } : {}),
    ...(options.unsafelyDisableHostnameVerification
      ? { checkServerIdentity: () => undefined }
      : {}),
    ...(options.autoSelectFamily !== undefined
      ? { autoSelectFamily: options.autoSelectFamily }
      : {}),
    ...(options.autoSelectFamilyAttemptDelay !== undefined
      ? { autoSelectFamilyAttemptTimeout: options.autoSelectFamilyAttemptDelay }
      : {}),
  };
}

/** OpenSSL's codes for a chain that leads to no trusted root (not a bad name, date, ...). */
const UNKNOWN_ISSUER =
  /^(UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|CERT_UNTRUSTED)$/;

/**
 * Whether a handshake failed because the server's chain leads to no trusted
 * root: `error` as OpenSSL reported it, or as {@linkcode denoError} mapped it.
 */
export function isUnknownIssuer(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { code, cause } = error as { code?: unknown; cause?: unknown };
  if (UNKNOWN_ISSUER.test(String(code))) return true;
  return typeof cause === "object" && cause !== null &&
    UNKNOWN_ISSUER.test(String((cause as { code?: unknown }).code));
}

/** The longest a gracefully closed TLS socket waits for its peer to close too. */
const TLS_CLOSE_MS = 10_000;

/** A connected `TLSSocket` read and written like a `Deno.Conn`. */
class TlsSocketConn implements Transport {
  readonly localAddr: Deno.Addr;
  readonly remoteAddr: Deno.Addr;
  #socket: TLSSocket;
  /** What arrived and was not read yet, oldest first. */
  #queue: Uint8Array[] = [];
  #ended = false;
  #closed = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;

  /** The connection a socket started over one runs on: its addresses and options. */
  #under: Transport | null;

  /**
   * @param socket A socket that fired 'secureConnect'.
   * @param under The connection under a socket started over one, which has no
   *   addresses or socket options of its own.
   */
  constructor(socket: TLSSocket, under: Transport | null = null) {
    this.#socket = socket;
    this.#under = under;
    // Known once 'secureConnect' fired, which is when this is built.
    this.localAddr = under?.localAddr ??
      netAddr(socket.localAddress!, socket.localPort!);
    this.remoteAddr = under?.remoteAddr ??
      netAddr(socket.remoteAddress!, socket.remotePort!);
    // Flowing, into a queue of our own: Deno 2.9.6's node:tls reads ahead
    // whatever the peer sends, paused or not, and a paused socket that stopped
    // reading on a full buffer loses the end of stream that arrives meanwhile
    // (a close-delimited body of a few hundred KiB read slowly never ended).
    socket.on("data", (chunk: Uint8Array) => {
      if (this.#closed) return; // nobody reads it any more
      this.#queue.push(chunk);
      this.#notify();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("error", (error: Error) => {
      this.#error ??= denoError(error);
      this.#notify();
    });
    socket.on("close", this.#notify);
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (true) {
      if (this.#closed) {
        throw new Deno.errors.BadResource(
          "Cannot read: the TLS connection is closed",
        );
      }
      const chunk = this.#queue[0];
      if (chunk !== undefined) {
        const n = Math.min(chunk.length, p.length);
        if (n === chunk.length) {
          p.set(chunk);
          this.#queue.shift();
        } else {
          p.set(chunk.subarray(0, n));
          this.#queue[0] = chunk.subarray(n);
        }
        return n;
      }
      if (this.#error !== null) throw this.#error;
      if (this.#ended || this.#socket.destroyed) return null;
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#wake = resolve;
      await promise;
    }
  }

  write(p: Uint8Array): Promise<number> {
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    this.#socket.write(p, (error) => {
      // The socket's own error (a reset, say) says more than "stream destroyed".
      if (error) reject(this.#error ?? denoError(error));
      else resolve(p.length);
    });
    return promise;
  }

  closeWrite(): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#socket.end(resolve);
    return promise;
  }

  close(): void {
    this.#closed = true;
    this.#queue = [];
    if (this.#socket.writableLength > 0) {
      // Writes still pending: the caller gave up on them (a peer that stopped
      // reading, a failed request); waiting for them would hold the socket.
      this.#socket.destroy();
    } else {
      // A graceful close, as a Deno.TlsConn's: close_notify and FIN go out
      // after everything written. Not destroySoon(): in Deno 2.9.6's node:tls
      // 'finish' comes before the last writes reach the kernel, and destroying
      // then cut a 1 MiB send at 80 KiB. The socket goes when the peer closes
      // too, or after TLS_CLOSE_MS (unref'd: it keeps no process alive).
      const socket = this.#socket;
      socket.end();
      // Ended both ways already (a half-close, then the peer's end): gone.
      if (!socket.destroyed) {
        const timer = setTimeout(() => socket.destroy(), TLS_CLOSE_MS);
        Deno.unrefTimer(timer);
        socket.once("close", () => clearTimeout(timer));
      }
    }
    this.#notify();
  }

  setNoDelay(noDelay = true): void {
    if (this.#under !== null) this.#under.setNoDelay?.(noDelay);
    else this.#socket.setNoDelay(noDelay);
  }

  setKeepAlive(keepAlive = true): void {
    if (this.#under !== null) this.#under.setKeepAlive?.(keepAlive);
    else this.#socket.setKeepAlive(keepAlive);
  }

  #notify = (): void => {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  };
}

function netAddr(hostname: string, port: number): Deno.NetAddr {
  return { transport: "tcp", hostname, port };
}

/** Node's system error codes as the `Deno.errors` class `Deno.connect` throws. */
const ERROR_CLASSES: Record<string, new (message: string) => Error> = {
  ECONNREFUSED: Deno.errors.ConnectionRefused,
  ECONNRESET: Deno.errors.ConnectionReset,
  ECONNABORTED: Deno.errors.ConnectionAborted,
  EPIPE: Deno.errors.BrokenPipe,
  ETIMEDOUT: Deno.errors.TimedOut,
  EADDRNOTAVAIL: Deno.errors.AddrNotAvailable,
  ENETUNREACH: Deno.errors.NetworkUnreachable,
  EHOSTUNREACH: Deno.errors.NetworkUnreachable,
  ENOTCONN: Deno.errors.NotConnected,
};

/**
 * The error as Deno's own TLS would report it, so callers see one set of
 * classes whichever way a conn connects: system errors by code, a rejected
 * certificate or a failed handshake as `InvalidData`. The original is the cause.
 */
function denoError(error: Error): Error {
  const code = String((error as { code?: unknown }).code);
  const Class = ERROR_CLASSES[code] ??
    (TLS_FAILURE.test(code) ? Deno.errors.InvalidData : null);
  if (Class === null) return error; // a DNS failure, say: as Deno.connect's, plain
  const mapped = new Class(error.message);
  (mapped as { cause?: unknown }).cause = error;
  return mapped;
}

/** Certificate and TLS-protocol failures: OpenSSL's verify codes, `ERR_SSL_*`, ... */
const TLS_FAILURE = /^(ERR_SSL_|ERR_TLS_|UNABLE_TO_)|CERT|SIGNATURE|ISSUER/;
