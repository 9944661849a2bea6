// Tests that kill mutants of serveWorkers() and the Worker module it starts
// (src/serve_workers.ts, src/_serve_worker.ts, src/workers.ts) that the other tests let
// survive. The Workers inherit this process's permissions, so under `deno task mutate`
// the code they run is mutated too (unlike a child process without env permission).

import { assert, assertEquals, assertRejects, assertStrictEquals, assertThrows } from "@std/assert";
import {
  connect,
  isolateListening,
  linkParent,
  linkWorker,
  serve,
  serveWorkers,
  Status,
  statusName,
} from "../mod.ts";
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
  assertEquals([server.mode, server.workers], ["relay", 1]);
  await using ch = await connect(server.address, { timeoutMs: 20_000 });
  // The relay passes the request's headers on.
  using echoed = await ch.request("x", { headers: { echo: "passed on" }, timeoutMs: 20_000 });
  assertEquals(echoed.body.text(), "echo:passed on");
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
  assert(err.cause instanceof Error, "the Worker's error is the cause");
  // A module that throws something that is not an Error.
  const thrower = new URL("./_mutants_peers_throw_null.ts", import.meta.url);
  const err2 = await expectTofuError(
    serveWorkers("tcp|127.0.0.1|0", thrower, { workers: 1 }),
    Status.listenFailed,
  );
  assertEquals(err2.message, "Cannot serve on Workers: null");
});

/** A Worker running tests/_isolate_worker.ts, linked, serving Peers requests on `name`. */
async function servingWorker(name: string) {
  const worker = new Worker(new URL("./_isolate_worker.ts", import.meta.url), { type: "module" });
  const link = linkWorker(worker);
  const answered = new Promise<Record<string, unknown>>((resolve) =>
    worker.addEventListener("message", (e) => resolve((e as MessageEvent).data), { once: true })
  );
  worker.postMessage({ cmd: "serve", name });
  assertEquals(await within(answered, 20_000, "the Worker serves"), { done: "serve" });
  await isolateListening(name, { signal: AbortSignal.timeout(20_000) });
  return { worker, link };
}

Deno.test("linkWorker() refuses a Worker twice; linkParent() refuses outside a Worker", async () => {
  const worker = new Worker(new URL("./_isolate_worker.ts", import.meta.url), { type: "module" });
  try {
    using link = linkWorker(worker);
    const err = assertThrows(() => linkWorker(worker), TypeError);
    assertEquals(err.message, "Cannot link worker: it is already linked");
    assert(!link.closed);
  } finally {
    worker.terminate();
  }
  const err = await assertRejects(() => linkParent(), TypeError);
  assertEquals(err.message, "Cannot link to the parent: not running in a Worker");
});

Deno.test("isolateListening(): a known name at once; an abort rejects with its reason", async () => {
  const name = `known-${Deno.pid}`;
  await using server = await serve(`isolate|${name}`, () => "x");
  await isolateListening(name); // listened on here: at once
  const reason = new Error("gave up");
  const unknown = `unknown-${Deno.pid}`;
  assertStrictEquals(
    await assertRejects(() => isolateListening(unknown, { signal: AbortSignal.abort(reason) })),
    reason,
  );
  const ac = new AbortController();
  const waiting = isolateListening(unknown, { signal: ac.signal });
  ac.abort(reason);
  assertStrictEquals(await assertRejects(() => waiting), reason);
  // A wait that is answered by a listen later.
  const later = isolateListening(`later-${Deno.pid}`, { signal: AbortSignal.timeout(20_000) });
  await using _late = await serve(`isolate|later-${Deno.pid}`, () => "y");
  await later;
  assertEquals(server.address, `isolate|${name}`);
});

Deno.test("IsolateLink.close() ends the link: channels across it close, the name goes", async () => {
  const name = `closing-${Deno.pid}`;
  const { worker, link } = await servingWorker(name);
  try {
    const ch = await connect(`isolate|${name}`, { timeoutMs: 20_000 });
    using reply = await ch.request("one", { timeoutMs: 20_000 });
    assertEquals(reply.body.text(), "worker:one");
    link.close();
    assert(link.closed);
    link[Symbol.dispose](); // again: nothing happens
    assertEquals(await within(link.ended, 20_000, "the link ends"), { reason: "closed" });
    const status = await within(ch.closed, 20_000, "the channel closes");
    assertEquals(statusName(status), "peer_disconnected");
    assert(!isKnown(name), "the Worker's name is no longer reachable");
    await ch.close();
  } finally {
    worker.terminate();
  }
});

Deno.test("an IsolateLink ends when disposed (using)", async () => {
  const name = `disposed-${Deno.pid}`;
  const { worker, link } = await servingWorker(name);
  try {
    {
      using _link = link;
    }
    assert(link.closed, "disposing ends the link");
    assertEquals(await within(link.ended, 20_000, "the link ends"), { reason: "closed" });
  } finally {
    worker.terminate();
  }
});

Deno.test("serveWorkers() checks its options: workers, mode and the start timeout", async () => {
  const range = await assertRejects(
    () => serveWorkers("tcp|127.0.0.1|0", concurrency, { workers: 0 }),
    RangeError,
  );
  assertEquals(range.message, "Cannot serve on Workers: workers 0 is not a positive integer");
  const mode = await expectTofuError(
    serveWorkers("tcp|127.0.0.1|0", concurrency, { workers: 1, mode: "reusePort" }),
    Status.listenFailed,
  );
  assertEquals(
    mode.message,
    "Cannot serve on Workers: reusePort needs a tcp address, Linux and --unstable-net",
  );
  // No Worker starts within 1 ms: the call fails and leaves nothing running.
  const slow = await expectTofuError(
    serveWorkers("tcp|127.0.0.1|0", concurrency, { workers: 1, startTimeoutMs: 1 }),
    Status.listenFailed,
  );
  assertEquals(slow.message, "Cannot serve on Workers: the Worker did not start within 1 ms");
  // The relay cannot bind: the listen error is passed on as it is.
  await using taken = await serve("tcp|127.0.0.1|0", () => "");
  const inUse = await expectTofuError(
    serveWorkers(taken.address, concurrency, { workers: 1 }),
    Status.listenFailed,
  );
  assert(inUse.message.startsWith(`Cannot listen on ${taken.address}: `), inUse.message);
});
