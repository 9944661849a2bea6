// Hostile review of the Peers layer: races between close, abort, reconnect and requests in
// flight; late answers; peers that send what they should not; and, after every scenario,
// every message back in its pool and every channel closed.

import {
  expectTofuError,
  peerTransports,
  poolProbe,
  startServerChild,
  within,
} from "./_peer_fixtures.ts";
import { assert, assertEquals, assertRejects } from "@std/assert";
import { delay } from "@std/async/delay";
import {
  type Channel,
  connect,
  Engine,
  listen,
  type Message,
  OpCode,
  serve,
  type Server,
  Status,
  statusName,
  TofuError,
} from "../mod.ts";
import { freeTcpPort, tempUdsPath } from "../testing.ts";
import { listen as rawListen, make, recv, transports } from "./_fixtures.ts";

const POOL = 64;

/** An engine whose pool starts with `POOL` messages and never drops one that comes back. */
function engineWithProbe(): Engine {
  return new Engine({ initialPoolMsgs: POOL, maxPoolMsgs: 100_000 });
}

/** Connects a Peers channel to `peer` (a plain engine's listener), which accepts its Hello. */
async function connectAnswered(
  engine: Engine,
  peer: Awaited<ReturnType<typeof rawListen>>,
): Promise<Channel> {
  const connecting = connect(peer.bound, { engine });
  const hello = await recv(peer.group);
  hello.bhdr.opCode = OpCode.HelloResponse;
  peer.group.post(hello);
  return await connecting;
}

