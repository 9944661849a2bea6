// Tests that kill mutants of serveWorkers() and the Worker module it starts
// (src/serve_workers.ts, src/_serve_worker.ts, src/workers.ts) that the other tests let
// survive. The Workers inherit this process's permissions, so under `deno task mutate`
// the code they run is mutated too (unlike a child process without env permission).

import { assert, assertEquals } from "@std/assert";
import { connect, serveWorkers, Status } from "../mod.ts";
import { isKnown } from "../src/_transport_isolate.ts";
import { expectTofuError, within } from "./_peer_fixtures.ts";

const concurrency = new URL("./_mutants_peers_handler.ts", import.meta.url);

/** The isolate names of the relay-mode Workers started so far by this process. */
function workerNames(): string[] {
  const names: string[] = [];
  for (let k = 1; k <= 100; k++) {
    const name = `tofu-serve-${Deno.pid}-${k}`;
    if (isKnown(name)) names.push(name);
  }
  return names;
}

Deno.test("serveWorkers: close() ends each Worker's server gracefully: its peers get a bye, not a cut", async () => {
  const before = new Set(workerNames());
  const server = await serveWorkers("tcp|127.0.0.1|0", concurrency, { workers: 1 });
  const name = workerNames().find((n) => !before.has(n));
  if (name === undefined) throw new Error("the Worker's isolate name is not listened on");
  // A peer of the Worker's own server, beside the relay.
  const ch = await connect(`isolate|${name}`, { timeoutMs: 20_000 });
  using reply = await ch.request("direct", { timeoutMs: 20_000 });
  assertEquals(reply.body.text(), "1:direct");
  await server.close();
  // The Worker closed its server (a bye to every peer) before it was terminated.
  assertEquals(await within(ch.closed, 20_000, "the channel to the Worker closes"), Status.success);
  await ch.close();
  assert(!isKnown(name), "the Worker's name is gone");
});

Deno.test("serveWorkers: maxInFlight reaches each Worker's server", async () => {
  await using server = await serveWorkers("tcp|127.0.0.1|0", concurrency, {
    workers: 1,
    maxInFlight: 1,
  });
  await using ch = await connect(server.address, { timeoutMs: 20_000 });
  // Four at once: the relay passes them on together, the Worker runs one at a time.
  const replies = await Promise.all(
    [1, 2, 3, 4].map((i) => ch.request(`r${i}`, { timeoutMs: 20_000 })),
  );
  assertEquals(replies.map((r) => r.body.text()), ["1:r1", "1:r2", "1:r3", "1:r4"]);
  for (const r of replies) r[Symbol.dispose]();
});

Deno.test("serveWorkers: a handler module that fails to load is reported with its own message", async () => {
  const vectors = new URL("./_vectors.ts", import.meta.url).href;
  const err = await expectTofuError(
    serveWorkers("tcp|127.0.0.1|0", vectors, { workers: 1 }),
    Status.listenFailed,
  );
  assertEquals(
    err.message,
    `Cannot serve on Workers: ${vectors} exports no default (or "handler") function`,
  );
  // A module that throws something that is not an Error.
  const thrower = new URL("./_mutants_peers_throw_null.ts", import.meta.url);
  const err2 = await expectTofuError(
    serveWorkers("tcp|127.0.0.1|0", thrower, { workers: 1 }),
    Status.listenFailed,
  );
  assertEquals(err2.message, "Cannot serve on Workers: null");
});
