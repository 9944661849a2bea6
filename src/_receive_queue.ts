// A group's receive queue: messages in FIFO order and callers of waitReceive served in
// call order. Every wait cleans up its abort listener when it settles. Timed waits share
// one deadline timer per queue, re-armed for the earliest deadline: a setTimeout and
// clearTimeout per wait cost ~1.5 us here, a round trip's worth of CPU. The timer keeps
// the process alive only while a timed wait is pending (unref'd otherwise).
// The queue has a bound: at or over it, channels stop reading (backpressure) and
// updateReceiver refuses; reports that cannot be refused (messages handed back, one
// channel_closed per channel) may still go over it, each bounded by another limit.

import { type Message, resolvedWith } from "./message.ts";
import { Ring } from "./_ring.ts";
import { MAX_TIMER_MS } from "./_deadline.ts";
import { dequeued, enqueued } from "./_read_share.ts";
import type { TofuError } from "./status.ts";

interface Waiter {
  resolve: (m: Message | null) => void;
  reject: (reason: unknown) => void;
  /** performance.now() deadline; Infinity for an untimed wait. */
  deadline: number;
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
  // The shared deadline timer, when armed: its time and how many timed waits are live.
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  #timerAt = Infinity;
  #timed = 0;

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
    enqueued(m);
    return true;
  }

  tryShift(): Message | null {
    const m = this.#msgs.shift();
    if (m === undefined) return null;
    dequeued(m);
    this.#shifted();
    return m;
  }

  wait(timeoutMs: number, signal: AbortSignal | undefined): Promise<Message | null> {
    if (this.#shutdown) return Promise.reject(this.#shutdown);
    if (signal?.aborted) return Promise.reject(signal.reason);
    const m = this.#msgs.shift();
    if (m !== undefined) {
      dequeued(m);
      this.#shifted();
      return resolvedWith(m);
    }
    if (timeoutMs <= 0) return Promise.resolve(null);
    return new Promise<Message | null>((resolve, reject) => {
      const w: Waiter = {
        resolve,
        reject,
        deadline: Infinity,
        signal,
        onAbort: undefined,
        done: false,
      };
      this.#waiters.push(w);
      if (timeoutMs !== Infinity) {
        w.deadline = performance.now() + timeoutMs;
        if (this.#timed++ === 0 && this.#timer !== undefined) Deno.refTimer(this.#timer);
        if (w.deadline < this.#timerAt) this.#arm(w.deadline);
      }
      // Arming a timer may run pending microtasks (see #arm); a message they delivered
      // went to this waiter already.
      if (w.done) return;
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

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    // At most MAX_TIMER_MS (a longer delay overflows and fires at once): a timer that fires
    // before the earliest deadline finds nothing expired and is armed again.
    const timer = setTimeout(
      this.#expire,
      Math.min(MAX_TIMER_MS, Math.max(0, at - performance.now())),
    );
    // The first setTimeout of a process runs pending microtasks when called outside one
    // (Deno 2.9). If they armed the timer for an earlier deadline or shut the queue down
    // (either changes #timerAt), this timer is not needed; if they served the last timed
    // wait, it must not be ref'd.
    if (this.#timerAt !== at) {
      clearTimeout(timer);
      return;
    }
    this.#timer = timer;
    if (this.#timed === 0) Deno.unrefTimer(timer);
  }

  // Times out every live wait whose deadline passed, then re-arms for the earliest left.
  #expire = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = performance.now();
    const expired: Waiter[] = [];
    let next = Infinity;
    this.#waiters.forEach((w) => {
      if (w.done || w.deadline === Infinity) return;
      // Timers may fire a fraction of a millisecond early.
      if (w.deadline <= now + 0.5) expired.push(w);
      else if (w.deadline < next) next = w.deadline;
    });
    for (const w of expired) this.#settle(w);
    this.#dropSettledHead();
    if (next !== Infinity) this.#arm(next);
    for (const w of expired) w.resolve(null);
  };

  #settle(w: Waiter): void {
    w.done = true;
    if (w.deadline !== Infinity) {
      w.deadline = Infinity;
      // The timer stays armed (re-arming per wait is what it saves) but no longer keeps
      // the process alive; it finds nothing to do when it fires.
      if (--this.#timed === 0 && this.#timer !== undefined) Deno.unrefTimer(this.#timer);
    }
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
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const waiters = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const cb of waiters) cb();
    const out = this.#msgs.drain();
    for (const m of out) dequeued(m);
    return out;
  }
}

function noop(): void {}
