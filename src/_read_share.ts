// A channel's read share: how many of the messages it read are still out, delivered and
// not yet back in the pool (held by the application, queued for it, or reused by it in a
// WelcomeRequest). At its limit the channel stops reading its socket until one of them
// comes back, so a peer whose messages pile up is held back alone: other channels of the
// engine read on with their own shares (see docs/reliability.md).
// A channel also stops while `window` of its messages wait unread in its group's receive
// queue: the queue is shared by the group's channels, and a flooding peer's backlog there
// would delay every other peer's messages behind it.
//
// The share is counted in messages (maxChannelHeldMsgs) and in bytes (maxChannelHeldBytes),
// and the bytes of all channels together are bounded too (maxEngineHeldBytes, see
// HeldBudget): in messages alone, a peer sending the largest frames to an application that
// held them made one channel hold up to 128 MiB, and nothing bounded the channels together.
//
// A message carries a reference to the share it is charged to, not the channel number, so
// a message of a closed channel can never credit another channel that reuses its number.

import { heldBytesOf, type Message, setShare, shareOf } from "./message.ts";

/**
 * What a held message is charged, in bytes: its frame plus the fixed overhead a queued one
 * is charged (QUEUED_MESSAGE_OVERHEAD of src/_send_lane.ts).
 */
export const HELD_MESSAGE_OVERHEAD = 512;

/**
 * Charged bytes a channel may always hold, even past the engine-wide budget: a channel
 * whose peer sends little is never stopped for the ones that filled it (it reads while it
 * holds less, so two of the largest frames, 131,086 bytes each, always fit).
 */
export const ENGINE_HELD_ALLOWANCE = 256 * 1024;

/**
 * Most messages of one channel that wait unread in its group's receive queue (the unread
 * window is `maxPoolMsgs` up to this). Decoding further ahead of the application gains
 * nothing (the frames wait as well in the socket's buffers) and costs: an engine whose pool
 * was sized for a large send window (32,768) let a reader whose socket always had data run
 * tens of thousands of messages ahead of a receiver taking one per `await`, and the messages
 * went cold in the CPU caches before the receiver got to them: that receiver's CPU per
 * message was 2-3x a tryReceive drain's (bench/RESULTS.md).
 */
export const MAX_UNREAD_WINDOW = 1024;

/**
 * The engine-wide bound on held bytes (maxEngineHeldBytes): what all channels' messages
 * not yet back are charged together. A share past its allowance that is stopped by it
 * waits here, and every share waiting is checked again once the total is below it.
 */
export class HeldBudget {
  /** Charged bytes of every channel's messages not yet back. */
  bytes = 0;
  readonly max: number;
  readonly #waiting = new Set<ReadShare>();

  constructor(max: number) {
    this.max = max;
  }

  get over(): boolean {
    return this.bytes >= this.max;
  }

  release(bytes: number): void {
    this.bytes -= bytes;
    if (this.#waiting.size > 0 && this.bytes < this.max) {
      const waiting = [...this.#waiting];
      this.#waiting.clear();
      for (const share of waiting) share.check();
    }
  }

  wait(share: ReadShare): void {
    this.#waiting.add(share);
  }

  unwait(share: ReadShare): void {
    this.#waiting.delete(share);
  }
}

/**
 * Why a share stops its reader (see ReadShare.stoppedBy): None (nothing, or only its
 * window of unread messages: no report), Messages (maxChannelHeldMsgs), Bytes
 * (maxChannelHeldBytes), Engine (maxEngineHeldBytes, past the channel's allowance).
 */
export const Stop = { None: 0, Messages: 1, Bytes: 2, Engine: 3 } as const;
/** One of the values of {@linkcode Stop}. */
export type Stop = typeof Stop[keyof typeof Stop];

export class ReadShare {
  /** Messages read on the channel and not yet back. */
  held = 0;
  /** Their charged bytes (see HELD_MESSAGE_OVERHEAD). */
  heldBytes = 0;
  /** Of those, messages waiting unread in the group's receive queue. */
  queued = 0;
  readonly limit: number;
  readonly byteLimit: number;
  readonly window: number;
  readonly budget: HeldBudget;
  // A reader paused on a full window resumes once the unread messages are down to half
  // of it, not at the first one taken: woken per message, it read one frame per wake-up
  // (a promise and a clock read per frame; 17% of the CPU of a server being flooded).
  readonly #resume: number;
  #wake: (() => void) | null = null;

