// A stream's next chunk can be behind other messages of its connection: a second streamed
// answer, or messages the peer sent between the chunks. Unread, they count against the
// channel's read share (maxChannelHeldMsgs); once they filled it the engine stopped reading,
// and a chunks() reader waiting for the chunk behind them waited for good. Found by the
// hostile-tester helper (a client reading two streamed answers one after the other stalled
// at 1,030 chunks; a listen() application reading a stream inline stalled when the peer
// sent 1,500 Signals between two chunks). Now, while a chunks() reader waits, the unread
// messages are lent room beyond the share, up to MAX_LENT_MSGS; past that the connection is
// aborted with pool_empty instead of hanging.

import { assert, assertEquals } from "@std/assert";
import { deadline } from "@std/async/deadline";
import { connect, Engine, listen, MAX_LENT_MSGS, serve, Status } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";

function address(t: string): string {
  return t === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`;
}

function* chunks(tag: string, n: number): Generator<string> {
  for (let i = 0; i < n; i++) yield `${tag}${i},`;
}

for (const t of ["tcp", "uds"]) {
  Deno.test(`${t}: two streamed answers read one after the other both arrive whole`, async () => {
    await using engine = new Engine({ maxChannelHeldMsgs: 64 });
    await using server = await serve(address(t), (req) => chunks(req.body.text(), 300));
    await using ch = await connect(server.address, { engine });
    const [a, b] = await Promise.all([
      ch.request("a", { timeoutMs: 10_000 }),
      ch.request("b", { timeoutMs: 10_000 }),
    ]);
    const read = async (first: typeof a) => {
      let n = 0;
      for await (using _c of ch.chunks(first, { timeoutMs: 10_000 })) n++;
      return n;
    };
    // Before: the first stream stalled after ~64 chunks ("no answer within 10000 ms").
    assertEquals(await read(a), 300);
    assertEquals(await read(b), 300);
  });

  Deno.test(`${t}: a stream read inline gets its chunks past 500 Signals sent between them`, async () => {
    await using engine = new Engine({ maxChannelHeldMsgs: 64 });
    await using listener = await listen(address(t), { engine });
    await using client = await connect(listener.address);
    const peer = (await listener[Symbol.asyncIterator]().next()).value!;
    const sending = (async () => {
      await client.send((async function* () {
        // A chunk goes out once the next is known: "head" before the Signals, "mid" after.
        yield "head";
        yield "mid";
        // Between the first and the second chunk: 500 Signals on the same connection.
        for (let i = 0; i < 500; i++) await client.send(`signal ${i}`);
        yield "tail";
      })());
    })();
    const it = peer[Symbol.asyncIterator]();
    const first = (await it.next()).value!;
    const parts: string[] = [];
    for await (using c of peer.chunks(first, { timeoutMs: 10_000 })) parts.push(c.body.text());
    // Before: "Cannot read stream: no answer within 10000 ms" after "head".
    assertEquals(parts, ["head", "mid", "tail"]);
    await sending;
    let signals = 0;
    while (signals < 500) {
      using m = (await deadline(it.next(), 10_000)).value!;
      assertEquals(m.body.text(), `signal ${signals++}`);
    }
  });

  Deno.test(`${t}: past MAX_LENT_MSGS messages ahead of a chunk, the connection ends with pool_empty`, async () => {
    await using engine = new Engine({ maxChannelHeldMsgs: 64 });
    await using listener = await listen(address(t), { engine });
    await using client = await connect(listener.address);
    const peer = (await listener[Symbol.asyncIterator]().next()).value!;
    const flood = MAX_LENT_MSGS + 1000;
    const sending = client.send((async function* () {
      yield "head";
      yield "mid";
      for (let i = 0; i < flood; i++) await client.send("x");
      yield "tail";
    })()).catch(() => "the connection ended");
    const first = (await peer[Symbol.asyncIterator]().next()).value!;
    const err = await (async () => {
      for await (using _c of peer.chunks(first, { timeoutMs: 30_000 })) { /* "head" only */ }
    })().then(() => null, (e: Error) => e);
    // Before: the reader waited until its timeout, and without one for good.
    assert(err !== null && !/no answer within/.test(err.message), err?.message);
    assertEquals(await deadline(peer.closed, 10_000), Status.poolEmpty);
    await sending;
  });
}
