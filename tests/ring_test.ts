// The ring-buffer deque behind the send and receive queues (src/_ring.ts).

import { assertEquals } from "@std/assert";
import { Ring } from "../src/_ring.ts";

Deno.test("Ring: push and shift are first in, first out; empty gives undefined", () => {
  const r = new Ring<number>();
  assertEquals(r.length, 0);
  assertEquals(r.peek(), undefined);
  assertEquals(r.shift(), undefined);
  for (let i = 0; i < 5; i++) r.push(i);
  assertEquals(r.length, 5);
  assertEquals(r.peek(), 0);
  assertEquals([r.shift(), r.shift()], [0, 1]);
  assertEquals(r.length, 3);
  assertEquals(r.drain(), [2, 3, 4]);
  assertEquals(r.length, 0);
  assertEquals(r.shift(), undefined);
  assertEquals(r.length, 0, "shifting an empty ring keeps the length at 0");
});

Deno.test("Ring: unshift puts items at the head, before pushed ones", () => {
  const r = new Ring<string>();
  r.push("b");
  r.unshift("a");
  r.push("c");
  r.unshift("z");
  assertEquals(r.peek(), "z");
  assertEquals(r.drain(), ["z", "a", "b", "c"]);
  r.unshift("only");
  assertEquals(r.length, 1);
  assertEquals(r.shift(), "only");
});

Deno.test("Ring: grows past its capacity with the head anywhere, keeping the order", () => {
  for (const initial of [undefined, 1, 16, 17, 100]) {
    for (let offset = 0; offset < 20; offset += 3) {
      const r = new Ring<number>(initial);
      const expected: number[] = [];
      // Move the head away from slot 0, then wrap around and grow with unshift and push.
      for (let i = 0; i < offset; i++) r.push(-1);
      for (let i = 0; i < offset; i++) r.shift();
      for (let i = 0; i < 150; i++) {
        if (i % 3 === 0) {
          r.unshift(i);
          expected.unshift(i);
        } else {
          r.push(i);
          expected.push(i);
        }
        assertEquals(r.length, expected.length);
        assertEquals(r.peek(), expected[0]);
      }
      // Interleave shifts and pushes across the wrap point.
      for (let i = 0; i < 60; i++) {
        assertEquals(r.shift(), expected.shift());
        r.push(1000 + i);
        expected.push(1000 + i);
      }
      assertEquals(r.drain(), expected, `capacity ${initial}, head offset ${offset}`);
    }
  }
});

Deno.test("Ring: falsy items (0, empty string, null) are kept", () => {
  const r = new Ring<number | string | null>();
  r.push(0);
  r.push("");
  r.push(null);
  assertEquals(r.length, 3);
  assertEquals([r.shift(), r.shift(), r.shift()], [0, "", null]);
});

Deno.test("Ring: unshift into a full ring grows it and keeps every item", () => {
  for (const size of [16, 32]) {
    const r = new Ring<number>();
    for (let i = 0; i < size; i++) r.push(i);
    r.unshift(-1);
    assertEquals(r.length, size + 1);
    assertEquals(r.drain(), [-1, ...Array.from({ length: size }, (_, i) => i)]);
  }
});
