// Behaviour the hot-path changes of issue #10 must keep: what is written is byte for byte
// what was posted, whatever the batching, for TCP and Unix sockets alike.

import { assert, assertEquals } from "@std/assert";
import { Message } from "../mod.ts";
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
