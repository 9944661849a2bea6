import { assert, assertEquals, assertRejects, assertStrictEquals, assertThrows } from "@std/assert";
import { delay } from "@std/async/delay";
import { Engine, type Message, OpCode, Status, TcpServerAddress, TofuError } from "../mod.ts";
import { connect, expect, listen, make, recv, transports } from "./_fixtures.ts";

const tcp = transports[0]!;

Deno.test("ChannelGroup.waitReceive() returns null on timeout and polls with 0", async () => {
  await using engine = new Engine();
  const g = engine.create();
  const start = performance.now();
  assertEquals(await g.waitReceive(30), null);
  assert(performance.now() - start >= 25);
  assertEquals(await g.waitReceive(0), null);
  assertEquals(g.tryReceive(), null);
  await assertRejects(() => g.waitReceive(-1), RangeError);
  await assertRejects(() => g.waitReceive(Number.NaN), RangeError);
});

Deno.test("ChannelGroup.waitReceive() rejects with signal.reason on abort", async () => {
  await using engine = new Engine();
  const g = engine.create();
  const ac = new AbortController();
  const reason = new Error("stop waiting");
  const p = g.waitReceive(Infinity, { signal: ac.signal });
  ac.abort(reason);
  assertStrictEquals(await p.catch((e) => e), reason);
  await assertRejects(() => g.waitReceive(10, { signal: ac.signal }), Error, "stop waiting");
  // The aborted waiter does not swallow the next message.
  g.updateReceiver();
  expect(await recv(g), OpCode.Signal, Status.receiverUpdate);
});

Deno.test("ChannelGroup.waitReceive() serves concurrent callers in call order", async () => {
  await using engine = new Engine();
  const g = engine.create();
  const waits = [g.waitReceive(), g.waitReceive(1000), g.waitReceive()];
  const sent: Message[] = [];
  for (let i = 0; i < 3; i++) {
    const m = engine.get("always")!;
    m.body.set(`n${i}`);
    sent.push(m);
    g.updateReceiver(m);
  }
  const got = await Promise.all(waits);
  got.forEach((m, i) => assertStrictEquals(m, sent[i]));
});

Deno.test("ChannelGroup.updateReceiver() queues a Signal or the given message", async () => {
  await using engine = new Engine();
  const g = engine.create();
  g.updateReceiver(null);
  const s = await recv(g);
  expect(s, OpCode.Signal, Status.receiverUpdate);
  assert(s.isFromEngine());
  assertEquals(s.bhdr.channelNumber, 0);
  assertEquals(s.bhdr.messageId, 0n);
  const m = engine.get("always")!;
  m.bhdr.opCode = OpCode.Request;
  m.bhdr.origin = 1;
  m.body.set("note");
  g.updateReceiver(m);
  const back = await recv(g);
  assertStrictEquals(back, m);
  expect(back, OpCode.Request, Status.receiverUpdate);
  assert(back.isFromApplication());
  engine.put(back);
  assertEquals(assertThrows(() => g.updateReceiver(back), TofuError).status, Status.notAllowed);
});

Deno.test("Engine.destroy() rejects pending and later waits with shutdown_started", async () => {
  await using engine = new Engine();
  const g = engine.create();
  const pending = g.waitReceive(Infinity).then(() => null, (e) => e);
  const iterated: Message[] = [];
  const loop = (async () => {
    for await (const m of g) iterated.push(m);
  })();
  await delay(1);
  await engine.destroy(g);
  const e1 = await pending;
  assert(e1 instanceof TofuError && e1.status === Status.shutdownStarted, String(e1));
  const e2 = await g.waitReceive(0).then(() => null, (e) => e);
  assert(e2 instanceof TofuError && e2.status === Status.shutdownStarted);
  await loop; // the iterator ends
  assertEquals(iterated.length, 0);
  await engine.destroy(g); // twice is a no-op
  const m = make(engine, 0, OpCode.WelcomeRequest);
  m.headers.append("~listen_on", "tcp|127.0.0.1|0");
  assertEquals(assertThrows(() => g.post(m), TofuError).status, Status.shutdownStarted);
  const other = new Engine();
  await assertRejects(() => other.destroy(engine.create()), TypeError);
  await other.close();
});

