// Engine failure paths, load and backpressure, run over TCP, Unix sockets and (where it
// applies) isolate channels.

import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  encodeFrame,
  Engine,
  IsolateClientAddress,
  IsolateServerAddress,
  Message,
  OpCode,
  Status,
  TcpClientAddress,
  TcpServerAddress,
  TofuError,
  UdsServerAddress,
} from "../mod.ts";
import { tempUdsPath } from "../testing.ts";
import { QUEUED_MESSAGE_OVERHEAD } from "../src/_send_lane.ts";
import {
  assertQuiet,
  connect,
  expect,
  expectClosed,
  isolateTransport,
  lifecycleTransports,
  listen,
  make,
  makeAbort,
  rawConnect,
  readToEnd,
  recv,
  transports,
  writeAll,
} from "./_fixtures.ts";

async function expectWelcomeFailure(
  engine: Engine,
  request: Message,
  status: number,
): Promise<void> {
  const g = engine.create();
  const posted = g.post(request);
  const w = await recv(g);
  expect(w, OpCode.WelcomeResponse, status, "welcome failure");
  assert(w.isFromEngine());
  assertEquals(w.bhdr.channelNumber, posted.channelNumber);
  assertEquals(w.bhdr.messageId, posted.messageId);
  assert(w.error?.message.startsWith("Cannot "), w.error?.message);
  expectClosed(await recv(g), posted.channelNumber, posted.messageId);
  await assertQuiet(g, 30);
}

Deno.test("tcp: listen failures: non-local IP, unresolvable host, address in use", async () => {
  await using engine = new Engine();
  const get = () => engine.get("always")!;
  await expectWelcomeFailure(
    engine,
    new TcpServerAddress("192.0.2.1", 0).format(get()),
    Status.listenFailed,
  );
  await expectWelcomeFailure(
    engine,
    new TcpServerAddress("no-such-host.invalid", 0).format(get()),
    Status.invalidAddress,
  );
  const server = await listen(engine, transports[0]!);
  await expectWelcomeFailure(
    engine,
    TcpServerAddress.parse(server.bound).format(get()),
    Status.listenFailed,
  );
  const bad = get();
  bad.bhdr.opCode = OpCode.WelcomeRequest;
  bad.headers.append("~listen_on", "tcp|127.0.0.1");
  await expectWelcomeFailure(engine, bad, Status.invalidAddress);
});

Deno.test("uds: listen failures: missing directory, too long, in use, regular file kept", async () => {
  await using engine = new Engine();
  const get = () => engine.get("always")!;
  await expectWelcomeFailure(
    engine,
    new UdsServerAddress(`/tmp/tofu-missing-${Deno.pid}/x.port`).format(get()),
    Status.listenFailed,
  );
  await expectWelcomeFailure(
    engine,
    new UdsServerAddress(`/tmp/${"x".repeat(120)}.port`).format(get()),
    Status.invalidAddress,
  );
  const server = await listen(engine, transports[1]!);
  await expectWelcomeFailure(
    engine,
    UdsServerAddress.parse(server.bound).format(get()),
    Status.listenFailed,
  );
  const file = tempUdsPath();
  Deno.writeTextFileSync(file, "not a socket");
  try {
    await expectWelcomeFailure(
      engine,
      new UdsServerAddress(file).format(get()),
      Status.listenFailed,
    );
    assertEquals(Deno.readTextFileSync(file), "not a socket", "a regular file is never removed");
  } finally {
    Deno.removeSync(file);
  }
});

