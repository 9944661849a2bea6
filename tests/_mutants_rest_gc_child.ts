// deno-lint-ignore-file no-console
// Run by tests/mutants_rest_units_test.ts with --v8-flags=--expose-gc: structures that live
// as long as an engine or a peer keep their arrays bounded however much passes through
// them. Deno.args[0] is the case:
// - "items": the Peers layer's FIFO (src/_async_queue.ts) always holding an item (so it is
//   never reset as it empties): the taken slots at the front must go;
// - "takers": the same FIFO with a taker waiting for each item: the served takers' slots
//   must go;
// - "numbers": channel numbers (src/_channel_numbers.ts) allocated and released over and
//   over: the quarantine's array must not keep every number released.
// Prints the heap growth in bytes after 1,000,000 rounds, with the structure still alive. It
// takes well under a second; past 20 s (a mutant that makes a round slow) it stops itself
// with exit code 3, so that no child outlives a test process that was killed.

import { AsyncQueue } from "../src/_async_queue.ts";
import { ChannelNumbers } from "../src/_channel_numbers.ts";

const gc = (globalThis as unknown as { gc(): void }).gc;
const mode = Deno.args[0];
const rounds = 1_000_000;

function heap(): number {
  gc();
  gc();
  return Deno.memoryUsage().heapUsed;
}

const q = new AsyncQueue<number>();
const nums = new ChannelNumbers();
if (mode === "items") q.push(-1);
const before = heap();
const started = performance.now();
for (let i = 0; i < rounds; i++) {
  if (i % 10_000 === 0 && performance.now() - started > 20_000) {
    console.error(`stopped after 20 s at round ${i}`);
    Deno.exit(3);
  }
  if (mode === "items") {
    q.push(i);
    q.take();
  } else if (mode === "takers") {
    q.take();
    q.push(i);
  } else {
    nums.release(nums.allocate()!);
  }
}
await new Promise((r) => setTimeout(r, 0));
const after = heap();
console.log(JSON.stringify({ growth: after - before, size: q.size, count: nums.count }));
