// Tests that kill mutants of src/_io_channel.ts the rest of the suite let survive (issue #13,
// docs/testing.md "mut-io"). Each runs over TCP and Unix sockets against a hand-driven peer (a
// plain socket), fails with its mutation applied to src/_io_channel.ts and passes without it;
// the mutation is named above each test. Waits for something that must happen have generous
// bounds; nothing asserts how long anything took.

import { assert, assertEquals, assertThrows } from "@std/assert";
import { concat } from "@std/bytes/concat";
import { type ChannelGroup, Engine, type Message, OpCode, Status, TofuError } from "../mod.ts";
import {
  expect,
  expectClosed,
  floodFrames,
  listen,
  make,
  makeAbort,
  readToEnd,
  recv,
  type Server,
  type SocketTransport,
  transports,
  writeAll,
} from "./_fixtures.ts";
import { frame } from "./_attack.ts";
import { within as withinMs } from "./_peer_fixtures.ts";
import { rawHello, rawListen, rawServed, readFrames, untilClosed } from "./_raw_peer.ts";

/** `p`, or a failure naming `what` after `ms` (a bound for something that must happen). */
function within<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  return withinMs(p, ms, what);
}

/** A listener of `engine` and its channel to a raw peer that sent a HelloRequest (id `id`). */
async function rawPeer(
  engine: Engine,
  t: SocketTransport,
  id?: bigint,
): Promise<{ server: Server; conn: Deno.Conn; ch: number }> {
  const server = await listen(engine, t);
  return { server, ...await rawHello(engine, server.group, server.bound, id) };
}

/** Writes `frames` to a raw peer's socket in one go. */
function writeFrames(conn: Deno.Conn, frames: Uint8Array[]): Promise<void> {
  return writeAll(conn, concat(frames));
}

/** Posts a HelloRequest (message id `id`, if given) to `to` on `group`; returns its channel. */
function postHello(engine: Engine, group: ChannelGroup, to: string, id?: bigint): number {
  const hello = engine.get("always")!;
  hello.bhdr.opCode = OpCode.HelloRequest;
  if (id !== undefined) hello.bhdr.messageId = id;
  hello.headers.append("~connect_to", to);
  return group.post(hello).channelNumber;
}

/** Ends a rawServed() link: the peer closes, the channel's close is awaited, the listener closes. */
async function endServed(
  s: { client: ChannelGroup; ch: number; conn: Deno.Conn; listener: Deno.Listener },
): Promise<void> {
  s.conn.close();
  await untilClosed(s.client, s.ch);
  s.listener.close();
}

/** Asserts that posting `m` is refused with `queued` bytes queued in the engine of budget `max`. */
function assertOverBudget(
  engine: Engine,
  group: ChannelGroup,
  m: Message,
  queued: number,
  max: number,
): void {
  const e = assertThrows(() => group.post(m), TofuError);
  assertEquals(e.status, Status.allocationFailed);
  assertEquals(
    e.message,
    `Cannot post Request on channel ${m.bhdr.channelNumber}: ${queued} bytes are already queued in the engine (maxEngineQueuedBytes ${max})`,
  );
  engine.put(m);
}

