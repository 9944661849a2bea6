// Issue #8, part A: one bad peer never hurts the others, and every limit limits memory.
// Each test failed on 30df74e (before the send lanes, budgets and pool waiters).

import { within } from "./_peer_fixtures.ts";
import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  connect as peerConnect,
  encodeFrame,
  Engine,
  Message,
  OpCode,
  serve as peerServe,
  Status,
  statusName,
  TofuError,
} from "../mod.ts";
import { ENGINE_BUDGET_ALLOWANCE, QUEUED_MESSAGE_OVERHEAD } from "../src/_send_lane.ts";
import { HAND_BACK_SLICE } from "../src/_io_channel.ts";
import { MAX_UNREAD_WINDOW } from "../src/_read_share.ts";
import { Owner, ownerOf } from "../src/message.ts";
import { tempUdsPath } from "../testing.ts";
import {
  assertQuiet,
  connect,
  expect,
  floodFrames,
  lifecycleTransports,
  listen,
  make,
  makeAbort,
  rawConnect,
  recv,
  recvUntilClosed,
  type Server,
  transports,
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
    // A channel with little queued is not made to pay for the one that filled the budget:
    // it may still queue up to ENGINE_BUDGET_ALLOWANCE bytes of its own, then it is refused
    // too, with its message left with the caller.
    let admitted = 0;
    let other = make(engine, b.clientCh, OpCode.Request, "y".repeat(1000));
    for (;;) {
      try {
        b.client.post(other);
      } catch (e) {
        if (!(e instanceof TofuError)) throw e;
        assertEquals(e.status, Status.allocationFailed);
        assert(e.message.includes("maxEngineQueuedBytes"), e.message);
        break;
      }
      admitted++;
      other = make(engine, b.clientCh, OpCode.Request, "y".repeat(1000));
    }
    assertEquals(admitted, Math.floor(ENGINE_BUDGET_ALLOWANCE / (1016 + QUEUED_MESSAGE_OVERHEAD)));
    assertEquals(ownerOf(other), Owner.Application, "the refused message stays with the caller");
    // Once written, the budget is free again: what b was refused goes through, and the
    // server gets every message of both channels.
    const got = new Map<number, number>();
    const tally = async (until: () => boolean) => {
      while (!until()) {
        const m = await recv(server.group);
        if (m.bhdr.status !== Status.poolEmpty) {
          expect(m, OpCode.Request, Status.success);
          got.set(m.bhdr.channelNumber, (got.get(m.bhdr.channelNumber) ?? 0) + 1);
        }
        serverEngine.put(m);
      }
    };
    await tally(() => (got.get(a.serverCh) ?? 0) === accepted);
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
    await tally(() => (got.get(b.serverCh) ?? 0) === admitted + 1);
    assertEquals(got.get(a.serverCh), accepted);
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

  Deno.test(`${t.name}: a held-back channel that closes withdraws its wait; a put of the other's message resumes it`, async () => {
    await using engine = new Engine({ maxChannelHeldMsgs: 1 });
    const server = await listen(engine, t);
    // Each peer sends its HelloRequest and a Signal: the application holds the first, so
    // each channel stops reading at its share of 1.
    const peers = await Promise.all([11, 22].map(async (id) => {
      const conn = await rawConnect(server.bound);
      await writeAll(
        conn,
        new Uint8Array([...frame(OpCode.HelloRequest, id), ...frame(OpCode.Signal, id + 1)]),
      );
      return conn;
    }));
    const hellos = new Map<bigint, Message>();
    const held = new Set<number>();
    while (hellos.size < 2 || held.size < 2) {
      const m = await recv(server.group);
      if (m.isFromEngine()) {
        expect(m, OpCode.Signal, Status.poolEmpty);
        held.add(m.bhdr.channelNumber);
        engine.put(m);
      } else hellos.set(expect(m, OpCode.HelloRequest, Status.success).bhdr.messageId, m);
    }
    const a = hellos.get(11n)!;
    const b = hellos.get(22n)!;
    const aCh = a.bhdr.channelNumber;
    const bCh = b.bhdr.channelNumber;
    assertEquals(held, new Set([aCh, bCh]));
    // The first is aborted: its reports come back; its held message is put back later.
    server.group.post(makeAbort(engine, aCh));
    expect(await recv(server.group), OpCode.ByeSignal, Status.channelClosed);
    expect(await recv(server.group), OpCode.Signal, Status.channelClosed);
    engine.put(a); // credits the closed channel only
    assertEquals(await server.group.waitReceive(200), null, "the other channel is still held");
    // One message of the second channel put back: its Signal is read.
    engine.put(b);
    const s = expect(await recv(server.group), OpCode.Signal, Status.success);
    assertEquals([s.bhdr.channelNumber, s.bhdr.messageId], [bCh, 23n]);
    engine.put(s);
    for (const p of peers) p.close();
    expect(await recv(server.group), OpCode.Signal, Status.channelClosed);
  });

  Deno.test(`${t.name}: a posted message that resumes a held-back reader cannot be posted again`, async () => {
    await using engine = new Engine({ maxChannelHeldMsgs: 1 });
    const server = await listen(engine, t);
    const peer = await rawConnect(server.bound);
    await writeAll(
      peer,
      new Uint8Array([...frame(OpCode.HelloRequest, 5), ...frame(OpCode.Signal, 6)]),
    );
    const hello = expect(await recv(server.group), OpCode.HelloRequest, Status.success);
    assertEquals(hello.bhdr.messageId, 5n);
    expect(await recv(server.group), OpCode.Signal, Status.poolEmpty);
    const reply = hello;
    reply.bhdr.opCode = OpCode.HelloResponse;
    server.group.post(reply); // encoded; the message goes back and frees the channel's share
    const err = assertThrows(() => server.group.post(reply), TofuError);
    assertEquals(err.status, Status.notAllowed);
    engine.put(reply); // ignored: not the application's
    const signal = expect(await recv(server.group), OpCode.Signal, Status.success);
    assertEquals(signal.bhdr.messageId, 6n);
    engine.put(signal);
    peer.close();
    for (;;) {
      const m = await recv(server.group);
      if (m.bhdr.status === Status.channelClosed) break;
    }
  });

  Deno.test(`${t.name}: held-back channels are each resumed by their own messages only`, async () => {
    // A pool of 1 no longer limits reading: each channel has a share of 2.
    await using engine = new Engine({ initialPoolMsgs: 1, maxPoolMsgs: 1, maxChannelHeldMsgs: 2 });
    const server = await listen(engine, t);
    const peers = await Promise.all([1, 2, 3].map(() => rawConnect(server.bound)));
    const byChannel = new Map<number, Message[]>();
    for (const [i, peer] of peers.entries()) {
      const frames = [frame(OpCode.HelloRequest, 100 * i + 1)];
      for (let k = 2; k <= 5; k++) frames.push(frame(OpCode.Signal, 100 * i + k));
      await writeAll(peer, new Uint8Array(frames.flatMap((f) => [...f])));
    }
    let reports = 0;
    while (reports < 3) {
      const m = await recv(server.group);
      if (m.isFromEngine()) {
        expect(m, OpCode.Signal, Status.poolEmpty);
        reports++;
        engine.put(m);
        continue;
      }
      const list = byChannel.get(m.bhdr.channelNumber) ?? [];
      list.push(m);
      byChannel.set(m.bhdr.channelNumber, list);
    }
    assertEquals([...byChannel.values()].map((l) => l.length), [2, 2, 2], "each read its share");
    assertEquals(await server.group.waitReceive(200), null);
    // Messages of the second channel put back: only it reads on, one frame per message.
    const [, second] = [...byChannel.keys()];
    for (const m of byChannel.get(second!)!.splice(0)) engine.put(m);
    const got: bigint[] = [];
    for (let i = 0; i < 2; i++) {
      const m = await recv(server.group);
      assertEquals(m.bhdr.channelNumber, second);
      got.push(m.bhdr.messageId);
      byChannel.get(second!)!.push(m);
    }
    const base = byChannel.get(second!)![0]!.bhdr.messageId - 3n;
    assertEquals(got, [base + 3n, base + 4n]);
    assertEquals(await server.group.waitReceive(200), null, "the others are still held");
    for (const list of byChannel.values()) for (const m of list) engine.put(m);
    for (const p of peers) p.close();
    let closed = 0;
    while (closed < 3) {
      const m = await recv(server.group);
      if (m.bhdr.status === Status.channelClosed) closed++;
      engine.put(m);
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

  // The soak's hostile mix: a non-reader that leaves has thousands of answers unsent, and
  // handing them all back in one macrotask held up every other channel's round trips.
  Deno.test(`${t.name}: a closing channel hands back its unsent messages a slice per turn of the event loop`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const link = await connect(engine, t, server);
    // Posted and aborted in one turn: nothing is written, all n come back.
    const n = 5_000;
    for (let i = 0; i < n; i++) {
      link.client.post(make(engine, link.clientCh, OpCode.Signal, String(i)));
    }
    link.client.post(makeAbort(engine, link.clientCh));
    const bye = await recv(link.client);
    expect(bye, OpCode.ByeSignal, Status.channelClosed, "the abort");
    engine.put(bye);
    // The first slice arrives; the rest is not built yet.
    const first = [await recv(link.client)];
    for (let m = link.client.tryReceive(); m !== null; m = link.client.tryReceive()) first.push(m);
    assert(
      first.length <= HAND_BACK_SLICE,
      `${first.length} messages handed back in one turn (at most ${HAND_BACK_SLICE})`,
    );
    // All of them come back, in post order, then channel_closed.
    const got: Message[] = first;
    while (got.length < n + 1) got.push(await recv(link.client));
    for (let i = 0; i < n; i++) {
      expect(got[i]!, OpCode.Signal, Status.channelClosed, `handed back #${i}`);
      assertEquals(got[i]!.body.text(), String(i));
    }
    expect(got[n]!, OpCode.Signal, Status.channelClosed, "channel_closed");
    assert(got[n]!.body.byteLength === 0 && got[n]!.isFromEngine());
    for (const m of got) engine.put(m);
    await assertQuiet(link.client);
  });

  Deno.test(`${t.name}: destroy() and close() hand back the rest at once and wait for it`, async () => {
    const engine = new Engine({ maxQueuedBytes: 2 ** 26 });
    const server = await listen(engine, t);
    const link = await connect(engine, t, server);
    for (let i = 0; i < 50_000; i++) {
      link.client.post(make(engine, link.clientCh, OpCode.Signal, String(i)));
    }
    link.client.post(makeAbort(engine, link.clientCh));
    engine.put(await recv(link.client)); // the abort
    engine.put(await recv(link.client)); // the first slice has begun
    await engine.destroy(link.client);
    await engine.close();
    // Nothing of the channel runs after close() resolved: no slice is left on a timer,
    // delivering into the destroyed group (its messages would go to the pool).
    const pooled = engine.poolSize;
    await new Promise((r) => setTimeout(r, 50));
    assertEquals(engine.poolSize, pooled, "hand-backs went on after close()");
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
  assertThrows(() => new Engine({ maxChannelHeldMsgs: 0 }), RangeError);
  assertThrows(() => new Engine({ maxChannelHeldMsgs: 2.5 }), RangeError);
});

// ---- The read share: a channel holds at most maxChannelHeldMsgs messages ----
// The tests below failed on 14e5264 (one pool for all readers), or on the commit of this
// branch before the piece they guard (the unread window, answers off the share, a pool
// of 0): their commit messages say which.

/**
 * A raw peer sends a HelloRequest and `n - 1` Signals; the application takes all `n`
 * without giving any back (no report may come: the channel keeps reading), then puts them
 * back and the peer leaves.
 */
async function holdAll(engine: Engine, server: Server, n: number): Promise<void> {
  const peer = await rawConnect(server.bound);
  await writeAll(peer, floodFrames(n));
  const held: Message[] = [];
  while (held.length < n) {
    const m = await recv(server.group, 10_000);
    assert(!m.isFromEngine(), `report ${statusName(m.bhdr.status)} after ${held.length}`);
    held.push(m);
  }
  for (const m of held) engine.put(m);
  peer.close();
  expect(await recv(server.group), OpCode.Signal, Status.channelClosed);
}

function anyAddress(transport: string): string {
  return transport === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`;
}

/** Receives until a message of `channel` that is not an engine report arrives; others go to `other`. */
async function nextOf(
  group: Server["group"],
  channel: number,
  other: (m: Message) => void,
  ms = 10_000,
): Promise<Message> {
  for (;;) {
    const m = await recv(group, ms);
    if (m.bhdr.channelNumber === channel && !m.isFromEngine()) return m;
    other(m);
  }
}

for (const t of transports) {
  Deno.test(`${t.name}: a peer whose requests pile up unread does not stop a good peer of the same engine`, async () => {
    // One engine for the server and the good client: its pool is shared by every channel.
    await using engine = new Engine();
    let release!: () => void;
    const stuck = new Promise<void>((r) => release = r);
    await using server = await peerServe(
      anyAddress(t.name),
      async (req) => {
        if (req.body.bytes().length === 1000) await stuck; // the flooding peer's requests hang
        return `ok ${req.body.text()}`;
      },
      { engine, maxInFlight: 4 },
    );
    await using good = await peerConnect(server.address, { engine });
    // The flooder's requests go unread into its channel's backlog: 3,000 of 1 KB.
    const flood = await rawConnect(server.address);
    const request = frame(OpCode.Request, 1, "x".repeat(1000));
    const flooding = (async () => {
      for (let i = 1; i <= 3000; i++) {
        new DataView(request.buffer).setBigUint64(4, BigInt(i));
        await writeAll(flood, request);
      }
    })().catch(() => {});
    // Let the flood be read into the backlog before the good peer asks.
    await new Promise((r) => setTimeout(r, 300));
    for (let round = 0; round < 5; round++) {
      const replies = await within(
        Promise.all(
          Array.from(
            { length: 50 },
            (_, i) => good.request(`${round}.${i}`, { timeoutMs: 60_000 }),
          ),
        ),
        30_000,
        `round ${round} of the good peer's requests`,
      );
      replies.forEach((m, i) => {
        assertEquals(m.body.text(), `ok ${round}.${i}`);
        engine.put(m);
      });
    }
    flood.close();
    release();
    await flooding;
  });

  Deno.test(`${t.name}: a channel at its share stops reading; another channel of the engine is served; a put resumes it`, async () => {
    const share = 8;
    await using engine = new Engine({ maxChannelHeldMsgs: share });
    const server = await listen(engine, t);
    // The flooder: a HelloRequest and 100 Signals, all written before the application reads.
    const flooder = await rawConnect(server.bound);
    const frames = [frame(OpCode.HelloRequest, 1)];
    for (let i = 2; i <= 101; i++) frames.push(frame(OpCode.Signal, i, `s${i}`));
    await writeAll(flooder, new Uint8Array(frames.flatMap((f) => [...f])));
    // The application holds everything the flooder sends.
    const held: Message[] = [];
    const reports: Message[] = [];
    let floodCh = 0;
    for (;;) {
      const m = await server.group.waitReceive(500);
      if (m === null) break;
      if (m.isFromEngine()) reports.push(m);
      else {
        floodCh = m.bhdr.channelNumber;
        held.push(m);
      }
    }
    assertEquals(held.length, share, "reading stopped at the channel's share");
    assertEquals(held.map((m) => Number(m.bhdr.messageId)), [1, 2, 3, 4, 5, 6, 7, 8]);
    assertEquals(reports.length, 1, "one pool_empty Signal for the episode");
    expect(reports[0]!, OpCode.Signal, Status.poolEmpty);
    assertEquals(reports[0]!.bhdr.channelNumber, floodCh);
    assert(reports[0]!.error?.message.includes("maxChannelHeldMsgs"), reports[0]!.error?.message);
    engine.put(reports.pop()!);
    // Another peer of the same engine is served meanwhile, round trip after round trip.
    const client = engine.create();
    const { channelNumber: clientCh } = client.post(
      t.connectTo(server.bound).format(engine.get("always")),
    );
    const strays: Message[] = [];
    const onServer = async (): Promise<Message> => {
      for (;;) {
        const m = await recv(server.group, 10_000);
        if (m.bhdr.channelNumber === floodCh) {
          strays.push(m);
          continue;
        }
        return m;
      }
    };
    const h = expect(await onServer(), OpCode.HelloRequest, Status.success);
    const goodCh = h.bhdr.channelNumber;
    h.bhdr.opCode = OpCode.HelloResponse;
    server.group.post(h);
    expect(await recv(client), OpCode.HelloResponse, Status.success);
    for (let i = 1; i <= 200; i++) {
      client.post(make(engine, clientCh, OpCode.Request, `q${i}`, BigInt(i)));
      const q = expect(await onServer(), OpCode.Request, Status.success);
      assertEquals([q.bhdr.channelNumber, q.body.text()], [goodCh, `q${i}`]);
      q.bhdr.opCode = OpCode.Response;
      server.group.post(q);
      const r = expect(await recv(client), OpCode.Response, Status.success);
      assertEquals(r.body.text(), `q${i}`);
      engine.put(r);
    }
    assertEquals(strays.map((m) => statusName(m.bhdr.status)), [], "the flooder stayed held back");
    // One message of the held channel put back: exactly one more frame is read.
    engine.put(held.shift()!);
    const next = await nextOf(server.group, floodCh, (m) => engine.put(m));
    assertEquals(next.bhdr.messageId, 9n);
    held.push(next);
    assertEquals(await server.group.waitReceive(300), null, "still at its share");
    // All of them back: the rest arrives, in order.
    const ids: number[] = [];
    for (const m of held.splice(0)) engine.put(m);
    while (ids.length < 92) {
      const m = await nextOf(server.group, floodCh, (r) => engine.put(r));
      ids.push(Number(m.bhdr.messageId));
      engine.put(m);
    }
    assertEquals(ids, Array.from({ length: 92 }, (_, i) => i + 10));
    flooder.close();
    await recvUntilClosed(engine, server.group);
  });

  Deno.test(`${t.name}: by default one channel may hold 1,000 messages, and 1,000 concurrent Peers requests are answered`, async () => {
    await using engine = new Engine();
    // Raw: the application holds 1,000 messages of one channel, and reading goes on.
    const server = await listen(engine, t);
    await holdAll(engine, server, 1000);
    // Peers: 1,000 requests in flight on one channel, every answer held until all arrived,
    // with the server on the same engine.
    await using echo = await peerServe(
      anyAddress(t.name),
      (req) => req.body.text(),
      { engine, maxInFlight: 1000 },
    );
    await using ch = await peerConnect(echo.address, { engine });
    const answers = await within(
      Promise.all(
        Array.from({ length: 1000 }, (_, i) => ch.request(`r${i}`, { timeoutMs: 60_000 })),
      ),
      60_000,
      "1,000 concurrent requests",
    );
    assertEquals(
      answers.map((m) => m.body.text()),
      Array.from({ length: 1000 }, (_, i) => `r${i}`),
    );
    for (const m of answers) engine.put(m);
  });
}

