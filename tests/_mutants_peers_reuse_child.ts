// Run with --unstable-net by tests/mutants_peers_transport_test.ts: two engines bind one TCP
// port with reusePort, and serveWorkers() picks reusePort mode by itself and serves. Prints
// one JSON line with what it saw.
import { connect, Engine, OpCode, serveWorkers, statusName, TcpServerAddress } from "../mod.ts";

async function bind(engine: Engine, port: number): Promise<[string, number]> {
  const g = engine.create();
  g.post(new TcpServerAddress("127.0.0.1", port).format(engine.get("always")));
  const m = await g.waitReceive(20_000);
  if (m?.bhdr.opCode !== OpCode.WelcomeResponse) throw new Error("no WelcomeResponse");
  const bound = m.headers.get("~listen_on") ?? "";
  const status = statusName(m.bhdr.status);
  engine.put(m);
  return [status, Number(bound.split("|")[2])];
}

await using a = new Engine({ reusePort: true });
await using b = new Engine({ reusePort: true });
const [first, port] = await bind(a, 0);
const [second] = await bind(b, port);

await using server = await serveWorkers(
  "tcp|127.0.0.1|0",
  new URL("./_serve_handler.ts", import.meta.url),
  { workers: 2 },
);
await using ch = await connect(server.address);
using reply = await ch.request("r");
// deno-lint-ignore no-console
console.log(JSON.stringify({
  first,
  second,
  port: port > 0,
  mode: server.mode,
  workers: server.workers,
  reply: reply.body.text().split(":")[1],
}));
