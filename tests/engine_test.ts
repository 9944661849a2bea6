// The engine suite: written once, run over TCP and over Unix sockets.

import { assert, assertEquals, assertThrows } from "@std/assert";
import { delay } from "@std/async/delay";
import { type ChannelGroup, Engine, OpCode, Status, TofuError } from "../mod.ts";
import {
  assertQuiet,
  connect,
  expect,
  expectClosed,
  lifecycleTransports,
  listen,
  make,
  makeAbort,
  recv,
} from "./_fixtures.ts";

for (const t of lifecycleTransports) {
  Deno.test(`${t.name}: WelcomeRequest gives one WelcomeResponse with the bound address`, async () => {
    await using engine = new Engine();
    const group = engine.create();
    const posted = group.post(t.listenAt().format(engine.get("always")!));
    assert(posted.channelNumber >= 1 && posted.channelNumber <= 65534);
    assert(posted.messageId > 0n);
    const w = expect(await recv(group), OpCode.WelcomeResponse, Status.success);
    assertEquals(w.bhdr.channelNumber, posted.channelNumber);
    assertEquals(w.bhdr.messageId, posted.messageId);
    assert(w.isFromApplication(), "a successful WelcomeResponse has origin application");
    const bound = w.headers.get("~listen_on")!;
    if (t.name === "tcp") assert(/^tcp\|127\.0\.0\.1\|[1-9][0-9]*$/.test(bound), bound);
    else if (t.name === "uds") assert(bound.startsWith("uds|/"), bound);
    else assert(/^isolate\|test-/.test(bound), bound);
    await assertQuiet(group, 50);
  });

  Deno.test(`${t.name}: Hello to nobody comes back with a failure, then channel_closed`, async () => {
    await using engine = new Engine();
    const group = engine.create();
    const posted = group.post(t.nobody().format(engine.get("always")!));
    const back = await recv(group);
    expect(
      back,
      OpCode.HelloRequest,
      t.name === "uds" ? Status.udsPathNotFound : Status.connectFailed,
    );
    assert(back.isFromEngine());
    assertEquals(back.bhdr.channelNumber, posted.channelNumber);
    assertEquals(back.bhdr.messageId, posted.messageId);
    assert(back.error instanceof TofuError && back.error.message.startsWith("Cannot connect"));
    expectClosed(await recv(group), posted.channelNumber, posted.messageId);
    await assertQuiet(group, 50);
  });

  Deno.test(`${t.name}: handshake, then ByeSignal on the listener gives 2 reports`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const link = await connect(engine, t, server);
    const bye = makeAbort(engine, server.channel);
    server.group.post(bye);
    expect(await recv(server.group), OpCode.ByeSignal, Status.channelClosed, "bye back");
    expectClosed(await recv(server.group), server.channel);
    // The accepted channel is independent of its listener.
    const req = make(engine, link.clientCh, OpCode.Request, "still here");
    link.client.post(req);
    const got = expect(await recv(server.group), OpCode.Request, Status.success);
    assertEquals(got.body.text(), "still here");
    assertEquals(got.bhdr.channelNumber, link.serverCh);
    if (t.name === "uds") {
      const path = server.bound.slice(4);
      assertThrows(() => Deno.lstatSync(path), Deno.errors.NotFound, undefined, "file removed");
    }
  });

  Deno.test(`${t.name}: ByeSignal (abort) on the client reports on both sides`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const link = await connect(engine, t, server);
    const bye = makeAbort(engine, link.clientCh);
    link.client.post(bye);
    const back = expect(await recv(link.client), OpCode.ByeSignal, Status.channelClosed);
    assert(back.isFromEngine());
    expectClosed(await recv(link.client), link.clientCh, link.helloId);
    // The server sees the connection end: one channel_closed for its accepted channel.
    expectClosed(await recv(server.group), link.serverCh, link.helloId);
    await assertQuiet(link.client, 50);
    await assertQuiet(server.group, 50);
    const late = make(engine, link.clientCh, OpCode.Request);
    const err = assertThrows(() => link.client.post(late), TofuError);
    assertEquals(err.status, Status.invalidChannelNumber);
    assertEquals(late.bhdr.status, Status.invalidChannelNumber);
  });

  Deno.test(`${t.name}: ByeSignal with unsent messages returns all, in order, then the Signal`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const link = await connect(engine, t, server);
    const ids: bigint[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(link.client.post(make(engine, link.clientCh, OpCode.Request, `r${i}`)).messageId);
    }
    const bye = makeAbort(engine, link.clientCh);
    link.client.post(bye); // same turn: nothing has been written yet
    expect(await recv(link.client), OpCode.ByeSignal, Status.channelClosed);
    for (let i = 0; i < 5; i++) {
      const m = expect(await recv(link.client), OpCode.Request, Status.channelClosed, `r${i}`);
      assertEquals(m.bhdr.messageId, ids[i]);
      assertEquals(m.body.text(), `r${i}`);
      assert(m.isFromEngine());
    }
    expectClosed(await recv(link.client), link.clientCh);
    expectClosed(await recv(server.group), link.serverCh);
    await assertQuiet(server.group, 50);
  });

  Deno.test(`${t.name}: graceful bye from the client, then no frames after it`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const link = await connect(engine, t, server);
    link.client.post(make(engine, link.clientCh, OpCode.Request, "before bye"));
    const byeId = link.client.post(make(engine, link.clientCh, OpCode.ByeRequest)).messageId;
    const late = make(engine, link.clientCh, OpCode.Request);
    assertEquals(
      assertThrows(() => link.client.post(late), TofuError).status,
      Status.channelClosed,
    );
    expect(await recv(server.group), OpCode.Request, Status.success);
    const byeReq = expect(await recv(server.group), OpCode.ByeRequest, Status.success);
    assertEquals(byeReq.bhdr.messageId, byeId);
    // The receiver of a ByeRequest may still send, then answers.
    server.group.post(make(engine, link.serverCh, OpCode.Signal, "last words"));
    byeReq.bhdr.opCode = OpCode.ByeResponse;
    server.group.post(byeReq);
    assertEquals(
      (await recv(link.client)).body.text(),
      "last words",
    );
    expect(await recv(link.client), OpCode.ByeResponse, Status.success);
    expectClosed(await recv(link.client), link.clientCh, link.helloId);
    expectClosed(await recv(server.group), link.serverCh, link.helloId);
    await assertQuiet(link.client, 50);
    await assertQuiet(server.group, 50);
  });

  Deno.test(`${t.name}: graceful bye from the server side`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const link = await connect(engine, t, server);
    server.group.post(make(engine, link.serverCh, OpCode.ByeRequest));
    const byeReq = expect(await recv(link.client), OpCode.ByeRequest, Status.success);
    byeReq.bhdr.opCode = OpCode.ByeResponse;
    link.client.post(byeReq);
    expectClosed(await recv(link.client), link.clientCh);
    expect(await recv(server.group), OpCode.ByeResponse, Status.success);
    expectClosed(await recv(server.group), link.serverCh);
  });

  Deno.test(`${t.name}: both sides bye at once close both channels`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const link = await connect(engine, t, server);
    link.client.post(make(engine, link.clientCh, OpCode.ByeRequest));
    server.group.post(make(engine, link.serverCh, OpCode.ByeRequest));
    expect(await recv(link.client), OpCode.ByeRequest, Status.success);
    expectClosed(await recv(link.client), link.clientCh);
    expect(await recv(server.group), OpCode.ByeRequest, Status.success);
    expectClosed(await recv(server.group), link.serverCh);
    await assertQuiet(link.client, 50);
  });

  Deno.test(`${t.name}: HelloRequest goes first; messages posted meanwhile follow in order`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const client = engine.create();
    const { channelNumber } = client.post(t.connectTo(server.bound).format(engine.get("always")!));
    for (let i = 0; i < 3; i++) client.post(make(engine, channelNumber, OpCode.Request, `q${i}`));
    const urgent = make(engine, channelNumber, OpCode.Signal, "urgent");
    urgent.bhdr.internalA = 1;
    client.post(urgent);
    const hello = expect(await recv(server.group), OpCode.HelloRequest, Status.success);
    const first = expect(await recv(server.group), OpCode.Signal, Status.success);
    assertEquals(first.body.text(), "urgent", "internalA jumps the queue, after the Hello");
    assertEquals(first.bhdr.internalA, 0, "internalA never travels");
    for (let i = 0; i < 3; i++) {
      const m = expect(await recv(server.group), OpCode.Request, Status.success);
      assertEquals(m.body.text(), `q${i}`);
      assertEquals(m.bhdr.channelNumber, hello.bhdr.channelNumber);
    }
  });

  Deno.test(`${t.name}: streams with more flow both ways, headers and ids intact`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const link = await connect(engine, t, server);
    const id = 424242n;
    for (let i = 0; i < 4; i++) {
      const m = make(engine, link.clientCh, OpCode.Request, `chunk${i}`, id);
      m.bhdr.more = i < 3 ? 1 : 0;
      if (i === 0) m.headers.append("JobTicket", "copies=2");
      link.client.post(m);
    }
    for (let i = 0; i < 4; i++) {
      const m = expect(await recv(server.group), OpCode.Request, Status.success);
      assertEquals(m.bhdr.messageId, id);
      assertEquals(m.hasMore(), i < 3);
      assertEquals(m.body.text(), `chunk${i}`);
      if (i === 0) assertEquals(m.headers.get("JobTicket"), "copies=2");
      m.bhdr.opCode = OpCode.Response;
      server.group.post(m);
    }
    for (let i = 0; i < 4; i++) {
      const m = expect(await recv(link.client), OpCode.Response, Status.success);
      assertEquals(m.hasMore(), i < 3);
      assertEquals(m.bhdr.messageId, id);
    }
  });

  Deno.test(`${t.name}: reconnect loop until a server appears`, async () => {
    await using engine = new Engine();
    const client = engine.create();
    const [listenAddr, connectAddr] = t.pair();
    let server: ChannelGroup | null = null;
    for (let attempt = 1;; attempt++) {
      if (attempt === 4) {
        server = engine.create();
        server.post(listenAddr.format(engine.get("always")!));
        expect(await recv(server), OpCode.WelcomeResponse, Status.success);
      }
      const posted = client.post(connectAddr.format(engine.get("always")!));
      if (server === null) {
        const back = await recv(client);
        assert(back.isFromEngine() && back.bhdr.opCode === OpCode.HelloRequest);
        assert(back.bhdr.status !== Status.success);
        expectClosed(await recv(client), posted.channelNumber, posted.messageId);
        engine.put(back);
        await delay(5);
        continue;
      }
      const hello = expect(await recv(server), OpCode.HelloRequest, Status.success);
      hello.bhdr.opCode = OpCode.HelloResponse;
      server.post(hello);
      const resp = expect(await recv(client), OpCode.HelloResponse, Status.success);
      assertEquals(resp.bhdr.messageId, posted.messageId);
      assertEquals(attempt, 4);
      break;
    }
  });
}
