// WelcomeRequest and WelcomeResponse never travel (docs/protocol.md, section 1): they ask
// the local engine to listen and carry its answer. Posted on an open connection, they were
// written to it, and the peer's engine dropped the connection (recv_failed). Found by the
// hostile-tester helper. Now post() refuses them there with not_allowed; the message stays
// with the caller, and the connection goes on.

import { assertEquals, assertThrows } from "@std/assert";
import { Engine, OpCode, Status, TofuError } from "../mod.ts";
import { connect, listen, transports } from "./_fixtures.ts";

for (const t of transports) {
  for (const op of [OpCode.WelcomeRequest, OpCode.WelcomeResponse]) {
    Deno.test(`${t.name}: post() of opcode ${op} on an open connection is refused; it goes on`, async () => {
      await using engine = new Engine();
      const server = await listen(engine, t);
      const link = await connect(engine, t, server);
      const m = engine.get("always");
      m.bhdr.opCode = op;
      m.bhdr.channelNumber = link.clientCh;
      m.bhdr.messageId = 77n;
      m.headers.append("~listen_on", "tcp|127.0.0.1|0");
      const err = assertThrows(() => link.client.post(m), TofuError);
      assertEquals(err.status, Status.notAllowed);
      assertEquals(m.bhdr.status, Status.notAllowed, "the status is in the caller's message");
      engine.put(m);
      // The connection still carries messages both ways.
      const sig = engine.get("always");
      sig.bhdr.opCode = OpCode.Signal;
      sig.bhdr.channelNumber = link.clientCh;
      sig.body.set("still here");
      link.client.post(sig);
      using got = (await server.group.waitReceive(5000))!;
      // Before: the peer dropped the connection, and this was its report.
      assertEquals([got.bhdr.opCode, got.body.text()], [OpCode.Signal, "still here"]);
    });
  }
}
