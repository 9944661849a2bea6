// Receiving large frames (over 16 KiB) that arrive in pieces, over TCP and Unix sockets.
// Once a large frame's header and text headers are in, the reader decodes it into a pool
// message and copies the rest of its body into that message as it is read (src/codec.ts,
// spillFrame), instead of keeping the partial frame in the decoder's buffer. These tests
// pin what must not change: the bytes, the order, the accounting of the read share and of
// the pool, and every way a channel can end inside such a frame (peer EOF, frame timeout,
// the application's abort). Pauses only give the reader a chance to see a partial frame;
// nothing asserts how long anything took.

import { assert, assertEquals } from "@std/assert";
import { concat } from "@std/bytes/concat";
import { delay } from "@std/async/delay";
import { encodeFrame, Engine, Message, OpCode, Status } from "../mod.ts";
import {
  expect,
  expectClosed,
  listen,
  makeAbort,
  recv,
  transports,
  writeAll,
} from "./_fixtures.ts";
import { rawHello, untilClosed } from "./_raw_peer.ts";

const BODY = 65535;

/** Body byte `i` of frame `seed`: every frame's bytes differ from every other's. */
function pattern(seed: number, n = BODY): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed * 13 + (i >> 8)) & 0xff;
  return b;
}

function largeFrame(id: bigint, seed: number, n = BODY): Uint8Array {
  const m = new Message();
  m.bhdr.opCode = OpCode.Request;
  m.bhdr.messageId = id;
  m.headers.append("x-seed", String(seed));
  m.body.set(pattern(seed, n));
  return encodeFrame(m);
}

function smallFrame(id: bigint, text: string): Uint8Array {
  const m = new Message();
  m.bhdr.opCode = OpCode.Request;
  m.bhdr.messageId = id;
  m.body.set(text);
  return encodeFrame(m);
}

function expectLarge(m: Message, id: bigint, seed: number, n = BODY): void {
  expect(m, OpCode.Request, Status.success, `large frame ${id}`);
  assertEquals(m.bhdr.messageId, id);
  assertEquals(m.headers.get("x-seed"), String(seed));
  assertEquals(m.body.byteLength, n);
  assertEquals(m.body.bytes(), pattern(seed, n), `the body of frame ${id}, byte for byte`);
}

