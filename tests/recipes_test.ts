// The recipes in examples/: the five tasks of the README's table (run as programs, and
// kept within the line counts the README states) and the longer recipes (run in-process).

import { assert, assertEquals } from "@std/assert";
import { connect, Engine, serve } from "../mod.ts";
import { freeTcpPort, tempUdsPath } from "../testing.ts";
import { startMultiHomed } from "../examples/multihomed.ts";
import { dispatch, KeyValueService, listenForServices } from "../examples/services.ts";
import { echoes } from "../examples/peers_echo_client.ts";
import { serveEchoes } from "../examples/peers_echo_server.ts";
import { askRepeatedly } from "../examples/reconnecting_client.ts";
import { serveEcho } from "../examples/echo_server.ts";
import { listen, transports } from "./_fixtures.ts";

/** Lines that are neither blank nor comments: how the README's table counts. */
export function codeLines(source: string): number {
  let inBlock = false;
  let n = 0;
  for (const raw of source.split("\n")) {
    const line = raw.trim();
    if (inBlock) {
      if (line.includes("*/")) inBlock = false;
      continue;
    }
    if (line === "" || line.startsWith("//")) continue;
    if (line.startsWith("/*")) {
      inBlock = !line.includes("*/");
      continue;
    }
    n++;
  }
  return n;
}

// The best of zeromq.js 6 and NATS for each task, as issue #9 measured them.
const tasks = [
  { file: "task_request_tcp.ts", best: 7, uds: false, out: ["PING"] },
  { file: "task_request_uds.ts", best: 9, uds: true, out: ["PING"] },
  { file: "task_stream.ts", best: 17, uds: false, out: ["1000 chunks, 9890 bytes"] },
  { file: "task_multihomed.ts", best: 13, uds: true, out: ["hello over tcp", "hello over uds"] },
  { file: "task_reconnect.ts", best: 11, uds: true, out: ["first server", "second server"] },
];

for (const task of tasks) {
  Deno.test(`examples/${task.file} prints what it promises, in at most ${task.best} lines`, async () => {
    const url = new URL(`../examples/${task.file}`, import.meta.url);
    const lines = codeLines(await Deno.readTextFile(url));
    assert(lines <= task.best, `${task.file}: ${lines} lines, the best peer needs ${task.best}`);
    const path = tempUdsPath();
    const out = await new Deno.Command("deno", {
      args: [
        "run",
        `--allow-net=127.0.0.1${task.uds ? `,unix:${path}` : ""}`,
        "--allow-read=/tmp",
        "--allow-write=/tmp",
        url.pathname,
        path,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(new TextDecoder().decode(out.stderr), "");
    assertEquals(new TextDecoder().decode(out.stdout).trim().split("\n"), task.out);
    assertEquals(out.code, 0);
  });
}

Deno.test("examples/multihomed.ts serves TCP and a Unix socket and stops on updateReceiver", async () => {
  await using engine = new Engine();
  const server = await startMultiHomed(engine, 0, tempUdsPath());
  assertEquals(server.addresses.map((a) => a.split("|")[0]), ["tcp", "uds"]);
  for (const address of server.addresses) {
    await using ch = await connect(address, { engine });
    using reply = await ch.request(`over ${address}`);
    assertEquals(reply.body.text(), `over ${address}`);
  }
  server.group.updateReceiver(); // from outside the serving loop
  assertEquals(await server.done, 2);
  assertEquals(engine.channelCount, 0, "listeners closed");
});

Deno.test("examples/services.ts routes each peer's messages to its own service", async () => {
  await using engine = new Engine();
  const { group, address } = await listenForServices(engine, 0);
  const made: KeyValueService[] = [];
  const dispatching = dispatch(engine, group, () => {
    const s = new KeyValueService();
    made.push(s);
    return s;
  });
  const text = async (ch: Awaited<ReturnType<typeof connect>>, body: string) => {
    using reply = await ch.request(body, { timeoutMs: 10_000 });
    return reply.body.text();
  };
  const a = await connect(address, { engine });
  await using b = await connect(address, { engine });
  assertEquals(await text(a, "set colour red"), "ok");
  assertEquals(await text(b, "set colour blue"), "ok");
  assertEquals(await text(a, "get colour"), "red");
  assertEquals(await text(b, "get colour"), "blue");
  assertEquals(await text(b, "count"), "3");
  assertEquals(made.length, 2);
  await a.close();
  for (let i = 0; i < 100 && !made[0]!.closed; i++) await new Promise((r) => setTimeout(r, 10));
  assert(made[0]!.closed, "the first peer's service heard its channel close");
  assert(!made[1]!.closed);
  await b.close();
  await engine.destroy(group);
  await dispatching;
  assert(made[1]!.closed);
});

for (const t of transports) {
  Deno.test(`${t.name}: examples/peers_echo_client.ts and peers_echo_server.ts echo, also with echo_server.ts`, async () => {
    const address = t.name === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`;
    {
      await using server = await serveEchoes(address);
      assertEquals(await echoes(server.address, 3), ["hello #1", "hello #2", "hello #3"]);
    }
    // The Peers client against the low-level echo server.
    const engine = new Engine();
    const server = await listen(engine, t);
    const serving = serveEcho(engine, server.group);
    assertEquals(await echoes(server.bound, 2), ["hello #1", "hello #2"]);
    await engine.close();
    await serving;
  });
}

Deno.test("examples/reconnecting_client.ts rides out a server restart", async () => {
  const address = `tcp|127.0.0.1|${freeTcpPort()}`;
  let server = await serve(address, () => "tick");
  let restarted: Promise<void> | null = null;
  const tally = await askRepeatedly(address, 6, 10, (line) => {
    if (line.startsWith("answer 2:") && !restarted) {
      restarted = (async () => {
        await server.close();
        await new Promise((r) => setTimeout(r, 100));
        server = await serve(address, () => "tock");
      })();
    }
  });
  assert(restarted !== null, "the server was restarted during the run");
  await restarted;
  await server.close();
  assertEquals(tally.answers, 6);
});
