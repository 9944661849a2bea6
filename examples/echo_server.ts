/**
 * An echo server: accepts every client and answers each Request with a Response
 * carrying the same message id, headers and body.
 *
 *   deno run --allow-net=127.0.0.1 --allow-read=/dev/null examples/echo_server.ts [tcp|127.0.0.1|7099]
 *   deno run --allow-net=unix:/tmp/echo.sock --allow-read=/tmp --allow-write=/tmp \
 *     examples/echo_server.ts uds|/tmp/echo.sock
 *
 * `--allow-read=/dev/null` is optional: with it the listener keeps a reserve file
 * descriptor, which spares the process a Deno panic when descriptors run out.
 *
 * Stop it with Ctrl+C.
 *
 * @module
 */

// deno-lint-ignore-file no-console

import {
  type ChannelGroup,
  Engine,
  type Message,
  OpCode,
  Status,
  statusName,
  TcpServerAddress,
  TofuError,
  UdsServerAddress,
} from "../mod.ts";

/**
 * Serves `group` until the engine closes; returns the number of echoed requests.
 *
 * Peers are not trusted: a post the engine refuses (the peer left, or the channel is
 * closing or full) puts the message back and goes on, and frames the server does not
 * expect are put back too.
 */
export async function serveEcho(engine: Engine, group: ChannelGroup): Promise<number> {
  let echoed = 0;
  /** Answers `m` in place with opcode `op`; false if the engine refused the post. */
  const answer = (m: Message, op: number): boolean => {
    m.bhdr.opCode = op;
    try {
      group.post(m);
      return true;
    } catch (err) {
      // The channel closed, is closing (a second ByeRequest) or is full: drop the answer.
      if (!(err instanceof TofuError)) throw err;
      engine.put(m);
      return false;
    }
  };
  // Answers handed back per channel, told in one line when the channel closes: a peer that
  // never reads can leave thousands, and a line each would slow every other client.
  const handedBack = new Map<number, Map<number, number>>();
  for await (const m of group) {
    if (m.isFromEngine()) {
      // Reports: answers handed back because their peer left, pool_empty, closed channels.
      const { channelNumber: ch, opCode, status: st } = m.bhdr;
      engine.put(m);
      if (opCode !== OpCode.Signal) {
        const counts = handedBack.get(ch) ?? new Map<number, number>();
        counts.set(st, (counts.get(st) ?? 0) + 1);
        handedBack.set(ch, counts);
      } else if (st === Status.channelClosed) {
        for (const [status, n] of handedBack.get(ch) ?? []) {
          if (status !== Status.peerDisconnected && status !== Status.channelClosed) {
            console.error(`channel ${ch}: ${statusName(status)} x${n}`);
          }
        }
        handedBack.delete(ch);
      } else console.error(`channel ${ch}: ${statusName(st)}`);
      continue;
    }
    switch (m.bhdr.opCode) {
      case OpCode.HelloRequest:
        answer(m, OpCode.HelloResponse); // accept every client
        break;
      case OpCode.Request:
        if (answer(m, OpCode.Response)) echoed++; // same id, headers, body and `more`
        break;
      case OpCode.ByeRequest:
        answer(m, OpCode.ByeResponse);
        break;
      default:
        engine.put(m); // Signals, Responses and anything else a client sends
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
