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

/** Runs `fn` with Math.random returning `values` in turn (then the last one again). */
function withRandom<T>(values: number[], fn: () => T): T {
  const real = Math.random;
  let i = 0;
  Math.random = () => values[Math.min(i++, values.length - 1)]!;
  try {
    return fn();
  } finally {
    Math.random = real;
  }
}

/** The Math.random value that draws `n` (FIRST + floor(r * 65534) === n). */
const drawing = (n: number) => (n - 1 + 0.5) / LAST;

Deno.test("ChannelNumbers draws at random over the whole range 1..65534", () => {
  assertEquals(withRandom([0], () => new ChannelNumbers(5).allocate()), 1);
  assertEquals(withRandom([0.9999999999], () => new ChannelNumbers(5).allocate()), LAST);
  assertEquals(withRandom([drawing(4242)], () => new ChannelNumbers(5).allocate()), 4242);
});

Deno.test("ChannelNumbers tries random numbers first and takes the first free one", () => {
  const numbers = new ChannelNumbers(100);
  withRandom([drawing(10)], () => numbers.allocate());
  withRandom([drawing(20)], () => numbers.allocate());
  // 10 and 20 are taken: the third draw (30) is free and wins over later draws (40).
  assertEquals(
    withRandom([drawing(10), drawing(20), drawing(30), drawing(40)], () => numbers.allocate()),
    30,
  );
  // Draws of 10, then 40: 40, not the next free number after 10 (11).
  assertEquals(withRandom([drawing(10), drawing(40), drawing(50)], () => numbers.allocate()), 40);
});

Deno.test("ChannelNumbers scans every number when random draws keep failing", () => {
  // Quarantine of 0: a released number is free at once.
  for (const [free, start] of [[500, 501], [LAST, 1], [1, 2], [7, LAST]]) {
    const numbers = new ChannelNumbers(LAST, 0);
    fill(numbers);
    numbers.release(free!);
    // Every draw hits the same used number, so the scan starts there and wraps around.
    assertEquals(withRandom([drawing(start!)], () => numbers.allocate()), free, `free ${free}`);
    assertEquals(numbers.allocate(), null);
  }
});

Deno.test("ChannelNumbers: numbers leave the quarantine oldest first, beyond its size", () => {
  // Quarantine of 1: after releasing 100, 200, 300 only 300 is in quarantine.
  const numbers = new ChannelNumbers(LAST, 1);
  fill(numbers);
  for (const n of [100, 200, 300]) numbers.release(n);
  // The scan starts at 150 (a used number): 200 is the first free one, then 100; 300 last.
  const order = withRandom([drawing(150)], () => [
    numbers.allocate(),
    numbers.allocate(),
    numbers.allocate(),
  ]);
  assertEquals(order, [200, 100, 300]);
});