function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => open = r);
  return { wait, open };
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: an already aborted signal sends nothing`, async () => {
    await using engine = engineWithProbe();
    const seen: string[] = [];
    await using server = await serve(t.any(), (req) => {
      seen.push(req.body.text());
      return "ok";
    }, { engine });
    await using ch = await connect(server.address, { engine });
    const aborted = AbortSignal.abort();
    await expectTofuError(
      ch.request("aborted request", { signal: aborted }),
      Status.communicationFailed,
      "aborted",
    );
    await expectTofuError(
      ch.send("aborted signal", { signal: aborted }),
      Status.communicationFailed,
    );
    using probe = await ch.request("probe");
    assertEquals(probe.body.text(), "ok");
    assertEquals(seen, ["probe"], "nothing reached the server before the probe");
  });

  Deno.test(`${t.name}: unread messages are given back when the channel closes`, async () => {
    await using engine = engineWithProbe();
    const probe = poolProbe(engine);
    {
      const server = await serve(t.any(), async (req, ch) => {
        // Signals and a stream the client never reads.
        await ch.send("note 1");
        await ch.send("note 2");
        await ch.send(["part 1", "part 2", "part 3"]);
        if (req.body.text() === "stream") return ["s1", "s2", "s3"];
        return `re ${req.body.text()}`;
      }, { engine });
      const ch = await connect(server.address, { engine });
      const ch2 = await connect(server.address, { engine });
      for (const c of [ch, ch2]) {
        using r = await c.request("hello");
        assertEquals(r.body.text(), "re hello");
        // A streamed answer whose first chunk is disposed without reading the rest.
        using s = await c.request("stream");
        assertEquals([s.body.text(), s.hasMore()], ["s1", true]);
      }
      // This side closes ch; the server closes ch2 (a bye from the peer) before ch2.close().
      await ch.close();
      await server.close();
      assertEquals(statusName(await ch2.closed), "success");
      await ch2.close();
    }
    await probe.check("after close()");
  });

  Deno.test(`${t.name}: a late answer is released, never given to another request`, async () => {
    await using engine = engineWithProbe();
    const probe = poolProbe(engine);
    {
      const slow = gate();
      await using server = await serve(t.any(), async (req) => {
        const text = req.body.text();
        if (text.startsWith("slow")) await slow.wait;
        if (text === "slow stream") return ["late 1", "late 2", "late 3"];
        return `answer to ${text}`;
      }, { engine });
      await using ch = await connect(server.address, { engine });
      const incoming: Message[] = [];
      const reading = (async () => {
        for await (const m of ch) incoming.push(m);
      })();
      await expectTofuError(
        ch.request("slow", { timeoutMs: 50 }),
        Status.communicationFailed,
        "within 50 ms",
      );
      const ac = new AbortController();
      const streamed = ch.request("slow stream", { signal: ac.signal });
      await delay(20);
      ac.abort();
      await expectTofuError(streamed, Status.communicationFailed, "aborted");
      slow.open();
      for (let i = 0; i < 20; i++) {
        using r = await ch.request(`next ${i}`, { timeoutMs: 10_000 });
        assertEquals(r.body.text(), `answer to next ${i}`);
      }
      await ch.close();
      await reading;
      assertEquals(incoming.length, 0, "no late answer reached the iterator");
    }
    await probe.check("after the late answers");
  });

  Deno.test(`${t.name}: concurrent close() and abort() all settle; every later call rejects`, async () => {
    await using engine = engineWithProbe();
    const probe = poolProbe(engine);
    {
      const hang = gate();
      await using server = await serve(t.any(), async (req) => {
        if (req.body.text() === "hang") await hang.wait;
        return "ok";
      }, { engine });
      const ch = await connect(server.address, { engine });
      const inFlight = ch.request("hang");
      inFlight.catch(() => {});
      const reading = (async () => {
        for await (const m of ch) engine.put(m);
        return "ended";
      })();
      await delay(20);
      const closes = [ch.close(), ch.close(), ch.close()];
      ch.abort();
      closes.push(ch.close());
      await within(Promise.all(closes), 5000, "concurrent close()");
      await expectTofuError(inFlight, Status.channelClosed);
      assertEquals(await within(reading, 5000, "for await over a closed channel"), "ended");
      await expectTofuError(ch.request("after"), Status.channelClosed, "Cannot complete request");
      await expectTofuError(ch.send("after"), Status.channelClosed, "Cannot send");
      await expectTofuError(ch.respond(7n, "after"), Status.channelClosed, "Cannot respond");
      assert(!ch.isOpen);
      await ch.close();
      hang.open(); // the handler gives its request back once it settles
    }
    await probe.check("after concurrent closes");
  });

  Deno.test(`${t.name}: reconnect gives up after maxAttempts; waiting requests reject at once`, async () => {
    await using engine = engineWithProbe();
    const probe = poolProbe(engine);
    const address = t.fixed();
    const server = await serve(address, () => "up", { engine });
    const ch = await connect(address, {
      engine,
      reconnect: { initialDelayMs: 10, maxDelayMs: 20, maxAttempts: 2 },
    });
    await server.close();
    const waiting = ch.request("x", { timeoutMs: 60_000 });
    waiting.catch(() => {});
    // With the closing status, as a request in flight (tests/giveup_status_test.ts).
    await within(expectTofuError(waiting, Status.connectFailed), 10_000, "the waiting request");
    assertEquals(statusName(await ch.closed), "connect_failed");
    await expectTofuError(ch.request("later"), Status.channelClosed);
    await ch.close();
    await probe.check("after the given-up reconnect");
  });

  Deno.test(`${t.name}: close() during a re-dial ends at once and leaves nothing running`, async () => {
    await using engine = engineWithProbe();
    const address = t.fixed();
    const server = await serve(address, () => "up", { engine });
    const ch = await connect(address, {
      engine,
      timeoutMs: 30_000,
      reconnect: { initialDelayMs: 5, maxDelayMs: 5 },
    });
    await server.close();
    // The address now accepts connections and never answers: a re-dial hangs in its Hello.
    const silent = t.silent(address);
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const c of silent) held.push(c);
    })();
    const until = Date.now() + 10_000;
    while (held.length === 0 && Date.now() < until) await delay(10);
    assert(held.length > 0, "a re-dial reached the silent listener");
    assert(!ch.isOpen);
    await within(ch.close(), 2000, "close() during a re-dial");
    assertEquals(statusName(await ch.closed), "channel_closed");
    silent.close();
    await accepting.catch(() => {});
    for (const c of held) c.close();
  });

  Deno.test(`${t.name}: bodies over 65535 bytes reject clearly and the channel works on`, async () => {
    await using engine = engineWithProbe();
    const probe = poolProbe(engine);
    {
      await using server = await serve(t.any(), (req) => `got ${req.body.bytes().length}`, {
        engine,
      });
      await using ch = await connect(server.address, { engine });
      const big = "x".repeat(70_000);
      await expectTofuError(ch.request(big), Status.invalidBodyLen);
      await expectTofuError(ch.send(new Uint8Array(65_536)), Status.invalidBodyLen);
      await expectTofuError(ch.request(["small", big]), Status.invalidBodyLen);
      using ok = await ch.request("x".repeat(65_535), { timeoutMs: 10_000 });
      assertEquals(ok.body.text(), "got 65535");
    }
    await probe.check("after the refused bodies");
  });

  Deno.test(`${t.name}: serve() releases the rest of a stream its handler did not read`, async () => {
    await using serverEngine = engineWithProbe();
    const probe = poolProbe(serverEngine, 2);
    await using server = await serve(t.any(), (req, ch) => {
      if (req.body.text() !== "upper") return "ignored";
      // Chunks read lazily, while the response streams out, are not dropped.
      return (async function* () {
        for await (using c of ch.chunks(req)) yield c.body.text().toUpperCase();
      })();
    }, { engine: serverEngine });
    await using ch = await connect(server.address);
    const first = await ch.request(["upper", "a", "b"], { timeoutMs: 10_000 });
    const got: string[] = [];
    for await (using c of ch.chunks(first)) got.push(c.body.text());
    assertEquals(got, ["UPPER", "A", "B"]);
    using a = await ch.request(["c1", "c2", "c3", "c4", "c5"], { timeoutMs: 10_000 });
    assertEquals(a.body.text(), "ignored");
    // This request arrives after every chunk of the stream.
    using b = await ch.request("after", { timeoutMs: 10_000 });
    assertEquals(b.body.text(), "ignored");
    await probe.check("while the peer is still connected");
  });
}

for (const t of transports) {
  Deno.test(`${t.name}: a peer's error Response that opens a stream is released with its stream`, async () => {
    await using engine = engineWithProbe();
    await using peerEngine = new Engine();
    const peer = await rawListen(peerEngine, t);
    const ch = await connectAnswered(engine, peer);
    const probe = poolProbe(engine, 1);

    const failing = ch.request("q1");
    const req = await recv(peer.group);
    const n = req.bhdr.channelNumber;
    const id = req.bhdr.messageId;
    peerEngine.put(req);
    for (const [i, more] of ([1, 1, 1, 0] as const).entries()) {
      const m = make(peerEngine, n, OpCode.Response, `part ${i}`, id);
      m.bhdr.more = more;
      if (i === 0) {
        m.headers.append("tofu-status", String(Status.notAllowed));
        m.headers.append("tofu-error", "no");
      }
      peer.group.post(m);
    }
    await expectTofuError(failing, Status.notAllowed, "the peer failed: no");

    // A Response with an id nobody asked for (it comes out of the iterator), then a real answer.
    const stray = make(peerEngine, n, OpCode.Response, "stray", 999_999n);
    peer.group.post(stray);
    const asking = ch.request("q2");
    const req2 = await recv(peer.group);
    req2.bhdr.opCode = OpCode.Response;
    req2.body.set("a2");
    peer.group.post(req2);
    using a2 = await asking;
    assertEquals(a2.body.text(), "a2");
    const it = ch[Symbol.asyncIterator]();
    using strayed = (await it.next()).value as Message;
    assertEquals([strayed.bhdr.opCode, strayed.body.text()], [OpCode.Response, "stray"]);
    strayed[Symbol.dispose]();
    a2[Symbol.dispose]();
    await probe.check("the error stream while the channel is open");
    ch.abort();
    await ch.close();
  });

  Deno.test(`${t.name}: a ByeRequest in the middle of a stream ends its reader with an error`, async () => {
    await using engine = engineWithProbe();
    await using peerEngine = new Engine();
    const peer = await rawListen(peerEngine, t);
    const ch = await connectAnswered(engine, peer);
    const asking = ch.request("stream please");
    const req = await recv(peer.group);
    const n = req.bhdr.channelNumber;
    const id = req.bhdr.messageId;
    peerEngine.put(req);
    for (const i of [0, 1]) {
      const m = make(peerEngine, n, OpCode.Response, `part ${i}`, id);
      m.bhdr.more = 1;
      peer.group.post(m);
    }
    peer.group.post(make(peerEngine, n, OpCode.ByeRequest));
    const first = await asking;
    const got: string[] = [];
    const err = await assertRejects(async () => {
      for await (using c of ch.chunks(first)) got.push(c.body.text());
    }, TofuError);
    assertEquals(statusName(err.status), "channel_closed");
    assertEquals(got, ["part 0", "part 1"]);
    assertEquals(statusName(await ch.closed), "success");
    await ch.close();
    const bye = await recv(peer.group);
    assertEquals(bye.bhdr.opCode, OpCode.ByeResponse);
    peerEngine.put(bye);
    assertEquals(engine.channelCount, 0);
  });
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: for await over a listener and its channels ends when they close`, async () => {
    await using engine = engineWithProbe();
    const probe = poolProbe(engine);
    {
      const listener = await listen(t.any(), { engine });
      const peers: Channel[] = [];
      const accepting = (async () => {
        for await (const peer of listener) peers.push(peer);
        return "listener ended";
      })();
      const a = await connect(listener.address, { engine });
      const b = await connect(listener.address, { engine });
      // c's Hello sits in the accept queue's channel, never taken by anyone but the loop.
      const c = await connect(listener.address, { engine });
      await c.send("unread by anyone");
      const until = Date.now() + 10_000;
      while (peers.length < 3 && Date.now() < until) await delay(10);
      assertEquals(peers.length, 3);
      const readA = (async () => {
        let n = 0;
        for await (using _m of peers[0]!) n++;
        return n;
      })();
      await a.send("one");
      a.abort(); // the peer of this loop disappears
      assertEquals(await within(readA, 5000, "for await over an aborted peer"), 1);
      await within(listener.close(), 5000, "listener.close()");
      assertEquals(
        await within(accepting, 5000, "for await over a closed listener"),
        "listener ended",
      );
      for (const ch of [a, b, c]) {
        await within(ch.closed, 5000, "the client hears the listener's bye");
        await ch.close();
      }
      assertEquals(listener.peerCount, 0);
    }
    await probe.check("after the listener closed");
  });
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: a stream whose source fails ends with an error on the other side`, async () => {
    await using engine = engineWithProbe();
    const probe = poolProbe(engine);
    {
      let serverSaw: Promise<string> | undefined;
      await using server = await serve(t.any(), (req, ch) => {
        if (req.body.text() === "download") {
          return (function* () {
            yield "a";
            yield "b";
            yield "c";
            throw new Error("disk gone");
          })();
        }
        // An upload: read it, and report how it ended.
        serverSaw = (async () => {
          const got: string[] = [];
          try {
            for await (using c of ch.chunks(req)) got.push(c.body.text());
            return `complete ${got}`;
          } catch (err) {
            return `${got} then ${statusName((err as TofuError).status)}: ${
              (err as Error).message
            }`;
          }
        })();
        return serverSaw;
      }, { engine });
      await using ch = await connect(server.address, { engine });

      // The server's streamed reply fails after two chunks went out.
      const first = await ch.request("download", { timeoutMs: 10_000 });
      const got: string[] = [];
      const err = await assertRejects(async () => {
        for await (using c of ch.chunks(first)) got.push(c.body.text());
      }, TofuError);
      assertEquals(got, ["a", "b"]);
      assertEquals(statusName(err.status), "processing_failed");
      assertEquals(err.message, "Cannot read stream: the peer failed: disk gone");

      // The client's upload fails after two chunks went out.
      const upload = ch.request(
        (function* () {
          yield "x";
          yield "y";
          yield "z";
          throw new Error("source gone");
        })(),
        { timeoutMs: 10_000 },
      );
      await assertRejects(() => upload, Error, "source gone");
      while (serverSaw === undefined) await delay(10);
      assertEquals(
        await within(serverSaw, 5000, "the server's reader"),
        "x,y then processing_failed: Cannot read stream: the peer failed: source gone",
      );
      using ok = await ch.request("download", { timeoutMs: 10_000 });
      assertEquals(ok.body.text(), "a");
    }
    await probe.check("after the failed streams");
  });
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: closing the engine under a server and its clients settles everything`, async () => {
    const engine = new Engine();
    const hang = gate();
    const server = await serve(t.any(), async () => {
      await hang.wait;
      return "late";
    }, { engine });
    const listener = await listen(t.any(), { engine });
    const ch = await connect(server.address, { engine });
    const inFlight = ch.request("hang");
    inFlight.catch(() => {});
    const reading = (async () => {
      for await (const _m of ch) { /* nothing arrives */ }
      return "ended";
    })();
    await delay(20);
    await within(engine.close(), 5000, "engine.close()");
    await within(expectTofuError(inFlight, Status.shutdownStarted), 5000, "the request in flight");
    assertEquals(statusName(await within(ch.closed, 5000, "closed")), "shutdown_started");
    assertEquals(await within(reading, 5000, "the iterator"), "ended");
    await expectTofuError(ch.request("after"), Status.channelClosed);
    hang.open();
    await within(
      Promise.all([ch.close(), server.close(), listener.close()]),
      5000,
      "close() after the engine closed",
    );
  });
}

// Deno's TCP listeners do not set SO_REUSEADDR: a connection the server side closed first
// sits in TIME_WAIT on the server's port and a new listener there fails with
// listen_failed (EADDRINUSE) until it is gone. A restart on a fixed TCP port therefore
// retries, as a real supervisor would; any other failure fails the test at once.
async function restartOn(address: string, start: () => Promise<Server>): Promise<Server> {
  for (let attempt = 0;; attempt++) {
    try {
      return await start();
    } catch (err) {
      const inUse = err instanceof TofuError && err.status === Status.listenFailed &&
        /in use/i.test(err.message) && address.startsWith("tcp|");
      if (!inUse || attempt >= 600) throw err;
      await delay(100);
    }
  }
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: requests across repeated server restarts: each answered once or rejected`, async () => {
    await using clientEngine = engineWithProbe();
    const probe = poolProbe(clientEngine);
    await using serverEngine = new Engine();
    const address = t.fixed();
    const seen: string[] = [];
    const handler = (req: Message) => {
      seen.push(req.body.text());
      return `re ${req.body.text()}`;
    };
    let server = await serve(address, handler, { engine: serverEngine });
    const ch = await connect(address, {
      engine: clientEngine,
      reconnect: { initialDelayMs: 5, maxDelayMs: 20 },
    });
    let answered = 0;
    let failed = 0;
    const asking = (async () => {
      for (let i = 0; i < 400; i++) {
        try {
          using r = await ch.request(`q${i}`, { timeoutMs: 10_000 });
          assertEquals(r.body.text(), `re q${i}`);
          answered++;
        } catch (err) {
          assert(err instanceof TofuError, String(err));
          failed++;
        }
      }
    })();
    for (let restart = 0; restart < 5; restart++) {
      await delay(15);
      await server.close();
      server = await restartOn(address, () => serve(address, handler, { engine: serverEngine }));
    }
    await within(asking, 60_000, "the requests");
    await server.close();
    await ch.close();
    assertEquals(answered + failed, 400);
    assert(answered > 0);
    assertEquals(new Set(seen).size, seen.length, "no request reached a server twice");
    await probe.check("after the restarts");
  });
}

