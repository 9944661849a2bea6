// Tests that kill mutants of src/channel.ts lines 1-700 (the Channel's fields, request, send,
// respond, chunks, close, abort and the posting helpers) that the other Peers tests let
// survive, over real sockets, TCP and Unix sockets alike. Each names the mutants it kills in
// docs/testing.md ("mut-ch-a").

import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { delay } from "@std/async/delay";
import {
  type Channel,
  connect,
  Engine,
  listen,
  type Message,
  OpCode,
  serve,
  Status,
  statusName,
} from "../mod.ts";
import {
  expectTofuError,
  type PeerTransport,
  peerTransports,
  poolProbe,
  within,
} from "./_peer_fixtures.ts";
import { nextOf, pair } from "./_peer_pair.ts";
import { listen as rawListen, make, recv, transports } from "./_fixtures.ts";

/** An engine whose pool starts with 64 messages and keeps every message put back. */
function probedEngine(options: { maxChannelHeldMsgs?: number } = {}): Engine {
  return new Engine({ initialPoolMsgs: 64, maxPoolMsgs: 100_000, ...options });
}

/** Whether `m` is in `engine`'s pool now (it was put back). */
function inPool(engine: Engine, m: Message): boolean {
  const out: Message[] = [];
  for (let p = engine.get("poolOnly"); p !== null; p = engine.get("poolOnly")) out.push(p);
  for (const p of out) engine.put(p);
  return out.includes(m);
}

function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => open = r);
  return { wait, open };
}

/** The next value of `it`, or null if none comes within `ms` (the read stays pending). */
async function nextWithin<T>(
  pending: { p: Promise<IteratorResult<T>> | null },
  it: AsyncIterator<T>,
  ms: number,
): Promise<T | null> {
  pending.p ??= it.next();
  const r = await Promise.race([pending.p, delay(ms).then(() => null)]);
  if (r === null) return null;
  pending.p = null;
  assert(!r.done, "the stream ended early");
  return r.value;
}

/** The fixtures transport (engine level) of the same kind as `t`. */
function engineTransport(t: PeerTransport) {
  return transports.find((x) => x.name === t.name)!;
}

