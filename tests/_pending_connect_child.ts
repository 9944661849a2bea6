// Prompt shutdown with connects pending, run as a child by tests/resilience_test.ts (a
// connect that hangs leaves an op the test sanitizer would flag, so it runs here).
//
// A raw listener that never accepts has its backlog filled, so further connects to it
// hang (the kernel drops their SYNs). Against it this child measures engine.destroy(),
// engine.close(), and an abort of a connecting channel, and prints one JSON line.

// deno-lint-ignore-file no-console

import { Engine, OpCode, statusName, TcpClientAddress } from "../mod.ts";

const blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const port = (blocker.addr as Deno.NetAddr).port;
const fillers: Deno.Conn[] = [];
let hanging = 0;
for (let i = 0; i < 2000 && hanging === 0; i++) {
  // Connects that do not complete within 50 ms are hanging: the backlog is full.
  const c = Deno.connect({ hostname: "127.0.0.1", port });
  const done = await Promise.race([c, new Promise<null>((r) => setTimeout(() => r(null), 50))]);
  if (done === null) {
    hanging++;
    c.then((conn) => fillers.push(conn), () => {});
  } else fillers.push(done);
}

function connecting(engine: Engine, followers: number) {
  const group = engine.create();
  const hello = new TcpClientAddress("127.0.0.1", port).format(engine.get("always")!);
  const { channelNumber } = group.post(hello);
  for (let i = 0; i < followers; i++) {
    const m = engine.get("always")!;
    m.bhdr.channelNumber = channelNumber;
    m.bhdr.opCode = OpCode.Request;
    group.post(m);
  }
  return { group, channelNumber };
}

const time = async (f: () => Promise<unknown>) => {
  const t0 = performance.now();
  await f();
  return Math.round(performance.now() - t0);
};

// destroy() with three connects pending.
const e1 = new Engine();
const g1 = [1, 2, 3].map(() => connecting(e1, 2).group);
await new Promise((r) => setTimeout(r, 300));
const destroyMs = await time(() => Promise.all(g1.map((g) => e1.destroy(g))));

// close() with three connects pending in two groups.
const e2 = new Engine();
connecting(e2, 2);
connecting(e2, 0);
connecting(e2, 5);
await new Promise((r) => setTimeout(r, 300));
const closeMs = await time(() => e2.close());

// Abort while connecting: the reports come at once, in order.
const e3 = new Engine();
const { group, channelNumber } = connecting(e3, 2);
await new Promise((r) => setTimeout(r, 300));
const bye = e3.get("always")!;
bye.bhdr.channelNumber = channelNumber;
bye.bhdr.opCode = OpCode.ByeSignal;
bye.bhdr.internalA = 1;
const reports: string[] = [];
const abortMs = await time(async () => {
  group.post(bye);
  for (;;) {
    const m = await group.waitReceive(20_000);
    if (m === null) break;
    reports.push(`${m.bhdr.opCode}:${statusName(m.bhdr.status)}`);
    const last = m.bhdr.opCode === OpCode.Signal;
    e3.put(m);
    if (last) break;
  }
});

// A hanging connect ends with the handshake timeout: the HelloRequest and its followers
// come back with connect_failed, then channel_closed.
const e4 = new Engine({ handshakeTimeoutMs: 300 });
const timedOut = connecting(e4, 2).group;
const timeoutReports: string[] = [];
const handshakeMs = await time(async () => {
  for (;;) {
    const m = await timedOut.waitReceive(20_000);
    if (m === null) break;
    timeoutReports.push(`${m.bhdr.opCode}:${statusName(m.bhdr.status)}`);
    const last = m.bhdr.opCode === OpCode.Signal;
    e4.put(m);
    if (last) break;
  }
});

// The backlog drains: the engine's late connects (8 above) complete and must be closed at
// once, without a byte written.
const accepted: { port: number; got: Promise<number | null | "open"> }[] = [];
const expected = fillers.length + hanging + 8;
const draining = (async () => {
  while (accepted.length < expected) {
    const conn = await blocker.accept();
    accepted.push({
      port: (conn.remoteAddr as Deno.NetAddr).port,
      got: Promise.race([
        conn.read(new Uint8Array(65536)).then((n) => n, () => null),
        new Promise<"open">((r) => setTimeout(() => r("open"), 3000)),
      ]).finally(() => conn.close()),
    });
  }
})();
await Promise.race([draining, new Promise((r) => setTimeout(r, 10_000))]);
const ours = new Set(fillers.map((c) => (c.localAddr as Deno.NetAddr).port));
const lateClosed = await Promise.all(
  accepted.filter((a) => !ours.has(a.port)).map(async (a) => (await a.got) === null),
);

console.log(
  JSON.stringify({
    hanging,
    destroyMs,
    closeMs,
    abortMs,
    reports,
    handshakeMs,
    timeoutReports,
    lateClosed,
  }),
);
Deno.exit(0);
