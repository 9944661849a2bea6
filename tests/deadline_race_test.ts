// Deadline.race() and Deadline.signal (src/_deadline.ts), the waits of the Peers layer:
// what a race does once the deadline has passed, the onLost hook that lets a caller drop
// what it waited on, and the signal for waits that take one.

import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertRejects,
  assertStrictEquals,
} from "@std/assert";
import { TofuError } from "../mod.ts";
import { Deadline } from "../src/_deadline.ts";

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs `fn` with a ref'd timer going: a deadline's own timer is unref'd. */
function alive(fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    const keep = setInterval(() => {}, 1000);
    try {
      await fn();
    } finally {
      clearInterval(keep);
    }
  };
}

Deno.test(
  "Deadline: once expired, a raced promise that rejects later is not an unhandled rejection",
  alive(async () => {
    const ac = new AbortController();
    ac.abort();
    using d = new Deadline("send", undefined, ac.signal);
    // The deadline wins without looking at the promise; its later rejection is nobody's.
    const late = pause(5).then(() => Promise.reject(new Error("late")));
    await assertRejects(() => d.race(late), TofuError, "Cannot send: aborted");
    await pause(20); // an unhandled rejection would fail the test here
  }),
);

Deno.test(
  "Deadline: onLost runs once when the deadline wins, never when the promise does",
  alive(async () => {
    using d = new Deadline("wait", 30, undefined);
    let lost = 0;
    assertEquals(await d.race(Promise.resolve(7), () => lost++), 7);
    await assertRejects(() => d.race(Promise.reject(new Error("own")), () => lost++), Error, "own");
    assertEquals(lost, 0, "the promise settled first");
    const waiting = d.race(new Promise(() => {}), () => lost++);
    await assertRejects(() => waiting, TofuError, "Cannot wait: no answer within 30 ms");
    assertEquals(lost, 1, "the deadline won");
    // Once expired, a new race loses at once.
    await assertRejects(() => d.race(Promise.resolve(1), () => lost++), TofuError);
    assertEquals(lost, 2);
  }),
);

Deno.test(
  "Deadline: a promise that settles after the deadline won changes nothing",
  alive(async () => {
    using d = new Deadline("wait", 10, undefined);
    let resolve!: (v: number) => void;
    const raced = d.race(new Promise<number>((r) => resolve = r));
    const e = await assertRejects(() => raced, TofuError);
    resolve(1);
    await pause(0);
    assertEquals(e.message, "Cannot wait: no answer within 10 ms");
    // A race that the promise won stays won when the deadline passes later.
    using later = new Deadline("later", 10, undefined);
    assertEquals(await later.race(Promise.resolve("first")), "first");
    await pause(30);
    assert(later.expired);
  }),
);

Deno.test(
  "Deadline: signal aborts with the deadline's error; asked for after it passed, it is aborted already",
  alive(async () => {
    using d = new Deadline("wait for room", 10, undefined);
    const signal = d.signal;
    assertStrictEquals(d.signal, signal, "one signal per deadline");
    assertFalse(signal.aborted);
    const e = await assertRejects(() => d.race(new Promise(() => {})), TofuError);
    assert(signal.aborted);
    assertStrictEquals(signal.reason, e);

    const ac = new AbortController();
    const why = new Error("user");
    ac.abort(why);
    using gone = new Deadline("send", undefined, ac.signal);
    const late = gone.signal;
    assert(late.aborted);
    assertInstanceOf(late.reason, TofuError);
    assertEquals((late.reason as TofuError).message, "Cannot send: aborted");
    assertStrictEquals((late.reason as TofuError).cause, why);
  }),
);
