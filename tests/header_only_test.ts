// A peer that sends one frame header announcing the largest frame (131,086 bytes) and then
// nothing made the engine set aside a 256 KiB read buffer for it at once: 16 bytes from the
// peer, a quarter of a MiB held until frameTimeoutMs (30 s). Measured over 300 peers:
// 262,xxx bytes of external memory per peer. The decoder now grows with what has arrived.

import { assert, assertEquals } from "@std/assert";
import { FrameDecoder, Message, OpCode } from "../mod.ts";
import { transports } from "./_fixtures.ts";
import { gcChild } from "./_gc_child.ts";

function largeHeader(thl: number, bl: number): Uint8Array {
  const h = new Uint8Array(16);
  h[2] = OpCode.Signal;
  h[11] = 1;
  new DataView(h.buffer).setUint16(12, thl);
  new DataView(h.buffer).setUint16(14, bl);
  return h;
}

Deno.test("FrameDecoder: the header of a large frame alone does not grow the buffer", () => {
  const dec = new FrameDecoder(); // 16 KiB, up to 256 KiB
  dec.push(largeHeader(65535, 65535));
  dec.writable();
  assertEquals(dec.capacity, 16 * 1024);
  // Once 16 KiB of the frame are in, it grows to its largest size for the rest.
  const part = new Uint8Array(16 * 1024 - 16);
  let w = dec.writable();
  w.set(part.subarray(0, w.length));
  dec.commit(w.length);
  w = dec.writable();
  assertEquals(dec.capacity, 256 * 1024);
  assert(w.length >= 131_086 - 16 * 1024, `room for the rest: ${w.length}`);
});

Deno.test("FrameDecoder: a frame over 16 KiB grows the buffer by at most what has arrived", () => {
  // maxCapacity 64: no read-ahead growth, only the growth the frame itself asks for.
  const dec = new FrameDecoder({ initialCapacity: 64, maxCapacity: 64 });
  const bytes = new Uint8Array(16 + 40_000).fill(0x79);
  bytes.set(largeHeader(0, 40_000));
  let pos = 0;
  const caps: number[] = [];
  while (pos < bytes.length) {
    const w = dec.writable();
    caps.push(dec.capacity);
    // 16 KiB without proof, then at most twice what has arrived.
    assert(dec.capacity <= Math.max(16 * 1024, 2 * pos), `${dec.capacity} after ${pos} bytes`);
    const n = Math.min(w.length, bytes.length - pos);
    w.set(bytes.subarray(pos, pos + n));
    dec.commit(n);
    pos += n;
  }
  const got = new Message();
  assert(dec.next(got));
  assertEquals(got.body.byteLength, 40_000);
  assertEquals(caps, [64, 16 * 1024, 32 * 1024, 64 * 1024]);
});

for (const t of transports) {
  Deno.test(`${t.name}: 300 peers that send only a large frame's header hold little memory`, async () => {
    const perPeer = (await gcChild("./_header_only_child.ts", t.name, "300")).perPeer ?? NaN;
    // Before: 262,000+ bytes per peer (a 256 KiB buffer each). Now the 16 KiB a channel
    // starts with, and its share of the engine's own objects.
    assert(perPeer < 64 * 1024, `${Math.round(perPeer)} bytes of external memory per peer`);
  });
}
