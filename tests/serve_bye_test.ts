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

/**
 * A raw peer says Hello, sends Requests with these bodies (ids 2, 3, ...) and a ByeRequest
 * in one write, then reads `count` frames; returns them as [opcode, id, body].
 */
async function askThenBye(
  address: string,
  bodies: string[],
  count: number,
): Promise<[number, bigint, string][]> {
  const conn = await rawConnect(address) as Deno.Conn;
  try {
    await writeAll(
      conn,
      concat([
        frame(OpCode.HelloRequest, "", 1n),
        ...bodies.map((b, i) => frame(OpCode.Request, b, BigInt(i + 2))),
        frame(OpCode.ByeRequest, "", BigInt(bodies.length + 2)),
      ]),
    );
    return (await readFrames(conn, count)).map((f) => {
      const m = decodeFrame(f);
      return [m.bhdr.opCode, m.bhdr.messageId, m.body.text()];
    });
  } finally {
    conn.close();
  }
}

for (const t of transports) {
  Deno.test(`${t.name}: serve() answers what a peer sent before its ByeRequest, then says ByeResponse`, async () => {
    await using server = await serve(t.listenAt().toString(), async (req) => {
      await delay(20);
      return `answer to ${req.body.text()}`;
    });
    // Before: the HelloResponse and the ByeResponse, then the end of the stream.
    assertEquals(await askThenBye(server.address, ["a", "b"], 4), [
      [OpCode.HelloResponse, 1n, ""],
      [OpCode.Response, 2n, "answer to a"],
      [OpCode.Response, 3n, "answer to b"],
      [OpCode.ByeResponse, 4n, ""],
    ]);
  });
}

for (const t of transports) {
  // The answer to a failing handler is an error Response: it was skipped while the channel
  // was closing, and the peer got the ByeResponse with no answer (the hostile-tester helper;
  // a Channel client's request() rejected with "the peer said bye" instead of the error).
  Deno.test(`${t.name}: serve() answers a handler's error before its ByeResponse too`, async () => {
    await using server = await serve(t.listenAt().toString(), async (req) => {
      await delay(20);
      if (req.body.text() === "fail") throw new Error("failed on purpose");
      return `answer to ${req.body.text()}`;
    });
    const got = await askThenBye(server.address, ["fail", "b"], 4);
    assertEquals(got, [
      [OpCode.HelloResponse, 1n, ""],
      [OpCode.Response, 2n, ""], // the error answer: an empty body, the error in its headers
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
  const started = performance.now();
  const got = await askThenBye(server.address, ["quick", "stuck"], 3);
  const took = performance.now() - started;
  assertEquals(got, [
    [OpCode.HelloResponse, 1n, ""],
    [OpCode.Response, 2n, "ok"],
    [OpCode.ByeResponse, 4n, ""],
  ]);
  if (took < 1_500 || took > 6_000) throw new Error(`ByeResponse after ${took.toFixed(0)} ms`);
});
