// Issue #8, part A: one bad peer never hurts the others, and every limit limits memory.
// Each test failed on 30df74e (before the send lanes, budgets and pool waiters).

import { assert, assertEquals, assertThrows } from "@std/assert";
import { encodeFrame, Engine, Message, OpCode, Status, statusName, TofuError } from "../mod.ts";
import { QUEUED_MESSAGE_OVERHEAD } from "../src/_send_lane.ts";
import {
  connect,
  expect,
  lifecycleTransports,
  listen,
  make,
  makeAbort,
  rawConnect,
  recv,
  type Server,
  writeAll,
} from "./_fixtures.ts";

function frame(op: number, id: number, body: string | Uint8Array = ""): Uint8Array {
  const m = new Message();
  m.bhdr.opCode = op;
  m.bhdr.messageId = BigInt(id);
  if (typeof body === "string" ? body.length > 0 : body.length > 0) m.body.set(body);
  return encodeFrame(m);
}

/** Serves `server` as an echo server until `stop` is aborted; engine reports are held, not put back. */
async function serve(
  engine: Engine,
  server: Server,
  reply: "reuse" | "always",
  stop: AbortSignal,
): Promise<{ reports: Message[]; refused: number }> {
  const reports: Message[] = [];
  let refused = 0;
  const post = (m: Message) => {
    try {
      server.group.post(m);
    } catch (err) {
      if (!(err instanceof TofuError)) throw err;
      refused++;
      engine.put(m);
    }
  };
  for (;;) {
    let m: Message | null;
    try {
      m = await server.group.waitReceive(Infinity, { signal: stop });
    } catch {
      return { reports, refused };
    }
    if (m === null) continue;
    if (m.isFromEngine()) reports.push(m);
    else if (m.bhdr.opCode === OpCode.HelloRequest) {
      m.bhdr.opCode = OpCode.HelloResponse;
      post(m);
    } else if (m.bhdr.opCode === OpCode.Request) {
      if (reply === "reuse") {
        m.bhdr.opCode = OpCode.Response;
        post(m);
      } else {
        const r = engine.get("always")!;
        r.bhdr.channelNumber = m.bhdr.channelNumber;
        r.bhdr.messageId = m.bhdr.messageId;
        r.bhdr.opCode = OpCode.Response;
        r.body.set(m.body.bytes());
        engine.put(m);
        post(r);
      }
    } else engine.put(m);
  }
}

