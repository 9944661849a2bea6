import { assert, assertEquals, assertInstanceOf, assertThrows } from "@std/assert";
import { concat } from "@std/bytes/concat";
import {
  decodeFrame,
  encodeFrame,
  encodeFrameInto,
  FrameDecoder,
  FrameDecoderStream,
  FrameEncoderStream,
  frameLength,
  Message,
  OpCode,
  Status,
  TofuError,
} from "../mod.ts";
import { fromHex, toHex, vectors } from "./_vectors.ts";
import { seededRandom } from "../tools/_rng.ts";

function fromFields(v: (typeof vectors)[number]): Message {
  const m = new Message();
  const f = v.fields;
  m.bhdr.channelNumber = f.channelNumber;
  m.bhdr.opCode = f.opCode;
  m.bhdr.origin = f.origin;
  m.bhdr.more = f.more;
  m.bhdr.status = f.status;
  m.bhdr.messageId = BigInt(f.messageId);
  for (const [n, val] of f.headers) m.headers.append(n, val);
  m.body.set(fromHex(f.bodyHex));
  return m;
}

function assertFields(m: Message, v: (typeof vectors)[number]): void {
  const f = v.fields;
  assertEquals(m.bhdr.channelNumber, f.channelNumber, v.name);
  assertEquals(m.bhdr.opCode, f.opCode, v.name);
  assertEquals(m.bhdr.origin, f.origin, v.name);
  assertEquals(m.bhdr.more, f.more, v.name);
  assertEquals(m.bhdr.status, f.status, v.name);
  assertEquals(m.bhdr.messageId, BigInt(f.messageId), v.name);
  assertEquals([...m.headers], f.headers, v.name);
  assertEquals(toHex(m.body.bytes()), f.bodyHex, v.name);
}

Deno.test("wire vectors: the file holds the golden frames", () => {
  assert(vectors.length >= 8, `expected at least 8 vectors, got ${vectors.length}`);
});

for (const v of vectors) {
  Deno.test(`wire vector ${v.name}: decode, re-encode and build from fields`, async (t) => {
    const bytes = fromHex(v.hex);
    await t.step("decodeFrame() gives the listed fields", () => {
      assertFields(decodeFrame(bytes), v);
    });
    await t.step("encodeFrame() of the decoded message gives the same bytes", () => {
      assertEquals(toHex(encodeFrame(decodeFrame(bytes))), v.hex);
    });
    await t.step("a message built from the fields encodes to the same bytes", () => {
      const m = fromFields(v);
      assertEquals(frameLength(m), bytes.length);
      assertEquals(toHex(encodeFrame(m)), v.hex);
    });
  });
}

const allFrames = concat(vectors.map((v) => fromHex(v.hex)));

function decodeAll(dec: FrameDecoder): Message[] {
  const out: Message[] = [];
  for (;;) {
    const m = new Message();
    if (!dec.next(m)) return out;
    out.push(m);
  }
}

Deno.test("FrameDecoder decodes a multi-frame stream split at every point", () => {
  for (let split = 0; split <= allFrames.length; split++) {
    const dec = new FrameDecoder({ initialCapacity: 16 });
    dec.push(allFrames.subarray(0, split));
    const got = decodeAll(dec);
    dec.push(allFrames.subarray(split));
    got.push(...decodeAll(dec));
    assertEquals(got.length, vectors.length, `split at ${split}`);
    got.forEach((m, i) => assertFields(m, vectors[i]!));
    assert(dec.atFrameBoundary);
  }
});

Deno.test("FrameDecoder decodes a stream fed one byte at a time", () => {
  const dec = new FrameDecoder({ initialCapacity: 16 });
  const got: Message[] = [];
  for (let i = 0; i < allFrames.length; i++) {
    dec.push(allFrames.subarray(i, i + 1));
    got.push(...decodeAll(dec));
  }
  assertEquals(got.length, vectors.length);
  got.forEach((m, i) => assertFields(m, vectors[i]!));
});

Deno.test("FrameDecoder.writable() and commit() read straight into the buffer", () => {
  const dec = new FrameDecoder({ initialCapacity: 16 });
  const got: Message[] = [];
  let pos = 0;
  while (pos < allFrames.length) {
    const w = dec.writable();
    assert(w.length > 0);
    const n = Math.min(w.length, 7, allFrames.length - pos);
    w.set(allFrames.subarray(pos, pos + n));
    dec.commit(n);
    pos += n;
    got.push(...decodeAll(dec));
  }
  assertEquals(got.length, vectors.length);
  assertThrows(() => dec.commit(1 << 30), RangeError);
});

Deno.test("FrameDecoder handles the largest frame (64 KiB headers and body)", () => {
  const m = new Message();
  m.bhdr.channelNumber = 9;
  while (m.headers.byteLength < 65000) m.headers.append("k", "v".repeat(100));
  m.body.set(new Uint8Array(65535).fill(7));
  const bytes = encodeFrame(m);
  const dec = new FrameDecoder({ initialCapacity: 16 });
  for (let i = 0; i < bytes.length; i += 4096) dec.push(bytes.subarray(i, i + 4096));
  const out = new Message();
  assert(dec.next(out));
  assertEquals(out.body.byteLength, 65535);
  assertEquals(out.headers.byteLength, m.headers.byteLength);
});

