// The frame decoder's buffer management and the codec's errors (src/codec.ts): capacity
// options, compaction before growth, read-ahead growth up to maxCapacity, partial frames,
// and each refusal with its exact message.

import { assert, assertEquals, assertInstanceOf, assertThrows } from "@std/assert";
import {
  decodeFrame,
  encodeFrame,
  encodeFrameInto,
  FrameDecoder,
  FrameDecoderStream,
  frameLength,
  Message,
  OpCode,
  Status,
  TofuError,
} from "../mod.ts";
import { MAX_FRAME_LENGTH } from "../src/codec.ts";

function frame(body: string, channel = 1, id = 0n): Uint8Array {
  const m = new Message();
  m.bhdr.channelNumber = channel;
  m.bhdr.opCode = OpCode.Signal;
  m.bhdr.messageId = id;
  m.body.set(body);
  return encodeFrame(m);
}

function next(dec: FrameDecoder): Message | null {
  const m = new Message();
  return dec.next(m) ? m : null;
}

Deno.test("FrameDecoder capacity: 16 KiB by default, never under 16 bytes", () => {
  assertEquals(new FrameDecoder().capacity, 16 * 1024);
  assertEquals(new FrameDecoder({ initialCapacity: 1 }).capacity, 16);
  assertEquals(new FrameDecoder({ initialCapacity: 100 }).capacity, 100);
});

Deno.test("FrameDecoder: partial headers and bodies are not frames yet", () => {
  const f = frame("hello"); // 21 bytes
  const dec = new FrameDecoder({ initialCapacity: 64 });
  assert(dec.atFrameBoundary);
  assert(!dec.hasFrame());
  assertEquals(next(dec), null);
  dec.push(f.subarray(0, 15));
  assert(!dec.hasFrame(), "15 bytes: no header yet");
  assertEquals(next(dec), null);
  assert(!dec.atFrameBoundary);
  dec.push(f.subarray(15, 16));
  assert(!dec.hasFrame(), "a header without its body");
  assertEquals(next(dec), null);
  dec.push(f.subarray(16, 20));
  assert(!dec.hasFrame(), "one body byte missing");
  assertEquals(dec.buffered, 20);
  dec.push(new Uint8Array(0));
  assertEquals(dec.buffered, 20, "an empty push adds nothing");
  dec.push(f.subarray(20));
  assert(dec.hasFrame());
  assertEquals(next(dec)?.body.text(), "hello");
  assert(dec.atFrameBoundary);
  assertEquals(dec.buffered, 0);
  assert(!dec.hasFrame());
});

Deno.test("FrameDecoder moves leftover bytes to the front instead of growing", () => {
  const a = frame("a".repeat(24)); // 40 bytes
  const dec = new FrameDecoder({ initialCapacity: 64, maxCapacity: 64 });
  for (let round = 0; round < 5; round++) {
    // A whole frame and the start of the next: 60 of 64 bytes.
    dec.push(a);
    dec.push(a.subarray(0, 20));
    assertEquals(next(dec)?.body.text(), "a".repeat(24));
    // 20 bytes left at offset 40, 4 bytes free at the end: the rest fits once moved.
    dec.push(a.subarray(20));
    assertEquals(next(dec)?.body.text(), "a".repeat(24));
    assert(dec.atFrameBoundary);
  }
  assertEquals(dec.capacity, 64, "never grown: the leftover bytes were moved to the front");
  // A frame bigger than the buffer grows it by doublings, keeping what is buffered.
  const big = frame("b".repeat(200)); // 216 bytes
  dec.push(a);
  dec.push(big); // 256 bytes needed: 64 -> 128 -> 256
  assertEquals(dec.capacity, 256);
  assertEquals(next(dec)?.body.text(), "a".repeat(24));
  assertEquals(next(dec)?.body.text(), "b".repeat(200));
  assert(dec.atFrameBoundary);
});

Deno.test("FrameDecoder.writable offers room for the rest of the frame being assembled", () => {
  const f = frame("z".repeat(1000), 3); // 1016 bytes
  const dec = new FrameDecoder({ initialCapacity: 16 });
  let w = dec.writable();
  assertEquals(w.length, 16, "no header yet: the free space");
  w.set(f.subarray(0, 16));
  dec.commit(16);
  w = dec.writable();
  assert(w.length >= 1000, `room for the body: ${w.length}`);
  w.set(f.subarray(16, 516));
  dec.commit(500);
  w = dec.writable();
  assert(w.length >= 500, `room for the rest: ${w.length}`);
  w.set(f.subarray(516));
  dec.commit(500);
  assertEquals(next(dec)?.body.text(), "z".repeat(1000));
});

