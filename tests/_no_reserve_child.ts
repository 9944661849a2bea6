// Run by tests/mutants_engine_listener_test.ts without read permission: the listener cannot
// open its reserve descriptor (/dev/null) and must accept all the same.

import { Engine, OpCode, TcpServerAddress } from "../mod.ts";

await using engine = new Engine();
const server = engine.create();
server.post(new TcpServerAddress("127.0.0.1", 0).format(engine.get("always")!));
const welcome = (await server.waitReceive(10_000))!;
const [, host, port] = welcome.headers.get("~listen_on")!.split("|");
let served = 0;
for (let i = 0; i < 3; i++) {
  const conn = await Deno.connect({ hostname: host!, port: Number(port) });
  const hello = new Uint8Array(16);
  hello[2] = OpCode.HelloRequest;
  hello[11] = 1; // message id 1
  await conn.write(hello);
  const m = (await server.waitReceive(10_000))!;
  if (m.bhdr.opCode === OpCode.HelloRequest) served++;
  engine.put(m);
  conn.close();
  engine.put(await server.waitReceive(10_000)); // its channel_closed
}
// deno-lint-ignore no-console
console.log(`served ${served}`);
