import { assert, assertEquals, assertNotStrictEquals, assertStrictEquals } from "@std/assert";
import { Engine, Message } from "../mod.ts";
import { MessagePool } from "../src/_pool.ts";

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

Deno.test("MessagePool.wait(): waiters are served in order on the macrotask after a put", async () => {
  const macrotask = () => new Promise((r) => setTimeout(r, 0));
  const pool = new MessagePool(0, 4);
  // Readers may grow the pool to its maximum first (the receive window): use that up.
  for (let i = 0; i < 4; i++) assert(pool.take() !== null);
  assertEquals(pool.take(), null, "grown to the maximum");
  const got: Array<[number, Message]> = [];
  pool.wait((m) => got.push([1, m]));
  const withdrawn = pool.wait((m) => got.push([2, m]));
  pool.wait((m) => got.push([3, m]));
  pool.wait((m) => got.push([4, m]));
  withdrawn.cancel();
  const a = new Message();
  const b = new Message();
  pool.put(a);
  pool.put(b);
  assertEquals(got.length, 0, "not woken per put");
  await macrotask();
  assertEquals(got.map(([n]) => n), [1, 3], "the withdrawn waiter is skipped, not woken");
  assertEquals(new Set(got.map(([, m]) => m)), new Set([a, b]));
  assertEquals(pool.size, 0, "handed over, not pooled");
  pool.put(new Message());
  await macrotask();
  assertEquals(got.map(([n]) => n), [1, 3, 4]);
  pool.put(new Message());
  await macrotask();
  assertEquals(pool.size, 1, "no waiter left: pooled");
  pool.wait((m) => got.push([5, m]));
  assertEquals(got.map(([n]) => n), [1, 3, 4, 5], "a free message is handed at once");
  pool.clear();
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
