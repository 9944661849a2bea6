// Table task 5: a client that survives a server restart (here both in one process).
//   deno run --allow-net=unix:/tmp/tofu.sock --allow-read=/tmp --allow-write=/tmp \
//     examples/task_reconnect.ts [/tmp/tofu.sock]
// deno-lint-ignore-file no-console
import { connect, serve } from "../mod.ts";

const address = `uds|${Deno.args[0] ?? "/tmp/tofu.sock"}`;
let server = await serve(address, () => "first server");
await using ch = await connect(address, { reconnect: true });
console.log((await ch.request("hi")).body.text()); // first server
await server.close(); // the client re-dials with backoff ...
server = await serve(address, () => "second server"); // ... until this one answers
console.log((await ch.request("hi", { timeoutMs: 10_000 })).body.text()); // second server
await server.close();
