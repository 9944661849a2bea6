// A connected listener/client/peer triple and a next-message helper, shared by the Peers-layer
// mutation tests.

import { assert } from "@std/assert";
import { type Channel, connect, type Engine, listen, type Listener, type Message } from "../mod.ts";
import { within } from "./_peer_fixtures.ts";

/** A listener, a client connected to it, and the accepted peer. */
export interface Pair extends AsyncDisposable {
  listener: Listener;
  client: Channel;
  peer: Channel;
}

/** A listener, a client connected to it, and the accepted peer. */
export async function pair(
  t: { any(): string },
  engine?: Engine,
  connectOptions: { timeoutMs?: number } = {},
): Promise<Pair> {
  const options = engine ? { engine } : {};
  const listener = await listen(t.any(), options);
  const client = await connect(listener.address, { ...options, ...connectOptions });
  const peer = (await listener[Symbol.asyncIterator]().next()).value as Channel;
  return {
    listener,
    client,
    peer,
    async [Symbol.asyncDispose]() {
      await client.close();
      await listener.close();
    },
  };
}

/** The next message `ch` yields. */
export async function nextOf(ch: Channel): Promise<Message> {
  const r = await within(ch[Symbol.asyncIterator]().next(), 20_000, "the next message");
  assert(!r.done, "the channel ended");
  return r.value as Message;
}
