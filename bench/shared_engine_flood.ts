/**
 * A peer floods a `serve` server whose handlers for its requests hang, so they pile up
 * unread in its Peers channel; a good client on the same engine as the server sends 50
 * concurrent requests at a time for 10 s (each may take 10 s). Prints how many it got answered, the latency of
 * each batch, how many flood frames the kernel and the engine took before flow control
 * stopped the flooder, and the RSS growth.
 *
 *   deno run -A bench/shared_engine_flood.ts [tcp|uds]
 *
 * @module
 */

// deno-lint-ignore-file no-console

import { connect, encodeFrame, Engine, Message, OpCode, serve } from "../mod.ts";

const transport = Deno.args[0] === "uds" ? "uds" : "tcp";
const SECONDS = 10;
const engine = new Engine();
let release!: () => void;
const stuck = new Promise<void>((r) => release = r);
const address = transport === "tcp"
  ? "tcp|127.0.0.1|0"
  : `uds|${Deno.makeTempDirSync()}/flood.sock`;
const server = await serve(address, async (req) => {
  if (req.body.bytes().length === 1000) await stuck; // the flooder's requests hang
  return "ok";
}, { engine, maxInFlight: 4 });
const good = await connect(server.address, { engine });
const rss0 = Deno.memoryUsage().rss;

const conn = transport === "tcp"
  ? await Deno.connect({
    hostname: "127.0.0.1",
    port: Number(server.address.split("|")[2]),
  })
  : await Deno.connect({ transport: "unix", path: server.address.slice(4) });
const m = new Message();
m.bhdr.opCode = OpCode.Request;
m.body.set(new Uint8Array(1000));
const one = encodeFrame(m);
const batch = new Uint8Array(one.length * 100);
for (let i = 0; i < 100; i++) batch.set(one, i * one.length);
let written = 0;
const flooding = (async () => {
  for (let i = 0; i < 300; i++) {
    for (let off = 0; off < batch.length;) {
      off += await conn.write(batch.subarray(off));
    }
    written += 100;
  }
})().catch(() => {});
await new Promise((r) => setTimeout(r, 500));

const latencies: number[] = [];
let answered = 0;
let failed = 0;
const until = Date.now() + SECONDS * 1000;
while (Date.now() < until && failed === 0) {
  const t0 = performance.now();
  const results = await Promise.allSettled(
    Array.from(
      { length: 50 },
      () => good.request("x", { timeoutMs: SECONDS * 1000 }),
    ),
  );
  latencies.push(performance.now() - t0);
  for (const r of results) {
    if (r.status === "fulfilled") {
      engine.put(r.value);
      answered++;
    } else failed++;
  }
}
latencies.sort((a, b) => a - b);
const q = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
console.log(
  `${transport}: ${answered} answered, ${failed} timed out in ${SECONDS} s; batch of 50 p50 ${
    q(0.5).toFixed(2)
  } ms, p99 ${
    q(0.99).toFixed(2)
  } ms; flood frames written before flow control stopped it: ${written}; RSS +${
    ((Deno.memoryUsage().rss - rss0) / 2 ** 20).toFixed(1)
  } MiB`,
);
conn.close();
release();
await flooding;
await good.close();
await server.close();
await engine.close();
