// The examples are runnable programs; these tests keep them working.

import { assertEquals } from "@std/assert";
import { Engine } from "../mod.ts";
import { runEchoClient } from "../examples/echo_client.ts";
import { serveEcho } from "../examples/echo_server.ts";
import { ripWorker, spoolServer } from "../examples/print_server.ts";
import { listen, transports } from "./_fixtures.ts";

for (const t of transports) {
  Deno.test(`${t.name}: examples/echo_server.ts answers examples/echo_client.ts`, async () => {
    const serverEngine = new Engine();
    const server = await listen(serverEngine, t);
    const serving = serveEcho(serverEngine, server.group);
    await using clientEngine = new Engine();
    const bodies = await runEchoClient(clientEngine, server.bound, 3);
    assertEquals(bodies, ["hello #1", "hello #2", "hello #3"]);
    await serverEngine.close();
    assertEquals(await serving, 3);
  });
}

Deno.test("examples/print_server.ts: the spool server prints every job on the worker", async () => {
  await using spool = new Engine();
  await using worker = new Engine();
  let started!: (port: number) => void;
  const listening = new Promise<number>((r) => started = r);
  const server = spoolServer(spool, 0, started);
  assertEquals(await ripWorker(worker, await listening), 3);
  await server;
  // Both sides are done: nothing left open.
  assertEquals(spool.channelCount, 1, "only the listener stays");
  assertEquals(worker.channelCount, 0);
});
