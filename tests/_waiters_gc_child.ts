// deno-lint-ignore-file no-console
// Run by tests/mutants_units2_test.ts with --v8-flags=--expose-gc: a receive queue lets go of
// its waits once they end. A loop of waits that are aborted (or time out) with no message
// in between must not pile them up in the queue: each wait holds its AbortSignal, so the
// signals of ended waits must be collectable. Prints how many of 200 are still alive.

import { ReceiveQueue } from "../src/_receive_queue.ts";

const gc = (globalThis as unknown as { gc(): void }).gc;
const q = new ReceiveQueue();
const refs: WeakRef<AbortSignal>[] = [];
for (let i = 0; i < 200; i++) {
  const ac = new AbortController();
  refs.push(new WeakRef(ac.signal));
  const p = i % 2 === 0 ? q.wait(Infinity, ac.signal) : q.wait(1, ac.signal);
  if (i % 2 === 0) ac.abort(new Error("stop"));
  await p.catch(() => null);
}
await new Promise((r) => setTimeout(r, 0));
gc();
await new Promise((r) => setTimeout(r, 0));
gc();
console.log(refs.filter((r) => r.deref() !== undefined).length);
