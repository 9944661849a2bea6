// Run with --unstable-net (and env permission, so that under `deno task mutate` it runs the
// mutant too) by tests/mutants_peers3_workers_test.ts: which path serveWorkers() takes where
// reusePort is available. Prints one JSON line with what it saw.
import { connect, serveWorkers } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";

const handler = new URL("./_mutants_peers3_address_handler.ts", import.meta.url);

async function ask(address: string): Promise<string> {
  await using ch = await connect(address, { timeoutMs: 20_000 });
  using reply = await ch.request("where", { timeoutMs: 20_000 });
  return reply.body.text();
}

// A TCP address: every Worker binds the port itself and accepts the peer.
const tcp = await serveWorkers("tcp|127.0.0.1|0", handler, { workers: 2 });
const tcpSeen = await ask(tcp.address);
const tcpResult = {
  mode: tcp.mode,
  address: tcp.address.startsWith("tcp|127.0.0.1|") && !tcp.address.endsWith("|0"),
  seen: tcpSeen === tcp.address ? "the bound address" : tcpSeen,
};
await tcp.close();

// A Unix socket address cannot be shared: the relay binds it, the Workers get isolate channels.
const path = tempUdsPath();
const uds = await serveWorkers(`uds|${path}`, handler, { workers: 1 });
const udsSeen = await ask(uds.address);
const udsResult = {
  mode: uds.mode,
  address: uds.address === `uds|${path}`,
  seen: udsSeen.startsWith("isolate|tofu-serve-") ? "an isolate address" : udsSeen,
};
await uds.close();

// deno-lint-ignore no-console
console.log(JSON.stringify({ tcp: tcpResult, uds: udsResult }));
