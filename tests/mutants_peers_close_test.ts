// A Channel whose peer never answers its bye (split from tests/mutants_peers_test.ts: each
// case waits out the two-second close grace, so mutation runs list this file last).

import { assert, assertEquals } from "@std/assert";
import { connect, Engine, OpCode, Status, statusName } from "../mod.ts";
import { peerTransports, within } from "./_peer_fixtures.ts";

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
