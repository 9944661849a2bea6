// The Peers layer (connect, listen, serve, Channel) over TCP and Unix sockets.

import { expectTofuError, peerTransports, startServerChild, within } from "./_peer_fixtures.ts";
import { assert, assertEquals, assertInstanceOf, assertRejects } from "@std/assert";
import { delay } from "@std/async/delay";
import {
  Channel,
  connect,
  encodeFrame,
  Engine,
  listen,
  Listener,
  Message,
  OpCode,
  serve,
  Server,
  Status,
  statusName,
  TofuError,
} from "../mod.ts";
import { freeTcpPort, tempUdsPath } from "../testing.ts";
import { rawConnect, readToEnd, writeAll } from "./_fixtures.ts";

function chunks(n: number, prefix: string): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i};`);
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: request() resolves with the handler's answer`, async () => {
    await using server = await serve(t.any(), (req) => req.body.text().toUpperCase());
    assert(server.address.startsWith(`${t.name}|`));
    if (t.name === "tcp") assert(!server.address.endsWith("|0"), server.address);
    await using ch = await connect(server.address, { timeoutMs: 10_000 });
    assertEquals(ch.address, server.address);
    assert(ch.isOpen);
    using reply = await ch.request("ping", { timeoutMs: 10_000, headers: { "Job-ID": "7" } });
    assertEquals(reply.body.text(), "PING");
    assertEquals(reply.bhdr.opCode, OpCode.Response);
  });

  Deno.test(`${t.name}: 1,000 concurrent requests are each answered by their own response`, async () => {
    await using server = await serve(t.any(), async (req) => {
      // Answer out of order: later requests may finish first.
      const n = Number(req.body.text());
      if (n % 7 === 0) await delay(n % 5);
      return `answer ${n}`;
    });
    await using ch = await connect(server.address);
    const replies = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => ch.request(String(i), { timeoutMs: 60_000 })),
    );
    const ids = new Set<bigint>();
    replies.forEach((m, i) => {
      assertEquals(m.body.text(), `answer ${i}`);
      ids.add(m.bhdr.messageId);
      m[Symbol.dispose]();
    });
    assertEquals(ids.size, 1000);
  });

  Deno.test(`${t.name}: request() rejects on timeout and the channel keeps working`, async () => {
    await using server = await serve(t.any(), async (req) => {
      if (req.body.text() === "never") await new Promise(() => {});
      return "ok";
    });
    await using ch = await connect(server.address);
    const err = await expectTofuError(
      ch.request("never", { timeoutMs: 50 }),
      Status.communicationFailed,
      "no answer within 50 ms",
    );
    assertEquals(err.message, "Cannot complete request: no answer within 50 ms");
    using reply = await ch.request("again", { timeoutMs: 10_000 });
    assertEquals(reply.body.text(), "ok");
    await assertRejects(() => ch.request("x", { timeoutMs: -1 }), RangeError);
  });

  Deno.test(`${t.name}: an abort signal rejects request() and connect()`, async () => {
    await using server = await serve(t.any(), async (req) => {
      if (req.body.text() === "never") await new Promise(() => {});
      return "ok";
    });
    await using ch = await connect(server.address);
    const ac = new AbortController();
    const pending = ch.request("never", { signal: ac.signal });
    ac.abort(new Error("user gave up"));
    const err = await expectTofuError(pending, Status.communicationFailed, "aborted");
    assertEquals((err.cause as Error).message, "user gave up");
    await expectTofuError(
      ch.request("ok", { signal: AbortSignal.abort() }),
      Status.communicationFailed,
    );
    await expectTofuError(
      connect(server.address, { signal: AbortSignal.abort() }),
      Status.connectFailed,
      "aborted",
    );
    using reply = await ch.request("still works");
    assertEquals(reply.body.text(), "ok");
  });

  Deno.test(`${t.name}: requests in flight reject when the server closes`, async () => {
    const server = await serve(t.any(), async () => {
      await new Promise(() => {}); // never answers
    });
    const ch = await connect(server.address);
    const inFlight = ch.request("hang");
    inFlight.catch(() => {}); // checked below
    await delay(50);
    await within(server.close(), 10_000, "server.close() with a handler that never settles");
    await expectTofuError(inFlight, Status.channelClosed);
    assertEquals(statusName(await ch.closed), "success", "the server said bye");
    await expectTofuError(ch.request("late"), Status.channelClosed, "closed");
    await ch.close();
  });

  Deno.test(`${t.name}: connect() failures reject with the engine's status`, async () => {
    const [nobody, status] = t.nobody();
    await expectTofuError(connect(nobody), status);
    await expectTofuError(connect("tcp|127.0.0.1"), Status.invalidAddress);
    await expectTofuError(connect("nonsense"), Status.invalidAddress);
    await assertRejects(() => connect(nobody, { timeoutMs: -5 }), RangeError);
    // With reconnect it keeps trying until its deadline.
    await expectTofuError(
      connect(nobody, { timeoutMs: 300, reconnect: { initialDelayMs: 10 } }),
      Status.connectFailed,
      "no answer within 300 ms",
    );
  });

  Deno.test(`${t.name}: a 1,000-chunk stream each way is reassembled in order`, async () => {
    await using server = await serve(t.any(), async (req, ch) => {
      if (req.body.text() === "download") {
        return (function* () {
          yield* chunks(1000, "down");
        })();
      }
      let text = "";
      let n = 0;
      for await (using c of ch.chunks(req)) {
        text += c.body.text();
        n++;
      }
      return `${n} ${text.length} ${text === chunks(1000, "up").join("")}`;
    });
    await using ch = await connect(server.address);
    // Upload: a sync iterable, sent as one more-stream.
    using up = await ch.request(chunks(1000, "up"), { timeoutMs: 60_000 });
    assertEquals(up.body.text(), `1000 ${chunks(1000, "up").join("").length} true`);
    // Upload from an async iterable too.
    async function* slowly() {
      for (const c of chunks(1000, "up")) {
        yield c;
        await Promise.resolve();
      }
    }
    using up2 = await ch.request(slowly(), { timeoutMs: 60_000 });
    assertEquals(up2.body.text(), up.body.text());
    // Download: the answer is the first chunk of a stream.
    const first = await ch.request("download", { timeoutMs: 60_000 });
    assert(first.hasMore());
    const got: string[] = [];
    for await (using c of ch.chunks(first)) got.push(c.body.text());
    assertEquals(got, chunks(1000, "down"));
  });

  Deno.test(`${t.name}: a handler that throws gives the client a TofuError with its message`, async () => {
    await using server = await serve(t.any(), (req) => {
      const text = req.body.text();
      if (text === "plain") throw new Error("bad input\r\non two lines");
      if (text === "tofu") throw new TofuError(Status.notAllowed, "Cannot print: no paper");
      if (text === "reject") return Promise.reject("a string");
      return "fine";
    });
    await using ch = await connect(server.address);
    let err = await expectTofuError(ch.request("plain"), Status.processingFailed);
    assertEquals(err.message, "Cannot complete request: the peer failed: bad input on two lines");
    err = await expectTofuError(ch.request("tofu"), Status.notAllowed);
    assertEquals(err.message, "Cannot complete request: the peer failed: Cannot print: no paper");
    await expectTofuError(ch.request("reject"), Status.processingFailed, "a string");
    using ok = await ch.request("other");
    assertEquals(ok.body.text(), "fine");
  });

  Deno.test(`${t.name}: misbehaving peers lose their own channel only`, async () => {
    await using server = await serve(t.any(), (req) => `ok ${req.body.text()}`);
    await using good = await connect(server.address);
    // A peer that sends a frame with an invalid opcode (15).
    const garbage = await rawConnect(server.address);
    const bad = new Uint8Array(16);
    bad[2] = 0x0f;
    await writeAll(garbage, bad);
    // A peer that dies in the middle of a frame.
    const cut = await rawConnect(server.address);
    await writeAll(cut, new Uint8Array([0, 1, 0, 0, 0, 0]));
    cut.close();
    // A peer that floods requests and never reads its answers.
    const flood = await rawConnect(server.address);
    const frame = new Uint8Array(16 + 1000);
    frame[2] = OpCode.Request;
    new DataView(frame.buffer).setUint16(14, 1000);
    const flooding = (async () => {
      for (let i = 1; i <= 2000; i++) {
        new DataView(frame.buffer).setBigUint64(4, BigInt(i));
        await writeAll(flood, frame).catch(() => {});
      }
    })();
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) => good.request(String(i), { timeoutMs: 60_000 })),
    );
    replies.forEach((m, i) => {
      assertEquals(m.body.text(), `ok ${i}`);
      m[Symbol.dispose]();
    });
    assertEquals(await readToEnd(garbage), 0, "the garbage peer is cut off without an answer");
    garbage.close();
    await flooding;
    flood.close();
    using last = await good.request("still served");
    assertEquals(last.body.text(), "ok still served");
  });

  Deno.test(`${t.name}: using and await using give back messages and channels`, async () => {
    await using engine = new Engine();
    const pool0 = engine.poolSize;
    {
      await using server = await serve(t.any(), (req) => req, { engine });
      await using ch = await connect(server.address, { engine });
      assertEquals(engine.channelCount, 3, "listener, client, accepted");
      const held = await ch.request("held");
      {
        using reply = await ch.request("echo");
        assertEquals(reply.body.text(), "echo");
        assertEquals(engine.poolSize, pool0 - 2, "two replies held");
      }
      assertEquals(engine.poolSize, pool0 - 1, "one reply given back by using");
      held[Symbol.dispose]();
      held[Symbol.dispose](); // twice is a no-op
      assertEquals(engine.poolSize, pool0);
    }
    assertEquals(engine.channelCount, 0, "every channel closed");
    // The engine's own reports (channel_closed Signals) are extra messages: putting them
    // back grows the pool, so it can end above where it started, never below.
    assert(engine.poolSize >= pool0, `every message back in the pool: ${engine.poolSize}`);
  });

  Deno.test(`${t.name}: close() says bye, abort() drops, closed tells the status`, async () => {
    await using listener = await listen(t.any());
    const accepted = listener[Symbol.asyncIterator]();
    const a = await connect(listener.address);
    const peerA = (await accepted.next()).value as Channel;
    await a.close();
    assertEquals(statusName(await a.closed), "success");
    assertEquals(statusName(await peerA.closed), "success");
    await a.close(); // twice is fine

    const b = await connect(listener.address);
    const peerB = (await accepted.next()).value as Channel;
    b.abort();
    assertEquals(statusName(await b.closed), "channel_closed");
    const peerStatus = await peerB.closed;
    assert(
      peerStatus === Status.peerDisconnected || peerStatus === Status.recvFailed,
      statusName(peerStatus),
    );
    await expectTofuError(b.send("late"), Status.channelClosed);
    assertEquals(listener.peerCount, 0);
  });

  Deno.test(`${t.name}: both sides send signals, requests and streams; incoming messages iterate`, async () => {
    await using listener = await listen(t.any());
    await using client = await connect(listener.address);
    const accepted = listener[Symbol.asyncIterator]();
    const peer = (await accepted.next()).value as Channel;

    // The client sends a Signal, a one-way Request and a stream Signal.
    await client.send("sig", { headers: { kind: "note" } });
    const oneWayId = await client.send("job", { op: OpCode.Request });
    await client.send(["a", "b", "c"]);
    const seen: Message[] = [];
    for await (const m of peer) {
      seen.push(m);
      if (seen.length === 3) break;
    }
    assertEquals(seen.map((m) => [m.bhdr.opCode, m.body.text()]), [
      [OpCode.Signal, "sig"],
      [OpCode.Request, "job"],
      [OpCode.Signal, "a"],
    ]);
    assertEquals(seen[0]!.headers.get("kind"), "note");
    const streamed: string[] = [];
    for await (using c of peer.chunks(seen[2]!)) streamed.push(c.body.text());
    assertEquals(streamed, ["a", "b", "c"]);
    // The server answers the one-way request; it reaches the client's iterator.
    await peer.respond(seen[1]!, "done");
    for (const m of seen.slice(0, 2)) m[Symbol.dispose]();
    const it = client[Symbol.asyncIterator]();
    using answer = (await it.next()).value as Message;
    assertEquals([answer.bhdr.opCode, answer.bhdr.messageId, answer.body.text()], [
      OpCode.Response,
      oneWayId,
      "done",
    ]);

    // The server asks the client; the client answers from its iterator.
    const asking = peer.request("who are you?", { timeoutMs: 10_000 });
    using question = (await it.next()).value as Message;
    await client.respond(question, ["I am ", "the client"]);
    const first = await asking;
    const parts: string[] = [];
    for await (using part of peer.chunks(first)) parts.push(part.body.text());
    assertEquals(parts.join(""), "I am the client");
  });

  Deno.test(`${t.name}: reconnect survives a server process restart`, async () => {
    const address = t.fixed();
    const start = () => startServerChild(t, address, new URL("./_peers_child.ts", import.meta.url));
    let stop = await start();
    await using ch = await connect(address, { reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
    {
      using r = await ch.request("one", { timeoutMs: 10_000 });
      assertEquals(r.body.text(), "echo:one");
    }
    const inFlight = ch.request("slow", { timeoutMs: 60_000 });
    inFlight.catch(() => {}); // checked below
    await delay(100);
    await stop();
    // The request in flight is not sent again: it rejects with the closing status.
    const err = await assertRejects(() => inFlight, TofuError);
    assert(
      err.status === Status.peerDisconnected || err.status === Status.recvFailed,
      err.message,
    );
    // A request made while the server is down waits for the reconnect.
    const waiting = ch.request("two", { timeoutMs: 60_000 });
    waiting.catch(() => {}); // awaited below
    await delay(300);
    assert(!ch.isOpen, "still reconnecting while the server is down");
    stop = await start();
    try {
      using r2 = await waiting;
      assertEquals(r2.body.text(), "echo:two");
      assert(ch.isOpen);
      // A request that cannot wait that long rejects within its own timeout.
    } finally {
      await ch.close();
      await stop();
    }
  });

  Deno.test(`${t.name}: a request made while reconnecting rejects at its timeout`, async () => {
    const address = t.fixed();
    const server = await serve(address, () => "up");
    const ch = await connect(address, { reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
    await server.close();
    await delay(50);
    assert(!ch.isOpen);
    await expectTofuError(
      ch.request("x", { timeoutMs: 200 }),
      Status.communicationFailed,
      "within 200 ms",
    );
    await ch.close();
    assertEquals(statusName(await ch.closed), "channel_closed");
  });
}

Deno.test("connect() gives up on a peer that never answers the Hello, and leaves nothing open", async () => {
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of silent) accepted.push(c);
  })();
  await using engine = new Engine();
  const address = `tcp|127.0.0.1|${(silent.addr as Deno.NetAddr).port}`;
  await expectTofuError(
    connect(address, { engine, timeoutMs: 200 }),
    Status.connectFailed,
    "no answer within 200 ms",
  );
  assertEquals(engine.channelCount, 0);
  silent.close();
  await accepting;
  for (const c of accepted) c.close();
});

