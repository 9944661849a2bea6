// close() of a listener (or server) and of a channel waits a bounded time for the peers'
// ByeResponses. A peer that is gone while its channel holds unread messages (so the engine
// does not read it, and no socket operation is pending) left only the grace timers, which
// did not keep the process alive: Deno ended the program inside `await close()` (in a test:
// "Promise resolution is still pending but the event loop has already resolved").

import { assert, assertEquals } from "@std/assert";
import { delay } from "@std/async/delay";
import { connect, Engine, listen, OpCode } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";
import { transports, writeAll } from "./_fixtures.ts";
import { silentListener } from "./_raw_peer.ts";
import { frame } from "./_attack.ts";

for (const kind of ["tcp", "uds"] as const) {
  Deno.test(`${kind}: listener.close() with a gone peer whose messages are unread completes`, async () => {
    await using server = new Engine({ maxChannelHeldMsgs: 4 });
    await using client = new Engine();
    const listener = await listen(kind === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`, {
      engine: server,
    });
    const ch = await connect(listener.address, { engine: client });
    const peers = listener[Symbol.asyncIterator]();
    const peer = (await peers.next()).value!;
    // More than the peer's share: the server stops reading this connection.
    for (let i = 0; i < 10; i++) await ch.send(`m${i}`);
    await delay(100);
    ch.abort();
    await ch.closed;
    const started = performance.now();
    await listener.close();
    const took = performance.now() - started;
    assert(took < 5_000, `close took ${took.toFixed(0)} ms`);
    assertEquals(peer.isOpen, false);
  });
}

for (const t of transports) {
  Deno.test(`${t.name}: channel.close() to a silent peer while its messages are unread completes`, async () => {
    await using engine = new Engine({ maxChannelHeldMsgs: 4 });
    const { listener, bound, accepted } = silentListener(t);
    const ch = await connect(bound, { engine });
    const conn = await accepted;
    // Ten Signals the application never reads: past its share, the engine stops reading.
    for (let i = 0; i < 10; i++) await writeAll(conn, frame(OpCode.Signal, `m${i}`, BigInt(i + 2)));
    await delay(100);
    const started = performance.now();
    await ch.close(); // the ByeResponse never comes: the close aborts after its grace
    const took = performance.now() - started;
    conn.close();
    listener.close();
    assert(took < 5_000, `close took ${took.toFixed(0)} ms`);
    assertEquals(ch.isOpen, false);
  });
}
