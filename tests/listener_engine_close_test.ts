// When its engine closes, a Listener accepts no more: `for await (const peer of listener)`
// must end, as each of its channels does (closed -> shutdown_started). It waited for ever,
// until listener.close(). Found by the hostile-tester helper.

import { assertEquals } from "@std/assert";
import { deadline } from "@std/async/deadline";
import { connect, Engine, listen, Status } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";

for (const t of ["tcp", "uds"]) {
  const address = () => t === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`;

  Deno.test(`${t}: a Listener's iteration ends when its engine closes`, async () => {
    const engine = new Engine();
    const listener = await listen(address(), { engine });
    const accepted: number[] = [];
    const loop = (async () => {
      for await (const peer of listener) accepted.push(peer.channelNumber);
      return "ended";
    })();
    const client = await connect(listener.address, { engine });
    await engine.close();
    // Before: the loop was still waiting at the 10 s bound.
    assertEquals(await deadline(loop, 10_000), "ended");
    assertEquals(accepted.length, 1);
    assertEquals(await client.closed, Status.shutdownStarted);
    await deadline(listener.close(), 10_000);
  });
}
