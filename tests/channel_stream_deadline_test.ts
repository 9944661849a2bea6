// A request() or send() whose body is a stream keeps its timeout while it waits for room
// between chunks: to a peer that never reads, the stream fills the connection and the
// call must give up at its deadline (as a single-message send() does), not when the write
// stall limit finally closes the connection (30 s by default).

import { assert, assertRejects } from "@std/assert";
import { connect, Engine, TofuError } from "../mod.ts";
import { transports } from "./_fixtures.ts";
import { silentListener } from "./_raw_peer.ts";

/** A client channel to a plain socket that answers the Hello and then never reads. */
async function silentPeer(t: (typeof transports)[number], engine: Engine) {
  const { listener, bound, accepted } = silentListener(t);
  const ch = await connect(bound, { engine, timeoutMs: 10_000 });
  const conn = await accepted;
  return {
    ch,
    [Symbol.asyncDispose]: async () => {
      await ch.close();
      conn.close();
      listener.close();
    },
  };
}

async function* endless(): AsyncGenerator<Uint8Array> {
  const chunk = new Uint8Array(60_000);
  for (let i = 0; i < 100_000; i++) yield chunk;
}

for (const t of transports) {
  for (const call of ["request", "send"] as const) {
    Deno.test(`${t.name}: ${call}() of a stream to a peer that never reads gives up at its deadline`, async () => {
      await using engine = new Engine({ maxQueuedBytes: 1 << 20 });
      await using peer = await silentPeer(t, engine);
      const started = performance.now();
      const err = await assertRejects(
        () =>
          call === "request"
            ? peer.ch.request(endless(), { timeoutMs: 300 })
            : peer.ch.send(endless(), { timeoutMs: 300 }),
        TofuError,
      );
      const took = performance.now() - started;
      assert(err.message.includes("no answer within 300 ms"), err.message);
      // Before the fix it waited for room past its deadline, until the write stall limit.
      assert(took < 10_000, `gave up after ${took.toFixed(0)} ms`);
    });
  }
}
