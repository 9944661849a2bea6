// Tests that kill mutants of src/_io_channel.ts the rest of the suite let survive (issue #13,
// docs/testing.md "mut-io"). Each runs over TCP and Unix sockets against a hand-driven peer (a
// plain socket), fails with its mutation applied to src/_io_channel.ts and passes without it;
// the mutation is named above each test. Waits for something that must happen have generous
// bounds; nothing asserts how long anything took.

import { assertEquals, assertThrows } from "@std/assert";
import { concat } from "@std/bytes/concat";
import { Engine, OpCode, Status, TofuError } from "../mod.ts";
import {
  expect,
  expectClosed,
  listen,
  make,
  makeAbort,
  readToEnd,
  transports,
  writeAll,
} from "./_fixtures.ts";
import { frame } from "./_attack.ts";
import { rawHello, rawListen, rawServed, readFrames, untilClosed } from "./_raw_peer.ts";

/** `p`, or a failure naming `what` after `ms` (a bound for something that must happen). */
async function within<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
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
    const next = make(engine, ch, OpCode.Request); // the same turn: nothing written yet
    const e = assertThrows(() => client.post(next), TofuError);
    assertEquals(e.status, Status.allocationFailed);
    assertEquals(
      e.message,
      `Cannot post Request on channel ${ch}: 66063 bytes are already queued in the engine (maxEngineQueuedBytes 60000)`,
    );
    engine.put(next);
    const frames = await readFrames(conn, 2);
    assertEquals([frames[1]!.length, frames[1]![11]], [16 + 65535, 7]);
    conn.close();
    await untilClosed(client, ch);
    listener.close();
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
    const over = make(engine, ch, OpCode.Request);
    const e = assertThrows(() => client.post(over), TofuError);
    assertEquals(
      e.message,
      `Cannot post Request on channel ${ch}: 100000 bytes are already queued in the engine (maxEngineQueuedBytes 100000)`,
    );
    engine.put(over);
    const frames = await readFrames(conn, 3);
    assertEquals(frames.slice(1).map((f) => [f.length, f[11]]), [[16 + 60_000, 1], [
      16 + 38_944,
      2,
    ]]);
    conn.close();
    await untilClosed(client, ch);
    listener.close();
  });

  // Mutations (line 217): attach()'s `if (this.#closed)` made `false`, or its block emptied.
  // A connect that completes after the channel was aborted must close the new socket at
  // once: nothing is written on it, and the peer sees its end.
  Deno.test(`${t.name}: a connect completing after an abort closes its socket at once`, async () => {
    const { listener, bound } = rawListen(t);
    await using engine = new Engine();
    const client = engine.create();
    const hello = engine.get("always")!;
    hello.bhdr.opCode = OpCode.HelloRequest;
    hello.bhdr.messageId = 21n;
    hello.headers.append("~connect_to", bound);
    const { channelNumber: ch } = client.post(hello);
    client.post(makeAbort(engine, ch)); // the connect is still under way
    const { before, closed } = await untilClosed(client, ch);
    assertEquals(before.map((m) => [m.bhdr.opCode, m.bhdr.status]), [
      [OpCode.ByeSignal, Status.channelClosed],
      [OpCode.HelloRequest, Status.channelClosed],
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
    const server = await listen(engine, t);
    const { conn, ch } = await rawHello(engine, server.group, server.bound, 1n);
    await writeAll(
      conn,
      concat([
        frame(OpCode.Request, "a", 2n),
        frame(OpCode.Request, "b", 3n),
        frame(OpCode.Request, "c", 4n),
        frame(OpCode.ByeSignal, "", 5n),
      ]),
    );
    // Nothing is received yet: the engine must read all four frames on its own.
    assertEquals(await within(readToEnd(conn), "the end of the socket"), 0);
    const { before, closed } = await untilClosed(server.group, ch);
    assertEquals(before.map((m) => Number(m.bhdr.messageId)), [2, 3, 4, 5]);
    expect(before[3]!, OpCode.ByeSignal, Status.success, "the peer's ByeSignal");
    expectClosed(closed, ch, 1n);
    conn.close();
  });
}
