/**
 * `PollableConn`: a Deno connection with Python-style non-blocking `recv`/`send`.
 *
 * @module
 */
import { checkCaCerts, checkClientCert } from "./_client_cert.ts";
import { BlockingIOError } from "./errors.ts";
import { EVENT_READ, EVENT_WRITE } from "./events.ts";
import type { Pollable } from "./pollable.ts";
import { allocate } from "./_slab.ts";
import {
  asError,
  closeQuietly,
  connectAbort,
  connectError,
  describe,
} from "./_util.ts";
import { connectTlsSocket, startTlsSocket } from "./_tls_socket.ts";
import type { Connecting, Transport } from "./_transport.ts";
import {
  kCloseNow,
  kConsume,
  kFilled,
  kPeek,
  kReadBufferSize,
  kReadInto,
  kReady,
  kSendOwned,
  kStartTls,
  kTakeDirect,
  kTls,
  kUnwatch,
  kUnwritten,
  kWatch,
  nextFd,
  type Watcher,
  Watchers,
} from "./_pollable.ts";

/**
 * The first read buffer of a conn: 10,000 idle conns stay cheap. Its own
 * allocation, not cut from a shared slab: a conn may live for hours, and a view
 * would keep its whole slab (128 KiB of other exchanges' bytes) alive as long.
 */
const INITIAL_READ_BUFFER = 4 * 1024;
/**
 * Initial read buffers of closed conns, for new ones: with a conn per request,
 * a fresh one each time costs an allocation (~1 µs) and its zeroing per
 * request. A read buffer never leaves its conn (`recv` copies), so one no read
 * is filling can serve another conn.
 */
const spareReadBuffers: Uint8Array[] = [];
const MAX_SPARE_READ_BUFFERS = 64;
/** The read buffer doubles up to this while reads keep filling it. */
const MAX_READ_BUFFER = 1024 * 1024;
/**
 * A drained conn that has gone quiet gives back a buffer grown past this. Smaller
 * ones are kept: growing again costs an allocation per step, and a keep-alive conn
 * serving mid-sized responses would otherwise regrow on every response.
 */
const KEEP_READ_BUFFER = 64 * 1024;
/** `send()` accepts bytes while fewer than this are waiting to be written. */
const WRITE_HIGH_WATER_MARK = 64 * 1024;
/**
 * The same for an `HttpClient`'s request bytes (`kSendOwned`), queued without
 * a copy: they cost no memory of ours, and queued 64 KiB at a time a large
 * body took a select turn and a write per 64 KiB, where the kernel takes
 * megabytes a write.
 */
const OWNED_HIGH_WATER_MARK = 1024 * 1024;
/** How long `close()` keeps flushing accepted bytes to a peer that does not read them. */
const LINGER_MS = 10_000;

const encoder = new TextEncoder();

/**
 * Options of {@linkcode PollableConn.connect}: TCP or Unix-socket, as `Deno.connect`
 * takes them, or the address of a listener.
 *
 * @example
 * ```ts
 * import type { PollableConnectOptions } from "@seed/selectors";
 *
 * const tcp: PollableConnectOptions = { hostname: "127.0.0.1", port: 8080 };
 * const unix: PollableConnectOptions = { transport: "unix", path: "/tmp/app.sock" };
 * console.log(tcp, unix);
 * ```
 */
export type PollableConnectOptions =
  | Deno.ConnectOptions
  | Deno.UnixConnectOptions
  | Deno.NetAddr
  | Deno.UnixAddr;

/**
 * Options of {@linkcode PollableConn.connectTls}: what `Deno.connectTls` takes,
 * `cert` and `key` (PEM) for a client certificate included.
 *
 * - `caCerts` are trusted in addition to the default roots, as by
 *   `Deno.connectTls` (a server whose chain does not lead to `caCerts` is
 *   handshaken a second time, on a new connection, against the default roots).
 * - `cert` and `key` go together: the client certificate chain and its private
 *   key, for servers that require client certificates (mutual TLS).
 *
 * @example
 * ```ts
 * import type { PollableConnectTlsOptions } from "@seed/selectors";
 *
 * const options: PollableConnectTlsOptions = {
 *   hostname: "localhost",
 *   port: 8443,
 *   caCerts: ["-----BEGIN CERTIFICATE-----\n..."],
 *   cert: "-----BEGIN CERTIFICATE-----\n...",
 *   key: "-----BEGIN PRIVATE KEY-----\n...",
 * };
 * console.log(options.hostname);
 * ```
 */
export interface PollableConnectTlsOptions extends Deno.ConnectTlsOptions {
  /** The client certificate chain, PEM; requires `key`. */
  cert?: string;
  /** The client certificate's private key, PEM; requires `cert`. */
  key?: string;
}

