// A listening socket (from a WelcomeRequest). Accepted connections become I/O channels
// of the listener's group.

import type { BinaryHeader } from "./binary_header.ts";
import { closeQuietly, IoChannel } from "./_io_channel.ts";
import { asTofuError, engineSignal } from "./_report.ts";
import { Status, TofuError } from "./status.ts";
import type { Channel, EngineHost, GroupHost } from "./_host.ts";

/** Unix socket paths this process listens on; a second listen on one fails. */
export const liveSocketPaths: Set<string> = new Set();

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
  #closed = false;
  #accepting: Promise<void>;
  #resolveDone!: () => void;

  constructor(
    host: EngineHost,
    group: GroupHost,
    number: number,
    listener: Deno.Listener,
    address: string,
    welcomeId: BinaryHeader,
    udsPath: string | null,
  ) {
    this.#host = host;
    this.group = group;
    this.number = number;
    this.#listener = listener;
    this.address = address;
    this.#id = welcomeId;
    this.#udsPath = udsPath;
    this.done = new Promise((r) => this.#resolveDone = r);
    if (udsPath !== null) liveSocketPaths.add(udsPath);
    this.#accepting = this.#acceptLoop();
  }

  async #acceptLoop(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (!this.#closed) {
          this.close(
            Status.acceptFailed,
            asTofuError(Status.acceptFailed, `accept on channel ${this.number}`, err),
          );
        }
        return;
      }
      if (this.#closed) {
        closeQuietly(conn);
        return;
      }
      const n = this.#host.numbers.allocate();
      if (n === null) {
        closeQuietly(conn);
        const err = new TofuError(
          Status.allocationFailed,
          `Cannot accept a connection on channel ${this.number}: all ${this.#host.numbers.limit} channel numbers are in use`,
        );
        this.group.deliver(engineSignal(this.number, Status.allocationFailed, this.#id, err));
        continue;
      }
      const ch = new IoChannel(this.#host, this.group, n, null);
      this.#host.register(ch);
      ch.attach(conn);
    }
  }

  close(_status: number, error: TofuError | null, silent = false): void {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.#listener);
    if (this.#udsPath !== null) {
      liveSocketPaths.delete(this.#udsPath);
      removeSocketFile(this.#udsPath);
    }
    this.#host.release(this);
    this.#accepting.then(() => {
      if (!silent) {
        this.group.deliver(engineSignal(this.number, Status.channelClosed, this.#id, error));
      }
      this.#resolveDone();
    });
  }
}

/** Removes a socket file if it is still there; never a regular file. */
export function removeSocketFile(path: string): void {
  try {
    if (Deno.lstatSync(path).isSocket) Deno.removeSync(path);
  } catch {
    // Gone already (Deno removes it on close) or not ours to remove.
  }
}
