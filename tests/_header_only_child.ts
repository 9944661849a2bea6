// deno-lint-ignore-file no-console
// Run by tests/header_only_test.ts with --expose-gc: `count` raw peers connect to an engine
// listening on TRANSPORT and each sends one 16-byte header that announces the largest frame
// (65,535 bytes of text headers and of body), then nothing. Prints the engine process's
// external memory growth (after a full GC) per peer, in bytes, while they hold the frame.

import { Engine } from "../mod.ts";
import { rawConnect, transports } from "./_fixtures.ts";

const [name = "tcp", countArg = "300"] = Deno.args;
const t = transports.find((x) => x.name === name)!;
const count = Number(countArg);
const gc = (globalThis as { gc?: () => void }).gc!;
const external = () => {
  gc();
  return Deno.memoryUsage().external;
};

await using engine = new Engine({ maxConnections: 10_000 });
const group = engine.create();
group.post(t.listenAt().format(engine.get("always")));
const welcome = (await group.waitReceive(5000))!;
const bound = welcome.headers.get("~listen_on")!;
engine.put(welcome);

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
