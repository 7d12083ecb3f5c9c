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
import { X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { Duplex } from "node:stream";
import { connect, type ConnectionOptions, type TLSSocket } from "node:tls";
import { allocate, MAX_SMALL } from "./_slab.ts";
import { connectAbort, connectError } from "./_util.ts";
import type { Connecting, Transport } from "./_transport.ts";

/** What `PollableConn.connectTls` takes: `Deno.connectTls`'s options. */
export type TlsOptions = Deno.ConnectTlsOptions & {
  cert?: string;
  key?: string;
};

/** What a TLS start over an open connection takes: no port, as it is connected. */
export type StartTlsOptions = Omit<TlsOptions, "port">;

/**
 * Starts a TLS connection; `cancel()` releases the socket, whatever the phase.
 *
 * The TCP connection is Deno's, with node:tls over it as over a tunnel (see
 * {@linkcode TransportPipe}): Deno 2.9.6's node:tls reads its own socket
 * ahead without limit, paused or not, and over a `node:net` socket it ends the
 * stream on a reset as on a FIN (a close-delimited body cut by a reset would
 * pass for whole; at the end of stream, a socket that got a FIN and then a
 * reset looks the same as one reset mid-way). Natively it would serve ~1.13x
 * the small requests a second here.
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
  const hostname = options.hostname ?? "127.0.0.1";
  if (typeof hostname !== "string") {
    // node:tls would throw this after the TCP connect, out of reach of the
    // caller; Deno.connectTls refuses it too.
    throw new TypeError(
      `Cannot connect: hostname must be a string, received ${typeof hostname}`,
    );
  }
  const { promise, resolve, reject } = Promise.withResolvers<Transport>();
  const abort = connectAbort();
  let handshake: Connecting | null = null;
  const attempt = (ca: string[] | undefined) => {
    const started = performance.now();
    Deno.connect({
      hostname,
      port: options.port,
      signal: abort.signal,
      ...(options.autoSelectFamily !== undefined
        ? { autoSelectFamily: options.autoSelectFamily }
        : {}),
      ...(options.autoSelectFamilyAttemptDelay !== undefined
        ? { autoSelectFamilyAttemptDelay: options.autoSelectFamilyAttemptDelay }
        : {}),
    }).then((tcp) => {
      if (abort.signal.aborted) {
        tcp.close();
        return;
      }
      handshake = startTls(tcp, options, ca);
      handshake.promise.then(resolve, (error) => {
        if (abort.signal.aborted) return; // rejected as cancelled already
        if (ca !== undefined && isUnknownIssuer(error)) {
          attempt(undefined); // not anchored in caCerts: try the default roots
        } else if (isAmbiguousRejection(error)) {
          // Expired, not yet valid or from an unknown issuer: node:tls says
          // the same of all three. A look at the certificate says which, in
          // at most three times what this attempt took: a server that takes
          // no second connection delays the error that long, no longer.
          const limit = Math.max(
            DIAGNOSIS_MIN_MS,
            3 * (performance.now() - started),
          );
          certificateProblem(hostname, options, abort.signal, limit).then(
            (why) => reject(why === null ? error : explained(error, why)),
          );
        } else {
          reject(error);
        }
      });
    }, (error) => reject(connectError(error, hostname)));
  };
  attempt(options.caCerts?.length ? options.caCerts : undefined);
  return {
    promise,
    cancel() {
      abort.abort();
      handshake?.cancel();
      reject(new DOMException("The TLS connect was cancelled", "AbortError"));
    },
  };
}

/**
 * What is wrong with the certificate the server at `hostname` presents, in a
 * few words, or `null` when that cannot be told: expired, not yet valid, or
 * issued by an authority not trusted. Deno 2.9.6's node:tls reports all three
 * as "unable to verify the first certificate", and after a failed handshake it
 * has no peer certificate to show.
 *
 * So this is a second handshake, with verification off, that sends nothing at
 * all (no client certificate either): it only reads the certificate and closes.
 * The verdict stays the first handshake's; this only words it. Any failure of
 * its own, `signal` aborting it, or `limitMs` passing, answers `null`.
 */
function certificateProblem(
  hostname: string,
  options: TlsOptions,
  signal: AbortSignal,
  limitMs: number,
): Promise<string | null> {
  return new Promise((resolve) => {
    const tcpAbort = connectAbort();
    const onSignal = () => tcpAbort.abort();
    signal.addEventListener("abort", onSignal, { once: true });
    const timer = setTimeout(() => tcpAbort.abort(), limitMs);
    const end = (why: string | null) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onSignal);
      resolve(why);
    };
    Deno.connect({
      hostname,
      port: options.port,
      signal: tcpAbort.signal,
    }).then((tcp) => {
      if (tcpAbort.signal.aborted) {
        tcp.close();
        return end(null);
      }
      const pipe = new TransportPipe(tcp);
      const { cert: _cert, key: _key, ...anonymous } = options;
      const socket = connect({
        // No roots either: nothing is verified, and loading them costs ~8 ms.
        ...nodeOptions(anonymous, []),
        rejectUnauthorized: false,
        socket: pipe.duplex,
      });
      let settled = false;
      const done = (why: string | null) => {
        if (settled) return;
        settled = true;
        tcpAbort.signal.removeEventListener("abort", onAbort);
        socket.destroy();
        pipe.duplex.destroy();
        end(why);
      };
      const onAbort = () => done(null);
      tcpAbort.signal.addEventListener("abort", onAbort, { once: true });
      // Kept after it settles: an error event with no listener would throw.
      socket.on("error", onAbort);
      socket.once("secureConnect", () => {
        done(
          describeProblem(
            socket.getPeerCertificate(true),
            Date.now(),
            trustedNames(options.caCerts),
          ),
        );
      });
    }, () => end(null));
  });
}

