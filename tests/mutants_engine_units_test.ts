// Unit tests of the engine's private building blocks (pool, read share, send room, deadlines,
// heartbeat, receive queue, send lane), written to kill the mutants that the socket tests
// leave alive (issue #13, docs/testing.md). No socket is involved: each test drives one class
// directly. Nothing here asserts a duration: waits are for an outcome, and a timer is only
// used to let a shorter timer fire first.

import {
  assert,
  assertEquals,
  assertFalse,
  assertInstanceOf,
  assertNotStrictEquals,
  assertRejects,
  assertStrictEquals,
  assertThrows,
} from "@std/assert";
import { Message, OpCode, Status, TofuError } from "../mod.ts";
import { MessagePool } from "../src/_pool.ts";
import {
  dequeued,
  discharge,
  ENGINE_HELD_ALLOWANCE,
  enqueued,
  HeldBudget,
  ReadShare,
  Stop,
} from "../src/_read_share.ts";
import { SendRoom } from "../src/_send_room.ts";
import { ReceiveQueue } from "../src/_receive_queue.ts";
import { checkTimeout, Deadline, sleep } from "../src/_deadline.ts";
import { Heartbeat } from "../src/_heartbeat.ts";
import { Deadlines, type Expiry, type Timeouts } from "../src/_deadlines.ts";
import { frameSizeAt, opCodeAt, SendLane } from "../src/_send_lane.ts";
import { frameLength } from "../src/codec.ts";
import { engineSignal, handBack } from "../src/_report.ts";
import { Owner, ownerOf, shareOf } from "../src/message.ts";

/** Resolves after `ms` (a timer that fires after every shorter one already armed). */
function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Awaits `p` while a timer keeps the event loop alive: the timers under test are unref'd,
 * and a test awaiting only them would end with "the event loop has already resolved".
 */
async function alive<T>(p: Promise<T>): Promise<T> {
  const keep = setInterval(() => {}, 1000);
  try {
    return await p;
  } finally {
    clearInterval(keep);
  }
}

/** The TofuError that `p` rejects with. */
async function rejection(p: Promise<unknown>): Promise<TofuError> {
  const e = await alive(p.then(() => null, (e: unknown) => e));
  if (!(e instanceof TofuError)) throw new Error(`expected a TofuError, got ${e}`);
  return e;
}

/** Busy-waits `ms` of wall time without yielding to the event loop. */
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Burn time: the heartbeat must see the loop as blocked.
  }
}

// ---- MessagePool ----------------------------------------------------------------------

Deno.test("MessagePool: initial and max must be integers >= 0, with the option named", () => {
  for (const bad of [-1, 1.5, NaN]) {
    assertThrows(
      () => new MessagePool(bad, 4),
      RangeError,
      `Cannot create pool: initialPoolMsgs ${bad} is not an integer >= 0`,
    );
    assertThrows(
      () => new MessagePool(0, bad),
      RangeError,
      `Cannot create pool: maxPoolMsgs ${bad} is not an integer >= 0`,
    );
  }
  assertEquals(new MessagePool(0, 0).max, 0, "0 and 0 are allowed");
  assertEquals(new MessagePool(0, 0).size, 0);
});

Deno.test("MessagePool: messages of one slab do not share storage", () => {
  const pool = new MessagePool(3, 3);
  const ms = [0, 1, 2].map(() => pool.get("poolOnly")!);
  ms.forEach((m, i) => {
    m.headers.append(`k${i}`, `v${i}`);
    m.body.set(`body-${i}`);
  });
  ms.forEach((m, i) => {
    assertEquals(m.headers.get(`k${i}`), `v${i}`);
    assertEquals(new TextDecoder().decode(m.body.bytes()), `body-${i}`);
  });
});

Deno.test("MessagePool: get('always') on an empty pool draws from one reserve slab", () => {
  const pool = new MessagePool(0, 8);
  const a = pool.get("always")!;
  const b = pool.get("always")!;
  assertNotStrictEquals(a, b);
  assertStrictEquals(a.body.bytes().buffer, b.body.bytes().buffer, "one slab for the reserve");
  a.body.set("aaaa");
  b.body.set("bbbb");
  assertEquals(new TextDecoder().decode(a.body.bytes()), "aaaa");
  assertEquals(ownerOf(a), Owner.Application);
  // A message from the pool or the reserve goes back to this pool on dispose.
  a[Symbol.dispose]();
  assertEquals(pool.size, 1);
  assertStrictEquals(pool.get("poolOnly"), a);
});

Deno.test("MessagePool: an unknown strategy is a TypeError on an empty pool", () => {
  const pool = new MessagePool(0, 2);
  assertThrows(
    () => pool.get("sometimes" as "always"),
    TypeError,
    'Cannot get message: unknown strategy "sometimes"',
  );
});

Deno.test("MessagePool: engine reports are dropped, messages handed back are pooled", () => {
  const pool = new MessagePool(0, 4);
  const report = engineSignal(7, Status.channelClosed, null, null);
  assertEquals(ownerOf(report), Owner.Application);
  pool.put(report);
  assertEquals(pool.size, 0, "an engine report is not pooled");
  const back = handBack(new Message(), Status.channelClosed, null);
  assertEquals(back.bhdr.origin, 1);
  pool.put(back);
  assertEquals(pool.size, 1, "a message handed back (origin engine, not a report) is pooled");
  pool.clear();
  assertEquals(pool.size, 0);
  assertEquals(pool.get("poolOnly"), null);
});

Deno.test("MessagePool: clear() drops the reserve too", () => {
  const pool = new MessagePool(0, 4);
  const a = pool.get("always")!;
  pool.clear();
  const b = pool.get("always")!;
  assertNotStrictEquals(a.body.bytes().buffer, b.body.bytes().buffer, "a new reserve slab");
});

// ---- ReadShare ------------------------------------------------------------------------

// What an empty message is charged (its 16-byte frame and the fixed 512 bytes).
const EMPTY = 16 + 512;

Deno.test("ReadShare: atLimit and full at exactly the limit and the window", () => {
  const share = new ReadShare(2, 2);
  const [a, b] = [new Message(), new Message()];
  share.charge(a);
  assertEquals([share.held, share.atLimit, share.full], [1, false, false]);
  assertStrictEquals(shareOf(a), share);
  share.charge(b);
  assertEquals([share.held, share.atLimit, share.full], [2, true, true]);
  discharge(a);
  assertEquals([share.held, share.atLimit, share.full], [1, false, false]);
  assertEquals(shareOf(a), null);
  discharge(a); // charged to no share any more: nothing changes
  assertEquals(share.held, 1);

  const win = new ReadShare(100, 1);
  const m = new Message();
  win.charge(m);
  enqueued(m);
  assertEquals([win.queued, win.full, win.atLimit], [1, true, false]);
  dequeued(m);
  assertEquals([win.queued, win.full], [0, false]);
  dequeued(m); // never below zero
  assertEquals(win.queued, 0);
  enqueued(new Message()); // a message charged to no share: ignored
  dequeued(new Message());
  assertEquals(win.queued, 0);
});

