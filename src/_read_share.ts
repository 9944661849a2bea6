// A channel's read share: how many of the messages it read are still out, delivered and
// not yet back in the pool (held by the application, queued for it, or reused by it in a
// WelcomeRequest). At its limit the channel stops reading its socket until one of them
// comes back, so a peer whose messages pile up is held back alone: other channels of the
// engine read on with their own shares (see docs/reliability.md).
//
// A message carries a reference to the share it is charged to, not the channel number, so
// a message of a closed channel can never credit another channel that reuses its number.

import { kShare, type Message } from "./message.ts";

export class ReadShare {
  /** Messages read on the channel and not yet back. */
  held = 0;
  readonly limit: number;
  #wake: (() => void) | null = null;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Whether the channel holds its share: it must not read before one comes back. */
  get full(): boolean {
    return this.held >= this.limit;
  }

  /** Charges `m` (about to be delivered) to this share. */
  charge(m: Message): void {
    this.held++;
    m[kShare] = this;
  }

  release(): void {
    this.held--;
    const wake = this.#wake;
    if (wake !== null && this.held < this.limit) {
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
  const share = m[kShare];
  if (share !== null) {
    m[kShare] = null;
    share.release();
  }
}

function noop(): void {}
