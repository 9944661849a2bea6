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
 * A server that many peers share should run with `DENO_TOKIO_EVENT_INTERVAL=1`:
 *
 *   DENO_TOKIO_EVENT_INTERVAL=1 deno run --allow-net=127.0.0.1 --allow-read=/dev/null \
 *     examples/echo_server.ts
 *
 * By default Deno's runtime looks for new socket events only once per 61 turns of its
 * event loop while there is always work to do; a peer that always has data (one that
 * pipelines requests, or floods) keeps it that busy, and every other peer's requests then
 * wait in the kernel for 100-700 ms. With 1 it looks after every turn: a peer pipelining
 * requests then leaves other clients' round trips at 1-2 ms instead of 20-60 ms, for about
 * 10% of that peer's throughput (`deno run -A bench/pipelining_neighbour.ts`). See
 * docs/reliability.md, "A peer that always has data".
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
 * Peers are not trusted. A channel whose peer does not read its answers fills its send
 * queue until `post` refuses with `allocation_failed`: its answers then wait here, in
 * order, until `group.ready()` says the channel has room again. The requests they reuse
 * count against the channel's read share, so once it holds its share the engine stops
 * reading that peer alone: a peer that floods and never reads costs no CPU (answering and
 * dropping each of its requests would cost a refusal per request). What it holds is bounded
 * by that share (`maxChannelHeldMsgs`, 1,024 messages by default: up to 128 MiB per channel
 * of frames as large as the protocol allows; lower it where peers send large frames). Any
 * other refusal (the peer left, the channel is closing) puts the message back, and so do
 * frames the server does not expect.
 */
export async function serveEcho(engine: Engine, group: ChannelGroup): Promise<number> {
  let echoed = 0;
  /** Posts `m`: "full" leaves it with us, "dropped" put it back (refused otherwise). */
  const trySend = (m: Message): "sent" | "full" | "dropped" => {
    const isAnswer = m.bhdr.opCode === OpCode.Response;
    try {
      group.post(m); // m is the engine's now
      if (isAnswer) echoed++;
      return "sent";
    } catch (err) {
      if (!(err instanceof TofuError)) throw err;
      if (err.status === Status.allocationFailed) return "full";
      // The channel closed or is closing (a second ByeRequest): drop the answer.
      engine.put(m);
      return "dropped";
    }
  };
  // Answers waiting for room, per channel, oldest first.
  const waiting = new Map<number, Message[]>();
  /** Posts the answers held for `ch` as it gets room; puts them back if it closes. */
  const resume = async (ch: number, held: Message[]): Promise<void> => {
    let sent = 0;
    for (let stuck = 0;;) {
      try {
        // Past the engine-wide budget a channel with room of its own is refused too:
        // then retry gently rather than at once.
        if (stuck > 0) await new Promise((r) => setTimeout(r, 10));
        await group.ready(ch);
      } catch {
        // Closed, or the group destroyed: what is held can no longer be sent.
        for (let i = sent; i < held.length; i++) engine.put(held[i]!);
        waiting.delete(ch);
        return;
      }
      const before = sent;
      while (sent < held.length && trySend(held[sent]!) !== "full") sent++;
      if (sent === held.length) {
        waiting.delete(ch);
        return;
      }
      stuck = sent === before ? stuck + 1 : 0;
      held.splice(0, sent);
      sent = 0;
    }
  };
  /** Answers `m` in place with opcode `op`. */
  const answer = (m: Message, op: number): void => {
    m.bhdr.opCode = op;
    const ch = m.bhdr.channelNumber;
    const held = waiting.get(ch);
    if (held !== undefined) held.push(m); // behind the answers already waiting for room
    else if (trySend(m) === "full") {
      const first = [m];
      waiting.set(ch, first);
      void resume(ch, first);
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
        answer(m, OpCode.Response); // same id, headers, body and `more`
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
