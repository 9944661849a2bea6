// Faults: a peer process killed mid-stream, a reset during a batch write, a listener
// closed while clients connect, an engine closed with work pending, and a group
// destroyed from inside its own receive loop. Nothing may hang or vanish.

import { assert, assertEquals } from "@std/assert";
import { deadline } from "@std/async/deadline";
import { delay } from "@std/async/delay";
import { Engine, type Message, OpCode, Status, TofuError } from "../mod.ts";
import {
  connect,
  expect,
  expectClosed,
  listen,
  make,
  makeAbort,
  rawConnect,
  readToEnd,
  recv,
  transports,
} from "./_fixtures.ts";

// These tests stuff channels far past the default maxQueuedBytes (4 MiB) on purpose.
const BIG_QUEUE = 64 * 1024 * 1024;

for (const t of transports) {
  Deno.test(`${t.name}: a peer process killed mid-stream closes its channel`, async () => {
    await using engine = new Engine({ initialPoolMsgs: 64, maxPoolMsgs: 256 });
    const server = await listen(engine, t);
    const child = new Deno.Command("deno", {
      args: [
        "run",
        "--allow-net",
        "--allow-read",
        "--allow-write=/tmp",
        new URL("./_streaming_child.ts", import.meta.url).pathname,
        server.bound,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const hello = expect(await recv(server.group, 20_000), OpCode.HelloRequest, Status.success);
    const ch = hello.bhdr.channelNumber;
    hello.bhdr.opCode = OpCode.HelloResponse;
    server.group.post(hello);
    let chunks = 0;
    while (chunks < 300) {
      const m = await recv(server.group);
      if (m.bhdr.opCode === OpCode.Request) {
        assertEquals(m.bhdr.messageId, 777n);
        assert(m.hasMore());
        chunks++;
      }
      engine.put(m);
    }
    child.kill("SIGKILL");
    await child.status;
    await child.stdout.cancel();
    for (;;) {
      const m = await recv(server.group);
      // A reader still starving on its last frames may report pool_empty first.
      if (m.isFromEngine() && m.bhdr.status !== Status.poolEmpty) {
        expectClosed(m, ch);
        assert(
          m.error?.status === Status.peerDisconnected || m.error?.status === Status.recvFailed,
          m.error?.message,
        );
        break;
      }
      engine.put(m); // chunks that arrived before the kill
    }
    // The engine goes on serving.
    const link = await connect(engine, t, server);
    link.client.post(make(engine, link.clientCh, OpCode.Request, "after the kill"));
    assertEquals((await recv(server.group)).body.text(), "after the kill");
  });

  Deno.test(`${t.name}: a reset while a batch is written hands back what was not written`, async () => {
    await using engine = new Engine({ maxQueuedBytes: BIG_QUEUE });
    const listener = t.name === "tcp"
      ? Deno.listen({ hostname: "127.0.0.1", port: 0 })
      : Deno.listen({ transport: "unix", path: t.listenAt().toString().slice(4) });
    const bound = t.name === "tcp"
      ? `tcp|127.0.0.1|${(listener.addr as Deno.NetAddr).port}`
      : `uds|${(listener.addr as Deno.UnixAddr).path}`;
    const client = engine.create();
    const { channelNumber } = client.post(t.connectTo(bound).format(engine.get("always")!));
    const peer = await listener.accept();
    const total = 3000;
    const ids = new Set<bigint>();
    for (let i = 0; i < total; i++) {
      ids.add(client.post(make(engine, channelNumber, OpCode.Request, "y".repeat(2000))).messageId);
    }
    // Read a little, then close with unread data: the kernel resets the connection.
    await peer.read(new Uint8Array(4096));
    peer.close();
    listener.close();
    const back: Message[] = [];
    for (;;) {
      const m = await recv(client);
      assert(m.isFromEngine(), "only reports arrive");
      if (m.bhdr.opCode === OpCode.Signal) {
        expectClosed(m, channelNumber);
        break;
      }
      assert(m.bhdr.status !== Status.success, "a handed-back message says why");
      assert(ids.delete(m.bhdr.messageId), "handed back once, and only what was posted");
      back.push(m);
    }
    assert(back.length > 0, "most of the batch could not be written");
    // Handed back in post order.
    for (let i = 1; i < back.length; i++) {
      assert(back[i - 1]!.bhdr.messageId < back[i]!.bhdr.messageId);
    }
    await assertQuietEnough(client);
  });

  Deno.test(`${t.name}: closing the listener while clients connect leaves no one hanging`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    let answered = 0;
    const serving = (async () => {
      for await (const m of server.group) {
        if (m.bhdr.opCode === OpCode.HelloRequest && m.isFromApplication()) {
          m.bhdr.opCode = OpCode.HelloResponse;
          server.group.post(m);
          // Close the listener while the other clients are still connecting.
          if (++answered === 5) {
            const bye = makeAbort(engine, server.channel);
            server.group.post(bye);
          }
        } else engine.put(m);
      }
    })();
    // Clients arrive a few milliseconds apart, so some come after the listener closed.
    const outcomes = Array.from({ length: 30 }, async (_, i) => {
      await delay(i * 4);
      const g = engine.create();
      g.post(t.connectTo(server.bound).format(engine.get("always")!));
      // Accepted; or refused: the Hello comes back with a status (if it was never
      // written), and in every refused case the channel ends with channel_closed.
      let m = await recv(g, 10_000);
      if (m.bhdr.opCode === OpCode.HelloResponse) return "accepted";
      if (m.bhdr.opCode === OpCode.HelloRequest) {
        assert(m.isFromEngine() && m.bhdr.status !== Status.success);
        m = await recv(g, 10_000);
      }
      expect(m, OpCode.Signal, Status.channelClosed);
      return "refused";
    });
    const results: string[] = await deadline(Promise.all(outcomes), 15_000);
    assertEquals(results.length, 30);
    assert(results.includes("accepted") && results.includes("refused"), results.join(","));
    assertEquals(results.filter((r) => r === "accepted").length, answered);
    await engine.close();
    await serving;
  });

  Deno.test(`${t.name}: engine.close() with queued messages and a pending wait does not hang`, async () => {
    const engine = new Engine({ maxQueuedBytes: BIG_QUEUE });
    const server = await listen(engine, t);
    const conn = await rawConnect(server.bound); // a peer that never reads
    assertEquals(await server.group.waitReceive(100), null, "a raw peer says nothing");
    const link = await connect(engine, t, server);
    for (let i = 0; i < 10_000; i++) {
      link.client.post(make(engine, link.clientCh, OpCode.Request, "z".repeat(500)));
    }
    const pending = link.client.waitReceive().then(() => null, (e) => e);
    const started = performance.now();
    await deadline(engine.close(), 5000);
    const err = await pending;
    assert(err instanceof TofuError && err.status === Status.shutdownStarted);
    assert(performance.now() - started < 5000);
    assertEquals(await readToEnd(conn), 0, "the raw peer sees its connection close");
    conn.close();
  });

  Deno.test(`${t.name}: a group destroyed from inside its own receive loop`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const link = await connect(engine, t, server);
    for (let i = 0; i < 10; i++) {
      link.client.post(make(engine, link.clientCh, OpCode.Request, `${i}`));
    }
    let seen = 0;
    const loop = (async () => {
      for await (const m of server.group) {
        engine.put(m);
        if (++seen === 3) await engine.destroy(server.group);
      }
    })();
    await deadline(loop, 5000);
    assertEquals(seen, 3);
    // The client's channel sees the server go away.
    for (;;) {
      const m = await recv(link.client);
      if (m.isFromEngine() && m.bhdr.opCode === OpCode.Signal) {
        expectClosed(m, link.clientCh);
        break;
      }
    }
  });
}

async function assertQuietEnough(group: ReturnType<Engine["create"]>): Promise<void> {
  await delay(30);
  assertEquals(group.tryReceive(), null, "nothing after the final Signal");
}
