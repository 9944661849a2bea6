/**
 * Recipe "MultiHomed" on the low-level layer: one engine, one channel group listening on
 * a TCP port and a Unix socket at once, answering every Request with an echo. Another
 * part of the program stops it with `group.updateReceiver()`: the loop sees the
 * `receiver_update` note and returns.
 *
 *   deno run --allow-net=127.0.0.1,unix:/tmp/tofu-multihomed.sock --allow-read=/tmp \
 *     --allow-write=/tmp examples/multihomed.ts [/tmp/tofu-multihomed.sock]
 *
 * @module
 */

// deno-lint-ignore-file no-console

import {
  type ChannelGroup,
  Engine,
  OpCode,
  Status,
  TcpServerAddress,
  UdsServerAddress,
} from "../mod.ts";

/** A running multi-homed server. */
export interface MultiHomed {
  /** The bound addresses (TCP with its real port, then the Unix socket). */
  addresses: string[];
  /** The group to stop it with: `group.updateReceiver()`. */
  group: ChannelGroup;
  /** Resolves with the number of Requests answered, once stopped. */
  done: Promise<number>;
}

/** Listens on `127.0.0.1:port` and `udsPath` in one group and serves until stopped. */
export async function startMultiHomed(
  engine: Engine,
  port: number,
  udsPath: string,
): Promise<MultiHomed> {
  const group = engine.create();
  group.post(new TcpServerAddress("127.0.0.1", port).format(engine.get("always")));
  group.post(new UdsServerAddress(udsPath).format(engine.get("always")));
  const addresses: string[] = [];
  while (addresses.length < 2) {
    using welcome = await group.waitReceive(10_000);
    if (welcome?.bhdr.opCode !== OpCode.WelcomeResponse || welcome.bhdr.status !== 0) {
      throw new Error(`Cannot listen: ${welcome?.error?.message ?? "no answer"}`);
    }
    addresses.push(welcome.headers.get("~listen_on")!);
  }
  return { addresses, group, done: serveUntilStopped(engine, group) };
}

async function serveUntilStopped(engine: Engine, group: ChannelGroup): Promise<number> {
  let answered = 0;
  for (;;) {
    const m = await group.waitReceive();
    if (m === null) continue;
    if (m.bhdr.status === Status.receiverUpdate) {
      engine.put(m);
      await engine.destroy(group); // closes both listeners and every peer
      return answered;
    }
    if (m.isFromEngine()) { // reports: closed channels, pool notes
      engine.put(m);
      continue;
    }
    if (m.bhdr.opCode === OpCode.HelloRequest) m.bhdr.opCode = OpCode.HelloResponse;
    else if (m.bhdr.opCode === OpCode.Request) {
      m.bhdr.opCode = OpCode.Response; // the echo: same id, same body
      answered++;
    } else if (m.bhdr.opCode === OpCode.ByeRequest) m.bhdr.opCode = OpCode.ByeResponse;
    else {
      engine.put(m);
      continue;
    }
    try {
      group.post(m);
    } catch {
      engine.put(m); // the peer left meanwhile
    }
  }
}

if (import.meta.main) {
  const engine = new Engine();
  const server = await startMultiHomed(engine, 0, Deno.args[0] ?? "/tmp/tofu-multihomed.sock");
  console.log(`listening on ${server.addresses.join(" and ")}; Ctrl-C stops`);
  Deno.addSignalListener("SIGINT", () => server.group.updateReceiver());
  console.log(`stopped after ${await server.done} requests`);
  await engine.close();
}
