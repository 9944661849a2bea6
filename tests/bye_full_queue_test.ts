// A full send queue must not keep a channel from closing: the Byes are the way out of it.
// Each test fills a channel's send queue to its budget against a raw peer that does not
// read, then posts a Bye, then lets the peer read: every queued frame must come, then the
// Bye, then the end of the stream, and the engine reports the channel closed.

import { assert, assertEquals } from "@std/assert";
import { deadline } from "@std/async/deadline";
import { delay } from "@std/async/delay";
import { concat } from "@std/bytes/concat";
import {
  type Channel,
  type ChannelGroup,
  Engine,
  listen,
  type Message,
  OpCode,
  Status,
  TofuError,
} from "../mod.ts";
import { tempUdsPath } from "../testing.ts";
import {
  expect,
  make,
  rawConnect,
  recv,
  type SocketTransport,
  transports,
  writeAll,
} from "./_fixtures.ts";
import { frame } from "./_attack.ts";
import { rawServed, readFrames, untilClosed } from "./_raw_peer.ts";

/**
 * Posts Signals on `ch` until the channel refuses even one without a body, after the
 * writer had time to hand what it could to the kernel (whose buffers the peer does not
 * empty): bodies of 60,000 bytes first, then smaller ones to fill what is left. Returns
 * the body sizes accepted, in order.
 */
async function fillQueue(engine: Engine, group: ChannelGroup, ch: number): Promise<number[]> {
  const sizes: number[] = [];
  for (const size of [60_000, 2_000, 0]) {
    let refusedInARow = 0;
    while (refusedInARow < 3) {
      const m = make(engine, ch, OpCode.Signal, "x".repeat(size), BigInt(sizes.length + 2));
      try {
        group.post(m);
        sizes.push(size);
        refusedInARow = 0;
      } catch (err) {
        engine.put(m);
        if (!(err instanceof TofuError)) throw err;
        assertEquals(err.status, Status.allocationFailed, err.message);
        refusedInARow++;
        await delay(50);
      }
      assert(sizes.length < 100_000, "the queue never filled");
    }
  }
  return sizes;
}

/** Reads the HelloRequest, the Signals of `sizes` and then one frame of `op`. */
async function expectDrainedThen(conn: Deno.Conn, sizes: number[], op: number): Promise<void> {
  // The engine's HelloRequest is still unread on the raw peer's socket.
  const [hello, ...frames] = await readFrames(conn, 1 + sizes.length + 1);
  assertEquals(hello![2]! & 0x0f, OpCode.HelloRequest);
  const bye = frames.pop()!;
  assertEquals(
    frames.map((f) => [f[2]! & 0x0f, f.length - 16]),
    sizes.map((size) => [OpCode.Signal, size]),
  );
  assertEquals(bye[2]! & 0x0f, op, "the Bye comes after every queued frame");
}

/** Asserts that the engine ends the raw peer's stream (within 10 s) with nothing more. */
async function expectEnd(conn: Deno.Conn): Promise<void> {
  assertEquals(await deadline(conn.read(new Uint8Array(64)), 10_000), null);
}

/**
 * The peer sends a ByeRequest while the channel's queue is full (by the budgets of
 * `options`); the application answers with a ByeResponse, which must go out after
 * everything queued, and then the engine closes the channel.
 */
async function answerByeWhileFull(
  t: SocketTransport,
  options: { maxQueuedBytes: number; maxEngineQueuedBytes?: number },
): Promise<void> {
  await using engine = new Engine(options);
  const { client, ch, conn, listener } = await rawServed(engine, t);
  try {
    const sizes = await fillQueue(engine, client, ch);
    await writeAll(conn, frame(OpCode.ByeRequest, "", 9n));
    const bye: Message = expect(await recv(client), OpCode.ByeRequest, Status.success);
    bye.bhdr.opCode = OpCode.ByeResponse;
    client.post(bye); // before: allocation_failed, and the channel stayed open
    await expectDrainedThen(conn, sizes, OpCode.ByeResponse);
    await expectEnd(conn);
    const { before, closed } = await untilClosed(client, ch);
    assertEquals(before.length, 0, "no message of the channel was handed back");
    assertEquals(closed.bhdr.channelNumber, ch);
  } finally {
    conn.close();
    listener.close();
  }
}