for (const t of lifecycleTransports) {
  for (const reply of ["reuse", "always"] as const) {
    Deno.test(`${t.name}: a peer that floods and never reads does not stop the others (reply: ${reply})`, async () => {
      await using serverEngine = new Engine({ initialPoolMsgs: 16, maxPoolMsgs: 16 });
      await using clientEngine = new Engine();
      const server = await listen(serverEngine, t);
      const stop = new AbortController();
      const serving = serve(serverEngine, server, reply, stop.signal);

      // 16 MiB of 1 KB Requests, far more than the kernel buffers hold; never read.
      const flooder = await rawConnect(server.bound);
      const request = frame(OpCode.Request, 7, "x".repeat(1000));
      const chunk = new Uint8Array(request.length * 256);
      for (let i = 0; i < 256; i++) chunk.set(request, i * request.length);
      const flooding = (async () => {
        await writeAll(flooder, frame(OpCode.HelloRequest, 1));
        for (let sent = 0; sent < 16 * 2 ** 20; sent += chunk.length) {
          await writeAll(flooder, chunk);
        }
      })().catch(() => {});
      // Let the flood fill every buffer before the good clients come.
      await new Promise((r) => setTimeout(r, 300));

      const served = await Promise.all(Array.from({ length: 3 }, async () => {
        const client = clientEngine.create();
        const hello = t.connectTo(server.bound).format(clientEngine.get("always")!);
        const ch = client.post(hello).channelNumber;
        expect(await recv(client, 15_000), OpCode.HelloResponse, Status.success);
        let n = 0;
        for (let i = 1; i <= 20; i++) {
          client.post(make(clientEngine, ch, OpCode.Request, `q${i}`, BigInt(i)));
          const r = expect(await recv(client, 15_000), OpCode.Response, Status.success);
          assertEquals(r.body.text(), `q${i}`);
          clientEngine.put(r);
          n++;
        }
        return n;
      }));
      assertEquals(served, [20, 20, 20], "every good client served while the flood goes on");
      flooder.close();
      await flooding;
      stop.abort();
      const { reports } = await serving;
      const poolEmpty = reports.filter((m) => m.bhdr.status === Status.poolEmpty).length;
      // One pool_empty per starvation episode, and an episode lasts until the reader has
      // caught up with its socket: a flood does not turn into a flood of reports (the
      // flood is 16,384 frames).
      assert(poolEmpty < 4096, `${poolEmpty} pool_empty Signals`);
    });
  }

  Deno.test(`${t.name}: maxQueuedBytes charges each queued message its real cost`, async () => {
    const max = 2 ** 20;
    await using engine = new Engine({ maxQueuedBytes: max });
    const server = await listen(engine, t);
    const link = await connect(engine, t, server);
    // In one turn nothing is written: count what the budget takes of 16-byte Signals.
    let accepted = 0;
    let refusal: TofuError | null = null;
    for (let i = 0; i < 100_000; i++) {
      const m = make(engine, link.clientCh, OpCode.Signal);
      try {
        link.client.post(m);
        accepted++;
      } catch (err) {
        refusal = err as TofuError;
        assertEquals(m.bhdr.status, Status.allocationFailed, "the refused message stays");
        engine.put(m);
        break;
      }
    }
    if (!(refusal instanceof TofuError)) throw new Error(`${accepted} accepted, none refused`);
    assertEquals(refusal.status, Status.allocationFailed);
    assert(refusal.message.includes("maxQueuedBytes"), refusal.message);
    assertEquals(accepted, Math.floor(max / (16 + QUEUED_MESSAGE_OVERHEAD)));
    // All of them are written and received.
    for (let n = 0; n < accepted;) {
      const m = await recv(server.group);
      if (m.bhdr.status !== Status.poolEmpty) {
        expect(m, OpCode.Signal, Status.success);
        n++;
      }
      engine.put(m);
    }
  });

  Deno.test(`${t.name}: maxEngineQueuedBytes bounds all channels together`, async () => {
    await using serverEngine = new Engine();
    await using engine = new Engine({ maxEngineQueuedBytes: 64 * 1024 });
    const server = await listen(serverEngine, t);
    const a = await connect(engine, t, server);
    const b = await connect(engine, t, server);
    let accepted = 0;
    let refusal: TofuError | null = null;
    for (let i = 0; i < 1000 && refusal === null; i++) {
      const m = make(engine, a.clientCh, OpCode.Request, "y".repeat(1000));
      try {
        a.client.post(m);
        accepted++;
      } catch (err) {
        refusal = err as TofuError;
        engine.put(m);
      }
    }
    if (!(refusal instanceof TofuError)) throw new Error("never refused");
    assertEquals(refusal.status, Status.allocationFailed);
    assert(refusal.message.includes("maxEngineQueuedBytes"), refusal.message);
    assertEquals(accepted, Math.floor(64 * 1024 / (1016 + QUEUED_MESSAGE_OVERHEAD)));
    // The other channel is refused too, with its message left with the caller.
    const other = make(engine, b.clientCh, OpCode.Request, "y".repeat(1000));
    const err = assertThrows(() => b.client.post(other), TofuError);
    assertEquals(err.status, Status.allocationFailed);
    // Once written, the budget is free again.
    for (let n = 0; n < accepted;) {
      const m = await recv(server.group);
      if (m.bhdr.status !== Status.poolEmpty) {
        expect(m, OpCode.Request, Status.success);
        n++;
      }
      serverEngine.put(m);
    }
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        b.client.post(other);
        break;
      } catch (e) {
        assert(Date.now() < deadline, `still refused: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    for (;;) {
      const m = await recv(server.group);
      if (m.bhdr.status === Status.poolEmpty) continue;
      assertEquals(m.bhdr.channelNumber, b.serverCh);
      break;
    }
  });

  Deno.test(`${t.name}: a group's receive queue is bounded; a flood waits in the socket, nothing lost`, async () => {
    const bound = 50;
    await using engine = new Engine({
      initialPoolMsgs: 500,
      maxPoolMsgs: 500,
      maxReceiveQueueMsgs: bound,
    });
    const server = await listen(engine, t);
    const peer = await rawConnect(server.bound);
    const total = 2000;
    const frames = [frame(OpCode.HelloRequest, 1)];
    for (let i = 1; i <= total; i++) frames.push(frame(OpCode.Signal, i + 1, `s${i}`));
    const other = await rawConnect(server.bound);
    const writing = writeAll(peer, new Uint8Array(frames.flatMap((f) => [...f])));
    // The application does not read for a while.
    await new Promise((r) => setTimeout(r, 500));
    // A report that cannot be refused still arrives past the bound: the channel_closed
    // of a peer that leaves meanwhile.
    other.close();
    await new Promise((r) => setTimeout(r, 200));
    const queued: Message[] = [];
    for (let m = server.group.tryReceive(); m !== null; m = server.group.tryReceive()) {
      if (m.bhdr.status === Status.channelClosed) {
        assertEquals(queued.length, bound, "channel_closed after the bound's worth of frames");
        engine.put(m);
        continue;
      }
      queued.push(m);
    }
    assertEquals(queued.length, bound, "reading goes on up to the bound, and no further");
    // Everything arrives once the application reads, in order.
    const ids = queued.map((m) => Number(m.bhdr.messageId));
    for (const m of queued) engine.put(m);
    while (ids.length < total + 1) {
      const m = await recv(server.group);
      assert(!m.isFromEngine(), `report ${statusName(m.bhdr.status)}`);
      ids.push(Number(m.bhdr.messageId));
      engine.put(m);
    }
    assertEquals(ids, Array.from({ length: total + 1 }, (_, i) => i + 1));
    await writing;
    peer.close();
    const closed = await recv(server.group);
    expect(closed, OpCode.Signal, Status.channelClosed);
  });

  Deno.test(`${t.name}: a waiting channel that closes withdraws its wait; the next put serves another`, async () => {
    await using engine = new Engine({ initialPoolMsgs: 2, maxPoolMsgs: 2 });
    const server = await listen(engine, t);
    // The application holds every pool message.
    const held = [engine.get("poolOnly")!, engine.get("poolOnly")!];
    assertEquals(engine.get("poolOnly"), null);
    const first = await rawConnect(server.bound);
    await writeAll(first, frame(OpCode.HelloRequest, 11));
    const a = expect(await recv(server.group), OpCode.Signal, Status.poolEmpty);
    const second = await rawConnect(server.bound);
    await writeAll(second, frame(OpCode.HelloRequest, 22));
    const b = expect(await recv(server.group), OpCode.Signal, Status.poolEmpty);
    assert(a.bhdr.channelNumber !== b.bhdr.channelNumber);
    // The first waiter is aborted: its reports come back.
    server.group.post(makeAbort(engine, a.bhdr.channelNumber));
    expect(await recv(server.group), OpCode.ByeSignal, Status.channelClosed);
    expect(await recv(server.group), OpCode.Signal, Status.channelClosed);
    // One message put back: the second channel's HelloRequest is read with it.
    engine.put(held.pop()!);
    const hello = expect(await recv(server.group), OpCode.HelloRequest, Status.success);
    assertEquals(hello.bhdr.channelNumber, b.bhdr.channelNumber);
    assertEquals(hello.bhdr.messageId, 22n);
    first.close();
    second.close();
    expect(await recv(server.group), OpCode.Signal, Status.channelClosed);
  });

  Deno.test(`${t.name}: a posted message handed straight to a starved reader cannot be posted again`, async () => {
    await using engine = new Engine({ initialPoolMsgs: 1, maxPoolMsgs: 1 });
    const server = await listen(engine, t);
    const held = engine.get("poolOnly")!;
    const peer = await rawConnect(server.bound);
    await writeAll(
      peer,
      new Uint8Array([...frame(OpCode.HelloRequest, 5), ...frame(OpCode.Signal, 6)]),
    );
    const starved = expect(await recv(server.group), OpCode.Signal, Status.poolEmpty);
    const reply = make(engine, starved.bhdr.channelNumber, OpCode.HelloResponse, "", 5n);
    server.group.post(reply); // encoded; the message goes to the waiting reader at once
    const err = assertThrows(() => server.group.post(reply), TofuError);
    assertEquals(err.status, Status.notAllowed);
    engine.put(reply); // ignored: not the application's
    const hello = expect(await recv(server.group), OpCode.HelloRequest, Status.success);
    assertEquals(hello.bhdr.messageId, 5n);
    engine.put(hello);
    engine.put(held);
    expect(await recv(server.group), OpCode.Signal, Status.success);
    peer.close();
    for (;;) {
      const m = await recv(server.group);
      if (m.bhdr.status === Status.channelClosed) break;
    }
  });

  Deno.test(`${t.name}: starved channels are served in turn`, async () => {
    await using engine = new Engine({ initialPoolMsgs: 1, maxPoolMsgs: 1 });
    const server = await listen(engine, t);
    const spare = engine.get("poolOnly")!;
    const peers = await Promise.all([1, 2, 3].map(() => rawConnect(server.bound)));
    const channels: number[] = [];
    for (const [i, peer] of peers.entries()) {
      const frames = [frame(OpCode.HelloRequest, 100 * i + 1)];
      for (let k = 2; k <= 5; k++) frames.push(frame(OpCode.Signal, 100 * i + k));
      await writeAll(peer, new Uint8Array(frames.flatMap((f) => [...f])));
      channels.push(
        expect(await recv(server.group), OpCode.Signal, Status.poolEmpty).bhdr.channelNumber,
      );
    }
    // Each message put back goes to the next starved channel, round robin.
    const order: number[] = [];
    engine.put(spare);
    for (let i = 0; i < 15; i++) {
      const m = await recv(server.group);
      assert(!m.isFromEngine(), `report ${statusName(m.bhdr.status)}`);
      order.push(m.bhdr.channelNumber);
      engine.put(m);
    }
    assertEquals(order, [0, 1, 2, 3, 4].flatMap(() => channels));
    for (const p of peers) p.close();
    for (let i = 0; i < 3; i++) {
      expect(await recv(server.group), OpCode.Signal, Status.channelClosed);
    }
  });

  Deno.test(`${t.name}: a message changed after posting neither stalls nor corrupts its channel`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const client = engine.create();
    const { channelNumber } = client.post(t.connectTo(server.bound).format(engine.get("always")!));
    const posted = [1, 2, 3].map((i) =>
      make(engine, channelNumber, OpCode.Request, `r${i}`, BigInt(i))
    );
    for (const m of posted) client.post(m);
    // Misuse: the second message is changed after it was posted, before any write.
    posted[1]!.body.set(new Uint8Array(50_000));
    posted[1]!.headers.append("late", "change");
    const hello = expect(await recv(server.group), OpCode.HelloRequest, Status.success);
    for (let i = 1; i <= 3; i++) {
      const m = expect(await recv(server.group), OpCode.Request, Status.success);
      assertEquals([m.body.text(), m.bhdr.messageId], [`r${i}`, BigInt(i)]);
      assertEquals(m.headers.get("late"), undefined);
      engine.put(m);
    }
    hello.bhdr.opCode = OpCode.HelloResponse;
    server.group.post(hello);
    expect(await recv(client), OpCode.HelloResponse, Status.success);
    // The pool never hands out the changed message as it was left.
    for (let i = 0; i < 64; i++) {
      const m = engine.get("poolOnly");
      if (m === null) break;
      assertEquals([m.body.byteLength, m.headers.get("late")], [0, undefined]);
    }
  });

  Deno.test(`${t.name}: frames of every size are written whole and in order, urgent ones first`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const link = await connect(engine, t, server);
    const sizes = [10, 70_000, 3, 65_535, 1_000, 0, 40_000, 64 * 1024 - 16, 5];
    const body = (i: number, n: number) => new Uint8Array(n).fill(i + 1);
    const expected: number[] = [];
    // Three rounds: posted in one turn, then after the queue drained, then interleaved with waits.
    for (let round = 0; round < 3; round++) {
      for (const [i, n] of sizes.entries()) {
        const m = make(engine, link.clientCh, OpCode.Request, "", BigInt(round * 100 + i + 1));
        if (n > 65_535) {
          m.headers.append("big", "h".repeat(n - 65_535));
          m.body.set(body(i, 65_535));
        } else m.body.set(body(i, n));
        link.client.post(m);
        expected.push(round * 100 + i + 1);
        if (round === 2 && i % 3 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      if (round === 0) {
        const urgent = make(engine, link.clientCh, OpCode.Signal, "urgent", 999n);
        urgent.bhdr.internalA = 1;
        link.client.post(urgent);
      }
    }
    const got: number[] = [];
    let urgentAt = -1;
    while (got.length < expected.length) {
      const m = await recv(server.group);
      if (m.bhdr.status === Status.poolEmpty) {
        engine.put(m);
        continue;
      }
      const id = Number(m.bhdr.messageId);
      if (id === 999) {
        urgentAt = got.length;
        engine.put(m);
        continue;
      }
      const i = (id - 1) % 100;
      const n = sizes[i]!;
      assertEquals(m.body.byteLength, Math.min(n, 65_535), `body of ${id}`);
      assert(m.body.bytes().every((b) => b === i + 1), `bytes of ${id}`);
      if (n > 65_535) assertEquals(m.headers.get("big")?.length, n - 65_535);
      got.push(id);
      engine.put(m);
    }
    assertEquals(got, expected);
    assert(urgentAt >= 0 && urgentAt < sizes.length, `urgent Signal received at ${urgentAt}`);
  });

  Deno.test(`${t.name}: closed channels are released: 2,000 held channel_closed Signals keep no buffers`, async () => {
    const out = await new Deno.Command("deno", {
      args: [
        "run",
        "--no-prompt",
        "--allow-net",
        "--allow-read",
        "--allow-write=/tmp",
        "--allow-env",
        "--v8-flags=--expose-gc",
        new URL("./_closed_memory_child.ts", import.meta.url).pathname,
        t.name,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert(out.success, `child failed: ${new TextDecoder().decode(out.stderr)}`);
    const r = JSON.parse(text) as { signals: number; externalMiB: number };
    assertEquals(r.signals, 2000);
    // Each channel's decoder had made room for a 128 KiB frame (250 MiB for all of them).
    assert(r.externalMiB < 64, `${r.externalMiB} MiB of external memory held: ${text}`);
  });
}

Deno.test("updateReceiver throws allocation_failed at the receive-queue bound", async () => {
  await using engine = new Engine({ maxReceiveQueueMsgs: 10 });
  const g = engine.create();
  for (let i = 0; i < 10; i++) g.updateReceiver();
  const err = assertThrows(() => g.updateReceiver(), TofuError);
  assertEquals(err.status, Status.allocationFailed);
  assert(err.message.includes("maxReceiveQueueMsgs"), err.message);
  const mine = engine.get("always")!;
  assertThrows(() => g.updateReceiver(mine), TofuError);
  engine.put(g.tryReceive());
  g.updateReceiver(mine);
  assertThrows(() => new Engine({ maxReceiveQueueMsgs: 0 }), RangeError);
  assertThrows(() => new Engine({ maxEngineQueuedBytes: 1.5 }), RangeError);
});
