// A listening socket (from a WelcomeRequest). Accepted connections become I/O channels
// of the listener's group.
//
// The listener survives what a busy machine throws at it: out of descriptors or memory
// (EMFILE, ENFILE, ENOBUFS, ENOMEM) or a connection aborted before it was accepted, it
// backs off (10 ms, doubling to 100 ms) and keeps accepting; past `maxConnections` it
// closes new connections at once. Each trouble is reported once per episode.
//
// A reserve descriptor: where the process may read /dev/null (--allow-read=/dev/null; a
// listener never asks for it), the listener holds it open and accepts only while one more
// descriptor is free (a probe open and close of /dev/null before each accept). When the
// probe or an accept fails it closes the reserve at once, so that one descriptor stays free
// for the whole episode, and backs off; it opens the reserve again to resume. On Linux,
// Deno 2.9.6 panics (in the `stacker` crate) when it first source-maps a module's stack
// frame with no descriptor free, for example when the application formats the report's
// `error.stack`; the free descriptor keeps that from happening at the listener's hand.
// Without the permission the listener works as before.

import type { BinaryHeader } from "./binary_header.ts";
import { IoChannel } from "./_io_channel.ts";
import { closeQuietly, type Conn, type Listener } from "./_transport.ts";
import { asTofuError, engineSignal } from "./_report.ts";
import { Status, TofuError } from "./status.ts";
import type { Channel, EngineHost, GroupHost } from "./_host.ts";

const BACKOFF_FIRST_MS = 10;
const BACKOFF_MAX_MS = 100;
const RESERVE_PATH = "/dev/null";

/** Thrown in place of an accept while no descriptor is free besides the reserve. */
class NoHeadroom extends Error {
  constructor() {
    super("no file descriptor is free besides the listener's reserve");
  }
}

/** Opens the reserve descriptor, or null (no permission, no /dev/null, or none free). */
function openReserve(): Deno.FsFile | null {
  try {
    if (Deno.build.os === "windows") return null;
    if (Deno.permissions.querySync({ name: "read", path: RESERVE_PATH }).state !== "granted") {
      return null;
    }
    return Deno.openSync(RESERVE_PATH);
  } catch {
    return null;
  }
}

export class ListenerChannel implements Channel {
  readonly number: number;
  readonly group: GroupHost;
  readonly isListener = true;
  readonly done: Promise<void>;
  /** The bound address as a header value (`tcp|127.0.0.1|40123`). */
  readonly address: string;
  readonly #host: EngineHost;
  readonly #listener: Listener;
  readonly #isTemporary: (err: unknown) => boolean;
  readonly #id: BinaryHeader;
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
  #reserve: Deno.FsFile | null = openReserve();
  /** Whether this listener keeps a reserve descriptor (it could open one at the start). */
  readonly #usesReserve = this.#reserve !== null;

  constructor(
    host: EngineHost,
    group: GroupHost,
    number: number,
    listener: Listener,
    isTemporaryAcceptError: (err: unknown) => boolean,
    welcomeId: BinaryHeader,
  ) {
    this.#host = host;
    this.group = group;
    this.number = number;
    this.#listener = listener;
    this.#isTemporary = isTemporaryAcceptError;
    this.address = listener.address;
    this.#id = welcomeId;
    this.done = new Promise((r) => this.#resolveDone = r);
    this.#accepting = this.#acceptLoop();
  }

  async #acceptLoop(): Promise<void> {
    let backoff = BACKOFF_FIRST_MS;
    for (;;) {
      if (this.#closed) return;
      let conn: Conn;
      try {
        // With a reserve, accept only while one more descriptor is free besides it, so that
        // the accepted connection never takes the last one.
        if (!this.#headroom()) throw new NoHeadroom();
        conn = await this.#listener.accept();
      } catch (err) {
        // Out of descriptors (or memory): free the reserve at once, before anything else.
        this.#dropReserve();
        if (this.#closed) return;
        if (!(err instanceof NoHeadroom) && !this.#isTemporary(err)) {
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

  /**
   * True if the listener may accept: it has no reserve, or it holds its reserve (opened
   * again if need be) and one more descriptor is free. False frees the reserve.
   */
  #headroom(): boolean {
    if (!this.#usesReserve) return true;
    this.#reserve ??= openReserve();
    if (this.#reserve === null) return false;
    try {
      Deno.openSync(RESERVE_PATH).close();
      return true;
    } catch {
      this.#dropReserve();
      return false;
    }
  }

  #dropReserve(): void {
    if (this.#reserve === null) return;
    closeQuietly(this.#reserve);
    this.#reserve = null;
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
    closeQuietly(this.#listener);
    this.#dropReserve();
    this.#host.release(this);
    this.#accepting.then(() => {
      this.#listener.ended();
      if (!silent) {
        this.group.deliver(engineSignal(this.number, Status.channelClosed, this.#id, error));
      }
      this.#resolveDone();
    });
  }
}