  constructor(
    limit: number,
    window: number,
    byteLimit = Infinity,
    budget: HeldBudget = new HeldBudget(Infinity),
  ) {
    this.limit = limit;
    this.window = window;
    this.byteLimit = byteLimit;
    this.budget = budget;
    this.#resume = Math.floor(window / 2);
  }

  /** Whether it holds its share of messages (maxChannelHeldMsgs). */
  get atLimit(): boolean {
    return this.held >= this.limit;
  }

  /** What stops the reader now, for its report (None: nothing, or its unread window). */
  get stoppedBy(): Stop {
    if (this.held >= this.limit) return Stop.Messages;
    if (this.heldBytes >= this.byteLimit) return Stop.Bytes;
    return this.#overBudget ? Stop.Engine : Stop.None;
  }

  /** Whether the channel must not read now (at its share, or its unread window is full). */
  get full(): boolean {
    return this.held >= this.limit || this.queued >= this.window ||
      this.heldBytes >= this.byteLimit || this.#overBudget;
  }

  get #overBudget(): boolean {
    return this.heldBytes >= ENGINE_HELD_ALLOWANCE && this.budget.bytes >= this.budget.max;
  }

  /** Charges `m` (decoded, about to be delivered) to this share. */
  charge(m: Message): void {
    const bh = m.bhdr;
    const bytes = 16 + bh.textHeadersLength + bh.bodyLength + HELD_MESSAGE_OVERHEAD;
    this.held++;
    this.heldBytes += bytes;
    this.budget.bytes += bytes;
    setShare(m, this, bytes);
  }

  release(bytes: number): void {
    this.held--;
    this.heldBytes -= bytes;
    this.budget.release(bytes);
    this.check();
  }

  /**
   * Lends `m` room (src/channel.ts, lent room): it stops counting toward this share, not
   * toward the engine's budget (its memory is still held). Returns the bytes it was charged.
   */
  lend(m: Message): number {
    const bytes = heldBytesOf(m);
    setShare(m, null);
    this.held--;
    this.heldBytes -= bytes;
    this.check();
    return bytes;
  }

  /** Takes a message lent room back onto this share (taken by the application, or dropped). */
  reclaim(m: Message, bytes: number): void {
    this.held++;
    this.heldBytes += bytes;
    setShare(m, this, bytes);
  }

  /** Wakes the waiting reader if it may read again (below its share, window half read). */
  check(): void {
    const wake = this.#wake;
    if (
      wake === null || this.held >= this.limit || this.queued > this.#resume ||
      this.heldBytes >= this.byteLimit
    ) {
      return;
    }
    if (this.#overBudget) {
      this.budget.wait(this); // checked again once the engine's total is below its budget
      return;
    }
    this.#wake = null;
    this.budget.unwait(this);
    wake();
  }

  /** Calls `cb` once the share is below its limit; the returned function withdraws it. */
  whenFree(cb: () => void): () => void {
    if (!this.full) {
      cb();
      return noop;
    }
    this.#wake = cb;
    if (this.#overBudget) this.budget.wait(this);
    return () => {
      if (this.#wake === cb) {
        this.#wake = null;
        this.budget.unwait(this);
      }
    };
  }
}

/** A message comes back (put, posted, recycled) or is taken off its channel's share. */
export function discharge(m: Message): void {
  const share = shareOf(m);
  if (share !== null) {
    const bytes = heldBytesOf(m);
    setShare(m, null);
    share.release(bytes);
  }
}

/** `m` enters its group's receive queue (not handed straight to a waiting receiver). */
export function enqueued(m: Message): void {
  const share = shareOf(m) as ReadShare | null;
  if (share !== null) share.queued++;
}

/** `m` left its group's receive queue (taken by the application, or dropped). */
export function dequeued(m: Message): void {
  const share = shareOf(m) as ReadShare | null;
  if (share !== null && share.queued > 0) {
    share.queued--;
    share.check();
  }
}

function noop(): void {}
