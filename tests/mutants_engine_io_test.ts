// I/O channel behaviour that mutation testing found unchecked (issue #13, docs/testing.md):
// the exact reports of each timeout, of a peer that closes, of refused posts and waits, over
// TCP and Unix sockets, each against a hand-driven peer (a plain socket) so that every byte
// and every report is known. Waits for a timeout are "must happen" waits with generous
// bounds; nothing asserts how long anything took.

import { assert, assertEquals, assertNotEquals, assertRejects, assertThrows } from "@std/assert";
import { Engine, OpCode, Status, TofuError } from "../mod.ts";
import {
  expect,
  expectClosed,
  listen,
  make,
  makeAbort,
  rawConnect,
  readToEnd,
  recv,
  transports,
  writeAll,
} from "./_fixtures.ts";
import { frame } from "./_attack.ts";
import { rawHello, rawListen, rawServed, readFrames, untilClosed } from "./_raw_peer.ts";

for (const t of transports) {
  // ---- Timeouts: each closes with its own status and message --------------------------

  Deno.test(`${t.name}: handshake timeout of an accepted connection: recv_failed, exact message, no id`, async () => {
    await using engine = new Engine({ handshakeTimeoutMs: 150 });
    const server = await listen(engine, t);
    const conn = await rawConnect(server.bound);
    const closed = expect(await recv(server.group, 20_000), OpCode.Signal, Status.channelClosed);
    const ch = closed.bhdr.channelNumber;
    assertEquals(closed.bhdr.messageId, 0n, "nothing was received: no message id");
    assertEquals(closed.error?.status, Status.recvFailed);
    assertEquals(
      closed.error?.message,
      `Cannot receive on channel ${ch}: no HelloRequest within 150 ms of the accept (handshakeTimeoutMs)`,
    );
    assertEquals(await readToEnd(conn), 0);
    conn.close();
  });

  Deno.test(`${t.name}: handshake timeout of a client: the written Hello comes back connect_failed`, async () => {
    const { listener, bound } = rawListen(t);
    const accepted = listener.accept();
    await using engine = new Engine({ handshakeTimeoutMs: 150 });
    const client = engine.create();
    const hello = engine.get("always")!;
    hello.bhdr.opCode = OpCode.HelloRequest;
    hello.bhdr.messageId = 77n;
    hello.headers.append("~connect_to", bound);
    hello.headers.append("x-kept", "yes");
    const { channelNumber: ch } = client.post(hello);
    const conn = await accepted;
    const { before, closed } = await untilClosed(client, ch);
    const text =
      `Cannot connect on channel ${ch}: no answer to the HelloRequest within 150 ms (handshakeTimeoutMs)`;
    assertEquals(before.length, 1);
    const back = expect(before[0]!, OpCode.HelloRequest, Status.connectFailed, "hello back");
    assertEquals(back.bhdr.messageId, 77n);
    assertEquals(back.headers.get("x-kept"), "yes", "a copy of the Hello as posted");
    assertEquals([back.error?.status, back.error?.message], [Status.connectFailed, text]);
    expectClosed(closed, ch, 77n);
    assertEquals(closed.error?.message, text);
    conn.close();
    listener.close();
  });

  Deno.test(`${t.name}: a Hello answered in time is not handed back when the channel later fails`, async () => {
    await using engine = new Engine({ handshakeTimeoutMs: 10_000 });
    const { client, ch, conn, listener } = await rawServed(engine, t);
    conn.close(); // the peer goes away after answering
    const { before, closed } = await untilClosed(client, ch);
    assertEquals(before.length, 0, "the HelloRequest was answered: nothing to hand back");
    assertNotEquals(closed.error?.status, Status.connectFailed);
    listener.close();
  });

  Deno.test(`${t.name}: frame timeout: recv_failed with the exact message`, async () => {
    await using engine = new Engine({ frameTimeoutMs: 150 });
    const server = await listen(engine, t);
    const { conn, ch } = await rawHello(engine, server.group, server.bound, 5n);
    await writeAll(conn, frame(OpCode.Request, "x".repeat(1000)).subarray(0, 26));
    const { before, closed } = await untilClosed(server.group, ch);
    assertEquals(before.length, 0);
    expectClosed(closed, ch, 5n);
    assertEquals(closed.error?.status, Status.recvFailed);
    assertEquals(
      closed.error?.message,
      `Cannot receive on channel ${ch}: a frame did not complete within 150 ms (frameTimeoutMs)`,
    );
    conn.close();
  });

  Deno.test(`${t.name}: idle timeout: channel_closed with the exact message`, async () => {
    await using engine = new Engine({ idleTimeoutMs: 150 });
    const server = await listen(engine, t);
    const { conn, ch } = await rawHello(engine, server.group, server.bound);
    const { closed } = await untilClosed(server.group, ch);
    assertEquals(closed.error?.status, Status.channelClosed);
    assertEquals(
      closed.error?.message,
      `Cannot use channel ${ch}: idle for 150 ms (idleTimeoutMs)`,
    );
    conn.close();
  });

  Deno.test(`${t.name}: write stall: what was not written comes back send_failed with the exact message`, async () => {
    await using engine = new Engine({
      maxQueuedBytes: 64 * 1024 * 1024,
      maxEngineQueuedBytes: 64 * 1024 * 1024,
      writeStallTimeoutMs: 200,
    });
    const server = await listen(engine, t);
    const { conn, ch } = await rawHello(engine, server.group, server.bound);
    const posted = 256; // 16 MiB for a peer that reads nothing
    for (let i = 0; i < posted; i++) {
      server.group.post(make(engine, ch, OpCode.Request, "x".repeat(65535), BigInt(i + 1)));
    }
    const { before, closed } = await untilClosed(server.group, ch);
    const text =
      `Cannot send on channel ${ch}: the socket took no byte for 200 ms (writeStallTimeoutMs)`;
    assert(before.length > 0 && before.length < posted, `${before.length} handed back`);
    const ids = before.map((m) => Number(m.bhdr.messageId));
    assertEquals(ids, ids.map((_, i) => posted - before.length + 1 + i), "the last ones, in order");
    for (const m of before) {
      expect(m, OpCode.Request, Status.sendFailed, "handed back");
      assertEquals(m.error?.message, text);
      assertEquals(m.body.byteLength, 65535);
    }
    assertEquals([closed.error?.status, closed.error?.message], [Status.sendFailed, text]);
    conn.close();
  });

  // ---- A peer that closes -----------------------------------------------------------

  Deno.test(`${t.name}: a peer that closes between frames: peer_disconnected, exact message`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const { conn, ch } = await rawHello(engine, server.group, server.bound, 9n);
    conn.close();
    const { closed } = await untilClosed(server.group, ch);
    expectClosed(closed, ch, 9n);
    assertEquals(closed.error?.status, Status.peerDisconnected);
    assertEquals(
      closed.error?.message,
      `Cannot use channel ${ch}: the peer closed the connection`,
    );
  });

  Deno.test(`${t.name}: a peer that closes inside a frame: recv_failed, with the bytes received`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const { conn, ch } = await rawHello(engine, server.group, server.bound);
    await writeAll(conn, frame(OpCode.Request, "x".repeat(100)).subarray(0, 26));
    conn.close();
    const { closed } = await untilClosed(server.group, ch);
    assertEquals(closed.error?.status, Status.recvFailed);
    assertEquals(
      closed.error?.message,
      `Cannot receive on channel ${ch}: the peer closed the connection inside a frame (26 bytes of it received)`,
    );
  });

  Deno.test(`${t.name}: an invalid frame: recv_failed naming the channel; earlier frames delivered`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const { conn, ch } = await rawHello(engine, server.group, server.bound);
    const bad = frame(OpCode.Request, "abc");
    bad[2] = 0x0f; // opcode 15
    const good = frame(OpCode.Request, "first", 3n);
    const both = new Uint8Array(good.length + bad.length);
    both.set(good);
    both.set(bad, good.length);
    await writeAll(conn, both);
    const { before, closed } = await untilClosed(server.group, ch);
    assertEquals(before.length, 1);
    expect(before[0]!, OpCode.Request, Status.success, "the good frame");
    assertEquals(new TextDecoder().decode(before[0]!.body.bytes()), "first");
    assertEquals(closed.error?.status, Status.recvFailed);
    assert(
      closed.error!.message.startsWith(`Cannot receive on channel ${ch}: `),
      closed.error!.message,
    );
    conn.close();
  });

  // ---- Posts refused by the channel ------------------------------------------------

  Deno.test(`${t.name}: after a ByeRequest is posted, posts and ready() are refused with the Bye's name`, async () => {
    await using engine = new Engine();
    const { client, ch, conn, listener } = await rawServed(engine, t);
    client.post(make(engine, ch, OpCode.ByeRequest));
    const late = make(engine, ch, OpCode.Request, "late");
    const e = assertThrows(() => client.post(late), TofuError);
    assertEquals(e.status, Status.channelClosed);
    assertEquals(
      e.message,
      `Cannot post Request on channel ${ch}: the channel is closing (ByeRequest already posted)`,
    );
    engine.put(late);
    const r = await assertRejects(() => client.ready(ch), TofuError);
    assertEquals(r.status, Status.channelClosed);
    assertEquals(
      r.message,
      `Cannot wait for room on channel ${ch}: the channel is closing (ByeRequest already posted)`,
    );
    conn.close();
    await untilClosed(client, ch);
    listener.close();
  });

  Deno.test(`${t.name}: maxQueuedBytes: full at exactly the limit; the refusal gives the bytes queued`, async () => {
    const cost = 16 + 100 + 512; // frame plus the per-message overhead
    await using engine = new Engine({ maxQueuedBytes: 3 * cost });
    const { client, ch, conn, listener } = await rawServed(engine, t);
    // All posted in one turn: nothing is written in between.
    for (let i = 0; i < 3; i++) client.post(make(engine, ch, OpCode.Request, "y".repeat(100)));
    const m = make(engine, ch, OpCode.Request, "y".repeat(100));
    const e = assertThrows(() => client.post(m), TofuError);
    assertEquals(e.status, Status.allocationFailed);
    assertEquals(
      e.message,
      `Cannot post Request on channel ${ch}: ${
        3 * cost
      } bytes are already queued on it (maxQueuedBytes ${3 * cost})`,
    );
    engine.put(m);
    conn.close();
    await untilClosed(client, ch);
    listener.close();
  });

  Deno.test(`${t.name}: maxQueuedBytes: an empty channel takes one message larger than the limit`, async () => {
    await using engine = new Engine({ maxQueuedBytes: 100 });
    const { client, ch, conn, listener } = await rawServed(engine, t);
    client.post(make(engine, ch, OpCode.Request, "z".repeat(1000), 4n));
    // The HelloRequest, then the Request of 16 + 1,000 bytes.
    const frames = await readFrames(conn, 2);
    assertEquals(frames[1]!.length, 16 + 1000, "the large frame was written whole");
    conn.close();
    await untilClosed(client, ch);
    listener.close();
  });

  Deno.test(`${t.name}: maxEngineQueuedBytes: a channel within its allowance posts; past it, refused`, async () => {
    const allowance = 64 * 1024;
    await using engine = new Engine({ maxEngineQueuedBytes: 60_000 });
    const a = await rawServed(engine, t);
    const b = await rawServed(engine, t);
    // A fills the engine's budget (an empty engine takes anything), then goes past its own
    // allowance: refused.
    a.client.post(make(engine, a.ch, OpCode.Request, "a".repeat(60_000)));
    const used = 16 + 60_000 + 512;
    const second = make(engine, a.ch, OpCode.Request, "a".repeat(10_000));
    const e = assertThrows(() => a.client.post(second), TofuError);
    assertEquals(e.status, Status.allocationFailed);
    assertEquals(
      e.message,
      `Cannot post Request on channel ${a.ch}: ${used} bytes are already queued in the engine (maxEngineQueuedBytes 60000)`,
    );
    engine.put(second);
    // B may still queue its allowance: exactly 64 KiB of charged bytes, not one more.
    b.client.post(make(engine, b.ch, OpCode.Request, "b".repeat(allowance - 2 * (512 + 16))));
    b.client.post(make(engine, b.ch, OpCode.Request)); // 16 + 512: exactly the allowance
    const over = make(engine, b.ch, OpCode.Request);
    assertThrows(() => b.client.post(over), TofuError, "bytes are already queued in the engine");
    engine.put(over);
    for (const x of [a, b]) {
      x.conn.close();
      await untilClosed(x.client, x.ch);
      x.listener.close();
    }
  });

  // ---- Reports of a closing channel -------------------------------------------------

  Deno.test(`${t.name}: a sender waiting for room is rejected when the channel closes, naming the status`, async () => {
    await using engine = new Engine({
      maxQueuedBytes: 64 * 1024 * 1024,
      maxEngineQueuedBytes: 64 * 1024 * 1024,
    });
    const server = await listen(engine, t);
    const { conn, ch } = await rawHello(engine, server.group, server.bound);
    for (let i = 0; i < 128; i++) {
      server.group.post(make(engine, ch, OpCode.Request, "w".repeat(65535)));
    }
    const waiting = server.group.ready(ch, { lowWaterBytes: 0 });
    conn.close(); // the peer goes away without reading
    const e = await assertRejects(() => waiting, TofuError);
    assertEquals(e.status, Status.channelClosed);
    assert(
      /^Cannot wait for room on channel \d+: the channel closed \((send_failed|peer_disconnected|recv_failed)\)$/
        .test(e.message),
      e.message,
    );
    assert(e.message.includes(`channel ${ch}:`));
    const { before } = await untilClosed(server.group, ch);
    assert(before.length > 0, "unsent messages are handed back");
  });

  Deno.test(`${t.name}: a peer's ByeSignal closes the channel; unsent messages come back with a default error`, async () => {
    await using engine = new Engine({
      maxQueuedBytes: 64 * 1024 * 1024,
      maxEngineQueuedBytes: 64 * 1024 * 1024,
    });
    const server = await listen(engine, t);
    const { conn, ch } = await rawHello(engine, server.group, server.bound, 12n);
    for (let i = 0; i < 256; i++) {
      server.group.post(make(engine, ch, OpCode.Request, "v".repeat(65535)));
    }
    await writeAll(conn, frame(OpCode.ByeSignal, "", 13n));
    const { before, closed } = await untilClosed(server.group, ch);
    const bye = before.shift()!;
    expect(bye, OpCode.ByeSignal, Status.success, "the peer's ByeSignal");
    assert(before.length > 0, "the peer read nothing: messages were left unsent");
    for (const m of before) {
      expect(m, OpCode.Request, Status.channelClosed, "handed back");
      assertEquals(m.error?.message, `Cannot send on channel ${ch}: the channel closed`);
    }
    expectClosed(closed, ch, 12n);
    assertEquals(closed.error, undefined, "a graceful close has no error");
    conn.close();
  });

  Deno.test(`${t.name}: an accepted channel's final report carries the first message's id`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const { conn, ch } = await rawHello(engine, server.group, server.bound, 41n);
    await writeAll(conn, frame(OpCode.Request, "", 42n));
    expect(await recv(server.group), OpCode.Request, Status.success, "request");
    conn.close();
    const { closed } = await untilClosed(server.group, ch);
    expectClosed(closed, ch, 41n);
  });

  Deno.test(`${t.name}: at its share a channel reports pool_empty once, with the exact message`, async () => {
    await using engine = new Engine({ maxChannelHeldMsgs: 2 });
    const server = await listen(engine, t);
    const { conn, ch } = await rawHello(engine, server.group, server.bound);
    for (let i = 0; i < 5; i++) await writeAll(conn, frame(OpCode.Request, `r${i}`, BigInt(i + 2)));
    const held = [await recv(server.group), await recv(server.group)];
    for (const m of held) expect(m, OpCode.Request, Status.success, "request");
    const empty = expect(await recv(server.group), OpCode.Signal, Status.poolEmpty, "pool_empty");
    assertEquals(empty.bhdr.channelNumber, ch);
    assertEquals(
      empty.error?.message,
      `Cannot read channel ${ch}: it holds 2 messages not yet put back (maxChannelHeldMsgs); put messages back to resume`,
    );
    engine.put(empty);
    for (const m of held) engine.put(m);
    // Taken and put back one at a time, the rest come without another pool_empty.
    const rest: string[] = [];
    for (let i = 0; i < 3; i++) {
      const m = expect(await recv(server.group), OpCode.Request, Status.success, "request");
      rest.push(new TextDecoder().decode(m.body.bytes()));
      engine.put(m);
    }
    assertEquals(rest, ["r2", "r3", "r4"]);
    conn.close();
    await untilClosed(server.group, ch);
  });

  // ---- Writes, urgency, limits that must not fire -----------------------------------

  Deno.test(`${t.name}: urgent messages (internalA) are written before normal ones posted earlier`, async () => {
    await using engine = new Engine();
    const { client, ch, conn, listener } = await rawServed(engine, t);
    for (
      const [id, urgent] of [[1n, false], [2n, false], [3n, true], [4n, false], [5n, true]] as const
    ) {
      const m = make(engine, ch, OpCode.Signal, "", id);
      if (urgent) m.bhdr.internalA = 1;
      client.post(m); // one turn: nothing is written in between
    }
    const ids = (await readFrames(conn, 6)).slice(1).map((f) => f[11]); // after the Hello
    assertEquals(ids, [3, 5, 1, 2, 4]);
    conn.close();
    await untilClosed(client, ch);
    listener.close();
  });

  Deno.test(`${t.name}: a sender waiting for room goes on once the peer has read what was queued`, async () => {
    await using engine = new Engine({ maxQueuedBytes: 64 * 1024 * 1024 });
    const { client, ch, conn, listener } = await rawServed(engine, t);
    await client.ready(ch, { lowWaterBytes: 0 }); // nothing queued: room at once
    // 16 MB: more than the socket buffers take while the peer does not read.
    for (let i = 0; i < 256; i++) client.post(make(engine, ch, OpCode.Request, "q".repeat(65_000)));
    let resumed = false;
    const waiting = client.ready(ch, { lowWaterBytes: 0 }).then(() => resumed = true);
    await new Promise((r) => setTimeout(r, 0));
    assertEquals(resumed, false, "16 MB are queued");
    await readFrames(conn, 257); // the Hello and the 256 Requests
    await waiting;
    assert(resumed);
    conn.close();
    await untilClosed(client, ch);
    listener.close();
  });

  Deno.test(`${t.name}: handshake and write-stall limits do not fire once the handshake is done and writes go through`, async () => {
    await using engine = new Engine({ handshakeTimeoutMs: 100, writeStallTimeoutMs: 100 });
    const server = await listen(engine, t);
    const { conn, ch } = await rawHello(engine, server.group, server.bound);
    server.group.post(make(engine, ch, OpCode.Request, "one", 1n));
    await readFrames(conn, 1);
    // Four times both limits: a pause, not a measurement.
    await new Promise((r) => setTimeout(r, 400));
    assertEquals(server.group.tryReceive(), null, "the channel is still open");
    server.group.post(make(engine, ch, OpCode.Request, "two", 2n));
    await readFrames(conn, 1);
    await writeAll(conn, frame(OpCode.Request, "back", 3n));
    expect(await recv(server.group), OpCode.Request, Status.success, "a frame from the peer");
    conn.close();
    await untilClosed(server.group, ch);
  });

  Deno.test(`${t.name}: a peer cannot forge origin, status or the local flags`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const { conn, ch } = await rawHello(engine, server.group, server.bound);
    const f = frame(OpCode.Request, "forged", 8n);
    f[2] = OpCode.Request | 0x10 | 0x40 | 0x80; // origin, internalA, internalB
    f[3] = Status.channelClosed;
    f[0] = 0x12; // a channel number of the peer's choosing
    f[1] = 0x34;
    await writeAll(conn, f);
    const m = expect(await recv(server.group), OpCode.Request, Status.success, "forged");
    assertEquals(
      [m.bhdr.origin, m.bhdr.internalA, m.bhdr.internalB, m.bhdr.channelNumber],
      [0, 0, 0, ch],
    );
    assertEquals(m.isFromEngine(), false);
    conn.close();
    await untilClosed(server.group, ch);
  });

  Deno.test(`${t.name}: a reader held back at its share reports each episode once and ends on an abort`, async () => {
    await using engine = new Engine({ maxChannelHeldMsgs: 1 });
    const server = await listen(engine, t);
    const { conn, ch } = await rawHello(engine, server.group, server.bound);
    await writeAll(conn, frame(OpCode.Request, "a", 2n));
    await writeAll(conn, frame(OpCode.Request, "b", 3n));
    const a = expect(await recv(server.group), OpCode.Request, Status.success, "a");
    const e1 = expect(await recv(server.group), OpCode.Signal, Status.poolEmpty, "first episode");
    engine.put(e1);
    engine.put(a); // resumes the reader: it reads b and catches up with the socket
    const b = expect(await recv(server.group), OpCode.Request, Status.success, "b");
    await writeAll(conn, frame(OpCode.Request, "c", 4n));
    expect(await recv(server.group), OpCode.Signal, Status.poolEmpty, "second episode");
    // Held back (b is not put back), the channel is aborted: the waiting reader ends and
    // the final report comes.
    server.group.post(makeAbort(engine, ch));
    const { before, closed } = await untilClosed(server.group, ch);
    assertEquals(before.map((m) => m.bhdr.opCode), [OpCode.ByeSignal]);
    expectClosed(closed, ch, 1n);
    engine.put(b);
    conn.close();
  });

  for (const op of [OpCode.ByeResponse, OpCode.ByeSignal]) {
    const name = op === OpCode.ByeResponse ? "ByeResponse" : "ByeSignal";
    Deno.test(`${t.name}: after a ${name} is posted, further posts are refused`, async () => {
      await using engine = new Engine();
      const { client, ch, conn, listener } = await rawServed(engine, t);
      client.post(make(engine, ch, op, "", 5n));
      const late = make(engine, ch, OpCode.Request, "late");
      const e = assertThrows(() => client.post(late), TofuError);
      assertEquals(
        e.message,
        `Cannot post Request on channel ${ch}: the channel is closing (${name} already posted)`,
      );
      engine.put(late);
      // Written, the Bye closes the channel gracefully.
      const { closed } = await untilClosed(client, ch);
      assertEquals(closed.error, undefined);
      conn.close();
      listener.close();
    });
  }
}