Deno.test("FrameDecoder rejects opcodes 10-15 and local-only opcodes with TofuError", () => {
  const bad: Array<[number, string]> = [
    [10, "opcode 10"],
    [15, "opcode 15"],
    [OpCode.WelcomeRequest, "WelcomeRequest"],
    [OpCode.WelcomeResponse, "WelcomeResponse"],
    [OpCode.ByeSignal | 0x40, "ByeSignal with internalA"],
  ];
  for (const [proto, what] of bad) {
    const frame = fromHex("00030000000000000000000700000003616263");
    frame[2] = proto;
    const dec = new FrameDecoder();
    dec.push(frame);
    assert(dec.hasFrame(), what);
    const err = assertThrows(() => dec.next(new Message()), TofuError);
    assertEquals(err.status, Status.invalidOpCode, what);
    assert(err.message.startsWith("Cannot decode frame: "), err.message);
    // Once failed, valid frames that follow are never decoded.
    dec.push(allFrames);
    assertThrows(() => dec.next(new Message()), TofuError);
    assertThrows(() => decodeFrame(frame), TofuError);
  }
});

Deno.test("FrameDecoder rejects a bad header before its body arrives", () => {
  const dec = new FrameDecoder();
  const hdr = fromHex("0003ff00000000000000000700000fff"); // opcode 15, 4095-byte body
  dec.push(hdr);
  assertThrows(() => dec.next(new Message()), TofuError);
});

Deno.test("decodeFrame() rejects truncated and oversized input", () => {
  const frame = fromHex(vectors[1]!.hex);
  for (const bytes of [frame.subarray(0, 10), frame.subarray(0, frame.length - 1)]) {
    assertEquals(assertThrows(() => decodeFrame(bytes), TofuError).status, Status.invalidMessage);
  }
  const longer = concat([frame, new Uint8Array([0])]);
  assertEquals(assertThrows(() => decodeFrame(longer), TofuError).status, Status.invalidMessage);
});

Deno.test("encodeFrameInto() writes at an offset and refuses a short target", () => {
  const m = decodeFrame(fromHex(vectors[1]!.hex));
  const out = new Uint8Array(100);
  assertEquals(encodeFrameInto(m, out, 10), 19);
  assertEquals(toHex(out.subarray(10, 29)), vectors[1]!.hex);
  assertThrows(() => encodeFrameInto(m, out, 90), RangeError);
});

Deno.test("FrameDecoder: 100,000 seeded random and mutated inputs throw only TofuError", () => {
  const rand = seededRandom(0x7f0f0);
  const target = new Message();
  let frames = 0;
  let rejected = 0;
  for (let i = 0; i < 100_000; i++) {
    let input: Uint8Array;
    if (i % 2 === 0) {
      // Mutate the golden stream: flip bytes, truncate.
      input = allFrames.slice(0, 1 + Math.floor(rand() * allFrames.length));
      const flips = 1 + Math.floor(rand() * 4);
      for (let f = 0; f < flips; f++) {
        input[Math.floor(rand() * input.length)] = Math.floor(rand() * 256);
      }
    } else {
      input = new Uint8Array(Math.floor(rand() * 80));
      for (let k = 0; k < input.length; k++) input[k] = Math.floor(rand() * 256);
    }
    const dec = new FrameDecoder({ initialCapacity: 16 });
    let pos = 0;
    try {
      while (pos < input.length) {
        const n = 1 + Math.floor(rand() * 40);
        dec.push(input.subarray(pos, pos + n));
        pos += n;
        while (dec.next(target)) {
          frames++;
          assert(target.bhdr.opCode <= 9);
          assertEquals(frameLength(target) <= input.length, true);
        }
      }
    } catch (err) {
      if (!(err instanceof TofuError)) throw err;
      rejected++;
      // A failed decoder stays failed: nothing is invented from what follows.
      assertThrows(() => dec.next(target), TofuError);
    }
  }
  assert(frames > 0 && rejected > 0, `frames ${frames}, rejected ${rejected}`);
});

Deno.test("FrameDecoderStream decodes any chunking; FrameEncoderStream encodes", async () => {
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < allFrames.length; i += 5) chunks.push(allFrames.slice(i, i + 5));
  const decoded = await Array.fromAsync(
    ReadableStream.from(chunks).pipeThrough(new FrameDecoderStream()),
  );
  assertEquals(decoded.length, vectors.length);
  decoded.forEach((m, i) => assertFields(m, vectors[i]!));
  const encoded = await Array.fromAsync(
    ReadableStream.from(decoded).pipeThrough(new FrameEncoderStream()),
  );
  assertEquals(toHex(concat(encoded)), toHex(allFrames));
});

Deno.test("FrameDecoderStream errors with TofuError on a bad frame or a cut stream", async () => {
  const bad = fromHex("000f0f00000000000000000700000000");
  const e1 = await Array.fromAsync(ReadableStream.from([bad]).pipeThrough(new FrameDecoderStream()))
    .then(() => null, (e) => e);
  assertInstanceOf(e1, TofuError);
  assertEquals(e1.status, Status.invalidOpCode);
  const cut = allFrames.slice(0, 20);
  const e2 = await Array.fromAsync(ReadableStream.from([cut]).pipeThrough(new FrameDecoderStream()))
    .then(() => null, (e) => e);
  assertInstanceOf(e2, TofuError);
  assertEquals(e2.status, Status.invalidMessage);
});

Deno.test("decode into a pooled message reuses its buffers (no new ArrayBuffer per message)", () => {
  const m = new Message();
  const frame = fromHex(vectors[6]!.hex);
  const dec = new FrameDecoder();
  dec.push(frame);
  assert(dec.next(m));
  const hdrStorage = m.headers.raw().buffer;
  const bodyStorage = m.body.bytes().buffer;
  for (let i = 0; i < 1000; i++) {
    m.reset();
    dec.push(frame);
    assert(dec.next(m));
    assert(m.headers.raw().buffer === hdrStorage);
    assert(m.body.bytes().buffer === bodyStorage);
  }
});
