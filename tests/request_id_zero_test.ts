// A Request with message id 0 cannot be answered: a Response must name its Request's id,
// and id 0 is refused for every response opcode (docs/protocol.md, section 3, step c).
// A tofu peer never sends one (posting assigns an id, step i), so only a broken or hostile
// peer does. The Peers layer drops that peer's connection with `invalid_message_id`
// instead of handing the application a request nobody can answer: before, serve() ran its
// handler, the answer was refused, and the peer waited for an answer that never came.

import { assert, assertEquals } from "@std/assert";
import { deadline } from "@std/async/deadline";
import { encodeFrame, Engine, listen, Message, OpCode, serve, Status } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";
import { rawConnect, transports, writeAll } from "./_fixtures.ts";
import { readFrames } from "./_raw_peer.ts";

function frame(op: number, id: bigint): Uint8Array {
  const m = new Message();
  m.bhdr.opCode = op;
  m.bhdr.messageId = id;
  m.body.set("2+2");
  return encodeFrame(m);
}

/** Frames read from `conn` until its end (a reset counts as the end). */
async function framesToEnd(conn: Deno.Conn): Promise<number[]> {
  const ops: number[] = [];
  for (;;) {
    const [f] = await readFrames(conn, 1).catch((err: Error) => {
      if (/socket ended|reset/i.test(err.message) || err instanceof Deno.errors.ConnectionReset) {
        return [];
      }
      throw err;
    });
    if (f === undefined) return ops;
    ops.push(f[2]! & 0x0f);
  }
}

function address(t: { name: string }): string {
  return t.name === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`;
}

for (const t of transports) {
  Deno.test(`${t.name}: a peer's Request with message id 0 drops its connection`, async () => {
    await using engine = new Engine();
    await using listener = await listen(address(t), { engine });
    const conn = await rawConnect(listener.address) as Deno.Conn;
    try {
      await writeAll(conn, frame(OpCode.HelloRequest, 1n));
      const peer = (await listener[Symbol.asyncIterator]().next()).value!;
      let delivered = 0;
      const reading = (async () => {
        for await (using _m of peer) delivered++;
      })();
      await writeAll(conn, frame(OpCode.Request, 0n));
      // Before: the Request was delivered and the channel stayed open.
      assertEquals(await deadline(peer.closed, 10_000), Status.invalidMessageId);
      await deadline(reading, 10_000);
      assertEquals(delivered, 0, "the unanswerable Request is not handed to the application");
      // The connection is aborted: the peer reads its HelloResponse, then the end.
      assertEquals(await deadline(framesToEnd(conn), 10_000), [OpCode.HelloResponse]);
    } finally {
      conn.close();
    }
  });

  Deno.test(`${t.name}: serve() does not run its handler for a Request with message id 0`, async () => {
    await using engine = new Engine();
    const seen: bigint[] = [];
    await using server = await serve(address(t), (req) => {
      seen.push(req.bhdr.messageId);
      return "4";
    }, { engine });
    const conn = await rawConnect(server.address) as Deno.Conn;
    try {
      await writeAll(conn, frame(OpCode.HelloRequest, 1n));
      await writeAll(conn, frame(OpCode.Request, 0n));
      // Before: the handler ran, its answer was refused (a Response needs an id), and the
      // peer got neither an answer nor the end of its connection.
      assertEquals(await deadline(framesToEnd(conn), 10_000), [OpCode.HelloResponse]);
      assertEquals(seen, []);
    } finally {
      conn.close();
    }
  });

  Deno.test(`${t.name}: Requests with an id are still answered by serve()`, async () => {
    await using engine = new Engine();
    await using server = await serve(address(t), (req) => `${req.body.text()}=4`, { engine });
    const conn = await rawConnect(server.address) as Deno.Conn;
    try {
      await writeAll(conn, frame(OpCode.HelloRequest, 1n));
      await writeAll(conn, frame(OpCode.Request, 5n));
      const [hello, answer] = await readFrames(conn, 2);
      assertEquals(hello![2]! & 0x0f, OpCode.HelloResponse);
      assertEquals(answer![2]! & 0x0f, OpCode.Response);
      assertEquals(new DataView(answer!.buffer).getUint32(8), 5, "the answer names id 5");
      assert(new TextDecoder().decode(answer!.subarray(16)).endsWith("2+2=4"));
    } finally {
      conn.close();
    }
  });
}
