// A channel closes once its peer's ByeRequest is answered. Found by the hostile-tester
// helper: a ByeRequest with message id 0 or with `more` set made the answer (the same
// message as a ByeResponse) one that posting refuses, so it was dropped; the channel stayed
// "closing" for good, requests failed with "the channel is closed", and close() waited for
// a close that never came. Now such a ByeRequest aborts the connection (the peer broke the
// protocol, as with a Request of id 0), and close() on a closing channel is bounded like
// close() on an open one: two seconds, then an abort.

import { assert, assertEquals } from "@std/assert";
import { deadline } from "@std/async/deadline";
import { concat } from "@std/bytes/concat";
import { type Channel, connect, Engine, Message, OpCode, Status, type TofuError } from "../mod.ts";
import { encodeFrame } from "../mod.ts";
import { transports, writeAll } from "./_fixtures.ts";
import { rawListen } from "./_raw_peer.ts";

function frame(op: number, id: bigint, more: 0 | 1 = 0): Uint8Array {
  const m = new Message();
  m.bhdr.opCode = op;
  m.bhdr.messageId = id;
  m.bhdr.more = more;
  return encodeFrame(m);
}

/** Reads and drops everything from `conn` until it ends. */
async function drain(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(65536);
  try {
    while (await conn.read(buf) !== null);
  } catch {
    // reset: ended too
  }
}

for (const t of transports) {
  for (
    const [what, bye, status] of [
      ["message id 0", frame(OpCode.ByeRequest, 0n), Status.invalidMessageId],
      ["more set", frame(OpCode.ByeRequest, 9n, 1), Status.invalidMoreUsage],
    ] as const
  ) {
    Deno.test(`${t.name}: a peer's ByeRequest with ${what} ends the channel; close() returns`, async () => {
      const { listener, bound } = rawListen(t);
      let conn: Deno.Conn | undefined;
      const served = (async () => {
        conn = await listener.accept();
        await conn.read(new Uint8Array(4096)); // the HelloRequest
        await writeAll(conn, concat([frame(OpCode.HelloResponse, 1n), bye]));
        await drain(conn); // reads on and never closes first
      })();
      let ch: Channel | undefined;
      try {
        ch = await connect(bound, { timeoutMs: 10_000 });
        // Before: the channel stayed "closing" and close() never returned.
        assertEquals(await deadline(ch.closed, 10_000), status);
        await deadline(ch.close(), 10_000);
      } finally {
        ch?.abort();
        conn?.close();
        listener.close();
        await served.catch(() => {});
      }
    });
  }

  Deno.test(`${t.name}: close() of a channel whose ByeResponse cannot be written returns after its grace`, async () => {
    // The peer sends a ByeRequest and then reads nothing: the ByeResponse waits behind
    // megabytes the socket will not take, and the write-stall limit is off.
    await using engine = new Engine({ writeStallTimeoutMs: 0 });
    const { listener, bound } = rawListen(t);
    let peer: Deno.Conn | undefined;
    const accepted = (async () => {
      peer = await listener.accept();
      await peer.read(new Uint8Array(4096)); // the HelloRequest
      await writeAll(peer, frame(OpCode.HelloResponse, 1n));
    })();
    try {
      const ch = await connect(bound, { engine });
      await accepted;
      const big = new Uint8Array(60_000);
      // Until the socket and the send queue are full (a send gives up after 300 ms).
      for (;;) {
        const full = await ch.send(big, { timeoutMs: 300 }).then(() => false, (e: TofuError) => {
          assertEquals(e.status, Status.communicationFailed);
          return true;
        });
        if (full) break;
      }
      await writeAll(peer!, frame(OpCode.ByeRequest, 5n));
      await new Promise((r) => setTimeout(r, 100)); // the ByeRequest is read and answered
      assert(!ch.isOpen, "closing");
      const started = performance.now();
      // Before: close() waited for the ByeResponse to be written, that is for ever.
      await deadline(ch.close(), 10_000);
      const took = performance.now() - started;
      assert(took >= 1_500, `close() returned after ${took.toFixed(0)} ms, before its grace`);
      assertEquals(await ch.closed, Status.channelClosed, "aborted after the grace");
    } finally {
      peer?.close();
      listener.close();
    }
  });
}
