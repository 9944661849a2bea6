// NATS through a local nats-server, client @nats-io/transport-node under Node: one-way
// publish/subscribe throughput of `n` 64-byte messages (publisher and subscriber in this
// process, two connections) and request/reply round trips.
// Prints one JSON line: { oneWay (msg/s), rtts (ms[]) }.
import { connect } from "@nats-io/transport-node";

const [port, n, rounds, body] = process.argv.slice(2).map(Number);
const servers = `127.0.0.1:${port}`;

async function oneWay(count) {
  const sub = await connect({ servers });
  const pub = await connect({ servers });
  const s = sub.subscribe("bench.oneway");
  await sub.flush();
  const payload = new Uint8Array(body).fill(0x61);
  const receiving = (async () => {
    let got = 0;
    let t0 = 0;
    for await (const _m of s) {
      if (t0 === 0) t0 = performance.now();
      if (++got === count) break;
    }
    return performance.now() - t0;
  })();
  // Flush every few thousand messages: the client buffers without bound otherwise.
  for (let i = 0; i < count; i++) {
    pub.publish("bench.oneway", payload);
    if (i % 4096 === 4095) await pub.flush();
  }
  await pub.flush();
  const ms = await receiving;
  await pub.close();
  await sub.close();
  return count / (ms / 1000);
}

async function roundTrips(count) {
  const server = await connect({ servers });
  const client = await connect({ servers });
  const s = server.subscribe("bench.echo");
  (async () => {
    for await (const m of s) m.respond(m.data);
  })();
  await server.flush();
  const payload = new Uint8Array(body).fill(0x61);
  const rtts = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await client.request("bench.echo", payload, { timeout: 5000 });
    rtts.push(performance.now() - t);
  }
  await client.close();
  await server.close();
  return rtts;
}

await oneWay(Math.min(n, 20_000)); // warm-up
const rate = await oneWay(n);
await roundTrips(Math.min(rounds, 1000)); // warm-up
const rtts = await roundTrips(rounds);
console.log(JSON.stringify({ oneWay: rate, rtts }));
