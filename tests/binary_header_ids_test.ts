// Binary header message ids and bounds (src/binary_header.ts): the u64 id in two halves,
// argument checks with their messages, and encode/decode at an offset.

import { assert, assertEquals, assertThrows } from "@std/assert";
import { BinaryHeader } from "../mod.ts";

Deno.test("messageId accepts bigints 0..2^64-1 only, with the reason", () => {
  const bh = new BinaryHeader();
  const type = assertThrows(() => bh.messageId = 5 as unknown as bigint, TypeError);
  assertEquals(type.message, "Cannot set messageId: expected a bigint, got number");
  for (const bad of [-1n, 1n << 64n]) {
    const range = assertThrows(() => bh.messageId = bad, RangeError);
    assertEquals(range.message, `Cannot set messageId: ${bad} is outside 0..2^64-1`);
  }
  assertEquals(bh.messageId, 0n, "unchanged");
  bh.messageId = (1n << 64n) - 1n;
  assertEquals(bh.messageId, 0xffff_ffff_ffff_ffffn);
});

Deno.test("hasZeroMessageId and sameMessageId look at both halves", () => {
  const a = new BinaryHeader();
  const b = new BinaryHeader();
  assert(a.hasZeroMessageId);
  assert(a.sameMessageId(b));
  a.messageId = 1n << 32n; // high half only
  assert(!a.hasZeroMessageId);
  assert(!a.sameMessageId(b));
  b.messageId = 1n; // low half only
  assert(!b.hasZeroMessageId);
  assert(!a.sameMessageId(b));
  b.messageId = (1n << 32n) | 1n; // same high half, different low half
  assert(!a.sameMessageId(b));
  assert(!b.sameMessageId(a));
  a.messageId = (1n << 32n) | 1n;
  assert(a.sameMessageId(b));
  const c = new BinaryHeader();
  c.messageId = (7n << 32n) | 1n; // same low half, different high half
  assert(!c.sameMessageId(b));
});

Deno.test("setMessageIdNumber takes safe integers >= 0, split into the two halves", () => {
  const bh = new BinaryHeader();
  bh.setMessageIdNumber(0);
  assertEquals(bh.messageId, 0n);
  assert(bh.hasZeroMessageId);
  bh.setMessageIdNumber(2 ** 32 + 5);
  assertEquals(bh.messageId, 4294967301n);
  bh.setMessageIdNumber(Number.MAX_SAFE_INTEGER);
  assertEquals(bh.messageId, BigInt(Number.MAX_SAFE_INTEGER));
  for (const bad of [-1, 1.5, 2 ** 53, NaN]) {
    const err = assertThrows(() => bh.setMessageIdNumber(bad), RangeError);
    assertEquals(err.message, `Cannot set messageId: ${bad} is not a safe non-negative integer`);
  }
  assertEquals(bh.messageId, BigInt(Number.MAX_SAFE_INTEGER), "unchanged");
});

Deno.test("setMessageIdFrom copies the id only", () => {
  const src = new BinaryHeader();
  src.messageId = 0x1234_5678_9abc_def0n;
  src.channelNumber = 9;
  const dst = new BinaryHeader();
  dst.setMessageIdFrom(src);
  assertEquals(dst.messageId, 0x1234_5678_9abc_def0n);
  assertEquals(dst.channelNumber, 0);
});

Deno.test("encodeWithLengths and decodeFrom work at an offset and need 16 bytes after it", () => {
  const bh = new BinaryHeader();
  bh.channelNumber = 0xabcd;
  bh.messageId = 0x0102_0304_0506_0708n;
  const buf = new Uint8Array(20);
  bh.encodeWithLengths(buf, 4, 0x1122, 0x3344);
  assertEquals(buf.subarray(0, 4), new Uint8Array(4));
  const back = new BinaryHeader();
  back.decodeFrom(buf, 4);
  assertEquals(back.channelNumber, 0xabcd);
  assertEquals(back.messageId, 0x0102_0304_0506_0708n);
  assertEquals([back.textHeadersLength, back.bodyLength], [0x1122, 0x3344]);
  const enc = assertThrows(() => bh.encodeWithLengths(buf, 5, 0, 0), RangeError);
  assertEquals(enc.message, "Cannot encode binary header: needs 16 bytes, 15 available");
  const dec = assertThrows(() => back.decodeFrom(buf, 5), RangeError);
  assertEquals(dec.message, "Cannot decode binary header: needs 16 bytes, 15 available");
  assertEquals(buf.subarray(0, 4), new Uint8Array(4), "nothing written before the offset");
});
