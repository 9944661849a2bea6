// serveWorkers() in relay mode over weeks: a Worker that dies (an uncaught error in the
// application's module ends it) must not take a share of every later request with it.

import { assertEquals, assertRejects } from "@std/assert";
import { connect, serveWorkers } from "../mod.ts";
import { transports } from "./_fixtures.ts";

const handler = new URL("./_review_peers_die_handler.ts", import.meta.url);

// Before the fix the relay kept handing every other request to the dead Worker's closed
// channel: 3 of the 6 requests after the death failed ("the channel is closed"), and so
// would half of all requests for as long as the server ran. After: the live Worker answers all.
for (const t of transports) {
  Deno.test(`${t.name}: serveWorkers relay: after a Worker died, the live Workers answer every request`, async () => {
    await using server = await serveWorkers(t.listenAt().toString(), handler, {
      workers: 2,
      mode: "relay",
    });
    await using ch = await connect(server.address);
    const names = new Set<string>();
    for (let i = 0; i < 4; i++) names.add((await ch.request("who")).body.text());
    assertEquals([...names].sort(), ["tofu-serve-1", "tofu-serve-2"]);
    // The request that kills its Worker fails once the relay's channel to it has closed.
    await assertRejects(() => ch.request("die", { timeoutMs: 20_000 }), Error, "closed");
    const after: string[] = [];
    for (let i = 0; i < 6; i++) {
      after.push(await ch.request("who").then((m) => m.body.text(), (e) => `failed: ${e.message}`));
    }
    assertEquals(after.filter((a) => a.startsWith("failed")), [], after.join("\n"));
    assertEquals(new Set(after).size, 1, after.join("\n"));
  });
}
