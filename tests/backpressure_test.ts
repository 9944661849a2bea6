// Sender-side backpressure (ChannelGroup.ready), the receive window growing to
// maxPoolMsgs, and the group's async iterator and timed waits after the hot-path rework
// (issue #10). Real sockets, TCP and UDS.

import { assert, assertEquals, assertInstanceOf, assertRejects } from "@std/assert";
import {
  connect as peerConnect,
  Engine,
  Message,
  OpCode,
  Status,
  statusName,
  TofuError,
} from "../mod.ts";
import { SendLane } from "../src/_send_lane.ts";
import { validateForPost } from "../src/_validate.ts";
import { connect, expect, listen, make, makeAbort, recv, transports } from "./_fixtures.ts";

// These tests stuff channels far past the default maxQueuedBytes (4 MiB) on purpose.
const BIG_QUEUE = 64 * 1024 * 1024;

const BIG = 60_000;

/** Whether `p` has settled within `ms` (it keeps running either way). */
async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  p.then(() => settled = true, () => settled = true);
  await new Promise((r) => setTimeout(r, ms));
  return settled;
}

async function rejectsWith(p: Promise<unknown>, status: number): Promise<TofuError> {
  const err = await assertRejects(() => p);
  assertInstanceOf(err, TofuError);
  assertEquals(statusName(err.status), statusName(status), err.message);
  assert(/^Cannot [^:]+: .*[^.]$/.test(err.message), err.message);
  return err;
}

/**
 * A client channel to a raw socket that reads nothing, with `count` 60 KB messages posted
 * on it: far more than loopback socket buffers take, so most stay queued.
 */
async function stuffedChannel(engine: Engine, t: (typeof transports)[number], count: number) {
  const server = await listen(engine, t);
  const group = engine.create();
  // Accepting through the engine would read; a raw peer on the listener's address
  // cannot be had after the fact, so the server's engine is left to accept and its
  // group is simply never read: its pool (16 messages) runs dry and it stops reading.
  const { channelNumber: ch } = group.post(t.connectTo(server.bound).format(engine.get("always")));
  const body = new Uint8Array(BIG).fill(0x62);
  for (let i = 0; i < count; i++) {
    const m = make(engine, ch, OpCode.Signal);
    m.body.set(body);
    group.post(m);
  }
  return { server, group, ch };
}

