// Table task 2: the same over a Unix socket (Deno asks net permission for its exact path).
//   deno run --allow-net=unix:/tmp/tofu.sock --allow-read=/tmp --allow-write=/tmp \
//     examples/task_request_uds.ts [/tmp/tofu.sock]
// deno-lint-ignore-file no-console
import { connect, serve } from "../mod.ts";

const path = Deno.args[0] ?? "/tmp/tofu.sock";
await using server = await serve(`uds|${path}`, (req) => req.body.text().toUpperCase());
await using ch = await connect(server.address);
using reply = await ch.request("ping");
console.log(reply.body.text()); // PING
