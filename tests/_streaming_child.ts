// Spawned by faults_test.ts: connects to the address in Deno.args[0] and streams
// Requests until it is killed. It prints "streaming" once the handshake is done.

import { Engine, OpCode, TcpClientAddress, UdsClientAddress } from "../mod.ts";

const where = Deno.args[0]!;
const address = where.startsWith("uds|")
  ? UdsClientAddress.parse(where)
  : TcpClientAddress.parse(where);
const engine = new Engine();
const group = engine.create();
const { channelNumber } = group.post(address.format(engine.get("always")!));
const resp = await group.waitReceive(5000);
if (resp?.bhdr.opCode !== OpCode.HelloResponse) Deno.exit(2);
// deno-lint-ignore no-console
console.log("streaming");
for (let i = 0;; i++) {
  const m = engine.get("always")!;
  m.bhdr.channelNumber = channelNumber;
  m.body.set(`chunk ${i} `.repeat(50));
  m.bhdr.more = 1;
  m.bhdr.messageId = 777n;
  group.post(m);
  if (i % 50 === 0) await new Promise((r) => setTimeout(r, 1));
}