for (const t of transports) {
  Deno.test(`ChannelGroup.ready() waits while bytes are queued and resolves once they drain (${t.name})`, async () => {
    await using engine = new Engine({
      maxQueuedBytes: BIG_QUEUE,
      initialPoolMsgs: 4,
      maxPoolMsgs: 4,
    });
    // A raw peer that reads nothing until told to.
    const server = await listen(engine, t);
    const group = engine.create();
    const { channelNumber: ch } = group.post(
      t.connectTo(server.bound).format(engine.get("always")),
    );
    const hello = expect(await recv(server.group), OpCode.HelloRequest, Status.success);
    const serverCh = hello.bhdr.channelNumber;
    hello.bhdr.opCode = OpCode.HelloResponse;
    server.group.post(hello);
    expect(await recv(group), OpCode.HelloResponse, Status.success);
    // A channel with nothing queued has room at once.
    await group.ready(ch);
    const body = new Uint8Array(BIG).fill(0x62);
    const count = 400; // 24 MB: the server holds 4 pool messages and stops reading.
    for (let i = 0; i < count; i++) {
      const m = make(engine, ch, OpCode.Signal);
      m.body.set(body);
      m.bhdr.messageId = BigInt(i + 1);
      group.post(m);
    }
    const room = group.ready(ch, { lowWaterBytes: 64 * 1024 });
    assert(!await settledWithin(room, 300), "ready() resolved while megabytes were queued");
    // The server reads everything now: the queue drains and ready() resolves.
    let got = 0;
    let last = 0n;
    while (got < count) {
      const m = await recv(server.group, 20_000);
      if (m.isFromEngine()) {
        expect(m, OpCode.Signal, Status.poolEmpty, "only pool_empty notes");
      } else {
        assertEquals(m.bhdr.channelNumber, serverCh);
        assertEquals(m.bhdr.messageId, last + 1n, "in post order");
        last = m.bhdr.messageId;
        got++;
      }
      engine.put(m);
    }
    await room;
    // Below the mark again, it resolves at once.
    await group.ready(ch, { lowWaterBytes: 0 });
  });

  Deno.test(`ChannelGroup.ready() rejects with channel_closed when the channel closes (${t.name})`, async () => {
    await using engine = new Engine({
      maxQueuedBytes: BIG_QUEUE,
      initialPoolMsgs: 4,
      maxPoolMsgs: 4,
    });
    const { server, group, ch } = await stuffedChannel(engine, t, 800);
    const room = group.ready(ch, { lowWaterBytes: 1024 });
    const room2 = group.ready(ch); // the default mark (32 MiB, half the budget) is below 48 MB
    assert(!await settledWithin(room, 200), "ready() resolved while megabytes were queued");
    group.post(makeAbort(engine, ch));
    const err = await rejectsWith(room, Status.channelClosed);
    assert(err.message.startsWith(`Cannot wait for room on channel ${ch}: the channel closed`));
    await rejectsWith(room2, Status.channelClosed);
    // The channel is gone: a later wait is refused.
    await rejectsWith(group.ready(ch), Status.invalidChannelNumber);
    await engine.destroy(server.group);
  });

  Deno.test(`ChannelGroup.ready() rejects when the peer disconnects mid-wait (${t.name})`, async () => {
    await using engine = new Engine({ maxQueuedBytes: BIG_QUEUE });
    // A raw listener: the peer accepts, never reads, then goes away.
    const l = t.name === "tcp"
      ? Deno.listen({ hostname: "127.0.0.1", port: 0 })
      : Deno.listen({ transport: "unix", path: (t.listenAt() as { path: string }).path });
    const bound = t.name === "tcp"
      ? `tcp|127.0.0.1|${(l.addr as Deno.NetAddr).port}`
      : `uds|${(l.addr as Deno.UnixAddr).path}`;
    const group = engine.create();
    const { channelNumber: ch } = group.post(t.connectTo(bound).format(engine.get("always")));
    const peer = await l.accept();
    const body = new Uint8Array(BIG).fill(0x63);
    for (let i = 0; i < 800; i++) {
      const m = make(engine, ch, OpCode.Signal);
      m.body.set(body);
      group.post(m);
    }
    const room = group.ready(ch);
    assert(!await settledWithin(room, 200), "ready() resolved while megabytes were queued");
    peer.close();
    l.close();
    await rejectsWith(room, Status.channelClosed);
    // Everything unsent comes back, then the final report.
    let back = 0;
    for (;;) {
      const m = await recv(group, 20_000);
      assert(m.isFromEngine());
      if (m.bhdr.status === Status.channelClosed && m.body.byteLength === 0) break;
      assertEquals(m.body.byteLength, BIG, `handed back: ${statusName(m.bhdr.status)}`);
      back++;
      engine.put(m);
    }
    assert(back > 0, "unsent messages were handed back");
  });

  Deno.test(`ChannelGroup.ready() aborts with signal.reason (${t.name})`, async () => {
    await using engine = new Engine({
      maxQueuedBytes: BIG_QUEUE,
      initialPoolMsgs: 4,
      maxPoolMsgs: 4,
    });
    const { server, group, ch } = await stuffedChannel(engine, t, 800);
    const ac = new AbortController();
    const room = group.ready(ch, { signal: ac.signal });
    assert(!await settledWithin(room, 100));
    const reason = new Error("enough");
    ac.abort(reason);
    assertEquals(await room.catch((e) => e), reason);
    // An already aborted signal rejects at once.
    assertEquals(await group.ready(ch, { signal: ac.signal }).catch((e) => e), reason);
    await engine.destroy(group);
    await engine.destroy(server.group);
  });

  Deno.test(`ChannelGroup.ready() refuses bad channels and arguments (${t.name})`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const link = await connect(engine, t, server);
    const other = engine.create();
    await rejectsWith(link.client.ready(999), Status.invalidChannelNumber);
    await rejectsWith(other.ready(link.clientCh), Status.invelidMchnGroup);
    await rejectsWith(server.group.ready(server.channel), Status.notAllowed);
    await assertRejects(() => link.client.ready(1.5), TypeError);
    await assertRejects(() => link.client.ready(link.clientCh, { lowWaterBytes: -1 }), RangeError);
    await assertRejects(
      () => link.client.ready(link.clientCh, { lowWaterBytes: NaN }),
      RangeError,
    );
    // A posted Bye closes the sending side.
    link.client.post(make(engine, link.clientCh, OpCode.ByeRequest));
    await rejectsWith(link.client.ready(link.clientCh), Status.channelClosed);
    await engine.destroy(other);
    await rejectsWith(other.ready(link.clientCh), Status.shutdownStarted);
  });

  Deno.test(`a naive sender awaiting ready() delivers everything in order (${t.name})`, async () => {
    await using engine = new Engine({ initialPoolMsgs: 64, maxPoolMsgs: 256 });
    const server = await listen(engine, t);
    const link = await connect(engine, t, server);
    const count = 20_000;
    const receiving = (async () => {
      let next = 1n;
      while (next <= BigInt(count)) {
        const m = await recv(server.group, 20_000);
        if (!m.isFromEngine()) {
          assertEquals(m.bhdr.messageId, next);
          next++;
        }
        engine.put(m);
      }
    })();
    for (let i = 1; i <= count; i++) {
      await link.client.ready(link.clientCh, { lowWaterBytes: 64 * 1024 });
      const m = make(engine, link.clientCh, OpCode.Signal, "x".repeat(64), BigInt(i));
      link.client.post(m);
    }
    await receiving;
  });

  Deno.test(`a channel's receive window grows from initialPoolMsgs to its read share (${t.name})`, async () => {
    const max = 64;
    await using rx = new Engine({ initialPoolMsgs: 4, maxPoolMsgs: max, maxChannelHeldMsgs: max });
    await using tx = new Engine();
    const server = await listen(rx, t);
    const link = await connect(tx, t, server);
    const count = 200;
    for (let i = 1; i <= count; i++) {
      link.client.post(make(tx, link.clientCh, OpCode.Signal, "w", BigInt(i)));
    }
    // Hold every message: the reader reads its share (new messages past the initial pool),
    // then starves.
    const held: Message[] = [];
    for (;;) {
      const m = await recv(server.group, 20_000);
      if (m.isFromEngine()) {
        expect(m, OpCode.Signal, Status.poolEmpty, "starved");
        rx.put(m);
        break;
      }
      held.push(m);
    }
    assertEquals(held.length, max, "messages read before the share was reached");
    // Giving them back lets the rest in, and the pool keeps no more than max spares.
    let got = held.length;
    for (const m of held.splice(0)) rx.put(m);
    while (got < count) {
      const m = await recv(server.group, 20_000);
      if (!m.isFromEngine()) got++;
      rx.put(m);
    }
    assert(rx.poolSize <= max, `pool size ${rx.poolSize}`);
  });
}

