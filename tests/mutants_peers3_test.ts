// Tests that kill mutants of the Peers files (src/listener.ts, src/server.ts) and of the Unix
// socket transport (src/_transport_uds.ts) left by the earlier mutant tests, over real
// sockets, TCP and Unix sockets alike.

import { assert, assertEquals } from "@std/assert";
import { encodeFrame, Engine, listen, Message, OpCode } from "../mod.ts";
import { peerTransports, within } from "./_peer_fixtures.ts";
import { rawConnect, writeAll } from "./_fixtures.ts";

/**
 * Calls `f` with every timer of 1 or 2 seconds it starts stretched to 10 minutes: the close
 * graces of a listener (1 s) and a channel (2 s) then wait until the peer acts, so a test can
 * look at what happens meanwhile without racing the grace.
 */
function withLongGraces<T>(f: () => T): T {
  const real = globalThis.setTimeout;
  globalThis.setTimeout = ((...a: Parameters<typeof setTimeout>) => {
    const [handler, ms, ...args] = a;
    return real(handler, ms === 1000 || ms === 2000 ? 600_000 : ms, ...args);
  }) as typeof setTimeout;
  try {
    return f();
  } finally {
    globalThis.setTimeout = real;
  }
}

function hello(address: string): Uint8Array {
  const m = new Message();
  m.bhdr.opCode = OpCode.HelloRequest;
  m.bhdr.messageId = 1n;
  m.headers.append("~connect_to", address);
  return encodeFrame(m);
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: a closing listener stops accepting at once, while it waits for its peers' byes`, async () => {
    await using engine = new Engine();
    const listener = await listen(t.any(), { engine });
    const address = listener.address;
    // A peer that completes the handshake and never answers the bye holds the close.
    const deaf = await rawConnect(address);
    await writeAll(deaf, hello(address));
    await within(listener[Symbol.asyncIterator]().next(), 20_000, "the deaf peer is accepted");
    const closing = withLongGraces(() => listener.close());
    // The listening socket goes first: connecting fails long before the close ends.
    let refused = false;
    for (let i = 0; i < 1000 && !refused; i++) {
      try {
        (await rawConnect(address)).close();
        await new Promise((r) => setTimeout(r, 20));
      } catch {
        refused = true;
      }
    }
    assert(refused, "connects were still accepted while the listener closed");
    deaf.close(); // the deaf peer goes: its channel ends, and the close with it
    await within(closing, 20_000, "listener.close()");
    assertEquals(engine.channelCount, 0);
  });
}
