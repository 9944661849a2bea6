// The growable byte buffer behind Body and TextHeaders (src/_bytes.ts): contents, limits,
// all-or-nothing failures, growth, and the UTF-8 length count.

import { assert, assertEquals, assertThrows } from "@std/assert";
import { Status, TofuError } from "../mod.ts";
import { ByteBuffer, byteLengthUtf8, copyWords, dataViewOf, EMPTY } from "../src/_bytes.ts";

const encoder = new TextEncoder();

function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 7) & 0xff;
  return out;
}

function buffer(limit = 1000, storage: Uint8Array = EMPTY): ByteBuffer {
  return new ByteBuffer(storage, limit, Status.invalidBodyLen, "body");
}

function refused(fn: () => void, message: string): void {
  const err = assertThrows(fn, TofuError);
  assertEquals(err.status, Status.invalidBodyLen);
  assertEquals(err.message, message);
}

Deno.test("byteLengthUtf8 agrees with TextEncoder at every encoding boundary", () => {
  const samples = [
    "",
    "a",
    "\x7f",
    "\x80",
    "\u07ff",
    "\u0800",
    "\ud7ff",
    "\ue000",
    "\uffff",
    "\u{10000}",
    "\u{10ffff}",
    "\ud800", // lone high surrogate at the end
    "\ud800a", // high surrogate followed by a non-surrogate
    "\udbff\udc00",
    "\ud800\udbff", // two high surrogates
    "\udc00", // lone low surrogate
    "\udfff\ud800",
    "\ud800\ue000",
    "\ud7ff\udc00",
    "\ue000\udc00", // a low surrogate after a non-surrogate
    "\udc00\udfff", // two low surrogates
    "x\udbff\udfffy",
    "h\u00e9llo w\u00f6rld \u20ac \u{1f600}",
  ];
  for (const s of samples) {
    assertEquals(byteLengthUtf8(s), encoder.encode(s).length, JSON.stringify(s));
  }
});

Deno.test("copyWords copies exactly n bytes between offsets, words then the tail", () => {
  for (let n = 0; n <= 11; n++) {
    for (const [srcOff, dstOff] of [[0, 0], [1, 3], [3, 2]]) {
      const src = bytes(32, n + 1);
      const dst = new Uint8Array(32).fill(0xee);
      copyWords(dataViewOf(src), srcOff!, dataViewOf(dst), dstOff!, n);
      const expected = new Uint8Array(32).fill(0xee);
      expected.set(src.subarray(srcOff!, srcOff! + n), dstOff!);
      assertEquals(dst, expected, `n ${n} from ${srcOff} to ${dstOff}`);
    }
  }
});

Deno.test("dataViewOf covers exactly the bytes of a subarray", () => {
  const whole = bytes(16);
  const view = dataViewOf(whole.subarray(4, 10));
  assertEquals(view.byteOffset, 4);
  assertEquals(view.byteLength, 6);
  assertEquals(view.getUint8(0), whole[4]);
});

Deno.test("ByteBuffer starts empty on shared storage and grows on first write", () => {
  const b = buffer();
  assertEquals(b.length, 0);
  assertEquals(b.capacity, 0);
  assertEquals(b.view(), new Uint8Array(0));
  b.append(bytes(3));
  assertEquals(b.view(), bytes(3));
  assertEquals(b.capacity, 64, "the first growth is to 64 bytes");
  assertEquals(EMPTY.length, 0, "the shared empty storage is never written");
});

Deno.test("ByteBuffer growth doubles, keeps the content, and stops at the limit", () => {
  const b = buffer(1000);
  b.append(bytes(10));
  assertEquals(b.capacity, 64);
  b.append(bytes(60, 2)); // 70 bytes: 128
  assertEquals(b.capacity, 128);
  b.reserve(128); // exactly the capacity: no growth
  assertEquals(b.capacity, 128);
  b.reserve(129); // 256
  assertEquals(b.capacity, 256);
  b.reserve(512); // exactly a doubling: 512, not 1024
  assertEquals(b.capacity, 512);
  b.reserve(600); // 1024, clamped to the limit
  assertEquals(b.capacity, 1000);
  b.reserve(1000);
  assertEquals(b.capacity, 1000);
  b.reserve(10); // never shrinks
  assertEquals(b.capacity, 1000);
  assertEquals(b.length, 70);
  const expected = new Uint8Array(70);
  expected.set(bytes(10));
  expected.set(bytes(60, 2), 10);
  assertEquals(b.view(), expected);
  // From a large enough capacity, a reserve jumps several doublings at once.
  const c = buffer(100_000, new Uint8Array(100));
  c.reserve(1000);
  assertEquals(c.capacity, 1600);
});

Deno.test("ByteBuffer on pool storage uses it in place, then leaves it when it grows", () => {
  const slab = new Uint8Array(48);
  const storage = slab.subarray(8, 24); // 16 bytes of the slab
  const b = buffer(1000, storage);
  b.append(bytes(16));
  assertEquals(b.capacity, 16);
  assertEquals(slab.subarray(8, 24), bytes(16), "written into the slab");
  assertEquals(slab[7], 0);
  assertEquals(slab[24], 0);
  b.append(bytes(1, 9)); // grows: 64 bytes of its own (never less than 64)
  assertEquals(b.capacity, 64);
  b.set(new Uint8Array(17));
  assertEquals(slab.subarray(8, 24), bytes(16), "the slab is left alone after growing");
  assertEquals(b.view(), new Uint8Array(17));
});

