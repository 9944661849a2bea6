// The examples are runnable programs; these tests keep them working.

import { assert, assertEquals } from "@std/assert";
import { encodeFrame, Engine, FrameDecoder, Message, OpCode, Status } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";
import { attack, Child, denoRun } from "./_attack.ts";
import { runEchoClient } from "../examples/echo_client.ts";
import { serveEcho } from "../examples/echo_server.ts";
import { ripPool, ripWorker, spoolServer } from "../examples/print_server.ts";
import { listen, make, rawConnect, transports, writeAll } from "./_fixtures.ts";

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

// A peer that sends requests faster than it reads the answers: the echo server holds the
// answers its full send queue refuses (and so stops reading that peer) instead of dropping
// them, so the peer gets every answer, in order, once it reads (issue #8: before, each
// refused answer was dropped, and a peer that never read cost the server a refusal per
// request, most of its CPU in the soak's hostile mix).
for (const t of transports) {
  Deno.test(`${t.name}: examples/echo_server.ts holds the answers of a peer that does not read, drops none`, async () => {
    // A small send queue and read share, so that the queue fills within the test.
    const serverEngine = new Engine({ maxQueuedBytes: 256 * 1024, maxChannelHeldMsgs: 64 });
    const server = await listen(serverEngine, t);
    const serving = serveEcho(serverEngine, server.group);
    const n = 1_000;
    const frame = (op: number, id: number, body = "") => {
      const m = new Message();
      m.bhdr.opCode = op;
      m.bhdr.messageId = BigInt(id);
      m.body.set(body);
      return encodeFrame(m);
    };
    const body = "x".repeat(16 * 1024); // 16 MiB each way: more than the sockets buffer
    const conn = await rawConnect(server.bound);
    // Writes every request, then a ByeRequest, without reading; the writes block once the
    // server stops reading this peer, until the reading below makes room.
    const writing = (async () => {
      await writeAll(conn, frame(OpCode.HelloRequest, 1));
      for (let id = 2; id < n + 2; id++) await writeAll(conn, frame(OpCode.Request, id, body));
      await writeAll(conn, frame(OpCode.ByeRequest, n + 2));
    })();
    await new Promise((r) => setTimeout(r, 300)); // the server's queue fills meanwhile
    const ids: number[] = [];
    const dec = new FrameDecoder();
    const m = new Message();
    let bye = false;
    const deadline = Date.now() + 20_000;
    while (!bye && Date.now() < deadline) {
      const got = await Promise.race([
        conn.read(dec.writable()),
        new Promise<"idle">((r) => setTimeout(() => r("idle"), 2_000)),
      ]);
      if (got === "idle" || got === null) break; // no answer for 2 s: some were dropped
      dec.commit(got);
      while (dec.next(m)) {
        if (m.bhdr.opCode === OpCode.Response) ids.push(Number(m.bhdr.messageId));
        if (m.bhdr.opCode === OpCode.ByeResponse) bye = true;
      }
    }
    await writing;
    conn.close();
    await serverEngine.close();
    await serving;
    assertEquals(ids.length, n, `${n - ids.length} answers were dropped`);
    assert(ids.every((id, i) => id === i + 2), "answers out of order");
    assert(bye, "no ByeResponse");
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

Deno.test("examples/print_server.ts: Worker mode rasterizes every page in RIP Workers over isolate channels", async () => {
  const pool = await ripPool(2);
  try {
    await using spool = new Engine();
    await using front = new Engine();
    const rendered: string[] = [];
    const render = async (page: string) => {
      const r = await pool.render(page);
      rendered.push(r);
      return r;
    };
    let started!: (port: number) => void;
    const listening = new Promise<number>((r) => started = r);
    const server = spoolServer(spool, 0, started);
    assertEquals(await ripWorker(front, await listening, render), 3);
    await server;
    // Six pages in all, each rasterized by a Worker, and both Workers took some.
    assertEquals(rendered.length, 6);
    assert(
      rendered.every((r) => /^rip-[12]: \d+ bytes -> raster [0-9a-f]+$/.test(r)),
      rendered.join(),
    );
    assert(
      rendered.some((r) => r.startsWith("rip-1:")) && rendered.some((r) => r.startsWith("rip-2:")),
    );
  } finally {
    await pool.close();
  }
});

// Issue #8 finding 9: the examples survive hostile peers. Each runs as a child process,
// as a user would run it, and is attacked from here.

const echoServer = new URL("../examples/echo_server.ts", import.meta.url).pathname;
const printServer = new URL("../examples/print_server.ts", import.meta.url).pathname;

for (const t of transports) {
  Deno.test(`${t.name}: examples/echo_server.ts survives 300 clients that leave at once and a double bye`, async () => {
    const where = t.name === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`;
    await using child = new Child("deno", [...denoRun, echoServer, where]);
    const bound = (await child.line((l) => l.startsWith("echo server listening on "))).slice(25);
    await attack(bound);
    await using engine = new Engine();
    assertEquals(await runEchoClient(engine, bound, 3), ["hello #1", "hello #2", "hello #3"]);
    child.process.kill("SIGINT");
    const status = await child.process.status;
    const stderr = await child.stderr();
    assertEquals(status.code, 0, stderr);
    assert(!stderr.includes("Uncaught"), stderr);
    await child.line((l) => l.startsWith("echo server stopped after"));
  });
}

Deno.test("examples/print_server.ts: the spool server survives hostile workers", async () => {
  await using child = new Child("deno", [...denoRun, printServer, "--serve", "0"]);
  const listening = await child.line((l) => l.startsWith("[spool ] listening on "));
  const port = Number(listening.split("|")[2]);
  await attack(`tcp|127.0.0.1|${port}`);
  await using worker = new Engine();
  assertEquals(await ripWorker(worker, port), 3);
  const status = await child.process.status;
  const stderr = await child.stderr();
  assertEquals(status.code, 0, stderr);
  assert(!stderr.includes("Uncaught"), stderr);
});

Deno.test("examples/echo_client.ts skips frames it did not ask for", async () => {
  // A server that sends an unasked Signal and a Response with another id before each echo.
  await using engine = new Engine();
  const server = await listen(engine, transports[0]!);
  const serving = (async () => {
    for (;;) {
      const m = await server.group.waitReceive(10_000);
      if (m === null) return;
      const ch = m.bhdr.channelNumber;
      const op = m.bhdr.opCode;
      if (m.isFromEngine()) {
        const closed = m.bhdr.opCode === OpCode.Signal && m.bhdr.status === Status.channelClosed;
        engine.put(m);
        if (closed) return;
      } else if (op === OpCode.HelloRequest) {
        m.bhdr.opCode = OpCode.HelloResponse;
        server.group.post(m);
      } else if (op === OpCode.Request) {
        server.group.post(make(engine, ch, OpCode.Signal, "noise"));
        server.group.post(make(engine, ch, OpCode.Response, "wrong", m.bhdr.messageId + 1000n));
        m.bhdr.opCode = OpCode.Response;
        server.group.post(m);
      } else if (op === OpCode.ByeRequest) {
        m.bhdr.opCode = OpCode.ByeResponse;
        server.group.post(m);
      } else engine.put(m);
    }
  })();
  await using clientEngine = new Engine();
  assertEquals(await runEchoClient(clientEngine, server.bound, 2), ["hello #1", "hello #2"]);
  await serving;
});
