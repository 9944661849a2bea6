// Run with --unstable-net by tests/serve_workers_test.ts: two Workers serve one TCP port
// with SO_REUSEPORT; 40 separate connections each make one request. Prints, as JSON, the
// mode and how many connections each Worker took.
import { connect, serveWorkers } from "../mod.ts";

await using server = await serveWorkers(
  "tcp|127.0.0.1|0",
  new URL("./_serve_handler.ts", import.meta.url),
  { workers: 2 },
);
const counts: Record<string, number> = {};
for (let i = 0; i < 40; i++) {
  await using ch = await connect(server.address);
  using reply = await ch.request(`c${i}`);
  const [who, what] = reply.body.text().split(":");
  if (what !== `c${i}`) throw new Error(`wrong answer ${reply.body.text()}`);
  counts[who!] = (counts[who!] ?? 0) + 1;
}
// deno-lint-ignore no-console
console.log(JSON.stringify({ mode: server.mode, workers: server.workers, counts }));