for (const t of transports) {
  Deno.test(`${t.name}: Peers: answers to requests do not count against the read share`, async () => {
    const share = 8;
    await using engine = new Engine({ maxChannelHeldMsgs: share });
    let release!: () => void;
    const stuck = new Promise<void>((r) => release = r);
    let started = 0;
    await using server = await peerServe(anyAddress(t.name), async (req) => {
      if (req.body.text() === "hang") {
        started++;
        await stuck;
      }
      if (req.body.text() === "stream") return Array.from({ length: 100 }, (_, i) => `c${i}`);
      return req.body.text();
    }, { engine, maxInFlight: 2 });
    // 200 answers held at once on one channel with a share of 8.
    await using ch = await peerConnect(server.address, { engine });
    const answers = await within(
      Promise.all(
        Array.from({ length: 200 }, (_, i) => ch.request(`r${i}`, { timeoutMs: 30_000 })),
      ),
      30_000,
      "200 concurrent requests",
    );
    assertEquals(answers.map((m) => m.body.text()), Array.from({ length: 200 }, (_, i) => `r${i}`));
    for (const m of answers) engine.put(m);
    // A streamed answer of 100 chunks, every chunk held until the last one arrived.
    const first = await ch.request("stream", { timeoutMs: 10_000 });
    const chunks = await within(
      Array.fromAsync(ch.chunks(first)),
      30_000,
      "100 chunks of one answer",
    );
    assertEquals(chunks.map((m) => m.body.text()), Array.from({ length: 100 }, (_, i) => `c${i}`));
    for (const m of chunks) engine.put(m);
    // A peer whose requests hang is held back at the share: 2 handlers run, the rest of
    // its share waits unread, and the peer's other requests wait in the socket.
    await using flooder = await peerConnect(server.address, { engine });
    const hanging = Array.from(
      { length: 50 },
      () => flooder.request("hang", { timeoutMs: 30_000 }).then((m) => engine.put(m)),
    );
    await new Promise((r) => setTimeout(r, 300));
    assertEquals(started, 2);
    // Meanwhile the first channel is served as before.
    using again = await ch.request("still served", { timeoutMs: 10_000 });
    assertEquals(again.body.text(), "still served");
    release();
    await within(Promise.all(hanging), 30_000, "the held-back requests, once released");
    assertEquals(started, 50);
  });
}

