// Detects a starved event loop. A socket that always has data completes reads without a
// turn of the event loop, and so does a reader fed message by message from put(): such
// readers can chain microtasks forever, so that timers, accepts and every other channel
// wait. Readers arm a zero-delay timer (the heartbeat) as they go and count how often they
// went on since it last fired. A reader that went on SPINS times while the timer has been
// pending for STARVED_MS waits for it, which lets the loop turn. The count keeps a busy
// but healthy loop on a loaded machine (where wall time passes while the process does not
// run) from being taken for a starved one.

const STARVED_MS = 2;
const SPINS = 64;

export class Heartbeat {
  #timer: ReturnType<typeof setTimeout> | undefined = undefined;
  #armedAt = 0;
  #waiters: Array<() => void> = [];
  /** Incremented each time the heartbeat fires. */
  epoch = 0;

  /**
   * Arms the heartbeat if needed and tells whether a reader that went on `spins` times in
   * the current epoch should wait for it (then call `wait`).
   */
  starved(spins: number): boolean {
    if (this.#timer === undefined) {
      this.#armedAt = performance.now();
      this.#timer = setTimeout(() => this.#beat(), 0);
      return false;
    }
    return spins >= SPINS && performance.now() - this.#armedAt >= STARVED_MS;
  }

  /** Calls `cb` at the next heartbeat; returns a canceller. */
  wait(cb: () => void): () => void {
    if (this.#timer === undefined) this.starved(0);
    let live = true;
    this.#waiters.push(() => {
      if (live) cb();
    });
    return () => live = false;
  }

  #beat(): void {
    this.#timer = undefined;
    this.epoch++;
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