Deno.test("Server.close() resolves when a peer never answers the bye", async () => {
  const server = await serve("tcp|127.0.0.1|0", () => "x");
  // A hand-driven peer: sends a HelloRequest, then ignores everything.
  const raw = await rawConnect(server.address);
  const hello = new Message();
  hello.bhdr.opCode = OpCode.HelloRequest;
  hello.bhdr.messageId = 1n;
  hello.headers.append("~connect_to", server.address);
  await writeAll(raw, encodeFrame(hello));
  for (let i = 0; i < 200 && server.peerCount === 0; i++) await delay(10);
  assertEquals(server.peerCount, 1);
  await within(server.close(), 10_000, "server.close() with a deaf peer");
  assert((await readToEnd(raw)) > 0, "the peer got a HelloResponse and a ByeRequest");
  raw.close();
});

Deno.test("listen() on a TCP port and a Unix socket at once accepts on both", async () => {
  const path = tempUdsPath();
  await using server = await serve(
    ["tcp|127.0.0.1|0", `uds|${path}`],
    (req, ch) => `${req.body.text()} via ${ch.address.split("|")[0]}`,
  );
  assertEquals(server.addresses.length, 2);
  assertEquals(server.addresses[1], `uds|${path}`);
  await using overTcp = await connect(server.addresses[0]!);
  await using overUds = await connect(server.addresses[1]!);
  using a = await overTcp.request("hi");
  using b = await overUds.request("hi");
  assertEquals(a.body.text(), "hi via tcp");
  assertEquals(b.body.text(), "hi via uds"); // an accepted channel reports the address it came in on
  assertEquals(server.peerCount, 2);
});

