// Tests that kill mutants of the Worker files (src/workers.ts, src/serve_workers.ts,
// src/_serve_worker.ts) left by tests/mutants_peers_workers_test.ts. The Workers inherit this
// process's permissions, so under `deno task mutate` the code they run is mutated too.

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import {
  type Channel,
  connect,
  type IsolateLink,
  linkWorker,
  listen,
  serveWorkers,
  Status,
  statusName,
} from "../mod.ts";
import { isKnown } from "../src/_transport_isolate.ts";
import { expectTofuError, within } from "./_peer_fixtures.ts";
import { runChildJson } from "./_fixtures.ts";

interface Spawned {
  worker: Worker;
  link: IsolateLink;
  /** Every message the Worker posted that reached a listener added after linkWorker(). */
  seen: unknown[];
  cmd(c: Record<string, unknown>): Promise<Record<string, unknown>>;
}

/** A linked Worker running tests/_mutants_peers3_worker.ts. */
function spawn(): Spawned {
  const worker = new Worker(new URL("./_mutants_peers3_worker.ts", import.meta.url), {
    type: "module",
  });
  const link = linkWorker(worker);
  let answer: ((m: Record<string, unknown>) => void) | null = null;
  const seen: unknown[] = [];
  // Posted before any message of the link's setup reaches the Worker: linkParent() must
  // leave it to the Worker's application.
  worker.postMessage(null);
  worker.addEventListener("message", (e) => {
    const m = (e as MessageEvent).data;
    seen.push(m);
    if (m !== null && ("done" in m || "error" in m)) answer?.(m);
  });
  return {
    worker,
    link,
    seen,
    cmd: (c) =>
      within(
        new Promise((resolve, reject) => {
          answer = (m) => {
            answer = null;
            if ("error" in m) reject(new Error(String(m.error)));
            else resolve(m);
          };
          worker.postMessage(c);
        }),
        20_000,
        `the Worker's answer to ${c.cmd}`,
      ),
  };
}

let names = 0;

for (const how of ["close", "exit"] as const) {
  const call = how === "close" ? "self.close()" : "Deno.exit()";
  Deno.test(`a Worker that dialled its parent and calls ${call}: the parent's channel closes with peer_disconnected`, async () => {
    const name = `peers3-dialler-${Deno.pid}-${++names}`;
    await using listener = await listen(`isolate|${name}`);
    const w = spawn();
    try {
      await w.cmd({ cmd: "dial", address: `isolate|${name}` });
      const peers = listener[Symbol.asyncIterator]();
      const first = await within(peers.next(), 20_000, "the Worker's channel is accepted");
      const peer: Channel = first.value;
      await w.cmd({ cmd: how });
      // The Worker is the connector of this pipe: ending, it closes its own end of it.
      const status = await within(peer.closed, 20_000, "the channel from the Worker closes");
      assertEquals(statusName(status), "peer_disconnected");
      await peer.close();
      // The Worker's own messages posted before it linked reach the application; the link's
      // setup message does not (linkWorker() consumed it).
      assertEquals(w.seen, [null, { hello: "before the link" }, { done: "dial" }, { done: how }]);
    } finally {
      w.worker.terminate();
    }
    assertEquals((await within(w.link.ended, 20_000, "the link ends")).reason, "terminated");
  });
}

Deno.test("once its link is closed, a Worker's uncaught error is the application's again", async () => {
  const w = spawn();
  try {
    await w.cmd({ cmd: "ping" }); // linked
    w.link.close();
    assertEquals(await within(w.link.ended, 20_000, "the link ends"), { reason: "closed" });
    const event = new Promise<boolean>((resolve) =>
      w.worker.addEventListener("error", (e) => {
        const cancelled = e.defaultPrevented;
        e.preventDefault(); // this test's own choice: the error must not end the test process
        resolve(cancelled);
      })
    );
    await w.cmd({ cmd: "crash" });
    const cancelled = await within(event, 20_000, "the Worker's error event");
    assertEquals(cancelled, false, "the ended link no longer cancels the Worker's errors");
  } finally {
    w.worker.terminate();
  }
});

/**
 * Runs `f` with every 2-second timer of this isolate stretched to 10 minutes, so that code
 * that ends on such a fallback timer instead of on the event it waits for hangs (and the
 * caller's own deadline, which is not 2 s, fails the test) rather than passing slowly.
 */
async function withoutTwoSecondFallbacks<T>(f: () => Promise<T>): Promise<T> {
  const real = globalThis.setTimeout;
  globalThis.setTimeout = ((...a: Parameters<typeof setTimeout>) => {
    const [handler, ms, ...args] = a;
    return real(handler, ms === 2000 ? 600_000 : ms, ...args);
  }) as typeof setTimeout;
  try {
    return await f();
  } finally {
    globalThis.setTimeout = real;
  }
}

const handler = new URL("./_mutants_peers_handler.ts", import.meta.url);

Deno.test("serveWorkers: close() ends when each Worker says its server closed, not on the 2-second fallback", async () => {
  const server = await serveWorkers("tcp|127.0.0.1|0", handler, { workers: 2 });
  const ch = await connect(server.address, { timeoutMs: 20_000 });
  using reply = await ch.request("x", { timeoutMs: 20_000 });
  assertEquals(reply.body.text(), "1:x");
  await withoutTwoSecondFallbacks(() => within(server.close(), 20_000, "close() ends"));
  assertEquals(
    statusName(await within(ch.closed, 20_000, "the client's channel closes")),
    "success",
  );
  await ch.close();
});

