// Behaviour the hot-path changes of issue #10 must keep: what is written is byte for byte
// what was posted, whatever the batching, for TCP and Unix sockets alike.

import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import { Engine, Message, OpCode, Status, TofuError } from "../mod.ts";
import { connect, expect, listen, make, recv, transports } from "./_fixtures.ts";
import { SendLane } from "../src/_send_lane.ts";
import { validateForPost } from "../src/_validate.ts";

function big(n: number, fill: number): Message {
  const m = new Message();
  m.bhdr.channelNumber = 1;
  m.bhdr.messageId = BigInt(fill);
  m.body.set(new Uint8Array(n).fill(fill));
  validateForPost(m);
  return m;
}

Deno.test("a send lane batches several large frames into one chunk, in order", () => {
  const lane = new SendLane();
  const size = 16 + 65535;
  for (let i = 1; i <= 8; i++) lane.append(big(65535, i), size);
  const c = lane.next()!;
  // One write takes every frame: one write per 64 KiB frame cost as much as its copy.
  assertEquals(c.len - c.sent, 8 * size);
  for (let i = 0; i < 8; i++) {
    const p = c.sent + i * size;
    assertEquals(c.buf[p + 11], i + 1); // message id
    assertEquals(c.buf[p + 16], i + 1);
    assertEquals(c.buf[p + size - 1], i + 1);
  }
  let settled = 0;
  lane.settle(c, c.len, () => settled++);
  assertEquals(settled, 8);
  assertEquals(lane.next(), null);
  assert(lane.frames === 0);
});

for (const t of transports) {
  Deno.test(`${t.name}: a reader decodes over a put-back message without leftovers`, async () => {
    await using engine = new Engine({ initialPoolMsgs: 4, maxPoolMsgs: 4 });
    const server = await listen(engine, t);
    const link = await connect(engine, t, server);
    // A full message first: headers, body, more, a large id.
    const full = make(engine, link.clientCh, OpCode.Request, "x".repeat(300), 2n ** 63n + 5n);
    full.headers.append("Job-ID", "7");
    full.bhdr.more = 1;
    link.client.post(full);
    const a = expect(await recv(server.group), OpCode.Request, Status.success);
    assertEquals([a.headers.get("Job-ID"), a.body.byteLength, a.bhdr.more], ["7", 300, 1]);
    // Dirty it as an application may, then put it back: readers take messages without a
    // reset (decoding overwrites every field), so the next frame must show none of this.
    a.error = new TofuError(Status.sendFailed, "Cannot test: left over");
    a.bhdr.internalA = 1;
    engine.put(a);
    link.client.post(make(engine, link.clientCh, OpCode.Signal, "", 3n));
    const b = expect(await recv(server.group), OpCode.Signal, Status.success);
    assertStrictEquals(b, a, "the reader reused the message put back");
    assertEquals(
      [b.headers.byteLength, b.body.byteLength, b.bhdr.more, b.bhdr.messageId, b.bhdr.internalA],
      [0, 0, 0, 3n, 0],
    );
    assertEquals(b.error, undefined);
    assertEquals([...b.headers], []);
    engine.put(b);
  });
}
