// A stepped clock for unit tests of timer users (the receive queue, the send room): it stands
// in for performance.now(), setTimeout, clearTimeout, Deno.refTimer and Deno.unrefTimer.

/**
 * A stepped clock and the timers armed on it: while installed, `performance.now()` returns
 * `now`, and setTimeout, clearTimeout, Deno.refTimer and Deno.unrefTimer only record; a
 * timer fires when the test advances the clock past its time (or fires it early on
 * purpose). A timer is pending until it fires or is cleared, and keeps the process alive
 * unless unref'd. (Deno's test sanitizers do not look at timers, so a timer left behind is
 * found here.)
 */
export class FakeTime implements Disposable {
  now = 1000;
  /** Called inside every setTimeout, before it returns (as when arming runs microtasks). */
  onArm: (() => void) | null = null;
  /** The delay of every setTimeout, in order. */
  readonly asked: number[] = [];
  readonly #timers = new Map<number, { fn: () => void; at: number; ref: boolean }>();
  #ids = 0;
  readonly #g = globalThis as unknown as {
    setTimeout(fn: () => void, ms?: number): unknown;
    clearTimeout(id: unknown): void;
  };
  readonly #d = Deno as unknown as {
    refTimer(id: unknown): void;
    unrefTimer(id: unknown): void;
  };
  readonly #real = {
    setTimeout: this.#g.setTimeout,
    clearTimeout: this.#g.clearTimeout,
    refTimer: this.#d.refTimer,
    unrefTimer: this.#d.unrefTimer,
  };

  constructor() {
    performance.now = () => this.now;
    this.#g.setTimeout = (fn: () => void, ms = 0) => {
      const id = ++this.#ids;
      this.asked.push(ms);
      // As in Deno: a delay past 2^31 - 1 ms overflows, and the timer fires after 1 ms.
      const delay = ms > 2 ** 31 - 1 ? 1 : Math.max(0, ms);
      this.#timers.set(id, { fn, at: this.now + delay, ref: true });
      this.onArm?.();
      return id;
    };
    this.#g.clearTimeout = (id: unknown) => {
      this.#timers.delete(id as number);
    };
    this.#d.refTimer = (id: unknown) => {
      const t = this.#timers.get(id as number);
      if (t) t.ref = true;
    };
    this.#d.unrefTimer = (id: unknown) => {
      const t = this.#timers.get(id as number);
      if (t) t.ref = false;
    };
  }

  /** Timers armed and neither fired nor cleared. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Pending timers that keep the process alive. */
  get keepingAlive(): number {
    return [...this.#timers.values()].filter((t) => t.ref).length;
  }

  /** The time the earliest pending timer fires at (Infinity if none). */
  get nextAt(): number {
    return Math.min(...[...this.#timers.values()].map((t) => t.at));
  }

  /** Sets the clock to `to` and fires every timer due by then, earliest first. */
  advance(to: number): void {
    this.now = to;
    for (let fired = 0;; fired++) {
      if (fired === 1000) throw new Error("timers keep firing without the clock moving");
      const due = [...this.#timers].filter(([, t]) => t.at <= to).sort((a, b) => a[1].at - b[1].at);
      if (due.length === 0) return;
      const [id, t] = due[0]!;
      this.#timers.delete(id);
      t.fn();
    }
  }

  /** Fires the earliest pending timer with the clock at `at` (before its time: early). */
  fireEarly(at: number): void {
    const [id, t] = [...this.#timers].sort((a, b) => a[1].at - b[1].at)[0]!;
    this.now = at;
    this.#timers.delete(id);
    t.fn();
  }

  [Symbol.dispose](): void {
    delete (performance as { now?: unknown }).now;
    Object.assign(this.#g, {
      setTimeout: this.#real.setTimeout,
      clearTimeout: this.#real.clearTimeout,
    });
    Object.assign(this.#d, { refTimer: this.#real.refTimer, unrefTimer: this.#real.unrefTimer });
  }
}
