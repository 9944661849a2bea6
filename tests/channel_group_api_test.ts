// ChannelGroup argument checks, updateReceiver after destroy, and async iteration that
// yields messages (src/channel_group.ts).

import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { Engine, type Message, OpCode, Status, TofuError } from "../mod.ts";

Deno.test("waitReceive refuses a timeout that is not a number >= 0", async () => {
  await using engine = new Engine();
  const g = engine.create();
  for (const bad of [-1, NaN, "5" as unknown as number, -Infinity]) {
    const err = await assertRejects(() => g.waitReceive(bad), RangeError);
    assertEquals(err.message, `Cannot wait: timeoutMs ${bad} is not a number >= 0`);
  }
  assertEquals(await g.waitReceive(0), null);
});

Deno.test("updateReceiver: refused after destroy and for a message already put", async () => {
  await using engine = new Engine();
  const g = engine.create();
  const m = engine.get("always")!;
  engine.put(m);
  const notYours = assertThrows(() => g.updateReceiver(m), TofuError);
  assertEquals(notYours.status, Status.notAllowed);
  assertEquals(
    notYours.message,
    "Cannot update receiver: the message is not yours (already posted or put)",
  );
  await engine.destroy(g);
  const err = assertThrows(() => g.updateReceiver(), TofuError);
  assertEquals(err.status, Status.shutdownStarted);
  assertEquals(err.message, "Cannot update receiver: the group is destroyed");
});

Deno.test("for await over a group yields each message in order until the group is destroyed", async () => {
  await using engine = new Engine();
  const g = engine.create();
  for (let i = 0; i < 3; i++) {
    const m = engine.get("always")!;
    m.bhdr.opCode = OpCode.Signal;
    m.body.set(`n${i}`);
    g.updateReceiver(m);
  }
  const seen: string[] = [];
  for await (const m of g) {
    seen.push(m.body.text());
    engine.put(m as Message);
    if (seen.length === 3) {
      g.updateReceiver(); // one more, then destroy while the loop waits
      setTimeout(() => engine.destroy(g), 10);
    }
  }
  assertEquals(seen, ["n0", "n1", "n2", ""]);
});
