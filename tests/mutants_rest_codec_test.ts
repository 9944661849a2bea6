// The frame decoder's buffer sizing and its judgement of partial headers (src/codec.ts),
// written for mutants that the codec tests let through (issue #13, docs/testing.md,
// "mut-rest: the last files"): writable() grows the buffer only when the rest of the frame
// does not fit, never from length fields that are not in yet, and moves the pending bytes
// only when it must; a bad header is judged once all 16 of its bytes are in, by next() and
// hasFrame() alike; hasFrame() asked twice gives the same answer.

import { assert, assertEquals, assertInstanceOf, assertThrows } from "@std/assert";
import { encodeFrame, FrameDecoder, Message, OpCode, Status, TofuError } from "../mod.ts";

/** A Signal frame on channel 1 with `body` (bytes or text). */
function frame(body: string | Uint8Array): Uint8Array {
  const m = new Message();
  m.bhdr.channelNumber = 1;
  m.bhdr.opCode = OpCode.Signal;
  m.body.set(body);
  return encodeFrame(m);
}

function next(dec: FrameDecoder): Message | null {
  const m = new Message();
  return dec.next(m) ? m : null;
}

Deno.test("FrameDecoder.writable: with less than a header buffered it offers the free space as it is, whatever stale bytes lie beyond", () => {
  const dec = new FrameDecoder({ initialCapacity: 128 });
  // A first frame whose body (0xff bytes) fills the buffer at offsets 16..75, then consumed.
  dec.push(frame(new Uint8Array(60).fill(0xff)));
  assertEquals(next(dec)?.body.byteLength, 60);
  assertEquals(dec.buffered, 0);
  // An empty frame and the first 4 bytes of the next one: after the empty frame is taken,
  // the partial header sits at offset 16, and offsets 28..31 (where its length fields will
  // go) still hold 0xff from the first body: 65,535 and 65,535 if they were read.
  const second = frame("");
  const third = frame("abc");
  const chunk = new Uint8Array(20);
  chunk.set(second);
  chunk.set(third.subarray(0, 4), 16);
  dec.push(chunk);
  assertEquals(next(dec)?.body.byteLength, 0);
  assertEquals(dec.buffered, 4);
  const w = dec.writable();
  assertEquals(dec.capacity, 128, "not grown for a frame whose length is not known yet");
  assertEquals(w.length, 128 - 20, "the free space after the 4 pending bytes");
  w.set(third.subarray(4));
  dec.commit(third.length - 4);
  assertEquals(next(dec)?.body.text(), "abc");
});

Deno.test("FrameDecoder.writable: when the rest of a frame fits in the free space it neither grows the buffer nor moves the pending bytes", () => {
  // The rest fits with room to spare: the buffer keeps its size.
  const roomy = new FrameDecoder({ initialCapacity: 64 });
  const f = frame("x".repeat(44)); // 60 bytes
  roomy.push(f.subarray(0, 40));
  const w1 = roomy.writable();
  assertEquals(roomy.capacity, 64, "20 bytes missing, 24 free: no growth");
  assertEquals(w1.length, 24);
  w1.set(f.subarray(40));
  roomy.commit(20);
  assertEquals(next(roomy)?.body.text(), "x".repeat(44));

  // The rest fits exactly in the free space behind the pending bytes: they stay where they
  // are (offset 16), and exactly that space is offered.
  const exact = new FrameDecoder({ initialCapacity: 64 });
  const b = frame("y".repeat(32)); // 48 bytes
  const chunk = new Uint8Array(32);
  chunk.set(frame(""));
  chunk.set(b.subarray(0, 16), 16);
  exact.push(chunk);
  assertEquals(next(exact)?.body.byteLength, 0);
  assertEquals(exact.buffered, 16);
  const w2 = exact.writable();
  assertEquals(exact.capacity, 64);
  assertEquals([w2.byteOffset, w2.length], [32, 32], "the 32 bytes after the pending header");
  w2.set(b.subarray(16));
  exact.commit(32);
  assertEquals(next(exact)?.body.text(), "y".repeat(32));
});

