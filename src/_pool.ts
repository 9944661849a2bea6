// The engine-owned message pool. Its first messages share one ArrayBuffer slab for their
// initial header and body storage; a message that outgrows its slot keeps the larger buffer.

import { Message, Owner, ownerOf, setHome, transfer } from "./message.ts";
import { Ring } from "./_ring.ts";
import { isEngineReport } from "./_report.ts";

const HEADER_SLOT = 128;
const BODY_SLOT = 256;
const SLOT = HEADER_SLOT + BODY_SLOT;
// Allocating a typed array costs about a microsecond in Deno, so new messages are made
// a slab at a time; the spares wait in a reserve that only get("always") draws from.
const RESERVE_BATCH = 64;

function slabMessages(count: number): Message[] {
  const slab = new ArrayBuffer(count * SLOT);
  const out: Message[] = [];
  for (let i = 0; i < count; i++) {
    const base = i * SLOT;
    out.push(
      new Message(
        new Uint8Array(slab, base, HEADER_SLOT),
        new Uint8Array(slab, base + HEADER_SLOT, BODY_SLOT),
      ),
    );
  }
  return out;
}

/** How `get` behaves on an empty pool: make a new message, or return null. */
export type AllocationStrategy = "always" | "poolOnly";

/** A channel's wait for a free message; see {@linkcode MessagePool.wait}. */
export interface PoolWait {
  /** Withdraws the wait; a later put() serves the next live waiter instead. */
  cancel(): void;
}

class Waiter implements PoolWait {
  live = true;
  constructor(readonly cb: (m: Message) => void) {}
  cancel(): void {
    this.live = false;
  }
}

export class MessagePool {
  #free: Message[] = [];
  #reserve: Message[] = [];
  readonly #max: number;
  // Messages made for readers beyond the initial ones (see take), less those dropped by a
  // full pool: the receive window grows from initialPoolMsgs to maxPoolMsgs.
  #grown = 0;
  readonly #growth: number;
  // Messages put back that wake starved readers at once (see #soon).
  readonly #batch: number;
  // Channels waiting for a free message (backpressure), served first come, first served.
  // A waiter that got its message and still starves waits again at the tail: round robin.
  readonly #waiters = new Ring<Waiter>();

  constructor(initial: number, max: number) {
    if (!Number.isInteger(initial) || initial < 0) {
      throw new RangeError(`Cannot create pool: initialPoolMsgs ${initial} is not an integer >= 0`);
    }
    if (!Number.isInteger(max) || max < 0) {
      throw new RangeError(`Cannot create pool: maxPoolMsgs ${max} is not an integer >= 0`);
    }
    this.#max = Math.max(max, initial);
    this.#growth = this.#max - initial;
    this.#batch = Math.max(1, Math.min(16, Math.floor(this.#max / 4)));
    for (const m of slabMessages(initial)) {
      transfer(m, Owner.Pooled);
      this.#free.push(m);
    }
  }

  get size(): number {
    return this.#free.length;
  }

  get max(): number {
    return this.#max;
  }

  get(strategy: AllocationStrategy): Message | null {
    const m = this.#free.pop();
    if (m) {
      // Reset here too: a message changed after it was posted or put (misuse) comes
      // out clean all the same.
      m.reset();
      transfer(m, Owner.Application);
      setHome(m, this); // for Message[Symbol.dispose]
      return m;
    }
    if (strategy === "poolOnly") return null;
    if (strategy !== "always") {
      throw new TypeError(`Cannot get message: unknown strategy "${strategy}"`);
    }
    if (this.#reserve.length === 0) this.#reserve = slabMessages(RESERVE_BATCH);
    const fresh = this.#reserve.pop()!;
    setHome(fresh, this); // for Message[Symbol.dispose]
    return fresh;
  }

  /**
   * A message for a channel's reader: a free one, else a new one while fewer than
   * `max - initial` were made this way (so the messages in circulation for reading grow
   * up to the pool's maximum), else null (the reader starves: backpressure).
   */
  take(): Message | null {
    const m = this.get("poolOnly");
    if (m !== null || this.#grown >= this.#growth) return m;
    this.#grown++;
    if (this.#reserve.length === 0) this.#reserve = slabMessages(RESERVE_BATCH);
    const fresh = this.#reserve.pop()!;
    setHome(fresh, this); // for Message[Symbol.dispose]
    return fresh;
  }

  /**
   * Takes a message back; a message the application does not own is ignored. If a
   * channel waits for a message, waiting readers are served on the next macrotask, first
   * come first served, from every message put back by then.
   */
  put(m: Message): void {
    if (ownerOf(m) !== Owner.Application) return;
    // Engine reports are made without storage; pooling them would only add messages.
    const report = m.bhdr.origin === 1 && isEngineReport(m);
    m.reset();
    transfer(m, Owner.Pooled);
    if (this.#waiters.length > 0) {
      // A starved reader woken per put read one frame per wake-up, in step with an
      // application that puts messages back one at a time; woken on a macrotask, it finds
      // every message put back meanwhile (even a report: it feeds a starved reader).
      this.#free.push(m);
      if (!this.#wakePending) {
        this.#wakePending = true;
        queueMicrotask(this.#soon);
      }
      return;
    }
    if (report) return;
    if (this.#free.length < this.#max) this.#free.push(m);
    else if (this.#grown > 0) this.#grown--; // dropped: room to grow again
  }

  // setImmediate, not setTimeout(0): Deno runs a zero timer 1-2 ms later (measured ~2 ms
  // per chained timer here, against ~1.6 us for setImmediate).
  #wakeTimer: ReturnType<typeof setImmediate> | undefined = undefined;
  #wakePending = false;

  // At the end of the current job: with a batch of messages put back (an application
  // that drains its queue and puts them back synchronously), serve the waiters now;
  // with fewer, wait for the next macrotask, which collects what is put back until then.
  #soon = (): void => {
    if (this.#wakeTimer !== undefined) return;
    if (this.#free.length >= this.#batch) this.#wake();
    else this.#wakeTimer = setImmediate(this.#wake);
  };

  #wake = (): void => {
    if (this.#wakeTimer !== undefined) clearImmediate(this.#wakeTimer);
    this.#wakeTimer = undefined;
    this.#wakePending = false;
    while (this.#waiters.length > 0) {
      const w = this.#waiters.peek()!;
      if (!w.live) {
        this.#waiters.shift();
        continue;
      }
      const m = this.take();
      if (m === null) return;
      this.#waiters.shift();
      w.live = false;
      // The waiting reader holds it until it delivers it: a stale reference cannot post it.
      transfer(m, Owner.Engine);
      w.cb(m);
    }
  };

  /**
   * Registers `cb` to receive a message put back (owned by the engine until the caller
   * delivers it; served on the macrotask after the put), or at once a free one. The returned handle withdraws the wait.
   */
  wait(cb: (m: Message) => void): PoolWait {
    const w = new Waiter(cb);
    const m = this.take();
    if (m !== null) {
      w.live = false;
      cb(m);
    } else this.#waiters.push(w);
    return w;
  }

  clear(): void {
    if (this.#wakeTimer !== undefined) clearImmediate(this.#wakeTimer);
    this.#wakeTimer = undefined;
    this.#wakePending = false;
    this.#free.length = 0;
    this.#reserve.length = 0;
    for (let w = this.#waiters.shift(); w !== undefined; w = this.#waiters.shift()) w.live = false;
  }
}
