// Unit tests of the send room, the receive queue and the send lane, written to kill the
// mutants that tests/mutants_engine_units_test.ts leaves alive (issue #13, docs/testing.md,
// "mut-units: engine unit files"). Each test drives one class directly; no socket is
// involved. Nothing here asserts a duration: waits are for an outcome.

import { assert, assertEquals, assertFalse, assertStrictEquals, assertThrows } from "@std/assert";
import { frameLength, Message, OpCode, Status, TofuError } from "../mod.ts";
import { SendLane } from "../src/_send_lane.ts";
import { ReceiveQueue } from "../src/_receive_queue.ts";
import { SendRoom } from "../src/_send_room.ts";
import { FakeTime } from "./_fake_time.ts";

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

/** Resolves once the promise reactions queued so far have run. */
async function settled(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

// ---- SendRoom -------------------------------------------------------------------------

Deno.test("SendRoom: a wait that ends leaves no abort listener on its signal", async () => {
  const room = new SendRoom();
  const shared = new CountedSignal();
  // Woken by room: the listener is removed.
  const woken = room.wait(100, 0, 10, Infinity, shared.signal);
  assertEquals(shared.listeners, 1, "a waiting sender listens for the abort");
  room.update(10, 0);
  await woken;
  assertEquals(shared.listeners, 0, "woken: the listener is removed");
  // Woken while another sender with the same signal keeps waiting.
  const first = room.wait(100, 0, 50, Infinity, shared.signal);
  const second = room.wait(100, 0, 5, Infinity, shared.signal);
  assertEquals(shared.listeners, 2);
  room.update(50, 0);
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
  const aborted = room.wait(100, 0, 1, Infinity, own.signal);
  const other = room.wait(100, 0, 1, Infinity, undefined);
  own.abort(reason);
  assertStrictEquals(await aborted.catch((e) => e), reason);
  assertEquals(own.listeners, 0, "the listener is let go once it ran");
  assert(room.waiting, "the other sender still waits");
  room.update(0, 0);
  await other;
  assertFalse(room.waiting);
});

// ---- ReceiveQueue ---------------------------------------------------------------------

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
  {
    using time = new FakeTime();
    const timedOut = q.wait(5, shared.signal);
    assertEquals(shared.listeners, 1);
    time.advance(time.now + 5);
    assertEquals(await timedOut, null);
    assertEquals(shared.listeners, 0, "timed out: the listener is removed");
  }
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

Deno.test("ReceiveQueue: the timer keeps the process alive exactly while a timed wait is pending", async () => {
  using time = new FakeTime();
  const q = new ReceiveQueue();
  const untimed = q.wait(Infinity, undefined);
  assertEquals(time.pending, 0, "an untimed wait arms nothing");
  const a = q.wait(3_600_000, undefined);
  assertEquals([time.pending, time.keepingAlive], [1, 1]);
  const [m1, m2] = [new Message(), new Message()];
  q.push(m1); // the untimed wait, first in line
  assertStrictEquals(await untimed, m1);
  assertEquals(time.keepingAlive, 1, "the timed wait still pending");
  q.push(m2);
  assertStrictEquals(await a, m2);
  assertEquals([time.pending, time.keepingAlive], [1, 0], "armed still, but unref'd");
  // A new timed wait while that timer is armed: it keeps the process alive again.
  const b = q.wait(7_200_000, undefined);
  assertEquals([time.pending, time.keepingAlive], [1, 1]);
  const c = q.wait(Infinity, undefined);
  const m3 = new Message();
  q.push(m3);
  assertStrictEquals(await b, m3);
  assertEquals(time.keepingAlive, 0, "only an untimed wait left");
  // The hour passes: the stale timer finds nothing due, and arms nothing.
  time.advance(time.now + 3_600_000);
  assertEquals(time.pending, 0);
  const d = q.wait(10, undefined);
  assertEquals([time.pending, time.keepingAlive], [1, 1]);
  time.advance(time.now + 10);
  assertEquals(await d, null);
  assertEquals([time.pending, time.keepingAlive], [0, 0]);
  const m4 = new Message();
  q.push(m4);
  assertStrictEquals(await c, m4, "the untimed wait was never timed out");
});

Deno.test("ReceiveQueue: waits that ended are let go, not piled up until the next message", async () => {
  // In a child process that may force a garbage collection: of 200 waits that were aborted
  // or timed out in a row, with no message in between, the queue holds on to none.
  const out = await new Deno.Command("deno", {
    args: [
      "run",
      "--no-prompt",
      "--v8-flags=--expose-gc",
      // Env permission for Stryker's variable lets a mutant be active in the child too.
      "--allow-env=__STRYKER_ACTIVE_MUTANT__",
      new URL("./_waiters_gc_child.ts", import.meta.url).pathname,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const alive = Number(new TextDecoder().decode(out.stdout).trim());
  // Held by the queue, all 200 would be alive; one may still be referenced from the stack.
  assert(alive <= 5, `${alive} of 200 ended waits are still held`);
});

// ---- SendLane -------------------------------------------------------------------------

const KIB = 1024;

/** A Request whose frame is exactly `bytes` long (no text header), with message id `id`. */
function sized(bytes: number, id = 1): Message {
  const m = new Message();
  m.bhdr.opCode = OpCode.Request;
  m.bhdr.channelNumber = 1;
  m.bhdr.messageId = BigInt(id);
  m.body.set(new Uint8Array(bytes - 16).fill(id & 0xff));
  assertEquals(frameLength(m), bytes);
  return m;
}

/** Appends `count` frames of `bytes` each to `lane`. */
function fill(lane: SendLane, count: number, bytes: number): void {
  for (let i = 0; i < count; i++) lane.append(sized(bytes, i + 1), bytes);
}

/** Writes everything queued on `lane`, chunk by chunk; returns the buffers written from. */
function writeAll(lane: SendLane): Uint8Array[] {
  const bufs: Uint8Array[] = [];
  for (let c = lane.next(); c !== null; c = lane.next()) {
    bufs.push(c.buf);
    lane.settle(c, c.len, () => {});
  }
  return bufs;
}

/**
 * The buffers of a lane's chunks, in order (one frame is drained per chunk to reach the
 * next one; only for a lane that is not written).
 */
function chunkBuffers(lane: SendLane): Uint8Array[] {
  const bufs: Uint8Array[] = [];
  for (let c = lane.next(); c !== null; c = lane.next()) {
    if (!bufs.includes(c.buf)) bufs.push(c.buf);
    lane.settle(c, c.len, () => {});
  }
  return bufs;
}

/**
 * Empties the cache of spare buffers that every lane of the process shares (earlier tests
 * may have left some): a lane of 16 KiB frames asks for 64 KiB chunks from its third chunk
 * on, and each takes the newest spare (every spare is 64 KiB or larger) while any is left.
 */
function drainSpares(): void {
  const lane = new SendLane();
  // 70 chunks of 64 KiB or more (a spare may be larger): more than the cache holds.
  for (let id = 1; lane.chunkCount < 2 + 70; id++) {
    if (id > 4000) throw new Error("Cannot empty the spare cache: no new chunks");
    lane.append(sized(16 * KIB, id), 16 * KIB);
  }
}

/** How many of the buffers of `lane`'s 64 KiB-or-larger chunks are in `from`. */
function reused(lane: SendLane, from: Uint8Array[]): number {
  return chunkBuffers(lane).filter((b) => from.includes(b)).length;
}

Deno.test("SendLane: drainSome takes at most max frames, oldest first, and counts them", () => {
  const lane = new SendLane();
  for (let id = 1; id <= 5; id++) lane.append(sized(100, id), 100);
  const ids: bigint[] = [];
  const each = (m: Message, size: number) => {
    assertEquals(size, 100);
    ids.push(m.bhdr.messageId);
  };
  assertEquals(lane.drainSome(2, each), 2);
  assertEquals(ids, [1n, 2n]);
  assertEquals(lane.frames, 3, "three frames left");
  assertEquals(lane.drainSome(0, each), 0);
  assertEquals(lane.frames, 3);
  assertEquals(lane.drainSome(10, each), 3, "only what is left");
  assertEquals(ids, [1n, 2n, 3n, 4n, 5n]);
  assertEquals([lane.frames, lane.chunkCount], [0, 0], "released once empty");
});

Deno.test("SendLane: chunks start at 1 KiB and double up to 64 KiB; a frame over 16 KiB gets room for 8", () => {
  const lane = new SendLane();
  fill(lane, 1, 100);
  assertEquals(lane.next()!.buf.length, KIB, "a small first frame: 1 KiB");
  // Frames of 1 KiB: a new chunk for each frame that does not fit, twice the size of the last.
  const growing = new SendLane();
  fill(growing, 1 + 2 + 4 + 8 + 16 + 32 + 64 + 64, KIB);
  assertEquals(
    chunkBuffers(growing).map((b) => b.length / KIB),
    [1, 2, 4, 8, 16, 32, 64, 64],
  );
  // 16 KiB exactly is not a big frame; one byte more is.
  const edge = new SendLane();
  fill(edge, 1, 16 * KIB);
  assertEquals(edge.next()!.buf.length, 16 * KIB);
  const big = new SendLane();
  fill(big, 1, 16 * KIB + 1);
  assertEquals(big.next()!.buf.length, 8 * (16 * KIB + 1));
});

Deno.test("SendLane: a frame that exactly fits the room left goes into the same chunk", () => {
  const lane = new SendLane();
  lane.append(sized(500, 1), 500);
  lane.append(sized(524, 2), 524);
  assertEquals(lane.chunkCount, 1, "1,024 bytes in a 1 KiB chunk");
  lane.append(sized(16, 3), 16);
  assertEquals(lane.chunkCount, 2, "full: the next frame starts a chunk");
});

Deno.test("SendLane: a written 64 KiB chunk goes to the spare cache, and the next 64 KiB chunk of any lane takes it", () => {
  drainSpares();
  // Chunks of 16, 32, 64 and 64 KiB: the first two are too small to keep; the third is kept
  // once the writer moves on to the fourth.
  const writer = new SendLane();
  fill(writer, 3 + 4 + 1, 16 * KIB);
  const written = writeAll(writer);
  assertEquals(written.map((b) => b.length / KIB), [16, 32, 64, 64]);
  assertEquals(writer.chunkCount, 1, "the last 64 KiB chunk stays with its lane, emptied");
  const other = new SendLane();
  fill(other, 3 + 4, 16 * KIB);
  const bufs = chunkBuffers(other);
  assertEquals(bufs.map((b) => b.length / KIB), [16, 32, 64]);
  assertStrictEquals(bufs[2], written[2], "the spare 64 KiB buffer is reused");
  assertFalse(bufs.includes(written[0]!) || bufs.includes(written[1]!), "small ones are not");
  // The writer's own last chunk takes its next frames.
  fill(writer, 1, 100);
  assertStrictEquals(writer.next()!.buf, written[3]);
});

Deno.test("SendLane: a small written chunk never hides the spare 64 KiB buffers from the next lane", () => {
  drainSpares();
  const big = new SendLane();
  fill(big, 3 + 4 + 1, 16 * KIB);
  const spare = writeAll(big)[2]!;
  // A lane of two small chunks, the first written and dropped.
  const small = new SendLane();
  fill(small, 2, 16 * KIB);
  writeAll(small);
  const next = new SendLane();
  fill(next, 3 + 4, 16 * KIB);
  assertStrictEquals(chunkBuffers(next)[2], spare);
});

Deno.test("SendLane: the spare cache holds at most 64 buffers", () => {
  drainSpares();
  // 66 chunks of 64 KiB written through: 65 are let go (the last stays with its lane).
  const writer = new SendLane();
  fill(writer, 3 + 4 * 66, 16 * KIB);
  const written = writeAll(writer).filter((b) => b.length === 64 * KIB);
  assertEquals(written.length, 66);
  const taker = new SendLane();
  fill(taker, 3 + 4 * 66, 16 * KIB);
  assertEquals(reused(taker, written), 64);
});

Deno.test("SendLane: the spare cache holds at most 8 MiB, and taking a spare gives its bytes back", () => {
  for (let round = 1; round <= 2; round++) {
    drainSpares();
    // Frames of 64 KiB get chunks of 512 KiB (room for 8): 17 written through, 16 let go
    // (8 MiB exactly) and the last one too, which no longer fits.
    const writer = new SendLane();
    fill(writer, 8 * 17, 64 * KIB);
    const written = writeAll(writer);
    assertEquals(written.length, 17);
    assert(written.every((b) => b.length === 512 * KIB));
    assertEquals(writer.chunkCount, 0, "a chunk over 64 KiB does not stay with its lane");
    const taker = new SendLane();
    fill(taker, 8 * 17, 64 * KIB);
    assertEquals(reused(taker, written), 16, `round ${round}`);
  }
});

Deno.test("SendLane: an append refused after it opened a chunk leaves no buffer shared by two lanes", () => {
  drainSpares();
  // Chunks of 16, 32 and 64 KiB (full); the writer takes the third.
  const lane = new SendLane();
  fill(lane, 3 + 4, 16 * KIB);
  let c = lane.next()!;
  while (c.buf.length < 64 * KIB) {
    lane.settle(c, c.len, () => {});
    c = lane.next()!;
  }
  const third = c.buf;
  // A message whose frame is not the size given: refused after a new (64 KiB) chunk was made.
  assertThrows(() => lane.append(sized(100, 9), 200), RangeError);
  lane.settle(c, c.len, () => {});
  assertEquals(lane.next(), null, "everything was written");
  fill(lane, 1, 100);
  const kept = lane.next()!.buf;
  assertEquals(kept.length, 64 * KIB);
  // The written third chunk went to the cache; the lane's own chunk did not.
  const other = new SendLane();
  fill(other, 3 + 4 + 4, 16 * KIB);
  const bufs = chunkBuffers(other);
  assertStrictEquals(bufs[2], third, "the written chunk is reused");
  assertFalse(bufs.includes(kept), "the chunk the lane keeps is not handed to another lane");
  assertEquals(drainedIds(lane), [1n]);
});

/** The message ids of the frames left in `lane` (drained). */
function drainedIds(lane: SendLane): bigint[] {
  const ids: bigint[] = [];
  lane.drain((m) => ids.push(m.bhdr.messageId));
  return ids;
}
