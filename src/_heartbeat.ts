// Detects a starved event loop. A socket that always has data completes reads without a
// turn of the event loop, and so does a reader fed message by message from put(): such
// readers can chain microtasks forever, so that timers, accepts and every other channel
// wait. Readers arm a zero-delay timer (the heartbeat) as they go; while it fires, the
// loop turns and nobody waits. Once it has been pending for STARVED_MS, the loop is
// starved: readers then wait for it, which lets the loop turn.

const STARVED_MS = 2;

export class Heartbeat {
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  #armedAt = 0;
  #waiters: Array<() => void> = [];

  /** Arms the heartbeat if needed; true if the loop is starved (then call `wait`). */
  starved(): boolean {
    if (this.#timer === undefined) {
      this.#armedAt = performance.now();
      this.#timer = setTimeout(() => this.#beat(), 0);
      return false;
    }
    return performance.now() - this.#armedAt >= STARVED_MS;
  }

  /** Calls `cb` at the next heartbeat; returns a canceller. */
  wait(cb: () => void): () => void {
    if (this.#timer === undefined) this.starved();
    let live = true;
    this.#waiters.push(() => {
      if (live) cb();
    });
    return () => live = false;
  }

  #beat(): void {
    this.#timer = undefined;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const cb of waiters) cb();
  }

  /** Stops the timer (engine close); pending waiters are called. */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#beat();
  }
}
