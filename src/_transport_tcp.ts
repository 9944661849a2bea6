// TCP over Deno.connect / Deno.listen, and the socket error classification the Unix socket
// transport shares.

import { Status } from "./status.ts";
import type { Conn, Listener, Transport } from "./_transport.ts";

export interface TcpAddress {
  host: string;
  port: number;
}

function noDelay(conn: Deno.TcpConn): Deno.TcpConn {
  try {
    conn.setNoDelay(true);
  } catch {
    // Not fatal: Nagle only adds latency.
  }
  return conn;
}

function isLookupFailure(err: unknown): boolean {
  return err instanceof Error && /lookup|Name or service|nodename nor servname|No address/i
    .test(err.message);
}

function isPermissionError(err: unknown): boolean {
  return err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied;
}

/** The status of a failed socket connect. */
export function socketConnectFailure(err: unknown): number {
  if (isPermissionError(err)) return Status.notAllowed;
  if (err instanceof Deno.errors.NotFound) return Status.udsPathNotFound;
  if (isLookupFailure(err)) return Status.invalidAddress;
  return Status.connectFailed;
}

/** The status of a failed socket listen. */
export function socketListenFailure(err: unknown): number {
  if (isPermissionError(err)) return Status.notAllowed;
  if (isLookupFailure(err)) return Status.invalidAddress;
  return Status.listenFailed;
}

// Linux names and numbers of the accept errors that pass: the process or the system
// ran out of something, or a client gave up before it was accepted.
const TEMPORARY_CODES = new Set(["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM", "ECONNABORTED"]);
const TEMPORARY_ERRNO = /\(os error (24|23|105|12|103)\)/;

/** Whether a socket accept error passes by itself (the listener should keep accepting). */
export function isTemporaryAcceptError(err: unknown): boolean {
  if (err instanceof Deno.errors.ConnectionAborted) return true;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && TEMPORARY_CODES.has(code)) return true;
  return err instanceof Error && TEMPORARY_ERRNO.test(err.message);
}

/**
 * Whether this process may pass `reusePort` to Deno.listen: Deno 2.9.6 gates it behind
 * `--unstable-net` and ends the process (exit code 70) instead of throwing without it.
 * `Deno.listenDatagram` exists exactly when that flag is on.
 */
export function reusePortAvailable(): boolean {
  return typeof (Deno as { listenDatagram?: unknown }).listenDatagram === "function" &&
    Deno.build.os === "linux";
}

class TcpListener implements Listener {
  readonly address: string;
  readonly #l: Deno.TcpListener;

  constructor(l: Deno.TcpListener) {
    this.#l = l;
    const a = l.addr;
    this.address = `tcp|${a.hostname}|${a.port}`;
  }

  async accept(): Promise<Conn> {
    return noDelay(await this.#l.accept());
  }

  close(): void {
    try {
      this.#l.close();
    } catch {
      // Already closed.
    }
  }

  ended(): void {}
}

export const tcp: Transport<TcpAddress> & {
  listenShared(addr: TcpAddress): Promise<Listener>;
} = {
  // Async so that anything Deno.connect throws becomes a rejection.
  async dial(addr) {
    return noDelay(await Deno.connect({ hostname: addr.host, port: addr.port }));
  },
  // deno-lint-ignore require-await
  async listen(addr) {
    return new TcpListener(Deno.listen({ hostname: addr.host, port: addr.port }));
  },
  /** Binds with SO_REUSEPORT (several listeners, one port); only when reusePortAvailable(). */
  // deno-lint-ignore require-await
  async listenShared(addr) {
    if (!reusePortAvailable()) {
      throw new Deno.errors.NotSupported(
        "reusePort needs Linux and --unstable-net (Deno 2.9.6 exits the process without it)",
      );
    }
    return new TcpListener(Deno.listen({ hostname: addr.host, port: addr.port, reusePort: true }));
  },
  connectFailure: socketConnectFailure,
  listenFailure: socketListenFailure,
  isTemporaryAcceptError,
};
