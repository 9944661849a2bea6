// Tests that kill mutants of the Peers layer (src/_peer_hub.ts, src/connect.ts,
// src/listener.ts, src/server.ts, src/channel.ts) that the other Peers tests let survive,
// over real sockets, TCP and Unix sockets alike.

import { assert, assertEquals, assertRejects, assertStrictEquals } from "@std/assert";
import {
  type Channel,
  connect,
  encodeFrame,
  Engine,
  listen,
  Message,
  OpCode,
  serve,
  Status,
  statusName,
  TofuError,
} from "../mod.ts";
import { Hub } from "../src/_peer_hub.ts";
import { tempUdsPath } from "../testing.ts";
import { expectTofuError, peerTransports, within } from "./_peer_fixtures.ts";
import { nextOf, pair } from "./_peer_pair.ts";
import { rawConnect, writeAll } from "./_fixtures.ts";

/** Whether `m` is in `engine`'s pool now (it was put back). */
function inPool(engine: Engine, m: Message): boolean {
  const out: Message[] = [];
  for (let p = engine.get("poolOnly"); p !== null; p = engine.get("poolOnly")) out.push(p);
  for (const p of out) engine.put(p);
  return out.includes(m);
}

/** Posts a WelcomeRequest for `address` on `hub`'s group; returns its channel number. */
function welcome(hub: Hub, address: string): number {
  const m = hub.engine.get("always")!;
  m.bhdr.opCode = OpCode.WelcomeRequest;
  m.headers.append("~listen_on", address);
  return hub.group.post(m).channelNumber;
}

