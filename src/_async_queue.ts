// An unbounded FIFO with async takers, for the Peers layer: a ring of items (no
// Array.shift) and takers served in call order. close() ends it; takers then get `done`.

const DONE = Symbol("done");
/** What `take` resolves with once the queue is closed and empty. */
export type Done = typeof DONE;
export const done: Done = DONE;

export class AsyncQueue<T> {
  #items: Array<T | undefined> = [];
  #head = 0;
  #takers: Array<((v: T | Done) => void) | undefined> = [];
  #takersHead = 0;
  #closed = false;

  get closed(): boolean {
    return this.#closed;
  }

  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Whether a taker waits (the queue is empty). */
  get waiting(): boolean {
    return this.#takersHead < this.#takers.length;
  }

  /** Calls `fn` with each queued item, in order. */
  forEach(fn: (v: T) => void): void {
    for (let i = this.#head; i < this.#items.length; i++) fn(this.#items[i]!);
  }

  /** Adds an item; returns false (and keeps nothing) once the queue is closed. */
  push(v: T): boolean {
    if (this.#closed) return false;
    if (this.#takersHead < this.#takers.length) {
      const take = this.#takers[this.#takersHead]!;
      this.#takers[this.#takersHead++] = undefined;
      this.#compactTakers();
      take(v);
      return true;
    }
    this.#items.push(v);
    return true;
  }

  /** The next item, or `done` once the queue is closed and empty. */
  take(): Promise<T | Done> {
    if (this.#head < this.#items.length) {
      return Promise.resolve(this.#shift());
    }
    if (this.#closed) return Promise.resolve(done);
    return new Promise((resolve) => this.#takers.push(resolve));
  }

  /** Ends the queue: waiting takers get `done`; queued items can still be taken. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (let i = this.#takersHead; i < this.#takers.length; i++) this.#takers[i]?.(done);
    this.#takers.length = 0;
    this.#takersHead = 0;
  }

  /** Removes and returns every queued item. */
  drain(): T[] {
    const out = this.#items.slice(this.#head) as T[];
    this.#items.length = 0;
    this.#head = 0;
    return out;
  }

  #shift(): T {
    const v = this.#items[this.#head]!;
    this.#items[this.#head++] = undefined;
    if (this.#head === this.#items.length) {
      this.#items.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return v;
  }

  #compactTakers(): void {
    if (this.#takersHead === this.#takers.length) {
      this.#takers.length = 0;
      this.#takersHead = 0;
    }
  }
}
