/**
 * A channel group: the channels opened through it and their one receive queue.
 *
 * @module
 */

import type { BinaryHeader } from "./binary_header.ts";
import type { EngineCore, GroupCore } from "./_engine_core.ts";
import { iterResolvedWith, Message, Owner, ownerOf } from "./message.ts";
import type { IoChannel } from "./_io_channel.ts";
import type { ReceiveQueue } from "./_receive_queue.ts";
import { engineSignal } from "./_report.ts";
import { Status, TofuError } from "./status.ts";

/** Options of {@linkcode ChannelGroup.waitReceive}. */
export interface WaitReceiveOptions {
  /** Aborts the wait; the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** Options of {@linkcode ChannelGroup.ready}. */
export interface ReadyOptions {
  /**
   * Resolve once the channel's queued bytes are at or below this many, counted as
   * `maxQueuedBytes` counts them: each queued frame plus 512 bytes. By default, once at most
   * half the engine's `maxQueuedBytes` is queued so counted (so that the post after it fits
   * the budget as long as a frame costs at most the other half) and at most
   * {@linkcode DEFAULT_LOW_WATER_BYTES} (2 MiB) of the frames' own bytes.
   */
  lowWaterBytes?: number;
  /** Gives up waiting; the promise rejects with `signal.reason`. */
  signal?: AbortSignal | undefined;
}

/**
 * The most bytes of frames (their size on the wire) {@linkcode ChannelGroup.ready} lets a
 * channel have queued by default: 2 MiB, about 32 frames of 64 KiB. Their charged bytes
 * (each frame plus 512) must also be at most half of `maxQueuedBytes`, which with the default
 * budget of 4 MiB is also 2 MiB: about 3,500 queued 64-byte messages. An engine given a larger
 * budget lets a sender of small messages queue more of them (up to about 26,000) before it
 * waits, and one of large frames no more.
 */
export const DEFAULT_LOW_WATER_BYTES = 2 * 1024 * 1024;

let makeGroup: (engine: EngineCore, core: GroupCore) => ChannelGroup;
let roomNow: (group: ChannelGroup, channelNumber: number) => boolean;

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
    roomNow = (g, n) => g.#roomNow(n);
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
   * @throws {TypeError} If `msg` is not a Message.
   * @throws {TofuError} If the message is refused; it then stays with the caller with
   * its status byte set.
   */
  post(msg: Message): BinaryHeader {
    if (!(msg instanceof Message)) {
      throw new TypeError(`Cannot post: ${msg === null ? "null" : typeof msg} is not a Message`);
    }
    return this.#engine.post(this.#core, msg);
  }