Deno.test("listen() rejects and binds nothing when one address fails", async () => {
  await using first = await listen("tcp|127.0.0.1|0");
  await expectTofuError(listen([`uds|${tempUdsPath()}`, first.address]), Status.listenFailed);
  await expectTofuError(listen("tcp|127.0.0.1|x"), Status.invalidAddress);
  await assertRejects(() => listen([]), TypeError);
});

Deno.test("send() and request() check their arguments", async () => {
  await using server = await serve("tcp|127.0.0.1|0", () => "");
  await using ch = await connect(server.address);
  // deno-lint-ignore no-explicit-any
  await assertRejects(() => ch.request(42 as any), TypeError);
  // deno-lint-ignore no-explicit-any
  await assertRejects(() => ch.send("x", { op: OpCode.Response as any }), TypeError);
  await expectTofuError(ch.request("x".repeat(70_000)), Status.invalidBodyLen);
  using ok = await ch.request("");
  assertEquals(ok.body.text(), "");
});

Deno.test("the default engine keeps no process alive once its channels are closed", async () => {
  const code = `
    import { connect, serve } from ${JSON.stringify(new URL("../mod.ts", import.meta.url).href)};
    const server = await serve("tcp|127.0.0.1|0", () => "x");
    const ch = await connect(server.address, { reconnect: true });
    const r = await ch.request("a", { timeoutMs: 5000 });
    r[Symbol.dispose]();
    ch.request("never answered", { timeoutMs: 600000 }).catch(() => {});
    await ch.close();
    await server.close();
    console.log("done");
  `;
  const out = await within(
    new Deno.Command("deno", {
      args: ["eval", "--no-prompt", "--allow-net=127.0.0.1", code],
      stdout: "piped",
      stderr: "piped",
    }).output(),
    60_000,
    "the child's exit",
  );
  assertEquals(new TextDecoder().decode(out.stderr), "");
  assertEquals(new TextDecoder().decode(out.stdout).trim(), "done");
  assertEquals(out.code, 0);
});