Deno.test("ReadShare: bytes held, its own limit and the engine's budget past the allowance", () => {
  // A message charged `bytes`: its frame (16 + text headers + body) and 512.
  const held = (bytes: number) => {
    const m = new Message();
    const rest = bytes - EMPTY;
    m.bhdr.textHeadersLength = rest >> 1;
    m.bhdr.bodyLength = rest - (rest >> 1);
    return m;
  };
  const Q = ENGINE_HELD_ALLOWANCE / 2;
  const budget = new HeldBudget(4 * Q);
  const a = new ReadShare(Infinity, Infinity, 2 * Q + 1000, budget);
  const b = new ReadShare(Infinity, Infinity, Infinity, budget);
  const [a1, a2, a3] = [held(Q), held(Q), held(1000)];
  a.charge(a1);
  a.charge(a2);
  // At its allowance, below its own limit, the budget not reached: it reads on.
  assertEquals([a.heldBytes, budget.bytes, a.full], [2 * Q, 2 * Q, false]);
  a.charge(a3);
  assertEquals([a.heldBytes, a.full, a.stoppedBy], [2 * Q + 1000, true, Stop.Bytes]);
  let aWoken = 0;
  a.whenFree(() => aWoken++);
  // b fills the budget: b stops (it holds its allowance).
  const [b1, b2] = [held(Q), held(Q)];
  b.charge(b1);
  assertEquals([b.full, budget.over], [false, false]);
  b.charge(b2);
  assertEquals([b.full, b.stoppedBy, budget.over], [true, Stop.Engine, true]);
  let bWoken = 0;
  b.whenFree(() => bWoken++);
  // a's small message comes back: below its own limit now, but the budget stops it, and
  // only the budget can wake it.
  discharge(a3);
  assertEquals([aWoken, a.full, a.stoppedBy], [0, true, Stop.Engine]);
  // One of b's comes back: the total is below the budget, both readers are woken, once.
  discharge(b1);
  assertEquals([aWoken, bWoken, budget.over, budget.bytes], [1, 1, false, 3 * Q]);
  for (const m of [a1, a2, b2]) discharge(m);
  assertEquals([aWoken, bWoken, budget.bytes, a.heldBytes, b.heldBytes], [1, 1, 0, 0, 0]);
  // A withdrawn wait on the budget is not called.
  const c = new ReadShare(Infinity, Infinity, Infinity, budget);
  const [c1, c2, c3] = [held(2 * Q), held(2 * Q), held(1000)];
  c.charge(c1);
  c.charge(c2);
  let cWoken = 0;
  c.whenFree(() => cWoken++)();
  discharge(c1);
  assertEquals(cWoken, 0);
  discharge(c2);
  // A share holding less than its allowance reads on past the budget.
  const d = new ReadShare(Infinity, Infinity, Infinity, new HeldBudget(1));
  d.charge(c3);
  assertEquals([d.budget.over, d.full, d.stoppedBy], [true, false, Stop.None]);
});

Deno.test("ReadShare: the waiting reader is woken once, only when no longer full", () => {
  const share = new ReadShare(1, 1);
  const m = new Message();
  share.charge(m);
  enqueued(m);
  let woken = 0;
  share.whenFree(() => woken++);
  share.check();
  assertEquals(woken, 0, "still full: not woken");
  dequeued(m); // the window frees, the share is still held
  assertEquals(woken, 0, "held at its limit: not woken");
  share.release(EMPTY);
  assertEquals(woken, 1);
  share.check();
  share.release(EMPTY);
  assertEquals(woken, 1, "woken once");
  // A withdrawn wait is not called.
  const s1 = new ReadShare(1, 10);
  s1.charge(new Message());
  let withdrawn = 0;
  const withdraw = s1.whenFree(() => withdrawn++);
  withdraw();
  s1.release(EMPTY);
  assertEquals(withdrawn, 0, "withdrawn before the share came back");
  // Withdrawing after a newer wait leaves the newer one.
  const s2 = new ReadShare(1, 10);
  s2.charge(new Message());
  const first = s2.whenFree(() => woken += 100);
  const second = s2.whenFree(() => woken += 10);
  first();
  s2.release(EMPTY);
  assertEquals(woken, 11, "the newer wait survives the older one's withdrawal");
  second();
});

// ---- SendRoom -------------------------------------------------------------------------

Deno.test("SendRoom: room at or below the mark at once; waits wake at their own marks", async () => {
  const room = new SendRoom();
  await room.wait(10, 0, 10, Infinity, undefined); // at the mark: room at once
  assertFalse(room.waiting);
  const order: string[] = [];
  const low = room.wait(50, 0, 5, Infinity, undefined).then(() => order.push("low"));
  const high = room.wait(50, 0, 20, Infinity, undefined).then(() => order.push("high"));
  assert(room.waiting);
  room.update(21, 0);
  await pause(0);
  assertEquals(order, []);
  room.update(20, 0); // exactly the high mark
  await high;
  assertEquals(order, ["high"]);
  assert(room.waiting, "the low-mark sender still waits");
  room.update(5, 0);
  await low;
  assertEquals(order, ["high", "low"]);
  assertFalse(room.waiting);
});

Deno.test("SendRoom: a wait with a frame mark needs both marks reached", async () => {
  const room = new SendRoom();
  await room.wait(10, 50, 10, 50, undefined); // both at their marks: room at once
  assertFalse(room.waiting);
  let woken = false;
  const both = room.wait(10, 60, 10, 50, undefined).then(() => woken = true);
  assert(room.waiting, "frames over their mark: it waits though the charged bytes are at theirs");
  room.update(10, 51);
  await pause(0);
  assertFalse(woken);
  room.update(11, 50); // frames at their mark, charged bytes over theirs
  await pause(0);
  assertFalse(woken);
  room.update(10, 50);
  await both;
  assertFalse(room.waiting);
});

