// What a channel needs from its engine and group; keeps the channel files free of
// imports of the engine itself.

import type { Message } from "./message.ts";
import type { MessagePool } from "./pool.ts";
import type { ChannelNumbers } from "./_channel_numbers.ts";
import type { TofuError } from "./status.ts";
import type { Deadlines } from "./_deadlines.ts";

export interface GroupHost {
  /** Hands a message to the application, or recycles it when the group is gone. */
  deliver(m: Message): void;
}

export interface EngineHost {
  readonly pool: MessagePool;
  readonly numbers: ChannelNumbers;
  /** Outgoing bytes one channel may queue before post refuses more. */
  readonly maxQueuedBytes: number;
  /** Accepted connections one listener keeps open; past it new ones are closed at once. */
  readonly maxConnections: number;
  /** The timeouts of I/O channels. */
  readonly deadlines: Deadlines;
  /** Removes a closed channel from the engine's tables and releases its number. */
  release(ch: Channel): void;
  /** Registers a new channel. */
  register(ch: Channel): void;
  /** Returns a message the engine is done with to the pool. */
  recycle(m: Message): void;
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