Deno.test("maxChannelHeldMsgs: Infinity turns the share off", async () => {
  await using engine = new Engine({ maxChannelHeldMsgs: Infinity, maxPoolMsgs: 4 });
  const server = await listen(engine, transports[0]!);
  await holdAll(engine, server, 3000);
});

for (const t of transports) {
  Deno.test(`${t.name}: a flooding channel has at most maxPoolMsgs messages unread in its group's queue, ahead of others`, async () => {
    await using engine = new Engine({ maxPoolMsgs: 32 });
    const server = await listen(engine, t);
    const flooder = await rawConnect(server.bound);
    const writing = writeAll(flooder, floodFrames(2000));
    // The application does not read for a while; then a good peer says hello.
    await new Promise((r) => setTimeout(r, 300));
    const good = await rawConnect(server.bound);
    await writeAll(good, frame(OpCode.HelloRequest, 99_999));
    await new Promise((r) => setTimeout(r, 300));
    const queued: Message[] = [];
    for (let m = server.group.tryReceive(); m !== null; m = server.group.tryReceive()) {
      queued.push(m);
    }
    const hello = queued.findIndex((m) => m.bhdr.messageId === 99_999n);
    assert(hello >= 0, "the good peer's HelloRequest was read");
    assert(hello <= 32, `the good peer's HelloRequest waits behind ${hello} flood messages`);
    // Nothing of the flood is lost: it arrives in order once the application reads.
    const ids = queued.filter((m) => m.bhdr.messageId !== 99_999n).map((m) =>
      Number(m.bhdr.messageId)
    );
    for (const m of queued) engine.put(m);
    while (ids.length < 2000) {
      const m = await recv(server.group);
      ids.push(Number(m.bhdr.messageId));
      engine.put(m);
    }
    assertEquals(ids, Array.from({ length: 2000 }, (_, i) => i + 1));
    await writing;
    flooder.close();
    good.close();
    await recvUntilClosed(engine, server.group, 2);
  });
}

