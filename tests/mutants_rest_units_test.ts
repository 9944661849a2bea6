// Unit files whose survivors were all called equivalent, looked at again (issue #13,
// docs/testing.md, "mut-rest: the last files"): the Peers layer's FIFO and the channel
// numbers' quarantine keep their arrays bounded (src/_async_queue.ts,
// src/_channel_numbers.ts); channel numbers are drawn at random even when almost every
// number is taken, and with every free number in quarantine the one released longest ago
// comes back first.

import { assert, assertEquals } from "@std/assert";
import { ChannelNumbers } from "../src/_channel_numbers.ts";

/** Runs the memory child in `mode`; returns its heap growth in bytes. */
async function growth(mode: "items" | "takers" | "numbers"): Promise<number> {
  const out = await new Deno.Command("deno", {
    args: [
      "run",
      "--no-prompt",
      "--v8-flags=--expose-gc",
      // Env permission for Stryker's variable lets a mutant be active in the child too.
      "--allow-env=__STRYKER_ACTIVE_MUTANT__",
      new URL("./_mutants_rest_gc_child.ts", import.meta.url).pathname,
      mode,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const r = JSON.parse(new TextDecoder().decode(out.stdout).trim());
  assertEquals([r.size, r.count], [mode === "items" ? 1 : 0, 0]);
  return r.growth;
}

Deno.test("AsyncQueue: a million items through a queue that always holds one, or through waiting takers, leave its arrays bounded", async () => {
  // Bounded arrays: about 1 MB of heap either way (the runtime's own); an array that kept
  // a slot per item would add 8 MB or more.
  for (const mode of ["items", "takers"] as const) {
    const bytes = await growth(mode);
    assert(bytes < 4_000_000, `${mode}: the heap grew by ${bytes} bytes`);
  }
});

Deno.test("ChannelNumbers: with only two numbers free, both are drawn (the scan after the random tries starts at random)", () => {
  const nums = new ChannelNumbers(65534, 0); // no quarantine: a released number is free again
  for (let i = 0; i < 65534; i++) assert(nums.allocate() !== null);
  assertEquals(nums.allocate(), null);
  // Two numbers half the range apart: 16 random tries almost never find one, and a scan
  // from a random start reaches each first half the time.
  nums.release(1);
  nums.release(32768);
  const drawn = new Map<number, number>();
  for (let i = 0; i < 200; i++) {
    const n = nums.allocate()!;
    drawn.set(n, (drawn.get(n) ?? 0) + 1);
    nums.release(n);
  }
  assertEquals([...drawn.keys()].sort((a, b) => a - b), [1, 32768]);
  // Each about 100 times in 200; under 40 has a chance below 1e-17.
  for (const [n, times] of drawn) assert(times >= 40, `${n} drawn ${times} times of 200`);
  assertEquals(nums.count, 65532);
});

Deno.test("ChannelNumbers: a million numbers allocated and released leave the quarantine's array bounded", async () => {
  // Bounded: about 1 MB of heap (the runtime's own); keeping every released number would
  // add 8 MB or more.
  const bytes = await growth("numbers");
  assert(bytes < 4_000_000, `the heap grew by ${bytes} bytes`);
});

Deno.test("ChannelNumbers: with every free number in quarantine, the one released longest ago comes back first, and the others stay in quarantine", () => {
  const nums = new ChannelNumbers(); // 65,534 numbers, the last 1,024 released in quarantine
  for (let i = 0; i < 65534; i++) assert(nums.allocate() !== null);
  for (const n of [500, 20000, 60000]) nums.release(n);
  assertEquals(nums.count, 65531);
  assertEquals(nums.allocate(), 500);
  assertEquals(nums.allocate(), 20000);
  assertEquals(nums.allocate(), 60000);
  assertEquals(nums.allocate(), null);
});