/**
 * A TCP, TLS or Unix-socket connection with the synchronous, non-blocking I/O of a
 * Python socket after `setblocking(False)`, for use with a {@linkcode Selector}.
 *
 * Deno's I/O is promise-based, so the conn keeps at most one `read` and one `write`
 * in flight and works out of two bounded buffers:
 *
 * - **Reads** are issued only while the conn is registered for `EVENT_READ` with
 *   some selector, into a read buffer of 4 KiB to 1 MiB (it grows while reads fill
 *   it); the next read starts once `recv()` has taken every buffered byte, while
 *   the kernel holds what arrives meanwhile. Bytes that a pending read brings in
 *   are kept whatever happens to the registration meanwhile, and `recv()` returns
 *   them in order.
 *   A drained conn whose last read did not fill the buffer (or that nobody
 *   watches for `EVENT_READ`) gives back a buffer grown past 64 KiB, so idle
 *   pooled conns cost at most 64 KiB each whatever they once carried. A conn
 *   from {@linkcode PollableConn.connectTls} also decrypts up to 1 MiB ahead,
 *   registered or not (`node:tls` reads on by itself), then stops reading its
 *   socket until `recv()` takes some.
 * - **Writes**: `send()` copies bytes into a write buffer (high-water mark 64 KiB)
 *   and returns at once; they are written in order, in the background, whether or
 *   not the conn is registered, and never dropped while the conn is open. `close()`
 *   keeps flushing them for up to 10 seconds before it closes the resource, like a
 *   kernel's graceful close; `closeWrite()` flushes them, then half-closes.
 * - **Connecting**: `close()` on a conn still connecting (TCP connect or TLS
 *   handshake) releases its socket at once.
 *
 * Readiness, level-triggered: `EVENT_READ` while bytes are buffered, at end of
 * stream, or after an error; `EVENT_WRITE` once connected (or once connecting
 * failed) while the write buffer is under its high-water mark. A closed conn is never
 * ready.
 *
 * @example Connect without blocking, then exchange bytes
 * ```ts
 * import { assert } from "@std/assert";
 * import { DefaultSelector, EVENT_READ, EVENT_WRITE, PollableConn } from "@seed/selectors";
 *
 * using server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * server.accept().then(async (peer) => {
 *   await peer.write(new TextEncoder().encode("hello"));
 *   peer.close();
 * });
 *
 * using sel = new DefaultSelector();
 * using conn = PollableConn.connect(server.addr);
 * sel.register(conn, EVENT_WRITE);
 * await sel.select(5_000); // connected
 * sel.modify(conn, EVENT_READ);
 * const received: string[] = [];
 * while (true) {
 *   await sel.select(5_000);
 *   const chunk = conn.recv();
 *   if (chunk === null) break; // end of stream, like b"" in Python
 *   received.push(new TextDecoder().decode(chunk));
 * }
 * sel.unregister(conn);
 * assert(received.join("") === "hello");
 * ```
 */
export class PollableConn implements Pollable, Disposable {
  /** A process-unique integer identifying this conn (Deno 2 has no public resource ids). */
  readonly fd: number = nextFd();

  #conn: Transport | null = null;
  /** Releases the socket of a connect in progress; null once connected. */
  #cancel: (() => void) | null = null;
  /** Removes the listener on the caller's connect `signal`; null once settled. */
  #unfollow: (() => void) | null = null;
  #closed = false;
  /** Why connecting or reading failed: both directions are done. */
  #error: Error | null = null;
  /** The host a TCP `connect()` names: its errors name it too. */
  #host: string | undefined = undefined;
  /**
   * Why writing failed (EPIPE after the peer closed, say): `send` is done, but
   * what the peer sent before is still read, as the kernel still holds it.
   */
  #writeError: Error | null = null;
  #localAddr: Deno.Addr | null = null;
  #remoteAddr: Deno.Addr | null = null;
  #watchers = new Watchers();

  // Read side: live bytes are #rbuf[#rstart, #rend); a pending read fills from #rend.
  #rbuf: Uint8Array | null = null;
  #rstart = 0;
  #rend = 0;
  #reading = false;
  #eof = false;
  #grow = false;
  /** Where the next read goes instead of #rbuf (see `[kReadInto]`). */
  #target: Uint8Array | null = null;
  /** Bytes a direct read placed in its target, not yet taken. */
  #direct = 0;

  // Write side: accepted bytes in order are #w0, then #wq; #wlen of them in all.
  // One chunk at a time is the usual case: a slot for it, because an array that
  // empties and fills again allocates its backing store each time (~150 bytes).
  #w0: Uint8Array | null = null;
  #wq: Uint8Array[] = [];
  #wlen = 0;
  #writing = false;
  #lingerTimer: ReturnType<typeof setTimeout> | undefined;
  /** Closed by `kCloseNow`: the transport is released abortively. */
  #abortive = false;
  /** `closeWrite()` was called: half-close once the write queue is flushed. */
  #writeClosed = false;
  #shutdownStarted = false;

  /** See `kTls`. */
  #tls: boolean | null = null;

  // Socket options asked for before the connection was established.
  #noDelay: boolean | undefined;
  #keepAlive: boolean | undefined;