Deno.test("ChannelGroup async iterator: yields queued messages and ends on destroy", async () => {
  await using engine = new Engine();
  const g = engine.create();
  for (let i = 0; i < 3; i++) g.updateReceiver();
  const seen: number[] = [];
  const iterating = (async () => {
    for await (const m of g) {
      seen.push(m.bhdr.status);
      engine.put(m);
    }
  })();
  await new Promise((r) => setTimeout(r, 20));
  g.updateReceiver();
  await new Promise((r) => setTimeout(r, 20));
  await engine.destroy(g);
  await iterating;
  assertEquals(seen, [1, 1, 1, 1].map(() => Status.receiverUpdate));
});

Deno.test("ChannelGroup async iterator: break returns, later iterators start over", async () => {
  await using engine = new Engine();
  const g = engine.create();
  for (let i = 0; i < 4; i++) g.updateReceiver();
  let n = 0;
  for await (const m of g) {
    engine.put(m);
    if (++n === 2) break;
  }
  const it = g[Symbol.asyncIterator]();
  assertEquals((await it.next()).done, false);
  assertEquals((await it.next()).done, false);
  assertEquals(await it.return?.(), { done: true, value: undefined });
  assertEquals((await it.next()).done, true, "a returned iterator stays done");
});

Deno.test("timed waits share one timer: each times out on its own deadline, in order", async () => {
  await using engine = new Engine();
  const g = engine.create();
  const t0 = performance.now();
  const long = g.waitReceive(300);
  const short = g.waitReceive(30);
  const mid = g.waitReceive(150);
  const order: string[] = [];
  await Promise.all([
    long.then((m) => order.push(`long ${m}`)),
    short.then((m) => order.push(`short ${m}`)),
    mid.then((m) => order.push(`mid ${m}`)),
  ]);
  assertEquals(order, ["short null", "mid null", "long null"]);
  assert(performance.now() - t0 >= 295, "the longest wait lasted its full timeout");
  // A message goes to the first live waiter; a wait served early leaves the others timed.
  const a = g.waitReceive(5000);
  const b = g.waitReceive(50);
  g.updateReceiver();
  assertEquals((await a)?.bhdr.status, Status.receiverUpdate);
  assertEquals(await b, null);
});

