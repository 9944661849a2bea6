// deno-lint-ignore-file no-console
// Child of tests/backpressure_test.ts: a timed wait served at once must not keep the
// process alive for its timeout (the queue's shared timer is unref'd once no timed wait
// is pending), while a pending timed wait must (it times out, then the process ends).
import { Engine } from "../mod.ts";

const engine = new Engine();
const g = engine.create();
g.updateReceiver();
const served = await g.waitReceive(60_000);
engine.put(served);
const t0 = performance.now();
const timedOut = await g.waitReceive(200); // nothing else keeps the loop alive
console.log(
  JSON.stringify({ served: served !== null, timedOut, waitedMs: performance.now() - t0 }),
);
// No close: the process must still end on its own.
