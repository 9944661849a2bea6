// Unix domain sockets: Deno.connect / Deno.listen with transport "unix", and the socket
// file rules: a file left by a dead process is removed before a listen, a live one or any
// other kind of file makes the listen fail, and closing leaves in place a file that someone
// else bound on the path since (told apart by its inode).
//
// Deno removes a Unix listener's path when its socket goes away: at close(), or, with an
// accept pending then, once that accept has ended (an event-loop turn later; meanwhile the
// socket still takes connections). Whatever file the path names by then goes. So a listener
// closed with an accept pending leaves its file in place for Deno to remove (the path stays
// in use as long as the socket is open), and a listen in this process on that path waits
// until it is gone. An inode number says nothing once the socket is closed: ext4 gives the
// next file bound on the path the same number at once.

import {
  isTemporaryAcceptError,
  socketConnectFailure,
  socketListenFailure,
} from "./_transport_tcp.ts";
import { closeQuietly, type Conn, type Listener, type Transport } from "./_transport.ts";

export interface UdsAddress {
  path: string;
}

/** Unix socket paths this process listens on; a second listen on one fails. */
export const liveSocketPaths: Set<string> = new Set();

/**
 * The socket files this process listens on, as `device:inode`: one path spelt another way
 * (`/tmp/./x.sock`, `/tmp//x.sock`) is the same socket.
 */
const liveSocketFiles: Set<string> = new Set();

function fileKey(info: Deno.FileInfo): string | null {
  return info.ino === null || info.dev === null ? null : `${info.dev}:${info.ino}`;
}

/** Paths of closed listeners whose socket is still open (accepts pending): until it is not. */
export const closingSocketPaths: Map<string, Promise<void>> = new Map();

// A socket file left by a dead process is removed; a live one (something accepts
// on it, here or in another process) or any other kind of file makes the listen fail.
// Only a probe tells the two apart: connecting to a dead socket is refused.
async function prepareSocketPath(path: string): Promise<void> {
  const closing = closingSocketPaths.get(path);
  if (closing !== undefined) await closing; // no await otherwise: a listen takes no extra turn
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    throw err;
  }
  if (!info.isSocket) {
    throw new Deno.errors.AlreadyExists(`${path} exists and is not a socket`);
  }
  const key = fileKey(info);
  if (liveSocketPaths.has(path) || (key !== null && liveSocketFiles.has(key))) {
    throw new Deno.errors.AddrInUse(`a listener of this process is bound to ${path}`);
  }
  let probe: Deno.Conn;
  try {
    probe = await Deno.connect({ transport: "unix", path });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return;
    if (err instanceof Deno.errors.ConnectionRefused) {
      removeSocketFile(path, info.ino); // dead; only the file that was probed
      return;
    }
    throw new Deno.errors.AddrInUse(
      `the socket ${path} did not refuse a probe (${(err as Error).message}); it may be live`,
    );
  }
  closeQuietly(probe);
  throw new Deno.errors.AddrInUse(`another process is listening on ${path}`);
}

class UdsListener implements Listener {
  readonly address: string;
  readonly #l: Deno.UnixListener;
  readonly #path: string;
  readonly #ino: number | null;
  #closed = false;
  #pendingAccepts = 0;
  /** Set by a close with accepts pending: tidies up once the last of them has ended. */
  #whenAcceptsEnd: (() => void) | null = null;

  readonly #key: string | null;

  constructor(l: Deno.UnixListener, path: string, ino: number | null, key: string | null) {
    this.#l = l;
    this.#path = path;
    this.#ino = ino;
    this.address = `uds|${path}`;
    liveSocketPaths.add(path);
    this.#key = key;
    if (key !== null) liveSocketFiles.add(key);
  }

  accept(): Promise<Conn> {
    const accepted = this.#l.accept();
    this.#pendingAccepts++;
    accepted.then(this.#acceptEnded, this.#acceptEnded);
    return accepted;
  }

  // By the time an accept settles, Deno has let go of the socket if it was closed.
  #acceptEnded = (): void => {
    if (--this.#pendingAccepts === 0) this.#whenAcceptsEnd?.();
  };

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    liveSocketPaths.delete(this.#path);
    if (this.#key !== null) liveSocketFiles.delete(this.#key);
    const pending = this.#pendingAccepts > 0;
    const restore = closeUnixListener(this.#l, this.#path, this.#ino);
    if (!pending) {
      restore();
      return;
    }
    const path = this.#path;
    const closing = Promise.withResolvers<void>();
    closingSocketPaths.set(path, closing.promise);
    this.#whenAcceptsEnd = () => {
      this.#whenAcceptsEnd = null;
      restore();
      closingSocketPaths.delete(path); // no other listen on it could start meanwhile
      closing.resolve();
    };
  }

  ended(): void {
    // Tidied already: at close(), or when the accepts pending then ended.
  }
}

export const uds: Transport<UdsAddress> = {
  async dial(addr) {
    return await Deno.connect({ transport: "unix", path: addr.path });
  },
  async listen(addr) {
    await prepareSocketPath(addr.path);
    const l = Deno.listen({ transport: "unix", path: addr.path });
    let ino: number | null = null;
    let key: string | null = null;
    try {
      const info = Deno.lstatSync(addr.path);
      ino = info.ino;
      key = fileKey(info);
    } catch {
      // Without a readable inode, closing removes the path as Deno does.
    }
    return new UdsListener(l, addr.path, ino, key);
  },
  connectFailure: socketConnectFailure,
  listenFailure: socketListenFailure,
  isTemporaryAcceptError,
};

/**
 * Closes a Unix listener. Deno unlinks its path when it lets go of the socket: at once with
 * no accept pending, else once that accept has ended; nothing is removed here (checked by
 * inode after Deno's unlink, the path could name a new file with the same inode). Deno
 * unlinks the path whatever the file is by then: a file bound since by someone else (its
 * inode is not `ino`) is kept under a second name (a hard link) across the close, and the
 * returned function, to be called once Deno has let go of the socket, puts it back.
 */
function closeUnixListener(
  listener: Deno.UnixListener,
  path: string,
  ino: number | null,
): () => void {
  let foreign = false;
  try {
    foreign = ino !== null && Deno.lstatSync(path).ino !== ino;
  } catch {
    // Gone already: nothing to keep.
  }
  if (!foreign) {
    closeQuietly(listener);
    return noop;
  }
  // Linked before the close: with no accept pending, Deno unlinks the path at close().
  const keep = `${path}.${Deno.pid}.${Math.random().toString(36).slice(2)}.keep`;
  try {
    Deno.linkSync(path, keep);
  } catch {
    closeQuietly(listener);
    return noop; // cannot protect it
  }
  closeQuietly(listener);
  return () => {
    try {
      Deno.renameSync(keep, path);
    } catch {
      removeQuietly(keep);
    }
  };
}

function noop(): void {}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // Not there, or not ours to remove.
  }
}

/** Removes a socket file if it is still there (and is inode `ino`, when given); never a regular file. */
export function removeSocketFile(path: string, ino: number | null = null): void {
  try {
    const info = Deno.lstatSync(path);
    if (info.isSocket && (ino === null || info.ino === ino)) Deno.removeSync(path);
  } catch {
    // Gone already (Deno removes it on close) or not ours to remove.
  }
}
