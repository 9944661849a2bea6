// A listening socket (from a WelcomeRequest). Accepted connections become I/O channels
// of the listener's group.
//
// The listener survives what a busy machine throws at it: out of descriptors or memory
// (EMFILE, ENFILE, ENOBUFS, ENOMEM) or a connection aborted before it was accepted, it
// backs off (10 ms, doubling to 100 ms) and keeps accepting; past `maxConnections` it
// closes new connections at once. Each trouble is reported once per episode.

import type { BinaryHeader } from "./binary_header.ts";
import { closeQuietly, IoChannel } from "./_io_channel.ts";
import { asTofuError, engineSignal } from "./_report.ts";
import { Status, TofuError } from "./status.ts";
import type { Channel, EngineHost, GroupHost } from "./_host.ts";

/** Unix socket paths this process listens on; a second listen on one fails. */
export const liveSocketPaths: Set<string> = new Set();

const BACKOFF_FIRST_MS = 10;
const BACKOFF_MAX_MS = 100;

// Linux names and numbers of the accept errors that pass: the process or the system
// ran out of something, or a client gave up before it was accepted.
const TEMPORARY_CODES = new Set(["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM", "ECONNABORTED"]);
const TEMPORARY_ERRNO = /\(os error (24|23|105|12|103)\)/;

/** Whether an accept error passes by itself (the listener should keep accepting). */
export function isTemporaryAcceptError(err: unknown): boolean {
  if (err instanceof Deno.errors.ConnectionAborted) return true;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && TEMPORARY_CODES.has(code)) return true;
  return err instanceof Error && TEMPORARY_ERRNO.test(err.message);
}

export class ListenerChannel implements Channel {
  readonly number: number;
  readonly group: GroupHost;
  readonly isListener = true;
  readonly done: Promise<void>;
  /** The bound address as a header value (`tcp|127.0.0.1|40123`). */
  readonly address: string;
  readonly #host: EngineHost;
  readonly #listener: Deno.Listener;
  readonly #id: BinaryHeader;
  readonly #udsPath: string | null;
  readonly #udsIno: number | null;
  #closed = false;
  #accepting: Promise<void>;
  #resolveDone!: () => void;
  /** Accepted channels of this listener still open. */
  #open = 0;
  // One report per episode: set when reported, cleared by the next accepted connection.
  #acceptTrouble = false;
  #refusing = false;
  #backoffTimer: ReturnType<typeof setTimeout> | undefined;
  #wakeBackoff: (() => void) | null = null;

  constructor(
    host: EngineHost,
    group: GroupHost,
    number: number,
    listener: Deno.Listener,
    address: string,
    welcomeId: BinaryHeader,
    uds: { path: string; ino: number | null } | null,
  ) {
    this.#host = host;
    this.group = group;
    this.number = number;
    this.#listener = listener;
    this.address = address;
    this.#id = welcomeId;
    this.#udsPath = uds?.path ?? null;
    this.#udsIno = uds?.ino ?? null;
    this.done = new Promise((r) => this.#resolveDone = r);
    if (this.#udsPath !== null) liveSocketPaths.add(this.#udsPath);
    this.#accepting = this.#acceptLoop();
  }

  async #acceptLoop(): Promise<void> {
    let backoff = BACKOFF_FIRST_MS;
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (this.#closed) return;
        if (!isTemporaryAcceptError(err)) {
          this.close(
            Status.acceptFailed,
            asTofuError(Status.acceptFailed, `accept on channel ${this.number}`, err),
          );
          return;
        }
        if (!this.#acceptTrouble) {
          this.#acceptTrouble = true;
          this.#report(
            Status.acceptFailed,
            new TofuError(
              Status.acceptFailed,
              `Cannot accept on channel ${this.number}: ${
                (err as Error).message
              }; the listener keeps accepting, retrying every ${BACKOFF_FIRST_MS}-${BACKOFF_MAX_MS} ms`,
              { cause: err },
            ),
          );
        }
        await this.#sleep(backoff);
        backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
        continue;
      }
      backoff = BACKOFF_FIRST_MS;
      this.#acceptTrouble = false;
      if (this.#closed) {
        closeQuietly(conn);
        return;
      }
      if (this.#open >= this.#host.maxConnections) {
        closeQuietly(conn);
        if (!this.#refusing) {
          this.#refusing = true;
          this.#report(
            Status.allocationFailed,
            new TofuError(
              Status.allocationFailed,
              `Cannot accept a connection on channel ${this.number}: ${this.#open} connections are open (maxConnections ${this.#host.maxConnections}); new ones are closed until some close`,
            ),
          );
        }
        continue;
      }
      const n = this.#host.numbers.allocate();
      if (n === null) {
        closeQuietly(conn);
        if (!this.#refusing) {
          this.#refusing = true;
          this.#report(
            Status.allocationFailed,
            new TofuError(
              Status.allocationFailed,
              `Cannot accept a connection on channel ${this.number}: all ${this.#host.numbers.limit} channel numbers are in use`,
            ),
          );
        }
        continue;
      }
      this.#refusing = false;
      const ch = new IoChannel(this.#host, this.group, n, null);
      this.#host.register(ch);
      this.#open++;
      ch.done.then(() => this.#open--);
      ch.attach(conn);
    }
  }

  #report(status: number, err: TofuError): void {
    this.group.deliver(engineSignal(this.number, status, this.#id, err));
  }

  // Waits `ms` unless the listener closes first. Not unref'd: an open listener keeps the
  // process alive, backing off or not; close clears the timer.
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#wakeBackoff = resolve;
      const timer = setTimeout(() => {
        this.#backoffTimer = undefined;
        this.#wakeBackoff = null;
        resolve();
      }, ms);
      this.#backoffTimer = timer;
    });
  }

  close(_status: number, error: TofuError | null, silent = false): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#backoffTimer !== undefined) {
      clearTimeout(this.#backoffTimer);
      this.#backoffTimer = undefined;
      this.#wakeBackoff?.();
      this.#wakeBackoff = null;
    }
    let restore = () => {};
    if (this.#udsPath !== null) {
      liveSocketPaths.delete(this.#udsPath);
      restore = closeUnixListener(this.#listener, this.#udsPath, this.#udsIno);
    } else closeQuietly(this.#listener);
    this.#host.release(this);
    this.#accepting.then(() => {
      restore();
      if (!silent) {
        this.group.deliver(engineSignal(this.number, Status.channelClosed, this.#id, error));
      }
      this.#resolveDone();
    });
  }
}

/**
 * Closes a Unix listener and removes its socket file, but only if the file is still the
 * one it bound (inode `ino`). Deno unlinks the path when a Unix listener's resource goes
 * away (once its pending accept has ended), whatever the file is by then; a file bound
 * since by someone else is kept under a second name (a hard link) across the close, and
 * the returned function, called once the accept loop has ended, puts it back.
 */
function closeUnixListener(listener: Deno.Listener, path: string, ino: number | null): () => void {
  let foreign = false;
  try {
    foreign = ino !== null && Deno.lstatSync(path).ino !== ino;
  } catch {
    // Gone already: nothing to keep.
  }
  closeQuietly(listener);
  if (!foreign) {
    removeSocketFile(path, ino);
    return () => removeSocketFile(path, ino);
  }
  const keep = `${path}.${Deno.pid}.${Math.random().toString(36).slice(2)}.keep`;
  try {
    Deno.linkSync(path, keep);
  } catch {
    return () => {}; // cannot protect it
  }
  return () => {
    try {
      Deno.renameSync(keep, path);
    } catch {
      removeQuietly(keep);
    }
  };
}

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