Deno.test("SendRoom: an abort rejects that wait only, with the signal's reason", async () => {
  const room = new SendRoom();
  const ac = new AbortController();
  const reason = new Error("stop");
  const aborted = room.wait(100, 0, 1, Infinity, ac.signal);
  const other = room.wait(100, 0, 1, Infinity, undefined);
  ac.abort(reason);
  assertStrictEquals(await aborted.catch((e) => e), reason);
  assert(room.waiting, "the other sender still waits");
  room.update(0, 0);
  await other;
  assertFalse(room.waiting);
  // The only sender, or the first of several, aborts: it no longer waits.
  const ac2 = new AbortController();
  const only = room.wait(100, 0, 1, Infinity, ac2.signal);
  ac2.abort(reason);
  assertStrictEquals(await only.catch((e) => e), reason);
  assertFalse(room.waiting, "an aborted sender is removed");
  // Already aborted: rejected before looking at the room.
  assertStrictEquals(await room.wait(0, 0, 10, Infinity, ac.signal).catch((e) => e), reason);
});

Deno.test("SendRoom: close rejects every sender, now and later, with the first error", async () => {
  const room = new SendRoom();
  const ac = new AbortController();
  const err = new TofuError(Status.channelClosed, "Cannot send: closed");
  const a = room.wait(100, 0, 1, Infinity, ac.signal);
  const b = room.wait(100, 0, 1, Infinity, undefined);
  room.close(err);
  room.close(new TofuError(Status.shutdownStarted, "Cannot send: later"));
  assertStrictEquals(await a.catch((e) => e), err);
  assertStrictEquals(await b.catch((e) => e), err);
  assertFalse(room.waiting);
  assertStrictEquals(await room.wait(0, 0, 10, Infinity, undefined).catch((e) => e), err);
  ac.abort(); // its listener was removed: nothing happens
});

// ---- Deadline -------------------------------------------------------------------------

Deno.test("checkTimeout: undefined, 0 and Infinity pass; others are a RangeError", () => {
  checkTimeout("act", undefined);
  checkTimeout("act", 0);
  checkTimeout("act", Infinity);
  for (const bad of [-1, NaN, "5" as unknown as number]) {
    assertThrows(
      () => checkTimeout("act", bad),
      RangeError,
      `Cannot act: timeoutMs ${bad} is not a number >= 0`,
    );
  }
  assertThrows(() => new Deadline("act", -1, undefined), RangeError, "Cannot act: timeoutMs -1");
});

Deno.test("Deadline: a timeout rejects with the status and the limit in the message", async () => {
  using d = new Deadline("wait for it", 5, undefined);
  assertFalse(d.expired);
  const e = await rejection(d.race(new Promise(() => {})));
  assertInstanceOf(e, TofuError);
  assertEquals(e.status, Status.communicationFailed, "the default status");
  assertEquals(e.message, "Cannot wait for it: no answer within 5 ms");
  assert(d.expired);
  // Once expired, it wins even against a settled promise.
  await assertRejects(() => d.race(Promise.resolve(1)), TofuError, "no answer within 5 ms");
});

Deno.test("Deadline: an abort rejects with the given status and the reason as cause", async () => {
  const ac = new AbortController();
  using d = new Deadline("connect", Infinity, ac.signal, Status.notAllowed);
  assertEquals(await d.race(Promise.resolve("early")), "early");
  const raced = d.race(new Promise(() => {}));
  const reason = new Error("user");
  ac.abort(reason);
  const e = await rejection(raced);
  assertInstanceOf(e, TofuError);
  assertEquals([e.status, e.message], [Status.notAllowed, "Cannot connect: aborted"]);
  assertStrictEquals(e.cause, reason);
  assert(d.expired);

  // A signal aborted before the deadline is made: expired at once, nobody needs to race it.
  using before = new Deadline("send", 1000, ac.signal);
  assert(before.expired);
  const e2 = await rejection(before.promise);
  assertEquals(e2.message, "Cannot send: aborted");
  assertStrictEquals(e2.cause, reason);
});

Deno.test("Deadline: an expiry nobody races is not an unhandled rejection", async () => {
  const ac = new AbortController();
  ac.abort();
  {
    using _d = new Deadline("x", undefined, ac.signal);
  }
  {
    using _t = new Deadline("y", 1, undefined);
    await pause(20);
  }
  await pause(0);
});

Deno.test("Deadline: without a finite timeout nothing fires; dispose stops the timer and the signal", async () => {
  using never = new Deadline("a", Infinity, undefined);
  using none = new Deadline("b", undefined, undefined);
  const ac = new AbortController();
  const d = new Deadline("c", 5, ac.signal);
  d[Symbol.dispose]();
  d[Symbol.dispose](); // twice is harmless
  await pause(30);
  ac.abort();
  assertFalse(never.expired);
  assertFalse(none.expired);
  assertFalse(d.expired, "disposed: neither its timer nor the abort reaches it");
  assertEquals(await d.race(Promise.resolve(2)), 2);
});

Deno.test("sleep: ends after its time, or at wake() (which clears its timer)", async () => {
  const short = sleep(1);
  await alive(short.done);
  const long = sleep(60_000, true);
  let done = false;
  long.done.then(() => done = true);
  await pause(0);
  assertFalse(done);
  long.wake();
  await long.done;
  assert(done);
  // The test's timer sanitizer fails this test if the 60 s timer was left armed.
});

// ---- Heartbeat ------------------------------------------------------------------------

Deno.test("Heartbeat: the first call arms it; a reader is starved only after 64 spins and 2 ms", async () => {
  const hb = new Heartbeat();
  assertFalse(hb.starved(1000), "arming never asks to wait");
  spin(5);
  assertFalse(hb.starved(63), "63 spins: not starved yet");
  assert(hb.starved(64), "64 spins with the beat pending for 5 ms: starved");
  assert(hb.starved(65));
  assertEquals(hb.epoch, 0);
  let called = 0;
  const cancel = hb.wait(() => called += 100);
  hb.wait(() => called++);
  cancel();
  await pause(10);
  assertEquals([hb.epoch, called], [1, 1], "one beat; the cancelled waiter is not called");
  assertFalse(hb.starved(1000), "re-armed after the beat");
  hb.stop();
  assertEquals(hb.epoch, 2, "stop() beats once more");
});

Deno.test("Heartbeat: wait() arms the timer; stop() calls the waiters and clears the timer", async () => {
  const hb = new Heartbeat();
  let called = 0;
  hb.wait(() => called++);
  await pause(10);
  assertEquals([hb.epoch, called], [1, 1], "wait() alone armed a beat");
  hb.wait(() => called++);
  hb.stop();
  assertEquals([hb.epoch, called], [2, 2]);
  await pause(10);
  assertEquals(hb.epoch, 2, "the stopped timer does not beat later");
});

