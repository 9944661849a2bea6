// A group's receive queue: messages in FIFO order and callers of waitReceive served in
// call order. Every wait cleans up its timer and abort listener when it settles.
// The queue has a bound: at or over it, channels stop reading (backpressure) and
// updateReceiver refuses; reports that cannot be refused (messages handed back, one
// channel_closed per channel) may still go over it, each bounded by another limit.

import type { Message } from "./message.ts";
import { Ring } from "./_ring.ts";
import type { TofuError } from "./status.ts";

interface Waiter {
  resolve: (m: Message | null) => void;
  reject: (reason: unknown) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  done: boolean;
}

export class ReceiveQueue {
  #msgs = new Ring<Message>();
  #waiters = new Ring<Waiter>();
  #shutdown: TofuError | null = null;
  /** Most messages queued before channels stop reading. */
  readonly limit: number;
  // Callbacks of readers paused on a full queue; all are called once it has room.
  #roomWaiters: Array<() => void> = [];

  readonly #resume: number;

  constructor(limit = Infinity) {
    this.limit = limit;
    this.#resume = limit === Infinity ? Infinity : Math.floor(limit / 2);
  }

  get length(): number {
    return this.#msgs.length;
  }

  /** Whether the queue holds `limit` messages or more. */
  get full(): boolean {
    return this.#msgs.length >= this.limit;
  }

  /** Calls `cb` once the queue is below its limit (at once if it is); returns a canceller. */
  whenRoom(cb: () => void): () => void {
    if (!this.full) {
      cb();
      return noop;
    }
    let live = true;
    this.#roomWaiters.push(() => {
      if (live) cb();
    });
    return () => live = false;
  }

  // Paused readers resume once the queue is down to half its bound, not at the first
  // free slot: a reader woken per message read one frame per wake-up, in step with an
  // application that awaits each message (measured 0.6x of a tryReceive drain).
  #shifted(): void {
    if (this.#roomWaiters.length > 0 && this.#msgs.length <= this.#resume) {
      const waiters = this.#roomWaiters;
      this.#roomWaiters = [];
      for (const cb of waiters) cb();
    }
  }

  /** Delivers a message; false if the queue is shut down (the caller keeps it). */
  push(m: Message): boolean {
    if (this.#shutdown) return false;
    for (let w = this.#waiters.shift(); w !== undefined; w = this.#waiters.shift()) {
      if (w.done) continue;
      this.#settle(w);
      w.resolve(m);
      return true;
    }
    this.#msgs.push(m);
    return true;
  }

  tryShift(): Message | null {
    const m = this.#msgs.shift();
    if (m === undefined) return null;
    this.#shifted();
    return m;
  }

  wait(timeoutMs: number, signal: AbortSignal | undefined): Promise<Message | null> {
    if (this.#shutdown) return Promise.reject(this.#shutdown);
    if (signal?.aborted) return Promise.reject(signal.reason);
    const m = this.#msgs.shift();
    if (m !== undefined) {
      this.#shifted();
      return Promise.resolve(m);
    }
    if (timeoutMs <= 0) return Promise.resolve(null);
    return new Promise<Message | null>((resolve, reject) => {
      const w: Waiter = {
        resolve,
        reject,
        timer: undefined,
        signal,
        onAbort: undefined,
        done: false,
      };
      // Register before arming the timer: arming it may run pending microtasks
      // (seen under deno test), and a message they deliver must find this waiter.
      this.#waiters.push(w);
      if (w.done) return;
      if (timeoutMs !== Infinity) {
        w.timer = setTimeout(() => {
          w.timer = undefined;
          this.#settle(w);
          this.#dropSettledHead();
          resolve(null);
        }, timeoutMs);
        if (w.done) {
          clearTimeout(w.timer);
          return;
        }
      }
      if (signal) {
        w.onAbort = () => {
          this.#settle(w);
          this.#dropSettledHead();
          reject(signal.reason);
        };
        signal.addEventListener("abort", w.onAbort, { once: true });
      }
    });
  }

  #settle(w: Waiter): void {
    w.done = true;
    if (w.timer !== undefined) clearTimeout(w.timer);
    w.timer = undefined;
    if (w.signal && w.onAbort) w.signal.removeEventListener("abort", w.onAbort);
    w.onAbort = undefined;
  }

  // Settled waiters are skipped lazily; dropping them from the head keeps a loop of
  // timed-out waits from piling them up.
  #dropSettledHead(): void {
    while (this.#waiters.peek()?.done) this.#waiters.shift();
  }

  /** Rejects every waiter (now and later) with `err`; returns the undelivered messages. */
  shutdown(err: TofuError): Message[] {
    if (!this.#shutdown) this.#shutdown = err;
    for (let w = this.#waiters.shift(); w !== undefined; w = this.#waiters.shift()) {
      if (w.done) continue;
      this.#settle(w);
      w.reject(err);
    }
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const cb of waiters) cb();
    return this.#msgs.drain();
  }
}

function noop(): void {}
