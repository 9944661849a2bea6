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

import { Engine, OpCode, Status, statusName, TcpClientAddress, UdsClientAddress } from "../mod.ts";

/** Sends `count` requests to `where` and returns the echoed bodies. */
export async function runEchoClient(
  engine: Engine,
  where: string,
  count: number,
): Promise<string[]> {
  const address = where.startsWith("uds|")
    ? UdsClientAddress.parse(where)
    : TcpClientAddress.parse(where);
  const group = engine.create();
  const { channelNumber } = group.post(address.format(engine.get("always")!));
  const next = async () => {
    const m = await group.waitReceive(5000);
    if (m === null) throw new Error("Cannot echo: no answer within 5 s");
    if (m.isFromEngine() && m.bhdr.status !== Status.channelClosed) {
      throw new Error(`Cannot echo: ${statusName(m.bhdr.status)}: ${m.error?.message ?? ""}`);
    }
    return m;
  };
  engine.put(await next()); // HelloResponse
  const bodies: string[] = [];
  for (let i = 1; i <= count; i++) {
    const req = engine.get("always")!;
    req.bhdr.channelNumber = channelNumber;
    req.bhdr.opCode = OpCode.Request;
    req.body.set(`hello #${i}`);
    const { messageId } = group.post(req);
    const resp = await next();
    if (resp.bhdr.messageId !== messageId) throw new Error("Cannot echo: the id changed");
    bodies.push(resp.body.text());
    engine.put(resp);
  }
  const bye = engine.get("always")!;
  bye.bhdr.channelNumber = channelNumber;
  bye.bhdr.opCode = OpCode.ByeRequest;
  group.post(bye);
  for (
    let m = await next();
    !(m.isFromEngine() && m.bhdr.opCode === OpCode.Signal);
    m = await next()
  ) {
    engine.put(m); // the ByeResponse; the channel_closed Signal ends the loop
  }
  return bodies;
}

if (import.meta.main) {
  await using engine = new Engine();
  const bodies = await runEchoClient(
    engine,
    Deno.args[0] ?? "tcp|127.0.0.1|7099",
    Number(Deno.args[1] ?? 3),
  );
  for (const b of bodies) console.log(`echo: ${b}`);
}
