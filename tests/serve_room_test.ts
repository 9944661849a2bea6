// serve() drops a peer whose answers cannot be queued (it does not read them): the post of
// the answer is refused with `allocation_failed`. It told that case apart by the status
// alone, so a handler that failed with `allocation_failed` for a reason of its own (a
// backend that does not read, a limit of the application's) cost the requesting peer its
// channel, and every other request in flight on it, instead of an error answer. Found by
// the hostile-tester helper.

import { assert, assertEquals } from "@std/assert";
import { type Channel, connect, Engine, serve, Status, TofuError } from "../mod.ts";
import { transports } from "./_fixtures.ts";
import { silentListener } from "./_raw_peer.ts";

/**
 * Asks `body` and "slow" at once; each outcome as text: the answer's body, or
 * "rejected STATUS: MESSAGE" (the message after the library's prefix).
 */
function askBoth(ch: Channel, body: string): Promise<[string, string]> {
  const ask = (b: string) =>
    ch.request(b, { timeoutMs: 10_000 }).then(
      (m) => {
        using answer = m;
        return answer.body.text();
      },
      (e: TofuError) =>
        `rejected ${e.status}: ${
          e.message.replace(/^Cannot complete request: the peer failed: /, "")
        }`,
    );
  return Promise.all([ask(body), ask("slow")]);
}

for (const t of transports) {
  Deno.test(`${t.name}: serve(): a handler failing with allocation_failed answers with the error`, async () => {
    await using server = await serve(t.listenAt().toString(), async (req) => {
      if (req.body.text() === "slow") {
        await new Promise((r) => setTimeout(r, 300));
        return "slow ok";
      }
      throw new TofuError(Status.allocationFailed, "Cannot reserve a seat: the hall is full");
    });
    await using ch = await connect(server.address);
    const [seat, slow] = await askBoth(ch, "seat");
    // Before: both requests rejected with the channel's close (peer_disconnected).
    assertEquals(
      seat,
      `rejected ${Status.allocationFailed}: Cannot reserve a seat: the hall is full`,
    );
    assertEquals(slow, "slow ok", "the other request on the channel is answered");
    assert(ch.isOpen, "the channel stays open");
  });

  Deno.test(`${t.name}: serve(): a backend that fails does not cost the client its channel`, async () => {
    // The backend answers the Hello and reads nothing: with 256 KiB of queue, the handler's
    // posts to it (answers by id) wait for room once that fills, and its write stall
    // timeout (300 ms) closes it. (Before answers waited for room, they were refused with
    // allocation_failed: the case this guarded.)
    const backendSocket = silentListener(t);
    await using backendEngine = new Engine({
      maxQueuedBytes: 256 * 1024,
      writeStallTimeoutMs: 300,
    });
    const backend = await connect(backendSocket.bound, { engine: backendEngine });
    const big = "x".repeat(60_000);
    try {
      await using server = await serve(t.listenAt().toString(), async (req) => {
        if (req.body.text() === "slow") {
          await new Promise((r) => setTimeout(r, 300));
          return "slow ok";
        }
        for (let id = 1n;; id++) await backend.respond(id, big); // until the backend fails
      });
      await using ch = await connect(server.address);
      const [fill, slow] = await askBoth(ch, "fill");
      assert(fill.startsWith("rejected "), fill);
      assertEquals(slow, "slow ok", "the other request on the channel is answered");
      assert(ch.isOpen, "the channel stays open");
    } finally {
      backend.abort();
      (await backendSocket.accepted).close();
      backendSocket.listener.close();
    }
  });
}