Deno.test("FrameDecoder grows for read-ahead while reads fill the buffer, up to maxCapacity", () => {
  // 16-byte frames: each buffer-full read ends on a frame boundary.
  const one = frame("", 1);
  const stream = new Uint8Array(16 * 2000);
  for (let i = 0; i < 2000; i++) stream.set(one, i * 16);
  const dec = new FrameDecoder({ initialCapacity: 1024, maxCapacity: 4096 });
  const caps: number[] = [];
  let pos = 0;
  let frames = 0;
  while (pos < stream.length) {
    const w = dec.writable();
    caps.push(dec.capacity);
    const n = Math.min(w.length, stream.length - pos);
    w.set(stream.subarray(pos, pos + n));
    dec.commit(n);
    pos += n;
    while (next(dec) !== null) frames++;
  }
  assertEquals(frames, 2000);
  assertEquals(caps.slice(0, 4), [1024, 2048, 4096, 4096]);
  assertEquals(Math.max(...caps), 4096);
  // A read that does not fill the space offered does not grow the buffer.
  const calm = new FrameDecoder({ initialCapacity: 1024, maxCapacity: 4096 });
  for (let i = 0; i < 5; i++) {
    const w = calm.writable();
    w.set(one);
    calm.commit(one.length);
    assertEquals(next(calm)?.body.text(), "");
  }
  assertEquals(calm.capacity, 1024);
  // maxCapacity is at least the initial capacity.
  const small = new FrameDecoder({ initialCapacity: 2048, maxCapacity: 16 });
  const w = small.writable();
  assertEquals(w.length, 2048);
  w.set(stream.subarray(0, 2048));
  small.commit(2048);
  while (next(small) !== null);
  small.writable();
  assertEquals(small.capacity, 2048);
});

Deno.test("FrameDecoder: a stream of 64 KiB frames read 64 KiB at a time moves a frame only every few reads", () => {
  // Loopback hands a reader 64 KiB at a time, never aligned with 65,551-byte frames: each
  // read completes one frame and leaves most of the next. Sized to fit one frame, the buffer
  // was full after every read and its partial frame moved to the front each time (64 KiB
  // moved per frame); grown to maxCapacity at the first large frame, a move comes every few.
  const frames = 40;
  const stream = new Uint8Array(frames * 65551);
  for (let i = 0; i < frames; i++) {
    stream.set(frame("x".repeat(65535), 1, BigInt(i)), i * 65551);
    stream[i * 65551 + 16] = i; // each body starts with its index
  }
  const dec = new FrameDecoder();
  let pos = 0;
  let got = 0;
  let moves = 0;
  while (pos < stream.length) {
    const w = dec.writable();
    // A move shows as free space that starts where the buffered bytes were not.
    const n = Math.min(w.length, 65536, stream.length - pos);
    const before = dec.buffered;
    w.set(stream.subarray(pos, pos + n));
    dec.commit(n);
    pos += n;
    if (before > 0 && w.byteOffset === before) moves++;
    for (let m = next(dec); m !== null; m = next(dec)) {
      assertEquals([m.bhdr.messageId, m.body.bytes()[0], m.body.byteLength], [
        BigInt(got),
        got,
        65535,
      ]);
      got++;
    }
  }
  assertEquals(got, frames);
  assert(moves <= frames / 2, `${moves} moves for ${frames} frames`);
  assertEquals(dec.capacity, 256 * 1024, "grown to maxCapacity by the first large frame");
});

Deno.test("FrameDecoder.commit refuses counts that are not integers 0..free space", () => {
  const dec = new FrameDecoder({ initialCapacity: 32 });
  const w = dec.writable();
  assertEquals(w.length, 32);
  for (const bad of [-1, 1.5, 33, NaN]) {
    const err = assertThrows(() => dec.commit(bad), RangeError);
    assertEquals(err.message, `Cannot commit ${bad} bytes: only 32 free`);
  }
  dec.commit(0);
  dec.commit(32);
  assertEquals(dec.buffered, 32);
  assertEquals(
    assertThrows(() => dec.commit(1), RangeError).message,
    "Cannot commit 1 bytes: only 0 free",
  );
});

