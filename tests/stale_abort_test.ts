// A re-dialing channel whose handshake it aborted itself (found by the hostile-tester
// helper): the abort's cause was kept, and #abortLink does nothing while a cause is set, so
// on every later connection a misbehaving peer was no longer cut off (a Request with id 0,
// too many streams, a ByeRequest with id 0) and the next close reported the stale status.

import { assertEquals } from "@std/assert";
import { connect, OpCode } from "../mod.ts";
import { frame } from "./_attack.ts";
import { readFrames } from "./_raw_peer.ts";

Deno.test("a handshake aborted for a bad frame leaves no cause behind: the next connection is checked", async () => {
  using l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  const id0 = frame(OpCode.Request, "no answer possible", 0n);
  const server = (async () => {
    // First connection: a Request with id 0 before the HelloResponse; the client aborts it.
    const c1 = await l.accept();
    await readFrames(c1, 1);
    await c1.write(id0);
    await c1.read(new Uint8Array(1024)).catch(() => null);
    c1.close();
    // Second connection: the handshake, then the same Request with id 0.
    const c2 = await l.accept();
    await readFrames(c2, 1);
    await c2.write(frame(OpCode.HelloResponse));
    await new Promise((r) => setTimeout(r, 100));
    await c2.write(id0);
    const end = await Promise.race([
      c2.read(new Uint8Array(1024)).catch(() => null),
      new Promise((r) => setTimeout(() => r("still open"), 3000)),
    ]);
    c2.close();
    return end;
  })();
  const ch = await connect(`tcp|127.0.0.1|${port}`, {
    reconnect: { initialDelayMs: 10, maxAttempts: 1 },
    timeoutMs: 5000,
  });
  // Before: "still open" (the id-0 Request was dropped and the connection kept).
  assertEquals(await server, null, "the client ends the connection");
  ch.abort(); // it re-dials, to a listener that no longer accepts
  await ch.closed;
});
