// deno-lint-ignore-file no-console
// Run by tests/header_only_test.ts with --expose-gc: `count` raw peers connect to an engine
// listening on TRANSPORT and each sends one 16-byte header that announces the largest frame
// (65,535 bytes of text headers and of body), then nothing. Prints the engine process's
// external memory growth (after a full GC) per peer, in bytes, while they hold the frame.

import { rawConnect } from "./_fixtures.ts";
import { externalAfterGc, listeningEngine } from "./_gc_child.ts";

const [name = "tcp", countArg = "300"] = Deno.args;
const count = Number(countArg);
const external = externalAfterGc;
const { engine: listening, bound } = await listeningEngine(name);
await using engine = listening;

const header = new Uint8Array(16);
header[2] = 3; // HelloRequest
header[11] = 1; // message id 1
new DataView(header.buffer).setUint32(12, 0xffff_ffff); // 65,535 + 65,535 bytes to follow

const before = external();
const conns = [];
for (let i = 0; i < count; i++) {
  const c = await rawConnect(bound);
  await c.write(header);
  conns.push(c);
}
// Until the engine has read every header (its channels are open and reading).
for (let waited = 0; engine.channelCount < count + 1 && waited < 10_000; waited += 10) {
  await new Promise((r) => setTimeout(r, 10));
}
await new Promise((r) => setTimeout(r, 300));
const perPeer = (external() - before) / count;
for (const c of conns) c.close();
console.log(JSON.stringify({ perPeer, channels: engine.channelCount }));
