// Engine construction defaults and its small public surface (src/engine.ts): pool sizing,
// channel limit, queued-bytes limit, put of nothing, create/destroy checks.

import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { Engine, Status, TofuError } from "../mod.ts";

/** How many messages a pool keeps: take them all "always", put them back, count. */
function keptAfterPutting(engine: Engine, n: number): number {
  const taken = Array.from({ length: n }, () => engine.get("always")!);
  for (const m of taken) engine.put(m);
  return engine.poolSize;
}

Deno.test("Engine defaults: 16 messages ready, at most 64 kept", async () => {
  await using engine = new Engine();
  assertEquals(engine.poolSize, 16);
  assertEquals(keptAfterPutting(engine, 100), 64);
  assertEquals(engine.channelCount, 0);
});

Deno.test("Engine pool options: initialPoolMsgs, and maxPoolMsgs never under it", async () => {
  await using a = new Engine({ initialPoolMsgs: 3, maxPoolMsgs: 5 });
  assertEquals(a.poolSize, 3);
  assertEquals(keptAfterPutting(a, 10), 5);
  await using b = new Engine({ initialPoolMsgs: 8, maxPoolMsgs: 2 });
  assertEquals(b.poolSize, 8);
  assertEquals(keptAfterPutting(b, 20), 8, "maxPoolMsgs is raised to initialPoolMsgs");
  await using c = new Engine({ initialPoolMsgs: 100 });
  assertEquals(keptAfterPutting(c, 150), 100, "the default max of 64 is raised too");
  await using d = new Engine({ initialPoolMsgs: 0 });
  assertEquals(d.poolSize, 0);
  assertEquals(d.get("poolOnly"), null);
});

Deno.test("Engine maxChannels defaults to 65534; a bad value is a RangeError", async () => {
  assertEquals(
    assertThrows(() => new Engine({ maxChannels: 65535 }), RangeError).message,
    "Cannot create engine: maxChannels 65535 is not 1..65534",
  );
  assertEquals(
    assertThrows(() => new Engine({ maxChannels: 0 }), RangeError).message,
    "Cannot create engine: maxChannels 0 is not 1..65534",
  );
  await using engine = new Engine({ maxChannels: 65534 });
  assertEquals(engine.channelCount, 0);
});

Deno.test("Engine maxQueuedBytes must be a positive integer", () => {
  for (const bad of [0, -1, 1.5]) {
    assertEquals(
      assertThrows(() => new Engine({ maxQueuedBytes: bad }), RangeError).message,
      `Cannot create engine: maxQueuedBytes ${bad} is not a positive integer`,
    );
  }
});

Deno.test("Engine.put ignores null and undefined; create after close and foreign destroy are refused", async () => {
  const engine = new Engine({ initialPoolMsgs: 2 });
  engine.put(null);
  engine.put(undefined);
  assertEquals(engine.poolSize, 2);
  const m = engine.get("poolOnly")!;
  assertEquals(engine.poolSize, 1);
  engine.put(m);
  assertEquals(engine.poolSize, 2);
  const other = new Engine();
  const foreign = other.create();
  const err = await assertRejects(() => engine.destroy(foreign), TypeError);
  assertEquals(err.message, "Cannot destroy group: it belongs to another engine");
  await other.close();
  await engine[Symbol.asyncDispose]();
  const closed = assertThrows(() => engine.create(), TofuError);
  assertEquals(closed.status, Status.shutdownStarted);
  assertEquals(closed.message, "Cannot create group: the engine is closed");
});
