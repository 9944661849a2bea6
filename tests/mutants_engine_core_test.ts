// Engine behaviour that mutation testing found unchecked (issue #13, docs/testing.md): option
// checks, every refusal of post with its status and exact message, the reports of failed
// connects and listens, and groups destroyed while a listen is under way. Sockets are real
// (TCP and Unix) wherever one is involved.

import { assert, assertEquals, assertThrows } from "@std/assert";
import { type ChannelGroup, Engine, type Message, OpCode, Status, TofuError } from "../mod.ts";
import {
  connect,
  expect,
  expectClosed,
  listen,
  make,
  makeAbort,
  recv,
  transports,
} from "./_fixtures.ts";

/** Posts `m` and returns the TofuError it is refused with; `m` stays the caller's. */
function refused(group: ChannelGroup, m: Message): TofuError {
  const e = assertThrows(() => group.post(m), TofuError);
  assertEquals(m.bhdr.status, e.status, "the status is also in the message's header");
  return e;
}

Deno.test("Engine options: each limit is a positive integer, named in the RangeError", () => {
  for (
    const name of ["maxQueuedBytes", "maxEngineQueuedBytes", "maxReceiveQueueMsgs"] as const
  ) {
    for (const bad of [0, -1, 1.5]) {
      assertEquals(
        assertThrows(() => new Engine({ [name]: bad }), RangeError).message,
        `Cannot create engine: ${name} ${bad} is not a positive integer`,
      );
    }
  }
  for (const bad of [0, 2.5, NaN]) {
    assertEquals(
      assertThrows(() => new Engine({ maxChannelHeldMsgs: bad }), RangeError).message,
      `Cannot create engine: maxChannelHeldMsgs ${bad} is not a positive integer`,
    );
    assertEquals(
      assertThrows(() => new Engine({ maxConnections: bad }), RangeError).message,
      `Cannot create engine: maxConnections ${bad} is not a positive integer or Infinity`,
    );
  }
  assertThrows(() => new Engine({ maxConnections: -Infinity }), RangeError, "maxConnections");
  // The smallest and the unbounded values are allowed.
  for (
    const ok of [
      { maxQueuedBytes: 1, maxEngineQueuedBytes: 1, maxReceiveQueueMsgs: 1 },
      { maxChannelHeldMsgs: 1, maxConnections: 1 },
      { maxChannelHeldMsgs: Infinity, maxConnections: Infinity },
    ]
  ) {
    new Engine(ok);
  }
});

Deno.test("post refusals: not yours, engine closed, group destroyed", async () => {
  const engine = new Engine();
  const g = engine.create();
  const m = make(engine, 1, OpCode.Request);
  engine.put(m);
  const e = assertThrows(() => g.post(m), TofuError);
  assertEquals(e.status, Status.notAllowed);
  assertEquals(e.message, "Cannot post Request: the message is not yours (already posted or put)");
  const gone = engine.create();
  await engine.destroy(gone);
  const e2 = refused(gone, make(engine, 1, OpCode.Signal));
  assertEquals(
    [e2.status, e2.message],
    [Status.shutdownStarted, "Cannot post Signal: the group is destroyed"],
  );
  const keep = make(engine, 1, OpCode.Request);
  await engine.close();
  const e3 = refused(g, keep);
  assertEquals(
    [e3.status, e3.message],
    [Status.shutdownStarted, "Cannot post Request: the engine is closed"],
  );
  assertEquals(engine.poolSize, 0, "close() empties the pool");
});