Deno.test("serveWorkers: a Worker that dies while its server closes ends close() at once", async () => {
  const crash = new URL("./_mutants_peers3_crash_on_close.ts", import.meta.url);
  const server = await serveWorkers("tcp|127.0.0.1|0", crash, { workers: 1 });
  const ch = await connect(server.address, { timeoutMs: 20_000 });
  using reply = await ch.request("x", { timeoutMs: 20_000 });
  assertEquals(reply.body.text(), "alive");
  // Its link ends with the error: close() waits no longer for an answer.
  await withoutTwoSecondFallbacks(() => within(server.close(), 20_000, "close() ends"));
  await ch.close();
});

Deno.test("serveWorkers: a Worker that dies while it starts fails the call with the reason, at once", async () => {
  const crash = new URL("./_mutants_peers3_crash_on_start.ts", import.meta.url);
  const err = await within(
    expectTofuError(
      serveWorkers("tcp|127.0.0.1|0", crash, { workers: 1, startTimeoutMs: 600_000 }),
      Status.listenFailed,
    ),
    20_000,
    "serveWorkers() fails",
  );
  // The Worker's error as its error event gives it (Deno: "Uncaught Error: ...").
  assert(
    err.message.startsWith("Cannot serve on Workers: the Worker ended (error): "),
    err.message,
  );
  assertStringIncludes(err.message, "Error: the Worker crashed while starting, on purpose");
});

Deno.test("serveWorkers under --unstable-net: Workers accept on a TCP port themselves; a Unix socket is relayed", async () => {
  // The child gets env permission so that, under `deno task mutate`, it runs the mutant too.
  const r = await runChildJson(
    new URL("./_mutants_peers3_reuse_child.ts", import.meta.url),
    ["--unstable-net", "--allow-net", "--allow-read", "--allow-write=/tmp", "--allow-env"],
  );
  assertEquals(r, {
    tcp: { mode: "reusePort", address: true, seen: "the bound address" },
    uds: { mode: "relay", address: true, seen: "an isolate address" },
  });
});

/** The isolate names of the relay-mode Workers started so far by this process. */
function workerNames(): string[] {
  const names: string[] = [];
  for (let k = 1; k <= 200; k++) {
    const name = `tofu-serve-${Deno.pid}-${k}`;
    if (isKnown(name)) names.push(name);
  }
  return names;
}

Deno.test("serveWorkers: a handler module that posts its own messages to the parent starts and closes as usual", async () => {
  const chatty = new URL("./_mutants_peers3_chatty_handler.ts", import.meta.url);
  const before = new Set(workerNames());
  const server = await serveWorkers("tcp|127.0.0.1|0", chatty, { workers: 1 });
  const name = workerNames().find((n) => !before.has(n));
  if (name === undefined) throw new Error("the Worker's isolate name is not listened on");
  const ch = await connect(server.address, { timeoutMs: 20_000 });
  using reply = await ch.request("x", { timeoutMs: 20_000 });
  assertEquals(reply.body.text(), "chatty");
  // A peer of the Worker's own server: the Worker closes it with a bye before it is ended,
  // though its handler module posts a note when asked to close.
  const direct = await connect(`isolate|${name}`, { timeoutMs: 20_000 });
  await within(server.close(), 20_000, "close() ends");
  assertEquals(
    statusName(await within(direct.closed, 20_000, "the direct channel closes")),
    "success",
  );
  assertEquals(
    statusName(await within(ch.closed, 20_000, "the client's channel closes")),
    "success",
  );
  await direct.close();
  await ch.close();
});

Deno.test("serveWorkers: a Worker whose name never reaches the relay fails the call after startTimeoutMs", async () => {
  const unlink = new URL("./_mutants_peers3_unlink_handler.ts", import.meta.url);
  await within(
    expectTofuError(
      serveWorkers("tcp|127.0.0.1|0", unlink, { workers: 1, startTimeoutMs: 3000 }),
      Status.listenFailed,
    ),
    20_000,
    "serveWorkers() fails",
  );
});

Deno.test("serveWorkers: await using closes the server at the end of the block", async () => {
  let address = "";
  {
    await using server = await serveWorkers("tcp|127.0.0.1|0", handler, { workers: 1 });
    address = server.address;
    await using ch = await connect(address, { timeoutMs: 20_000 });
    using reply = await ch.request("x", { timeoutMs: 20_000 });
    assertEquals(reply.body.text(), "1:x");
  }
  await expectTofuError(connect(address, { timeoutMs: 20_000 }), Status.connectFailed);
});

Deno.test("serveWorkers: a Worker closed before its server exists ends without an uncaught error", async () => {
  const out = await new Deno.Command("deno", {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-read",
      "--allow-env",
      new URL("./_mutants_peers3_early_close_child.ts", import.meta.url).pathname,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, stderr);
  assertEquals(stdout, "Cannot serve on Workers: the Worker did not start within 1 ms");
  assertEquals(stderr, "");
});