Deno.test("FrameDecoder.writable: a frame of exactly 16 KiB is not a large frame (no growth to maxCapacity)", () => {
  const body = new Uint8Array(16 * 1024 - 16).fill(7);
  const f = frame(body);
  assertEquals(f.length, 16 * 1024);
  const dec = new FrameDecoder(); // 16 KiB, up to 256 KiB
  dec.push(f.subarray(0, 16));
  const w = dec.writable();
  assertEquals(dec.capacity, 16 * 1024, "the frame fits the buffer as it is");
  assertEquals(w.length, 16 * 1024 - 16);
  w.set(f.subarray(16));
  dec.commit(w.length);
  assertEquals(next(dec)?.body.byteLength, body.length);

  // One byte more is a large frame: once its first 16 KiB are in (not on its header alone),
  // the buffer grows to its largest size at once.
  const bigger = frame(new Uint8Array(16 * 1024 - 15));
  const dec2 = new FrameDecoder();
  dec2.push(bigger.subarray(0, 16));
  dec2.writable();
  assertEquals(dec2.capacity, 16 * 1024, "the header alone");
  dec2.push(bigger.subarray(16, 16 * 1024));
  dec2.writable();
  assertEquals(dec2.capacity, 256 * 1024);
});

Deno.test("FrameDecoder: a bad header is judged once all 16 of its bytes are in, by next() and hasFrame() alike", () => {
  // Opcode 15 never travels on the wire.
  const bad = frame("z");
  bad[2] = (bad[2]! & 0xf0) | 0x0f;
  for (const cut of [3, 8, 15]) {
    const dec = new FrameDecoder();
    dec.push(bad.subarray(0, cut));
    assertEquals(dec.hasFrame(), false, `${cut} bytes of the header`);
    assertEquals(next(dec), null, `${cut} bytes of the header: not judged yet`);
    assertEquals(dec.error, null);
    dec.push(bad.subarray(cut, 16));
    assertEquals(dec.hasFrame(), true, "a bad header: next() will not return false");
    const err = assertThrows(() => next(dec), TofuError);
    assertEquals(err.status, Status.invalidOpCode);
    assertEquals(err.message, "Cannot decode frame: opcode 15 is not 0..9");
    assertInstanceOf(dec.error, TofuError);
  }
  // The same after a good frame, with the bad header's first bytes behind it.
  const dec = new FrameDecoder();
  const chunk = new Uint8Array(17 + 8);
  chunk.set(frame("a"));
  chunk.set(bad.subarray(0, 8), 17);
  dec.push(chunk);
  assertEquals(next(dec)?.body.text(), "a");
  assertEquals(next(dec), null);
  assertEquals(dec.hasFrame(), false);
  assertEquals(dec.error, null);
});

Deno.test("FrameDecoder.hasFrame: asked again before next(), it gives the same answer", () => {
  const dec = new FrameDecoder();
  const f = frame("twice");
  dec.push(f.subarray(0, 10));
  assertEquals([dec.hasFrame(), dec.hasFrame()], [false, false]);
  dec.push(f.subarray(10));
  assertEquals([dec.hasFrame(), dec.hasFrame(), dec.hasFrame()], [true, true, true]);
  assertEquals(next(dec)?.body.text(), "twice");
  assertEquals(dec.hasFrame(), false);
  // Two frames: each is reported complete as often as asked, then decoded once.
  dec.push(frame("one"));
  dec.push(frame("two"));
  for (const want of ["one", "two"]) {
    assert(dec.hasFrame() && dec.hasFrame());
    assertEquals(next(dec)?.body.text(), want);
  }
  assertEquals([dec.hasFrame(), dec.buffered], [false, 0]);
});