Deno.test("post refusals: unknown channel, another group's channel, a listener's channel", async () => {
  await using engine = new Engine();
  const t = transports[0]!;
  const server = await listen(engine, t);
  const other = engine.create();
  const e = refused(other, make(engine, 999, OpCode.Request));
  assertEquals([e.status, e.message], [
    Status.invalidChannelNumber,
    "Cannot post Request: channel 999 is not open",
  ]);
  const e2 = refused(other, make(engine, server.channel, OpCode.Request));
  assertEquals([e2.status, e2.message], [
    Status.invelidMchnGroup,
    `Cannot post Request: channel ${server.channel} belongs to another group`,
  ]);
  for (const op of [OpCode.Request, OpCode.ByeSignal]) {
    const e3 = refused(server.group, make(engine, server.channel, op));
    assertEquals([e3.status, e3.message], [
      Status.notAllowed,
      `Cannot post ${
        op === OpCode.Request ? "Request" : "ByeSignal"
      }: channel ${server.channel} is a listener; only a ByeSignal with internalA (close) is allowed`,
    ]);
  }
  // A ByeSignal with internalA closes it: handed back, then the final report.
  const bye = makeAbort(engine, server.channel);
  const posted = server.group.post(bye);
  assertEquals(posted.channelNumber, server.channel);
  const back = expect(await recv(server.group), OpCode.ByeSignal, Status.channelClosed, "bye");
  assertEquals(back.bhdr.messageId, posted.messageId);
  assertEquals(
    back.error?.message,
    `Cannot accept on channel ${server.channel}: the application closed the listener`,
  );
  expectClosed(await recv(server.group), server.channel);
  assertEquals(engine.channelCount, 0);
});

Deno.test("post refusal: every channel number in use", async () => {
  await using engine = new Engine({ maxChannels: 1 });
  const t = transports[0]!;
  await listen(engine, t);
  const g = engine.create();
  const e = refused(g, t.listenAt().format(engine.get("always")!));
  assertEquals([e.status, e.message], [
    Status.allocationFailed,
    "Cannot post WelcomeRequest: all 1 channel numbers are in use",
  ]);
});

for (const t of transports) {
  Deno.test(`${t.name}: an abort hands the ByeSignal back with its reason, then channel_closed on both sides`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const link = await connect(engine, t, server);
    const abort = makeAbort(engine, link.clientCh);
    const posted = link.client.post(abort);
    assertEquals(posted.channelNumber, link.clientCh);
    const back = expect(await recv(link.client), OpCode.ByeSignal, Status.channelClosed, "bye");
    assertEquals(back.bhdr.messageId, posted.messageId);
    const text = `Cannot send on channel ${link.clientCh}: the application aborted it`;
    assertEquals([back.error?.status, back.error?.message], [Status.channelClosed, text]);
    const closed = await recv(link.client);
    expectClosed(closed, link.clientCh, link.helloId);
    assertEquals(closed.error?.message, text);
    expectClosed(await recv(server.group), link.serverCh);
  });

  Deno.test(`${t.name}: a Hello without ~connect_to comes back invalid_address, then channel_closed`, async () => {
    await using engine = new Engine();
    const g = engine.create();
    const hello = engine.get("always")!;
    hello.bhdr.opCode = OpCode.HelloRequest;
    hello.headers.append("x-other", "1");
    const { channelNumber: ch, messageId } = g.post(hello);
    const back = expect(await recv(g), OpCode.HelloRequest, Status.invalidAddress, "hello");
    assertEquals(back.error?.message, "Cannot connect: no ~connect_to header");
    assertEquals(back.bhdr.channelNumber, ch);
    const closed = await recv(g);
    expectClosed(closed, ch, messageId);
    assertEquals(closed.error?.message, "Cannot connect: no ~connect_to header");
    assertEquals(engine.channelCount, 0, "the number was released");
  });

  Deno.test(`${t.name}: a Welcome without ~listen_on comes back as a WelcomeResponse, invalid_address`, async () => {
    await using engine = new Engine();
    const g = engine.create();
    const welcome = engine.get("always")!;
    welcome.bhdr.opCode = OpCode.WelcomeRequest;
    welcome.headers.append("x-other", "1");
    const { channelNumber: ch, messageId } = g.post(welcome);
    const back = expect(await recv(g), OpCode.WelcomeResponse, Status.invalidAddress, "welcome");
    assertEquals(back.error?.message, "Cannot listen: no ~listen_on header");
    assertEquals(back.bhdr.messageId, messageId);
    expectClosed(await recv(g), ch, messageId);
    assertEquals(engine.channelCount, 0);
  });

  Deno.test(`${t.name}: a failed connect names the address; the failed listen too`, async () => {
    await using engine = new Engine();
    const g = engine.create();
    const nobody = t.nobody();
    const hello = nobody.format(engine.get("always")!);
    const value = hello.headers.get("~connect_to")!;
    const { channelNumber: ch } = g.post(hello);
    const back = await recv(g);
    assertEquals(back.bhdr.opCode, OpCode.HelloRequest);
    assertEquals(back.error?.status, back.bhdr.status, "the status of the failure");
    const closed = await recv(g);
    expectClosed(closed, ch);
    for (const m of [back, closed]) {
      assert(m.error!.message.startsWith(`Cannot connect to ${value}: `), m.error!.message);
    }
    // Listening twice on one address: the second fails with the address in its message.
    const server = await listen(engine, t);
    const again = t.connectTo(server.bound);
    const w = engine.get("always")!;
    w.bhdr.opCode = OpCode.WelcomeRequest;
    const listenValue = t.name === "tcp"
      ? `tcp|${again.format(engine.get("always")!).headers.get("~connect_to")!.split("|")[1]}|${
        server.bound.split("|")[2]
      }`
      : server.bound;
    w.headers.append("~listen_on", listenValue);
    const { channelNumber: wch } = g.post(w);
    const wback = expect(await recv(g), OpCode.WelcomeResponse, Status.listenFailed, "welcome");
    assert(
      wback.error!.message.startsWith(`Cannot listen on ${listenValue}: `),
      wback.error!.message,
    );
    expectClosed(await recv(g), wch);
  });

  Deno.test(`${t.name}: a group destroyed right after posting a Welcome gets nothing; the number is free`, async () => {
    await using engine = new Engine({ maxChannels: 1 });
    const g = engine.create();
    g.post(t.listenAt().format(engine.get("always")!));
    await engine.destroy(g); // before the listen starts
    assertEquals(engine.channelCount, 0);
    // The only number is free again: a new listen gets it and works.
    await listen(engine, t);
    assertEquals(engine.channelCount, 1);
  });

  Deno.test(`${t.name}: a group destroyed while its listen is under way leaves no listener behind`, async () => {
    await using engine = new Engine({ maxChannels: 1 });
    const g = engine.create();
    g.post(t.listenAt().format(engine.get("always")!));
    await Promise.resolve(); // the listen has started
    await engine.destroy(g);
    // Wait until the engine has let go of the number (the listen settles first).
    for (let i = 0; i < 200 && engine.channelCount > 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assertEquals(engine.channelCount, 0);
    await listen(engine, t); // the only number was released
    assertEquals(engine.channelCount, 1);
  });
}

