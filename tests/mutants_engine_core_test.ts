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
  rawConnect,
  recv,
  transports,
  writeAll,
} from "./_fixtures.ts";
import { frame } from "./_attack.ts";

/** Posts `m` and returns the TofuError it is refused with; `m` stays the caller's. */
function refused(group: ChannelGroup, m: Message): TofuError {
  const e = assertThrows(() => group.post(m), TofuError);
  assertEquals(m.bhdr.status, e.status, "the status is also in the message's header");
  return e;
}

/**
 * Posts a Hello or Welcome request whose only header is `x-other` (no address) in a new
 * group; returns the group and what post returned.
 */
function postWithoutAddress(
  engine: Engine,
  opCode: OpCode,
): { g: ChannelGroup; ch: number; messageId: bigint } {
  const g = engine.create();
  const m = engine.get("always")!;
  m.bhdr.opCode = opCode;
  m.headers.append("x-other", "1");
  const { channelNumber: ch, messageId } = g.post(m);
  return { g, ch, messageId };
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
    for (const name of ["maxChannelHeldMsgs", "maxChannelHeldBytes", "maxEngineHeldBytes"]) {
      assertEquals(
        assertThrows(() => new Engine({ [name]: bad }), RangeError).message,
        `Cannot create engine: ${name} ${bad} is not a positive integer or Infinity`,
      );
    }
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
      { maxChannelHeldMsgs: 1, maxConnections: 1, maxChannelHeldBytes: 1, maxEngineHeldBytes: 1 },
      {
        maxChannelHeldMsgs: Infinity,
        maxConnections: Infinity,
        maxChannelHeldBytes: Infinity,
        maxEngineHeldBytes: Infinity,
      },
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
    const { g, ch, messageId } = postWithoutAddress(engine, OpCode.HelloRequest);
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
    const { g, ch, messageId } = postWithoutAddress(engine, OpCode.WelcomeRequest);
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

Deno.test("a HelloRequest on a channel number is not a new channel: that channel must be open", async () => {
  await using engine = new Engine();
  const g = engine.create();
  const hello = transports[0]!.nobody().format(engine.get("always")!);
  hello.bhdr.channelNumber = 7;
  const e = refused(g, hello);
  assertEquals([e.status, e.message], [
    Status.invalidChannelNumber,
    "Cannot post HelloRequest: channel 7 is not open",
  ]);
  assertEquals(engine.channelCount, 0);
});

Deno.test("a pending waitReceive is rejected when its group is destroyed", async () => {
  await using engine = new Engine();
  const g = engine.create();
  const waiting = g.waitReceive();
  await engine.destroy(g);
  const e = await waiting.then(() => null, (e: unknown) => e);
  if (!(e instanceof TofuError)) throw new Error(`expected a TofuError, got ${e}`);
  assertEquals([e.status, e.message], [
    Status.shutdownStarted,
    "Cannot receive: the group is destroyed",
  ]);
});

Deno.test("reusePort: a TCP listen without --unstable-net fails listen_failed; a Unix one is unaffected", async () => {
  await using engine = new Engine({ reusePort: true });
  const g = engine.create();
  const { channelNumber: ch } = g.post(transports[0]!.listenAt().format(engine.get("always")!));
  const back = expect(await recv(g), OpCode.WelcomeResponse, Status.listenFailed, "tcp welcome");
  assert(
    back.error!.message.includes("reusePort needs Linux and --unstable-net"),
    back.error!.message,
  );
  expectClosed(await recv(g), ch);
  await listen(engine, transports[1]!); // uds: a plain listen
});

Deno.test("tcp: a header line without a colon that starts like ~listen_on is left alone", async () => {
  await using engine = new Engine();
  const g = engine.create();
  const w = engine.get("always")!;
  w.bhdr.opCode = OpCode.WelcomeRequest;
  w.headers.setRaw(new TextEncoder().encode("~listen_onX\r\n~listen_on:tcp|127.0.0.1|0"));
  g.post(w);
  const welcome = expect(await recv(g), OpCode.WelcomeResponse, Status.success, "welcome");
  const lines = new TextDecoder().decode(welcome.headers.raw()).split("\r\n");
  assertEquals(lines[0], "~listen_onX");
  assert(/^~listen_on:tcp\|127\.0\.0\.1\|[1-9]\d*$/.test(lines[1]!), lines[1]);
});

for (const t of transports) {
  Deno.test(`${t.name}: a group's receive queue bound stops its channels reading; taking messages resumes them`, async () => {
    await using engine = new Engine({ maxReceiveQueueMsgs: 4 });
    const server = await listen(engine, t);
    const conn = await rawConnect(server.bound);
    const frames = [frame(OpCode.HelloRequest)];
    for (let i = 0; i < 19; i++) frames.push(frame(OpCode.Request, `m${i}`, BigInt(i + 2)));
    const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    frames.reduce((off, f) => (all.set(f, off), off + f.length), 0);
    await writeAll(conn, all);
    // Each synchronous drain finds at most the bound: the reader stops there, and taking
    // messages resumes it. All 20 arrive, in order.
    const got: string[] = [];
    let most = 0;
    for (let round = 0; got.length < 20; round++) {
      assert(round < 500, `${got.length} of 20 messages arrived`);
      await new Promise((r) => setTimeout(r, 20));
      let n = 0;
      for (let m = server.group.tryReceive(); m !== null; m = server.group.tryReceive()) {
        n++;
        got.push(
          m.bhdr.opCode === OpCode.HelloRequest
            ? "hello"
            : new TextDecoder().decode(m.body.bytes()),
        );
        engine.put(m);
      }
      most = Math.max(most, n);
      assert(n <= 4, `${n} messages were queued at once (maxReceiveQueueMsgs 4)`);
    }
    assertEquals(got, ["hello", ...Array.from({ length: 19 }, (_, i) => `m${i}`)]);
    conn.close();
  });

  Deno.test(`${t.name}: destroy() resolves once its channels are done: their queued bytes are released`, async () => {
    await using engine = new Engine({ maxEngineQueuedBytes: 100_000 });
    const server = await listen(engine, t);
    const a = await connect(engine, t, server);
    const b = await connect(engine, t, server);
    // A queues 60 KB and its group is destroyed in the same turn: nothing is written.
    a.client.post(make(engine, a.clientCh, OpCode.Request, "a".repeat(60_000)));
    await engine.destroy(a.client);
    // Once destroy() has resolved, A's bytes no longer count against the engine's budget:
    // B may queue more than its own allowance (64 KiB).
    b.client.post(make(engine, b.clientCh, OpCode.Request, "b".repeat(65_100)));
    // The server sees A's channel close and B's request, in either order.
    const two = [await recv(server.group), await recv(server.group)];
    two.sort((x, y) => x.bhdr.opCode - y.bhdr.opCode);
    expect(two[0]!, OpCode.Request, Status.success, "b's request");
    assertEquals(two[0]!.body.byteLength, 65_100);
    expect(two[1]!, OpCode.Signal, Status.channelClosed, "a closed");
    assertEquals(two[1]!.bhdr.channelNumber, a.serverCh);
  });
}