  /**
   * Waits until a channel of this group has room to send: its queued bytes (frames
   * posted and not yet written to the socket) are at or below a low-water mark. Like a
   * writable stream's `ready` promise, it lets a sender keep pace with the socket instead
   * of posting until `maxQueuedBytes` refuses: `await group.ready(ch)` before each post
   * (it resolves at once while there is room) keeps the queue, and so memory, bounded.
   * A channel still connecting has room for its first frames; they are written once the
   * connection is up.
   *
   * @param channelNumber An open channel of this group (not a listener).
   * @param options `lowWaterBytes` sets the mark; `signal` aborts the wait.
   * @returns A promise that resolves once the channel has room.
   * @throws {TypeError} If `channelNumber` is not an integer (the promise rejects).
   * @throws {RangeError} If `lowWaterBytes` is not a number >= 0 (the promise rejects).
   * @throws {TofuError} The promise rejects with status `invalid_channel_number` if the
   * channel is not open, `invelid_mchn_group` if it belongs to another group,
   * `not_allowed` for a listener, `shutdown_started` once the group is destroyed or the
   * engine closed, and `channel_closed` if the channel is closing (a Bye was posted) or
   * closes while the sender waits. An aborted `signal` rejects with `signal.reason`.
   *
   * @example A sender that keeps pace with its peer
   * ```ts ignore
   * for (const body of bodies) {
   *   await group.ready(ch); // at once while at most 2 MiB are queued
   *   const m = engine.get("always");
   *   m.bhdr.channelNumber = ch;
   *   m.body.set(body);
   *   group.post(m);
   * }
   * ```
   */
  ready(channelNumber: number, options?: ReadyOptions): Promise<void> {
    try {
      return this.#ready(channelNumber, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  // Whether ready(n) with the default marks would resolve at once (false for any channel
  // it would refuse).
  #roomNow(n: number): boolean {
    const engine = this.#engine;
    if (engine.closed || this.#core.destroyed) return false;
    const ch = engine.channels.get(n);
    if (ch === undefined || ch.group !== this.#core || ch.isListener) return false;
    return (ch as IoChannel).hasRoom(
      Math.floor(engine.maxQueuedBytes / 2),
      DEFAULT_LOW_WATER_BYTES,
    );
  }

  #ready(n: number, options: ReadyOptions | undefined): Promise<void> {
    if (!Number.isInteger(n)) {
      throw new TypeError(`Cannot wait for room: channelNumber ${n} is not an integer`);
    }
    const engine = this.#engine;
    const max = engine.maxQueuedBytes;
    // By default, half the budget: at the budget itself, ready() resolved while the queue was
    // just under it and the post that followed was refused (allocation_failed). Not 2 MiB
    // charged whatever the budget: with 64 MiB allowed, a naive sender of 64-byte messages
    // that waited past 2 MiB (3,500 frames, each charged 512 bytes more than its 80) ran at
    // 0.78x of one keeping its own window of 32,768. And at most 2 MiB of the frames' own
    // bytes: 32 MiB of 64 KiB frames went cold in the CPU caches before they were written
    // (0.77-0.88x; bench/RESULTS.md).
    const lowWater = options?.lowWaterBytes;
    const mark = lowWater ?? Math.floor(max / 2);
    const frameMark = lowWater === undefined ? DEFAULT_LOW_WATER_BYTES : Infinity;
    if (typeof mark !== "number" || Number.isNaN(mark) || mark < 0) {
      throw new RangeError(
        `Cannot wait for room on channel ${n}: lowWaterBytes ${mark} is not a number >= 0`,
      );
    }
    if (engine.closed || this.#core.destroyed) {
      throw new TofuError(
        Status.shutdownStarted,
        `Cannot wait for room on channel ${n}: the ${
          engine.closed ? "engine is closed" : "group is destroyed"
        }`,
      );
    }
    const ch = engine.channels.get(n);
    if (ch === undefined) {
      throw new TofuError(
        Status.invalidChannelNumber,
        `Cannot wait for room on channel ${n}: the channel is not open`,
      );
    }
    if (ch.group !== this.#core) {
      throw new TofuError(
        Status.invelidMchnGroup,
        `Cannot wait for room on channel ${n}: it belongs to another group`,
      );
    }
    if (ch.isListener) {
      throw new TofuError(
        Status.notAllowed,
        `Cannot wait for room on channel ${n}: it is a listener, which sends nothing`,
      );
    }
    return (ch as IoChannel).ready(mark, frameMark, options?.signal);
  }

  /**
   * Waits for the next message of the group, in FIFO order.
   *
   * @param timeoutMs How long to wait (default forever); `0` polls.
   * @param options `signal` aborts the wait.
   * @returns The message, or `null` on timeout. For a message already queued, the promise
   * is one the message keeps, already settled (no allocation per call).
   * @throws {TofuError} With status `shutdown_started` once the group is destroyed
   * or the engine closed (pending waits reject too).
   */
  waitReceive(timeoutMs: number = Infinity, options?: WaitReceiveOptions): Promise<
    Message | null
  > {
    if (typeof timeoutMs !== "number" || Number.isNaN(timeoutMs) || timeoutMs < 0) {
      return Promise.reject(
        new RangeError(`Cannot wait: timeoutMs ${timeoutMs} is not a number >= 0`),
      );
    }
    return this.#core.queue.wait(timeoutMs, options?.signal);
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

  /**
   * Iterates over received messages until the group is destroyed or the engine closed
   * (then the iteration ends). A plain async iterator, not an async generator: a message
   * already queued costs no allocation (each message keeps one settled promise of its
   * iterator result, which is frozen, and returns it whenever it is received). `break` (or
   * `return()`) ends only this iterator; the group keeps receiving.
   *
   * @returns An async iterator of the group's messages.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<Message> {
    return new GroupIterator(this.#core.queue);
  }
}

/**
 * Library-internal: whether `group.ready(channelNumber)` (default marks) would resolve at once,
 * so that a post may go out without waiting (src/channel.ts, send()).
 */
export function hasRoomNow(group: ChannelGroup, channelNumber: number): boolean {
  return roomNow(group, channelNumber);
}

const FINISHED: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });
const FINISHED_P = Promise.resolve(FINISHED);

class GroupIterator implements AsyncIterableIterator<Message> {
  #queue: ReceiveQueue | null;

  constructor(queue: ReceiveQueue) {
    this.#queue = queue;
  }

  next(): Promise<IteratorResult<Message>> {
    const q = this.#queue;
    if (q === null) return FINISHED_P;
    const m = q.tryShift();
    if (m !== null) return iterResolvedWith(m);
    return q.wait(Infinity, undefined).then(
      (m) => Object.freeze({ done: false, value: m! }),
      (err) => {
        if (err instanceof TofuError && err.status === Status.shutdownStarted) {
          this.#queue = null;
          return FINISHED;
        }
        throw err;
      },
    );
  }

  return(): Promise<IteratorResult<Message>> {
    this.#queue = null;
    return FINISHED_P;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Message> {
    return this;
  }
}

/** Library-internal: wraps a group core in its public face. */
export function newChannelGroup(engine: EngineCore, core: GroupCore): ChannelGroup {
  return makeGroup(engine, core);
}