Deno.test("Heartbeat: starved only from 2 ms after arming (a fake clock)", () => {
  let now = 1000;
  const real = Object.getOwnPropertyDescriptor(performance, "now");
  Object.defineProperty(performance, "now", { value: () => now, configurable: true });
  try {
    const hb = new Heartbeat();
    assertFalse(hb.starved(64), "arming");
    assertFalse(hb.starved(64), "64 spins, no time passed");
    now = 1001.5;
    assertFalse(hb.starved(1000), "under 2 ms");
    now = 1002;
    assert(hb.starved(64), "exactly 2 ms");
    assertFalse(hb.starved(63), "2 ms, 63 spins");
    hb.stop();
  } finally {
    if (real) Object.defineProperty(performance, "now", real);
    else delete (performance as { now?: unknown }).now;
  }
});

// ---- SendLane -------------------------------------------------------------------------

/** A message with `body` bytes of body and one text header, on channel `ch`. */
function framed(ch: number, id: number, body: number, op: number = OpCode.Request): Message {
  const m = new Message();
  m.bhdr.opCode = op;
  m.bhdr.channelNumber = ch;
  m.bhdr.messageId = BigInt(id);
  m.headers.append("n", String(id));
  m.body.set(new Uint8Array(body).fill(id & 0xff));
  return m;
}

/** Drains `lane` into [channel, id, opcode, body length, header n] tuples. */
function drained(lane: SendLane): Array<[number, number, number, number, string | undefined]> {
  const out: Array<[number, number, number, number, string | undefined]> = [];
  lane.drain((m, size) => {
    assertEquals(size, frameLength(m));
    out.push([
      m.bhdr.channelNumber,
      Number(m.bhdr.messageId),
      m.bhdr.opCode,
      m.body.byteLength,
      m.headers.get("n"),
    ]);
  });
  return out;
}

Deno.test("SendLane: frames come back whole and in order, across chunks of every size", () => {
  const lane = new SendLane();
  const sizes = [0, 10, 1000, 1100, 5000, 60_000, 3, 65_535, 0, 20_000];
  sizes.forEach((b, i) => {
    const m = framed(i + 1, i + 1, b, i % 2 === 0 ? OpCode.Request : OpCode.Signal);
    lane.append(m, frameLength(m));
  });
  assertEquals(lane.frames, sizes.length);
  assert(lane.chunkCount > 1, "several chunks");
  const got = drained(lane);
  assertEquals(
    got,
    sizes.map((b, i) => [
      i + 1,
      i + 1,
      i % 2 === 0 ? OpCode.Request : OpCode.Signal,
      b,
      String(i + 1),
    ]),
  );
  assertEquals([lane.frames, lane.chunkCount], [0, 0], "drain empties the lane");
  assertEquals(lane.next(), null);
});

Deno.test("SendLane: a message whose real size is not the given one is refused, nothing queued", () => {
  const lane = new SendLane();
  const ok = framed(1, 1, 10);
  lane.append(ok, frameLength(ok));
  const bad = framed(1, 2, 10);
  assertThrows(
    () => lane.append(bad, frameLength(bad) + 1),
    RangeError,
    `the message's frame is ${frameLength(bad)} bytes, its header says ${frameLength(bad) + 1}`,
  );
  assertThrows(() => lane.append(bad, frameLength(bad) - 1), RangeError);
  assertEquals(lane.frames, 1);
  assertEquals(drained(lane).map((f) => f[1]), [1]);
});

Deno.test("SendLane: internalA and internalB are cleared in the queued bytes, other bits kept", () => {
  const lane = new SendLane();
  const m = framed(2, 7, 4, OpCode.Signal);
  m.bhdr.internalA = 1;
  m.bhdr.internalB = 1;
  m.bhdr.more = 1;
  m.bhdr.origin = 1;
  lane.append(m, frameLength(m));
  const c = lane.next()!;
  assertEquals(c.buf[c.sent + 2], OpCode.Signal | 0x10 | 0x20);
  assertEquals(opCodeAt(c.buf, c.sent), OpCode.Signal);
  assertEquals(frameSizeAt(c.buf, c.sent), frameLength(m));
});

Deno.test("SendLane: settle() takes whole frames only; a cut frame stays unsent", () => {
  const lane = new SendLane();
  const ms = [framed(1, 1, 100), framed(1, 2, 200), framed(1, 3, 300)];
  const sizes = ms.map(frameLength);
  for (const m of ms) lane.append(m, frameLength(m));
  const c = lane.next()!;
  assertEquals([c.sent, c.len], [0, sizes[0]! + sizes[1]! + sizes[2]!]);
  const marked: number[] = [];
  const onMarked = (op: number) => marked.push(op);
  assertEquals(lane.settle(c, sizes[0]! + sizes[1]! - 1, onMarked), 1, "the second frame is cut");
  assertEquals([c.sent, lane.frames], [sizes[0], 2]);
  assertStrictEquals(lane.next(), c, "the same chunk, with its unsent bytes");
  assertEquals(lane.settle(c, sizes[0]! + sizes[1]!, onMarked), 1);
  assertEquals([c.sent, lane.frames], [sizes[0]! + sizes[1]!, 1]);
  assertEquals(lane.settle(c, c.len, onMarked), 1);
  assertEquals(marked, [], "no HelloRequest or Bye among them");
  assertEquals(lane.frames, 0);
  assertEquals(lane.chunkCount, 1, "the written chunk is kept for reuse");
  assertEquals([c.sent, c.len], [0, 0], "and emptied");
  assertEquals(lane.next(), null);
  // The emptied chunk takes the next frames.
  const m = framed(1, 4, 10);
  lane.append(m, frameLength(m));
  assertStrictEquals(lane.next(), c);
  assertEquals(lane.chunkCount, 1);
});