for (const t of transports) {
  Deno.test(`a reader paused on a full receive queue resumes at half the bound, not per message (${t.name})`, async () => {
    await using rx = new Engine({ maxReceiveQueueMsgs: 8, initialPoolMsgs: 64, maxPoolMsgs: 64 });
    await using tx = new Engine();
    const server = await listen(rx, t);
    const link = await connect(tx, t, server);
    const count = 100;
    for (let i = 1; i <= count; i++) {
      link.client.post(make(tx, link.clientCh, OpCode.Signal, "q", BigInt(i)));
    }
    // The first message goes straight to this wait; then the queue fills to its bound
    // and the reader pauses.
    const first = await recv(server.group, 20_000);
    assertEquals(first.bhdr.messageId, 1n);
    rx.put(first);
    await new Promise((r) => setTimeout(r, 300));
    const second = server.group.tryReceive()!;
    assertEquals(second.bhdr.messageId, 2n);
    rx.put(second);
    // 7 left: the reader stays paused until the queue is down to 4, instead of reading
    // one frame per message taken.
    await new Promise((r) => setTimeout(r, 300));
    const queued: Message[] = [];
    for (let m = server.group.tryReceive(); m !== null; m = server.group.tryReceive()) {
      queued.push(m);
    }
    assertEquals(queued.length, 7, "messages queued after one was taken from a full queue");
    let got = 2 + queued.length;
    for (const m of queued) rx.put(m);
    // Draining lets the reader go on; everything arrives in order.
    let next = BigInt(got + 1);
    while (got < count) {
      const m = await recv(server.group, 20_000);
      assertEquals(m.bhdr.messageId, next++);
      got++;
      rx.put(m);
    }
  });
}

Deno.test("a timed wait keeps the process alive until it times out, a served one does not", async () => {
  const t0 = performance.now();
  const out = await new Deno.Command("deno", {
    args: ["run", "--no-prompt", new URL("./_timed_wait_child.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert(out.success, new TextDecoder().decode(out.stderr));
  const r = JSON.parse(text);
  assertEquals([r.served, r.timedOut], [true, null]);
  assert(r.waitedMs >= 195, `the pending wait ended after ${r.waitedMs} ms`);
  // The served 60 s wait's timer did not hold the process (generous bound for a loaded machine).
  assert(performance.now() - t0 < 30_000, "the child lived on for the served wait's timeout");
});

for (const t of transports) {
  Deno.test(`Peers Channel.send waits for room while the peer does not read (${t.name})`, async () => {
    // An engine-level server that accepts, then reads nothing more (its pool of 4 runs dry).
    await using serverEngine = new Engine({ initialPoolMsgs: 4, maxPoolMsgs: 4 });
    await using clientEngine = new Engine();
    const server = await listen(serverEngine, t);
    const connecting = peerConnect(server.bound, { engine: clientEngine });
    const hello = expect(await recv(server.group), OpCode.HelloRequest, Status.success);
    hello.bhdr.opCode = OpCode.HelloResponse;
    server.group.post(hello);
    const client = await connecting;
    const body = new Uint8Array(BIG).fill(0x64);
    // Without backpressure the sends go through until maxQueuedBytes (64 MiB, about 1,100 of
    // these) refuses one with allocation_failed; with it, a send waits once 2 MiB is queued.
    let sent = 0;
    let waited: TofuError | null = null;
    while (sent < 4000) {
      try {
        await client.send(body, { timeoutMs: 1000 });
        sent++;
      } catch (err) {
        waited = err as TofuError;
        break;
      }
    }
    if (waited === null) throw new Error(`all ${sent} sends went through without waiting`);
    assertInstanceOf(waited, TofuError);
    assert(/^Cannot send: no answer within 1000 ms$/.test(waited.message), waited.message);
    assert(sent < 200, `${sent} sends of 60 KB went through before one waited`);
    // Reading on the other side lets the sender go on.
    const reading = (async () => {
      for await (const m of server.group) serverEngine.put(m);
    })();
    await client.send(body, { timeoutMs: 20_000 });
    client.abort();
    await serverEngine.destroy(server.group);
    await reading;
  });
}

Deno.test("a send lane kept busy drops its written chunks (memory stays flat)", () => {
  const lane = new SendLane();
  const m = new Message();
  m.bhdr.channelNumber = 1;
  m.bhdr.messageId = 1n;
  m.body.set(new Uint8Array(64).fill(0x65));
  validateForPost(m);
  const size = 16 + 64;
  let most = 0;
  let written = 0;
  // A write in flight: the chunk and the end of the bytes it took.
  let writing: [ReturnType<SendLane["next"]> & object, number] | null = null;
  for (let i = 0; i < 100_000; i++) {
    lane.append(m, size);
    // Every 100 posts the write in flight completes and the writer takes the head chunk's
    // unsent bytes; posts go on meanwhile, so the lane never runs empty (as under a sender
    // that keeps pace with ready()).
    if (i % 100 === 99) {
      if (writing !== null) written += lane.settle(writing[0], writing[1], () => {});
      const c = lane.next()!;
      writing = [c, c.len];
    }
    most = Math.max(most, lane.chunkCount);
  }
  written += lane.settle(writing![0], writing![1], () => {});
  for (let c = lane.next(); c !== null; c = lane.next()) written += lane.settle(c, c.len, () => {});
  assertEquals(written, 100_000);
  assert(most <= 8, `${most} chunks held`);
});
