// What a channel needs from its engine and group; keeps the channel files free of
// imports of the engine itself.

import type { Message } from "./message.ts";
import type { MessagePool } from "./_pool.ts";
import type { ChannelNumbers } from "./_channel_numbers.ts";
import type { TofuError } from "./status.ts";
import type { Deadlines } from "./_deadlines.ts";
import type { Heartbeat } from "./_heartbeat.ts";
import type { HeldBudget } from "./_read_share.ts";

export interface GroupHost {
  /** Hands a message to the application, or recycles it when the group is gone. */
  deliver(m: Message): void;
  /** Whether the group's receive queue is at its bound (channels stop reading). */
  readonly full: boolean;
  /** Calls `cb` once the receive queue is below its bound; returns a canceller. */
  whenRoom(cb: () => void): () => void;
}

export interface EngineHost {
  readonly pool: MessagePool;
  readonly numbers: ChannelNumbers;
  /** Charged bytes one channel may queue before post refuses more. */
  readonly maxQueuedBytes: number;
  /** Accepted connections one listener keeps open; past it new ones are closed at once. */
  readonly maxConnections: number;
  /** The timeouts of I/O channels. */
  readonly deadlines: Deadlines;
  /** Charged bytes all channels together may queue before post refuses more. */
  readonly maxEngineQueuedBytes: number;
  /** Charged bytes queued on all channels now. */
  readonly queuedBytes: number;
  /** Messages one channel may have out (read, not yet back in the pool) before it stops reading. */
  readonly maxChannelHeldMsgs: number;
  /** Charged bytes one channel may have out before it stops reading. */
  readonly maxChannelHeldBytes: number;
  /** What all channels have out, and its bound (maxEngineHeldBytes). */
  readonly heldBudget: HeldBudget;
  /** Tells readers when the event loop is starved (see _heartbeat.ts). */
  readonly heartbeat: Heartbeat;
  /** Adds `delta` (negative to release) to the engine-wide queued bytes. */
  charge(delta: number): void;
  /**
   * Removes a closed channel from the engine's table (posts to it are refused); a listener's
   * number is released too, an I/O channel's once its reports are out (retire).
   */
  release(ch: Channel): void;
  /** A closed I/O channel's reports are out: releases its number and lets go of it. */
  retire(ch: Channel): void;
  /** Registers a new channel. */
  register(ch: Channel): void;
  /** Returns a message the engine is done with to the pool. */
  recycle(m: Message): void;
  /** Queues a closed channel's hand-backs: all closing channels share one slice per turn. */
  handBack(job: HandBack): void;
  /** Withdraws a queued `job` (its group was destroyed: nothing more is handed back). */
  withdrawHandBack(job: HandBack): void;
}

/** A closed channel's unsent messages, handed back a part at a time (see EngineCore). */
export interface HandBack {
  /** Hands back at most `max` messages (then channel_closed once all are); returns how many. */
  step(max: number): number;
  /** True once the channel_closed Signal is out (or the job was withdrawn). */
  readonly finished: boolean;
}

export interface Channel {
  readonly number: number;
  readonly group: GroupHost;
  readonly isListener: boolean;
  /** Starts closing; reports follow unless `silent`. Idempotent. */
  close(status: number, error: TofuError | null, silent?: boolean): void;
  /** Resolves when every task of the channel has settled and its reports are out. */
  readonly done: Promise<void>;
}
