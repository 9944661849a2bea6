import { assert, assertEquals, assertThrows } from "@std/assert";
import { BinaryHeader, OpCode } from "../mod.ts";

Deno.test("BinaryHeader round-trips every proto bit and the full u64 id range", () => {
  const ids = [0n, 1n, 0xffff_ffffn, 0x1_0000_0000n, 0x0102030405060708n, 2n ** 64n - 1n];
  for (const id of ids) {
    for (let proto = 0; proto < 256; proto += 7) {
      const bh = new BinaryHeader();
      bh.channelNumber = 0xabcd;
      bh.opCode = proto & 0x0f;
      bh.origin = ((proto >> 4) & 1) as 0 | 1;
      bh.more = ((proto >> 5) & 1) as 0 | 1;
      bh.internalA = ((proto >> 6) & 1) as 0 | 1;
      bh.internalB = ((proto >> 7) & 1) as 0 | 1;
      bh.status = 200;
      bh.messageId = id;
      bh.textHeadersLength = 0x1234;
      bh.bodyLength = 0xfedc;
      const bytes = new Uint8Array(16);
      bh.encodeInto(bytes);
      assertEquals(bytes[2], proto);
      const back = BinaryHeader.decode(bytes);
      assertEquals(back.messageId, id);
      assertEquals(back.channelNumber, 0xabcd);
      assertEquals(back.opCode, proto & 0x0f);
      assertEquals(back.internalA, bh.internalA);
      assertEquals(back.internalB, bh.internalB);
      assertEquals(back.status, 200);
      assertEquals(back.textHeadersLength, 0x1234);
      assertEquals(back.bodyLength, 0xfedc);
    }
  }
});

Deno.test("BinaryHeader.messageId refuses values outside u64", () => {
  const bh = new BinaryHeader();
  assertThrows(() => bh.messageId = -1n, RangeError);
  assertThrows(() => bh.messageId = 2n ** 64n, RangeError);
  assertThrows(() => bh.messageId = 5 as unknown as bigint, TypeError);
  assertThrows(() => bh.setMessageIdNumber(-1), RangeError);
});

Deno.test("BinaryHeader.decode() refuses fewer than 16 bytes", () => {
  assertThrows(() => BinaryHeader.decode(new Uint8Array(15)), RangeError);
  assertThrows(() => new BinaryHeader().encodeInto(new Uint8Array(15)), RangeError);
});

Deno.test("BinaryHeader.reset(), clone() and sameMessageId()", () => {
  const bh = new BinaryHeader();
  bh.opCode = OpCode.Signal;
  bh.messageId = 99n;
  const c = bh.clone();
  assert(c.sameMessageId(bh));
  assertEquals(c.opCode, OpCode.Signal);
  bh.reset();
  assertEquals(bh.messageId, 0n);
  assert(bh.hasZeroMessageId);
  assertEquals(bh.opCode, OpCode.Request);
  assertEquals(c.messageId, 99n);
});