Deno.test("an accepted channel's address is the listener address the peer dialled", async () => {
  await using engine = engineWithProbe();
  const probe = poolProbe(engine);
  {
    await using listener = await listen(["tcp|127.0.0.1|0", `uds|${tempUdsPath()}`], { engine });
    const [tcp, uds] = listener.addresses;
    const peers = listener[Symbol.asyncIterator]();
    await using viaUds = await connect(uds!, { engine });
    assertEquals(((await peers.next()).value as Channel).address, uds);
    await using viaTcp = await connect(tcp!, { engine });
    assertEquals(((await peers.next()).value as Channel).address, tcp);
    assert(viaUds.isOpen && viaTcp.isOpen);
  }
  await probe.check("after the multi-address listener");
});

Deno.test("connect() aborted or timed out between re-dials keeps no process alive", async () => {
  // Re-dial pauses of 120 s: a pause left running after connect() gave up would keep
  // the child alive at least 60 s past its last line.
  const port = freeTcpPort();
  const code = `
    import { connect } from ${JSON.stringify(new URL("../mod.ts", import.meta.url).href)};
    const address = "tcp|127.0.0.1|${port}";
    const reconnect = { initialDelayMs: 120000, maxDelayMs: 120000 };
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    const a = await connect(address, { reconnect, signal: ac.signal }).catch((e) => e.message);
    const b = await connect(address, { reconnect, timeoutMs: 200 }).catch((e) => e.message);
    console.log(a);
    console.log(b);
  `;
  const started = Date.now();
  const out = await within(
    new Deno.Command("deno", {
      args: ["eval", "--no-prompt", "--allow-net=127.0.0.1", code],
      stdout: "piped",
      stderr: "piped",
    }).output(),
    120_000,
    "the child's exit",
  );
  assertEquals(new TextDecoder().decode(out.stderr), "");
  const [a, b] = new TextDecoder().decode(out.stdout).trim().split("\n");
  assertEquals(a, `Cannot connect to tcp|127.0.0.1|${port}: aborted`);
  // Out of time after a refused attempt, the error says why that attempt failed.
  assert(
    b?.startsWith(
      `Cannot connect to tcp|127.0.0.1|${port}: no answer within 200 ms; the last attempt: `,
    ),
    b,
  );
  assert(Date.now() - started < 50_000, `the child lived ${Date.now() - started} ms`);
});

