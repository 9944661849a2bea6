// Reading a stream is bounded like a request: `chunks(first, { timeoutMs, signal })`. Before,
// a peer that sent the first chunk of an answer and then nothing more (alive, connected)
// kept the reader waiting for good.

import { assertEquals, assertRejects } from "@std/assert";
import { deadline } from "@std/async/deadline";
import { delay } from "@std/async/delay";
import { connect, Engine, serve, Status, TofuError } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";
import { transports } from "./_fixtures.ts";

function address(t: { name: string }): string {
  return t.name === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`;
}

/** A server whose "stall" answer is a stream that stops after its first chunk until `release()`. */
async function stallingServer(t: { name: string }, engine: Engine) {
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  const server = await serve(address(t), (req) => {
    if (req.body.text() !== "stall") return "plain";
    return (async function* () {
      // A stream goes out one chunk behind (the last one is marked when it is known to be
      // the last): "first" leaves when "second" is made, and "second" not before "last".
      yield "first";
      yield "second";
      await released;
      yield "last";
    })();
  }, { engine });
  return { server, release };
}

for (const t of transports) {
  Deno.test(`${t.name}: chunks() gives up after timeoutMs when the stream stalls`, async () => {
    await using engine = new Engine();
    const { server, release } = await stallingServer(t, engine);
    await using _server = server;
    await using ch = await connect(server.address, { engine });
    const pooled = engine.poolSize;
    const first = await ch.request("stall", { timeoutMs: 5000 });
    const seen: string[] = [];
    const reading = (async () => {
      for await (using c of ch.chunks(first, { timeoutMs: 200 })) seen.push(c.body.text());
    })();
    // Before: the option did not exist and the loop waited for good (the bound here failed).
    const err = await assertRejects(() => deadline(reading, 5000), TofuError);
    assertEquals(err.status, Status.communicationFailed);
    assertEquals(err.message, "Cannot read stream: no answer within 200 ms");
    assertEquals(seen, ["first"]);
    // The rest of the stream comes later and is dropped; the channel works on.
    release();
    const plain = await ch.request("plain", { timeoutMs: 5000 });
    assertEquals(plain.body.text(), "plain");
    engine.put(plain);
    // Every message goes back to the pool, the dropped chunks too.
    const start = performance.now();
    while (engine.poolSize !== pooled && performance.now() - start < 5000) await delay(10);
    assertEquals(engine.poolSize, pooled);
  });

  Deno.test(`${t.name}: chunks() stops at once when its signal aborts`, async () => {
    await using engine = new Engine();
    const { server, release } = await stallingServer(t, engine);
    await using _server = server;
    await using ch = await connect(server.address, { engine });
    const first = await ch.request("stall", { timeoutMs: 5000 });
    const stop = new AbortController();
    const reading = (async () => {
      for await (using c of ch.chunks(first, { signal: stop.signal })) {
        if (c.body.text() === "first") setTimeout(() => stop.abort(new Error("enough")), 50);
      }
    })();
    const err = await assertRejects(() => deadline(reading, 5000), TofuError);
    assertEquals(err.status, Status.communicationFailed);
    assertEquals(err.message, "Cannot read stream: aborted");
    assertEquals((err.cause as Error).message, "enough");
    release();
    using plain = await ch.request("plain", { timeoutMs: 5000 });
    assertEquals(plain.body.text(), "plain");
  });

  Deno.test(`${t.name}: a stream that keeps coming is read whole within its timeout`, async () => {
    await using engine = new Engine();
    const { server, release } = await stallingServer(t, engine);
    await using _server = server;
    await using ch = await connect(server.address, { engine });
    release();
    const first = await ch.request("stall", { timeoutMs: 5000 });
    const seen: string[] = [];
    for await (using c of ch.chunks(first, { timeoutMs: 5000 })) seen.push(c.body.text());
    assertEquals(seen, ["first", "second", "last"]);
  });
}

Deno.test("chunks() refuses a bad timeoutMs", async () => {
  await using engine = new Engine();
  await using server = await serve("tcp|127.0.0.1|0", () => ["a", "b"], { engine });
  await using ch = await connect(server.address, { engine });
  const first = await ch.request("x", { timeoutMs: 5000 });
  const err = await assertRejects(
    () => ch.chunks(first, { timeoutMs: -1 }).next(),
    RangeError,
  );
  assertEquals(err.message, "Cannot read stream: timeoutMs -1 is not a number >= 0");
  // The stream is still there to read.
  const parts: string[] = [];
  for await (using c of ch.chunks(first)) parts.push(c.body.text());
  assertEquals(parts, ["a", "b"]);
});