Deno.test("SendLane: settle() counts a whole write without reading it, reports each HelloRequest and Bye, and ignores frames appended during the write", () => {
  const lane = new SendLane();
  const sizeOf = (m: Message) => frameLength(m);
  const ms = [framed(1, 1, 10), framed(1, 2, 20), framed(1, 3, 30)];
  for (const m of ms) lane.append(m, sizeOf(m));
  const c = lane.next()!;
  const taken = c.len;
  // Two posts land while the write is in flight: past the bytes the writer took.
  const late = [framed(1, 4, 40), framed(1, 5, 50, OpCode.ByeRequest)];
  for (const m of late) lane.append(m, sizeOf(m));
  const marked: number[] = [];
  assertEquals(lane.settle(c, taken, (op) => marked.push(op)), 3, "the three frames taken");
  assertEquals([c.sent, lane.frames, marked], [taken, 2, []]);
  assertEquals(lane.settledBytes, taken);
  assertStrictEquals(lane.next(), c);
  assertEquals(lane.settle(c, c.len, (op) => marked.push(op)), 2);
  assertEquals(
    lane.settledBytes,
    sizeOf(late[0]!) + sizeOf(late[1]!),
    "counted before the chunk is emptied",
  );
  assertEquals(c.sent, 0, "emptied for reuse");
  assertEquals(marked, [OpCode.ByeRequest], "the Bye is reported once");
  assertEquals(lane.frames, 0);
  // Marked frames of every kind, between ordinary ones, in a write cut inside the last.
  const kinds = [OpCode.HelloRequest, OpCode.Request, OpCode.ByeResponse, OpCode.ByeSignal];
  const mixed = kinds.map((op, i) => framed(1, 10 + i, 5, op));
  for (const m of mixed) lane.append(m, sizeOf(m));
  const d = lane.next()!;
  const got: number[] = [];
  assertEquals(lane.settle(d, d.len - 1, (op) => got.push(op)), 3);
  assertEquals(got, [OpCode.HelloRequest, OpCode.ByeResponse], "the cut ByeSignal is not yet");
  assertEquals(lane.settle(d, d.len, (op) => got.push(op)), 1);
  assertEquals(got, [OpCode.HelloRequest, OpCode.ByeResponse, OpCode.ByeSignal]);
  assertEquals(lane.frames, 0);
  // After the marked frames were written, a whole write is counted again (no walk).
  for (const m of ms) lane.append(m, sizeOf(m));
  const e = lane.next()!;
  assertEquals(lane.settle(e, e.len, () => got.push(-1)), 3);
  assertEquals(got.length, 3);
});

Deno.test("SendLane: written chunks are dropped as the writer moves on", () => {
  const lane = new SendLane();
  const big = (id: number) => framed(1, id, 10_000);
  // Twenty 10 KB frames: a chunk of frames this small holds 64 KiB at most, so they need
  // several chunks.
  for (let i = 1; i <= 20; i++) lane.append(big(i), frameLength(big(i)));
  const n0 = lane.chunkCount;
  assert(n0 >= 2, `${n0} chunks`);
  const first = lane.next()!;
  lane.settle(first, first.len, () => {});
  const second = lane.next()!;
  assertNotStrictEquals(second, first);
  assert(lane.chunkCount < n0, "the written head chunk is dropped when the writer moves on");
  lane.settle(second, second.len, () => {});
  for (let c = lane.next(); c !== null; c = lane.next()) lane.settle(c, c.len, () => {});
  assertEquals(lane.frames, 0);
  assert(lane.chunkCount <= 1);
  // A new frame after everything was written goes into a fresh or reused chunk at offset 0.
  const m = framed(1, 9, 1);
  lane.append(m, frameLength(m));
  const c = lane.next()!;
  assertEquals([c.sent, c.len], [0, frameLength(m)]);
});

Deno.test("SendLane: an empty tail too small for the next frame gets a bigger buffer", () => {
  const lane = new SendLane();
  const small = framed(1, 1, 10);
  lane.append(small, frameLength(small));
  const c = lane.next()!;
  const before = c.buf.length;
  lane.settle(c, c.len, () => {});
  assertEquals(lane.chunkCount, 1);
  const big = framed(1, 2, before + 100);
  lane.append(big, frameLength(big));
  assertEquals(lane.chunkCount, 1, "the empty chunk was given a bigger buffer, not a second chunk");
  const c2 = lane.next()!;
  assertStrictEquals(c2, c);
  assert(c2.buf.length >= frameLength(big));
  assertEquals(drained(lane).map((f) => f[1]), [2]);
});

Deno.test("SendLane: a written chunk over 64 KiB is let go, and its buffer is reused", () => {
  const lane = new SendLane();
  const m = framed(1, 1, 65_000);
  m.headers.append("pad", "x".repeat(30_000));
  const size = frameLength(m);
  assert(size > 64 * 1024);
  lane.append(m, size);
  const c = lane.next()!;
  const buf = c.buf;
  assertEquals(buf.length, size * 8, "a chunk with room for 8 frames as large as this one");
  lane.settle(c, c.len, () => {});
  assertEquals(lane.chunkCount, 0, "a chunk over 64 KiB is not kept by the lane");
  // The next large chunk (of any lane) reuses the spare buffer.
  const other = new SendLane();
  const m2 = framed(1, 2, 65_000);
  m2.headers.append("pad", "y".repeat(29_000));
  other.append(m2, frameLength(m2));
  assertStrictEquals(other.next()!.buf, buf, "the spare buffer is reused");
  assertEquals(drained(other).map((f) => f[1]), [2]);
  // A small chunk never takes a large spare.
  const third = new SendLane();
  third.append(small1(), frameLength(small1()));
  assert(third.next()!.buf.length < 64 * 1024);
});

function small1(): Message {
  return framed(1, 1, 1);
}

// ---- ReceiveQueue ---------------------------------------------------------------------

Deno.test("ReceiveQueue: full at its limit; paused readers resume at half of it", () => {
  const q = new ReceiveQueue(4);
  const calls: string[] = [];
  q.whenRoom(() => calls.push("at once"));
  assertEquals(calls, ["at once"], "not full: called at once");
  const ms = [0, 1, 2, 3].map(() => new Message());
  for (const m of ms.slice(0, 3)) assert(q.push(m));
  assertFalse(q.full, "3 of 4");
  q.push(ms[3]!);
  assert(q.full, "4 of 4");
  assertEquals(q.length, 4);
  const cancel = q.whenRoom(() => calls.push("cancelled"));
  q.whenRoom(() => calls.push("a"));
  q.whenRoom(() => calls.push("b"));
  cancel();
  assertStrictEquals(q.tryShift(), ms[0]);
  assertEquals(calls, ["at once"], "3 left: above half the limit");
  assertStrictEquals(q.tryShift(), ms[1]);
  assertEquals(calls, ["at once", "a", "b"], "2 left: resumed, every waiter once");
  q.tryShift();
  q.tryShift();
  assertEquals(q.tryShift(), null);
  assertEquals(calls.length, 3);
  assertFalse(new ReceiveQueue().full, "no limit: never full");
});

