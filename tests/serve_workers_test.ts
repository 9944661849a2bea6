// serveWorkers(): a handler module served by several Workers behind one address, in both
// modes: reusePort (every Worker binds the port; needs --unstable-net, so it runs in a
// child process) and relay (this isolate binds it and passes requests over isolate channels).

import { assert, assertEquals, assertGreater, assertRejects } from "@std/assert";
import {
  connect,
  Engine,
  OpCode,
  serveWorkers,
  Status,
  TcpServerAddress,
  TofuError,
} from "../mod.ts";
import { tempUdsPath } from "../testing.ts";
import { recv, runChildJson } from "./_fixtures.ts";

const handler = new URL("./_serve_handler.ts", import.meta.url);

Deno.test("serveWorkers: two Workers serve one TCP port with reusePort, both take connections", async () => {
  const r = await runChildJson(
    new URL("./_serve_workers_child.ts", import.meta.url),
    ["--unstable-net", "--allow-net=127.0.0.1", "--allow-read"],
  );
  assertEquals([r.mode, r.workers], ["reusePort", 2]);
  assertGreater(r.counts["tofu-serve-1"] ?? 0, 0, JSON.stringify(r.counts));
  assertGreater(r.counts["tofu-serve-2"] ?? 0, 0, JSON.stringify(r.counts));
  assertEquals(r.counts["tofu-serve-1"] + r.counts["tofu-serve-2"], 40);
});

Deno.test("serveWorkers: without --unstable-net it relays to the Workers, and every Worker serves", async () => {
  await using server = await serveWorkers("tcp|127.0.0.1|0", handler, { workers: 2 });
  assertEquals([server.mode, server.workers], ["relay", 2]);
  assert(/^tcp\|127\.0\.0\.1\|[1-9][0-9]*$/.test(server.address), server.address);
  await using ch = await connect(server.address);
  const seen = new Set<string>();
  for (let i = 0; i < 10; i++) {
    using reply = await ch.request(`r${i}`);
    const [who, what] = reply.body.text().split(":");
    assertEquals(what, `r${i}`);
    seen.add(who!);
  }
  assertEquals([...seen].sort(), ["tofu-serve-1", "tofu-serve-2"]);
});

Deno.test("serveWorkers: reusePort asked for without --unstable-net fails with listen_failed, the process lives", async () => {
  const err = await assertRejects(
    () => serveWorkers("tcp|127.0.0.1|0", handler, { workers: 1, mode: "reusePort" }),
    TofuError,
    "Cannot serve on Workers",
  );
  assertEquals(err.status, Status.listenFailed);
  await assertRejects(() => serveWorkers("tcp|127.0.0.1|0", handler, { workers: 0 }), RangeError);
  // A module without a handler: the Worker reports it, the call fails, nothing is left running.
  await assertRejects(
    () => serveWorkers("tcp|127.0.0.1|0", new URL("./_vectors.ts", import.meta.url)),
    TofuError,
    "exports no default",
  );
});

Deno.test("Engine reusePort without --unstable-net: a TCP listen fails with listen_failed, the process lives", async () => {
  await using engine = new Engine({ reusePort: true });
  const g = engine.create();
  g.post(new TcpServerAddress("127.0.0.1", 0).format(engine.get("always")));
  const back = await recv(g);
  assertEquals([back.bhdr.opCode, back.bhdr.status], [OpCode.WelcomeResponse, Status.listenFailed]);
  assert(back.error?.message.includes("--unstable-net"), back.error?.message);
});

Deno.test("serveWorkers: a relative module path and a non-string address are refused with clear errors", async () => {
  // Before: "./x.ts" was resolved against the library's own file ("Module not found
  // file:///.../src/x.ts"), and a number as the address threw "address.startsWith is not a
  // function" (found by the hostile-tester helper).
  const rel = await assertRejects(
    () => serveWorkers("tcp|127.0.0.1|0", "./tests/_serve_handler.ts", { workers: 1 }),
    TypeError,
  );
  assertEquals(
    rel.message,
    'Cannot serve on Workers: the module ./tests/_serve_handler.ts is a relative path; pass new URL("./tests/_serve_handler.ts", import.meta.url)',
  );
  const num = await assertRejects(
    // deno-lint-ignore no-explicit-any
    () => serveWorkers(7099 as any, handler, { workers: 1 }),
    TypeError,
  );
  assertEquals(num.message, "Cannot serve on Workers: the address must be a string, got number");
  // An absolute path string is a file.
  await using server = await serveWorkers(
    `uds|${tempUdsPath()}`,
    new URL(handler).pathname,
    { workers: 1, mode: "relay" },
  );
  await using ch = await connect(server.address);
  using answer = await ch.request("ping", { timeoutMs: 10_000 });
  assertEquals(answer.bhdr.opCode, OpCode.Response);
});
