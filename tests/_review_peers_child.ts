// deno-lint-ignore-file no-console
// Run by tests/review_peers_test.ts with --v8-flags=--expose-gc: a re-dialling client channel
// whose connection drops while answers it stopped reading are still streaming must not keep
// those streams. Each round: STREAMS request()s whose answers are streams the server never
// ends; the client reads the first chunk of each and stops (the rest is to be discarded);
// then the server drops the connection and the channel re-dials. After WARM_UP rounds it
// collects garbage and reads the heap, again after MEASURED more; prints the growth per
// abandoned stream in bytes (JSON: {"streams", "bytesPerStream"}).
// Deno.args: the transport (`tcp` or `uds`).

const { connect, Engine, serve } = await import("../mod.ts");
const { transports } = await import("./_fixtures.ts");

const WARM_UP = 200;
const MEASURED = 200;
const STREAMS = 20;
const t = transports.find((x) => x.name === Deno.args[0])!;
const gc = (globalThis as unknown as { gc(): void }).gc;

async function heapUsed(): Promise<number> {
  await new Promise<void>((r) => setTimeout(r, 0));
  gc();
  gc();
  return Deno.memoryUsage().heapUsed;
}

const serverEngine = new Engine();
const clientEngine = new Engine();
const server = await serve(t.listenAt().toString(), (req, ch) => {
  if (req.body.text() === "drop") {
    ch.abort();
    return;
  }
  // "a" goes out (with more) once "b" is taken; nothing more until the connection is gone.
  return (async function* () {
    yield "a";
    yield "b";
    await ch.closed;
    yield "c";
  })();
}, { engine: serverEngine });
const ch = await connect(server.address, {
  engine: clientEngine,
  reconnect: { initialDelayMs: 1, maxDelayMs: 1 },
});

async function round(): Promise<void> {
  const answers = await Promise.all(
    Array.from({ length: STREAMS }, () => ch.request("s", { timeoutMs: 30_000 })),
  );
  for (const m of answers) {
    if (!m.hasMore()) throw new Error("Cannot run the child: an answer is not a stream");
    for await (const _ of ch.chunks(m)) break; // the first chunk only
  }
  await ch.send("drop");
  while (ch.isOpen) await new Promise<void>((r) => setTimeout(r, 1));
}

for (let i = 0; i < WARM_UP; i++) await round();
const before = await heapUsed();
for (let i = 0; i < MEASURED; i++) await round();
const after = await heapUsed();
await ch.close();
await server.close();
await clientEngine.close();
await serverEngine.close();
console.log(
  JSON.stringify({
    streams: MEASURED * STREAMS,
    bytesPerStream: (after - before) / (MEASURED * STREAMS),
  }),
);
