/**
 * A channel group: the channels opened through it and their one receive queue.
 *
 * @module
 */

import type { BinaryHeader } from "./binary_header.ts";
import type { EngineCore, GroupCore } from "./_engine_core.ts";
import { type Message, Owner, ownerOf } from "./message.ts";
import { engineSignal } from "./_report.ts";
import { Status, TofuError } from "./status.ts";

/** Options of {@linkcode ChannelGroup.waitReceive}. */
export interface WaitReceiveOptions {
  /** Aborts the wait; the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
}

let makeGroup: (engine: EngineCore, core: GroupCore) => ChannelGroup;

/**
 * A group of channels with one FIFO receive queue. Everything the engine has for
 * the application arrives here: peer frames, the engine's reports, messages handed
 * back and {@linkcode ChannelGroup.updateReceiver} notes. Create one with
 * `engine.create()`.
 *
 * @example Listening and receiving
 * ```ts
 * import { assert } from "@std/assert";
 * import { Engine, OpCode, TcpServerAddress } from "@tofu/tofu";
 *
 * await using engine = new Engine();
 * const group = engine.create();
 * group.post(new TcpServerAddress("127.0.0.1", 0).format(engine.get("always")));
 * using welcome = await group.waitReceive(5000);
 * assert(welcome?.bhdr.opCode === OpCode.WelcomeResponse);
 * // Port 0 was resolved to the real port.
 * assert(/^tcp\|127\.0\.0\.1\|[1-9][0-9]*$/.test(welcome?.headers.get("~listen_on") ?? ""));
 * ```
 */
export class ChannelGroup implements AsyncIterable<Message> {
  #engine!: EngineCore;
  #core!: GroupCore;

  static {
    makeGroup = (engine, core) => {
      const g = new ChannelGroup();
      g.#engine = engine;
      g.#core = core;
      return g;
    };
  }

  private constructor() {}

  /**
   * Posts a message; it never blocks. The message is validated (docs/protocol.md
   * section 3) and, on success, belongs to the engine: it is written to its channel's
   * socket in post order, or handed back here with a status that says why not.
   * A HelloRequest (connect) or WelcomeRequest (listen) on channel 0 opens a channel.
   *
   * @param msg The message.
   * @returns A copy of the prepared binary header (assigned channel and message id).
   * @throws {TofuError} If the message is refused; it then stays with the caller with
   * its status byte set.
   */
  post(msg: Message): BinaryHeader {
    return this.#engine.post(this.#core, msg);
  }

  /**
   * Waits for the next message of the group, in FIFO order.
   *
   * @param timeoutMs How long to wait (default forever); `0` polls.
   * @param options `signal` aborts the wait.
   * @returns The message, or `null` on timeout.
   * @throws {TofuError} With status `shutdown_started` once the group is destroyed
   * or the engine closed (pending waits reject too).
   */
  waitReceive(timeoutMs: number = Infinity, options: WaitReceiveOptions = {}): Promise<
    Message | null
  > {
    if (typeof timeoutMs !== "number" || Number.isNaN(timeoutMs) || timeoutMs < 0) {
      return Promise.reject(
        new RangeError(`Cannot wait: timeoutMs ${timeoutMs} is not a number >= 0`),
      );
    }
    return this.#core.queue.wait(timeoutMs, options.signal);
  }

  /**
   * Returns the next message if one is queued, without waiting.
   *
   * @returns The message, or `null` when the queue is empty.
   */
  tryReceive(): Message | null {
    return this.#core.queue.tryShift();
  }

  /**
   * Wakes the receiver: with no argument, queues a Signal (origin engine, status
   * `receiver_update`, channel 0, id 0); with a message, queues that message with
   * origin application and status `receiver_update`.
   *
   * @param msg An application message to pass through the queue (it then belongs to
   * whoever receives it).
   * @throws {TofuError} With status `not_allowed` if `msg` is not the caller's,
   * `allocation_failed` if the receive queue is at its bound (`maxReceiveQueueMsgs`; the
   * message stays with the caller), or `shutdown_started` after destroy.
   */
  updateReceiver(msg?: Message | null): void {
    if (this.#core.destroyed) {
      throw new TofuError(Status.shutdownStarted, "Cannot update receiver: the group is destroyed");
    }
    if (this.#core.queue.full) {
      throw new TofuError(
        Status.allocationFailed,
        `Cannot update receiver: the receive queue holds ${this.#core.queue.length} messages (maxReceiveQueueMsgs ${this.#core.queue.limit})`,
      );
    }
    let m: Message;
    if (msg === null || msg === undefined) {
      m = engineSignal(0, Status.receiverUpdate, null, null);
    } else {
      if (ownerOf(msg) !== Owner.Application) {
        throw new TofuError(
          Status.notAllowed,
          "Cannot update receiver: the message is not yours (already posted or put)",
        );
      }
      m = msg;
      m.bhdr.origin = 0;
    }
    m.bhdr.status = Status.receiverUpdate;
    this.#core.deliver(m);
  }

  /** Yields received messages until the group is destroyed or the engine closed. */
  async *[Symbol.asyncIterator](): AsyncIterator<Message> {
    for (;;) {
      let m: Message | null;
      try {
        m = await this.#core.queue.wait(Infinity, undefined);
      } catch (err) {
        if (err instanceof TofuError && err.status === Status.shutdownStarted) return;
        throw err;
      }
      if (m) yield m;
    }
  }
}

/** Library-internal: wraps a group core in its public face. */
export function newChannelGroup(engine: EngineCore, core: GroupCore): ChannelGroup {
  return makeGroup(engine, core);
}