Deno.test("Engine.close() rejects waits, refuses posts and groups, and is idempotent", async () => {
  const engine = new Engine();
  const server = await listen(engine, tcp);
  const link = await connect(engine, tcp, server);
  const pending = link.client.waitReceive().then(() => null, (e) => e);
  link.client.post(make(engine, link.clientCh, OpCode.Request, "queued at close"));
  await engine.close();
  const err = await pending;
  assert(err instanceof TofuError && err.status === Status.shutdownStarted);
  await engine.close();
  await engine[Symbol.asyncDispose]();
  assertEquals(assertThrows(() => engine.create(), TofuError).status, Status.shutdownStarted);
  const m = make(engine, link.clientCh, OpCode.Request);
  assertEquals(assertThrows(() => link.client.post(m), TofuError).status, Status.shutdownStarted);
});

Deno.test("ChannelGroup.post() refuses messages the caller does not own", async () => {
  await using engine = new Engine();
  const server = await listen(engine, tcp);
  const link = await connect(engine, tcp, server);
  const m = make(engine, link.clientCh, OpCode.Request, "once");
  link.client.post(m);
  assertEquals(assertThrows(() => link.client.post(m), TofuError).status, Status.notAllowed);
  const put = make(engine, link.clientCh, OpCode.Request);
  engine.put(put);
  assertEquals(assertThrows(() => link.client.post(put), TofuError).status, Status.notAllowed);
  expect(await recv(server.group), OpCode.Request, Status.success);
});

Deno.test("ChannelGroup.post() checks channel ownership and listener use", async () => {
  await using engine = new Engine();
  const server = await listen(engine, tcp);
  const link = await connect(engine, tcp, server);
  const foreign = make(engine, link.serverCh, OpCode.Request);
  const e1 = assertThrows(() => link.client.post(foreign), TofuError);
  assertEquals(e1.status, Status.invelidMchnGroup);
  assertEquals(foreign.bhdr.status, Status.invelidMchnGroup);
  const unknown = make(engine, 1, OpCode.Request);
  if (engine.channelCount > 0 && ![link.clientCh, link.serverCh, server.channel].includes(1)) {
    assertEquals(
      assertThrows(() => link.client.post(unknown), TofuError).status,
      Status.invalidChannelNumber,
    );
  }
  const toListener = make(engine, server.channel, OpCode.Request);
  assertEquals(
    assertThrows(() => server.group.post(toListener), TofuError).status,
    Status.notAllowed,
  );
  // A refused message stays usable: fix it and post it.
  foreign.bhdr.channelNumber = link.clientCh;
  link.client.post(foreign);
  expect(await recv(server.group), OpCode.Request, Status.success);
});

Deno.test("maxChannels: exhausted numbers give allocation_failed on accept and on post", async () => {
  await using engine = new Engine({ maxChannels: 2 });
  const server = await listen(engine, tcp); // channel 1 of 2
  const client = engine.create();
  const hello = tcp.connectTo(server.bound).format(engine.get("always")!);
  const { channelNumber } = client.post(hello); // channel 2 of 2
  // The accepted side would need a third number: refused and reported on the listener.
  const s = await recv(server.group);
  expect(s, OpCode.Signal, Status.allocationFailed, "accept refused");
  assertEquals(s.bhdr.channelNumber, server.channel);
  assert(s.error?.message.startsWith("Cannot accept"), s.error?.message);
  // The client sees its connection end; its last report is channel_closed.
  for (;;) {
    const m = await recv(client);
    assertEquals(m.bhdr.channelNumber, channelNumber);
    assert(m.isFromEngine());
    if (m.bhdr.opCode === OpCode.Signal) {
      expect(m, OpCode.Signal, Status.channelClosed);
      break;
    }
  }
  await listen(engine, tcp); // channels: two listeners
  const w = new TcpServerAddress("127.0.0.1", 0).format(engine.get("always")!);
  const err = assertThrows(() => server.group.post(w), TofuError);
  assertEquals(err.status, Status.allocationFailed);
  assertEquals(w.bhdr.status, Status.allocationFailed);
  assertEquals(w.bhdr.channelNumber, 0, "the message stays with the caller");
  assertEquals(w.headers.get("~listen_on"), "tcp|127.0.0.1|0");
});

Deno.test("post() of something that is not a Message throws a clear TypeError", async () => {
  await using engine = new Engine();
  const group = engine.create();
  for (const [value, what] of [[null, "null"], [undefined, "undefined"], [{}, "object"]] as const) {
    // Before: "Cannot read properties of null (reading 'bhdr')" and the like.
    const err = assertThrows(() => group.post(value as unknown as Message), TypeError);
    assertEquals(err.message, `Cannot post: ${what} is not a Message`);
  }
});