/** What {@linkcode describeProblem} reads of `getPeerCertificate(true)`'s answer. */
export interface CertificateFacts {
  valid_from?: string | undefined;
  valid_to?: string | undefined;
  subject?: object | undefined;
  issuer?: object | undefined;
  /** The next certificate of the chain the server sent (itself at a root). */
  issuerCertificate?: CertificateFacts | undefined;
}

/** The most certificates of a chain looked at: more is no real chain. */
const MAX_CHAIN = 16;

/**
 * What `certificateProblem` found wrong with the chain from `cert` (the
 * server's) at `now`, or `null`: the first certificate out of its dates, the
 * server's own first (an intermediate expires too: with its root trusted, the
 * handshake fails as for an unknown issuer), else where the chain ends.
 *
 * @param trusted The subjects of the `caCerts` roots (as `distinguishedName`
 *   words them): a chain that ends at one was rejected for something else.
 */
export function describeProblem(
  cert: CertificateFacts | null | undefined,
  now: number,
  trusted: ReadonlySet<string> = new Set(),
): string | null {
  if (cert?.valid_to === undefined || cert.valid_from === undefined) {
    return null;
  }
  // What the server sent, in its order (Deno links them so, whatever each
  // one's issuer), then the chain from its certificate up, by names: an
  // unrelated certificate sent along has no say.
  const sent: CertificateFacts[] = [];
  for (
    let c: CertificateFacts | undefined = cert;
    c !== undefined && c !== null && !sent.includes(c) &&
    sent.length < MAX_CHAIN;
    c = c.issuerCertificate
  ) sent.push(c);
  const chain = [cert];
  // Up to a root, or to one issued by a root trusted here: that root is the
  // anchor, not a certificate of its name the server sent (a cross-sign).
  for (let c = cert; chain.length < sent.length;) {
    const issuer = distinguishedName(c.issuer);
    if (issuer === distinguishedName(c.subject) || trusted.has(issuer)) break;
    const next = sent.find((o) =>
      !chain.includes(o) && distinguishedName(o.subject) === issuer
    );
    if (next === undefined) break;
    chain.push(c = next);
  }
  for (let i = 0; i < chain.length; i++) {
    const c = chain[i]!;
    if (c.valid_to === undefined || c.valid_from === undefined) break;
    const which = i === 0
      ? "the server's certificate"
      : `the certificate of ${
        distinguishedName(c.subject)
      } in the server's chain`;
    const notBefore = Date.parse(c.valid_from);
    const notAfter = Date.parse(c.valid_to);
    if (now > notAfter) return `${which} expired on ${isoDate(notAfter)}`;
    if (now < notBefore) {
      return `${which} is not valid before ${isoDate(notBefore)}`;
    }
  }
  const subject = distinguishedName(cert.subject);
  const last = chain[chain.length - 1]!;
  const issuer = distinguishedName(last.issuer);
  if (issuer === "") return null;
  if (chain.length === 1 && issuer === subject) {
    return `the server's certificate is self-signed (${subject})`;
  }
  if (trusted.has(issuer) || trusted.has(distinguishedName(last.subject))) {
    return `the server's chain leads to ${issuer}, a root trusted here, and was rejected all the same (a constraint of a certificate in it, or its length)`;
  }
  return chain.length === 1
    ? `the server's certificate was issued by ${issuer}, which is not a trusted root (nor did the server send a chain that leads to one)`
    : `the server's chain ends at a certificate issued by ${issuer}, which is not a trusted root`;
}

