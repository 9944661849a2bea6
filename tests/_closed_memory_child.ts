// Spawned by reliability_test.ts with --expose-gc: 2,000 peers each start a frame of
// 131,086 bytes (the server's decoder makes room for all of it), send 1,000 bytes of it
// and leave. The 2,000 channel_closed Signals are kept unread-like (held, not put back);
// prints the external memory and RSS growth after a full GC, in MiB.

import { Engine, OpCode, Status } from "../mod.ts";
import { lifecycleTransports, listen, rawConnect, writeAll } from "./_fixtures.ts";

const t = lifecycleTransports.find((x) => x.name === Deno.args[0])!;
const peers = 2000;
const gc = (globalThis as unknown as { gc: () => void }).gc;

const engine = new Engine();
const server = await listen(engine, t);
gc();
const before = Deno.memoryUsage();

const start = new Uint8Array(16 + 1000);
start[2] = OpCode.Request;
start[12] =
  start[13] =
  start[14] =
  start[15] =
    0xff; // 65,535-byte headers and body
const held = [];
for (let done = 0; done < peers;) {
  const batch = Math.min(100, peers - done);
  await Promise.all(Array.from({ length: batch }, async () => {
    const conn = await rawConnect(server.bound);
    await writeAll(conn, start);
    // Let the server read the start before the connection goes away.
    await new Promise((r) => setTimeout(r, 20));
    conn.close();
  }));
  done += batch;
  for (;;) {
    const m = await server.group.waitReceive(held.length < done ? 10_000 : 0);
    if (m === null) break;
    if (m.bhdr.status !== Status.channelClosed) {
      throw new Error(`unexpected status ${m.bhdr.status}`);
    }
    held.push(m);
  }
}
if (held.length !== peers) throw new Error(`${held.length} channel_closed Signals`);
if (Deno.args[1] === "drop") held.length = 0;
// Backing stores are freed after the collection: collect, let the loop turn, collect again.
gc();
await new Promise((r) => setTimeout(r, 50));
gc();
const after = Deno.memoryUsage();
const mib = (n: number) => +(n / 2 ** 20).toFixed(1);
// deno-lint-ignore no-console
console.log(JSON.stringify({
  signals: held.length,
  externalMiB: mib(after.external - before.external),
  rssMiB: mib(after.rss - before.rss),
}));
await engine.close();
