// Channel numbers (src/_channel_numbers.ts): 1..65534 at random, a limit, and a quarantine
// that keeps a released number from being drawn again soon.

import { assert, assertEquals, assertThrows } from "@std/assert";
import { ChannelNumbers } from "../src/_channel_numbers.ts";

const LAST = 65534;

function fill(numbers: ChannelNumbers): Set<number> {
  const got = new Set<number>();
  for (let n = numbers.allocate(); n !== null; n = numbers.allocate()) {
    assert(!got.has(n), `${n} drawn twice`);
    got.add(n);
  }
  return got;
}

Deno.test("ChannelNumbers: the limit is an integer 1..65534", () => {
  for (const bad of [0, -1, 1.5, LAST + 1, NaN]) {
    const err = assertThrows(() => new ChannelNumbers(bad), RangeError);
    assertEquals(err.message, `Cannot create engine: maxChannels ${bad} is not 1..65534`);
  }
  assertEquals(new ChannelNumbers(1).limit, 1);
  assertEquals(new ChannelNumbers(LAST).limit, LAST);
  assertEquals(new ChannelNumbers().limit, LAST);
});

Deno.test("ChannelNumbers: distinct numbers in 1..65534 up to the limit, then null", () => {
  const numbers = new ChannelNumbers(50);
  assertEquals(numbers.count, 0);
  const got = fill(numbers);
  assertEquals(got.size, 50);
  assertEquals(numbers.count, 50);
  for (const n of got) assert(Number.isInteger(n) && n >= 1 && n <= LAST, String(n));
  assertEquals(numbers.allocate(), null);
  const [first] = got;
  numbers.release(first!);
  assertEquals(numbers.count, 49);
  numbers.release(first!); // twice: no effect
  numbers.release(70000); // never drawn: no effect
  assertEquals(numbers.count, 49);
  assert(numbers.allocate() !== null);
  assertEquals(numbers.count, 50);
  assertEquals(numbers.allocate(), null);
});

Deno.test("ChannelNumbers: every number 1..65534 can be drawn; then released ones come back oldest first", () => {
  const numbers = new ChannelNumbers(LAST);
  const got = fill(numbers);
  assertEquals(got.size, LAST);
  assertEquals(Math.min(...got), 1);
  assertEquals(Math.max(...got), LAST);
  assertEquals(numbers.allocate(), null);
  // Every free number is in quarantine: the one released longest ago is reused.
  for (const n of [500, 7, 65534, 1]) numbers.release(n);
  assertEquals([numbers.allocate(), numbers.allocate()], [500, 7]);
  numbers.release(33);
  assertEquals([numbers.allocate(), numbers.allocate(), numbers.allocate()], [65534, 1, 33]);
  assertEquals(numbers.allocate(), null);
  assertEquals(numbers.count, LAST);
});

Deno.test("ChannelNumbers: a number in quarantine is not drawn while another is free", () => {
  // Quarantine of 1: releasing b pushes a out of quarantine, so a is free and b is not.
  const numbers = new ChannelNumbers(LAST, 1);
  fill(numbers);
  for (let round = 0; round < 12; round++) {
    const a = 1 + ((round * 7919) % LAST);
    const b = 1 + ((round * 104729 + 17) % LAST);
    numbers.release(a);
    numbers.release(b);
    assertEquals(numbers.allocate(), a, `round ${round}: the free number first`);
    assertEquals(numbers.allocate(), b, `round ${round}: then the quarantined one`);
    assertEquals(numbers.allocate(), null);
  }
});

Deno.test("ChannelNumbers: thousands of release/allocate cycles keep numbers unique and quarantined", () => {
  const numbers = new ChannelNumbers(10, 1024);
  const live = fill(numbers);
  const released: number[] = [];
  for (let i = 0; i < 6000; i++) {
    const [oldest] = live;
    live.delete(oldest!);
    numbers.release(oldest!);
    released.push(oldest!);
    const n = numbers.allocate();
    if (n === null) throw new Error(`cycle ${i}: no number`);
    assert(!live.has(n), `cycle ${i}: ${n} is in use`);
    assert(!released.slice(-1024).includes(n), `cycle ${i}: ${n} was released recently`);
    live.add(n);
    assertEquals(numbers.count, 10);
  }
  assertEquals(numbers.allocate(), null);
});
