/**
 * The engine (tofu's "Ampe"): the message pool, the channel groups and their sockets.
 *
 * @module
 */

import { type ChannelGroup, newChannelGroup } from "./channel_group.ts";
import { EngineCore, GroupCore } from "./_engine_core.ts";
import type { Message } from "./message.ts";
import type { AllocationStrategy } from "./_pool.ts";
import { Status, TofuError } from "./status.ts";

export type { AllocationStrategy } from "./_pool.ts";

/** Options of {@linkcode Engine}. */
export interface EngineOptions {
  /** Messages the pool starts with (default 16). */
  initialPoolMsgs?: number;
  /**
   * Most messages the pool keeps (default 64; raised to `initialPoolMsgs` if smaller). Also
   * the most messages of one channel that wait unread in its group's receive queue, up to
   * 1,024: then that channel pauses reading until the application has taken half of them.
   */
  maxPoolMsgs?: number;
  /** Most channels open at once, listeners included (default and at most 65534). */
  maxChannels?: number;
  /**
   * Most bytes one channel may have queued for sending; past it `post` throws a
   * {@linkcode TofuError} with status `allocation_failed` (default 4 MiB). Each queued
   * message is charged its frame size plus a fixed 512 bytes (its real cost, see
   * docs/reliability.md).
   */
  maxQueuedBytes?: number;
  /**
   * Most accepted connections one listener keeps open; past it new connections are
   * closed at once and the listener's group gets one Signal with status
   * `allocation_failed` per episode (default 10,000; `Infinity` for no limit).
   */
  maxConnections?: number;
  /**
   * Milliseconds an accepted connection may take to send its first frame (the
   * HelloRequest), and a client to get the first frame back (the HelloResponse), connect
   * included. A server closes a late connection with `recv_failed`; a client gets its
   * HelloRequest back with `connect_failed` (default 10,000; 0 turns it off).
   */
  handshakeTimeoutMs?: number;
  /**
   * Milliseconds from the first byte of a frame to its last; a frame that takes longer
   * closes the channel with `recv_failed` (default 30,000; 0 turns it off).
   */
  frameTimeoutMs?: number;
  /**
   * Milliseconds without a byte read or written after which a channel is closed with
   * `channel_closed` (default 0: off).
   */
  idleTimeoutMs?: number;
  /**
   * Milliseconds a write may wait without the socket taking a byte (a peer that does not
   * read); then the channel closes with `send_failed` and its unsent messages come back
   * (default 30,000; 0 turns it off).
   */
  writeStallTimeoutMs?: number;
  /**
   * Most bytes all channels of the engine together may have queued for sending, charged
   * as for `maxQueuedBytes`; past it `post` throws a {@linkcode TofuError} with status
   * `allocation_failed` (default 256 MiB). A channel with less than 64 KiB queued of its
   * own may still queue up to 64 KiB past it, so that channels whose peers do not read
   * cannot starve the others (the total can exceed the budget by that much per channel).
   */
  maxEngineQueuedBytes?: number;
  /**
   * Most messages a group's receive queue holds before its channels stop reading their
   * sockets (backpressure) and `updateReceiver` throws `allocation_failed` (default
   * 16384). Reports that cannot be refused (messages handed back, one `channel_closed`
   * per channel) are still delivered past it.
   */
  maxReceiveQueueMsgs?: number;
  /**
   * Most messages one channel may have out: read from its socket and not yet back in the
   * pool (held by the application, waiting in a receive queue, or reused by it). A channel
   * at this share stops reading its socket, so that peer alone is held back while every
   * other channel reads on with its own share; its group gets one Signal with status
   * `pool_empty` per episode, and any message of the channel that comes back (`put`,
   * `post`) resumes it. Default: `maxPoolMsgs` or 1024, whichever is larger; `Infinity`
   * turns the share off.
   */
  maxChannelHeldMsgs?: number;
  /**
   * Most bytes of messages one channel may have out, as for `maxChannelHeldMsgs`: each
   * message is charged its frame size plus a fixed 512 bytes, and the channel stops
   * reading once it holds this much (it may go past it by one frame), with one Signal
   * with status `pool_empty` per episode. In messages alone a peer sending the largest
   * frames (128 KiB) could make one channel hold 128 MiB (default 16 MiB; `Infinity`
   * turns it off).
   */
  maxChannelHeldBytes?: number;
  /**
   * Most bytes of messages all channels of the engine together may have out, charged as
   * for `maxChannelHeldBytes` (default 256 MiB; `Infinity` turns it off). Past it a
   * channel that holds 256 KiB or more of its own stops reading (one `pool_empty` Signal
   * per episode) until the total is below it again; a channel that holds less reads on,
   * so that peers whose messages pile up cannot starve the others (the total can exceed
   * the budget by that much per channel).
   */
  maxEngineHeldBytes?: number;
  /**
   * TCP listens of this engine bind with `SO_REUSEPORT`, so that engines in several
   * Workers (or processes) listen on one port and the kernel spreads connections over
   * them (default false). Needs Linux and `--unstable-net`; without them a TCP listen
   * fails with `listen_failed` (Deno 2.9.6 would end the process, so tofu checks first).
   * See `docs/workers.md`.
   */
  reusePort?: boolean;
}

let readClosed: (e: Engine) => boolean;