Deno.test("ReceiveQueue: an async receive at half the limit also resumes paused readers", async () => {
  const q = new ReceiveQueue(2);
  q.push(new Message());
  q.push(new Message());
  let resumed = 0;
  q.whenRoom(() => resumed++);
  await q.wait(0, undefined);
  assertEquals(resumed, 1, "1 left of 2: half the limit");
});

Deno.test("ReceiveQueue: waits are served in call order; settled waits are skipped", async () => {
  const q = new ReceiveQueue();
  const ac = new AbortController();
  const a = q.wait(Infinity, ac.signal);
  const b = q.wait(Infinity, undefined);
  const c = q.wait(Infinity, undefined);
  ac.abort(new Error("gone"));
  await assertRejects(() => a, Error, "gone");
  const [m1, m2] = [new Message(), new Message()];
  assert(q.push(m1));
  assert(q.push(m2));
  assertStrictEquals(await b, m1, "the aborted wait is skipped");
  assertStrictEquals(await c, m2);
  assertEquals(q.length, 0, "both went to waiters, none queued");
  // A message queued before the wait is taken at once.
  const m3 = new Message();
  q.push(m3);
  assertStrictEquals(await q.wait(Infinity, undefined), m3);
  // No wait: null at once (0 or negative), queued nothing.
  assertEquals(await q.wait(0, undefined), null);
  assertEquals(await q.wait(-5, undefined), null);
  // An already aborted signal rejects even with a message queued.
  q.push(new Message());
  await assertRejects(() => q.wait(Infinity, ac.signal), Error, "gone");
  assertEquals(q.length, 1);
});

Deno.test("ReceiveQueue: timed waits end with null in deadline order; the earlier one re-arms for the later", async () => {
  const q = new ReceiveQueue();
  const order: string[] = [];
  const late = q.wait(60, undefined).then((m) => order.push(`late:${m}`));
  const early = q.wait(5, undefined).then((m) => order.push(`early:${m}`));
  const untimed = q.wait(Infinity, undefined);
  await alive(early);
  assertEquals(order, ["early:null"]);
  await alive(late);
  assertEquals(order, ["early:null", "late:null"]);
  // The untimed wait is still live and takes the next message.
  const m = new Message();
  q.push(m);
  assertStrictEquals(await untimed, m);
  // A timed wait served before its deadline resolves with the message, not null later.
  const served = q.wait(10_000, undefined);
  const m2 = new Message();
  q.push(m2);
  assertStrictEquals(await served, m2);
  q.shutdown(new TofuError(Status.shutdownStarted, "Cannot receive: done"));
});

Deno.test("ReceiveQueue: a timed wait that was aborted does not block the ones behind it", async () => {
  const q = new ReceiveQueue();
  const ac = new AbortController();
  const first = q.wait(30, ac.signal);
  const second = q.wait(40, undefined);
  ac.abort(new Error("x"));
  await assertRejects(() => first, Error, "x");
  assertEquals(await alive(second), null);
  const m = new Message();
  assert(q.push(m));
  assertEquals(q.length, 1, "no live waiter left: queued");
});

Deno.test("ReceiveQueue: a settled wait behind a live one is skipped; the message goes on", async () => {
  const q = new ReceiveQueue();
  const ac = new AbortController();
  const a = q.wait(Infinity, undefined);
  const b = q.wait(Infinity, ac.signal);
  const c = q.wait(Infinity, undefined);
  ac.abort(new Error("b gone"));
  await assertRejects(() => b, Error, "b gone");
  const [m1, m2] = [new Message(), new Message()];
  q.push(m1);
  q.push(m2);
  assertStrictEquals(await a, m1);
  assertStrictEquals(await c, m2, "not lost to the aborted wait");
  assertEquals(q.length, 0);
});

Deno.test("ReceiveQueue: a wait of 0 ms ends at once and does not take a later message", async () => {
  const q = new ReceiveQueue();
  const zero = q.wait(0, undefined);
  const m = new Message();
  q.push(m);
  assertEquals(await zero, null);
  assertEquals(q.length, 1, "the message was queued, not given to the ended wait");
  assertStrictEquals(q.tryShift(), m);
});

Deno.test("ReceiveQueue: each timed wait ends at its own deadline, whatever the order of the calls", async () => {
  const q = new ReceiveQueue();
  const order: string[] = [];
  const note = (name: string) => (m: Message | null) => order.push(`${name}:${m}`);
  // A later wait must not push back the timer of an earlier one; after the earliest ends,
  // the timer is armed for the next earliest, not for the last one called.
  const waits = [
    q.wait(5, undefined).then(note("5")),
    q.wait(30, undefined).then(note("30")),
    q.wait(100, undefined).then(note("100")),
    q.wait(60, undefined).then(note("60")),
  ];
  const markers = [20, 45, 80].map((ms) =>
    new Promise<void>((r) => setTimeout(() => (order.push(`t${ms}`), r()), ms))
  );
  await Promise.all([...waits, ...markers]);
  assertEquals(order, ["5:null", "t20", "30:null", "t45", "60:null", "t80", "100:null"]);
});

Deno.test("ReceiveQueue: shutdown rejects waiters now and later, resumes readers, hands back messages", async () => {
  const q = new ReceiveQueue(1);
  const share = new ReadShare(10, 10);
  const queued = new Message();
  share.charge(queued);
  q.push(queued);
  assertEquals(share.queued, 1);
  let resumed = 0;
  q.whenRoom(() => resumed++);
  const err = new TofuError(Status.shutdownStarted, "Cannot receive: closing");
  const out = q.shutdown(err);
  assertEquals(out.length, 1);
  assertStrictEquals(out[0], queued);
  assertEquals([resumed, share.queued, q.length], [1, 0, 0]);
  assertFalse(q.push(new Message()), "a shut down queue takes nothing");
  assertStrictEquals(await q.wait(Infinity, undefined).catch((e) => e), err);
  q.shutdown(new TofuError(Status.shutdownStarted, "Cannot receive: again"));
  assertStrictEquals(await q.wait(0, undefined).catch((e) => e), err, "the first error stays");

  const q2 = new ReceiveQueue();
  const w1 = q2.wait(Infinity, undefined);
  const w2 = q2.wait(50, undefined);
  q2.shutdown(err);
  assertStrictEquals(await w1.catch((e) => e), err);
  assertStrictEquals(await w2.catch((e) => e), err);
});

// ---- Deadlines ------------------------------------------------------------------------

