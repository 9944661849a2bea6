// Peers that never answer a bye: a Channel's close() and a listener's close() wait out their
// grace (two seconds, one second) for them, so this file is split from
// tests/mutants_peers_test.ts and listed last in tools/mutation/map.json.

import { assert, assertEquals } from "@std/assert";
import { connect, Engine, listen, OpCode, Status, statusName } from "../mod.ts";
import { hello, peerTransports, within } from "./_peer_fixtures.ts";
import { rawConnect, readToEnd, writeAll } from "./_fixtures.ts";

/**
 * An engine-level server that answers the Hello and then nothing (not the bye); the
 * messages it gets are kept in `got`.
 */
async function deafServer(engine: Engine, t: { any(): string }) {
  const g = engine.create();
  const w = engine.get("always")!;
  w.bhdr.opCode = OpCode.WelcomeRequest;
  w.headers.append("~listen_on", t.any());
  g.post(w);
  const welcome = await within(g.waitReceive(20_000), 20_000, "welcome");
  if (welcome === null || welcome.bhdr.status !== Status.success) throw new Error("no welcome");
  const address = welcome.headers.get("~listen_on")!;
  engine.put(welcome);
  const got: number[] = [];
  const serving = (async () => {
    for await (const m of g) {
      got.push(m.bhdr.opCode);
      if (m.bhdr.opCode === OpCode.HelloRequest && !m.isFromEngine()) {
        m.bhdr.opCode = OpCode.HelloResponse;
        g.post(m);
      } else engine.put(m);
    }
  })();
  return {
    address,
    got,
    async [Symbol.asyncDispose]() {
      await engine.destroy(g);
      await serving;
    },
  };
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: Channel.close() aborts after its grace when the peer never answers the bye`, async () => {
    await using engine = new Engine();
    await using deaf = await deafServer(engine, t);
    const ch = await connect(deaf.address, { engine, timeoutMs: 20_000 });
    await within(ch.close(), 20_000, "close() with a deaf peer");
    assertEquals(ch.isOpen, false);
    assertEquals(statusName(await ch.closed), "channel_closed");
    assert(deaf.got.includes(OpCode.ByeRequest), "the ByeRequest was sent first");
  });
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: a peer that says hello while the listener closes is refused`, async () => {
    await using engine = new Engine();
    const listener = await listen(t.any(), { engine });
    // A peer that completes the handshake and never answers the bye: the listener's close()
    // then waits its one-second grace, and the next peer says hello meanwhile.
    const deaf = await rawConnect(listener.address);
    await writeAll(deaf, hello(listener.address));
    await within(listener[Symbol.asyncIterator]().next(), 20_000, "the deaf peer is accepted");
    const late = await rawConnect(listener.address);
    for (let i = 0; i < 2000 && engine.channelCount < 3; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assertEquals(engine.channelCount, 3, "the listener, the deaf peer and the late one");
    const closing = listener.close();
    await writeAll(late, hello(listener.address));
    assertEquals(await readToEnd(late), 0, "the late peer gets no HelloResponse");
    await within(closing, 20_000, "listener.close()");
    late.close();
    deaf.close();
  });
}
