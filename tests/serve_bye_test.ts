// A peer may still be sent messages between its ByeRequest and our ByeResponse (the side
// that receives a ByeRequest "may still send, then posts a ByeResponse", docs/protocol.md
// section 4). serve() answered the ByeRequest at once, so the answers to Requests the peer
// sent before its bye, still being handled, were refused: the peer got no answer and no
// error (a Zig peer closing gracefully lost them). Found by the hostile-tester helper.

import { assertEquals } from "@std/assert";
import { concat } from "@std/bytes/concat";
import { delay } from "@std/async/delay";
import { decodeFrame, OpCode, serve } from "../mod.ts";
import { rawConnect, transports, writeAll } from "./_fixtures.ts";
import { readFrames } from "./_raw_peer.ts";
import { frame } from "./_attack.ts";

function summary(frames: Uint8Array[]): [number, bigint, string][] {
  return frames.map((f) => {
    const m = decodeFrame(f);
    return [m.bhdr.opCode, m.bhdr.messageId, m.body.text()];
  });
}

for (const t of transports) {
  Deno.test(`${t.name}: serve() answers what a peer sent before its ByeRequest, then says ByeResponse`, async () => {
    await using server = await serve(t.listenAt().toString(), async (req) => {
      await delay(20);
      return `answer to ${req.body.text()}`;
    });
    const conn = await rawConnect(server.address) as Deno.Conn;
    await writeAll(
      conn,
      concat([
        frame(OpCode.HelloRequest, "", 1n),
        frame(OpCode.Request, "a", 2n),
        frame(OpCode.Request, "b", 3n),
        frame(OpCode.ByeRequest, "", 4n),
      ]),
    );
    // Before: the HelloResponse and the ByeResponse, then the end of the stream.
    const got = summary(await readFrames(conn, 4));
    conn.close();
    assertEquals(got, [
      [OpCode.HelloResponse, 1n, ""],
      [OpCode.Response, 2n, "answer to a"],
      [OpCode.Response, 3n, "answer to b"],
      [OpCode.ByeResponse, 4n, ""],
    ]);
  });
}

Deno.test("tcp: serve() says ByeResponse after its grace when a handler never settles", async () => {
  await using server = await serve(
    "tcp|127.0.0.1|0",
    (req) => req.body.text() === "stuck" ? new Promise<string>(() => {}) : "ok",
  );
  const conn = await rawConnect(server.address) as Deno.Conn;
  const started = performance.now();
  await writeAll(
    conn,
    concat([
      frame(OpCode.HelloRequest, "", 1n),
      frame(OpCode.Request, "quick", 2n),
      frame(OpCode.Request, "stuck", 3n),
      frame(OpCode.ByeRequest, "", 4n),
    ]),
  );
  const got = summary(await readFrames(conn, 3));
  const took = performance.now() - started;
  conn.close();
  assertEquals(got, [
    [OpCode.HelloResponse, 1n, ""],
    [OpCode.Response, 2n, "ok"],
    [OpCode.ByeResponse, 4n, ""],
  ]);
  if (took < 1_500 || took > 6_000) throw new Error(`ByeResponse after ${took.toFixed(0)} ms`);
});