  /**
   * Wraps a connection, or a promise of one (which makes this a connecting conn:
   * write-ready when the promise settles). Prefer the static factories.
   *
   * @param conn An open `Deno.Conn` (TCP, TLS or Unix), or a promise of one.
   * @throws {TypeError} If `conn` is neither.
   */
  constructor(conn: Deno.Conn | Promise<Deno.Conn>) {
    if (conn instanceof Promise) {
      conn.then(this.#onConnect, this.#onConnectError);
    } else if (
      typeof conn === "object" && conn !== null &&
      typeof (conn as Deno.Conn).read === "function" &&
      typeof (conn as Deno.Conn).write === "function"
    ) {
      this.#onConnect(conn);
    } else {
      throw new TypeError(
        `Cannot create PollableConn: expected a Deno.Conn, received ${
          describe(conn)
        }`,
      );
    }
  }

  /**
   * Starts a TCP or Unix-socket connection and returns at once, like a non-blocking
   * `connect()`: the conn becomes write-ready when `Deno.connect` settles. If it
   * failed, `error` holds the reason and `recv`/`send` throw it.
   *
   * A TCP connect takes `signal` as `Deno.connect` does: aborted before the
   * connection is established, the conn fails with `signal.reason` as its
   * `error` (at once if it was aborted already) and the socket of the connect
   * is released, or closed if it connected meanwhile; an abort after that does
   * nothing, and the conn keeps no listener on the signal. `close()` cancels a
   * connect too, without an error.
   *
   * @example Connect and wait for it
   * ```ts
   * import { assert } from "@std/assert";
   * import { DefaultSelector, EVENT_WRITE, PollableConn } from "@seed/selectors";
   *
   * using server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * using sel = new DefaultSelector();
   * using conn = PollableConn.connect({ hostname: "127.0.0.1", port: server.addr.port });
   * sel.register(conn, EVENT_WRITE);
   * await sel.select(5_000);
   * assert(conn.error === null && conn.remoteAddr !== null);
   * ```
   *
   * @param options What `Deno.connect` takes.
   * @returns The connecting conn.
   * @throws {TypeError} If `options` is not an object (bad fields in one,
   *   a `signal` that is not an `AbortSignal` among them, surface through
   *   `error`, as a failed connect).
   */
  static connect(options: PollableConnectOptions): PollableConn {
    checkOptions(options, "connect");
    // An aborted signal releases the socket of a connect in progress (one
    // that completed meanwhile comes to #onConnect, which closes it); Unix
    // connects finish at once and take no signal.
    const abort = connectAbort();
    const transport = (options as { transport?: unknown }).transport;
    const tcp = transport !== "unix";
    // The caller's signal (Deno.connect ignores a null one) aborts ours.
    const signal: unknown = tcp
      ? (options as Deno.ConnectOptions).signal ?? undefined
      : undefined;
    // Deno.connect is async: bad options reject too, so they surface through
    // `error` like a refused connect. Deno words another transport ("udp") as
    // a ReferenceError of its own ("transport is not defined").
    const promise: Promise<Transport> = tcp && transport !== undefined &&
        transport !== "tcp"
      ? Promise.reject(
        new TypeError(
          `Cannot connect: transport must be "tcp" or "unix", received ${
            typeof transport === "string"
              ? `"${transport}"`
              : describe(transport)
          }`,
        ),
      )
      : signal !== undefined && !(signal instanceof AbortSignal)
      ? Promise.reject(
        new TypeError(
          `Cannot connect: signal must be an AbortSignal, received ${
            describe(signal)
          }`,
        ),
      )
      : signal?.aborted
      ? Promise.reject(signal.reason) // no socket: the conn failed already
      : tcp
      ? Deno.connect({
        ...options as Deno.ConnectOptions,
        signal: abort.signal,
      })
      : Deno.connect(options as Deno.UnixConnectOptions);
    const conn = PollableConn.#connecting({
      promise,
      cancel: () => abort.abort(),
    });
    conn.#tls = false;
    if (tcp) {
      conn.#host = (options as Deno.ConnectOptions).hostname ?? "127.0.0.1";
    }
    if (signal instanceof AbortSignal) conn.#follow(signal, abort);
    return conn;
  }

  /**
   * Fails the connect with `signal.reason` when `signal` aborts before it
   * settled (at once if it is aborted already), releasing its socket through
   * `abort`. The listener goes when the connect settles or is closed, so a
   * long-lived signal collects none.
   */
  #follow(signal: AbortSignal, abort: AbortController): void {
    if (signal.aborted) {
      this.#fail(signal.reason);
      return;
    }
    const onAbort = () => {
      this.#unfollow = null;
      abort.abort();
      if (!this.#closed) this.#fail(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    this.#unfollow = () => signal.removeEventListener("abort", onAbort);
    const cancel = this.#cancel;
    this.#cancel = () => {
      this.#stopFollowing();
      cancel?.();
    };
  }

  #stopFollowing(): void {
    const unfollow = this.#unfollow;
    this.#unfollow = null;
    unfollow?.();
  }

  /**
   * Like {@linkcode PollableConn.connect}, over TLS, with the options of
   * `Deno.connectTls` plus `cert` and `key` for a client certificate. The conn
   * becomes write-ready only after the TLS handshake, so certificate errors show
   * up as a failed connect (`Deno.errors.InvalidData`, as with `Deno.connectTls`).
   *
   * It runs on `node:tls` rather than `Deno.connectTls`: in Deno 2.9.6, closing a
   * `Deno.TlsConn` whose handshake is pending keeps the socket open until the
   * peer closes it, while here `close()` releases the socket at once, in the TCP
   * connect and in the handshake alike.
   *
   * @example Connect to a TLS server with a private CA
   * ```ts ignore
   * import { DefaultSelector, EVENT_WRITE, PollableConn } from "@seed/selectors";
   *
   * using sel = new DefaultSelector();
   * using conn = PollableConn.connectTls({
   *   hostname: "internal.example",
   *   port: 8443,
   *   caCerts: [Deno.readTextFileSync("./ca.pem")], // needs --allow-read
   * });
   * sel.register(conn, EVENT_WRITE);
   * // Write-ready once the handshake is done, or failed.
   * if ((await sel.select(5_000)).length === 0) throw new Error("no handshake in 5 s");
   * if (conn.error !== null) throw conn.error; // InvalidData says why, e.g. expired
   * conn.send("hello");
   * ```
   *
   * @param options What `Deno.connectTls` takes, and `cert` + `key`.
   * @returns The connecting conn.
   * @throws {TypeError} If `options` is not an object; if only one of `cert`
   *   and `key` is given, either does not parse as PEM, or the key is not the
   *   certificate's; if `caCerts` are not whole PEM certificates.
   */
  static connectTls(options: PollableConnectTlsOptions): PollableConn {
    checkOptions(options, "connectTls");
    if ((options.cert === undefined) !== (options.key === undefined)) {
      throw new TypeError(
        `Cannot connectTls: cert and key must be given together, received only ${
          options.cert === undefined ? "key" : "cert"
        }`,
      );
    }
    if (options.cert !== undefined) {
      checkClientCert(options.cert, options.key!, "connectTls");
    }
    if (options.caCerts !== undefined) {
      checkCaCerts(options.caCerts, "connectTls");
    }
    let connecting: Connecting;
    try {
      connecting = connectTlsSocket(options);
    } catch (e) {
      // Bad options surface like a failed connect, as with Deno.connectTls.
      connecting = { promise: Promise.reject(e), cancel: () => {} };
    }
    const conn = PollableConn.#connecting(connecting);
    conn.#tls = true;
    return conn;
  }

  /** A conn for a connection on its way, which `close()` cancels. */
  static #connecting(connecting: Connecting): PollableConn {
    // The public constructor takes Deno conns only; a Transport is the part of
    // one this class uses.
    const conn = new PollableConn(
      connecting.promise as unknown as Promise<Deno.Conn>,
    );
    conn.#cancel = connecting.cancel;
    return conn;
  }

  /**
   * Wraps an open connection: a `Deno.Conn`, `Deno.TlsConn` or `Deno.UnixConn`.
   * The conn must not be read or written by anyone else afterwards.
   *
   * @example Wrap an accepted connection
   * ```ts
   * import { assert } from "@std/assert";
   * import { PollableConn } from "@seed/selectors";
   *
   * using server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * using client = await Deno.connect({ port: server.addr.port });
   * using conn = PollableConn.from(await server.accept());
   * assert(conn.remoteAddr !== null);
   * ```
   *
   * @param conn The connection.
   * @returns The pollable conn.
   */
  static from(conn: Deno.Conn): PollableConn {
    return new PollableConn(conn);
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Why connecting, reading or writing failed; `null` while all is well. */
  get error(): Error | null {
    return this.#error ?? this.#writeError;
  }

  /** The local address, `null` until connected. */
  get localAddr(): Deno.Addr | null {
    return this.#localAddr;
  }

  /** The peer's address, `null` until connected. */
  get remoteAddr(): Deno.Addr | null {
    return this.#remoteAddr;
  }

  /**
   * Takes up to `maxBytes` buffered bytes, without waiting.
   *
   * @example Read what has arrived
   * ```ts
   * import { assert } from "@std/assert";
   * import { BlockingIOError, DefaultSelector, EVENT_READ, PollableConn } from "@seed/selectors";
   *
   * using server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * using conn = PollableConn.connect(server.addr);
   * using peer = await server.accept();
   * await peer.write(new Uint8Array([1, 2, 3]));
   * using sel = new DefaultSelector();
   * sel.register(conn, EVENT_READ);
   * await sel.select(5_000);
   * assert(conn.recv(2)?.length === 2); // level-triggered: still ready
   * assert(conn.recv()?.length === 1);
   * try {
   *   conn.recv();
   * } catch (e) {
   *   assert(e instanceof BlockingIOError);
   * }
   * ```
   *
   * @param maxBytes The most bytes to return, a positive integer (default
   *   65,536).
   * @returns 1 to `maxBytes` bytes (a copy the caller owns), or `null` at end of stream.
   * @throws {BlockingIOError} If nothing is buffered yet.
   * @throws {RangeError} If `maxBytes` is not a positive integer.
   * @throws {Deno.errors.BadResource} If the conn is closed.
   * @throws {Error} The connection's error (connecting or reading failed; a
   *   failed write ends the write side only, as in Python), once buffered
   *   bytes are consumed:
   *   `Deno.errors.ConnectionReset` for a reset a pending read saw (Deno reads a
   *   reset that comes while no read is pending as end of stream).
   */
  recv(maxBytes = 65_536): Uint8Array | null {
    if (!Number.isInteger(maxBytes) || maxBytes < 1) {
      throw new RangeError(
        `Cannot recv: maxBytes must be a positive integer, received ${
          describe(maxBytes)
        }`,
      );
    }
    if (this.#closed) {
      throw new Deno.errors.BadResource(
        `Cannot recv: the connection is closed (fd ${this.fd})`,
      );
    }
    const buffered = this.#rend - this.#rstart;
    if (buffered > 0) {
      const n = buffered < maxBytes ? buffered : maxBytes;
      const out = this.#rbuf!.slice(this.#rstart, this.#rstart + n);
      this.#rstart += n;
      if (n === buffered) this.#shrink();
      this.#pumpRead();
      return out;
    }
    if (this.#error) throw this.#error;
    if (this.#eof) return null;
    throw new BlockingIOError(
      this.#conn === null
        ? `Cannot recv: the connection is not established yet (fd ${this.fd})`
        : `Cannot recv: no data buffered (fd ${this.fd})`,
    );
  }

  /**
   * Accepts bytes for writing, without waiting: as many as fit under the write
   * buffer's high-water mark, at least one unless `data` is empty.
   *
   * @example Send a request
   * ```ts
   * import { assert } from "@std/assert";
   * import { DefaultSelector, EVENT_WRITE, PollableConn } from "@seed/selectors";
   *
   * using server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * using conn = PollableConn.connect(server.addr);
   * using sel = new DefaultSelector();
   * sel.register(conn, EVENT_WRITE);
   * await sel.select(5_000);
   * const sent = conn.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
   * assert(sent === 35);
   * using _peer = await server.accept();
   * ```
   *
   * @param data The bytes, or a string sent as UTF-8.
   * @returns How many bytes (of the UTF-8 encoding, for a string) were accepted.
   * @throws {BlockingIOError} If not connected yet, or the write buffer is full
   *   and `data` is not empty (empty data returns 0, as Python's `send(b"")`).
   * @throws {TypeError} If `data` is neither a `Uint8Array` nor a string.
   * @throws {Deno.errors.BadResource} If the conn is closed.
   * @throws {Error} The connection's error, if connecting or writing failed.
   */
  send(data: Uint8Array | string): number {
    if (this.#closed) {
      throw new Deno.errors.BadResource(
        `Cannot send: the connection is closed (fd ${this.fd})`,
      );
    }
    const owned = typeof data === "string";
    const bytes = owned ? encoder.encode(data) : data;
    if (!(bytes instanceof Uint8Array)) {
      throw new TypeError(
        `Cannot send: expected a Uint8Array or a string, received ${
          describe(data)
        }`,
      );
    }
    this.#assertWritable();
    return this.#accept(bytes, !owned, WRITE_HIGH_WATER_MARK);
  }

  /**
   * Half-closes the connection, like Python's `shutdown(SHUT_WR)`: the bytes
   * `send()` accepted are flushed first, then the peer sees end of stream.
   * Reading goes on (`recv()` returns the peer's reply, then `null`); `send()`
   * throws `BrokenPipe` from now on. As on Linux, the conn stays write-ready (a
   * `send()` fails at once), so register it for `EVENT_READ` only. Idempotent.
   *
   * @example Send a request, signal its end, read the reply
   * ```ts
   * import { assert } from "@std/assert";
   * import { DefaultSelector, EVENT_READ, EVENT_WRITE, PollableConn } from "@seed/selectors";
   *
   * using server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * server.accept().then(async (peer) => {
   *   const buf = new Uint8Array(64);
   *   let request = "";
   *   for (let n; (n = await peer.read(buf)) !== null;) {
   *     request += new TextDecoder().decode(buf.subarray(0, n));
   *   }
   *   // The client's end of stream came: answer, then close.
   *   await peer.write(new TextEncoder().encode(`got ${request}`));
   *   peer.close();
   * });
   *
   * using sel = new DefaultSelector();
   * using conn = PollableConn.connect(server.addr);
   * sel.register(conn, EVENT_WRITE);
   * await sel.select(5_000);
   * conn.send("ping");
   * conn.closeWrite();
   * sel.modify(conn, EVENT_READ);
   * let reply = "";
   * for (let i = 0; i < 100; i++) {
   *   await sel.select(5_000);
   *   const chunk = conn.recv();
   *   if (chunk === null) break;
   *   reply += new TextDecoder().decode(chunk);
   * }
   * sel.unregister(conn);
   * assert(reply === "got ping");
   * ```
   *
   * @throws {Deno.errors.NotConnected} If the connection is not established yet.
   * @throws {Deno.errors.BadResource} If the conn is closed.
   * @throws {Error} The connection's error, if connecting or writing failed.
   */
  closeWrite(): void {
    if (this.#closed) {
      throw new Deno.errors.BadResource(
        `Cannot closeWrite: the connection is closed (fd ${this.fd})`,
      );
    }
    if (this.#error) throw this.#error;
    if (this.#writeError) throw this.#writeError;
    if (this.#conn === null) {
      throw new Deno.errors.NotConnected(
        `Cannot closeWrite: the connection is not established yet (fd ${this.fd})`,
      );
    }
    this.#writeClosed = true;
    this.#pumpShutdown();
  }

  /**
   * Turns Nagle's algorithm off (`true`, `TCP_NODELAY`) or on (`false`) for a TCP
   * or TLS conn, as `Deno.TcpConn.setNoDelay`. Before the connection is
   * established the choice is kept and applied when it is. On a Unix socket, and
   * on a `Deno.TlsConn` wrapped with {@linkcode PollableConn.from} (Deno exposes
   * no socket options on it), there is no such option: it does nothing, like
   * Node's `socket.setNoDelay`.
   *
   * @example
   * ```ts
   * import { PollableConn } from "@seed/selectors";
   *
   * using server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * using conn = PollableConn.connect(server.addr);
   * conn.setNoDelay(true); // small writes go out at once
   * ```
   *
   * @param noDelay `true` sets `TCP_NODELAY`.
   * @throws {TypeError} If `noDelay` is not a boolean.
   * @throws {Deno.errors.BadResource} If the conn is closed.
   */
  setNoDelay(noDelay = true): void {
    this.#assertOption("setNoDelay", noDelay);
    this.#noDelay = noDelay;
    this.#conn?.setNoDelay?.(noDelay);
  }

  /**
   * Turns TCP keep-alive probes (`SO_KEEPALIVE`) on or off for a TCP or TLS conn,
   * as `Deno.TcpConn.setKeepAlive`; kept until connected, like
   * {@linkcode PollableConn.setNoDelay}, and a no-op where there is no such option
   * (Unix sockets, a wrapped `Deno.TlsConn`).
   *
   * @example
   * ```ts
   * import { PollableConn } from "@seed/selectors";
   *
   * using server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * using conn = PollableConn.connect(server.addr);
   * conn.setKeepAlive(true); // a dead peer is noticed on an idle conn
   * ```
   *
   * @param keepAlive `true` turns the probes on.
   * @throws {TypeError} If `keepAlive` is not a boolean.
   * @throws {Deno.errors.BadResource} If the conn is closed.
   */
  setKeepAlive(keepAlive = true): void {
    this.#assertOption("setKeepAlive", keepAlive);
    this.#keepAlive = keepAlive;
    this.#conn?.setKeepAlive?.(keepAlive);
  }

  #assertOption(action: string, on: unknown): void {
    if (typeof on !== "boolean") {
      throw new TypeError(
        `Cannot ${action}: expected a boolean, received ${describe(on)}`,
      );
    }
    if (this.#closed) {
      throw new Deno.errors.BadResource(
        `Cannot ${action}: the connection is closed (fd ${this.fd})`,
      );
    }
  }

  /** Throws unless `send` may queue bytes now (after the closed check). */
  #assertWritable(): void {
    if (this.#error) throw this.#error;
    if (this.#writeError) throw this.#writeError;
    if (this.#writeClosed) {
      throw new Deno.errors.BrokenPipe(
        `Cannot send: the connection's write side is closed (fd ${this.fd})`,
      );
    }
    if (this.#conn === null) {
      throw new BlockingIOError(
        `Cannot send: the connection is not established yet (fd ${this.fd})`,
      );
    }
  }

  /**
   * Zero-copy `recv` for this module's HTTP client: a view of every buffered byte,
   * valid only until `[kConsume]` is called, which must
   * follow synchronously. `undefined` when nothing is buffered yet, `null` at end
   * of stream; throws like `recv`.
   *
   * @ignore
   */
  [kPeek](): Uint8Array | null | undefined {
    if (this.#closed) {
      throw new Deno.errors.BadResource(
        `Cannot recv: the connection is closed (fd ${this.fd})`,
      );
    }
    if (this.#rend > this.#rstart) {
      return this.#rbuf!.subarray(this.#rstart, this.#rend);
    }
    if (this.#error) throw this.#error;
    return this.#eof ? null : undefined;
  }

  /**
   * Marks `n` peeked bytes consumed and lets reading go on, unless `readOn` is
   * false because the conn is about to be closed.
   *
   * @ignore
   */
  [kConsume](n: number, readOn = true): void {
    this.#rstart += n;
    if (this.#rstart === this.#rend) this.#shrink();
    if (readOn) this.#pumpRead();
  }

  /**
   * Points the next read at `target` instead of the conn's buffer, so a large
   * body lands in its final buffer without a copy. Only while nothing is
   * buffered; the read after it goes to the buffer again.
   *
   * @ignore
   */
  [kReadInto](target: Uint8Array): void {
    this.#target = target;
    // The rest goes straight to the consumer: the buffer was big enough.
    this.#grow = false;
  }

  /**
   * Whether the last read filled the conn's buffer: more may wait in the
   * kernel.
   *
   * @ignore
   */
  [kFilled](): boolean {
    return this.#grow;
  }

  /**
   * How many bytes the direct read placed in its target; 0 if none is done.
   *
   * @ignore
   */
  [kTakeDirect](): number {
    const n = this.#direct;
    this.#direct = 0;
    return n;
  }

  /**
   * Starts TLS over this open conn, in place: like a conn from
   * {@linkcode PollableConn.connectTls}, it is connecting (not ready) until the
   * handshake ends, then write-ready, with `error` set if it failed; `close()`
   * meanwhile releases the socket at once. `caCerts`, if given, are the only
   * roots trusted (there is no second connection to try the default ones on).
   *
   * @throws {Deno.errors.BadResource} If the conn is closed.
   * @throws {Deno.errors.NotConnected} If it is not connected yet.
   * @throws {Deno.errors.InvalidData} If bytes are buffered either way or a read
   *   is in flight (they would be lost or mixed into the handshake): the peer
   *   spoke first, or the caller did not drain the conn.
   * @ignore
   */
  [kStartTls](options: Omit<PollableConnectTlsOptions, "port">): void {
    if (this.#closed) {
      throw new Deno.errors.BadResource(
        `Cannot start TLS: the connection is closed (fd ${this.fd})`,
      );
    }
    if (this.#error) throw this.#error;
    if (this.#writeError) throw this.#writeError;
    const conn = this.#conn;
    if (conn === null) {
      throw new Deno.errors.NotConnected(
        `Cannot start TLS: the connection is not established yet (fd ${this.fd})`,
      );
    }
    const buffered = this.#rend - this.#rstart + this.#direct;
    if (
      buffered > 0 || this.#reading || this.#eof || this.#wlen > 0 ||
      this.#writing || this.#writeClosed
    ) {
      throw new Deno.errors.InvalidData(
        `Cannot start TLS: the connection is not quiet (fd ${this.fd}, ${
          buffered > 0
            ? `${buffered} bytes received before the handshake`
            : this.#reading
            ? "a read in flight"
            : this.#eof
            ? "end of stream"
            : "bytes waiting to be sent"
        })`,
      );
    }
    this.#conn = null;
    this.#rbuf = null;
    this.#rstart = this.#rend = 0;
    const connecting = startTlsSocket(conn, options);
    this.#tls = true;
    this.#cancel = connecting.cancel;
    connecting.promise.then(this.#onConnect, this.#onConnectError);
  }

  /**
   * Whether the conn speaks TLS, `null` until a caller's promise of a conn
   * settles.
   *
   * @ignore
   */
  [kTls](): boolean | null {
    return this.#tls;
  }

  /**
   * The capacity of the read buffer held now, 0 for none.
   *
   * @ignore
   */
  [kReadBufferSize](): number {
    return this.#rbuf?.length ?? 0;
  }

  /**
   * `send` of bytes nobody will modify, so they are queued without a copy.
   *
   * @ignore
   */
  [kSendOwned](bytes: Uint8Array): number {
    if (this.#closed) {
      throw new Deno.errors.BadResource(
        `Cannot send: the connection is closed (fd ${this.fd})`,
      );
    }
    this.#assertWritable();
    return this.#accept(bytes, false, OWNED_HIGH_WATER_MARK);
  }

  /**
   * Bytes accepted and not yet written: a write error or a close drops them,
   * and a write's buffer is the caller's again once its op has settled.
   *
   * @ignore
   */
  [kUnwritten](): number {
    return this.#wlen;
  }

  /** Queues as much of `bytes` as fits; copies them if the caller keeps them. */
  #accept(bytes: Uint8Array, copy: boolean, mark: number): number {
    // Nothing to queue fits even in a full buffer, as send(fd, "", 0) returns 0.
    if (bytes.length === 0) return 0;
    const room = mark - this.#wlen;
    if (room <= 0) {
      throw new BlockingIOError(
        `Cannot send: the write buffer is full (fd ${this.fd})`,
      );
    }
    const n = bytes.length < room ? bytes.length : room;
    const part = n === bytes.length ? bytes : bytes.subarray(0, n);
    let queued = part;
    if (copy) {
      // A caller's array may be reused as soon as we return, so it is copied:
      // into a slab when small (it is only ever written, never handed back),
      // which costs far less than an ArrayBuffer of its own per send().
      queued = allocate(n);
      queued.set(part);
    }
    if (this.#w0 === null) this.#w0 = queued;
    else this.#wq.push(queued);
    this.#wlen += n;
    this.#pumpWrite();
    return n;
  }

  /**
   * Closes the connection; idempotent. Bytes already accepted by `send()` are
   * still flushed (for at most 10 seconds) before the resource is closed; buffered
   * input is discarded. Selectors never report a closed conn; unregistering it
   * still works.
   *
   * @example
   * ```ts
   * import { assert } from "@std/assert";
   * import { PollableConn } from "@seed/selectors";
   *
   * using server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * const conn = PollableConn.connect(server.addr);
   * conn.close();
   * conn.close();
   * assert(conn.closed);
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watchers.clear();
    const rbuf = this.#rbuf;
    if (
      rbuf !== null && !this.#reading && rbuf.length === INITIAL_READ_BUFFER &&
      spareReadBuffers.length < MAX_SPARE_READ_BUFFERS
    ) spareReadBuffers.push(rbuf);
    this.#rbuf = null;
    this.#rstart = this.#rend = 0;
    const cancel = this.#cancel;
    this.#cancel = null;
    cancel?.(); // still connecting: release the socket now, not when it settles
    if (this.#conn !== null && this.#wlen > 0 && this.#error === null) {
      this.#lingerTimer = setTimeout(() => this.#release(), LINGER_MS);
    } else {
      this.#release();
    }
  }

  /**
   * Closes the conn at once, dropping unsent bytes (see `kCloseNow`).
   *
   * @ignore
   */
  [kCloseNow](): void {
    this.#abortive = true;
    this.close();
    this.#release();
  }

  /** Closes the conn, so `using conn = PollableConn.connect(...)` works. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * The events this conn is ready for now.
   *
   * @ignore
   */
  [kReady](): number {
    if (this.#closed) return 0;
    if (this.#error !== null) return EVENT_READ | EVENT_WRITE;
    if (this.#conn === null) return 0;
    return (this.#rend > this.#rstart || this.#eof || this.#direct > 0
      ? EVENT_READ
      : 0) |
      (this.#wlen < WRITE_HIGH_WATER_MARK || this.#writeError !== null
        ? EVENT_WRITE
        : 0);
  }

  /**
   * Starts or changes watching; reading starts if `events` has `EVENT_READ`.
   *
   * @ignore
   */
  [kWatch](watcher: Watcher, events: number): void {
    if (this.#closed) return;
    this.#watchers.set(watcher, events);
    this.#pumpRead();
  }

  /**
   * Stops watching; a read in flight completes into the buffer.
   *
   * @ignore
   */
  [kUnwatch](watcher: Watcher): void {
    this.#watchers.delete(watcher);
    if (!this.#reading) this.#shrink();
  }

  /**
   * Gives a grown read buffer back when it is drained and the conn has gone
   * quiet: its last read did not fill it, or nobody watches it for reading. A
   * busy conn keeps it, so a stream is not read through a small buffer again.
   */
  #shrink(): void {
    const buf = this.#rbuf;
    if (
      buf !== null && buf.length > KEEP_READ_BUFFER &&
      this.#rstart === this.#rend &&
      (!this.#grow || (this.#watchers.events & EVENT_READ) === 0)
    ) {
      this.#rbuf = null;
      this.#grow = false;
      this.#rstart = this.#rend = 0;
    }
  }

  #onConnect = (conn: Transport): void => {
    this.#cancel = null;
    this.#stopFollowing();
    // Closed, or failed by the caller's signal, as the connect completed.
    if (this.#closed || this.#error !== null) {
      closeQuietly(conn);
      return;
    }
    this.#conn = conn;
    // A Deno.TlsConn, wrapped or promised by the caller.
    this.#tls ??= typeof (conn as Partial<Deno.TlsConn>).handshake ===
      "function";
    this.#localAddr = conn.localAddr;
    this.#remoteAddr = conn.remoteAddr;
    // Its reads keep no process alive: a pending select() does (as in
    // Python, where an open socket does not, and a script that ends with one
    // open or registered exits).
    conn.unref?.();
    try {
      if (this.#noDelay !== undefined) conn.setNoDelay?.(this.#noDelay);
      if (this.#keepAlive !== undefined) conn.setKeepAlive?.(this.#keepAlive);
    } catch (e) {
      this.#fail(e);
      return;
    }
    this.#pumpRead();
    this.#watchers.notify(this);
  };

  #onConnectError = (error: unknown): void => {
    this.#cancel = null;
    this.#stopFollowing();
    // Closed, or failed already by the caller's signal (whose reason stays).
    if (this.#closed || this.#error !== null) return;
    const host = this.#host;
    this.#fail(host === undefined ? error : connectError(error, host));
  };

  #fail(error: unknown): void {
    if (this.#error === null) this.#error = asError(error);
    this.#watchers.notify(this);
  }

  #pumpRead(): void {
    // One read at a time, and only once the buffer is drained: the kernel keeps
    // what arrives meanwhile. So the buffer never needs compacting, and a conn
    // closed right after its last byte was taken has no read in flight for Deno
    // to interrupt (which costs an error object with a stack trace).
    if (
      this.#reading || this.#rend > this.#rstart || this.#direct > 0 ||
      this.#conn === null || this.#closed || this.#eof ||
      this.#error !== null || (this.#watchers.events & EVENT_READ) === 0
    ) return;
    if (this.#target !== null) {
      this.#reading = true;
      this.#conn.read(this.#target).then(this.#onDirectRead, this.#onReadError);
      this.#target = null;
      return;
    }
    let buf = this.#rbuf;
    if (buf === null) {
      buf = this.#rbuf = spareReadBuffers.pop() ??
        new Uint8Array(INITIAL_READ_BUFFER);
    } else if (this.#grow && buf.length < MAX_READ_BUFFER) {
      buf = this.#rbuf = new Uint8Array(
        Math.min(buf.length * 2, MAX_READ_BUFFER),
      );
    }
    this.#grow = false;
    this.#rstart = this.#rend = 0;
    this.#reading = true;
    this.#conn.read(buf).then(this.#onRead, this.#onReadError);
  }

  #onRead = (n: number | null): void => {
    this.#reading = false;
    if (this.#closed) return;
    if (n === 0) {
      this.#pumpRead(); // a 0-byte read is not end of stream
      return;
    }
    if (n === null) {
      this.#eof = true;
    } else {
      // A read that filled the whole buffer means a busy conn: grow next time.
      this.#grow = n === this.#rbuf!.length;
      this.#rend = n;
    }
    this.#watchers.notify(this);
  };

  #onDirectRead = (n: number | null): void => {
    this.#reading = false;
    if (this.#closed) return;
    if (n === null) this.#eof = true;
    else this.#direct = n;
    if (n === 0) this.#pumpRead();
    else this.#watchers.notify(this);
  };

  #onReadError = (error: unknown): void => {
    this.#reading = false;
    if (this.#closed) return; // closing interrupts the pending read
    this.#fail(error);
  };

  #pumpWrite(): void {
    if (
      this.#writing || this.#wlen === 0 || this.#conn === null ||
      this.#error !== null || this.#writeError !== null
    ) return;
    let chunk = this.#w0!;
    if (this.#wq.length > 0 && this.#wlen <= WRITE_HIGH_WATER_MARK) {
      // Coalesce what small sends queued into one write call (a large owned
      // part goes out on its own, uncopied).
      chunk = allocate(this.#wlen);
      chunk.set(this.#w0!);
      let offset = this.#w0!.length;
      for (const part of this.#wq) {
        chunk.set(part, offset);
        offset += part.length;
      }
      this.#w0 = chunk;
      this.#wq = [];
    }
    this.#writing = true;
    this.#conn.write(chunk).then(this.#onWrite, this.#onWriteError);
  }

  #onWrite = (n: number): void => {
    this.#writing = false;
    if (this.#conn === null) return; // released
    const wasFull = this.#wlen >= WRITE_HIGH_WATER_MARK;
    this.#wlen -= n;
    const head = this.#w0!;
    if (n < head.length) this.#w0 = head.subarray(n);
    else this.#w0 = this.#wq.length > 0 ? this.#wq.shift()! : null;
    if (this.#closed && this.#wlen === 0) {
      this.#release();
      return;
    }
    this.#pumpWrite();
    this.#pumpShutdown();
    if (wasFull && this.#wlen < WRITE_HIGH_WATER_MARK) {
      this.#watchers.notify(this);
    }
  };

  #onWriteError = (error: unknown): void => {
    this.#writing = false;
    if (this.#conn === null) return;
    if (this.#closed) {
      this.#release();
      return;
    }
    this.#w0 = null;
    this.#wq = [];
    this.#wlen = 0;
    // The write side only: reading goes on (Python's recv still returns what
    // the peer sent before it closed, then b"").
    this.#writeError ??= asError(error);
    this.#watchers.notify(this);
  };

  /** After `closeWrite()`, half-closes once everything accepted is written. */
  #pumpShutdown(): void {
    if (
      !this.#writeClosed || this.#shutdownStarted || this.#writing ||
      this.#wlen > 0 || this.#conn === null || this.#closed
    ) return;
    this.#shutdownStarted = true;
    // A failed shutdown (the peer reset meanwhile) shows up on the next read.
    this.#conn.closeWrite().catch(() => {});
  }

  /** Closes the Deno resource, after `close()` and any flush it waited for. */
  #release(): void {
    clearTimeout(this.#lingerTimer);
    const conn = this.#conn;
    this.#conn = null;
    this.#w0 = null;
    this.#wq = [];
    this.#wlen = 0;
    if (conn === null) return;
    if (this.#abortive && conn.abort !== undefined) conn.abort();
    else closeQuietly(conn);
  }
}

/** Rejects options that are no object at all, which `Deno.connect` would read as one. */
function checkOptions(options: unknown, method: string): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot ${method}: options must be an object like { hostname, port }, received ${
        describe(options)
      }`,
    );
  }
}