for (const t of transports) {
  // A --cpu-prof of the soak's echo server while new non-readers flooded it: a reader at
  // its window was woken for each message the application took, read one frame and
  // waited again, a promise and a clock read per frame (17% of the server's CPU).
  Deno.test(`${t.name}: a reader at its unread window resumes once half of it is read, not per message`, async () => {
    await using engine = new Engine({ maxPoolMsgs: 32 });
    const server = await listen(engine, t);
    const flooder = await rawConnect(server.bound);
    const writing = writeAll(flooder, floodFrames(2000));
    const take = () => {
      const got: Message[] = [];
      for (let m = server.group.tryReceive(); m !== null; m = server.group.tryReceive()) {
        got.push(m);
      }
      return got;
    };
    await new Promise((r) => setTimeout(r, 300)); // the window fills: 32 unread
    const ids: number[] = [];
    const step = async (n: number) => {
      // Takes n messages, lets the event loop turn, then counts what is unread.
      for (let i = 0; i < n; i++) {
        const m = server.group.tryReceive()!;
        ids.push(Number(m.bhdr.messageId));
        engine.put(m);
      }
      await new Promise((r) => setTimeout(r, 50));
      const unread = take();
      for (const m of unread) ids.push(Number(m.bhdr.messageId));
      for (const m of unread) engine.put(m);
      return unread.length;
    };
    // One taken: the reader stays paused (31 unread), it does not top up to 32.
    assertEquals(await step(1), 31);
    // The queue is empty now: the reader resumed and filled the window again.
    await new Promise((r) => setTimeout(r, 100));
    // 15 taken of 32: still paused (17 unread); 16 taken: down to half, it reads on.
    assertEquals(await step(15), 17);
    await new Promise((r) => setTimeout(r, 100));
    assertEquals(await step(16), 32, "refilled once down to half");
    while (ids.length < 2000) {
      const m = await recv(server.group);
      ids.push(Number(m.bhdr.messageId));
      engine.put(m);
    }
    assertEquals(ids, Array.from({ length: 2000 }, (_, i) => i + 1), "all of it, in order");
    await writing;
    flooder.close();
    await recvUntilClosed(engine, server.group);
  });

  Deno.test(`${t.name}: a large pool does not let a reader run more than ${MAX_UNREAD_WINDOW} messages ahead`, async () => {
    // The unread window was maxPoolMsgs: with a pool sized for a big send window, a reader
    // fed by a socket that always has data decoded tens of thousands of frames ahead of a
    // receiver taking one message per await, and every message went cold in the CPU caches
    // (for await ran at 0.6x of a tryReceive drain; bench/RESULTS.md).
    await using engine = new Engine({ initialPoolMsgs: 64, maxPoolMsgs: 4096 });
    const server = await listen(engine, t);
    const flooder = await rawConnect(server.bound);
    const writing = writeAll(flooder, floodFrames(3000));
    await new Promise((r) => setTimeout(r, 300)); // the reader reads what it may
    const ids: number[] = [];
    // Taken in one synchronous loop: the reader cannot add to the queue meanwhile.
    for (let m = server.group.tryReceive(); m !== null; m = server.group.tryReceive()) {
      ids.push(Number(m.bhdr.messageId));
      engine.put(m);
    }
    assertEquals(ids.length, MAX_UNREAD_WINDOW, "read ahead of the application");
    while (ids.length < 3000) {
      const m = await recv(server.group);
      ids.push(Number(m.bhdr.messageId));
      engine.put(m);
    }
    assertEquals(ids, Array.from({ length: 3000 }, (_, i) => i + 1), "all of it, in order");
    await writing;
    flooder.close();
    await recvUntilClosed(engine, server.group);
  });
}

Deno.test("an engine with a pool of 0 still reads, one unread message per channel at a time", async () => {
  await using engine = new Engine({ initialPoolMsgs: 0, maxPoolMsgs: 0 });
  const server = await listen(engine, transports[0]!);
  const peer = await rawConnect(server.bound);
  await writeAll(peer, floodFrames(20));
  const ids: number[] = [];
  while (ids.length < 20) {
    const m = await recv(server.group);
    ids.push(Number(m.bhdr.messageId));
    engine.put(m);
  }
  assertEquals(ids, Array.from({ length: 20 }, (_, i) => i + 1));
  peer.close();
  expect(await recv(server.group), OpCode.Signal, Status.channelClosed);
});
