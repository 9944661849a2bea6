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
 * The timers armed through setTimeout while installed, as the event loop holds them: a
 * timer is pending until it fires or is cleared, and keeps the process alive unless it
 * was unref'd (Deno.unrefTimer; Deno.refTimer undoes it). Deno's test sanitizers do not
 * look at timers, so a timer left behind is found here.
 */
class TimerLedger implements Disposable {
  readonly #pending = new Map<unknown, { ms: number; ref: boolean }>();
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
    const real = this.#real;
    this.#g.setTimeout = (fn: () => void, ms = 0) => {
      const id = real.setTimeout(() => {
        this.#pending.delete(id);
        fn();
      }, ms);
      this.#pending.set(id, { ms, ref: true });
      return id;
    };
    this.#g.clearTimeout = (id: unknown) => {
      this.#pending.delete(id);
      real.clearTimeout(id);
    };
    this.#d.refTimer = (id: unknown) => {
      const t = this.#pending.get(id);
      if (t) t.ref = true;
      real.refTimer(id);
    };
    this.#d.unrefTimer = (id: unknown) => {
      const t = this.#pending.get(id);
      if (t) t.ref = false;
      real.unrefTimer(id);
    };
  }

  /** Timers armed and neither fired nor cleared. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Pending timers that keep the process alive. */
  get keepingAlive(): number {
    return [...this.#pending.values()].filter((t) => t.ref).length;
  }

  [Symbol.dispose](): void {
    Object.assign(this.#g, {
      setTimeout: this.#real.setTimeout,
      clearTimeout: this.#real.clearTimeout,
    });
    Object.assign(this.#d, { refTimer: this.#real.refTimer, unrefTimer: this.#real.unrefTimer });
  }
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
  using timers = new TimerLedger();
  const q = new ReceiveQueue();
  const hour = q.wait(3_600_000, undefined);
  assertEquals([timers.pending, timers.keepingAlive], [1, 1]);
  const short = q.wait(5, undefined);
  assertEquals(timers.pending, 1, "the hour-long timer was cleared, one timer for both");
  const m = new Message();
  q.push(m);
  assertStrictEquals(await hour, m, "the hour-long wait is served first");
  assertEquals(await alive(short), null);
  assertEquals(timers.pending, 0, "no timer left: nothing keeps the process alive");
});
