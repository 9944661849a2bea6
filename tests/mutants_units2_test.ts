// Unit tests of the send room, the receive queue and the send lane, written to kill the
// mutants that tests/mutants_engine_units_test.ts leaves alive (issue #13, docs/testing.md,
// "mut-units: engine unit files"). Each test drives one class directly; no socket is
// involved. Nothing here asserts a duration: waits are for an outcome.

import { assert, assertEquals, assertFalse, assertStrictEquals } from "@std/assert";
import { Status, TofuError } from "../mod.ts";
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
