// What one `await` per message costs a receiver, without sockets: each iteration queues
// 1,024 pool messages on a group (updateReceiver, not timed) and takes them back with one of
// the four receive loops of bench:e2e, putting each message back. The group's async iterator
// and waitReceive() cost what a bare `await` of a settled promise costs (15-30 ns per message
// here); in bench:e2e, where a socket feeds the queue, the gap between these loops and the
// drain is larger (bench/RESULTS.md, issue #10).
// Run: deno task bench

import { Engine } from "../mod.ts";

const K = 1024;
const engine = new Engine({ initialPoolMsgs: K, maxPoolMsgs: K });
const group = engine.create();
const iterator = group[Symbol.asyncIterator]();
const SETTLED = Promise.resolve();

function fill(): void {
  for (let i = 0; i < K; i++) group.updateReceiver(engine.get("always"));
}

Deno.bench("tryReceive drain, x1024", { group: "receive loop", baseline: true }, (b) => {
  fill();
  b.start();
  for (let m = group.tryReceive(); m !== null; m = group.tryReceive()) engine.put(m);
  b.end();
});

Deno.bench("drain + await of a settled promise per message, x1024", {
  group: "receive loop",
}, async (b) => {
  fill();
  b.start();
  for (let m = group.tryReceive(); m !== null; m = group.tryReceive()) {
    await SETTLED;
    engine.put(m);
  }
  b.end();
});

Deno.bench("async iterator next() per message, x1024", { group: "receive loop" }, async (b) => {
  fill();
  b.start();
  for (let i = 0; i < K; i++) engine.put((await iterator.next()).value);
});

Deno.bench("await waitReceive() per message, x1024", { group: "receive loop" }, async (b) => {
  fill();
  b.start();
  for (let i = 0; i < K; i++) engine.put(await group.waitReceive());
});