Deno.test("tcp: the WelcomeResponse keeps the request's address when the bound one would not fit", async () => {
  await using engine = new Engine();
  const g = engine.create();
  const w = engine.get("always")!;
  w.bhdr.opCode = OpCode.WelcomeRequest;
  w.headers.append("~listen_on", "tcp|127.0.0.1|0");
  // Fill the block so that the bound port (longer than "0") would push it past 65,535.
  const room = 65535 - w.headers.byteLength - "x-pad:".length - 2;
  w.headers.append("x-pad", "p".repeat(room));
  assertEquals(w.headers.byteLength, 65535);
  g.post(w);
  const welcome = expect(await recv(g), OpCode.WelcomeResponse, Status.success, "welcome");
  assertEquals(welcome.headers.get("~listen_on"), "tcp|127.0.0.1|0");
  assertEquals(welcome.headers.byteLength, 65535);
});

Deno.test("tcp: only the ~listen_on line is rewritten; the lines around it are kept in place", async () => {
  await using engine = new Engine();
  const g = engine.create();
  const w = engine.get("always")!;
  w.bhdr.opCode = OpCode.WelcomeRequest;
  w.headers.setRaw(
    new TextEncoder().encode("x-a:1\r\n~listen_on:tcp|127.0.0.1|0\r\nx-b:2"),
  );
  g.post(w);
  const welcome = expect(await recv(g), OpCode.WelcomeResponse, Status.success, "welcome");
  const lines = new TextDecoder().decode(welcome.headers.raw()).split("\r\n");
  assertEquals(lines[0], "x-a:1");
  assert(/^~listen_on:tcp\|127\.0\.0\.1\|[1-9]\d*$/.test(lines[1]!), lines[1]);
  assertEquals(lines[2], "x-b:2");
});
