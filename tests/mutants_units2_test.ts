// Unit tests of the send room, the receive queue and the send lane, written to kill the
// mutants that tests/mutants_engine_units_test.ts leaves alive (issue #13, docs/testing.md,
// "mut-units: engine unit files"). Each test drives one class directly; no socket is
// involved. Nothing here asserts a duration: waits are for an outcome.

import { assert, assertEquals, assertFalse, assertStrictEquals } from "@std/assert";
import { Message, Status, TofuError } from "../mod.ts";
import { ReceiveQueue } from "../src/_receive_queue.ts";
import { SendRoom } from "../src/_send_room.ts";

/**
 * An AbortSignal whose abort listeners are counted, as the signal itself holds them: a
 * listener added with `{ once: true }` is let go when it runs, any other stays until it is
 * removed. An application that reuses one signal for many waits (a shutdown signal, say)
 * must not collect a listener per wait that ended.
 */
class CountedSignal {
  readonly #ac = new AbortController();
  readonly signal: AbortSignal = this.#ac.signal;
  // Listener -> the wrapper registered for it on the real signal.
  readonly #held = new Map<EventListener, EventListener>();

  constructor() {
    const real = this.signal as EventTarget;
    const add = real.addEventListener.bind(real);
    const remove = real.removeEventListener.bind(real);
    real.addEventListener = (
      type: string,
      fn: EventListener,
      options?: boolean | AddEventListenerOptions,
    ) => {
      if (type !== "abort" || this.#held.has(fn)) return add(type, fn, options);
      const once = typeof options === "object" && options.once === true;
      const wrapper: EventListener = (e) => {
        if (once) this.#held.delete(fn);
        fn(e);
      };
      this.#held.set(fn, wrapper);
      add(type, wrapper, options);
    };
    real.removeEventListener = (
      type: string,
      fn: EventListener,
      options?: boolean | EventListenerOptions,
    ) => {
      const wrapper = this.#held.get(fn);
      if (type !== "abort" || wrapper === undefined) return remove(type, fn, options);
      this.#held.delete(fn);
      remove(type, wrapper, options);
    };
  }

  /** Abort listeners the signal still holds. */
  get listeners(): number {
    return this.#held.size;
  }

  abort(reason?: unknown): void {
    this.#ac.abort(reason);
  }
}

/**
 * A stepped clock and the timers armed on it: while installed, `performance.now()` returns
 * `now`, and setTimeout, clearTimeout, Deno.refTimer and Deno.unrefTimer only record; a
 * timer fires when the test advances the clock past its time (or fires it early on
 * purpose). A timer is pending until it fires or is cleared, and keeps the process alive
 * unless unref'd. (Deno's test sanitizers do not look at timers, so a timer left behind is
 * found here.)
 */
class FakeTime implements Disposable {
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
      this.#timers.set(id, { fn, at: this.now + Math.max(0, ms), ref: true });
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

/** Resolves once the promise reactions queued so far have run. */
async function settled(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

// ---- SendRoom -------------------------------------------------------------------------

Deno.test("SendRoom: a wait that ends leaves no abort listener on its signal", async () => {
  const room = new SendRoom();
  const shared = new CountedSignal();
  // Woken by room: the listener is removed.
  const woken = room.wait(100, 10, shared.signal);
  assertEquals(shared.listeners, 1, "a waiting sender listens for the abort");
  room.update(10);
  await woken;
  assertEquals(shared.listeners, 0, "woken: the listener is removed");
  // Woken while another sender with the same signal keeps waiting.
  const first = room.wait(100, 50, shared.signal);
  const second = room.wait(100, 5, shared.signal);
  assertEquals(shared.listeners, 2);
  room.update(50);
  await first;
  assertEquals(shared.listeners, 1, "only the woken sender's listener is removed");
  // Rejected by close: the listener is removed.
  const err = new TofuError(Status.channelClosed, "Cannot send: closed");
  room.close(err);
  assertStrictEquals(await second.catch((e) => e), err);
  assertEquals(shared.listeners, 0, "closed: the listener is removed");
  assertFalse(shared.signal.aborted);
});

Deno.test("SendRoom: an aborted wait leaves no abort listener on its signal", async () => {
  const room = new SendRoom();
  const own = new CountedSignal();
  const reason = new Error("stop");
  const aborted = room.wait(100, 1, own.signal);
  const other = room.wait(100, 1, undefined);
  own.abort(reason);
  assertStrictEquals(await aborted.catch((e) => e), reason);
  assertEquals(own.listeners, 0, "the listener is let go once it ran");
  assert(room.waiting, "the other sender still waits");
  room.update(0);
  await other;
  assertFalse(room.waiting);
});

// ---- ReceiveQueue ---------------------------------------------------------------------

/** Awaits `p` while a timer keeps the event loop alive (the queue's timer may be unref'd). */
async function alive<T>(p: Promise<T>): Promise<T> {
  const keep = setInterval(() => {}, 1000);
  try {
    return await p;
  } finally {
    clearInterval(keep);
  }
}

Deno.test("ReceiveQueue: a wait that ends leaves no abort listener on its signal", async () => {
  const q = new ReceiveQueue();
  const shared = new CountedSignal();
  // Served by a message.
  const served = q.wait(Infinity, shared.signal);
  const timedServed = q.wait(10_000, shared.signal);
  assertEquals(shared.listeners, 2);
  const [m1, m2] = [new Message(), new Message()];
  q.push(m1);
  q.push(m2);
  assertStrictEquals(await served, m1);
  assertStrictEquals(await timedServed, m2);
  assertEquals(shared.listeners, 0, "served: the listeners are removed");
  // Timed out.
  const timedOut = q.wait(5, shared.signal);
  assertEquals(shared.listeners, 1);
  assertEquals(await alive(timedOut), null);
  assertEquals(shared.listeners, 0, "timed out: the listener is removed");
  // Aborted (its own signal) while another wait with the shared signal goes on.
  const own = new CountedSignal();
  const aborted = q.wait(Infinity, own.signal);
  const rejected = q.wait(Infinity, shared.signal);
  own.abort(new Error("stop"));
  assertEquals((await aborted.catch((e) => e)).message, "stop");
  assertEquals(own.listeners, 0, "aborted: the listener is let go");
  assertEquals(shared.listeners, 1);
  // Rejected by shutdown.
  const err = new TofuError(Status.shutdownStarted, "Cannot receive: closing");
  q.shutdown(err);
  assertStrictEquals(await rejected.catch((e) => e), err);
  assertEquals(shared.listeners, 0, "shut down: the listener is removed");
  assertFalse(shared.signal.aborted);
});

Deno.test("ReceiveQueue: an earlier deadline replaces the armed timer; no timer outlives the waits", async () => {
  using time = new FakeTime();
  const q = new ReceiveQueue();
  const hour = q.wait(3_600_000, undefined);
  assertEquals([time.pending, time.keepingAlive], [1, 1]);
  const short = q.wait(5, undefined);
  assertEquals(time.pending, 1, "the hour-long timer was cleared: one timer for both");
  assertEquals(time.asked, [3_600_000, 5], "each armed for exactly its deadline");
  const m = new Message();
  q.push(m);
  assertStrictEquals(await hour, m, "the hour-long wait is served first");
  assertEquals(time.keepingAlive, 1, "the 5 ms wait still keeps the process alive");
  time.advance(1005);
  assertEquals(await short, null);
  assertEquals(time.pending, 0, "no timer left: nothing keeps the process alive");
});

Deno.test("ReceiveQueue: a wait ends when the timer fires up to half a millisecond early, not earlier", async () => {
  using time = new FakeTime();
  const q = new ReceiveQueue();
  const results: Array<Message | null> = [];
  q.wait(10, undefined).then((m) => results.push(m)); // deadline 1010
  time.now = 1000.25;
  q.wait(10, undefined).then((m) => results.push(m)); // deadline 1010.25
  // The timer fires half a millisecond before the first deadline: that wait has ended.
  time.fireEarly(1009.5);
  await settled();
  assertEquals(results, [null], "ended at its deadline less the half millisecond of slack");
  // The second is 0.75 ms away: not ended, the timer is armed again for its deadline.
  assertEquals([time.pending, time.nextAt, time.asked.at(-1)], [1, 1010.25, 0.75]);
  time.fireEarly(1009.7); // 0.55 ms early: too early
  await settled();
  assertEquals(results, [null], "not ended 0.55 ms before its deadline");
  assertEquals(time.nextAt, 1010.25);
  time.advance(1010.25);
  await settled();
  assertEquals(results, [null, null]);
  assertEquals(time.pending, 0);
});

Deno.test("ReceiveQueue: waits with the same deadline share the armed timer", async () => {
  using time = new FakeTime();
  const q = new ReceiveQueue();
  const a = q.wait(20, undefined);
  const b = q.wait(20, undefined);
  const c = q.wait(30, undefined);
  assertEquals(time.asked, [20], "one timer armed, for the earliest deadline");
  time.advance(1020);
  assertEquals([await a, await b], [null, null]);
  assertEquals(time.asked, [20, 10], "then one for the next deadline");
  time.advance(1030);
  assertEquals(await c, null);
  assertEquals(time.pending, 0);
});

Deno.test("ReceiveQueue: shutdown clears the armed timer", async () => {
  using time = new FakeTime();
  const q = new ReceiveQueue();
  const w = q.wait(1000, undefined);
  assertEquals(time.pending, 1);
  const err = new TofuError(Status.shutdownStarted, "Cannot receive: closing");
  q.shutdown(err);
  assertStrictEquals(await w.catch((e) => e), err);
  assertEquals(time.pending, 0, "no timer left behind by a shut down queue");
});

Deno.test("ReceiveQueue: a message delivered while the timer is armed ends the wait; no abort listener is added", async () => {
  using time = new FakeTime();
  const q = new ReceiveQueue();
  const shared = new CountedSignal();
  const m = new Message();
  // Arming a timer may run pending microtasks, and one of them may deliver a message.
  time.onArm = () => {
    time.onArm = null;
    q.push(m);
  };
  const w = q.wait(50, shared.signal);
  assertStrictEquals(await w, m);
  assertEquals(shared.listeners, 0, "the wait had ended: nothing to abort");
  assertEquals(q.length, 0);
});
