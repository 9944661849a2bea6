// The heavier tests for mutants of src/channel.ts lines 1-700 (see
// tests/mutants_channel_a_test.ts): a bye behind megabytes of queued messages, and the
// bound on the ids of abandoned requests, over real sockets, TCP and Unix sockets alike.

import { assert, assertEquals } from "@std/assert";
import { delay } from "@std/async/delay";
import { type Channel, connect, Engine, listen, type Message, OpCode, statusName } from "../mod.ts";
import { peerTransports, within } from "./_peer_fixtures.ts";
import { nextOf, pair } from "./_peer_pair.ts";

const BODY = "x".repeat(60_000);

/**
 * A client and its accepted peer, where the peer reads no more than two messages ahead of
 * its application: while the test does not read, the client's messages pile up unsent.
 */
async function stalledPair(t: { any(): string }) {
  const peerEngine = new Engine({ maxChannelHeldMsgs: 2 });
  const listener = await listen(t.any(), { engine: peerEngine });
  const client = await connect(listener.address, { timeoutMs: 20_000 });
  const peer = (await listener[Symbol.asyncIterator]().next()).value as Channel;
  // Sends until a send() waits for room: more than 2 MiB then wait unsent in the engine.
  let sent = 0;
  const blocked: Promise<bigint>[] = [];
  for (let i = 0; i < 2000 && blocked.length === 0; i++) {
    const sending = client.send(BODY);
    const done = await Promise.race([sending.then(() => true), delay(300).then(() => false)]);
    if (done) sent++;
    else blocked.push(sending);
  }
  assertEquals(blocked.length, 1, "a send() waited for room");
  blocked[0]!.catch(() => {}); // refused once the channel closes
  return {
    client,
    peer,
    sent,
    /** Reads every message the peer gets until its channel closes. */
    async readAll(): Promise<number> {
      let n = 0;
      for await (using m of peer) {
        assertEquals(m.body.byteLength, BODY.length);
        n++;
      }
      return n;
    },
    async [Symbol.asyncDispose]() {
      await client.close();
      await listener.close();
      await peerEngine.close();
    },
  };
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: Channel: close() says bye after every message posted before it`, async () => {
    await using s = await stalledPair(t);
    const closing = s.client.close();
    const got = await within(s.readAll(), 30_000, "the peer reads to the bye");
    // The send() waiting for room when close() was called went out too, before the bye.
    assertEquals(got, s.sent + 1, "every message sent before close() arrived");
    await within(closing, 20_000, "close()");
    assertEquals(statusName(await s.client.closed), "success");
  });

  Deno.test(`${t.name}: Channel: abort() drops the messages still unsent`, async () => {
    await using s = await stalledPair(t);
    s.client.abort();
    assertEquals(statusName(await s.client.closed), "channel_closed");
    const got = await within(s.readAll(), 30_000, "the peer reads to the end");
    assert(got < s.sent, `the peer got ${got} of ${s.sent}: the unsent ones were dropped`);
  });

  Deno.test(`${t.name}: Channel: the ids of 65,536 abandoned requests are remembered, no more`, async () => {
    // Each queued frame is charged 512 bytes and more: 65,537 requests need 34 MB of room.
    await using engine = new Engine({ maxQueuedBytes: 64 << 20 });
    await using p = await pair(t, engine, { timeoutMs: 20_000 });
    const N = 65_537;
    // A timeout of 0 ms gives up on the next turn of the event loop, after the post.
    const asking: Promise<Message>[] = [];
    for (let i = 0; i < N; i++) asking.push(p.client.request("", { timeoutMs: 0 }));
    const settled = await Promise.allSettled(asking);
    const timedOut = settled.filter((s) =>
      s.status === "rejected" &&
      s.reason.message === "Cannot complete request: no answer within 0 ms"
    );
    assertEquals(timedOut.length, N, "every request was posted, then given up on");
    const ids: bigint[] = [];
    let received = 0;
    for await (using m of p.peer) {
      assertEquals(m.bhdr.opCode, OpCode.Request);
      if (ids.length < 2) ids.push(m.bhdr.messageId);
      if (++received === N) break;
    }
    // The oldest id was forgotten: its late answer is an ordinary incoming message. The
    // second one is still remembered: its answer is dropped.
    await p.peer.respond(ids[0]!, "late 1");
    await p.peer.respond(ids[1]!, "late 2");
    await p.peer.send("end");
    const got: string[] = [];
    for (;;) {
      using m = await nextOf(p.client);
      got.push(m.body.text());
      if (m.body.text() === "end") break;
    }
    assertEquals(got, ["late 1", "end"]);
  });
}