/** An engine-level client of `address` (a Peers listener): its group and channel number. */
async function rawClient(engine: Engine, address: string) {
  const group = engine.create();
  const hello = engine.get("always");
  hello.bhdr.opCode = OpCode.HelloRequest;
  hello.headers.append("~connect_to", address);
  const channel = group.post(hello).channelNumber;
  const answer = await recv(group, 20_000);
  assertEquals(answer.bhdr.opCode, OpCode.HelloResponse);
  engine.put(answer);
  return { group, channel };
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: Channel: chunks() of an answer leave the read share once read; other streams' chunks stay in it`, async () => {
    // Three messages of the channel may be out at once (held or queued for the application).
    await using engine = new Engine({ maxChannelHeldMsgs: 3 });
    await using server = await serve(t.any(), (req) => {
      if (req.body.text() === "list") return Array.from({ length: 10 }, (_, i) => `a${i}`);
      return "?";
    });
    await using ch = await connect(server.address, { engine, timeoutMs: 20_000 });
    // An answer's chunks: every one is held by the reader, and yet all of them come.
    const first = await ch.request("list", { timeoutMs: 20_000 });
    const held: Message[] = [];
    await within(
      (async () => {
        for await (const c of ch.chunks(first)) held.push(c);
      })(),
      20_000,
      "reading an answer of 10 chunks while holding them",
    );
    assertEquals(held.map((c) => c.body.text()), Array.from({ length: 10 }, (_, i) => `a${i}`));
    for (const c of held.splice(0)) engine.put(c);

    // A stream the peer sends on its own: chunks read and held still count, so the channel
    // stops reading at three of them until one comes back.
    const peerEngine = new Engine();
    await using listener = await listen(t.any(), { engine: peerEngine });
    await using client = await connect(listener.address, { engine, timeoutMs: 20_000 });
    const peer = (await listener[Symbol.asyncIterator]().next()).value as Channel;
    await peer.send(Array.from({ length: 10 }, (_, i) => `s${i}`));
    const opener = await nextOf(client);
    const it = client.chunks(opener)[Symbol.asyncIterator]();
    const pending = { p: null as Promise<IteratorResult<Message>> | null };
    for (;;) {
      const c = await nextWithin(pending, it, held.length < 3 ? 20_000 : 500);
      if (c === null) break;
      held.push(c);
    }
    assertEquals(held.map((c) => c.body.text()), ["s0", "s1", "s2"], "held back at three");
    for (const c of held.splice(0)) engine.put(c);
    for (let i = 3; i < 10; i++) {
      const c = await nextWithin(pending, it, 20_000);
      assertEquals(c?.body.text(), `s${i}`);
      engine.put(c!);
    }
    assertEquals((await it.next()).done, true);
  });

  Deno.test(`${t.name}: Channel: leaving chunks() early discards the rest, so the peer is not held back`, async () => {
    await using engine = new Engine({ maxChannelHeldMsgs: 3 });
    await using p = await pair(t, engine, { timeoutMs: 20_000 });
    await p.peer.send(Array.from({ length: 10 }, (_, i) => `s${i}`));
    await p.peer.send("after");
    const opener = await nextOf(p.client);
    for await (using c of p.client.chunks(opener)) {
      assertEquals(c.body.text(), "s0");
      break;
    }
    using after = await nextOf(p.client);
    assertEquals(after.body.text(), "after");
  });

  Deno.test(`${t.name}: serve(): a one-message request's end leaves another stream with the same id alone`, async () => {
    // A hand-driven peer that reuses a message id: a one-message Request 7 still being
    // handled, then a streamed Request 7. Finishing the first must not discard the second.
    await using engine = new Engine();
    const slow = gate();
    const streaming = gate();
    await using server = await serve(t.any(), async (req, ch) => {
      if (req.body.text() === "slow") {
        await slow.wait;
        return "slow done";
      }
      streaming.open();
      const parts: string[] = [];
      for await (using c of ch.chunks(req)) parts.push(c.body.text());
      return parts.join(" ");
    }, { engine });
    await using clientEngine = new Engine();
    const { group, channel } = await rawClient(clientEngine, server.address);
    const post = (body: string, more: 0 | 1) => {
      const m = make(clientEngine, channel, OpCode.Request, body, 7n);
      m.bhdr.more = more;
      group.post(m);
    };
    post("slow", 0);
    post("a", 1);
    await within(streaming.wait, 20_000, "the stream's handler starts");
    slow.open();
    const done = await recv(group, 20_000);
    assertEquals([done.bhdr.opCode, done.bhdr.messageId, done.body.text()], [
      OpCode.Response,
      7n,
      "slow done",
    ]);
    clientEngine.put(done);
    post("b", 1);
    post("c", 0);
    const joined = await recv(group, 20_000);
    assertEquals([joined.bhdr.opCode, joined.bhdr.messageId, joined.body.text()], [
      OpCode.Response,
      7n,
      "a b c",
    ]);
    clientEngine.put(joined);
    await clientEngine.destroy(group);
  });

  Deno.test(`${t.name}: Channel: chunks() of a one-message request leaves a stream with the same id alone`, async () => {
    // A hand-driven peer reuses message id 7: a one-message Request, then a streamed one.
    await using listener = await listen(t.any());
    await using clientEngine = new Engine();
    const accepting = listener[Symbol.asyncIterator]().next();
    const { group, channel } = await rawClient(clientEngine, listener.address);
    const peer = (await within(accepting, 20_000, "the peer")).value as Channel;
    const post = (body: string, more: 0 | 1) => {
      const m = make(clientEngine, channel, OpCode.Request, body, 7n);
      m.bhdr.more = more;
      group.post(m);
    };
    post("single", 0);
    post("a", 1);
    const single = await nextOf(peer);
    const opener = await nextOf(peer);
    assertEquals([single.body.text(), opener.body.text()], ["single", "a"]);
    for await (using c of peer.chunks(single)) assertEquals(c.body.text(), "single");
    post("b", 0);
    const got: string[] = [];
    await within(
      (async () => {
        for await (using c of peer.chunks(opener)) got.push(c.body.text());
      })(),
      20_000,
      "the stream with the same id",
    );
    assertEquals(got, ["a", "b"]);
    await clientEngine.destroy(group);
  });

  Deno.test(`${t.name}: Channel: an answer that came before a streamed request's source failed goes back to the pool`, async () => {
    await using engine = probedEngine();
    const probe = poolProbe(engine, null);
    {
      await using p = await pair(t, engine, { timeoutMs: 20_000 });
      const failLate = gate();
      const source = async function* (): AsyncGenerator<string> {
        yield "a";
        yield "b"; // "a" goes out now, as the first chunk: the request is in flight
        await failLate.wait;
        throw new Error("the source failed late");
      };
      const asking = p.client.request(source(), { timeoutMs: 20_000 });
      asking.catch(() => {});
      const first = await nextOf(p.peer);
      assertEquals([first.body.text(), first.hasMore()], ["a", true]);
      await p.peer.respond(first.bhdr.messageId, "an early answer");
      await p.peer.send("marker"); // arrives after the answer
      using marker = await nextOf(p.client);
      assertEquals(marker.body.text(), "marker");
      failLate.open();
      await assertRejects(() => asking, Error, "the source failed late");
      // The peer reads its request stream to the error chunk that ended it.
      await assertRejects(
        async () => {
          for await (using _c of p.peer.chunks(first)) { /* read */ }
        },
        Error,
        "the source failed late",
      );
    }
    await probe.check("after the early answer");
  });

  Deno.test(`${t.name}: Channel: a second answer to a streamed request that was answered early reaches the iterator`, async () => {
    await using p = await pair(t, undefined, { timeoutMs: 20_000 });
    const more = gate();
    async function* source(): AsyncGenerator<string> {
      yield "a";
      yield "b"; // "a" goes out now: the request is in flight
      await more.wait;
      yield "c";
    }
    const asking = p.client.request(source(), { timeoutMs: 20_000 });
    const first = await nextOf(p.peer); // read to its end below
    const id = first.bhdr.messageId;
    await p.peer.respond(id, "answer");
    await p.peer.send("answered"); // arrives after the answer
    using answered = await nextOf(p.client);
    assertEquals(answered.body.text(), "answered");
    more.open(); // the rest of the request goes out after its answer came
    using answer = await asking;
    assertEquals(answer.body.text(), "answer");
    // The request is settled: a second Response with its id is the peer's own message.
    await p.peer.respond(id, "again");
    using again = await nextOf(p.client);
    assertEquals([again.bhdr.opCode, again.bhdr.messageId, again.body.text()], [
      OpCode.Response,
      id,
      "again",
    ]);
    const rest: string[] = [];
    for await (using c of p.peer.chunks(first)) rest.push(c.body.text());
    assertEquals(rest, ["a", "b", "c"]);
  });

  Deno.test(`${t.name}: Channel: close() and abort() of a reconnecting client end it for good`, async () => {
    await using listener = await listen(t.any());
    const accepted = listener[Symbol.asyncIterator]();
    const reconnect = { initialDelayMs: 10, maxDelayMs: 20 };
    const a = await connect(listener.address, { reconnect, timeoutMs: 20_000 });
    await accepted.next();
    await within(a.close(), 20_000, "close()");
    assertEquals(statusName(await a.closed), "success");
    assertEquals(a.isOpen, false);

    const b = await connect(listener.address, { reconnect, timeoutMs: 20_000 });
    await accepted.next();
    b.abort();
    assertEquals(
      statusName(await within(b.closed, 20_000, "closed after abort()")),
      "channel_closed",
    );
    assertEquals(b.isOpen, false);
    await delay(100); // a re-dial would be under way by now
    assertEquals(listener.peerCount, 0, "no client dialled again");
  });

  Deno.test(`${t.name}: Channel: closing an accepted channel leaves its listener accepting`, async () => {
    await using listener = await listen(t.any());
    const accepted = listener[Symbol.asyncIterator]();
    await using a = await connect(listener.address, { timeoutMs: 20_000 });
    const peerA = (await accepted.next()).value as Channel;
    await within(peerA.close(), 20_000, "the accepted channel's close()");
    assertEquals(statusName(await a.closed), "success");
    await using b = await connect(listener.address, { timeoutMs: 20_000 });
    const peerB = (await within(accepted.next(), 20_000, "the next peer")).value as Channel;
    await b.send("still listening");
    using m = await nextOf(peerB);
    assertEquals(m.body.text(), "still listening");
  });

  Deno.test(`${t.name}: Channel: a second close() waits for the same graceful close`, async () => {
    await using p = await pair(t, undefined, { timeoutMs: 20_000 });
    const first = p.client.close();
    const second = p.client.close();
    await within(Promise.all([first, second]), 20_000, "both close() calls");
    assertEquals(statusName(await p.client.closed), "success");
    assertEquals(statusName(await p.peer.closed), "success");
  });

  Deno.test(`${t.name}: Channel: right after abort(), send() and request() say the channel is closing`, async () => {
    await using p = await pair(t, undefined, { timeoutMs: 20_000 });
    p.client.abort();
    // Both made before the abort's close is through (refused after a turn).
    const sending = expectTofuError(p.client.send("x"), Status.channelClosed);
    const asking = expectTofuError(p.client.request("x"), Status.channelClosed);
    assertEquals((await sending).message, "Cannot send: the channel is closing");
    assertEquals((await asking).message, "Cannot complete request: the channel is closing");
    assertEquals(statusName(await p.client.closed), "channel_closed");
  });

  Deno.test(`${t.name}: Channel: while close() is under way, send() and respond() are refused`, async () => {
    await using p = await pair(t, undefined, { timeoutMs: 20_000 });
    const asking = p.client.request("q", { timeoutMs: 20_000 });
    asking.catch(() => {});
    using req = await nextOf(p.peer);
    const n = p.peer.channelNumber;
    const closing = p.peer.close();
    // Both made while close() is under way (a refused send comes after a turn).
    const sending = expectTofuError(p.peer.send("x"), Status.channelClosed);
    // A Response passes the channel's own check while it closes; the engine refuses it, as
    // the ByeRequest is already posted.
    const responding = expectTofuError(p.peer.respond(req, "too late"), Status.channelClosed);
    assertEquals((await sending).message, "Cannot send: the channel is closing");
    const respond = await responding;
    assertEquals(
      respond.message,
      `Cannot post Response on channel ${n}: the channel is closing (ByeRequest already posted)`,
    );
    await within(closing, 20_000, "close()");
    assertEquals(statusName(await p.peer.closed), "success");
  });

  Deno.test(`${t.name}: Channel: abort() twice gives its second bye back to the pool`, async () => {
    await using engine = probedEngine();
    const probe = poolProbe(engine, null);
    {
      await using p = await pair(t, engine, { timeoutMs: 20_000 });
      p.client.abort();
      p.client.abort();
      assertEquals(statusName(await p.client.closed), "channel_closed");
      await p.peer.closed;
    }
    await probe.check("after two aborts");
  });

  Deno.test(`${t.name}: Channel: abort() gives back the messages nobody read once it is closed`, async () => {
    await using engine = probedEngine();
    const probe = poolProbe(engine, null);
    await using p = await pair(t, engine, { timeoutMs: 20_000 });
    await p.peer.send("never read");
    await p.peer.send(["a stream", "never read"]);
    await p.peer.send("never read either");
    // The client reads none of them; the answer to a request, sent after them, tells that
    // they all arrived.
    const asking = p.client.request("sync", { timeoutMs: 20_000 });
    const sync = await nextOf(p.peer);
    await p.peer.respond(sync, "synced");
    engine.put(sync);
    const synced = await asking;
    assertEquals(synced.body.text(), "synced");
    engine.put(synced);
    p.client.abort();
    assertEquals(statusName(await p.client.closed), "channel_closed");
    await p.peer.closed;
    await probe.check("after abort(), before any close()");
  });

  Deno.test(`${t.name}: Channel: a stream cut by a reconnect sends no error chunk to the new connection`, async () => {
    await using listener = await listen(t.any());
    const accepted = listener[Symbol.asyncIterator]();
    await using ch = await connect(listener.address, {
      reconnect: { initialDelayMs: 10, maxDelayMs: 20 },
      timeoutMs: 20_000,
    });
    const first = (await accepted.next()).value as Channel;
    const resume = gate();
    async function* cut(): AsyncGenerator<string> {
      yield "one";
      yield "two"; // "one" goes out on the first connection
      await resume.wait;
      yield "three";
    }
    const sending = ch.send(cut());
    sending.catch(() => {});
    using one = await nextOf(first);
    assertEquals([one.body.text(), one.hasMore()], ["one", true]);
    first.abort();
    const second = (await within(accepted.next(), 20_000, "the re-dial")).value as Channel;
    for (let i = 0; i < 2000 && !ch.isOpen; i++) await delay(5);
    assert(ch.isOpen, "reconnected");
    resume.open();
    await expectTofuError(sending, Status.channelClosed, "in the middle of it");
    await ch.send("fresh");
    using fresh = await nextOf(second);
    assertEquals([fresh.body.text(), fresh.headers.get("tofu-status")], ["fresh", undefined]);
  });

  Deno.test(`${t.name}: Channel: a Message sent keeps its id and gets the call's headers`, async () => {
    await using p = await pair(t, undefined, { timeoutMs: 20_000 });
    const m = p.client.engine.get("always");
    m.bhdr.messageId = 777_001n;
    m.headers.append("own", "1");
    m.body.set("as is");
    assertEquals(await p.client.send(m, { headers: { extra: "2" } }), 777_001n);
    using got = await nextOf(p.peer);
    assertEquals(
      [got.bhdr.messageId, got.headers.get("own"), got.headers.get("extra"), got.body.text()],
      [777_001n, "1", "2", "as is"],
    );
  });

  Deno.test(`${t.name}: Channel: a stream's headers go on its first chunk only`, async () => {
    await using p = await pair(t, undefined, { timeoutMs: 20_000 });
    await p.client.send(["a", "b", "c"], { headers: { kind: "list" } });
    const first = await nextOf(p.peer);
    const got: [string, string | undefined][] = [];
    for await (using c of p.peer.chunks(first)) got.push([c.body.text(), c.headers.get("kind")]);
    assertEquals(got, [["a", "list"], ["b", undefined], ["c", undefined]]);
  });

  Deno.test(`${t.name}: Channel: a request of a one-chunk source is answered`, async () => {
    await using server = await serve(t.any(), (req) => `re ${req.body.text()}`);
    await using ch = await connect(server.address, { timeoutMs: 20_000 });
    using one = await ch.request(["only"], { timeoutMs: 20_000 });
    assertEquals(one.body.text(), "re only");
    using none = await ch.request([], { timeoutMs: 20_000 });
    assertEquals(none.body.text(), "re ");
  });

  Deno.test(`${t.name}: Channel: a failed stream ends with an empty error chunk that carries no request headers`, async () => {
    await using peerEngine = new Engine();
    const peer = await rawListen(peerEngine, engineTransport(t));
    await using engine = new Engine();
    const connecting = connect(peer.bound, { engine, timeoutMs: 20_000 });
    const hello = await recv(peer.group, 20_000);
    hello.bhdr.opCode = OpCode.HelloResponse;
    peer.group.post(hello);
    await using ch = await connecting;
    function* failing(): Generator<string> {
      yield "one";
      yield "two";
      throw new Error("out of paper");
    }
    await assertRejects(() => ch.send(failing(), { headers: { job: "7" } }), Error, "out of paper");
    const one = await recv(peer.group, 20_000);
    assertEquals([one.body.text(), one.hasMore(), one.headers.get("job")], ["one", true, "7"]);
    const end = await recv(peer.group, 20_000);
    assertEquals(
      [end.bhdr.messageId, end.hasMore(), end.body.byteLength, end.headers.get("job")],
      [one.bhdr.messageId, false, 0, undefined],
    );
    assertEquals(
      [end.headers.get("tofu-status"), end.headers.get("tofu-error")],
      [String(Status.processingFailed), "out of paper"],
    );
    peerEngine.put(one);
    peerEngine.put(end);
    ch.abort(); // the hand-driven peer would not answer a bye
    await ch.closed;
    await peerEngine.destroy(peer.group);
  });

  Deno.test(`${t.name}: Channel: refused posts give back the library's messages and leave the caller's alone`, async () => {
    // At most 70,000 bytes may wait unsent on a connection: the second and third of three
    // 40 kB answers posted at once are refused for room, wait until it drains and go out
    // (they were refused with allocation_failed before answers waited for room).
    await using engine = new Engine({
      initialPoolMsgs: 64,
      maxPoolMsgs: 100_000,
      maxQueuedBytes: 70_000,
    });
    const probe = poolProbe(engine, null);
    {
      await using p = await pair(t, engine, { timeoutMs: 20_000 });
      const first = p.client.respond(1n, "a".repeat(40_000));
      const second = p.client.respond(2n, "b".repeat(40_000));
      const mine = engine.get("always");
      mine.body.set("c".repeat(40_000));
      const third = p.client.respond(3n, mine);
      await Promise.all([first, second, third]);
      for (const id of [1n, 2n, 3n]) {
        using got = await nextOf(p.peer);
        assertEquals([got.bhdr.messageId, got.body.byteLength], [id, 40_000]);
      }
      // A post refused as the channel closes: the caller's message stays the caller's.
      const closing = p.peer.close();
      const late = engine.get("always");
      late.body.set("late");
      const refused = await expectTofuError(p.peer.respond(4n, late), Status.channelClosed);
      // Refused by the engine: the ByeRequest is posted already.
      assertMatch(
        refused.message,
        /^Cannot post Response on channel \d+: the channel is closing \(ByeRequest already posted\)$/,
      );
      assert(!inPool(engine, late), "the caller's message is not put back for it");
      assertEquals(late.body.text(), "late");
      engine.put(late);
      await closing;
      await p.client.closed;
    }
    {
      await using p = await pair(t, engine, { timeoutMs: 20_000 });
      const mine = engine.get("always");
      mine.body.set("mine");
      const closing = p.client.close();
      const asking = p.client.request(mine, { timeoutMs: 20_000 });
      const err = await expectTofuError(asking, Status.channelClosed);
      assertEquals(err.message, "Cannot complete request: the channel is closing");
      assert(!inPool(engine, mine), "the caller's message is not put back for it");
      assertEquals(mine.body.text(), "mine");
      engine.put(mine);
      await closing;
    }
    await probe.check("after the refusals");
  });
}
