// Codec hot paths: encode, decode one frame, decode a 64 KiB batch of small frames.
// Run: deno task bench

import {
  decodeFrame,
  encodeFrame,
  encodeFrameInto,
  FrameDecoder,
  frameLength,
  Message,
  OpCode,
} from "../mod.ts";

function sample(bodyBytes: number): Message {
  const m = new Message();
  m.bhdr.channelNumber = 3;
  m.bhdr.opCode = OpCode.Request;
  m.bhdr.messageId = 7n;
  m.body.set(new Uint8Array(bodyBytes).fill(0x61));
  return m;
}

const small = sample(64);
const smallFrame = encodeFrame(small);
const out = new Uint8Array(1 << 16);

Deno.bench("encodeFrameInto (64-byte body, reused buffer)", {
  group: "encode",
  baseline: true,
}, () => {
  encodeFrameInto(small, out, 0);
});

Deno.bench("encodeFrame (64-byte body, new Uint8Array)", { group: "encode" }, () => {
  encodeFrame(small);
});

const target = new Message();
const oneDecoder = new FrameDecoder();

Deno.bench("FrameDecoder.next (64-byte body, reused message)", {
  group: "decode one frame",
  baseline: true,
}, () => {
  oneDecoder.push(smallFrame);
  oneDecoder.next(target);
});

Deno.bench("decodeFrame (64-byte body, new message)", { group: "decode one frame" }, () => {
  decodeFrame(smallFrame);
});

// A 64 KiB read as the engine sees it: back-to-back frames with 64-byte bodies.
const perFrame = frameLength(small);
const count = Math.floor(65536 / perFrame);
const batch = new Uint8Array(count * perFrame);
for (let i = 0; i < count; i++) encodeFrameInto(small, batch, i * perFrame);
const batchDecoder = new FrameDecoder({ initialCapacity: 1 << 17 });

Deno.bench(`FrameDecoder: 64 KiB batch (${count} frames), reused message`, {
  group: "decode 64 KiB batch",
  baseline: true,
}, () => {
  const w = batchDecoder.writable();
  w.set(batch);
  batchDecoder.commit(batch.length);
  while (batchDecoder.next(target)) { /* decode every frame */ }
});

Deno.bench(`FrameDecoder: 64 KiB batch (${count} frames), new message per frame`, {
  group: "decode 64 KiB batch",
}, () => {
  batchDecoder.push(batch);
  for (;;) {
    const m = new Message();
    if (!batchDecoder.next(m)) break;
  }
});
