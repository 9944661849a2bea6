// Hostile peers against a listening engine: garbage, truncation, stalls, floods and
// connect-and-drop storms. The engine must keep serving a well-behaved client, report
// every bad channel as closed, and keep its memory bounded.

import { assert, assertEquals } from "@std/assert";
import { delay } from "@std/async/delay";
import { encodeFrame, Engine, type Message, OpCode, Status } from "../mod.ts";
import {
  connect,
  lifecycleTransports,
  type Link,
  listen,
  make,
  type RawConn,
  rawConnect,
  readToEnd,
  recv,
  type Server,
  writeAll,
} from "./_fixtures.ts";
import { seededRandom } from "../tools/_rng.ts";

/** The well-behaved client still gets an echo through the same server. */
async function assertServed(engine: Engine, server: Server, link: Link, text: string) {
  link.client.post(make(engine, link.clientCh, OpCode.Request, text));
  for (;;) {
    const m = await recv(server.group);
    if (m.bhdr.opCode === OpCode.Request && m.bhdr.channelNumber === link.serverCh) {
      assertEquals(m.body.text(), text);
      engine.put(m);
      return;
    }
    engine.put(m); // reports about the hostile channels
  }
}

/** Collects server reports until `count` channel_closed Signals for hostile channels. */
async function closedSignals(engine: Engine, server: Server, count: number): Promise<Message[]> {
  const out: Message[] = [];
  while (out.length < count) {
    const m = await recv(server.group, 10_000);
    if (
      m.isFromEngine() && m.bhdr.opCode === OpCode.Signal && m.bhdr.status === Status.channelClosed
    ) {
      out.push(m);
    } else engine.put(m);
  }
  return out;
}