Deno.test("isolate: listen and Hello failures: name in use, malformed, nobody listening, listener closed", async () => {
  await using engine = new Engine();
  const get = () => engine.get("always")!;
  const server = await listen(engine, isolateTransport);
  await expectWelcomeFailure(
    engine,
    IsolateServerAddress.parse(server.bound).format(get()),
    Status.listenFailed,
  );
  const bad = get();
  bad.bhdr.opCode = OpCode.WelcomeRequest;
  bad.headers.append("~listen_on", "isolate|a|b");
  await expectWelcomeFailure(engine, bad, Status.invalidAddress);
  // Nobody listens: the HelloRequest comes back with connect_failed, then channel_closed.
  const g = engine.create();
  const posted = g.post(isolateTransport.nobody().format(get()));
  const back = expect(await recv(g), OpCode.HelloRequest, Status.connectFailed);
  assert(back.error?.message.startsWith("Cannot connect to isolate|"), back.error?.message);
  engine.put(back);
  expectClosed(await recv(g), posted.channelNumber, posted.messageId);
  // A closed listener's name is free again and refuses connects meanwhile.
  server.group.post(makeAbort(engine, server.channel));
  engine.put(await recv(server.group)); // the ByeSignal back
  expectClosed(await recv(server.group), server.channel);
  const late = g.post(IsolateClientAddress.parse(server.bound).format(get()));
  expect(await recv(g), OpCode.HelloRequest, Status.connectFailed, "after close");
  expectClosed(await recv(g), late.channelNumber, late.messageId);
  const again = engine.create();
  again.post(IsolateServerAddress.parse(server.bound).format(get()));
  expect(await recv(again), OpCode.WelcomeResponse, Status.success, "the name is free again");
});

Deno.test("uds: a stale socket file is removed before binding", async () => {
  await using engine = new Engine();
  const path = tempUdsPath();
  // Leave a socket file without a listener behind it, as a killed process would.
  const child = new Deno.Command("deno", {
    args: [
      "eval",
      `Deno.listen({ transport: "unix", path: ${JSON.stringify(path)} }); Deno.exit(0);`,
    ],
    stdout: "null",
    stderr: "null",
  });
  await child.output();
  assert(Deno.lstatSync(path).isSocket, "the child left its socket file");
  const g = engine.create();
  g.post(new UdsServerAddress(path).format(engine.get("always")!));
  expect(await recv(g), OpCode.WelcomeResponse, Status.success);
});

Deno.test("tcp: Hello failures: unknown host and malformed address", async () => {
  await using engine = new Engine();
  const g = engine.create();
  for (
    const [value, status] of [
      ["tcp|no-such-host.invalid|7099", Status.invalidAddress],
      ["tcp|127.0.0.1|99999", Status.invalidAddress],
      ["carrier-pigeon|x", Status.invalidAddress],
    ] as const
  ) {
    const m = engine.get("always")!;
    m.bhdr.opCode = OpCode.HelloRequest;
    m.headers.append("~connect_to", value);
    const posted = g.post(m);
    const back = expect(await recv(g), OpCode.HelloRequest, status, value);
    assertEquals(back.bhdr.messageId, posted.messageId);
    expectClosed(await recv(g), posted.channelNumber, posted.messageId);
  }
});