/** A route that records what it gets. */
function recorder() {
  const got: Message[] = [];
  let gone = 0;
  let wake: (() => void) | null = null;
  return {
    got,
    get gone() {
      return gone;
    },
    route: {
      deliver(m: Message) {
        got.push(m);
        wake?.();
      },
      gone() {
        gone++;
      },
    },
    async next(): Promise<Message> {
      while (got.length === 0) await new Promise<void>((r) => wake = r);
      return got.shift()!;
    },
  };
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: Hub: a route that throws loses its message to the pool, the pump goes on`, async () => {
    await using engine = new Engine();
    const hub = new Hub(engine, () => {
      throw new Error("the fallback must not be called");
    });
    const thrown: Message[] = [];
    const a = welcome(hub, t.any());
    hub.route(a, {
      deliver(m) {
        thrown.push(m);
        throw new Error("route failure");
      },
      gone() {},
    });
    const b = welcome(hub, t.any());
    const rec = recorder();
    hub.route(b, rec.route);
    const m = await within(rec.next(), 20_000, "the second WelcomeResponse");
    assertEquals([m.bhdr.opCode, m.bhdr.status], [OpCode.WelcomeResponse, Status.success]);
    engine.put(m);
    assertEquals(thrown.length, 1, "the throwing route was called first");
    assert(inPool(engine, thrown[0]!), "the message the route failed on is back in the pool");
    assert(!hub.destroyed);
    await hub.destroy();
    assert(hub.destroyed);
    assertEquals(rec.gone, 1, "a route hears gone() once");
    await hub.destroy(); // again: nothing happens
    assertEquals(rec.gone, 1);
  });

  Deno.test(`${t.name}: Hub: unrouted messages go to the fallback, or back to the pool without one`, async () => {
    await using engine = new Engine();
    const fallen: Message[] = [];
    const withFallback = new Hub(engine, (m) => fallen.push(m));
    const n = welcome(withFallback, t.any());
    for (let i = 0; i < 2000 && fallen.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assertEquals(fallen.map((m) => [m.bhdr.opCode, m.bhdr.channelNumber]), [[
      OpCode.WelcomeResponse,
      n,
    ]]);
    engine.put(fallen.pop());
    await withFallback.destroy();

    // Without a fallback (a client's hub): an unrouted message is put back.
    const plain = new Hub(engine);
    const rec = recorder();
    // Route the first, let the second pass unrouted, then route a third to know it passed.
    const first = welcome(plain, t.any());
    plain.route(first, rec.route);
    engine.put(await within(rec.next(), 20_000, "the first WelcomeResponse"));
    const drop = engine.get("always")!;
    drop.bhdr.opCode = OpCode.WelcomeRequest;
    drop.headers.append("~listen_on", t.any());
    plain.group.post(drop);
    const third = welcome(plain, t.any());
    plain.route(third, rec.route);
    engine.put(await within(rec.next(), 20_000, "the third WelcomeResponse"));
    // Responses come in posting order: the unrouted one was handled before the third.
    assert(inPool(engine, drop), "the unrouted WelcomeResponse is back in the pool");
    await plain.destroy();
  });

  Deno.test(`${t.name}: Hub: unroute() removes only the route it is given; gone() reaches the rest`, async () => {
    await using engine = new Engine();
    const fallen: Message[] = [];
    const hub = new Hub(engine, (m) => fallen.push(m));
    const a = recorder();
    const b = recorder();
    const n = welcome(hub, t.any());
    hub.route(n, a.route);
    hub.unroute(n, b.route); // not its route: a stays
    engine.put(await within(a.next(), 20_000, "the WelcomeResponse"));
    hub.unroute(n, a.route);
    // The group's channels close with the engine: their reports reach nobody but the fallback.
    const other = recorder();
    const m = welcome(hub, t.any());
    hub.route(m, other.route);
    engine.put(await within(other.next(), 20_000, "the second WelcomeResponse"));
    await engine.close();
    await hub.destroy(); // the engine was closed first: quiet
    assert(hub.destroyed);
    assertEquals([a.gone, b.gone, other.gone], [0, 0, 1]);
    for (const f of fallen) engine.put(f);
  });
}

Deno.test("listen(): every accepted channel reports the address its peer dialled, of four", async () => {
  const udsA = `uds|${tempUdsPath()}`;
  const udsB = `uds|${tempUdsPath()}`;
  await using listener = await listen(["tcp|127.0.0.1|0", udsA, "tcp|127.0.0.1|0", udsB]);
  const bound = listener.addresses;
  assertEquals(bound.length, 4);
  assertEquals([bound[1], bound[3]], [udsA, udsB]);
  assert(bound[0] !== bound[2], "two TCP ports");
  assertEquals(listener.address, bound[0]);
  const peers = listener[Symbol.asyncIterator]();
  const clients: Channel[] = [];
  try {
    for (const a of [bound[2]!, bound[3]!, bound[0]!, bound[1]!]) {
      const c = await connect(a);
      clients.push(c);
      const accepted = (await peers.next()).value as Channel;
      assertEquals(accepted.address, a);
    }
    assertEquals(listener.peerCount, 4);
    // A peer that skips the handshake is taken for a peer of the first address.
    const raw = await rawConnect(bound[2]!);
    const signal = new Message();
    signal.bhdr.opCode = OpCode.Signal;
    signal.body.set("no hello");
    await writeAll(raw, encodeFrame(signal));
    const accepted = (await peers.next()).value as Channel;
    assertEquals(accepted.address, bound[0]);
    const first = await accepted[Symbol.asyncIterator]().next();
    assertEquals((first.value as Message).body.text(), "no hello");
    accepted.engine.put(first.value as Message);
    raw.close();
  } finally {
    for (const c of clients) await c.close();
  }
});

Deno.test("listen() checks its addresses, and reports a failure with its reason", async () => {
  // deno-lint-ignore no-explicit-any
  const err = await assertRejects(() => listen(["tcp|127.0.0.1|0", 42 as any]), TypeError);
  assertEquals(
    err.message,
    "Cannot listen: give one address string or a non-empty array of them",
  );
  await assertRejects(() => listen([]), TypeError);
  // A malformed address: refused by the post, with the engine's reason.
  const bad = await expectTofuError(listen("tcp|127.0.0.1|x"), Status.invalidAddress);
  assert(bad.message.startsWith("Cannot "), bad.message);
  // A line break: the parser's reason, escaped (before: the header's, with the raw break).
  const refused = await expectTofuError(listen("tcp|127.0.0.1|0\nx"), Status.invalidAddress);
  assertEquals(
    refused.message,
    'Cannot parse address "tcp|127.0.0.1|0\\nx": it contains a line break',
  );
  // An address in use: the engine's own error, with the system's reason.
  await using first = await listen("tcp|127.0.0.1|0");
  const inUse = await expectTofuError(listen(first.address), Status.listenFailed);
  assert(inUse.message.startsWith(`Cannot listen on ${first.address}: `), inUse.message);
  assert(/in use/i.test(inUse.message), inUse.message);
});

for (const t of peerTransports) {
  Deno.test(`${t.name}: listen() on an engine closed before the bind rejects with shutdown_started`, async () => {
    const engine = new Engine();
    const listening = listen(t.any(), { engine });
    await engine.close();
    const err = await expectTofuError(listening, Status.shutdownStarted);
    assertEquals(err.message, "Cannot listen: the engine is closed");
  });

  Deno.test(`${t.name}: a listener's close() ends its iterator, says bye to its peers and is idempotent`, async () => {
    await using engine = new Engine();
    const listener = await listen(t.any(), { engine });
    assertStrictEquals(listener.engine, engine);
    const client = await connect(listener.address, { engine });
    const peers = listener[Symbol.asyncIterator]();
    const peer = (await peers.next()).value as Channel;
    assertEquals(listener.peerCount, 1);
    const closing = listener.close();
    assertStrictEquals(listener.close(), closing, "close() twice gives the same promise");
    await within(closing, 20_000, "listener.close()");
    assertEquals((await peers.next()).done, true, "the iterator ends");
    assertEquals(statusName(await peer.closed), "success");
    assertEquals(statusName(await client.closed), "success");
    assertEquals(listener.peerCount, 0);
    // Nothing listens any more.
    await expectTofuError(connect(listener.address, { engine }), t.nobody()[1]);
    await client.close();
    assertEquals(engine.channelCount, 0);
  });
}