/**
 * The engine: it owns the message pool and every channel, and does all socket I/O.
 * Create groups with {@linkcode Engine.create}, post messages through them, and give
 * received messages back with {@linkcode Engine.put}.
 *
 * @example A server and a client in one process
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Engine, OpCode, TcpClientAddress, TcpServerAddress } from "@tofu/tofu";
 *
 * await using engine = new Engine();
 * const server = engine.create();
 * server.post(new TcpServerAddress("127.0.0.1", 0).format(engine.get("always")));
 * const welcome = (await server.waitReceive())!;
 * const port = Number(welcome.headers.get("~listen_on")!.split("|")[2]);
 * engine.put(welcome);
 *
 * const client = engine.create();
 * client.post(new TcpClientAddress("127.0.0.1", port).format(engine.get("always")));
 * const hello = (await server.waitReceive())!; // the client's HelloRequest
 * hello.bhdr.opCode = OpCode.HelloResponse;
 * server.post(hello);
 * using answer = await client.waitReceive(5000);
 * assertEquals(answer?.bhdr.opCode, OpCode.HelloResponse);
 * ```
 */
export class Engine implements AsyncDisposable {
  readonly #core: EngineCore;

  static {
    readClosed = (e) => e.#core.closed;
  }

  /**
   * Creates an engine.
   *
   * @param options Pool and limit settings.
   * @throws {RangeError} If an option is out of range.
   */
  constructor(options: EngineOptions = {}) {
    const initial = options.initialPoolMsgs ?? 16;
    const maxPool = Math.max(options.maxPoolMsgs ?? 64, initial);
    this.#core = new EngineCore({
      initialPoolMsgs: initial,
      maxPoolMsgs: maxPool,
      maxChannels: options.maxChannels ?? 65534,
      maxQueuedBytes: options.maxQueuedBytes ?? 4 * 1024 * 1024,
      maxConnections: options.maxConnections ?? 10_000,
      timeouts: {
        handshake: options.handshakeTimeoutMs ?? 10_000,
        frame: options.frameTimeoutMs ?? 30_000,
        idle: options.idleTimeoutMs ?? 0,
        writeStall: options.writeStallTimeoutMs ?? 30_000,
      },
      maxEngineQueuedBytes: options.maxEngineQueuedBytes ?? 256 * 1024 * 1024,
      maxReceiveQueueMsgs: options.maxReceiveQueueMsgs ?? 16384,
      maxChannelHeldMsgs: options.maxChannelHeldMsgs ?? Math.max(maxPool, 1024),
      maxChannelHeldBytes: options.maxChannelHeldBytes ?? 16 * 1024 * 1024,
      maxEngineHeldBytes: options.maxEngineHeldBytes ?? 256 * 1024 * 1024,
      reusePort: options.reusePort ?? false,
    });
  }

  /**
   * Takes a message from the pool, or makes a new one when the pool is empty.
   *
   * @param strategy `"always"`.
   * @returns A reset message owned by the caller.
   */
  get(strategy: "always"): Message;
  /**
   * Takes a message from the pool.
   *
   * @param strategy `"poolOnly"` returns `null` when the pool is empty.
   * @returns A reset message owned by the caller, or `null`.
   */
  get(strategy: "poolOnly"): Message | null;
  /**
   * Takes a message from the pool.
   *
   * @param strategy `"always"` makes a new message when the pool is empty;
   * `"poolOnly"` returns `null` then.
   * @returns A reset message owned by the caller, or `null`.
   */
  get(strategy: AllocationStrategy): Message | null;
  get(strategy: AllocationStrategy): Message | null {
    return this.#core.pool.get(strategy);
  }

  /**
   * Gives a message back to the pool (it is reset). `null`, a message already put,
   * and a posted message are ignored. A full pool drops the message.
   *
   * @param msg The message.
   */
  put(msg: Message | null | undefined): void {
    if (msg) this.#core.pool.put(msg);
  }

  /** Messages currently in the pool. */
  get poolSize(): number {
    return this.#core.pool.size;
  }

  /** Channels currently open (listeners included). */
  get channelCount(): number {
    return this.#core.channels.size;
  }

  /**
   * Creates a channel group.
   *
   * @returns The group.
   * @throws {TofuError} With status `shutdown_started` after {@linkcode Engine.close}.
   */
  create(): ChannelGroup {
    if (this.#core.closed) {
      throw new TofuError(Status.shutdownStarted, "Cannot create group: the engine is closed");
    }
    const core = new GroupCore(this.#core);
    this.#core.groups.add(core);
    const group = newChannelGroup(this.#core, core);
    groupCores.set(group, core);
    return group;
  }

  /**
   * Destroys a group: its channels close (peers see their connections close), its
   * pending messages are dropped without reports, and its waits reject with
   * `shutdown_started`. A second call resolves with the first. It resolves once the group's
   * channels have closed, a listen still under way included (a socket it bound is closed).
   *
   * @param group A group of this engine.
   * @throws {TypeError} If the group belongs to another engine.
   */
  async destroy(group: ChannelGroup): Promise<void> {
    const core = groupCores.get(group);
    if (!core || core.engine !== this.#core) {
      throw new TypeError("Cannot destroy group: it belongs to another engine");
    }
    await this.#core.destroy(core);
  }

  /**
   * Closes every group and channel. It resolves once they have closed; a second call
   * resolves with the first.
   */
  async close(): Promise<void> {
    await this.#core.close();
  }

  /** Same as {@linkcode Engine.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

const groupCores = new WeakMap<ChannelGroup, GroupCore>();

/** Library-internal: whether `e` has been closed. */
export function engineClosed(e: Engine): boolean {
  return readClosed(e);
}