for (const t of transports) {
  Deno.test(`${t.name}: large frames written in pieces with pauses arrive intact and in order`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const { conn, ch } = await rawHello(engine, server.group, server.bound, 1n);
    const pool = engine.poolSize;
    // Frame 2 in 1,000-byte pieces (the first cuts its text headers), then the tail of
    // frame 2, all of frame 3 (a 20,000-byte body), the start of frame 4 and a small
    // frame's worth of it in one write, then the rest of frame 4 and a small frame 5.
    const f2 = largeFrame(2n, 2);
    const f3 = largeFrame(3n, 3, 20_000);
    const f4 = largeFrame(4n, 4);
    const f5 = smallFrame(5n, "after");
    let off = 0;
    for (; off < 30_000; off += 1000) {
      await writeAll(conn, f2.subarray(off, off + 1000));
      if (off % 10_000 === 0) await delay(20);
    }
    await writeAll(conn, concat([f2.subarray(off), f3, f4.subarray(0, 40_000)]));
    await delay(50);
    await writeAll(conn, concat([f4.subarray(40_000), f5]));
    const got = [await recv(server.group), await recv(server.group), await recv(server.group)];
    expectLarge(got[0]!, 2n, 2);
    expectLarge(got[1]!, 3n, 3, 20_000);
    expectLarge(got[2]!, 4n, 4);
    const last = expect(await recv(server.group), OpCode.Request, Status.success, "frame 5");
    assertEquals([last.bhdr.messageId, last.body.text()], [5n, "after"]);
    for (const m of [...got, last]) assertEquals(m.bhdr.channelNumber, ch);
    for (const m of [...got, last]) engine.put(m);
    assertEquals(engine.poolSize, pool, "every message read came back to the pool");
    conn.close();
  });

  Deno.test(`${t.name}: a peer that closes inside a large frame's body: recv_failed with the bytes received, its message back in the pool`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const { conn, ch } = await rawHello(engine, server.group, server.bound, 6n);
    const pool = engine.poolSize;
    const f = largeFrame(7n, 7);
    await writeAll(conn, f.subarray(0, 20_000));
    await delay(50);
    await writeAll(conn, f.subarray(20_000, 40_000));
    await delay(50);
    conn.close();
    const { before, closed } = await untilClosed(server.group, ch);
    assertEquals(before.length, 0);
    expectClosed(closed, ch, 6n);
    assertEquals(closed.error?.status, Status.recvFailed);
    assertEquals(
      closed.error?.message,
      `Cannot receive on channel ${ch}: the peer closed the connection inside a frame (40000 bytes of it received)`,
    );
    assertEquals(engine.poolSize, pool, "the message of the cut frame came back to the pool");
  });

  Deno.test(`${t.name}: frame timeout on a stalled large body: recv_failed, its message back in the pool`, async () => {
    await using engine = new Engine({ frameTimeoutMs: 150 });
    const server = await listen(engine, t);
    const { conn, ch } = await rawHello(engine, server.group, server.bound, 8n);
    const pool = engine.poolSize;
    const f = largeFrame(9n, 9);
    await writeAll(conn, f.subarray(0, 30_000));
    const { before, closed } = await untilClosed(server.group, ch);
    assertEquals(before.length, 0);
    expectClosed(closed, ch, 8n);
    assertEquals(
      [closed.error?.status, closed.error?.message],
      [
        Status.recvFailed,
        `Cannot receive on channel ${ch}: a frame did not complete within 150 ms (frameTimeoutMs)`,
      ],
    );
    assertEquals(engine.poolSize, pool, "the message of the stalled frame came back to the pool");
    conn.close();
  });

  Deno.test(`${t.name}: a channel aborted inside a large frame's body reports as before, its message back in the pool`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const { conn, ch } = await rawHello(engine, server.group, server.bound, 10n);
    const pool = engine.poolSize;
    const f = largeFrame(11n, 11);
    await writeAll(conn, f.subarray(0, 30_000));
    await delay(50);
    server.group.post(makeAbort(engine, ch));
    const { before, closed } = await untilClosed(server.group, ch);
    assertEquals(before.length, 1, "only the abort comes back");
    expect(before[0]!, OpCode.ByeSignal, Status.channelClosed, "the abort");
    engine.put(before[0]!);
    expectClosed(closed, ch, 10n);
    assertEquals(closed.error?.status, Status.channelClosed);
    assertEquals(
      closed.error?.message,
      `Cannot send on channel ${ch}: the application aborted it`,
    );
    assertEquals(engine.poolSize, pool, "the message of the cut frame came back to the pool");
    // The peer may still write: nothing more is read.
    await writeAll(conn, f.subarray(30_000)).catch(() => {});
    conn.close();
  });

  Deno.test(`${t.name}: a channel at its read share keeps a large partial frame until a message comes back`, async () => {
    await using engine = new Engine({ maxChannelHeldMsgs: 1 });
    const server = await listen(engine, t);
    const { conn, ch } = await rawHello(engine, server.group, server.bound, 12n);
    await writeAll(conn, smallFrame(13n, "held"));
    const held = expect(await recv(server.group), OpCode.Request, Status.success, "held");
    const f = largeFrame(14n, 14);
    await writeAll(conn, f.subarray(0, 30_000));
    await delay(50);
    await writeAll(conn, f.subarray(30_000));
    const early = await server.group.waitReceive(100);
    assert(early === null || early.bhdr.opCode === OpCode.Signal, "nothing read past the share");
    if (early !== null) {
      expect(early, OpCode.Signal, Status.poolEmpty, "the share is used up");
      assertEquals(early.bhdr.channelNumber, ch);
    }
    engine.put(held);
    expectLarge(await recv(server.group), 14n, 14);
    conn.close();
  });
}