for (const t of transports) {
  // Mutation (line 110): `this.#watch?.handshakeSince` without `?.`. With every timeout off a
  // channel has no watch, and the constructor of a client channel must not read one.
  Deno.test(`${t.name}: every timeout off: a client channel connects, writes and reports its close`, async () => {
    await using engine = new Engine({
      handshakeTimeoutMs: 0,
      frameTimeoutMs: 0,
      idleTimeoutMs: 0,
      writeStallTimeoutMs: 0,
    });
    const { client, ch, conn, listener } = await rawServed(engine, t);
    client.post(make(engine, ch, OpCode.Request, "no timeouts", 3n));
    const frames = await readFrames(conn, 2); // the HelloRequest, then the Request
    assertEquals([frames[1]![2], frames[1]![11]], [OpCode.Request, 3]);
    assertEquals(new TextDecoder().decode(frames[1]!.subarray(16)), "no timeouts");
    conn.close();
    const { before, closed } = await untilClosed(client, ch);
    assertEquals(before.length, 0);
    expectClosed(closed, ch);
    assertEquals(closed.error?.status, Status.peerDisconnected);
    listener.close();
  });

  // Mutations (line 143): `host.queuedBytes > 0 &&` made `true` or `>= 0`. An empty engine
  // takes one message larger than both its budget and a channel's allowance (64 KiB); once
  // that is queued, the budget applies.
  Deno.test(`${t.name}: maxEngineQueuedBytes: an empty engine takes one message larger than the budget`, async () => {
    await using engine = new Engine({ maxEngineQueuedBytes: 60_000 });
    const { client, ch, conn, listener } = await rawServed(engine, t);
    client.post(make(engine, ch, OpCode.Request, "e".repeat(65535), 7n)); // 66,063 charged
    // The same turn: nothing written yet.
    assertOverBudget(engine, client, make(engine, ch, OpCode.Request), 66063, 60_000);
    const frames = await readFrames(conn, 2);
    assertEquals([frames[1]!.length, frames[1]![11]], [16 + 65535, 7]);
    await endServed({ client, ch, conn, listener });
  });

  // Mutation (line 143): `host.queuedBytes + c > host.maxEngineQueuedBytes` made `>=`. The
  // engine's budget is full at exactly the budget, not one byte before.
  Deno.test(`${t.name}: maxEngineQueuedBytes: queued bytes may reach the budget exactly`, async () => {
    await using engine = new Engine({ maxEngineQueuedBytes: 100_000 });
    const { client, ch, conn, listener } = await rawServed(engine, t);
    // Charged: 16 + 60,000 + 512, then 16 + 38,944 + 512; 100,000 in all, past the 64 KiB
    // allowance of the channel. All in one turn: nothing is written in between.
    client.post(make(engine, ch, OpCode.Request, "f".repeat(60_000), 1n));
    client.post(make(engine, ch, OpCode.Request, "g".repeat(38_944), 2n));
    assertOverBudget(engine, client, make(engine, ch, OpCode.Request), 100_000, 100_000);
    const frames = await readFrames(conn, 3);
    assertEquals(frames.slice(1).map((f) => [f.length, f[11]]), [[16 + 60_000, 1], [
      16 + 38_944,
      2,
    ]]);
    await endServed({ client, ch, conn, listener });
  });

  // Mutations (line 217): attach()'s `if (this.#closed)` made `false`, or its block emptied;
  // (line 561) `urgent.frames + normal.frames === 0` with `-`.
  // A connect that completes after the channel was aborted must close the new socket at
  // once: nothing is written on it, and the peer sees its end.
  Deno.test(`${t.name}: a connect completing after an abort closes its socket at once`, async () => {
    const { listener, bound } = rawListen(t);
    await using engine = new Engine();
    const client = engine.create();
    const ch = postHello(engine, client, bound, 21n);
    client.post(make(engine, ch, OpCode.Request, "queued", 22n));
    const abort = makeAbort(engine, ch);
    abort.bhdr.messageId = 23n;
    client.post(abort); // the connect is still under way
    const { before, closed } = await untilClosed(client, ch);
    // One urgent and one normal frame unsent: both come back (line 561's `+` made `-`
    // would count none).
    assertEquals(before.map((m) => [m.bhdr.opCode, m.bhdr.status, m.bhdr.messageId]), [
      [OpCode.ByeSignal, Status.channelClosed, 23n],
      [OpCode.HelloRequest, Status.channelClosed, 21n],
      [OpCode.Request, Status.channelClosed, 22n],
    ]);
    expectClosed(closed, ch, 21n);
    const conn = await within(listener.accept(), "the connect");
    assertEquals(await within(readToEnd(conn), "the end of the socket"), 0, "nothing written");
    conn.close();
    listener.close();
  });

  // Mutation (line 105): the read window `Math.max(1, host.pool.max)` made `Math.min`, so a
  // channel stops reading as soon as one of its messages waits unread. Frames that fit the
  // window (maxPoolMsgs, 64 by default) are all read while the application reads nothing:
  // here the peer's ByeSignal behind three Requests is read and closes the socket.
  Deno.test(`${t.name}: a channel reads on while its unread messages fit its window`, async () => {
    await using engine = new Engine();
    const { server, conn, ch } = await rawPeer(engine, t, 1n);
    await writeFrames(conn, [
      frame(OpCode.Request, "a", 2n),
      frame(OpCode.Request, "b", 3n),
      frame(OpCode.Request, "c", 4n),
      frame(OpCode.ByeSignal, "", 5n),
    ]);
    // Nothing is received yet: the engine must read all four frames on its own.
    assertEquals(await within(readToEnd(conn), "the end of the socket"), 0);
    const { before, closed } = await untilClosed(server.group, ch);
    assertEquals(before.map((m) => Number(m.bhdr.messageId)), [2, 3, 4, 5]);
    expect(before[3]!, OpCode.ByeSignal, Status.success, "the peer's ByeSignal");
    expectClosed(closed, ch, 1n);
    conn.close();
  });

  // Mutation (line 560): `status === Status.connectFailed` made `true`. A HelloRequest that
  // was written and never answered comes back only when the connect failed (the handshake
  // timeout); a peer that just goes away gives channel_closed alone.
  Deno.test(`${t.name}: a written Hello is not handed back when the peer closes without answering`, async () => {
    const { listener, bound } = rawListen(t);
    await using engine = new Engine({ handshakeTimeoutMs: 20_000 });
    const client = engine.create();
    const ch = postHello(engine, client, bound, 31n);
    const conn = await listener.accept();
    const [written] = await readFrames(conn, 1);
    assertEquals([written![2], written![11]], [OpCode.HelloRequest, 31]);
    conn.close();
    const { before, closed } = await untilClosed(client, ch);
    assertEquals(before.length, 0, "nothing to hand back");
    expectClosed(closed, ch, 31n);
    assertEquals(closed.error?.status, Status.peerDisconnected);
    listener.close();
  });

  // Mutation (line 455): close()'s `if (silent) this.#withdraw()` made `if (true)`. A connect
  // that fails after an abort closes the channel a second time, loudly: that must not drop
  // the hand-backs under way (5,000 messages take ten turns of the event loop).
  Deno.test(`${t.name}: a connect failing after an abort leaves the hand-backs and the final report`, async () => {
    await using engine = new Engine({ maxQueuedBytes: 64 * 1024 * 1024 });
    const client = engine.create();
    const ch = postHello(engine, client, String(t.nobody()), 1n);
    const count = 5000;
    for (let i = 0; i < count; i++) {
      client.post(make(engine, ch, OpCode.Request, "", BigInt(i + 2)));
    }
    client.post(makeAbort(engine, ch)); // the same turn: the connect has not failed yet
    const { before, closed } = await untilClosed(client, ch);
    assertEquals(before.length, 2 + count, "the ByeSignal, the HelloRequest, every Request");
    const ids = before.slice(1).map((m) => Number(m.bhdr.messageId));
    assertEquals(ids, Array.from({ length: count + 1 }, (_, i) => i + 1), "all, in order");
    for (const m of before) assertEquals(m.bhdr.status, Status.channelClosed);
    for (const m of before) engine.put(m);
    expectClosed(closed, ch, 1n);
    assertEquals(closed.error?.message, `Cannot send on channel ${ch}: the application aborted it`);
  });

  // Mutations (line 312): `if (share.atLimit) this.#starve()` made `if (true)`. A channel
  // whose unread window is full (maxPoolMsgs of its messages wait unread) stops reading
  // without a pool_empty Signal: it holds far fewer than maxChannelHeldMsgs.
  Deno.test(`${t.name}: a full unread window holds the reader back without pool_empty`, async () => {
    await using engine = new Engine({ maxPoolMsgs: 8 }); // window 8; share max(8, 1024)
    const { server, conn, ch } = await rawPeer(engine, t);
    const count = 40;
    const frames: Uint8Array[] = [];
    for (let i = 0; i < count; i++) frames.push(frame(OpCode.Request, `w${i}`, BigInt(i + 2)));
    await writeFrames(conn, frames);
    // A pause, not a measurement: the reader fills its window of 8 and stops (on a slow
    // machine it may not have yet; the test then checks less, never wrongly).
    await new Promise((r) => setTimeout(r, 300));
    const got: number[] = [];
    while (got.length < count) {
      const m = await recv(server.group);
      expect(m, OpCode.Request, Status.success, `message ${got.length}`);
      got.push(Number(m.bhdr.messageId));
      engine.put(m);
    }
    assertEquals(got, Array.from({ length: count }, (_, i) => i + 2));
    conn.close();
    const { before } = await untilClosed(server.group, ch);
    assertEquals(before.length, 0, "no pool_empty");
  });

  // Mutations (line 335): `beforeRead(dec.buffered > 0)` made `true` or `>= 0`. The frame
  // timeout runs from the first byte of a frame only: a channel quiet between frames for
  // longer than frameTimeoutMs stays open.
  Deno.test(`${t.name}: frameTimeoutMs does not run between frames`, async () => {
    await using engine = new Engine({ frameTimeoutMs: 100 });
    const { server, conn, ch } = await rawPeer(engine, t);
    // Four times the limit: a pause, not a measurement.
    await new Promise((r) => setTimeout(r, 400));
    await writeAll(conn, frame(OpCode.Request, "late", 2n));
    const m = expect(await recv(server.group), OpCode.Request, Status.success, "the late frame");
    assertEquals(m.bhdr.channelNumber, ch);
    engine.put(m);
    conn.close();
    const { closed } = await untilClosed(server.group, ch);
    assertEquals(closed.error?.status, Status.peerDisconnected);
  });

  // Mutations (lines 314, 373-391): the reader's heartbeat (`#starvesLoop`, `#yield`). A
  // reader woken by put() for one message at a time, with the next frames already buffered,
  // goes on in microtasks alone; without the heartbeat it would keep every timer waiting
  // until the socket runs dry. A zero-delay timer set when the application starts must run
  // long before 4,000 such messages are through.
  Deno.test(`${t.name}: a reader fed one message at a time lets timers run`, async () => {
    await using engine = new Engine({ maxChannelHeldMsgs: 1 });
    const { server, conn, ch } = await rawPeer(engine, t);
    const count = 4000;
    await writeAll(conn, floodFrames(count + 1).subarray(16)); // 4,000 Signals, 64 KB
    let received = 0;
    let firedAt = -1;
    let armed = false;
    while (received < count) {
      if (received === 1 && !armed) {
        // Armed once the first Signal is in: the reader has the others buffered by then.
        armed = true;
        setTimeout(() => firedAt = received, 0);
      }
      const m = await recv(server.group);
      // Held at its share of one, the reader reports pool_empty (once per episode).
      if (m.bhdr.status !== Status.poolEmpty) {
        expect(m, OpCode.Signal, Status.success, `Signal ${received}`);
        assertEquals(m.bhdr.messageId, BigInt(received + 2));
        received++;
      }
      engine.put(m);
    }
    assert(firedAt >= 0 && firedAt < count / 2, `the timer ran after ${firedAt} messages`);
    conn.close();
    await untilClosed(server.group, ch);
  });

  // Mutation (line 302): the reader's `if (this.#closed) return` between frames made
  // `false`. Frames read together with the peer's ByeSignal, behind it, are not delivered:
  // the ByeSignal closed the channel.
  Deno.test(`${t.name}: frames behind a peer's ByeSignal in the same read are not delivered`, async () => {
    await using engine = new Engine();
    const { server, conn, ch } = await rawPeer(engine, t, 1n);
    await writeFrames(conn, [
      frame(OpCode.Request, "before", 2n),
      frame(OpCode.ByeSignal, "", 3n),
      frame(OpCode.Request, "after", 4n),
      frame(OpCode.Signal, "after", 5n),
    ]);
    const { before, closed } = await untilClosed(server.group, ch);
    assertEquals(before.map((m) => [m.bhdr.opCode, m.bhdr.messageId]), [
      [OpCode.Request, 2n],
      [OpCode.ByeSignal, 3n],
    ]);
    expectClosed(closed, ch, 1n);
    assertEquals(closed.error, undefined);
    conn.close();
  });

  // Mutation (line 289): `(this.#byeSent && this.#byeReceived)` made `false`. When the
  // peer's ByeRequest came first, writing ours completes the graceful close: the engine
  // closes the socket without waiting for the peer to.
  Deno.test(`${t.name}: our ByeRequest written after the peer's closes the channel`, async () => {
    await using engine = new Engine();
    const { server, conn, ch } = await rawPeer(engine, t, 1n);
    await writeAll(conn, frame(OpCode.ByeRequest, "", 6n));
    const bye = expect(await recv(server.group), OpCode.ByeRequest, Status.success, "peer's bye");
    bye.bhdr.opCode = OpCode.ByeRequest;
    server.group.post(bye); // answered with a ByeRequest of our own
    const [ours] = await readFrames(conn, 1);
    assertEquals(ours![2], OpCode.ByeRequest);
    assertEquals(await within(readToEnd(conn), "the end of the socket"), 0);
    const { before, closed } = await untilClosed(server.group, ch);
    assertEquals(before.length, 0);
    expectClosed(closed, ch, 1n);
    assertEquals(closed.error, undefined, "a graceful close");
    conn.close();
  });

  // Mutations (lines 259-263): the writer's catch (emptied, its `!this.#closed` test made
  // `false` or negated) and its action text. A write that fails while the reader is held
  // back at its share (so it does not read the peer's end) closes the channel with
  // send_failed, naming the send; the unsent messages come back.
  Deno.test(`${t.name}: a failed write closes the channel with send_failed while the reader waits`, async () => {
    await using engine = new Engine({
      maxChannelHeldMsgs: 1,
      maxQueuedBytes: 64 * 1024 * 1024,
      maxEngineQueuedBytes: 64 * 1024 * 1024,
    });
    const { server, conn, ch } = await rawPeer(engine, t, 1n);
    await writeFrames(conn, [frame(OpCode.Request, "a", 2n), frame(OpCode.Request, "b", 3n)]);
    // Held, `a` keeps the reader at its share of one, with `b` buffered: it reads no more.
    const a = expect(await recv(server.group), OpCode.Request, Status.success, "a");
    for (let i = 0; i < 256; i++) {
      server.group.post(make(engine, ch, OpCode.Request, "s".repeat(65535), BigInt(i + 10)));
    }
    conn.close(); // unread data: the engine's writes fail
    const { before, closed } = await untilClosed(server.group, ch);
    const handedBack = before.filter((m) => m.bhdr.status === Status.sendFailed);
    assert(handedBack.length > 0, "unsent messages come back send_failed");
    assertEquals(closed.error?.status, Status.sendFailed);
    assert(
      closed.error!.message.startsWith(`Cannot send on channel ${ch}: `),
      closed.error!.message,
    );
    engine.put(a);
  });

  // Mutation (line 366): the reader's action text. A read that fails closes the channel with
  // recv_failed, naming the receive. The peer closes with our frame unread in its socket:
  // over a Unix socket the engine's read then fails (ECONNRESET); over TCP, Deno reports
  // the reset as the end of the stream, so the channel closes with peer_disconnected.
  Deno.test(`${t.name}: a read reset by the peer closes the channel, naming the receive`, async () => {
    await using engine = new Engine();
    const { server, conn, ch } = await rawPeer(engine, t, 1n);
    server.group.post(make(engine, ch, OpCode.Request, "unread", 2n));
    await server.group.ready(ch, { lowWaterBytes: 0 }); // written: in the peer's socket
    conn.close();
    const { closed } = await untilClosed(server.group, ch);
    if (t.name === "uds") {
      assertEquals(closed.error?.status, Status.recvFailed, closed.error?.message);
      assert(
        closed.error!.message.startsWith(`Cannot receive on channel ${ch}: `),
        closed.error!.message,
      );
    } else {
      assertEquals(
        closed.error?.message,
        `Cannot use channel ${ch}: the peer closed the connection`,
      );
    }
  });

  // Mutation (line 407): the room wait's wake-up `() => resolve(false)` made `() => undefined`.
  // A reader waiting for room in its group's receive queue ends when the channel closes:
  // the final report is queued at once, not only after the application reads.
  Deno.test(`${t.name}: a reader waiting for room in the receive queue ends on an abort`, async () => {
    await using engine = new Engine({ maxReceiveQueueMsgs: 8 });
    const { server, conn, ch } = await rawPeer(engine, t, 1n);
    const frames: Uint8Array[] = [];
    for (let i = 0; i < 12; i++) frames.push(frame(OpCode.Request, `q${i}`, BigInt(i + 2)));
    await writeFrames(conn, frames);
    // A pause, not a measurement: the reader fills the queue (8) and waits for room.
    await new Promise((r) => setTimeout(r, 300));
    server.group.post(makeAbort(engine, ch));
    await new Promise((r) => setTimeout(r, 50)); // the close completes in microtasks
    const got = [];
    for (let m = server.group.tryReceive(); m !== null; m = server.group.tryReceive()) {
      got.push(m);
    }
    assert(got.length > 0);
    expectClosed(got.at(-1)!, ch, 1n);
    for (const m of got) engine.put(m);
    conn.close();
  });

  // Mutation (line 447): `op === OpCode.ByeResponse ||` made `false ||`. The peer's
  // ByeResponse to our ByeRequest closes the channel gracefully, with the peer's socket
  // still open.
  Deno.test(`${t.name}: the peer's ByeResponse closes the channel`, async () => {
    await using engine = new Engine();
    const { server, conn, ch } = await rawPeer(engine, t, 1n);
    server.group.post(make(engine, ch, OpCode.ByeRequest, "", 8n));
    const [ours] = await readFrames(conn, 1);
    assertEquals(ours![2], OpCode.ByeRequest);
    await writeAll(conn, frame(OpCode.ByeResponse, "", 8n));
    assertEquals(await within(readToEnd(conn), "the end of the socket"), 0);
    const { before, closed } = await untilClosed(server.group, ch);
    assertEquals(before.map((m) => m.bhdr.opCode), [OpCode.ByeResponse]);
    expectClosed(closed, ch, 1n);
    assertEquals(closed.error, undefined, "a graceful close");
    conn.close();
  });

  // Mutation (line 535): `unsent -= bytes` made `+=`. Once a closed channel has handed back
  // its unsent messages, none of their bytes stay charged to the engine, and none are
  // uncharged twice: the budget is exactly what it was.
  Deno.test(`${t.name}: after a hand-back the engine's budget is whole, not larger`, async () => {
    await using engine = new Engine({
      maxQueuedBytes: 64 * 1024 * 1024,
      maxEngineQueuedBytes: 200_000,
    });
    const client = engine.create();
    const gone = postHello(engine, client, String(t.nobody()));
    for (let i = 0; i < 100; i++) client.post(make(engine, gone, OpCode.Request, "u".repeat(1000)));
    client.post(makeAbort(engine, gone)); // all unsent: handed back
    const { before } = await untilClosed(client, gone);
    assertEquals(before.length, 102);
    for (const m of before) engine.put(m);
    const { client: c2, ch, conn, listener } = await rawServed(engine, t);
    // Three of 60,528 charged bytes fit the 200,000 budget; the fourth does not.
    for (let i = 0; i < 3; i++) c2.post(make(engine, ch, OpCode.Request, "v".repeat(60_000)));
    const fourth = make(engine, ch, OpCode.Request, "v".repeat(60_000));
    assertOverBudget(engine, c2, fourth, 181_584, 200_000);
    await endServed({ client: c2, ch, conn, listener });
  });

  // Mutations (lines 574-575): the hand-back step's `max - n` made `max + n`, and
  // `urgent.frames + normal.frames === 0` made `-`. With more unsent urgent frames than one
  // slice (512) and normal ones too, every message comes back, urgent ones first, and no
  // turn of the event loop hands back more than a slice.
  Deno.test(`${t.name}: urgent and normal hand-backs: all back, urgent first, a slice per turn`, async () => {
    await using engine = new Engine({ maxQueuedBytes: 64 * 1024 * 1024 });
    const client = engine.create();
    const ch = postHello(engine, client, String(t.nobody()), 1n);
    const urgent = 599; // with the HelloRequest, 600 urgent frames
    const normal = 88; // after one slice: 88 urgent and 88 normal left
    for (let i = 0; i < urgent; i++) {
      const m = make(engine, ch, OpCode.Signal, "", BigInt(i + 2));
      m.bhdr.internalA = 1;
      client.post(m);
    }
    for (let i = 0; i < normal; i++) {
      client.post(make(engine, ch, OpCode.Signal, "", BigInt(urgent + i + 2)));
    }
    client.post(makeAbort(engine, ch)); // the same turn: nothing was written
    const got: bigint[] = [];
    let most = 0;
    let closed = false;
    const end = Date.now() + 20_000;
    while (!closed && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 0));
      let inTurn = 0;
      for (let m = client.tryReceive(); m !== null; m = client.tryReceive()) {
        // The final report carries the Hello's id (1); the handed-back Signals have 2 and up.
        if (m.bhdr.opCode === OpCode.Signal && m.bhdr.messageId === 1n) {
          expectClosed(m, ch, 1n);
          closed = true;
        } else if (m.bhdr.opCode !== OpCode.ByeSignal) {
          got.push(m.bhdr.messageId);
          inTurn++;
        }
        engine.put(m);
      }
      most = Math.max(most, inTurn);
    }
    assert(closed, "channel_closed arrived");
    assertEquals(got, Array.from({ length: 1 + urgent + normal }, (_, i) => BigInt(i + 1)));
    assert(most <= 512, `${most} messages handed back in one turn (at most 512)`);
  });

  // Mutation (line 590): the hand-back's drop function emptied. A group destroyed while its
  // closed channel hands back drops the rest, and their bytes leave the engine's budget.
  Deno.test(`${t.name}: a group destroyed during a hand-back gives its bytes back to the budget`, async () => {
    await using engine = new Engine({
      maxQueuedBytes: 64 * 1024 * 1024,
      maxEngineQueuedBytes: 4_000_000,
    });
    const doomed = engine.create();
    const gone = postHello(engine, doomed, String(t.nobody()));
    for (let i = 0; i < 1500; i++) {
      doomed.post(make(engine, gone, OpCode.Request, "d".repeat(1000))); // 1,528 charged each
    }
    doomed.post(makeAbort(engine, gone));
    await new Promise((r) => setTimeout(r, 0)); // the first slice (512) is handed back
    await engine.destroy(doomed); // the rest (about 1.5 MB) is dropped
    const { client, ch, conn, listener } = await rawServed(engine, t);
    // 50 x 60,528 = 3,026,400 charged bytes: within the budget only if nothing is left of
    // the destroyed channel's.
    for (let i = 0; i < 50; i++) {
      client.post(make(engine, ch, OpCode.Request, "w".repeat(60_000), BigInt(i + 1)));
    }
    const frames = await readFrames(conn, 51);
    assertEquals(frames[50]![11], 50);
    await endServed({ client, ch, conn, listener });
  });

  // Mutations (lines 546, 581, 599-600): the paths of #finish that end the channel (`done`).
  // A listener counts an accepted channel until it is done: with maxConnections 1, a new
  // connection is served once the last one closed, whether it left unsent messages to hand
  // back or none.
  Deno.test(`${t.name}: maxConnections 1: a closed channel makes room, with or without hand-backs`, async () => {
    await using engine = new Engine({ maxConnections: 1 });
    const server = await listen(engine, t);
    // First: aborted with unsent messages (handed back by a job).
    const a = await rawHello(engine, server.group, server.bound, 1n);
    for (let i = 0; i < 10; i++) server.group.post(make(engine, a.ch, OpCode.Request, "x"));
    server.group.post(makeAbort(engine, a.ch));
    const first = await untilClosed(server.group, a.ch);
    assertEquals(first.before.length, 11);
    for (const m of first.before) engine.put(m);
    a.conn.close();
    // Second: the peer closes; nothing to hand back.
    const b = await rawHello(engine, server.group, server.bound, 2n);
    b.conn.close();
    const second = await untilClosed(server.group, b.ch);
    assertEquals(second.before.length, 0);
    // Third: served, so the second one is no longer counted.
    const c = await rawHello(engine, server.group, server.bound, 3n);
    c.conn.close();
    await untilClosed(server.group, c.ch);
  });

  // Mutation (line 483): the close not waiting for the write under way (`[]` for its tasks).
  // Aborted while a write blocks (the peer reads nothing) and its reader is held back at its
  // share, a channel hands back what was not written; the bytes of the frames are uncharged
  // once, so the engine's budget is exactly whole afterwards.
  Deno.test(`${t.name}: an abort during a blocked write leaves the engine's budget exactly whole`, async () => {
    const budget = 32 * 1024 * 1024;
    await using engine = new Engine({
      maxChannelHeldMsgs: 1,
      maxQueuedBytes: 64 * 1024 * 1024,
      maxEngineQueuedBytes: budget,
    });
    const { server, conn, ch } = await rawPeer(engine, t, 1n);
    await writeFrames(conn, [frame(OpCode.Request, "a", 2n), frame(OpCode.Request, "b", 3n)]);
    const a = expect(await recv(server.group), OpCode.Request, Status.success, "a");
    for (let i = 0; i < 256; i++) {
      server.group.post(make(engine, ch, OpCode.Request, "s".repeat(65535), BigInt(i + 10)));
    }
    // A pause, not a measurement: the socket buffers fill and the write blocks.
    await new Promise((r) => setTimeout(r, 200));
    server.group.post(makeAbort(engine, ch));
    const { before } = await untilClosed(server.group, ch);
    for (const m of before) engine.put(m);
    engine.put(a);
    const other = await rawServed(engine, t);
    const cost = 16 + 60_000 + 512;
    const fit = Math.floor(budget / cost);
    for (let i = 0; i < fit; i++) {
      other.client.post(make(engine, other.ch, OpCode.Request, "o".repeat(60_000)));
    }
    const over = make(engine, other.ch, OpCode.Request, "o".repeat(60_000));
    assertOverBudget(engine, other.client, over, fit * cost, budget);
    await endServed(other);
    conn.close();
  });

  // Mutation (line 636): `#withdraw`'s `if (handing === null) return` made `false`. A group
  // destroyed in the same turn as its channel's abort (the close's reports not yet started)
  // is destroyed cleanly, and nothing is handed back to it.
  Deno.test(`${t.name}: a group destroyed in the turn of its channel's abort`, async () => {
    await using engine = new Engine();
    const { server, conn, ch } = await rawPeer(engine, t, 1n);
    const client = engine.create();
    const out = postHello(engine, client, server.bound);
    client.post(make(engine, out, OpCode.Request, "unsent"));
    client.post(makeAbort(engine, out));
    await engine.destroy(client); // the same turn: the close has not reported yet
    assertEquals(client.tryReceive(), null);
    conn.close();
    await untilClosed(server.group, ch);
  });
}
