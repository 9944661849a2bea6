// request() matches answers by message id, so every Request it posts needs an id of its
// own. Given a message as its body, it kept the id the message already had: a proxy that
// forwards what it receives (`serve(addr, (req) => backend.request(req))`) posted two
// clients' Requests with the ids those clients chose, and two clients that chose the same
// id (every tofu process counts from 1) collided: the second took the first's place among
// the requests waiting for an answer, and the first timed out. Found by the hostile-tester
// helper.

import { assertEquals } from "@std/assert";
import { connect, type Message, OpCode, serve } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";
import { frame } from "./_attack.ts";
import { rawConnect, writeAll } from "./_fixtures.ts";
import { readFrames } from "./_raw_peer.ts";

function address(t: string): string {
  return t === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`;
}

/** A server that answers "answer-for-BODY", the "A" requests after 200 ms, others after 50. */
function slowEcho(t: string) {
  return serve(address(t), async (req) => {
    const body = req.body.text();
    await new Promise((r) => setTimeout(r, body === "A" ? 200 : 50));
    return `answer-for-${body}`;
  });
}

for (const t of ["tcp", "uds"]) {
  Deno.test(`${t}: request(msg) gives each Request an id of its own`, async () => {
    await using backend = await slowEcho(t);
    await using up = await connect(backend.address);
    const ask = async (body: string) => {
      const m = up.engine.get("always");
      m.bhdr.messageId = 7n; // as a received message would carry
      m.body.set(body);
      using answer: Message = await up.request(m, { timeoutMs: 5000 });
      return [answer.bhdr.messageId === 7n, answer.body.text()];
    };
    // Before: "A" rejected after its 5 s ("no answer within 5000 ms").
    assertEquals(await Promise.all([ask("A"), ask("B")]), [
      [false, "answer-for-A"],
      [false, "answer-for-B"],
    ]);
  });

  Deno.test(`${t}: a proxy forwarding received Requests answers clients that chose the same id`, async () => {
    await using backend = await slowEcho(t);
    await using up = await connect(backend.address);
    await using proxy = await serve(address(t), (req) => up.request(req, { timeoutMs: 5000 }));
    const client = async (body: string) => {
      const conn = await rawConnect(proxy.address) as Deno.Conn;
      try {
        await writeAll(conn, frame(OpCode.HelloRequest, "", 1n));
        await readFrames(conn, 1);
        await writeAll(conn, frame(OpCode.Request, body, 7n)); // both clients use id 7
        const [answer] = await readFrames(conn, 1, 10_000);
        const id = new DataView(answer!.buffer).getUint32(8);
        const thl = (answer![12]! << 8) | answer![13]!;
        return [id, new TextDecoder().decode(answer!.subarray(16 + thl))];
      } finally {
        conn.close();
      }
    };
    // Before: A got an error answer ("no answer within 5000 ms") instead of its own.
    assertEquals(await Promise.all([client("A"), client("B")]), [
      [7, "answer-for-A"],
      [7, "answer-for-B"],
    ]);
  });
}