for (const t of peerTransports) {
  Deno.test(`${t.name}: connect() with an already aborted signal dials nothing`, async () => {
    await using engine = engineWithProbe();
    const address = t.fixed();
    const silent = t.silent(address);
    const accepted: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const c of silent) accepted.push(c);
    })();
    await expectTofuError(
      connect(address, { engine, signal: AbortSignal.abort() }),
      Status.connectFailed,
      "aborted",
    );
    await delay(200);
    assertEquals(accepted.length, 0, "no connection reached the listener");
    assertEquals(engine.channelCount, 0);
    silent.close();
    await accepting.catch(() => {});
  });
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: a stream cut by a server restart does not swallow the new server's stream`, async () => {
    const address = t.fixed();
    const start = (mode: string) =>
      startServerChild(t, address, new URL("./_push_child.ts", import.meta.url), mode);
    await using engine = engineWithProbe();
    const probe = poolProbe(engine);
    let stop = await start("cut");
    try {
      const ch = await connect(address, { engine, reconnect: { initialDelayMs: 20 } });
      const incoming = ch[Symbol.asyncIterator]();
      const first = (await within(incoming.next(), 10_000, "the first stream")).value as Message;
      assertEquals([first.body.text(), first.hasMore()], ["a", true]);
      const firstId = first.bhdr.messageId;
      first[Symbol.dispose](); // its rest is never read
      await stop();
      stop = await start("full");
      const next = (await within(incoming.next(), 30_000, "the new server's stream"))
        .value as Message;
      assertEquals(next.bhdr.messageId, firstId, "the restarted server reuses the message id");
      const got: string[] = [];
      for await (using c of ch.chunks(next)) got.push(c.body.text());
      assertEquals(got, ["x", "y", "z"]);
      await ch.close();
    } finally {
      await stop();
    }
    await probe.check("after the restart");
  });
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: close() while reconnecting rejects the waiting requests at once`, async () => {
    await using engine = engineWithProbe();
    const probe = poolProbe(engine);
    const address = t.fixed();
    const server = await serve(address, () => "up", { engine });
    const ch = await connect(address, { engine, reconnect: { initialDelayMs: 10 } });
    await server.close();
    const waiting = [ch.request("a", { timeoutMs: 60_000 }), ch.send("b", { timeoutMs: 60_000 })];
    for (const w of waiting) w.catch(() => {});
    await delay(50);
    assert(!ch.isOpen);
    await within(Promise.all([ch.close(), ch.close()]), 5000, "close() while reconnecting");
    for (const w of waiting) {
      await within(expectTofuError(w, Status.channelClosed), 5000, "a waiting call");
    }
    assertEquals(statusName(await ch.closed), "channel_closed");
    await probe.check("after close() while reconnecting");
  });
}