/** The subjects of `caCerts`, as `distinguishedName` words them. */
export function trustedNames(caCerts: string[] | undefined): Set<string> {
  const names = new Set<string>();
  for (const pem of caCerts ?? []) {
    for (const one of pem.match(PEM_CERTIFICATE) ?? []) {
      try {
        // As getPeerCertificate() gives a name: a field that repeats (two
        // OUs) is one key whose value lists them.
        const name: Record<string, string | string[]> = {};
        for (const line of new X509Certificate(one).subject.split("\n")) {
          const at = line.indexOf("=");
          const key = line.slice(0, at);
          const value = line.slice(at + 1);
          const had = name[key];
          name[key] = had === undefined
            ? value
            : [...(Array.isArray(had) ? had : [had]), value];
        }
        names.add(distinguishedName(name));
      } catch {
        // Not one node:crypto reads: it names no root here.
      }
    }
  }
  return names;
}

const PEM_CERTIFICATE =
  /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** `ms` as `2021-01-01 00:00:00 UTC`. */
function isoDate(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** `{ CN: "a", O: "b" }` as `CN=a, O=b`; "" for none. */
function distinguishedName(name: unknown): string {
  if (typeof name !== "object" || name === null) return "";
  return Object.entries(name).map(([k, v]) => `${k}=${v}`).join(", ");
}

/** `error` (a rejected certificate, as `InvalidData`) with `why` added to its message. */
function explained(error: unknown, why: string): unknown {
  if (!(error instanceof Error)) return error;
  const out = new Deno.errors.InvalidData(`${error.message}: ${why}`);
  // The original node:tls error stays the cause: isUnknownIssuer() reads its code.
  (out as { cause?: unknown }).cause = error.cause ?? error;
  return out;
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
  return startTls(
    transport,
    options,
    options.caCerts?.length ? options.caCerts : undefined,
  );
}

/** {@linkcode startTlsSocket} with `ca` as the roots. */
function startTls(
  transport: Transport,
  options: StartTlsOptions,
  ca: string[] | undefined,
): Connecting {
  const { promise, resolve, reject } = Promise.withResolvers<Transport>();
  const pipe = new TransportPipe(transport);
  const socket = connect({ ...nodeOptions(options, ca), socket: pipe.duplex });
  // However the TLS socket ends, the connection under it goes too, once what
  // node:tls wrote last (an alert, close_notify) is on its way: those who
  // cannot wait for it (cancel, close) destroy the pipe themselves.
  socket.once("close", () => pipe.whenWritten(() => pipe.duplex.destroy()));
  const onError = (error: Error) => {
    socket.destroy();
    reject(denoError(error));
  };
  socket.once("error", onError);
  socket.once("secureConnect", () => {
    socket.off("error", onError);
    resolve(new TlsSocketConn(socket, pipe));
  });
  return {
    promise,
    cancel() {
      socket.destroy();
      pipe.duplex.destroy();
      reject(new DOMException("The TLS handshake was cancelled", "AbortError"));
    },
  };
}

/** How much one read of the connection under a TLS socket asks for, at first. */
const TUNNEL_READ = 16 * 1024;

/**
 * How much it asks for once a read filled its buffer: a bulk transfer, whose
 * larger reads pass through node:tls's stream layers fewer times (a 64 MiB
 * body ~1.15x as fast, at ~0.85x the CPU).
 */
const TUNNEL_READ_BULK = 64 * 1024;

/**
 * A `Transport` as the stream `tls.connect({ socket })` reads and writes, read
 * only while the reader above has room.
 *
 * Deno 2.9.6's node:tls asks for more whenever it can, paused or not, and
 * decrypts everything it gets: left to itself, a fast peer grows memory by
 * hundreds of MiB a second while nobody reads. So a read of the transport is
 * issued only while `room()` holds, and {@linkcode TransportPipe.pull} starts
 * the one asked for meanwhile once there is room again; the kernel holds what
 * arrives in between, as for a Deno conn.
 */
class TransportPipe {
  readonly transport: Transport;
  readonly duplex: Duplex;
  /** Whether the reader above takes more now; until it is built, it does. */
  room: () => boolean = () => true;
  /** node:tls asked for data and no read is issued for it yet. */
  #wanted = false;
  #reading = false;
  #closed = false;
  /**
   * The buffer reads land in, kept from read to read: a new 16 KiB array per
   * read cost more than the TLS record it usually holds (a small response).
   */
  #buf: Uint8Array | null = null;
  /** The size of the next new buffer: {@linkcode TUNNEL_READ}, or bulk's. */
  #size = TUNNEL_READ;
  /** Transport writes in flight, and who waits for there to be none. */
  #writes = 0;
  #written: (() => void)[] = [];

  constructor(transport: Transport) {
    this.transport = transport;
    this.duplex = new Duplex({
      read: () => {
        this.#wanted = true;
        this.pull();
      },
      write: (chunk: Uint8Array, _encoding, callback) => {
        this.#write(chunk, callback);
      },
      destroy: (error, callback) => {
        if (!this.#closed) {
          this.#closed = true;
          try {
            transport.close();
          } catch {
            // Already closed.
          }
        }
        callback(error);
      },
    });
  }

  /** Issues the read node:tls asked for, if there is room for it now. */
  pull(): void {
    if (!this.#wanted || this.#reading || this.#closed || !this.room()) return;
    this.#wanted = false;
    this.#reading = true;
    const buf = this.#buf ??= new Uint8Array(this.#size);
    this.transport.read(buf).then((n) => {
      this.#reading = false;
      if (n === 0) {
        this.#wanted = true; // not the end: read again
        this.pull();
      } else if (n === null) {
        this.duplex.push(null);
      } else if (n <= MAX_SMALL) {
        // A copy, as the buffer is read into again: node:tls takes a chunk in
        // push() while its socket flows, but keeps it when paused.
        const chunk = allocate(n);
        chunk.set(buf.subarray(0, n));
        if (buf.length > TUNNEL_READ) {
          // Small again (requests and responses): a small buffer, kept.
          this.#size = TUNNEL_READ;
          this.#buf = null;
        }
        this.duplex.push(chunk);
      } else {
        // A large read is handed over as it is; the next read gets a new
        // buffer, a bulk one once a read filled this one.
        this.#buf = null;
        if (n === buf.length) this.#size = TUNNEL_READ_BULK;
        this.duplex.push(buf.subarray(0, n));
      }
    }, (error) => {
      this.#reading = false;
      this.duplex.destroy(error);
    });
  }

  #write(bytes: Uint8Array, callback: (error?: Error | null) => void): void {
    this.#writes++;
    writeAll(this.transport, bytes).finally(() => {
      if (--this.#writes === 0) {
        for (const done of this.#written.splice(0)) done();
      }
    }).then(() => callback(), callback);
  }

  /** Whether a write of the transport is in flight. */
  get writing(): boolean {
    return this.#writes > 0;
  }

  /** Calls `done` once no write of the transport is in flight. */
  whenWritten(done: () => void): void {
    if (this.#writes === 0) done();
    else this.#written.push(done);
  }
}

async function writeAll(transport: Transport, bytes: Uint8Array) {
  for (let sent = 0; sent < bytes.length;) {
    sent += await transport.write(bytes.subarray(sent));
  }
}

/** `tls.connect`'s options for `Deno.connectTls`'s, with `ca` as the roots. */
function nodeOptions(
  options: StartTlsOptions,
  ca: string[] | undefined,
): ConnectionOptions & { allowHalfOpen: boolean } {
  // "[::1]", as Deno.connect takes it: checked as the address it names, not as
  // a DNS name the certificate must hold.
  const hostname = (options.hostname ?? "127.0.0.1").replace(
    /^\[(.*)\]$/,
    "$1",
  );
  return {
    // A `net.Socket` option that `tls.connect` passes on (its type leaves it
    // out): the peer's end of stream must not end our side too. As over TCP,
    // bytes sent after it still go out (Node's default ends the socket, and
    // the write that follows failed with EPIPE after `send` took its bytes).
    allowHalfOpen: true,
    host: hostname,
    // SNI carries names only (RFC 6066); an IP address is checked as such.
    ...(isIP(hostname) === 0 ? { servername: hostname } : {}),
    ...(ca !== undefined ? { ca } : {}),
    ...(options.cert !== undefined ? { cert: options.cert } : {}),
    ...(options.key !== undefined ? { key: options.key } : {}),
    ...(options.alpnProtocols ? { ALPNProtocols: options.alpnProtocols } : {}),
    ...(options.unsafelyDisableHostnameVerification
      ? { checkServerIdentity: () => undefined }
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

/** The least time a look at a rejected certificate gets (see `certificateProblem`). */
const DIAGNOSIS_MIN_MS = 250;

/**
 * Whether node:tls rejected the server's certificate with the code Deno 2.9.6
 * gives an expired one, one not yet valid and one from an unknown issuer alike
 * (a self-signed one, or one for another name, it reports as such).
 */
function isAmbiguousRejection(error: unknown): boolean {
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause;
  return cause?.code === "UNABLE_TO_VERIFY_LEAF_SIGNATURE";
}

/** The longest a gracefully closed TLS socket waits for its peer to close too. */
const TLS_CLOSE_MS = 10_000;

/** The most a gracefully closed TLS socket reads and drops while it waits. */
const TLS_CLOSE_DRAIN = 256 * 1024;

/**
 * How many decrypted bytes a TLS conn holds that nobody read: past this, it
 * stops reading its transport until `read()` takes some.
 */
const TLS_READ_AHEAD = 1024 * 1024;

/** A connected `TLSSocket` read and written like a `Deno.Conn`. */
class TlsSocketConn implements Transport {
  readonly localAddr: Deno.Addr;
  readonly remoteAddr: Deno.Addr;
  #socket: TLSSocket;
  #pipe: TransportPipe;
  /** What arrived and was not read yet, oldest first; #queued bytes in all. */
  #queue: Uint8Array[] = [];
  #queued = 0;
  /** Bytes that arrived after close() and were dropped. */
  #dropped = 0;
  #ended = false;
  #closed = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;

  /** @param socket A socket over `pipe` that fired 'secureConnect'. */
  constructor(socket: TLSSocket, pipe: TransportPipe) {
    this.#socket = socket;
    this.#pipe = pipe;
    this.localAddr = pipe.transport.localAddr;
    this.remoteAddr = pipe.transport.remoteAddr;
    pipe.room = () => this.#queued < TLS_READ_AHEAD;
    // Flowing, into a queue of our own that the pipe keeps bounded: a paused
    // socket that stopped reading on a full buffer loses the end of stream
    // that arrives meanwhile (a close-delimited body of a few hundred KiB read
    // slowly never ended).
    socket.on("data", (chunk: Uint8Array) => {
      if (this.#closed) {
        // Nobody reads it any more. A peer that goes on sending after our
        // close is not drained for ever: past a bound, the socket goes.
        this.#dropped += chunk.length;
        if (this.#dropped > TLS_CLOSE_DRAIN) this.abort();
        return;
      }
      this.#queue.push(chunk);
      this.#queued += chunk.length;
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
      const queue = this.#queue;
      if (queue.length > 0) {
        // As much as `p` takes: node:tls hands over a record (16 KiB at most)
        // at a time, and a read per record would keep reads small.
        let n = 0;
        do {
          const chunk = queue[0]!;
          const take = Math.min(chunk.length, p.length - n);
          if (take === chunk.length) {
            p.set(chunk, n);
            queue.shift();
          } else {
            p.set(chunk.subarray(0, take), n);
            queue[0] = chunk.subarray(take);
          }
          n += take;
        } while (n < p.length && queue.length > 0);
        this.#queued -= n;
        this.#pipe.pull();
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
    this.#end(resolve);
    return promise;
  }

  unref(): void {
    this.#pipe.transport.unref?.();
  }

  close(): void {
    this.#closed = true;
    this.#queue = [];
    this.#queued = 0;
    if (
      this.#socket.writableLength > 0 || this.#pipe.writing ||
      this.#socket.destroyed
    ) {
      // Writes still pending: the caller gave up on them (a peer that stopped
      // reading, a failed request); waiting for them would hold the socket.
      this.abort();
    } else {
      // A graceful close, as a Deno.TlsConn's: close_notify and FIN go out
      // after everything written, and what arrives is read and dropped until
      // the peer closes too, or TLS_CLOSE_MS passed (closing a socket holding
      // unread bytes resets it, which can cost the peer what we sent).
      const socket = this.#socket;
      const pipe = this.#pipe;
      // Written: what is left (reading to the peer's close) keeps no process
      // alive, as a Deno conn closed gracefully does not.
      this.#end(() => pipe.transport.unref?.());
      // Ended both ways already (a half-close, then the peer's end): gone.
      if (!socket.destroyed) {
        const timer = setTimeout(() => {
          socket.destroy();
          pipe.duplex.destroy();
        }, TLS_CLOSE_MS);
        Deno.unrefTimer(timer);
        socket.once("close", () => clearTimeout(timer));
      }
    }
    this.#pipe.pull(); // the queue is dropped: read on to the peer's close
    this.#notify();
  }

  /**
   * Releases the socket at once, with no close_notify and nothing more read
   * (as closing a TCP socket holding unread bytes resets it): for a response
   * cut short, whose server may go on sending.
   */
  abort(): void {
    this.#closed = true;
    this.#queue = [];
    this.#queued = 0;
    this.#socket.destroy();
    this.#pipe.duplex.destroy();
    this.#notify();
  }

  setNoDelay(noDelay = true): void {
    this.#pipe.transport.setNoDelay?.(noDelay);
  }

  setKeepAlive(keepAlive = true): void {
    this.#pipe.transport.setKeepAlive?.(keepAlive);
  }

  /**
   * Sends close_notify, then FIN once it is written, as node:tls does on a
   * socket of its own (over a stream it ends nothing); then calls `done`.
   */
  #end(done: () => void): void {
    const pipe = this.#pipe;
    this.#socket.end(() => {
      pipe.whenWritten(() => {
        pipe.transport.closeWrite().catch(() => {
          // Reset or closed meanwhile: the next read or write says so.
        });
        done();
      });
    });
  }

  #notify = (): void => {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  };
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
  const mapped = new Class(
    NO_PROTOCOL.test(error.message)
      ? `${error.message}: the server takes none of the protocols offered (ALPN), HTTP/2 only perhaps`
      : error.message,
  );
  // As Deno's own errors carry it.
  (mapped as { code?: string }).code = code;
  (mapped as { cause?: unknown }).cause = error;
  return mapped;
}

/** The server's alert when it speaks none of the ALPN protocols offered. */
const NO_PROTOCOL = /NoApplicationProtocol|no.application.protocol/i;

/** Certificate and TLS-protocol failures: OpenSSL's verify codes, `ERR_SSL_*`, ... */
const TLS_FAILURE = /^(ERR_SSL_|ERR_TLS_|UNABLE_TO_)|CERT|SIGNATURE|ISSUER/;
