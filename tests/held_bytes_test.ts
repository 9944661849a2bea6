// What received messages the application holds is bounded in bytes, per channel
// (maxChannelHeldBytes) and engine-wide (maxEngineHeldBytes), not only in messages: a peer
// sending 60 KB frames to a server that holds them made its channel hold up to 1,024 of
// them (60 MiB; 128 MiB with the largest frames), and nothing bounded all channels
// together. Real sockets, TCP and UDS; raw peers write the frames.

import { assert, assertEquals, assertMatch } from "@std/assert";
import { delay } from "@std/async/delay";
import {
  connect as peerConnect,
  Engine,
  listen as peerListen,
  type Message,
  OpCode,
  serve,
  Status,
} from "../mod.ts";
import { encodeFrame } from "../src/codec.ts";
import { listen, rawConnect, recv, transports, until, writeAll } from "./_fixtures.ts";

const BODY = 60_000;
// What a held message is charged: its frame plus the fixed 512 bytes a queued one is.
const COST = 16 + BODY + 512;

/** A HelloRequest, then `n` Signals of `body` bytes (ids 2 to n + 1). */
function flood(n: number, body: number): Uint8Array {
  const engine = new Engine({ initialPoolMsgs: 1 });
  const m = engine.get("always");
  m.bhdr.opCode = OpCode.HelloRequest;
  m.bhdr.messageId = 1n;
  const parts = [encodeFrame(m)];
  m.bhdr.opCode = OpCode.Signal;
  m.body.set(new Uint8Array(body).fill(0x61));
  for (let i = 0; i < n; i++) {
    m.bhdr.messageId = BigInt(i + 2);
    parts.push(encodeFrame(m));
  }
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * Takes what `group` delivers until it has been quiet for 300 ms: answers HelloRequests
 * (that message goes back), keeps the Signals and the pool_empty reports apart.
 */
async function takeAll(group: ReturnType<Engine["create"]>, held: Message[], reports: Message[]) {
  for (;;) {
    const m = await group.waitReceive(300);
    if (m === null) return;
    if (m.bhdr.opCode === OpCode.HelloRequest) {
      m.bhdr.opCode = OpCode.HelloResponse;
      group.post(m);
    } else if (m.isReport()) reports.push(m);
    else held.push(m);
  }
}

/** Puts `held` back, then takes (and puts back) messages until `total` came in all. */
async function putBackUntil(
  engine: Engine,
  group: ReturnType<Engine["create"]>,
  held: Message[],
  total: number,
): Promise<void> {
  let got = held.length;
  for (const m of held.splice(0)) engine.put(m);
  while (got < total) {
    const m = await recv(group, 10_000);
    if (!m.isReport()) got++;
    engine.put(m);
  }
}

for (const t of transports) {
  Deno.test(`a channel stops reading at maxChannelHeldBytes of messages not put back, and resumes (${t.name})`, async () => {
    await using engine = new Engine({ maxChannelHeldBytes: 1 << 20 });
    const server = await listen(engine, t);
    const conn = await rawConnect(server.bound);
    const writing = writeAll(conn, flood(100, BODY));
    const held: Message[] = [];
    const reports: Message[] = [];
    await takeAll(server.group, held, reports);
    // It reads while it holds less than the limit: 17 messages are 1,028,976 bytes, the
    // 18th takes it past 1 MiB.
    assertEquals(held.length, Math.ceil((1 << 20) / COST));
    assertEquals(reports.length, 1);
    const r = reports[0]!;
    assertEquals(r.bhdr.status, Status.poolEmpty);
    assertMatch(
      r.error!.message,
      /^Cannot read channel \d+: it holds 1089504 bytes of messages not yet put back \(maxChannelHeldBytes 1048576\); put messages back to resume$/,
    );
    engine.put(r);
    // Every message put back lets it read on: all 100 arrive.
    await putBackUntil(engine, server.group, held, 100);
    await writing;
    conn.close();
  });

  Deno.test(`the engine's channels together stop at maxEngineHeldBytes, but a channel holding little reads on (${t.name})`, async () => {
    await using engine = new Engine({
      maxEngineHeldBytes: 1 << 20,
      maxChannelHeldBytes: Infinity,
      maxChannelHeldMsgs: Infinity,
    });
    const server = await listen(engine, t);
    const held: Message[] = [];
    const reports: Message[] = [];
    const floods = await Promise.all([0, 1].map(() => rawConnect(server.bound)));
    const writing = floods.map((c) => writeAll(c, flood(100, BODY)));
    await takeAll(server.group, held, reports);
    // 1 MiB for all, and then each channel at most its allowance (256 KiB) plus one frame.
    assert(held.length >= Math.ceil((1 << 20) / COST), `${held.length} held`);
    assert(held.length <= Math.ceil((1 << 20) / COST) + 2 * 5, `${held.length} held`);
    assertEquals(reports.length, 2);
    for (const r of reports) {
      assertEquals(r.bhdr.status, Status.poolEmpty);
      assertMatch(
        r.error!.message,
        /^Cannot read channel \d+: the engine's channels hold \d+ bytes of messages not yet put back \(maxEngineHeldBytes 1048576\); put messages back to resume$/,
      );
      engine.put(r);
    }
    // A third peer with small Signals holds less than its allowance: all of them arrive
    // while the engine is past its budget.
    const small = await rawConnect(server.bound);
    await writeAll(small, flood(200, 16));
    const smallHeld: Message[] = [];
    await takeAll(server.group, smallHeld, reports);
    assertEquals(smallHeld.length, 200);
    assertEquals(reports.length, 2);
    for (const m of smallHeld) engine.put(m);
    // Putting the large ones back resumes both floods: all 200 arrive.
    await putBackUntil(engine, server.group, held, 200);
    await Promise.all(writing);
    for (const c of [...floods, small]) c.close();
  });
}

Deno.test("a serve() peer whose handlers hold its messages is bounded in bytes by default", async () => {
  let calls = 0;
  let open!: () => void;
  const gate = new Promise<void>((r) => open = r);
  await using server = await serve("tcp|127.0.0.1|0", async () => {
    calls++;
    await gate;
  }, { maxInFlight: 100_000 });
  await using ch = await peerConnect(server.address);
  const body = new Uint8Array(BODY).fill(0x62);
  const sending = (async () => {
    for (let i = 0; i < 600; i++) await ch.send(body);
  })();
  // The default share is 16 MiB: 277 messages are 16,766,256 bytes, the 278th goes past.
  const limit = Math.ceil((16 << 20) / COST);
  await until(() => calls >= limit, `${limit} handlers started`);
  await delay(300); // nothing more is read
  assertEquals(calls, limit);
  open();
  await sending;
  await until(() => calls === 600, "all 600 handled");
});

Deno.test("a chunks() reader lends room to at most maxChannelHeldBytes of messages ahead of its chunk", async (t) => {
  // While a chunks() reader waits, messages queued ahead of its next chunk are lent room
  // beyond the share; in messages alone (MAX_LENT_MSGS, 4,096) that was up to 512 MiB of
  // the largest frames.
  for (const [name, signals, ends] of [["past it", 40, true], ["within it", 25, false]] as const) {
    await t.step(name, async () => {
      await using engine = new Engine({ maxChannelHeldBytes: 1 << 20 });
      await using listener = await peerListen("tcp|127.0.0.1|0", { engine });
      await using client = await peerConnect(listener.address);
      const peer = (await listener[Symbol.asyncIterator]().next()).value!;
      const body = new Uint8Array(BODY).fill(0x63);
      const sending = client.send((async function* () {
        yield "head";
        yield "mid";
        // Between "head" and "mid": 60 KB Signals on the same connection.
        for (let i = 0; i < signals; i++) await client.send(body);
        yield "tail";
      })()).catch(() => "the connection ended");
      const it = peer[Symbol.asyncIterator]();
      const first = (await it.next()).value!;
      const parts: string[] = [];
      const err = await (async () => {
        for await (using c of peer.chunks(first, { timeoutMs: 10_000 })) {
          parts.push(c.body.text());
        }
      })().then(() => null, (e: Error) => e);
      if (ends) {
        // 1 MiB held, then 1 MiB lent: the 18th Signal lent goes past it.
        assertEquals(parts, ["head"]);
        assertEquals(await peer.closed, Status.poolEmpty);
        assert(err !== null);
        const closed = await it.next().then(() => null, (e: Error) => e);
        assert(closed === null || /channel/.test(closed.message), closed?.message);
      } else {
        assertEquals(err, null);
        assertEquals(parts, ["head", "mid", "tail"]);
        for (let i = 0; i < signals; i++) {
          using m = (await it.next()).value!;
          assertEquals(m.body.byteLength, BODY);
        }
      }
      await sending;
    });
  }
});

Deno.test("messages lent room and then taken by handlers count again: serve() stays within its bytes", async () => {
  // While a chunks() reader waits, messages queued ahead of its chunk are lent room; taken
  // by serve() for other handlers, they were never charged again, and those handlers held
  // 46 messages (2.6 MiB) with both limits at 1 MiB (found by the review helper).
  await using engine = new Engine({ maxChannelHeldBytes: 1 << 20, maxEngineHeldBytes: 1 << 20 });
  let holding = 0;
  let open!: () => void;
  const gate = new Promise<void>((r) => open = r);
  await using server = await serve("tcp|127.0.0.1|0", async (req, ch) => {
    if (req.hasMore()) {
      for await (using _c of ch.chunks(req)) { /* waits for the chunk after "mid" */ }
      return;
    }
    holding++;
    await gate;
  }, { engine, maxInFlight: 100_000 });
  await using client = await peerConnect(server.address);
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  const stream = client.send((async function* () {
    yield "head";
    yield "mid";
    await released;
    yield "tail";
  })());
  await delay(100);
  const body = new Uint8Array(BODY);
  for (let i = 0; i < 100; i++) {
    if (!await client.send(body, { timeoutMs: 500 }).then(() => true, () => false)) break;
  }
  await delay(300);
  // 1 MiB held: 18 of them (the 18th takes it past).
  assertEquals(holding, Math.ceil((1 << 20) / COST));
  open();
  release();
  await stream;
});
