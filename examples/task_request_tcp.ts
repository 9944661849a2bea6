// Table task 1: request/response over TCP, server and client in a few lines.
//   deno run --allow-net=127.0.0.1 examples/task_request_tcp.ts
// deno-lint-ignore-file no-console
import { connect, serve } from "../mod.ts";

await using server = await serve("tcp|127.0.0.1|0", (req) => req.body.text().toUpperCase());
await using ch = await connect(server.address);
using reply = await ch.request("ping");
console.log(reply.body.text()); // PING
