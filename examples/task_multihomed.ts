// Table task 4: one server on a TCP port and a Unix socket at once.
//   deno run --allow-net=127.0.0.1,unix:/tmp/tofu.sock --allow-read=/tmp --allow-write=/tmp \
//     examples/task_multihomed.ts [/tmp/tofu.sock]
// deno-lint-ignore-file no-console
import { connect, serve } from "../mod.ts";

const addresses = ["tcp|127.0.0.1|0", `uds|${Deno.args[0] ?? "/tmp/tofu.sock"}`];
await using server = await serve(addresses, (req) => `hello over ${req.body.text()}`);
for (const address of server.addresses) {
  await using ch = await connect(address);
  using reply = await ch.request(address.split("|")[0]!);
  console.log(reply.body.text()); // hello over tcp, then hello over uds
}
