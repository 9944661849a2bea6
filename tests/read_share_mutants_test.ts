// Unit tests of src/_read_share.ts for the mutants the mapped tests left alive (review of
// the changes since 19ba0d3). Like tests/mutants_engine_units_test.ts, each test drives
// ReadShare / HeldBudget directly: no socket, no timer.

import { assertEquals } from "@std/assert";
import { Message } from "../mod.ts";
import {
  dequeued,
  discharge,
  ENGINE_HELD_ALLOWANCE,
  enqueued,
  HeldBudget,
  ReadShare,
} from "../src/_read_share.ts";

// What an empty message is charged (its 16-byte frame and the fixed 512 bytes).
const EMPTY = 16 + 512;

/** A message charged `bytes` (16 + text headers + body + 512). */
function sized(bytes: number): Message {
  const m = new Message();
  const rest = bytes - EMPTY;
  m.bhdr.textHeadersLength = rest >> 1;
  m.bhdr.bodyLength = rest - (rest >> 1);
  return m;
}

Deno.test("HeldBudget: over at exactly its bound", () => {
  const budget = new HeldBudget(2 * EMPTY);
  const share = new ReadShare(Infinity, Infinity, Infinity, budget);
  share.charge(new Message());
  assertEquals(budget.over, false);
  share.charge(new Message());
  assertEquals([budget.bytes, budget.over], [2 * EMPTY, true]);
});

Deno.test("ReadShare: a reader paused on a full window resumes at half of it, not before", () => {
  const share = new ReadShare(100, 4);
  const ms = [new Message(), new Message(), new Message(), new Message()];
  for (const m of ms) {
    share.charge(m);
    enqueued(m);
  }
  assertEquals([share.queued, share.full], [4, true]);
  let woken = 0;
  share.whenFree(() => woken++);
  dequeued(ms[0]!);
  assertEquals([share.queued, share.full, woken], [3, false, 0], "3 unread > 2: still paused");
  dequeued(ms[1]!);
  assertEquals([share.queued, woken], [2, 1], "down to half the window: woken");
});

Deno.test("ReadShare: a reader stopped by its byte limit is not woken while still at it", () => {
  const share = new ReadShare(Infinity, Infinity, 2 * EMPTY);
  const [a, b, c] = [new Message(), new Message(), new Message()];
  share.charge(a);
  share.charge(b);
  share.charge(c);
  let woken = 0;
  share.whenFree(() => woken++);
  discharge(a); // 2 * EMPTY held: exactly at the limit, still full
  assertEquals([share.heldBytes, share.full, woken], [2 * EMPTY, true, 0]);
  discharge(b);
  assertEquals([share.full, woken], [false, 1]);
  discharge(c);
});

Deno.test("ReadShare: a reader stopped by the budget alone is woken by another channel's return", () => {
  // `a` holds its allowance and every one of its messages is already taken (none queued):
  // nothing of its own will call check(), only the budget can wake it.
  const Q = ENGINE_HELD_ALLOWANCE / 2;
  const budget = new HeldBudget(4 * Q + 500);
  const a = new ReadShare(Infinity, Infinity, Infinity, budget);
  const b = new ReadShare(Infinity, Infinity, Infinity, budget);
  const b1 = sized(1000);
  b.charge(b1);
  const [a1, a2] = [sized(2 * Q), sized(2 * Q)];
  a.charge(a1);
  a.charge(a2);
  assertEquals([budget.over, a.full], [true, true]);
  let woken = 0;
  a.whenFree(() => woken++);
  discharge(b1); // the total is below the budget now
  assertEquals([budget.over, a.full, woken], [false, false, 1]);
  discharge(a1);
  discharge(a2);
});

Deno.test("HeldBudget: a withdrawn wait is dropped from the budget, not checked again", () => {
  const Q = ENGINE_HELD_ALLOWANCE / 2;
  const budget = new HeldBudget(4 * Q);
  const a = new ReadShare(Infinity, Infinity, Infinity, budget);
  const [a1, a2] = [sized(2 * Q), sized(2 * Q)];
  a.charge(a1);
  a.charge(a2);
  let checks = 0;
  const check = a.check.bind(a);
  a.check = () => {
    checks++;
    check();
  };
  a.whenFree(() => {})(); // waits on the budget, then withdraws
  const b = new ReadShare(Infinity, Infinity, Infinity, budget);
  const b1 = new Message();
  b.charge(b1);
  discharge(b1); // the total is back to 4 * Q: still at the budget
  budget.release(1); // below it: a withdrawn share is no longer among those checked
  assertEquals(checks, 0);
  budget.bytes += 1;
  discharge(a1);
  discharge(a2);
});
