// The Peers layer's everyday loop: `await ch.send(body)` per message on one side, `for await
// (using m of peer)` on the other, both in this process over loopback TCP, 64-byte bodies.
// Prints messages per second, the median of 5 rounds after a warm-up.
// Run: deno run --allow-net=127.0.0.1 bench/peers_send.ts [messages per round]

// deno-lint-ignore-file no-console

import { connect, listen } from "../mod.ts";

const N = Number(Deno.args[0] ?? 200_000);
await using server = await listen("tcp|127.0.0.1|0");
await using ch = await connect(server.address);
const peer = (await server[Symbol.asyncIterator]().next()).value!;
const body = new Uint8Array(64).fill(0x61);

async function round(): Promise<number> {
  const t0 = performance.now();
  const receiving = (async () => {
    let got = 0;
    for await (using _m of peer) if (++got === N) return;
  })();
  for (let i = 0; i < N; i++) await ch.send(body);
  await receiving;
  return N / ((performance.now() - t0) / 1000);
}

await round();
const rates: number[] = [];
for (let r = 0; r < 5; r++) rates.push(await round());
rates.sort((a, b) => a - b);
console.log(
  `Peers layer, await send() + for await, ${N} messages x 5: median ${
    (rates[2]! / 1e6).toFixed(3)
  } M msg/s (${(rates[0]! / 1e6).toFixed(3)}-${(rates[4]! / 1e6).toFixed(3)})`,
);
await peer.close();