/** A watched channel that records its expiry. */
class Owned {
  expired: Array<[Expiry, number]> = [];
  #done!: () => void;
  readonly done = new Promise<void>((r) => this.#done = r);
  expire(what: Expiry, limitMs: number): void {
    this.expired.push([what, limitMs]);
    this.#done();
  }
}

function limits(o: Partial<Timeouts>): Timeouts {
  return { handshake: 0, frame: 0, idle: 0, writeStall: 0, ...o };
}

Deno.test("Deadlines: each limit must be an integer >= 0, named in the error", () => {
  for (const name of ["handshake", "frame", "idle", "writeStall"] as const) {
    for (const bad of [-1, 1.5]) {
      assertThrows(
        () => new Deadlines(limits({ [name]: bad })),
        RangeError,
        `Cannot create engine: ${name}TimeoutMs ${bad} is not a non-negative integer (0 turns it off)`,
      );
    }
  }
  const off = new Deadlines(limits({}));
  assertEquals(off.watch(new Owned()), null, "every limit off: nothing is watched");
  off.unwatch(null);
});

Deno.test("Deadlines: the handshake limit fires once, then the channel is no longer watched", async () => {
  const d = new Deadlines(limits({ handshake: 30, frame: 10_000, writeStall: 10_000 }));
  const a = new Owned();
  const b = new Owned();
  const wa = d.watch(a)!;
  const wb = d.watch(b)!;
  wb.frameDone(); // b completed its handshake
  await alive(a.done);
  assertEquals(a.expired, [["handshake", 30]]);
  await alive(pause(80));
  assertEquals(a.expired.length, 1, "expired once");
  assertEquals(b.expired, [], "a channel past its handshake does not expire");
  d.unwatch(wa); // already unwatched: harmless
  d.unwatch(wb); // the last one: the sweep stops (the sanitizer checks the interval is gone)
});

Deno.test("Deadlines: a frame left unfinished fires the frame limit; a finished one does not", async () => {
  const d = new Deadlines(limits({ frame: 30 }));
  const a = new Owned();
  const b = new Owned();
  const wa = d.watch(a)!;
  const wb = d.watch(b)!;
  wa.beforeRead(true); // bytes of a frame are buffered
  wb.beforeRead(true);
  wb.beforeRead(false); // b's frame completed before its next read
  await alive(a.done);
  assertEquals(a.expired, [["frame", 30]]);
  await alive(pause(60));
  assertEquals(b.expired, []);
  wb.beforeRead(true);
  await alive(b.done);
  assertEquals(b.expired, [["frame", 30]]);
  d.unwatch(wa);
  d.unwatch(wb);
});

Deno.test("Deadlines: a write the socket takes nothing of fires writeStall, before the handshake", async () => {
  // The sweep stamps a write when it first finds it in flight (up to a sweep period late),
  // so the handshake limit sits well clear of the write stall's firing on a loaded machine.
  const d = new Deadlines(limits({ writeStall: 30, handshake: 200 }));
  const a = new Owned();
  const b = new Owned();
  const wa = d.watch(a)!;
  const wb = d.watch(b)!;
  wa.beforeWrite();
  wb.frameDone();
  wb.beforeWrite();
  wb.afterWrite(); // b's write took bytes
  await alive(a.done);
  assertEquals(a.expired, [["writeStall", 30]]);
  await alive(pause(80));
  assertEquals(b.expired, []);
  d.unwatch(wb);
});

Deno.test("Deadlines: idle fires without reads or writes, never while a write waits", async () => {
  const d = new Deadlines(limits({ idle: 30 }));
  const a = new Owned();
  const b = new Owned();
  const wa = d.watch(a)!;
  const wb = d.watch(b)!;
  wb.beforeWrite(); // b has a write in flight: not idle
  await alive(a.done);
  assertEquals(a.expired, [["idle", 30]]);
  await alive(pause(60));
  assertEquals(b.expired, []);
  wb.afterWrite();
  await alive(b.done);
  assertEquals(b.expired, [["idle", 30]]);
  d.unwatch(wa);
});

Deno.test("Deadlines: reads keep a channel from going idle", async () => {
  const d = new Deadlines(limits({ idle: 300 }));
  const a = new Owned();
  const wa = d.watch(a)!;
  // Reads every 10 ms for 800 ms: more than twice the idle limit without an expiry.
  for (let i = 0; i < 80; i++) {
    await pause(10);
    wa.afterRead();
  }
  assertEquals(a.expired, []);
  await alive(a.done);
  assertEquals(a.expired, [["idle", 300]]);
});

/** A stepped clock for Deadlines: `t.now` is what the clock reads. */
function stepped(): { now: number; clock: () => number } {
  const t = { now: 1_000, clock: () => t.now };
  return t;
}

Deno.test("Deadlines on a stepped clock: each limit fires at exactly its value, not a tick before", () => {
  // writeStall: see the next test (writes read no clock; the sweep stamps them).
  for (const what of ["handshake", "frame", "idle"] as const) {
    const t = stepped();
    const d = new Deadlines(limits({ [what]: 100 }), t.clock);
    const a = new Owned();
    const w = d.watch(a)!;
    if (what === "frame") {
      w.frameDone();
      w.beforeRead(true); // the first byte of a frame, at 1,000
    }
    t.now = 1_099;
    d.sweep();
    assertEquals(a.expired, [], `${what}: 99 ms is not yet 100`);
    t.now = 1_100;
    d.sweep();
    assertEquals(a.expired, [[what, 100]], `${what}: fires at 100 ms`);
    t.now = 5_000;
    d.sweep();
    assertEquals(a.expired.length, 1, `${what}: once (the sweep stopped with its last channel)`);
  }
});

Deno.test("Deadlines on a stepped clock: a write stall fires between its value and its value plus one tick, never before", () => {
  // A write reads no clock: the first sweep that finds it in flight stamps it. The sweep
  // runs every half tick while the write-stall limit is on, so a write is found within a
  // half tick of its start and fires within another half tick of its value.
  const probe = new Deadlines(limits({ writeStall: 100 }));
  assertEquals([probe.tickMs, probe.periodMs], [25, 12]);
  for (let offset = 0; offset < 12; offset++) {
    const t = stepped();
    const d = new Deadlines(limits({ writeStall: 100 }), t.clock);
    const a = new Owned();
    const w = d.watch(a)!;
    w.frameDone();
    d.sweep(); // a sweep at 1,000 finds nothing in flight
    t.now = 1_000 + offset;
    w.beforeWrite(); // the write starts `offset` ms after that sweep
    const start = t.now;
    let sweepAt = 1_000;
    while (a.expired.length === 0 && sweepAt < 2_000) {
      sweepAt += d.periodMs;
      t.now = sweepAt;
      d.sweep();
      if (a.expired.length === 0) continue;
      assertEquals(a.expired, [["writeStall", 100]]);
      const late = sweepAt - start;
      assert(late >= 100, `offset ${offset}: fired ${late} ms after the write began, before 100`);
      assert(late <= 100 + d.tickMs, `offset ${offset}: fired ${late} ms after, past 100 + a tick`);
    }
    assertEquals(a.expired.length, 1, `offset ${offset}: fired`);
  }
});

Deno.test("Deadlines on a stepped clock: each write's stall is its own; a write that took bytes ends it", () => {
  const t = stepped();
  const d = new Deadlines(limits({ writeStall: 100 }), t.clock);
  const a = new Owned();
  const w = d.watch(a)!;
  w.frameDone();
  w.beforeWrite(); // write 1
  d.sweep(); // found in flight at 1,000
  t.now = 1_090;
  d.sweep();
  assertEquals(a.expired, [], "90 ms");
  w.afterWrite();
  w.beforeWrite(); // write 2 starts at 1,090: its stall starts over
  t.now = 1_100;
  d.sweep(); // found at 1,100 (100 ms after write 1 was found: not write 2's stall)
  t.now = 1_199;
  d.sweep();
  assertEquals(a.expired, [], "write 2 was found 99 ms ago");
  w.afterWrite();
  t.now = 1_500;
  d.sweep();
  assertEquals(a.expired, [], "no write in flight: no stall, however long");
  w.beforeWrite();
  d.sweep(); // write 3 found at 1,500
  t.now = 1_600;
  d.sweep();
  assertEquals(a.expired, [["writeStall", 100]]);
});

Deno.test("Deadlines on a stepped clock: times count from the event, and each event restarts its own", () => {
  const t = stepped();
  const d = new Deadlines(limits({ frame: 100, writeStall: 100, idle: 300 }), t.clock);
  const a = new Owned();
  const w = d.watch(a)!;
  t.now = 1_050;
  w.beforeRead(true); // a frame starts at 1,050
  t.now = 1_100;
  w.beforeRead(true); // still the same frame: its start stays 1,050
  t.now = 1_149;
  d.sweep();
  assertEquals(a.expired, []);
  w.beforeRead(false); // the frame completed
  t.now = 1_200;
  w.beforeWrite(); // a write starts at 1,200
  t.now = 1_250;
  w.afterWrite(); // and took bytes: active at 1,250
  t.now = 1_500;
  w.afterRead(); // active at 1,500
  t.now = 1_799;
  d.sweep();
  assertEquals(a.expired, [], "299 ms after the last read");
  t.now = 1_800;
  d.sweep();
  assertEquals(a.expired, [["idle", 300]], "300 ms after the last read, not after the watch");
});

Deno.test("Deadlines on a stepped clock: a frame's time counts from its first byte, not its last read", () => {
  const t = stepped();
  const d = new Deadlines(limits({ frame: 100 }), t.clock);
  const a = new Owned();
  const w = d.watch(a)!;
  t.now = 1_050;
  w.beforeRead(true); // the frame's first bytes are buffered at 1,050
  t.now = 1_120;
  w.beforeRead(true); // more reads of the same frame do not restart it
  t.now = 1_150;
  d.sweep();
  assertEquals(a.expired, [["frame", 100]]);
});

Deno.test("Deadlines on a stepped clock: a limit that is off never fires, however long", () => {
  const t = stepped();
  // Only the handshake limit is on: a stalled frame, a stalled write and a quiet channel
  // must not close the channel once its handshake is done.
  const d = new Deadlines(limits({ handshake: 100 }), t.clock);
  const a = new Owned();
  const w = d.watch(a)!;
  w.frameDone();
  w.beforeRead(true);
  w.beforeWrite();
  t.now = 1_000_000;
  d.sweep();
  assertEquals(a.expired, []);
  d.unwatch(w);
});

Deno.test("Deadlines on a stepped clock: without an idle limit, reads and writes never read the clock", () => {
  // A write starting never reads it (the write-stall limit is on here): the sweep stamps it.
  const t = stepped();
  let reads = 0;
  const d = new Deadlines(limits({ handshake: 100, writeStall: 100 }), () => (reads++, t.now));
  const w = d.watch(new Owned())!;
  const before = reads;
  w.afterRead();
  w.beforeWrite();
  w.afterWrite();
  assertEquals(reads, before, "activeAt is not refreshed without an idle limit");
  assertEquals(w.activeAt, 1_000);
  const idle = new Deadlines(limits({ idle: 100 }), t.clock);
  const withIdle = idle.watch(new Owned())!;
  t.now = 1_040;
  withIdle.afterRead();
  assertEquals(withIdle.activeAt, 1_040);
  t.now = 1_070;
  withIdle.afterWrite();
  assertEquals(withIdle.activeAt, 1_070);
  d.unwatch(w);
  idle.unwatch(withIdle);
});

Deno.test("Deadlines: the sweep runs every quarter of the smallest limit, between 25 ms and 1 s", () => {
  assertEquals(new Deadlines(limits({ handshake: 40 })).tickMs, 25);
  assertEquals(new Deadlines(limits({ handshake: 400 })).tickMs, 100);
  assertEquals(new Deadlines(limits({ handshake: 403, frame: 10_000 })).tickMs, 100);
  assertEquals(new Deadlines(limits({ idle: 10_000, writeStall: 60_000 })).tickMs, 1000);
  // With the write-stall limit on, the sweep runs every half tick (writes are stamped by it).
  assertEquals(new Deadlines(limits({ handshake: 400 })).periodMs, 100);
  assertEquals(new Deadlines(limits({ handshake: 400, writeStall: 1000 })).periodMs, 50);
  assertEquals(new Deadlines(limits({ idle: 10_000, writeStall: 60_000 })).periodMs, 500);
});

// ---- Timers that must not keep a process alive ----------------------------------------

Deno.test("unref'd deadlines, sleeps and sweeps let a process exit; ref'd waits finish first", async () => {
  const child = new Deno.Command("deno", {
    // Env permission for Stryker's variable lets a mutant be active in the child too.
    args: [
      "run",
      "--no-prompt",
      "--allow-env=__STRYKER_ACTIVE_MUTANT__",
      new URL("./_timers_child.ts", import.meta.url).pathname,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // A child kept alive by an hour-long timer is killed after 60 s and the test fails.
  const guard = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const out = await child.output();
  clearTimeout(guard);
  const text = new TextDecoder().decode(out.stdout);
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  assertEquals(text.trim().split("\n").sort(), [
    "served",
    "slept",
    "the other timed wait ended: null",
    "timed wait ended: null",
  ]);
});