Deno.test("Channel, Listener and Server are classes of the module", async () => {
  await using server = await serve("tcp|127.0.0.1|0", () => "");
  assertInstanceOf(server, Server);
  await using listener = await listen("tcp|127.0.0.1|0");
  assertInstanceOf(listener, Listener);
  await using ch = await connect(server.address);
  assertInstanceOf(ch, Channel);
});

Deno.test("serve() runs at most maxInFlight handlers per peer and answers the rest later", async () => {
  let running = 0;
  let most = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  await using server = await serve("tcp|127.0.0.1|0", async (req) => {
    running++;
    most = Math.max(most, running);
    await gate;
    running--;
    return req.body.text();
  }, { maxInFlight: 10 });
  await using ch = await connect(server.address);
  const replies = Array.from(
    { length: 50 },
    (_, i) => ch.request(String(i), { timeoutMs: 60_000 }),
  );
  for (let i = 0; i < 200 && running < 10; i++) await delay(5);
  await delay(50);
  assertEquals([running, most], [10, 10], "ten handlers run, the other requests wait");
  release();
  const bodies = (await Promise.all(replies)).map((m) => {
    using _ = m;
    return m.body.text();
  });
  assertEquals(bodies, Array.from({ length: 50 }, (_, i) => String(i)));
  assertEquals(most, 10);
  await assertRejects(() => serve("tcp|127.0.0.1|0", () => "", { maxInFlight: 0 }), RangeError);
});

Deno.test("a stream cut by a reconnect is not continued on the new connection", async () => {
  const address = `tcp|127.0.0.1|${freeTcpPort()}`;
  let server = await serve(address, () => "ok");
  await using ch = await connect(address, { reconnect: { initialDelayMs: 10 } });
  let resume!: () => void;
  const paused = new Promise<void>((r) => resume = r);
  async function* chunksAcrossARestart() {
    yield "first";
    await paused; // the connection drops and comes back meanwhile
    yield "second";
    yield "last";
  }
  const sending = ch.send(chunksAcrossARestart());
  sending.catch(() => {}); // checked below
  await delay(50);
  await server.close();
  server = await serve(address, () => "ok");
  for (let i = 0; i < 500 && !ch.isOpen; i++) await delay(10);
  assert(ch.isOpen, "reconnected");
  resume();
  await expectTofuError(sending, Status.channelClosed, "in the middle of it");
  using reply = await ch.request("fresh", { timeoutMs: 10_000 });
  assertEquals(reply.body.text(), "ok");
  await server.close();
});
