// The Peers layer's calls without an `engine` option share one default engine, which
// `channel.engine` exposes. Closing it (`await ch.engine.close()`, a natural clean-up)
// made every later connect, listen and serve of the process fail for good with "the engine
// is closed". Found by the hostile-tester helper. Now the next call gets a new default.

import { assertEquals, assertNotStrictEquals } from "@std/assert";
import { connect, serve } from "../mod.ts";

Deno.test("closing the default engine does not break later connects and serves", async () => {
  const first = await serve("tcp|127.0.0.1|0", () => "first");
  const ch = await connect(first.address);
  const closedEngine = ch.engine;
  await ch.engine.close();
  await first.close();
  // Before: rejected with shutdown_started ("Cannot create group: the engine is closed").
  await using server = await serve("tcp|127.0.0.1|0", () => "again");
  await using again = await connect(server.address);
  assertNotStrictEquals(again.engine, closedEngine);
  using answer = await again.request("x", { timeoutMs: 5_000 });
  assertEquals(answer.body.text(), "again");
});
