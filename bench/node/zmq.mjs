// zeromq.js under Node (its Request/Reply hangs under Deno): one-way push/pull throughput
// of `n` 64-byte messages and req/rep round trips, over loopback TCP in one process.
// Prints one JSON line: { oneWay (msg/s), rtts (ms[]) }.
import * as zmq from "zeromq";

const [n, rounds, body] = process.argv.slice(2).map(Number);

async function oneWay(count) {
  const push = new zmq.Push({ sendHighWaterMark: 100_000 });
  await push.bind("tcp://127.0.0.1:*");
  const pull = new zmq.Pull({ receiveHighWaterMark: 100_000 });
  pull.connect(push.lastEndpoint);
  const payload = Buffer.alloc(body, 0x61);
  const receiving = (async () => {
    let got = 0;
    let t0 = 0;
    for await (const [_m] of pull) {
      if (t0 === 0) t0 = performance.now();
      if (++got === count) break;
    }
    return performance.now() - t0;
  })();
  for (let i = 0; i < count; i++) await push.send(payload);
  const ms = await receiving;
  push.close();
  pull.close();
  return count / (ms / 1000);
}

async function roundTrips(count) {
  const rep = new zmq.Reply();
  await rep.bind("tcp://127.0.0.1:*");
  const req = new zmq.Request();
  req.connect(rep.lastEndpoint);
  const serving = (async () => {
    for (let i = 0; i < count; i++) {
      const [m] = await rep.receive();
      await rep.send(m);
    }
  })();
  const payload = Buffer.alloc(body, 0x61);
  const rtts = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await req.send(payload);
    await req.receive();
    rtts.push(performance.now() - t);
  }
  await serving;
  req.close();
  rep.close();
  return rtts;
}

await oneWay(Math.min(n, 20_000)); // warm-up
const rate = await oneWay(n);
await roundTrips(Math.min(rounds, 1000)); // warm-up
const rtts = await roundTrips(rounds);
console.log(JSON.stringify({ oneWay: rate, rtts }));
