// The engine-owned message pool. Its first messages share one ArrayBuffer slab for their
// initial header and body storage; a message that outgrows its slot keeps the larger buffer.
// Readers take a free message or make one: how much a channel may read is bounded by its
// read share (src/_read_share.ts), not by the pool, which only keeps spares.

import { Message, Owner, ownerOf, setHome, transfer } from "./message.ts";
import { discharge } from "./_read_share.ts";

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

export class MessagePool {
  #free: Message[] = [];
  #reserve: Message[] = [];
  readonly #max: number;

  constructor(initial: number, max: number) {
    if (!Number.isInteger(initial) || initial < 0) {
      throw new RangeError(`Cannot create pool: initialPoolMsgs ${initial} is not an integer >= 0`);
    }
    if (!Number.isInteger(max) || max < 0) {
      throw new RangeError(`Cannot create pool: maxPoolMsgs ${max} is not an integer >= 0`);
    }
    this.#max = Math.max(max, initial);
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
    return this.#fresh();
  }

  #fresh(): Message {
    if (this.#reserve.length === 0) this.#reserve = slabMessages(RESERVE_BATCH);
    const fresh = this.#reserve.pop()!;
    setHome(fresh, this); // for Message[Symbol.dispose]
    return fresh;
  }

  /**
   * A message for a reader to decode a frame into, not reset: decoding overwrites every
   * field (binary header, text headers, body, error), so a reset would be wasted work.
   */
  take(): Message {
    const m = this.#free.pop();
    if (m === undefined) return this.#fresh();
    transfer(m, Owner.Application);
    setHome(m, this);
    return m;
  }

  /**
   * Takes a message back; a message the application does not own is ignored. A received
   * message is given back to its channel's read share, which may resume that reader.
   */
  put(m: Message): void {
    if (ownerOf(m) !== Owner.Application) return;
    // Engine reports are made without storage; pooling them would only add messages.
    const report = m.bhdr.origin === 1 && m.isReport();
    // Not reset here: get() resets and take() overwrites, so one reset per round trip
    // through the pool is enough. The error goes now (it may hold a lot).
    m.error = undefined;
    transfer(m, Owner.Pooled);
    if (!report && this.#free.length < this.#max) this.#free.push(m);
    discharge(m);
  }

  clear(): void {
    this.#free.length = 0;
    this.#reserve.length = 0;
  }
}