for (const t of lifecycleTransports) {
  Deno.test(`${t.name}: echo load: 20 clients x 100 sequential requests`, async () => {
    await using engine = new Engine({ initialPoolMsgs: 64, maxPoolMsgs: 256 });
    const server = await listen(engine, t);
    const serving = (async () => {
      for await (const m of server.group) {
        const op = m.bhdr.opCode;
        if (op === OpCode.HelloRequest) m.bhdr.opCode = OpCode.HelloResponse;
        else if (op === OpCode.Request) m.bhdr.opCode = OpCode.Response;
        else {
          engine.put(m);
          continue;
        }
        server.group.post(m);
      }
    })();
    const client = async (c: number) => {
      // The serving loop answers the Hello; this side only waits for the response.
      const group = engine.create();
      const { channelNumber } = group.post(t.connectTo(server.bound).format(engine.get("always")!));
      engine.put(expect(await recv(group), OpCode.HelloResponse, Status.success));
      for (let id = 1n; id <= 100n; id++) {
        group.post(make(engine, channelNumber, OpCode.Request, `c${c}-${id}`, id));
        const r = expect(await recv(group), OpCode.Response, Status.success);
        assertEquals(r.bhdr.messageId, id);
        assertEquals(r.body.text(), `c${c}-${id}`);
        engine.put(r);
      }
      return 100;
    };
    const done = await Promise.all(Array.from({ length: 20 }, (_, c) => client(c)));
    assertEquals(done.reduce((a, b) => a + b, 0), 2000);
    await engine.close();
    await serving;
  });

  Deno.test(`${t.name}: a peer killed mid-frame closes its channel with recv_failed`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const conn = await rawConnect(server.bound);
    const hello = new TcpClientAddress().format(new Message());
    hello.bhdr.channelNumber = 7;
    hello.bhdr.messageId = 31n;
    const req = make(engine, 7, OpCode.Request, "x".repeat(100), 32n);
    const bytes = encodeFrame(req);
    await writeAll(conn, encodeFrame(hello));
    await writeAll(conn, bytes.subarray(0, 40)); // half a frame, then gone
    conn.close();
    const h = expect(await recv(server.group), OpCode.HelloRequest, Status.success);
    assertEquals(h.bhdr.messageId, 31n);
    const closed = await recv(server.group);
    expectClosed(closed, h.bhdr.channelNumber, 31n);
    assertEquals(closed.error?.status, Status.recvFailed, closed.error?.message);
  });

  Deno.test(`${t.name}: invalid frames close only their channel; forged bits are cleared`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const good = await connect(engine, t, server);
    const conn = await rawConnect(server.bound);
    const forged = make(engine, 9, OpCode.Request, "forged", 5n);
    forged.bhdr.origin = 1;
    forged.bhdr.status = Status.channelClosed;
    forged.bhdr.internalB = 1;
    await writeAll(conn, encodeFrame(forged));
    const m = expect(
      await recv(server.group),
      OpCode.Request,
      Status.success,
      "forged bits cleared",
    );
    assert(m.isFromApplication());
    assertEquals(m.bhdr.internalB, 0);
    const badCh = m.bhdr.channelNumber;
    const bad = encodeFrame(make(engine, 9, OpCode.Request, "", 6n));
    bad[2] = 12; // opcode 12
    await writeAll(conn, bad);
    const closed = await recv(server.group);
    expectClosed(closed, badCh, 5n);
    assertEquals(closed.error?.status, Status.recvFailed);
    assertEquals(await readToEnd(conn), 0, "the engine closed the socket");
    conn.close();
    // The well-behaved channel is unaffected.
    good.client.post(make(engine, good.clientCh, OpCode.Request, "fine"));
    assertEquals((await recv(server.group)).body.text(), "fine");
  });

  Deno.test(`${t.name}: backpressure: reading stops on an empty pool, nothing is lost`, async () => {
    await using clientEngine = new Engine();
    await using serverEngine = new Engine({ initialPoolMsgs: 4, maxPoolMsgs: 4 });
    const server = await listen(serverEngine, t);
    const link = await connect(clientEngine, t, server);
    const total = 200;
    for (let i = 1; i <= total; i++) {
      link.client.post(make(clientEngine, link.clientCh, OpCode.Request, `m${i}`, BigInt(i)));
    }
    const held: Message[] = [];
    let poolEmpty = 0;
    // Hold every message: the pool runs dry and the channel must stop reading.
    for (;;) {
      const m = await server.group.waitReceive(300);
      if (m === null) break;
      if (m.bhdr.status === Status.poolEmpty) {
        poolEmpty++;
        assertEquals(m.bhdr.channelNumber, link.serverCh);
        assert(m.isFromEngine());
      }
      held.push(m);
    }
    assertEquals(poolEmpty, 1, "one pool_empty Signal per starvation episode");
    const data = held.filter((m) => m.bhdr.opCode === OpCode.Request);
    assert(data.length <= 4, `reading stopped: ${data.length} requests read with a pool of 4`);
    // Give everything back and drain: every message arrives once, in order.
    const ids = data.map((m) => Number(m.bhdr.messageId));
    for (const m of held) serverEngine.put(m);
    while (ids.length < total) {
      const m = await recv(server.group);
      if (m.bhdr.opCode === OpCode.Request) ids.push(Number(m.bhdr.messageId));
      else {
        expect(m, OpCode.Signal, Status.poolEmpty);
        poolEmpty++;
      }
      serverEngine.put(m);
    }
    assertEquals(ids, Array.from({ length: total }, (_, i) => i + 1));
    assert(poolEmpty <= 3, `${poolEmpty} pool_empty Signals`);
  });

  Deno.test(`${t.name}: maxQueuedBytes makes post throw instead of growing without bound`, async () => {
    await using engine = new Engine({ maxQueuedBytes: 4096 });
    const server = await listen(engine, t);
    const link = await connect(engine, t, server);
    let posted = 0;
    let err: TofuError | null = null;
    for (let i = 0; i < 100 && err === null; i++) {
      const m = make(engine, link.clientCh, OpCode.Request, "x".repeat(1000));
      try {
        link.client.post(m);
        posted++;
      } catch (e) {
        err = e as TofuError;
        assertEquals(m.body.byteLength, 1000, "the refused message stays with the caller");
      }
    }
    if (!(err instanceof TofuError)) throw new Error("post was never refused");
    assertEquals(err.status, Status.allocationFailed);
    assert(err.message.includes("maxQueuedBytes"), err.message);
    // Each queued message is charged its frame (16 + 1000 bytes) plus the fixed overhead.
    assertEquals(posted, Math.floor(4096 / (16 + 1000 + QUEUED_MESSAGE_OVERHEAD)));
    for (let i = 0; i < posted; i++) {
      expect(await recv(server.group), OpCode.Request, Status.success);
    }
    // Once written, the queue has room again.
    link.client.post(make(engine, link.clientCh, OpCode.Request, "again"));
    assertEquals((await recv(server.group)).body.text(), "again");
  });

  Deno.test(`${t.name}: destroying a group closes its peers' channels`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const link = await connect(engine, t, server);
    link.client.post(make(engine, link.clientCh, OpCode.Request, "pending"));
    await engine.destroy(server.group);
    for (;;) {
      const m = await recv(link.client);
      if (m.bhdr.opCode === OpCode.Signal && m.isFromEngine()) {
        expectClosed(m, link.clientCh, link.helloId);
        break;
      }
    }
    assertEquals(engine.channelCount, 0);
  });
}

