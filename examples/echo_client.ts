/**
 * An echo client: connects, sends a few requests, prints each echo, says bye.
 *
 *   deno run --allow-net=127.0.0.1 examples/echo_client.ts [tcp|127.0.0.1|7099] [count]
 *
 * Start `examples/echo_server.ts` first.
 *
 * @module
 */

// deno-lint-ignore-file no-console

import {
  Engine,
  type Message,
  OpCode,
  Status,
  statusName,
  TcpClientAddress,
  TofuError,
  UdsClientAddress,
} from "../mod.ts";

/**
 * Sends `count` requests to `where` and returns the echoed bodies.
 *
 * The server is not trusted: frames it sends unasked (Signals, Requests, answers with
 * another id) are put back and skipped; a report, a refused post, a ByeRequest from the
 * server or 5 s of silence ends the run with an `Error` saying why.
 */
export async function runEchoClient(
  engine: Engine,
  where: string,
  count: number,
): Promise<string[]> {
  const address = where.startsWith("uds|")
    ? UdsClientAddress.parse(where)
    : TcpClientAddress.parse(where);
  const group = engine.create();
  try {
    const { channelNumber } = group.post(address.format(engine.get("always")!));
    const post = (m: Message): bigint => {
      try {
        return group.post(m).messageId;
      } catch (err) {
        engine.put(m);
        if (err instanceof TofuError) throw new Error(`Cannot echo: ${err.message}`);
        throw err;
      }
    };
    /** The next frame with opcode `op` (and id `id`, if given); others are skipped. */
    const expect = async (op: number, id?: bigint): Promise<Message> => {
      for (;;) {
        const m = await group.waitReceive(5000);
        if (m === null) throw new Error("Cannot echo: no answer within 5 s");
        if (m.isFromEngine()) {
          const why = `${statusName(m.bhdr.status)}: ${m.error?.message ?? ""}`;
          engine.put(m);
          throw new Error(`Cannot echo: ${why}`);
        }
        if (m.bhdr.opCode === op && (id === undefined || m.bhdr.messageId === id)) return m;
        const bye = m.bhdr.opCode === OpCode.ByeRequest;
        engine.put(m);
        if (bye) throw new Error("Cannot echo: the server said bye");
      }
    };
    engine.put(await expect(OpCode.HelloResponse));
    const bodies: string[] = [];
    for (let i = 1; i <= count; i++) {
      const req = engine.get("always")!;
      req.bhdr.channelNumber = channelNumber;
      req.bhdr.opCode = OpCode.Request;
      req.body.set(`hello #${i}`);
      const resp = await expect(OpCode.Response, post(req));
      bodies.push(resp.body.text());
      engine.put(resp);
    }
    const bye = engine.get("always")!;
    bye.bhdr.channelNumber = channelNumber;
    bye.bhdr.opCode = OpCode.ByeRequest;
    post(bye);
    // The ByeResponse, then the channel_closed Signal; anything else is put back.
    for (;;) {
      const m = await group.waitReceive(5000);
      if (m === null) throw new Error("Cannot echo: no ByeResponse within 5 s");
      const closed = m.isFromEngine() && m.bhdr.status === Status.channelClosed &&
        m.bhdr.opCode === OpCode.Signal;
      engine.put(m);
      if (closed) return bodies;
    }
  } finally {
    await engine.destroy(group);
  }
}

if (import.meta.main) {
  await using engine = new Engine();
  try {
    const bodies = await runEchoClient(
      engine,
      Deno.args[0] ?? "tcp|127.0.0.1|7099",
      Number(Deno.args[1] ?? 3),
    );
    for (const b of bodies) console.log(`echo: ${b}`);
  } catch (err) {
    console.error((err as Error).message);
    Deno.exitCode = 1;
  }
}
