// The decoder's library-internal receive helpers (src/codec.ts) that the I/O channel
// uses: a large frame completed in its message (spillFrame and its companions).
// Sans-IO: every byte is pushed or read by hand, so every count is known.

import { assert, assertEquals } from "@std/assert";
import {
  dropSpilled,
  encodeFrame,
  FrameDecoder,
  hasLargePartial,
  spillFrame,
  takeSpilled,
} from "../src/codec.ts";
import { Message } from "../src/message.ts";

function frame(body: Uint8Array | string, id = 1n, header = ""): Uint8Array {
  const m = new Message();
  m.bhdr.messageId = id;
  m.bhdr.channelNumber = 9;
  if (header) m.headers.append("x-h", header);
  m.body.set(body);
  return encodeFrame(m);
}

Deno.test("spillFrame: a large frame pushed in pieces is completed in its message, the next frame stays buffered", () => {
  const body = new Uint8Array(40_000).map((_, i) => (i * 31) & 0xff);
  const big = frame(body, 5n, "v");
  const after = frame("after", 6n);
  const dec = new FrameDecoder();
  dec.push(big.subarray(0, 16 + 5)); // the text headers are not all in
  assert(!hasLargePartial(dec), "text headers incomplete: not yet");
  dec.push(big.subarray(21, 1000));
  assert(!hasLargePartial(dec), "under 16 KiB of it in: not yet (its message reserves the body)");
  dec.push(big.subarray(1000, 16_384));
  assert(hasLargePartial(dec));
  const target = new Message();
  target.body.set("stale content");
  spillFrame(dec, target);
  assert(!hasLargePartial(dec), "one spilled frame at a time");
  assertEquals(dec.buffered, 16_384, "the spilled bytes still count as buffered");
  assert(!dec.atFrameBoundary);
  assertEquals(takeSpilled(dec), null, "not complete");
  dec.push(big.subarray(16_384, 30_000));
  assertEquals([dec.buffered, takeSpilled(dec)], [30_000, null]);
  dec.push(new Uint8Array([...big.subarray(30_000), ...after]));
  assertEquals(dec.buffered, big.length + after.length);
  assertEquals(takeSpilled(dec), target);
  assertEquals(dec.buffered, after.length, "only the next frame is left");
  assertEquals(takeSpilled(dec), null, "let go once taken");
  assertEquals(target.bhdr.messageId, 5n);
  assertEquals(target.bhdr.channelNumber, 9);
  assertEquals(target.headers.get("x-h"), "v");
  assertEquals(target.body.bytes(), body);
  const next = new Message();
  assert(dec.next(next));
  assertEquals([next.bhdr.messageId, next.body.text()], [6n, "after"]);
  assert(dec.atFrameBoundary);
});

Deno.test("spillFrame: bytes read into writable() go into the message; dropSpilled lets go of an incomplete one", () => {
  const body = new Uint8Array(20_000).fill(7);
  const big = frame(body, 2n);
  const dec = new FrameDecoder();
  dec.push(big.subarray(0, 100));
  const target = new Message();
  spillFrame(dec, target);
  const w = dec.writable();
  w.set(big.subarray(100, 5000));
  dec.commit(4900);
  assertEquals(dec.buffered, 5000);
  assertEquals(takeSpilled(dec), null);
  assertEquals(dropSpilled(dec), target);
  assertEquals(dropSpilled(dec), null);
  assert(dec.atFrameBoundary, "nothing left once dropped");
  assertEquals(dec.buffered, 0);
});
