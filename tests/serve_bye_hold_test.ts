// The ByeResponse to a peer's ByeRequest waits for the answers to what the peer sent before
// it, and no longer (tests/serve_bye_test.ts has the order of the frames). Two faults, found
// by the mutation-testing helper (session of 2026-11-23):
// - a peer that sent one Request and its ByeRequest in one write got the ByeResponse at once
//   and never the answer: the ByeRequest came before serve() had taken the peer from its
//   listener, so the hold was not set yet (now set as the peer is accepted), and a message
//   handed to serve()'s loop but not yet taken counted neither as unread nor in flight;
// - the mutant server.ts `(r) => onSettle.push(r)` -> `() => undefined` survived: the hold
//   then ends only at its 2 s grace, and no test looked at when the ByeResponse came.

import { assert, assertEquals } from "@std/assert";
import { concat } from "@std/bytes/concat";
import { delay } from "@std/async/delay";
import { decodeFrame, OpCode, serve } from "../mod.ts";
import { rawConnect, transports, writeAll } from "./_fixtures.ts";
import { readFrames } from "./_raw_peer.ts";
import { frame } from "./_attack.ts";

/**
 * A raw peer writes a Hello, Requests with `bodies` and a ByeRequest in one write to a
 * serve() whose handler answers after 50 ms; returns every frame it got back (opcode, id,
 * body) and the milliseconds until the last one.
 */
async function byeAfter(
  listenAt: string,
  bodies: string[],
): Promise<{ got: [number, bigint, string][]; ms: number }> {
  await using server = await serve(listenAt, async (req) => {
    await delay(50);
    return `answer to ${req.body.text()}`;
  });
  const conn = await rawConnect(server.address) as Deno.Conn;
  try {
    const started = performance.now();
    const bye = BigInt(bodies.length + 2);
    await writeAll(
      conn,
      concat([
        frame(OpCode.HelloRequest, "", 1n),
        ...bodies.map((b, i) => frame(OpCode.Request, b, BigInt(i + 2))),
        frame(OpCode.ByeRequest, "", bye),
      ]),
    );
    const got = (await readFrames(conn, bodies.length + 2)).map((f) => {
      const m = decodeFrame(f);
      return [m.bhdr.opCode, m.bhdr.messageId, m.body.text()] as [number, bigint, string];
    });
    return { got, ms: performance.now() - started };
  } finally {
    conn.close();
  }
}

for (const t of transports) {
  for (const bodies of [["a"], ["a", "b"]]) {
    Deno.test(`${t.name}: serve() answers ${bodies.length} Request(s) sent just before the ByeRequest, then says ByeResponse at once`, async () => {
      const { got, ms } = await byeAfter(t.listenAt().toString(), bodies);
      assertEquals(got, [
        [OpCode.HelloResponse, 1n, ""],
        ...bodies.map((b, i): [number, bigint, string] => [
          OpCode.Response,
          BigInt(i + 2),
          `answer to ${b}`,
        ]),
        [OpCode.ByeResponse, BigInt(bodies.length + 2), ""],
      ]);
      assert(ms < 1000, `the ByeResponse came after ${ms.toFixed(0)} ms (the grace is 2000)`);
    });
  }
}
