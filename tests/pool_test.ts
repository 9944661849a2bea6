import { assert, assertEquals, assertNotStrictEquals, assertStrictEquals } from "@std/assert";
import { Engine, Message, TofuError } from "../mod.ts";
import { MessagePool } from "../src/_pool.ts";
import { ReadShare } from "../src/_read_share.ts";
import { ReceiveQueue } from "../src/_receive_queue.ts";

Deno.test("MessagePool starts with initial messages and keeps at most max", () => {
  const pool = new MessagePool(4, 6);
  assertEquals(pool.size, 4);
  const got = [1, 2, 3, 4].map(() => pool.get("poolOnly"));
  assert(got.every((m) => m instanceof Message));
  assertEquals(pool.get("poolOnly"), null);
  const extra = [pool.get("always")!, pool.get("always")!, pool.get("always")!];
  for (const m of [...got, ...extra]) pool.put(m!);
  assertEquals(pool.size, 6, "the seventh message is dropped");
});

Deno.test("MessagePool: max below initial is raised to initial", () => {
  assertEquals(new MessagePool(8, 2).max, 8);
});

Deno.test("MessagePool.put() twice is a no-op; put resets the message", () => {
  const pool = new MessagePool(1, 4);
  const m = pool.get("always")!;
  m.body.set("x");
  m.bhdr.messageId = 9n;
  pool.put(m);
  pool.put(m);
  assertEquals(pool.size, 1);
  const again = pool.get("poolOnly")!;
  assertStrictEquals(again, m);
  assertEquals(again.body.byteLength, 0);
  assertEquals(again.bhdr.messageId, 0n);
});

Deno.test("MessagePool: first messages share one slab; grown buffers are kept", () => {
  const pool = new MessagePool(3, 3);
  const a = pool.get("poolOnly")!;
  const b = pool.get("poolOnly")!;
  assertStrictEquals(a.body.bytes().buffer, b.body.bytes().buffer, "one ArrayBuffer slab");
  a.body.set(new Uint8Array(10_000));
  const grown = a.body.bytes().buffer;
  assertNotStrictEquals(grown, b.body.bytes().buffer);
  pool.put(a);
  const a2 = pool.get("poolOnly")!;
  assertStrictEquals(a2, a);
  a2.body.set(new Uint8Array(9_000));
  assertStrictEquals(a2.body.bytes().buffer, grown, "the grown buffer is reused");
});

Deno.test("ReadShare: a put back message frees its own channel's share, once, and wakes its reader", () => {
  const pool = new MessagePool(0, 4);
  const a = new ReadShare(2, Infinity);
  const b = new ReadShare(2, Infinity);
  const [m1, m2, m3] = [pool.get("always")!, pool.get("always")!, pool.get("always")!];
  a.charge(m1);
  a.charge(m2);
  b.charge(m3);
  assertEquals([a.full, b.full], [true, false]);
  let woken = 0;
  const cancelled = a.whenFree(() => woken += 100);
  cancelled();
  a.whenFree(() => woken++);
  pool.put(m3); // b's: a stays held back
  assertEquals([a.held, b.held, woken], [2, 0, 0]);
  pool.put(m1);
  assertEquals([a.held, woken], [1, 1], "the withdrawn wait is not called");
  pool.put(m1); // a second put is ignored: no double credit
  assertEquals(a.held, 1);
  // A message of a closed channel credits that channel's share only, never the next
  // channel that gets the same number.
  const next = new ReadShare(2, Infinity);
  next.charge(pool.get("always")!);
  pool.put(m2);
  assertEquals([a.held, next.held], [0, 1]);
  let at = 0;
  next.whenFree(() => at++);
  assertEquals(at, 1, "below its limit: called at once");
});

Deno.test("Engine get/put: poolSize, poolOnly null, null put is a no-op", async () => {
  await using engine = new Engine({ initialPoolMsgs: 2, maxPoolMsgs: 3 });
  assertEquals(engine.poolSize, 2);
  const a = engine.get("poolOnly");
  const b = engine.get("poolOnly");
  assertEquals(engine.get("poolOnly"), null);
  const c = engine.get("always")!;
  engine.put(null);
  engine.put(undefined);
  engine.put(a);
  engine.put(a);
  engine.put(b);
  engine.put(c);
  assertEquals(engine.poolSize, 3);
});

Deno.test("ReadShare: its window of unread queued messages holds it back until one is taken", () => {
  const share = new ReadShare(100, 2);
  const q = new ReceiveQueue();
  const ms = [new Message(), new Message(), new Message()];
  for (const m of ms) share.charge(m);
  q.push(ms[0]!);
  q.push(ms[1]!);
  assertEquals([share.queued, share.full, share.atLimit], [2, true, false]);
  let woken = 0;
  share.whenFree(() => woken++);
  assertStrictEquals(q.tryShift(), ms[0]);
  assertEquals([share.queued, woken], [1, 1]);
  q.push(ms[2]!);
  assertEquals(q.shutdown(new TofuError(23, "Cannot receive: gone")).length, 2);
  assertEquals([share.queued, share.held], [0, 3]);
});