for (const t of transports) {
  Deno.test(`${t.name}: a ByeResponse is accepted while the send queue is full`, async () => {
    await answerByeWhileFull(t, { maxQueuedBytes: 256 * 1024 });
  });

  Deno.test(`${t.name}: a ByeResponse is accepted while the engine's queued bytes are at their budget`, async () => {
    // One channel's budget is larger than the engine's: the engine-wide budget refuses.
    await answerByeWhileFull(t, { maxQueuedBytes: 16 << 20, maxEngineQueuedBytes: 256 * 1024 });
  });

  Deno.test(`${t.name}: a ByeRequest is accepted while the send queue is full`, async () => {
    await using engine = new Engine({ maxQueuedBytes: 256 * 1024 });
    const { client, ch, conn, listener } = await rawServed(engine, t);
    try {
      const sizes = await fillQueue(engine, client, ch);
      client.post(make(engine, ch, OpCode.ByeRequest)); // before: allocation_failed
      await expectDrainedThen(conn, sizes, OpCode.ByeRequest);
      // The peer answers; the engine closes the channel.
      await writeAll(conn, frame(OpCode.ByeResponse));
      expect(await recv(client), OpCode.ByeResponse, Status.success);
      await expectEnd(conn);
      const { closed } = await untilClosed(client, ch);
      assertEquals(closed.bhdr.channelNumber, ch);
    } finally {
      conn.close();
      listener.close();
    }
  });

  Deno.test(`${t.name}: after its Bye a full channel still refuses other messages`, async () => {
    await using engine = new Engine({ maxQueuedBytes: 256 * 1024 });
    const { client, ch, conn, listener } = await rawServed(engine, t);
    try {
      const sizes = await fillQueue(engine, client, ch);
      client.post(make(engine, ch, OpCode.ByeRequest));
      // A second Bye and more data are refused as on any closing channel.
      for (const op of [OpCode.ByeRequest, OpCode.Signal]) {
        const m = make(engine, ch, op);
        try {
          client.post(m);
          throw new Error(`op ${op} was accepted after the ByeRequest`);
        } catch (err) {
          if (!(err instanceof TofuError)) throw err;
          assertEquals(err.status, Status.channelClosed, err.message);
          engine.put(m);
        }
      }
      await expectDrainedThen(conn, sizes, OpCode.ByeRequest);
    } finally {
      conn.close();
      listener.close();
    }
  });
}

// The Peers layer answers a peer's ByeRequest itself: its ByeResponse was refused too, and
// the channel stayed "closing" until the write-stall limit closed the connection.
for (const t of transports) {
  Deno.test(`${t.name}: an accepted Channel answers a ByeRequest that comes while its queue is full`, async () => {
    await using engine = new Engine({ maxQueuedBytes: 256 * 1024 });
    await using listener = await listen(
      t.name === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`,
      { engine },
    );
    const conn = await rawConnect(listener.address) as Deno.Conn;
    try {
      const requests = 3_000;
      await writeAll(conn, frame(OpCode.HelloRequest, "", 1n));
      await writeAll(
        conn,
        concat(
          Array.from({ length: requests }, (_, i) => frame(OpCode.Request, "q", BigInt(i + 2))),
        ),
      );
      const peer: Channel = (await listener[Symbol.asyncIterator]().next()).value;
      const incoming = peer[Symbol.asyncIterator]();
      // Send until even an empty Signal finds no room in time (the peer reads nothing yet).
      // (Responses were refused for room at once before answers waited for room; a send
      // with a timeout gives up the same way.)
      const sizes: number[] = [];
      let taken = 0;
      for (const size of [60_000, 2_000, 0]) {
        for (let refusedInARow = 0; refusedInARow < 3;) {
          assert(taken < requests, "the queue never filled");
          using _req = (await incoming.next()).value as Message;
          taken++;
          try {
            await peer.send("x".repeat(size), { timeoutMs: 100 });
            sizes.push(size);
            refusedInARow = 0;
          } catch (err) {
            if (!(err instanceof TofuError)) throw err;
            assertEquals(err.status, Status.communicationFailed, err.message);
            refusedInARow++;
          }
        }
      }
      // The application reads on without answering, so the ByeRequest behind the requests
      // left is read too (a channel that holds its share of messages stops reading).
      const unanswered = (async () => {
        for (let r = await incoming.next(); !r.done; r = await incoming.next()) {
          r.value[Symbol.dispose]();
        }
      })();
      await writeAll(conn, frame(OpCode.ByeRequest, "", 99_999n));
      const [hello, ...frames] = await readFrames(conn, 1 + sizes.length + 1);
      assertEquals(hello![2]! & 0x0f, OpCode.HelloResponse);
      const bye = frames.pop()!;
      assertEquals(
        frames.map((f) => [f[2]! & 0x0f, f.length - 16]),
        sizes.map((size) => [OpCode.Signal, size]),
      );
      assertEquals(bye[2]! & 0x0f, OpCode.ByeResponse, "before: no ByeResponse came");
      await expectEnd(conn);
      assertEquals(await deadline(peer.closed, 10_000), Status.success);
      await unanswered;
    } finally {
      conn.close();
    }
  });
}
