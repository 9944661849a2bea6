// The Peers layer's FIFO (src/_async_queue.ts) on its own: order, takers served in call
// order, close and drain, and the compaction of its arrays after many items. Written to
// kill the mutants that the socket tests (which only ever queue a few items) let survive.

import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import { AsyncQueue, done } from "../src/_async_queue.ts";

Deno.test("AsyncQueue: items come out in order; size counts what is queued", async () => {
  const q = new AsyncQueue<number>();
  assertEquals([q.size, q.closed], [0, false]);
  assert(q.push(1));
  assert(q.push(2));
  assert(q.push(3));
  assertEquals(q.size, 3);
  assertEquals(await q.take(), 1);
  assertEquals(q.size, 2);
  assertEquals(await q.take(), 2);
  assertEquals(await q.take(), 3);
  assertEquals(q.size, 0);
  // Emptied, the queue starts over and still keeps order.
  q.push(4);
  q.push(5);
  assertEquals(q.size, 2);
  assertEquals([await q.take(), await q.take()], [4, 5]);
});

Deno.test("AsyncQueue: waiting takers are served in call order, one item each", async () => {
  const q = new AsyncQueue<string>();
  const a = q.take();
  const b = q.take();
  const c = q.take();
  assertEquals(q.size, 0);
  assert(q.push("x"));
  assert(q.push("y"));
  // The third taker still waits: the next push is its, not queued.
  assert(q.push("z"));
  assertEquals(q.size, 0);
  assertEquals(await Promise.all([a, b, c]), ["x", "y", "z"]);
  // Once every taker was served, new items queue again, and new takers are served.
  q.push("w");
  assertEquals(q.size, 1);
  const d = q.take();
  const e = q.take();
  q.push("v");
  assertEquals([await d, await e], ["w", "v"]);
  assertEquals(q.size, 0);
});

Deno.test("AsyncQueue: takers waiting in two rounds are each served once", async () => {
  const q = new AsyncQueue<number>();
  const first = [q.take(), q.take()];
  q.push(1);
  // One taker served, one still waiting; a new one joins behind it.
  const late = q.take();
  q.push(2);
  q.push(3);
  assertEquals(await Promise.all([...first, late]), [1, 2, 3]);
  q.push(4);
  assertEquals(await q.take(), 4);
});

Deno.test("AsyncQueue: close() ends waiting takers with done; queued items can still be taken", async () => {
  const q = new AsyncQueue<number>();
  const waiting = [q.take(), q.take()];
  q.close();
  assert(q.closed);
  assertEquals(await Promise.all(waiting), [done, done]);
  assertEquals(q.push(1), false, "a closed queue keeps nothing");
  assertEquals(q.size, 0);
  assertStrictEquals(await q.take(), done);

  const r = new AsyncQueue<number>();
  r.push(7);
  r.push(8);
  r.close();
  r.close(); // idempotent
  assertEquals(r.size, 2);
  assertEquals([await r.take(), await r.take()], [7, 8]);
  assertStrictEquals(await r.take(), done);
  assertStrictEquals(await r.take(), done);
});

Deno.test("AsyncQueue: a taker served after a close of another round gets done, not a stale resolver", async () => {
  const q = new AsyncQueue<number>();
  const a = q.take();
  q.push(1); // serves a
  const b = q.take();
  q.close(); // b ends with done
  assertEquals([await a, await b], [1, done]);
});

Deno.test("AsyncQueue: drain() removes and returns every queued item", async () => {
  const q = new AsyncQueue<number>();
  assertEquals(q.drain(), []);
  for (let i = 0; i < 5; i++) q.push(i);
  assertEquals(await q.take(), 0);
  assertEquals(q.drain(), [1, 2, 3, 4]);
  assertEquals(q.size, 0);
  assertEquals(q.drain(), []);
  // The queue works on after a drain.
  q.push(9);
  assertEquals(q.size, 1);
  assertEquals(await q.take(), 9);
  // A drain of a closed queue gives what was left; then take() says done.
  q.push(10);
  q.close();
  assertEquals(q.drain(), [10]);
  assertStrictEquals(await q.take(), done);
});

Deno.test("AsyncQueue: thousands of items taken while more arrive keep their order (compaction)", async () => {
  const q = new AsyncQueue<number>();
  let next = 0;
  let expected = 0;
  // Keep more than 1,024 taken slots ahead of a long tail, so the queue compacts, then
  // keep pushing and taking across the compaction.
  for (let i = 0; i < 3000; i++) q.push(next++);
  for (let i = 0; i < 2000; i++) assertEquals(await q.take(), expected++);
  assertEquals(q.size, 1000);
  for (let i = 0; i < 500; i++) q.push(next++);
  assertEquals(q.size, 1500);
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 1500; i++) assertEquals(await q.take(), expected++);
    for (let i = 0; i < 1500; i++) q.push(next++);
    assertEquals(q.size, 1500);
  }
  assertEquals(q.drain().length, 1500);
  assertEquals(q.size, 0);
});
