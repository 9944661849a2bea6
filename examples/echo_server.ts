/**
 * An echo server: accepts every client and answers each Request with a Response
 * carrying the same message id, headers and body.
 *
 *   deno run --allow-net=127.0.0.1 examples/echo_server.ts [tcp|127.0.0.1|7099]
 *   deno run --allow-net=unix:/tmp/echo.sock --allow-read=/tmp --allow-write=/tmp \
 *     examples/echo_server.ts uds|/tmp/echo.sock
 *
 * Stop it with Ctrl+C.
 *
 * @module
 */

// deno-lint-ignore-file no-console

import {
  type ChannelGroup,
  Engine,
  OpCode,
  Status,
  statusName,
  TcpServerAddress,
  UdsServerAddress,
} from "../mod.ts";

/** Serves `group` until the engine closes; returns the number of echoed requests. */
export async function serveEcho(engine: Engine, group: ChannelGroup): Promise<number> {
  let echoed = 0;
  for await (const m of group) {
    switch (m.bhdr.opCode) {
      case OpCode.HelloRequest:
        m.bhdr.opCode = OpCode.HelloResponse; // accept every client
        group.post(m);
        break;
      case OpCode.Request:
        m.bhdr.opCode = OpCode.Response; // same id, headers and body
        group.post(m);
        echoed++;
        break;
      case OpCode.ByeRequest:
        m.bhdr.opCode = OpCode.ByeResponse;
        group.post(m);
        break;
      default:
        if (m.isFromEngine() && m.bhdr.status !== Status.channelClosed) {
          console.error(`channel ${m.bhdr.channelNumber}: ${statusName(m.bhdr.status)}`);
        }
        engine.put(m);
    }
  }
  return echoed;
}

if (import.meta.main) {
  const where = Deno.args[0] ?? "tcp|127.0.0.1|7099";
  const address = where.startsWith("uds|")
    ? UdsServerAddress.parse(where)
    : TcpServerAddress.parse(where);
  await using engine = new Engine();
  const group = engine.create();
  group.post(address.format(engine.get("always")!));
  const welcome = (await group.waitReceive())!;
  if (welcome.bhdr.status !== Status.success) {
    console.error(`cannot listen: ${welcome.error?.message}`);
    Deno.exit(1);
  }
  console.log(`echo server listening on ${welcome.headers.get("~listen_on")}`);
  engine.put(welcome);
  Deno.addSignalListener("SIGINT", () => engine.close());
  const echoed = await serveEcho(engine, group);
  console.log(`echo server stopped after ${echoed} request(s)`);
}
