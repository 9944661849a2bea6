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
