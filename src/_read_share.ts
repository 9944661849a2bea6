// A channel's read share: how many of the messages it read are still out, delivered and
// not yet back in the pool (held by the application, queued for it, or reused by it in a
// WelcomeRequest). At its limit the channel stops reading its socket until one of them
// comes back, so a peer whose messages pile up is held back alone: other channels of the
// engine read on with their own shares (see docs/reliability.md).
// A channel also stops while `window` of its messages wait unread in its group's receive
// queue: the queue is shared by the group's channels, and a flooding peer's backlog there
// would delay every other peer's messages behind it.
//
// A message carries a reference to the share it is charged to, not the channel number, so
// a message of a closed channel can never credit another channel that reuses its number.

import { type Message, setShare, shareOf } from "./message.ts";

export class ReadShare {
  /** Messages read on the channel and not yet back. */
  held = 0;
  /** Of those, messages waiting unread in the group's receive queue. */
  queued = 0;
  readonly limit: number;
  readonly window: number;
  // A reader paused on a full window resumes once the unread messages are down to half
  // of it, not at the first one taken: woken per message, it read one frame per wake-up
  // (a promise and a clock read per frame; 17% of the CPU of a server being flooded).
  readonly #resume: number;
  #wake: (() => void) | null = null;

  constructor(limit: number, window: number) {
    this.limit = limit;
    this.window = window;
    this.#resume = Math.floor(window / 2);
  }

  /** Whether the channel holds its share: it must not read before one comes back. */
  get atLimit(): boolean {
    return this.held >= this.limit;
  }

  /** Whether the channel must not read now (at its share, or its unread window is full). */
  get full(): boolean {
    return this.held >= this.limit || this.queued >= this.window;
  }

  /** Charges `m` (about to be delivered) to this share. */
  charge(m: Message): void {
    this.held++;
    setShare(m, this);
  }

  release(): void {
    this.held--;
    this.check();
  }

  /** Wakes the waiting reader if it may read again (below its share, window half read). */
  check(): void {
    const wake = this.#wake;
    if (wake !== null && this.held < this.limit && this.queued <= this.#resume) {
      this.#wake = null;
      wake();
    }
  }

  /** Calls `cb` once the share is below its limit; the returned function withdraws it. */
  whenFree(cb: () => void): () => void {
    if (!this.full) {
      cb();
      return noop;
    }
    this.#wake = cb;
    return () => {
      if (this.#wake === cb) this.#wake = null;
    };
  }
}

/** A message comes back (put, posted, recycled) or is taken off its channel's share. */
export function discharge(m: Message): void {
  const share = shareOf(m);
  if (share !== null) {
    setShare(m, null);
    share.release();
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
