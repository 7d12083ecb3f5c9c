/**
 * What a `PollableConn` needs of a connection: the part of `Deno.Conn` it uses,
 * so a TLS socket from `node:tls` can stand in for a `Deno.TlsConn`.
 */
export interface Transport {
  readonly localAddr: Deno.Addr;
  readonly remoteAddr: Deno.Addr;
  /** As `Deno.Conn.read`: a count, or `null` at end of stream; 0 is not the end. */
  read(p: Uint8Array): Promise<number | null>;
  /** As `Deno.Conn.write`: how many bytes of `p` were written. */
  write(p: Uint8Array): Promise<number>;
  /** Half-closes: the peer sees end of stream; reading goes on. */
  closeWrite(): Promise<void>;
  /** Releases the socket at once. */
  close(): void;
  /**
   * Releases the socket at once, dropping what is unsent and unread, where
   * `close()` is graceful (TLS: close_notify, then what arrives is drained).
   */
  abort?(): void;
  /** `TCP_NODELAY`; absent where there is no such option (Unix sockets). */
  setNoDelay?(noDelay?: boolean): void;
  /** `SO_KEEPALIVE`; absent where there is no such option. */
  setKeepAlive?(keepAlive?: boolean): void;
  /** As `Deno.Conn.unref`: its pending operations keep no process alive. */
  unref?(): void;
}

/** A connection on its way: `cancel()` releases its socket at once. */
export interface Connecting {
  readonly promise: Promise<Transport>;
  cancel(): void;
}
