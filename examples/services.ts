/**
 * Recipe "Services": a dispatcher on the low-level layer that routes every message by
 * its channel to a service object. Each peer gets its own service (here a small
 * key-value session: `set NAME VALUE`, `get NAME`, `count`); the dispatcher owns the
 * loop, the handshake and the bye, and the service only turns requests into answers.
 *
 *   deno run --allow-net=127.0.0.1 examples/services.ts [port]
 *
 * @module
 */

// deno-lint-ignore-file no-console

import { type ChannelGroup, Engine, type Message, OpCode, TcpServerAddress } from "../mod.ts";

/** One peer's service: it answers that peer's Requests and hears when it leaves. */
export interface Service {
  /** Fills `reply` (already a Response with the request's id) from `req`. */
  onRequest(req: Message, reply: Message): void;
  /** The peer's channel closed. */
  onClose(): void;
}

/** A key-value session: the state lives as long as the peer's channel. */
export class KeyValueService implements Service {
  readonly #values = new Map<string, string>();
  #requests = 0;
  closed = false;

  onRequest(req: Message, reply: Message): void {
    this.#requests++;
    const [verb, name = "", ...rest] = req.body.text().split(" ");
    if (verb === "set") {
      this.#values.set(name, rest.join(" "));
      reply.body.set("ok");
    } else if (verb === "get") {
      reply.body.set(this.#values.get(name) ?? "");
    } else if (verb === "count") {
      reply.body.set(String(this.#requests));
    } else {
      reply.headers.append("error", `unknown verb ${verb}`);
    }
  }

  onClose(): void {
    this.closed = true;
  }
}

/** Routes the messages of `group` to one service per channel, until the group is destroyed. */
export async function dispatch(
  engine: Engine,
  group: ChannelGroup,
  makeService: (channel: number) => Service,
): Promise<void> {
  const services = new Map<number, Service>();
  for await (const m of group) {
    const channel = m.bhdr.channelNumber;
    const op = m.bhdr.opCode;
    if (m.isFromEngine()) {
      if (op === OpCode.Signal && services.has(channel)) { // a channel_closed report
        services.get(channel)!.onClose();
        services.delete(channel);
      }
      engine.put(m);
      continue;
    }
    if (op === OpCode.HelloRequest) {
      services.set(channel, makeService(channel));
      m.bhdr.opCode = OpCode.HelloResponse;
    } else if (op === OpCode.ByeRequest) {
      m.bhdr.opCode = OpCode.ByeResponse;
    } else if (op === OpCode.Request && services.has(channel)) {
      const reply = engine.get("always");
      reply.bhdr.opCode = OpCode.Response;
      reply.bhdr.channelNumber = channel;
      reply.bhdr.messageId = m.bhdr.messageId;
      services.get(channel)!.onRequest(m, reply);
      engine.put(m);
      post(engine, group, reply);
      continue;
    } else {
      engine.put(m);
      continue;
    }
    post(engine, group, m);
  }
  for (const s of services.values()) s.onClose();
}

function post(engine: Engine, group: ChannelGroup, m: Message): void {
  try {
    group.post(m);
  } catch {
    engine.put(m); // the channel closed meanwhile
  }
}

/** Starts listening on `127.0.0.1:port`; resolves with the group and its bound address. */
export async function listenForServices(
  engine: Engine,
  port: number,
): Promise<{ group: ChannelGroup; address: string }> {
  const group = engine.create();
  group.post(new TcpServerAddress("127.0.0.1", port).format(engine.get("always")));
  using welcome = await group.waitReceive(10_000);
  const address = welcome?.headers.get("~listen_on");
  if (welcome?.bhdr.status !== 0 || !address) {
    throw new Error(`Cannot listen: ${welcome?.error?.message ?? "no answer"}`);
  }
  return { group, address };
}

if (import.meta.main) {
  await using engine = new Engine();
  const { group, address } = await listenForServices(engine, Number(Deno.args[0] ?? 7099));
  console.log(`key-value services on ${address}`);
  await dispatch(engine, group, () => new KeyValueService());
}
