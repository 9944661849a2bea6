// The transport seam: everything the engine needs from a socket (or from any byte pipe)
// and nothing more. One private file per transport implements it: _transport_tcp.ts,
// _transport_uds.ts, _transport_isolate.ts (later TLS). The channel code (_io_channel.ts,
// _listener.ts, _engine_core.ts) holds no Deno.* socket call.

/** One connected byte stream: a socket, or a pipe between isolates. */
export interface Conn {
  /** Reads into `p`; null at the end of the stream. Rejects on a broken stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes some of `p` (at least one byte). Rejects on a broken stream. */
  write(p: Uint8Array): Promise<number>;
  /** Closes at once; pending reads and writes end. Idempotent enough: may throw if closed. */
  close(): void;
}

/** A bound listener. */
export interface Listener {
  /** The bound address as a `~listen_on` header value (the real port for TCP port 0). */
  readonly address: string;
  /** The next incoming connection. Rejects once closed, or with an accept error. */
  accept(): Promise<Conn>;
  /** Stops accepting; a pending accept rejects. */
  close(): void;
  /** Called once, after close, when the accept loop has ended (files can be tidied now). */
  ended(): void;
}

/** One kind of address (`tcp`, `uds`, `isolate`). */
export interface Transport<A> {
  /** Connects; rejects with an error that {@linkcode Transport.connectFailure} classifies. */
  dial(addr: A): Promise<Conn>;
  /** Binds; rejects with an error that {@linkcode Transport.listenFailure} classifies. */
  listen(addr: A): Promise<Listener>;
  /** The status of a failed dial (`connect_failed`, `uds_path_not_found`, ...). */
  connectFailure(err: unknown): number;
  /** The status of a failed listen (`listen_failed`, `not_allowed`, ...). */
  listenFailure(err: unknown): number;
  /** Whether an accept error passes by itself (the listener keeps accepting). */
  isTemporaryAcceptError(err: unknown): boolean;
}

/** Closes `c`, ignoring "already closed". */
export function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch {
    // Already closed.
  }
}