Deno.test("Frames that never travel are refused with their reason, and the decoder stays failed", () => {
  const cases: Array<[number, string]> = [
    [10, "Cannot decode frame: opcode 10 is not 0..9"],
    [0x1f, "Cannot decode frame: opcode 15 is not 0..9"],
    [
      OpCode.WelcomeRequest,
      "Cannot decode frame: WelcomeRequest is local and never travels on the wire",
    ],
    [
      OpCode.WelcomeResponse,
      "Cannot decode frame: WelcomeResponse is local and never travels on the wire",
    ],
    [
      OpCode.ByeSignal | 0x40,
      "Cannot decode frame: ByeSignal with internalA is a local abort and never travels on the wire",
    ],
  ];
  for (const [proto, message] of cases) {
    const f = frame("abc");
    f[2] = proto;
    const dec = new FrameDecoder();
    dec.push(f.subarray(0, 16)); // the header alone is enough to refuse it
    assert(dec.hasFrame());
    const err = assertThrows(() => next(dec), TofuError);
    assertEquals([err.status, err.message], [Status.invalidOpCode, message]);
    assertEquals(dec.error, err);
    dec.push(frame("ok"));
    assert(dec.hasFrame());
    assertEquals(assertThrows(() => next(dec), TofuError), err, "the same error again");
    const direct = assertThrows(() => decodeFrame(f), TofuError);
    assertEquals(direct.message, message);
  }
  // Every other proto value travels: ByeSignal without internalA, internalB, origin, more.
  for (const proto of [OpCode.ByeSignal, 0x80 | OpCode.Request, 0x10 | OpCode.Signal, 0x20, 0x46]) {
    const f = frame("fine");
    f[2] = proto;
    const dec = new FrameDecoder();
    dec.push(f);
    assertEquals(dec.error, null);
    const m = next(dec)!;
    assertEquals(m.bhdr.opCode, proto & 0x0f);
    assertEquals(decodeFrame(f).body.text(), "fine");
  }
});

Deno.test("decodeFrame needs exactly one frame; next clears the target's old error", () => {
  const f = frame("abc"); // 19 bytes
  assertEquals(
    assertThrows(() => decodeFrame(f.subarray(0, 15)), TofuError).message,
    "Cannot decode frame: 15 bytes is shorter than the 16-byte header",
  );
  assertEquals(
    assertThrows(() => decodeFrame(f.subarray(0, 18)), TofuError).message,
    "Cannot decode frame: the header announces 19 bytes, got 18",
  );
  const longer = new Uint8Array(20);
  longer.set(f);
  assertEquals(
    assertThrows(() => decodeFrame(longer), TofuError).message,
    "Cannot decode frame: the header announces 19 bytes, got 20",
  );
  const m = decodeFrame(f.subarray(0, 19));
  assertEquals(m.body.text(), "abc");
  const target = new Message();
  target.error = new TofuError(Status.sendFailed, "Cannot send: old");
  const dec = new FrameDecoder();
  dec.push(f);
  assert(dec.next(target));
  assertEquals(target.error, undefined);
});

Deno.test("encodeFrameInto refuses a short target with the sizes; encodes into alternating buffers", () => {
  const m = new Message();
  m.body.set("abc");
  const out = new Uint8Array(30);
  assertEquals(
    assertThrows(() => encodeFrameInto(m, out, 12), RangeError).message,
    "Cannot encode frame: needs 19 bytes, 18 available",
  );
  assertEquals(encodeFrameInto(m, out, 11), 19);
  m.headers.append("k", "v"); // 5 more bytes
  assertEquals(encodeFrameInto(m, out, 6), 24);
  assertEquals(decodeFrame(out.subarray(6, 30)).headers.get("k"), "v");
  assertEquals(MAX_FRAME_LENGTH, 16 + 65535 + 65535);
  // Two buffers in turn: each gets its own bytes (a cached view must follow the target).
  const a = new Uint8Array(64);
  const b = new Uint8Array(64);
  const ma = new Message();
  ma.headers.append("k", "a");
  ma.body.set("first");
  const mb = new Message();
  mb.headers.append("k", "b");
  mb.body.set("second");
  for (let i = 0; i < 3; i++) {
    a.fill(0);
    b.fill(0);
    encodeFrameInto(ma, a, 0);
    encodeFrameInto(mb, b, 0);
    encodeFrameInto(ma, a, frameLength(ma));
    assertEquals(decodeFrame(a.subarray(0, frameLength(ma))).body.text(), "first");
    assertEquals(decodeFrame(b.subarray(0, frameLength(mb))).body.text(), "second");
    const again = decodeFrame(a.subarray(frameLength(ma), 2 * frameLength(ma)));
    assertEquals(again.headers.get("k"), "a");
  }
});