/** Resolves with what `it` has queued now, or "nothing" when it would have to wait. */
async function queuedNow<T>(it: AsyncIterator<T>): Promise<IteratorResult<T> | "nothing"> {
  return await Promise.race([
    it.next(),
    new Promise<"nothing">((r) => setTimeout(() => r("nothing"), 0)),
  ]);
}

Deno.test("serve() checks its handler and maxInFlight", async () => {
  // deno-lint-ignore no-explicit-any
  const err = await assertRejects(() => serve("tcp|127.0.0.1|0", "no" as any), TypeError);
  assertEquals(err.message, "Cannot serve: the handler is not a function");
  const range = await assertRejects(
    () => serve("tcp|127.0.0.1|0", () => "", { maxInFlight: 1.5 }),
    RangeError,
  );
  assertEquals(range.message, "Cannot serve: maxInFlight 1.5 is not a positive integer");
  await assertRejects(() => serve("tcp|127.0.0.1|0", () => "", { maxInFlight: -1 }), RangeError);
});

for (const t of peerTransports) {
  Deno.test(`${t.name}: serve(): Signals reach the handler and are never answered, not even when it throws`, async () => {
    await using engine = new Engine();
    const seen: string[] = [];
    await using server = await serve(t.any(), (req) => {
      const text = req.body.text();
      seen.push(`${req.bhdr.opCode}:${text}`);
      if (text.startsWith("throw")) throw new Error("handler failure");
      return `answer to ${text}`;
    }, { engine });
    assertStrictEquals(server.engine, engine);
    assertEquals(server.addresses, [server.address]);
    await using ch = await connect(server.address, { engine });
    await ch.send("signal");
    await ch.send("throw on a signal");
    using r = await ch.request("request", { timeoutMs: 20_000 });
    assertEquals(r.body.text(), "answer to request");
    assertEquals(server.peerCount, 1);
    assertEquals(seen, [
      `${OpCode.Signal}:signal`,
      `${OpCode.Signal}:throw on a signal`,
      `${OpCode.Request}:request`,
    ]);
    // Anything answered to the Signals would have arrived before the Request's answer.
    assertEquals(await queuedNow(ch[Symbol.asyncIterator]()), "nothing");
  });

  Deno.test(`${t.name}: serve(): a handler may answer with the request itself, another message or nothing`, async () => {
    await using engine = new Engine({ initialPoolMsgs: 32, maxPoolMsgs: 100_000 });
    await using server = await serve(t.any(), (req, ch) => {
      const text = req.body.text();
      if (text === "echo") {
        req.headers.append("seen", "yes");
        return req;
      }
      if (text === "other") {
        const m = ch.engine.get("always")!;
        m.body.set("a message of its own");
        return m;
      }
      if (text === "nothing") return undefined;
      if (text === "null") return null;
      return "text";
    }, { engine });
    await using ch = await connect(server.address, { engine });
    {
      using echo = await ch.request("echo", { timeoutMs: 20_000 });
      assertEquals([echo.body.text(), echo.headers.get("seen")], ["echo", "yes"]);
      using other = await ch.request("other", { timeoutMs: 20_000 });
      assertEquals(other.body.text(), "a message of its own");
      using nothing = await ch.request("nothing", { timeoutMs: 20_000 });
      assertEquals([nothing.body.text(), nothing.bhdr.opCode], ["", OpCode.Response]);
      using nul = await ch.request("null", { timeoutMs: 20_000 });
      assertEquals(nul.body.text(), "");
    }
    // Every request was put back once (or went out as its answer): the pool holds each
    // message once, none twice.
    const out: Message[] = [];
    for (let m = engine.get("poolOnly"); m !== null; m = engine.get("poolOnly")) out.push(m);
    assertEquals(new Set(out).size, out.length, "a message is in the pool twice");
    for (const m of out) engine.put(m);
  });

  Deno.test(`${t.name}: serve(): a handler that throws a TofuError or a non-Error is reported with its status`, async () => {
    await using server = await serve(t.any(), (req) => {
      const text = req.body.text();
      if (text === "tofu") throw new TofuError(Status.notAllowed, "Cannot print: no paper");
      if (text === "empty") throw new Error("");
      throw 42;
    });
    await using ch = await connect(server.address);
    const tofu = await expectTofuError(ch.request("tofu"), Status.notAllowed);
    assertEquals(tofu.message, "Cannot complete request: the peer failed: Cannot print: no paper");
    const empty = await expectTofuError(ch.request("empty"), Status.processingFailed);
    assertEquals(empty.message, "Cannot complete request: the peer failed: processing_failed");
    const num = await expectTofuError(ch.request("num"), Status.processingFailed);
    assertEquals(num.message, "Cannot complete request: the peer failed: 42");
    assert(ch.isOpen, "a failed handler does not close the channel");
  });
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: Channel: an error Response is read from its headers, whatever they hold`, async () => {
    await using p = await pair(t);
    const cases: [Record<string, string>, number, string][] = [
      [{ "tofu-status": "abc", "tofu-error": "odd status" }, Status.processingFailed, "odd status"],
      [{ "tofu-status": String(Status.notAllowed) }, Status.notAllowed, "not_allowed"],
      [{ "tofu-status": "0", "tofu-error": "zero" }, Status.processingFailed, "zero"],
    ];
    for (const [headers, status, text] of cases) {
      const asking = p.client.request("q", { timeoutMs: 20_000 });
      using req = await nextOf(p.peer);
      await p.peer.respond(req, "ignored body", { headers });
      const err = await expectTofuError(asking, status);
      assertEquals(err.message, `Cannot complete request: the peer failed: ${text}`);
    }
    // Without tofu-status, tofu-error alone is an ordinary header.
    const asking = p.client.request("q", { timeoutMs: 20_000 });
    using req = await nextOf(p.peer);
    await p.peer.respond(req.bhdr.messageId, "fine", { headers: { "tofu-error": "not an error" } });
    using ok = await asking;
    assertEquals([ok.body.text(), ok.headers.get("tofu-error")], ["fine", "not an error"]);
  });

  Deno.test(`${t.name}: Channel: respond(), send() and chunks() check their arguments`, async () => {
    await using p = await pair(t);
    // deno-lint-ignore no-explicit-any
    const typeErr = await assertRejects(() => p.peer.respond("x" as any), TypeError);
    assertEquals(typeErr.message, "Cannot respond: req is not a Message or a message id");
    const noId = await expectTofuError(p.peer.respond(0n, "x"), Status.invalidMessageId);
    assertEquals(noId.message, "Cannot respond: the request has no message id");
    const badOp = await assertRejects(
      // deno-lint-ignore no-explicit-any
      () => p.client.send("x", { op: OpCode.Response as any }),
      TypeError,
    );
    assertEquals(
      badOp.message,
      `Cannot send: op ${OpCode.Response} is not OpCode.Signal or OpCode.Request`,
    );
    for (const body of [42, null, { a: 1 }]) {
      // deno-lint-ignore no-explicit-any
      const e = await assertRejects(() => p.client.send(body as any), TypeError);
      assertEquals(
        e.message,
        "Cannot send: the body is not a string, Uint8Array, Message or iterable of chunks",
      );
    }
    // deno-lint-ignore no-explicit-any
    const badChunk = await assertRejects(() => p.client.send([42] as any), TypeError);
    assertEquals(badChunk.message, "Cannot send: a chunk is not a string or Uint8Array");
    // A message with `more` that this channel never received opens no stream here.
    const stranger = new Message();
    stranger.bhdr.more = 1;
    stranger.bhdr.messageId = 99n;
    const it = p.client.chunks(stranger);
    const noStream = await expectTofuError(it.next(), Status.invalidMoreUsage);
    assertEquals(
      noStream.message,
      "Cannot read stream: message 99 opens no stream on this channel",
    );
    // A message without `more` is a stream of one.
    const single = new Message();
    const got: Message[] = [];
    for await (const c of p.client.chunks(single)) got.push(c);
    assertEquals(got.length, 1);
    assertStrictEquals(got[0], single);
    // Nothing bad was sent: the channels still work both ways.
    await p.client.send("after", { op: OpCode.Request });
    using after = await nextOf(p.peer);
    assertEquals([after.bhdr.opCode, after.body.text()], [OpCode.Request, "after"]);
  });

  Deno.test(`${t.name}: Channel: a chunk source that fails partway ends the stream with its error`, async () => {
    await using p = await pair(t);
    function* failing(): Generator<string> {
      yield "one";
      yield "two";
      throw new TofuError(Status.notAllowed, "Cannot go on: source failed");
    }
    const sending = p.client.send(failing());
    await assertRejects(() => sending, TofuError, "source failed");
    const first = await nextOf(p.peer);
    const got: string[] = [];
    const err = await expectTofuError(
      (async () => {
        for await (using c of p.peer.chunks(first)) got.push(c.body.text());
      })(),
      Status.notAllowed,
    );
    // The sender looks one chunk ahead: "two" was held back when the source failed.
    assertEquals(got, ["one"]);
    assertEquals(err.message, "Cannot read stream: the peer failed: Cannot go on: source failed");
    // A source that fails before its first chunk sends nothing at all.
    const failsAtOnce = (): Iterable<string> => ({
      [Symbol.iterator]: () => ({
        next: () => {
          throw new Error("nothing to send");
        },
      }),
    });
    await assertRejects(() => p.client.send(failsAtOnce()), Error, "nothing to send");
    await p.client.send("next");
    using next = await nextOf(p.peer);
    assertEquals([next.body.text(), next.hasMore()], ["next", false]);
  });

  Deno.test(`${t.name}: Channel: address and channel number, while open and once closed`, async () => {
    await using p = await pair(t);
    assertEquals(p.client.address, p.listener.address);
    assertEquals(p.peer.address, p.listener.address);
    assert(p.client.channelNumber > 0 && p.peer.channelNumber > 0);
    assert(p.client.isOpen && p.peer.isOpen);
    await p.client.close();
    assertEquals([p.client.channelNumber, p.client.isOpen], [0, false]);
    assertEquals(statusName(await p.peer.closed), "success");
    assertEquals([p.peer.channelNumber, p.peer.isOpen], [0, false]);
    const late = await expectTofuError(p.peer.respond(5n, "x"), Status.channelClosed);
    assertEquals(late.message, "Cannot respond: the channel is closed");
    const send = await expectTofuError(p.client.send("x"), Status.channelClosed);
    assertEquals(send.message, "Cannot send: the channel is closed");
  });
}

Deno.test("connect() checks the address type, the timeout and each reconnect option", async () => {
  // deno-lint-ignore no-explicit-any
  const typeErr = await assertRejects(() => connect(42 as any), TypeError);
  assertEquals(typeErr.message, "Cannot connect: the address must be a string, got number");
  const timeout = await assertRejects(
    () => connect("tcp|127.0.0.1|1", { timeoutMs: -5 }),
    RangeError,
  );
  assertEquals(timeout.message, "Cannot connect: timeoutMs -5 is not a number >= 0");
  for (const name of ["initialDelayMs", "maxDelayMs", "maxAttempts"]) {
    for (const v of [-1, NaN, "5"]) {
      const err = await assertRejects(
        () => connect("tcp|127.0.0.1|1", { timeoutMs: 200, reconnect: { [name]: v } }),
        RangeError,
      );
      assertEquals(err.message, `Cannot connect: reconnect.${name} ${v} is not a number >= 0`);
    }
  }
});

for (const t of peerTransports) {
  Deno.test(`${t.name}: connect(): reconnect options of 0 are valid; maxAttempts 0 gives up after one dial`, async () => {
    const [nobody, status] = t.nobody();
    await expectTofuError(
      connect(nobody, {
        timeoutMs: 20_000,
        reconnect: { initialDelayMs: 0, maxDelayMs: 0, maxAttempts: 0 },
      }),
      status,
    );
  });
}

/** A TCP listener that accepts and closes every connection at once, counting them. */
function slammer(): { address: string; count(): number; close(): Promise<void> } {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let n = 0;
  const loop = (async () => {
    for await (const c of l) {
      n++;
      c.close();
    }
  })();
  return {
    address: `tcp|127.0.0.1|${(l.addr as Deno.NetAddr).port}`,
    count: () => n,
    close: async () => {
      l.close();
      await loop;
    },
  };
}

Deno.test("connect(): re-dials wait initialDelayMs first, then back off up to maxDelayMs", async () => {
  const s = slammer();
  try {
    // The first pause is at least 30 s (half of 60 s): within 500 ms only one dial happens.
    await expectTofuError(
      connect(s.address, { timeoutMs: 500, reconnect: { initialDelayMs: 60_000 } }),
      Status.connectFailed,
      "the last attempt",
    );
    assertEquals(s.count(), 1, "one dial before the first pause");
    // Pauses from 1 ms doubling (at least half of 1, 2, 4, ... ms): within 500 ms the
    // dials cannot be more than 11 (the first 11 pauses already take 1,023 ms at least).
    const before = s.count();
    await expectTofuError(
      connect(s.address, { timeoutMs: 500, reconnect: { initialDelayMs: 1, maxDelayMs: 60_000 } }),
      Status.connectFailed,
    );
    const dials = s.count() - before;
    assert(dials >= 1 && dials <= 11, `${dials} dials`);
  } finally {
    await s.close();
  }
});

for (const t of peerTransports) {
  Deno.test(`${t.name}: Channel: Message and Uint8Array bodies go out as they are, with the call's opcode`, async () => {
    await using p = await pair(t);
    const m = p.client.engine.get("always")!;
    m.body.set("as a message");
    m.bhdr.opCode = OpCode.Response; // replaced by the call's opcode
    // With more set it is refused (sent whole, it ended a stream at its first chunk), and
    // stays the caller's.
    m.bhdr.more = 1;
    await expectTofuError(p.client.request(m, { timeoutMs: 20_000 }), Status.invalidMoreUsage);
    m.bhdr.more = 0;
    const asking = p.client.request(m, { headers: { h: "1" }, timeoutMs: 20_000 });
    using req = await nextOf(p.peer);
    assertEquals([req.bhdr.opCode, req.hasMore(), req.body.text(), req.headers.get("h")], [
      OpCode.Request,
      false,
      "as a message",
      "1",
    ]);
    // Answer with the request message itself, turned into the response.
    await p.peer.respond(req, req, { headers: { r: "2" } });
    using answer = await asking;
    assertEquals([answer.body.text(), answer.headers.get("r")], ["as a message", "2"]);
    await p.client.send(new Uint8Array([1, 2, 3]));
    using bytes = await nextOf(p.peer);
    assertEquals([bytes.bhdr.opCode, [...bytes.body.bytes()]], [OpCode.Signal, [1, 2, 3]]);
  });

  Deno.test(`${t.name}: Channel.abort() while re-dialing ends it at once with channel_closed`, async () => {
    const address = t.fixed();
    const server = await serve(address, () => "up");
    const ch = await connect(address, { reconnect: { initialDelayMs: 60_000 } });
    await server.close();
    // The server said bye: the channel waits (30 s or more) before it re-dials.
    for (let i = 0; i < 2000 && ch.isOpen; i++) await new Promise((r) => setTimeout(r, 10));
    assert(!ch.isOpen, "reconnecting");
    ch.abort();
    assertEquals(
      statusName(await within(ch.closed, 20_000, "closed after abort()")),
      "channel_closed",
    );
    await expectTofuError(ch.request("x"), Status.channelClosed);
  });
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: a connection that closes before its first frame is no peer`, async () => {
    await using engine = new Engine();
    await using listener = await listen(t.any(), { engine });
    const raw = await rawConnect(listener.address);
    for (let i = 0; i < 2000 && engine.channelCount < 2; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    raw.close();
    // Its channel goes (the engine reports it closed to the listener's group).
    for (let i = 0; i < 2000 && engine.channelCount > 1; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assertEquals(engine.channelCount, 1, "only the listening channel is left");
    await using client = await connect(listener.address, { engine });
    const peer = (await listener[Symbol.asyncIterator]().next()).value as Channel;
    assert(peer.isOpen, "the first peer yielded is the real client");
    assertEquals(listener.peerCount, 1);
    await client.send("hi");
    using hi = await nextOf(peer);
    assertEquals(hi.body.text(), "hi");
  });
}

Deno.test("listen() on several addresses accepts a HelloRequest without ~connect_to", async () => {
  await using listener = await listen(["tcp|127.0.0.1|0", `uds|${tempUdsPath()}`]);
  const raw = await rawConnect(listener.addresses[1]!);
  const hello = new Message();
  hello.bhdr.opCode = OpCode.HelloRequest;
  hello.bhdr.messageId = 1n;
  await writeAll(raw, encodeFrame(hello));
  const peer = (await within(listener[Symbol.asyncIterator]().next(), 20_000, "the peer"))
    .value as Channel;
  // Nothing tells which socket it came in on: it gets the first address.
  assertEquals(peer.address, listener.address);
  assert(peer.isOpen);
  raw.close();
  await within(peer.closed, 20_000, "the peer's channel closes");
});

for (const t of peerTransports) {
  Deno.test(`${t.name}: serve(): maxInFlight 1 is valid, and handler slots are given back as handlers settle`, async () => {
    await (await serve(t.any(), () => "", { maxInFlight: 1 })).close();
    let running = 0;
    let gate: { wait: Promise<void>; open(): void } | null = null;
    const gated = () => {
      let open!: () => void;
      const wait = new Promise<void>((r) => open = r);
      return { wait, open };
    };
    await using server = await serve(t.any(), async (req) => {
      running++;
      // Hold each handler until two run at once.
      if (running === 2) gate?.open();
      await gate?.wait;
      running--;
      return req.body.text();
    }, { maxInFlight: 2 });
    await using ch = await connect(server.address);
    for (let round = 0; round < 3; round++) {
      gate = gated();
      const replies = await within(
        Promise.all([ch.request(`a${round}`), ch.request(`b${round}`)]),
        20_000,
        `round ${round}: two handlers run at once`,
      );
      assertEquals(replies.map((m) => m.body.text()), [`a${round}`, `b${round}`]);
      for (const m of replies) m[Symbol.dispose]();
    }
  });

  Deno.test(`${t.name}: serve(): an error Response has an empty body; a stream that failed partway gets none`, async () => {
    await using server = await serve(t.any(), (req) => {
      if (req.body.text() === "fail") throw new Error("no");
      return (function* () {
        yield "part 1"; // sent once the next one comes (look-ahead)
        yield "part 2";
        throw new Error("broken stream");
      })();
    });
    await using ch = await connect(server.address);
    await ch.send("fail", { op: OpCode.Request });
    using failed = await nextOf(ch);
    assertEquals([failed.bhdr.opCode, failed.body.text()], [OpCode.Response, ""]);
    assertEquals(failed.headers.get("tofu-error"), "no");
    // A stream that fails after its first chunk ends with an error chunk, and nothing more.
    const first = await ch.request("stream", { timeoutMs: 20_000 });
    const err = await expectTofuError(
      (async () => {
        for await (using _ of ch.chunks(first)) { /* read */ }
      })(),
      Status.processingFailed,
    );
    assertEquals(err.message, "Cannot read stream: the peer failed: broken stream");
    await expectTofuError(ch.request("fail"), Status.processingFailed);
    // Anything more for the stream's id would have arrived before this answer.
    assertEquals(await queuedNow(ch[Symbol.asyncIterator]()), "nothing");
  });

  Deno.test(`${t.name}: serve(): a reply that cannot be sent, and a request the handler put back, end in the pool once`, async () => {
    await using engine = new Engine({ initialPoolMsgs: 16, maxPoolMsgs: 100_000 });
    const replies: Message[] = [];
    const held: Message[] = [];
    let handled!: () => void;
    const done = new Promise<void>((r) => handled = r);
    await using server = await serve(t.any(), async (req, ch) => {
      if (req.body.text() === "late") {
        const m = engine.get("always")!;
        m.body.set("too late");
        replies.push(m);
        await ch.closed; // the peer is gone: the reply cannot be sent
        setTimeout(handled, 0);
        return m;
      }
      // Gives the request back at once, then takes a message (likely the same one) and keeps it.
      engine.put(req);
      held.push(engine.get("always")!);
      return "ok";
    }, { engine });
    const ch = await connect(server.address, { engine });
    using ok = await ch.request("put back", { timeoutMs: 20_000 });
    assertEquals(ok.body.text(), "ok");
    assert(!inPool(engine, held[0]!), "a message the handler holds is not in the pool");
    ch.request("late").catch(() => {});
    for (let i = 0; i < 2000 && replies.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    ch.abort();
    await within(done, 20_000, "the late handler settles");
    await new Promise((r) => setTimeout(r, 0));
    assert(inPool(engine, replies[0]!), "the reply that could not be sent is back in the pool");
    engine.put(held.pop());
  });
}
