/**
 * Reproduction of issue #8 finding 4: an application posts 16-byte Signals to a peer that
 * never reads, until `post` refuses them, and keeps trying for a few seconds. Prints how
 * many were accepted and how much RSS grew.
 *
 *   deno run -A bench/signal_flood.ts [maxQueuedBytes in MiB, default 16] [seconds, default 5]
 *
 * @module
 */

// deno-lint-ignore-file no-console

import { Engine, OpCode, TcpClientAddress, TofuError } from "../mod.ts";

const capMiB = Number(Deno.args[0] ?? 16);
const seconds = Number(Deno.args[1] ?? 5);

// A peer that accepts, answers nothing and never reads.
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const port = (listener.addr as Deno.NetAddr).port;
const accepted = listener.accept();

const engine = new Engine({ maxQueuedBytes: capMiB * 2 ** 20 });
const group = engine.create();
const { channelNumber } = group.post(
  new TcpClientAddress("127.0.0.1", port).format(engine.get("always")!),
);
const peer = await accepted;
const rss0 = Deno.memoryUsage().rss;
let posted = 0;
let refused = 0;
const until = Date.now() + seconds * 1000;
while (Date.now() < until) {
  for (;;) {
    const m = engine.get("always")!;
    m.bhdr.channelNumber = channelNumber;
    m.bhdr.opCode = OpCode.Signal;
    try {
      group.post(m);
      posted++;
    } catch (err) {
      if (!(err instanceof TofuError)) throw err;
      refused++;
      engine.put(m);
      break;
    }
  }
  await new Promise((r) => setTimeout(r, 1));
}
const rss1 = Deno.memoryUsage().rss;
console.log(JSON.stringify({
  maxQueuedMiB: capMiB,
  seconds,
  posted,
  refused,
  rssGrowthMiB: Math.round((rss1 - rss0) / 2 ** 20),
}));
peer.close();
listener.close();
await engine.close();
