// A test written to kill a mutant of src/server.ts that survived `deno task mutate` (the
// mutation-testing helper, session of 2026-11-23). The Signal a handler returns (the other
// survivor) is tests/serve_return_test.ts.

import { assert, assertEquals } from "@std/assert";
import { concat } from "@std/bytes/concat";
import { delay } from "@std/async/delay";
import { decodeFrame, OpCode, serve } from "../mod.ts";
import { rawConnect, writeAll } from "./_fixtures.ts";
import { readFrames } from "./_raw_peer.ts";
import { frame } from "./_attack.ts";

// server.ts:182 `(r) => onSettle.push(r)` -> `() => undefined`: the ByeResponse that waits
// for the handlers in flight is then never woken when they settle, and goes out only after
// BYE_HOLD_MS (2 s). serve_bye_test.ts checks the order of the frames, not when the
// ByeResponse comes. (A single Request before the bye: tests/serve_bye_single_request_test.ts.)
Deno.test("tcp: serve() says ByeResponse as soon as the handlers in flight settle, not after its grace", async () => {
  await using server = await serve("tcp|127.0.0.1|0", async (req) => {
    await delay(50);
    return `answer to ${req.body.text()}`;
  });
  const conn = await rawConnect(server.address) as Deno.Conn;
  try {
    const started = performance.now();
    await writeAll(
      conn,
      concat([
        frame(OpCode.HelloRequest, "", 1n),
        frame(OpCode.Request, "a", 2n),
        frame(OpCode.Request, "b", 3n),
        frame(OpCode.ByeRequest, "", 4n),
      ]),
    );
    const got = (await readFrames(conn, 4)).map((f) => {
      const m = decodeFrame(f);
      return [m.bhdr.opCode, m.bhdr.messageId, m.body.text()];
    });
    const ms = performance.now() - started;
    assertEquals(got, [
      [OpCode.HelloResponse, 1n, ""],
      [OpCode.Response, 2n, "answer to a"],
      [OpCode.Response, 3n, "answer to b"],
      [OpCode.ByeResponse, 4n, ""],
    ]);
    assert(ms < 1000, `the ByeResponse came after ${ms.toFixed(0)} ms (grace is 2000)`);
  } finally {
    conn.close();
  }
});
