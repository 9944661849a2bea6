// Found by the mutation-testing helper (not a mutant): a raw peer that sends one Request and
// then its ByeRequest in one write got the ByeResponse at once and never the answer. The
// ByeRequest came before serve() had taken the peer from its listener, so the hold on the
// ByeResponse (set then) was not there yet; and a message handed to serve()'s loop but not
// yet taken counted neither as unread nor in flight. Now the hold is set as the peer is
// accepted, and it waits a turn before it counts.

import { assertEquals } from "@std/assert";
import { concat } from "@std/bytes/concat";
import { delay } from "@std/async/delay";
import { decodeFrame, OpCode, serve } from "../mod.ts";
import { rawConnect, transports, writeAll } from "./_fixtures.ts";
import { readFrames } from "./_raw_peer.ts";
import { frame } from "./_attack.ts";

for (const t of transports) {
  Deno.test(`${t.name}: serve() answers a single Request sent just before the ByeRequest`, async () => {
    await using server = await serve(t.listenAt().toString(), async (req) => {
      await delay(20);
      return `answer to ${req.body.text()}`;
    });
    const conn = await rawConnect(server.address) as Deno.Conn;
    try {
      await writeAll(
        conn,
        concat([
          frame(OpCode.HelloRequest, "", 1n),
          frame(OpCode.Request, "a", 2n),
          frame(OpCode.ByeRequest, "", 3n),
        ]),
      );
      const got = (await readFrames(conn, 3)).map((f) => {
        const m = decodeFrame(f);
        return [m.bhdr.opCode, m.bhdr.messageId, m.body.text()];
      });
      assertEquals(got, [
        [OpCode.HelloResponse, 1n, ""],
        [OpCode.Response, 2n, "answer to a"],
        [OpCode.ByeResponse, 3n, ""],
      ]);
    } finally {
      conn.close();
    }
  });
}