for (const t of lifecycleTransports) {
  Deno.test(`${t.name}: random bytes from 20 peers close only their channels`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const good = await connect(engine, t, server);
    const rand = seededRandom(20261121);
    const conns: RawConn[] = [];
    for (let i = 0; i < 20; i++) {
      const conn = await rawConnect(server.bound);
      // Opcode 15 in the first header guarantees the stream is invalid.
      const junk = new Uint8Array(64 + Math.floor(rand() * 4000));
      for (let k = 0; k < junk.length; k++) junk[k] = Math.floor(rand() * 256);
      junk[2] = 0x0f;
      await writeAll(conn, junk).catch(() => 0);
      conns.push(conn);
    }
    const closed = await closedSignals(engine, server, 20);
    for (const m of closed) assertEquals(m.error?.status, Status.recvFailed, m.error?.message);
    for (const c of conns) {
      assertEquals(await readToEnd(c), 0, "the engine closed the socket");
      c.close();
    }
    await assertServed(engine, server, good, "still here after garbage");
    assertEquals(engine.channelCount, 3, "listener + the good pair");
  });

  Deno.test(`${t.name}: truncated headers, stalled and slow senders`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const good = await connect(engine, t, server);
    const frame = encodeFrame(make(engine, 1, OpCode.Request, "x".repeat(1000), 99n));

    // A header cut short, then the peer leaves.
    const cut = await rawConnect(server.bound);
    await writeAll(cut, frame.subarray(0, 9));
    cut.close();
    const [c1] = await closedSignals(engine, server, 1);
    assertEquals(c1!.error?.status, Status.recvFailed);

    // A header announcing a body that never comes: the engine keeps serving others.
    const stalled = await rawConnect(server.bound);
    await writeAll(stalled, frame.subarray(0, 500));
    await delay(200);
    await assertServed(engine, server, good, "not blocked by a stalled peer");

    // A slow sender, a few bytes at a time: the frame arrives whole.
    const slow = await rawConnect(server.bound);
    for (let i = 0; i < frame.length; i += 97) {
      await writeAll(slow, frame.subarray(i, i + 97));
      if (i % 485 === 0) await delay(2);
    }
    for (;;) {
      const m = await recv(server.group);
      if (m.bhdr.opCode === OpCode.Request && m.bhdr.messageId === 99n) {
        assertEquals(m.body.byteLength, 1000);
        break;
      }
      engine.put(m);
    }

    // When the stalled peer finally leaves, its channel is reported with recv_failed.
    stalled.close();
    const [c2] = await closedSignals(engine, server, 1);
    assertEquals(c2!.error?.status, Status.recvFailed);
    assert(c2!.error?.message.includes("inside a frame"), c2!.error?.message);
    slow.close();
    await closedSignals(engine, server, 1);
  });

  Deno.test(`${t.name}: every opcode that must not arrive closes its channel`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const protos = [10, 11, 12, 13, 14, 15, OpCode.WelcomeRequest, OpCode.WelcomeResponse, 0x47];
    for (const proto of protos) {
      const conn = await rawConnect(server.bound);
      const bytes = encodeFrame(make(engine, 3, OpCode.Signal, "bad", 5n));
      bytes[2] = proto;
      await writeAll(conn, bytes);
      const [m] = await closedSignals(engine, server, 1);
      assertEquals(m!.error?.status, Status.recvFailed, `proto ${proto}`);
      conn.close();
    }
    assertEquals(engine.channelCount, 1);
  });

  Deno.test(`${t.name}: a flood of 65,535-byte frames is received whole, memory bounded`, async () => {
    await using engine = new Engine({ initialPoolMsgs: 16, maxPoolMsgs: 32 });
    const server = await listen(engine, t);
    const good = await connect(engine, t, server);
    const big = make(engine, 1, OpCode.Signal, "", 1n);
    big.body.set(new Uint8Array(65535).fill(0xab));
    big.headers.append("k", "v".repeat(60000));
    const frame = encodeFrame(big);
    const count = 300; // ~37 MiB
    const flooder = await rawConnect(server.bound);
    const writing = (async () => {
      for (let i = 0; i < count; i++) await writeAll(flooder, frame);
    })();
    const rss0 = Deno.memoryUsage().rss;
    let got = 0;
    let peak = 0;
    while (got < count) {
      const m = await recv(server.group, 10_000);
      if (m.bhdr.opCode === OpCode.Signal && m.isFromApplication()) {
        assertEquals(m.body.byteLength, 65535);
        assertEquals(m.body.bytes()[65534], 0xab);
        got++;
      }
      engine.put(m);
      if (got % 50 === 0) peak = Math.max(peak, Deno.memoryUsage().rss - rss0);
    }
    await writing;
    flooder.close();
    await assertServed(engine, server, good, "served after the flood");
    // 37 MiB went through; the engine holds a bounded pool, not the flood.
    assert(peak < 200 * 2 ** 20, `RSS grew by ${(peak / 2 ** 20).toFixed(0)} MiB`);
  });

  Deno.test(`${t.name}: a storm of 1,000 connect-and-drop peers leaves the engine clean`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const good = await connect(engine, t, server);
    const rss0 = Deno.memoryUsage().rss;
    const total = 1000;
    let signals = 0;
    const counting = (async () => {
      while (signals < total) {
        const m = await recv(server.group, 20_000);
        if (m.isFromEngine() && m.bhdr.status === Status.channelClosed) signals++;
        engine.put(m);
      }
    })();
    for (let batch = 0; batch < total / 100; batch++) {
      const conns = await Promise.all(Array.from({ length: 100 }, () => rawConnect(server.bound)));
      for (const c of conns) c.close();
    }
    await counting;
    assertEquals(signals, total, "one channel_closed per dropped connection");
    assertEquals(engine.channelCount, 3, "every dropped channel was released");
    await assertServed(engine, server, good, "served after the storm");
    const grown = Deno.memoryUsage().rss - rss0;
    assert(grown < 100 * 2 ** 20, `RSS grew by ${(grown / 2 ** 20).toFixed(0)} MiB`);
  });
}
