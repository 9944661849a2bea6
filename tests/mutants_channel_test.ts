// Tests that kill mutants of src/channel.ts that the Peers tests let survive, over real
// sockets, TCP and Unix sockets alike.

import { assertEquals } from "@std/assert";
import { connect, Engine, serve, Status, statusName } from "../mod.ts";
import { expectTofuError, peerTransports, within } from "./_peer_fixtures.ts";
import { nextOf, pair } from "./_peer_pair.ts";

for (const t of peerTransports) {
  Deno.test(`${t.name}: Channel: respond() without a body answers with an empty one`, async () => {
    await using p = await pair(t, undefined, { timeoutMs: 20_000 });
    const asking = p.client.request("q", { timeoutMs: 20_000 });
    using req = await nextOf(p.peer);
    await p.peer.respond(req);
    using answer = await asking;
    assertEquals(answer.body.text(), "");
  });

  Deno.test(`${t.name}: Channel: an aborted send() and request() say which call gave up`, async () => {
    await using p = await pair(t, undefined, { timeoutMs: 20_000 });
    const ac = new AbortController();
    ac.abort();
    const send = await expectTofuError(
      p.client.send("x", { signal: ac.signal }),
      Status.communicationFailed,
    );
    assertEquals(send.message, "Cannot send: aborted");
    const req = await expectTofuError(
      p.client.request("x", { signal: ac.signal }),
      Status.communicationFailed,
    );
    assertEquals(req.message, "Cannot complete request: aborted");
  });

  Deno.test(`${t.name}: Channel: a handler's error message is trimmed to one line`, async () => {
    await using server = await serve(t.any(), () => {
      throw new Error("  no paper\r\n in tray 2  ");
    });
    await using ch = await connect(server.address, { timeoutMs: 20_000 });
    const err = await expectTofuError(ch.request("print"), Status.processingFailed);
    assertEquals(err.message, "Cannot complete request: the peer failed: no paper  in tray 2");
  });

  Deno.test(`${t.name}: Channel: a stream whose channel closes before its last chunk says so`, async () => {
    await using p = await pair(t, undefined, { timeoutMs: 20_000 });
    async function* slow(): AsyncGenerator<string> {
      yield "one";
      yield "two";
      await new Promise(() => {}); // never ends: the channel closes first
    }
    void p.peer.send(slow()).catch(() => {});
    const first = await nextOf(p.client);
    assertEquals([first.body.text(), first.hasMore()], ["one", true]);
    const reading = (async () => {
      for await (using _c of p.client.chunks(first)) {
        p.peer.abort();
      }
    })();
    const err = await expectTofuError(reading, Status.channelClosed);
    assertEquals(err.message, "Cannot read stream: the channel closed before the last chunk");
  });

  Deno.test(`${t.name}: Channel: a send() overtaken by close() goes out before the bye`, async () => {
    await using p = await pair(t, undefined, { timeoutMs: 20_000 });
    const asking = p.client.request("q", { timeoutMs: 20_000 });
    asking.catch(() => {});
    using _req = await nextOf(p.peer);
    // The one chunk is taken after close() began: the channel is closing when it is posted.
    let closing: Promise<void> | undefined;
    const peer = p.peer;
    function* closesFirst(): Generator<string> {
      closing = peer.close();
      yield "late";
    }
    // close() waits for the send under way (it was refused as closing before).
    await p.peer.send(closesFirst());
    using late = await nextOf(p.client);
    assertEquals(late.body.text(), "late");
    await closing;
    assertEquals(statusName(await p.peer.closed), "success");
  });

  Deno.test(`${t.name}: Channel: an empty chunk source sends one empty message`, async () => {
    await using p = await pair(t, undefined, { timeoutMs: 20_000 });
    await p.client.send([]);
    using m = await nextOf(p.peer);
    assertEquals([m.body.text(), m.hasMore()], ["", false]);
  });

  Deno.test(`${t.name}: Channel: requests in flight say why the channel closed (a bye, the engine)`, async () => {
    await using p = await pair(t, undefined, { timeoutMs: 20_000 });
    const asking = p.client.request("q", { timeoutMs: 20_000 });
    asking.catch(() => {});
    using _req = await nextOf(p.peer);
    await p.peer.close();
    const bye = await expectTofuError(asking, Status.channelClosed);
    assertEquals(bye.message, "Cannot complete request: the channel closed (channel_closed)");
    assertEquals(
      (bye.cause as Error | undefined)?.message,
      "Cannot use channel: the peer said bye",
    );

    const engine = new Engine();
    await using server = await serve(t.any(), () => new Promise<string>(() => {}));
    const ch = await connect(server.address, { engine, timeoutMs: 20_000 });
    const hanging = ch.request("hang", { timeoutMs: 20_000 });
    hanging.catch(() => {});
    await new Promise((r) => setTimeout(r, 20));
    await within(engine.close(), 20_000, "engine.close()");
    const gone = await expectTofuError(hanging, Status.shutdownStarted);
    assertEquals(gone.message, "Cannot complete request: the channel closed (shutdown_started)");
    assertEquals(
      (gone.cause as Error | undefined)?.message,
      "Cannot use channel: the engine is closed",
    );
    await ch.close();
  });
}
