// deno-lint-ignore-file no-console
// Run by tests/idle_after_big_test.ts with --expose-gc: `count` raw peers connect, one after
// another, to an engine listening on TRANSPORT; each says Hello and sends one Request with a
// 60,000-byte body, which the engine's application takes and puts back, then the peer stays
// connected and sends nothing more. Prints the engine process's external memory growth
// (after a full GC) per peer, in bytes, while they are connected.

import { OpCode } from "../mod.ts";
import { frame } from "./_attack.ts";
import { rawConnect, writeAll } from "./_fixtures.ts";
import { externalAfterGc, listeningEngine } from "./_gc_child.ts";

const [name = "tcp", countArg = "200"] = Deno.args;
const count = Number(countArg);
const external = externalAfterGc;
const { engine: listening, group, bound } = await listeningEngine(name);
await using engine = listening;

const hello = frame(OpCode.HelloRequest, "", 1n);
const big = frame(OpCode.Request, "x".repeat(60_000), 2n);

/** Takes messages until a Request came; puts each back. */
async function untilRequest(): Promise<void> {
  for (;;) {
    const m = await group.waitReceive(10_000);
    if (m === null) throw new Error("no Request within 10 s");
    const op = m.bhdr.opCode;
    engine.put(m);
    if (op === OpCode.Request) return;
  }
}

// One peer first: the pool's messages grow their bodies once, before the measurement.
const warm = await rawConnect(bound);
await writeAll(warm, hello);
await writeAll(warm, big);
await untilRequest();

const before = external();
const conns = [];
for (let i = 0; i < count; i++) {
  const c = await rawConnect(bound);
  await writeAll(c, hello);
  await writeAll(c, big);
  await untilRequest();
  conns.push(c);
}
await new Promise((r) => setTimeout(r, 300));
const perPeer = (external() - before) / count;
for (const c of [warm, ...conns]) c.close();
console.log(JSON.stringify({ perPeer, channels: engine.channelCount }));