Deno.test("ByteBuffer refuses to pass its limit, all or nothing, with the status", () => {
  const b = buffer(100);
  b.append(bytes(60));
  refused(() => b.append(bytes(41)), "Cannot append to body: 101 bytes exceeds the limit of 100");
  assertEquals(b.view(), bytes(60), "unchanged");
  b.append(bytes(40, 3)); // exactly the limit
  assertEquals(b.length, 100);
  refused(() => b.append(bytes(1)), "Cannot append to body: 101 bytes exceeds the limit of 100");
  refused(() => b.set(bytes(101)), "Cannot set body: 101 bytes exceeds the limit of 100");
  refused(() => b.reserve(101), "Cannot grow body: 101 bytes exceeds the limit of 100");
  assertEquals(b.length, 100);
  b.set(bytes(100, 4));
  assertEquals(b.view(), bytes(100, 4));
});

Deno.test("ByteBuffer set replaces the content; reset and truncate shorten it", () => {
  const b = buffer();
  b.set(bytes(20));
  b.set(bytes(5, 2));
  assertEquals(b.view(), bytes(5, 2));
  b.truncate(9); // longer than the content: no change
  assertEquals(b.length, 5);
  b.truncate(5);
  assertEquals(b.length, 5);
  b.truncate(2);
  assertEquals(b.view(), bytes(2, 2));
  b.reset();
  assertEquals(b.length, 0);
  b.append(bytes(3, 5));
  assertEquals(b.view(), bytes(3, 5));
});

Deno.test("ByteBuffer appendString and setString write UTF-8, all or nothing", () => {
  const b = buffer(20);
  b.appendString("h\u00e9"); // 3 bytes
  b.appendString("\u20ac"); // 3 bytes
  assertEquals(b.view(), encoder.encode("h\u00e9\u20ac"));
  // Spare room smaller than 3 bytes per character: the exact size is checked first.
  refused(
    () => b.appendString("\u{1f600}".repeat(4)),
    "Cannot append to body: 22 bytes exceeds the limit of 20",
  );
  assertEquals(b.view(), encoder.encode("h\u00e9\u20ac"), "unchanged");
  b.appendString("ab\u{1f600}cd"); // 8 bytes: 14
  assertEquals(new TextDecoder().decode(b.view()), "h\u00e9\u20acab\u{1f600}cd");
  // A string that is short in bytes but long in characters x3 still fits.
  b.setString("a".repeat(20));
  assertEquals(b.length, 20);
  refused(
    () => b.setString("\u00e9".repeat(11)),
    "Cannot set body: 22 bytes exceeds the limit of 20",
  );
  assertEquals(b.view(), encoder.encode("a".repeat(20)), "unchanged");
  b.setString("\u00e9".repeat(10));
  assertEquals(b.view(), encoder.encode("\u00e9".repeat(10)));
  b.setString("");
  assertEquals(b.length, 0);
});

Deno.test("ByteBuffer appendString grows exactly enough for a long string", () => {
  const b = buffer(1000, new Uint8Array(100));
  b.appendString("x".repeat(40)); // 40 * 3 > 100 spare: counts 40 bytes, no growth
  assertEquals(b.capacity, 100);
  b.appendString("y".repeat(70)); // 110 bytes: grows to 200
  assertEquals(b.capacity, 200);
  assertEquals(b.view(), encoder.encode("x".repeat(40) + "y".repeat(70)));
});

Deno.test("ByteBuffer copyIn and copyOut move bytes short and long, at offsets", () => {
  for (const n of [0, 1, 7, 64, 511, 512, 513, 700]) {
    const src = bytes(n + 10, n);
    const b = buffer(1000, new Uint8Array(16));
    b.append(bytes(5, 9)); // replaced by copyIn
    b.copyIn(src, dataViewOf(src), 3, 3 + n);
    assertEquals(b.length, n);
    assertEquals(b.view(), src.subarray(3, 3 + n), `copyIn ${n}`);
    const target = new Uint8Array(n + 8).fill(0xaa);
    b.copyOut(target, dataViewOf(target), 5);
    const expected = new Uint8Array(n + 8).fill(0xaa);
    expected.set(src.subarray(3, 3 + n), 5);
    assertEquals(target, expected, `copyOut ${n}`);
  }
  const b = buffer(10);
  const src = bytes(20);
  refused(
    () => b.copyIn(src, dataViewOf(src), 0, 11),
    "Cannot set body: 11 bytes exceeds the limit of 10",
  );
  assertEquals(b.length, 0);
});

Deno.test("ByteBuffer copyIn after growth writes through the new storage", () => {
  const b = buffer(2000, new Uint8Array(8));
  const first = bytes(8, 1);
  b.copyIn(first, dataViewOf(first), 0, 8); // fills the initial storage via its DataView
  const long = bytes(40, 2);
  b.copyIn(long, dataViewOf(long), 0, 40); // grows; the DataView must follow
  assertEquals(b.view(), long);
  const short = bytes(12, 3);
  b.copyIn(short, dataViewOf(short), 0, 12);
  assertEquals(b.view(), short);
  assert(b.capacity >= 40);
});
