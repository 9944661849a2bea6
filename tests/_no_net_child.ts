// Run without permissions by engine_edge_test.ts: every listen and connect must come
// back as a not_allowed report, and nothing may be thrown out of the engine.

import { Engine, TcpClientAddress, TcpServerAddress, UdsServerAddress } from "../mod.ts";

await using engine = new Engine();
const g = engine.create();
const out = [];
for (
  const addr of [
    new TcpServerAddress("127.0.0.1", 0),
    new TcpClientAddress("127.0.0.1", 9),
    new UdsServerAddress("/tmp/tofu_no_net.port"),
  ]
) {
  g.post(addr.format(engine.get("always")!));
  for (let i = 0; i < 2; i++) {
    const m = (await g.waitReceive(5000))!;
    out.push({ op: m.bhdr.opCode, status: m.bhdr.status, error: m.error?.message ?? "" });
  }
}
// deno-lint-ignore no-console
console.log(JSON.stringify(out));
