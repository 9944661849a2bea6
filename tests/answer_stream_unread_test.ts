// A streamed answer is read with chunks(first). An application that puts `first` back
// without reading the rest (`using first = await ch.request(...)` in a block that ignores
// streams) left the rest held for a reader that could never come: the chunks counted
// against the channel's read share (maxChannelHeldMsgs), and once they filled it the
// channel stopped reading, for good. The next request on it timed out; a message the
// peer sent after the stream never arrived. Found by the hostile-tester helper.
// Now putting `first` back (or posting it) drops what is left of its stream at once.

import { assertEquals } from "@std/assert";
import { deadline } from "@std/async/deadline";
import { connect, Engine, listen, serve } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";

const CHUNKS = 500; // far more than the client's share of 64

function address(t: string): string {
  return t === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`;
}

function* list(): Generator<string> {
  for (let i = 0; i < CHUNKS; i++) yield `chunk ${i}`;
}

for (const t of ["tcp", "uds"]) {
  Deno.test(`${t}: a streamed answer put back unread does not stall the next request`, async () => {
    await using engine = new Engine({ maxChannelHeldMsgs: 64 });
    await using server = await serve(
      address(t),
      (req) => req.body.text() === "list" ? list() : "pong",
    );
    await using ch = await connect(server.address, { engine });
    {
      using first = await ch.request("list", { timeoutMs: 5000 });
      assertEquals(first.body.text(), "chunk 0");
    } // put back: the rest of the stream is not read
    // Before: "Cannot complete request: no answer within 5000 ms".
    using pong = await ch.request("ping", { timeoutMs: 5000 });
    assertEquals(pong.body.text(), "pong");
  });

  Deno.test(`${t}: a streamed answer put back unread does not hold back what the peer sends next`, async () => {
    await using engine = new Engine({ maxChannelHeldMsgs: 64 });
    await using listener = await listen(address(t));
    await using client = await connect(listener.address, { engine });
    const peer = (await listener[Symbol.asyncIterator]().next()).value!;
    const serving = (async () => {
      for await (using req of peer) {
        await peer.respond(req, list());
        await peer.send("after the stream");
        return;
      }
    })();
    // The client waits for the peer's next message before it gives the answer back, and
    // takes nothing else from the channel meanwhile.
    const next = client[Symbol.asyncIterator]().next();
    {
      using first = await client.request("list", { timeoutMs: 5000 });
      assertEquals(first.body.text(), "chunk 0");
    }
    // Before: the Signal never came (the client had stopped reading).
    const got = await deadline(next, 10_000);
    using signal = got.value!;
    assertEquals(signal.body.text(), "after the stream");
    await serving;
  });
}
