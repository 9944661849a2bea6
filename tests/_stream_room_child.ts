// deno-lint-ignore-file no-console
// Run with --v8-flags=--expose-gc by stream_room_waiters_test.ts: N stream sends on a channel
// to a peer that stops reading; each gives up (timeoutMs) while waiting for room before its
// next chunk (channel.ts, the ready() in #send's chunk loop). Then the peer reads everything.
// Prints the heap the given-up sends still hold while the channel stays full: the heap after
// GC with the channel full, minus the heap after GC once the peer has drained it (a wait
// left behind without the deadline's signal is only let go when room comes).

const { connect, Engine, OpCode } = await import("../mod.ts");
const { transports, writeAll } = await import("./_fixtures.ts");
const { rawListen } = await import("./_raw_peer.ts");
const { frame } = await import("./_attack.ts");

const N = Number(Deno.args[0] ?? 1000);
const gc = (globalThis as unknown as { gc(): void }).gc;
async function heap(): Promise<number> {
  await new Promise((r) => setTimeout(r, 0));
  gc();
  gc();
  return Deno.memoryUsage().heapUsed;
}

const t = transports.find((x) => x.name === "tcp")!;
const { listener, bound } = rawListen(t);
const accepted = (async () => {
  const conn = await listener.accept();
  await conn.read(new Uint8Array(4096)); // the HelloRequest; nothing more is read for now
  await writeAll(conn, frame(OpCode.HelloResponse));
  return conn;
})();
const engine = new Engine({ maxQueuedBytes: 1 << 20 });
const ch = await connect(bound, { engine });
const conn = await accepted;

const chunk = new Uint8Array(1024);
async function* endless() {
  for (;;) yield chunk;
}
const calls = Array.from(
  { length: N },
  () => ch.send(endless(), { timeoutMs: 500 }).then(() => "sent", (e: Error) => e.message),
);
const outcomes = await Promise.all(calls);
const full = await heap();
// The peer reads everything now, until nothing more comes for 300 ms.
const buf = new Uint8Array(1 << 16);
for (;;) {
  const n = await Promise.race([
    conn.read(buf),
    new Promise<"idle">((r) => setTimeout(() => r("idle"), 300)),
  ]);
  if (n === "idle" || n === null) break;
}
const drained = await heap();
const timedOut = outcomes.filter((o) => o.includes("no answer within")).length;
console.log(JSON.stringify({ calls: N, timedOut, heldPerCall: (full - drained) / N }));
conn.close();
listener.close();
ch.abort();
await ch.closed;
await engine.close();