Deno.test("without --allow-net, listen and connect come back not_allowed", async () => {
  const script = new URL("./_no_net_child.ts", import.meta.url);
  const out = await new Deno.Command("deno", {
    args: ["run", "--no-prompt", script.pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const reports = JSON.parse(text) as Array<{ op: number; status: number; error: string }>;
  assertEquals(reports.map((r) => [r.op, r.status]), [
    [OpCode.WelcomeResponse, Status.notAllowed],
    [OpCode.Signal, Status.channelClosed],
    [OpCode.HelloRequest, Status.notAllowed],
    [OpCode.Signal, Status.channelClosed],
    [OpCode.WelcomeResponse, Status.notAllowed],
    [OpCode.Signal, Status.channelClosed],
  ]);
  assert(reports[0]!.error.includes("--allow-net"), reports[0]!.error);
  assert(reports[2]!.error.startsWith("Cannot connect"), reports[2]!.error);
  assert(reports[4]!.error.includes("--allow-"), reports[4]!.error);
});

Deno.test("a HelloRequest is refused by post when its address is missing", () => {
  const engine = new Engine();
  const g = engine.create();
  const m = new Message();
  m.bhdr.opCode = OpCode.HelloRequest;
  assertEquals(assertThrows(() => g.post(m), TofuError).status, Status.wrongAddress);
  return engine.close();
});

Deno.test("tcp: the WelcomeResponse names the bound port and keeps the other header lines", async () => {
  await using engine = new Engine();
  const g = engine.create();
  const m = engine.get("always")!;
  m.bhdr.opCode = OpCode.WelcomeRequest;
  // Lines append() would refuse but a raw block may hold: no colon, a bare LF in a name.
  const raw = "note\r\n~listen_on:tcp|127.0.0.1|0\r\nodd\nname:v\r\nk: spaced \r\n";
  m.headers.setRaw(new TextEncoder().encode(raw));
  g.post(m);
  const w = expect(await recv(g), OpCode.WelcomeResponse, Status.success);
  const bound = w.headers.get("~listen_on")!;
  assert(/^tcp\|127\.0\.0\.1\|[1-9][0-9]*$/.test(bound), bound);
  assertEquals(
    new TextDecoder().decode(w.headers.raw()),
    raw.replace("tcp|127.0.0.1|0", bound),
  );
});