Deno.test("FrameDecoderStream: a stream cut inside a frame errors with the bytes left", async () => {
  const f = frame("abcdef"); // 22 bytes
  const err = await Array.fromAsync(
    ReadableStream.from([f, f.subarray(0, 20)]).pipeThrough(new FrameDecoderStream()),
  ).then(() => null, (e) => e);
  assertInstanceOf(err, TofuError);
  assertEquals(err.status, Status.invalidMessage);
  assertEquals(
    err.message,
    "Cannot decode frame: the stream ended inside a frame (20 bytes left)",
  );
  const ok = await Array.fromAsync(
    ReadableStream.from([f.subarray(0, 3), f.subarray(3), f]).pipeThrough(
      new FrameDecoderStream(),
    ),
  );
  assertEquals(ok.map((m) => m.body.text()), ["abcdef", "abcdef"]);
});

Deno.test("FrameDecoder.writable after a consumed frame: room for exactly the rest of the next", () => {
  // A has an all-'a' body; B has 624 bytes of headers (0x0270) and a 386-byte body: 1,010
  // bytes after its header, just over what a 1,024-byte buffer holds.
  const a = frame("a".repeat(24)); // 40 bytes
  const b = new Message();
  b.bhdr.channelNumber = 2;
  while (b.headers.byteLength < 624) {
    b.headers.append("h", "x".repeat(Math.min(80, 624 - b.headers.byteLength - 4)));
  }
  b.body.set("b".repeat(386));
  const bBytes = encodeFrame(b);
  assertEquals(bBytes.length - 16, 1010);
  const dec = new FrameDecoder({ initialCapacity: 64 });
  dec.push(a);
  dec.push(bBytes.subarray(0, 16));
  assertEquals(next(dec)?.body.text(), "a".repeat(24));
  assertEquals(dec.buffered, 16, "B's header is left (after A, not at the start of the buffer)");
  const w = dec.writable();
  assert(w.length >= 1010, `room for the rest of B: ${w.length}`);
  assertEquals(dec.capacity, 2048, "the smallest doubling that holds B");
  w.set(bBytes.subarray(16));
  dec.commit(1010);
  const got = next(dec)!;
  assertEquals(got.body.text(), "b".repeat(386));
  assertEquals(got.headers.byteLength, 624);
});

Deno.test("FrameDecoder: a chunk that fills the free space exactly does not grow it", () => {
  const dec = new FrameDecoder({ initialCapacity: 64 });
  const four = new Uint8Array(64);
  for (let i = 0; i < 4; i++) four.set(frame(""), i * 16);
  dec.push(four);
  assertEquals(dec.capacity, 64);
  for (let i = 0; i < 4; i++) assertEquals(next(dec)?.body.text(), "");
});

Deno.test("FrameDecoder read-ahead: from 16 KiB to 256 KiB by default, only after full reads", () => {
  const pattern = new Uint8Array(256 * 1024);
  const one = frame("");
  for (let i = 0; i < pattern.length; i += 16) pattern.set(one, i);
  const dec = new FrameDecoder();
  const caps: number[] = [];
  for (let round = 0; round < 7; round++) {
    const w = dec.writable();
    caps.push(dec.capacity);
    w.set(pattern.subarray(0, w.length));
    dec.commit(w.length);
    while (next(dec) !== null);
  }
  assertEquals(caps, [16384, 32768, 65536, 131072, 262144, 262144, 262144]);

  // A read that fills the rest of a buffer that was not empty is not a full read.
  const part = new FrameDecoder({ initialCapacity: 1024, maxCapacity: 4096 });
  part.push(pattern.subarray(0, 8)); // half a header
  const w = part.writable();
  assertEquals(w.length, 1016);
  w.set(pattern.subarray(8, 1024));
  part.commit(1016);
  while (next(part) !== null);
  assertEquals(part.writable().length, 1024);
  assertEquals(part.capacity, 1024);

  // Frames that do not line up with the buffer: it doubles once, keeping the partial frame.
  const odd = frame("x"); // 17 bytes
  const stream = new Uint8Array(17 * 400);
  for (let i = 0; i < 400; i++) stream.set(odd, i * 17);
  const dec17 = new FrameDecoder({ initialCapacity: 1024, maxCapacity: 4096 });
  const caps17: number[] = [];
  let pos = 0;
  while (pos < stream.length) {
    const w = dec17.writable();
    caps17.push(dec17.capacity);
    const n = Math.min(w.length, stream.length - pos);
    w.set(stream.subarray(pos, pos + n));
    dec17.commit(n);
    pos += n;
    while (next(dec17) !== null);
  }
  assertEquals(caps17.slice(0, 3), [1024, 2048, 2048]);
});
