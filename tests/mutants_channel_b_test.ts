// Tests that kill mutants of src/channel.ts lines 701-865 (how a Channel routes what it
// receives: answers, streams, the engine's reports, the peer's bye) that the Peers tests let
// survive. A raw peer (a plain socket, no tofu engine behind it) sends exact frames, so that
// message ids, `more` and the order of frames are chosen by the test; TCP and Unix sockets
// alike.

import { assert, assertEquals, assertInstanceOf, assertRejects } from "@std/assert";
import {
  type Channel,
  connect,
  type ConnectOptions,
  encodeFrame,
  Engine,
  FrameDecoder,
  listen,
  type Listener,
  Message,
  OpCode,
  serve,
  Status,
  statusName,
  TofuError,
} from "../mod.ts";
import {
  expectTofuError,
  hello,
  type PeerTransport,
  peerTransports,
  within,
} from "./_peer_fixtures.ts";
import { nextOf } from "./_peer_pair.ts";
import { rawConnect, until, writeAll } from "./_fixtures.ts";

/** The bytes of one frame a raw peer sends. */
function frame(
  op: OpCode,
  id: bigint,
  body = "",
  more: 0 | 1 = 0,
): Uint8Array {
  const m = new Message();
  m.bhdr.opCode = op;
  m.bhdr.messageId = id;
  m.bhdr.more = more;
  if (body) m.body.set(body);
  return encodeFrame(m);
}

/** Several frames as one write. */
function frames(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Reads whole frames from a raw peer's socket, keeping what it read past a frame. */
class FrameReader {
  readonly #conn: Deno.Conn;
  readonly #dec = new FrameDecoder();
  readonly #buf = new Uint8Array(1 << 16);

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** The next frame; fails the test if none comes within 20 s. */
  next(): Promise<Message> {
    return within(this.#next(), 20_000, "the next frame");
  }

  async #next(): Promise<Message> {
    for (;;) {
      const m = new Message();
      if (this.#dec.next(m)) return m;
      const n = await this.#conn.read(this.#buf);
      if (n === null) throw new Error("the socket ended");
      this.#dec.push(this.#buf.subarray(0, n));
    }
  }

  /** Reads until the peer closes the socket. */
  async toEnd(): Promise<void> {
    while (await this.#conn.read(this.#buf).catch(() => null) !== null) {
      // discarded
    }
  }
}

/** A client Channel connected to a raw peer that answered its HelloRequest. */
interface RawServed extends AsyncDisposable {
  ch: Channel;
  conn: Deno.Conn;
  reader: FrameReader;
  address: string;
}

async function rawServed(t: PeerTransport, options: ConnectOptions = {}): Promise<RawServed> {
  const address = t.fixed();
  const listener = t.silent(address);
  try {
    const accepted = listener.accept();
    const connecting = connect(address, { timeoutMs: 20_000, ...options });
    connecting.catch(() => {});
    const conn = await within(accepted, 20_000, "the client's connection");
    const reader = new FrameReader(conn);
    const helloRequest = await reader.next();
    assertEquals(helloRequest.bhdr.opCode, OpCode.HelloRequest);
    await writeAll(conn, frame(OpCode.HelloResponse, helloRequest.bhdr.messageId));
    const ch = await connecting;
    return {
      ch,
      conn,
      reader,
      address,
      async [Symbol.asyncDispose]() {
        ch.abort();
        await within(ch.close(), 20_000, "the client's close");
        try {
          conn.close();
        } catch {
          // closed already
        }
      },
    };
  } finally {
    listener.close();
  }
}

/** A raw client connected to a tofu listener at `address`, its HelloRequest answered. */
async function rawAccepted(
  listener: Listener,
): Promise<{ conn: Deno.Conn; reader: FrameReader; peer: Channel }> {
  const conn = await rawConnect(listener.address) as Deno.Conn;
  await writeAll(conn, hello(listener.address));
  const r = await within(listener[Symbol.asyncIterator]().next(), 20_000, "the accepted peer");
  assert(!r.done);
  const reader = new FrameReader(conn);
  assertEquals((await reader.next()).bhdr.opCode, OpCode.HelloResponse);
  return { conn, reader, peer: r.value };
}

/** Resolves with "late" unless `p` settles within `ms`. */
function settlesWithin<T>(p: Promise<T>, ms: number): Promise<T | "late"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), ms));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: Channel: a message reusing the id of a finished message or stream is a new message`, async () => {
    await using s = await rawServed(t);
    // One Signal, then another with its id: both come out of the iterator.
    await writeAll(
      s.conn,
      frames(
        frame(OpCode.Signal, 7n, "one"),
        frame(OpCode.Signal, 7n, "two"),
        frame(OpCode.Signal, 8n, "z"),
      ),
    );
    for (const text of ["one", "two", "z"]) {
      using m = await nextOf(s.ch);
      assertEquals(m.body.text(), text);
    }
    // A stream read to its end, then a Signal with its id.
    await writeAll(
      s.conn,
      frames(frame(OpCode.Signal, 9n, "s1", 1), frame(OpCode.Signal, 9n, "s2", 0)),
    );
    const first = await nextOf(s.ch);
    const read = await within(Array.fromAsync(s.ch.chunks(first)), 20_000, "the stream");
    assertEquals(read.map((c) => c.body.text()), ["s1", "s2"]);
    for (const c of read) s.ch.engine.put(c);
    await writeAll(
      s.conn,
      frames(frame(OpCode.Signal, 9n, "after"), frame(OpCode.Signal, 10n, "x")),
    );
    for (const text of ["after", "x"]) {
      using m = await nextOf(s.ch);
      assertEquals(m.body.text(), text);
    }
    // A stream left after its first chunk: the rest is dropped, up to its last chunk only.
    await writeAll(s.conn, frame(OpCode.Signal, 11n, "d1", 1));
    const d1 = await nextOf(s.ch);
    for await (using _c of s.ch.chunks(d1)) break;
    await writeAll(
      s.conn,
      frames(
        frame(OpCode.Signal, 11n, "d2", 0),
        frame(OpCode.Signal, 11n, "after2"),
        frame(OpCode.Signal, 12n, "y"),
      ),
    );
    for (const text of ["after2", "y"]) {
      using m = await nextOf(s.ch);
      assertEquals(m.body.text(), text);
    }
  });

  Deno.test(`${t.name}: Channel: only a Response answers a request, and each answer once`, async () => {
    await using s = await rawServed(t);
    // A Signal with the id of a request in flight is the peer's own message.
    const asking = s.ch.request("q1", { timeoutMs: 20_000 });
    const q1 = await s.reader.next();
    assertEquals([q1.bhdr.opCode, q1.body.text()], [OpCode.Request, "q1"]);
    const id1 = q1.bhdr.messageId;
    await writeAll(
      s.conn,
      frames(frame(OpCode.Signal, id1, "signal"), frame(OpCode.Response, id1, "answer")),
    );
    using answer = await asking;
    assertEquals([answer.bhdr.opCode, answer.body.text()], [OpCode.Response, "answer"]);
    using signal = await nextOf(s.ch);
    assertEquals([signal.bhdr.opCode, signal.body.text()], [OpCode.Signal, "signal"]);
    // A second Response with that id answers nothing: it comes out of the iterator.
    await writeAll(
      s.conn,
      frames(frame(OpCode.Response, id1, "again"), frame(OpCode.Signal, 100n, "x")),
    );
    for (const [op, text] of [[OpCode.Response, "again"], [OpCode.Signal, "x"]] as const) {
      using m = await nextOf(s.ch);
      assertEquals([m.bhdr.opCode, m.body.text()], [op, text]);
    }
    // The late answer of a request that gave up is dropped, once: the next with its id is
    // an uncorrelated Response.
    const gaveUp = s.ch.request("q2", { timeoutMs: 100 });
    const q2 = await s.reader.next();
    await expectTofuError(gaveUp, Status.communicationFailed);
    await writeAll(
      s.conn,
      frames(
        frame(OpCode.Response, q2.bhdr.messageId, "late"),
        frame(OpCode.Response, q2.bhdr.messageId, "later"),
        frame(OpCode.Signal, 101n, "y"),
      ),
    );
    for (const [op, text] of [[OpCode.Response, "later"], [OpCode.Signal, "y"]] as const) {
      using m = await nextOf(s.ch);
      assertEquals([m.bhdr.opCode, m.body.text()], [op, text]);
    }
  });
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: Channel: chunks of a streamed answer leave the read share once read`, async () => {
    await using engine = new Engine({ maxChannelHeldMsgs: 4 });
    await using s = await rawServed(t, { engine });
    const asking = s.ch.request("list", { timeoutMs: 20_000 });
    const q = await s.reader.next();
    const id = q.bhdr.messageId;
    const parts = Array.from({ length: 12 }, (_, i) => `c${i}`);
    await writeAll(
      s.conn,
      frames(...parts.map((p, i) => frame(OpCode.Response, id, p, i < 11 ? 1 : 0))),
    );
    const first = await asking;
    // Every chunk is held until the last one came: more than the share of 4.
    const read = await within(Array.fromAsync(s.ch.chunks(first)), 20_000, "12 chunks");
    assertEquals(read.map((c) => c.body.text()), parts);
    for (const c of read) engine.put(c);
  });

  Deno.test(`${t.name}: Channel: the chunks of the peer's own stream count against the read share`, async () => {
    await using engine = new Engine({ maxChannelHeldMsgs: 4 });
    await using s = await rawServed(t, { engine });
    const parts = Array.from({ length: 12 }, (_, i) => `c${i}`);
    await writeAll(
      s.conn,
      frames(...parts.map((p, i) => frame(OpCode.Signal, 40n, p, i < 11 ? 1 : 0))),
    );
    const first = await nextOf(s.ch);
    const chunks = s.ch.chunks(first);
    const held: Message[] = [];
    // The first message and three chunks held: the channel reads no more.
    for (let i = 0; i < 4; i++) {
      const r = await within(chunks.next(), 20_000, `chunk ${i}`);
      assert(!r.done);
      held.push(r.value as Message);
    }
    const fifth = chunks.next();
    assertEquals(await settlesWithin(fifth, 1000), "late");
    for (const m of held) engine.put(m);
    const r = await within(fifth, 20_000, "the fifth chunk once the others came back");
    assert(!r.done);
    const rest = [(r.value as Message).body.text()];
    engine.put(r.value as Message);
    for await (const c of chunks) {
      rest.push(c.body.text());
      engine.put(c);
    }
    assertEquals(rest, parts.slice(4));
  });

  Deno.test(`${t.name}: Channel: the engine's pool_empty note does not close the channel`, async () => {
    await using engine = new Engine({ maxChannelHeldMsgs: 2 });
    await using s = await rawServed(t, { engine });
    const texts = ["a", "b", "c", "d", "e", "f"];
    await writeAll(s.conn, frames(...texts.map((x, i) => frame(OpCode.Signal, BigInt(i + 50), x))));
    // Two messages held unread: the channel stops reading and the engine says so.
    await new Promise((r) => setTimeout(r, 300));
    for (const text of texts) {
      using m = await nextOf(s.ch);
      assertEquals(m.body.text(), text);
    }
    assert(s.ch.isOpen);
    const asking = s.ch.request("still there?", { timeoutMs: 20_000 });
    const q = await s.reader.next();
    await writeAll(s.conn, frame(OpCode.Response, q.bhdr.messageId, "yes"));
    using answer = await asking;
    assertEquals(answer.body.text(), "yes");
    assert(s.ch.isOpen);
  });

  Deno.test(`${t.name}: Channel: requests the engine hands back unsent reject with the engine's error`, async () => {
    await using engine = new Engine({ maxQueuedBytes: 64 * 1024 * 1024 });
    await using s = await rawServed(t, { engine });
    const n = s.ch.channelNumber;
    const big = "x".repeat(60_000);
    // The raw peer reads the first request, then nothing: the rest stay unsent.
    const first = s.ch.request(big, { timeoutMs: 30_000 });
    first.catch(() => {});
    const q1 = await s.reader.next();
    const id1 = q1.bhdr.messageId;
    const rest = Array.from({ length: 200 }, () => s.ch.request(big, { timeoutMs: 30_000 }));
    for (const r of rest) r.catch(() => {});
    // The peer's Request with the id of our first one; our Response to it stays unsent too.
    await writeAll(s.conn, frame(OpCode.Request, id1, "theirs"));
    using theirs = await nextOf(s.ch);
    assertEquals([theirs.bhdr.opCode, theirs.bhdr.messageId], [OpCode.Request, id1]);
    await s.ch.respond(theirs, "ours");
    s.ch.abort();
    // Written, not answered: it fails with the channel.
    const e1 = await expectTofuError(first, Status.channelClosed);
    assertEquals(e1.message, "Cannot complete request: the channel closed (channel_closed)");
    // Never written: handed back by the engine, with its error as the cause.
    const last = await expectTofuError(rest.at(-1)!, Status.channelClosed);
    const why = `Cannot send on channel ${n}: the application aborted it`;
    assertEquals(last.message, `Cannot complete request: ${why}`);
    assertInstanceOf(last.cause, TofuError);
    assertEquals((last.cause as TofuError).message, why);
  });

  Deno.test(`${t.name}: Channel: a failed connect says why, in the engine's words`, async () => {
    const [address, status] = t.nobody();
    const err = await expectTofuError(connect(address, { timeoutMs: 20_000 }), status);
    assert(
      err.message !== `Cannot connect to ${address}: ${statusName(status)}`,
      err.message,
    );
    assert(err.message.startsWith(`Cannot connect to ${address}: `), err.message);
  });

  Deno.test(`${t.name}: Channel: a peer that says bye instead of answering the HelloRequest refuses`, async () => {
    const address = t.fixed();
    const listener = t.silent(address);
    try {
      const accepted = listener.accept();
      const connecting = connect(address, { timeoutMs: 20_000 });
      connecting.catch(() => {});
      const conn = await within(accepted, 20_000, "the client's connection");
      const reader = new FrameReader(conn);
      const helloRequest = await reader.next();
      await writeAll(conn, frame(OpCode.ByeSignal, helloRequest.bhdr.messageId));
      const err = await expectTofuError(connecting, Status.connectFailed);
      assertEquals(err.message, `Cannot connect to ${address}: refused`);
      await reader.toEnd();
      conn.close();
    } finally {
      listener.close();
    }
  });

  Deno.test(`${t.name}: Channel: a reader that left a finished stream does not disturb a newer one with its id`, async () => {
    await using s = await rawServed(t);
    await writeAll(
      s.conn,
      frames(frame(OpCode.Signal, 60n, "a1", 1), frame(OpCode.Signal, 60n, "a2", 0)),
    );
    const a1 = await nextOf(s.ch);
    // Two readers of one stream: the second stops after the first message...
    const late = s.ch.chunks(a1);
    assertEquals((await late.next()).value?.body.text(), "a1");
    // ...while the first reads it to its end.
    const read: Message[] = [];
    for await (const c of s.ch.chunks(a1)) read.push(c);
    assertEquals(read.map((c) => c.body.text()), ["a1", "a2"]);
    for (const c of read) s.ch.engine.put(c);
    // A new stream with the same id, being read when the late reader gives up.
    await writeAll(s.conn, frame(OpCode.Signal, 60n, "b1", 1));
    const b1 = await nextOf(s.ch);
    const reader = s.ch.chunks(b1);
    assertEquals((await reader.next()).value?.body.text(), "b1");
    const b2 = reader.next();
    await late.return();
    await writeAll(
      s.conn,
      frames(frame(OpCode.Signal, 60n, "b2", 0), frame(OpCode.Signal, 61n, "z")),
    );
    // The newer stream's chunk is not a message of its own.
    using z = await nextOf(s.ch);
    assertEquals(z.body.text(), "z");
    const r = await within(b2, 20_000, "the second chunk of the newer stream");
    assertEquals(r.value?.body.text(), "b2");
    s.ch.engine.put(r.value ?? null);
    assertEquals((await reader.next()).done, true);
    s.ch.engine.put(b1);
  });
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: Channel: after the peer's ByeRequest nothing more is sent, though its ByeResponse waits its turn`, async () => {
    await using engine = new Engine({ maxQueuedBytes: 64 * 1024 * 1024 });
    await using listener = await listen(t.any(), { engine });
    const { conn, peer } = await rawAccepted(listener);
    // The peer's requests fill the socket: the raw client reads nothing more.
    const big = "x".repeat(60_000);
    const asks = Array.from({ length: 200 }, () => peer.request(big, { timeoutMs: 30_000 }));
    for (const a of asks) a.catch(() => {});
    await writeAll(conn, frame(OpCode.ByeRequest, 2n));
    await until(() => !peer.isOpen, "the channel closing");
    const err = await expectTofuError(peer.send("more", { timeoutMs: 5000 }), Status.channelClosed);
    assertEquals(err.message, "Cannot send: the channel is closing");
    // The raw client goes away (a reset or an end, as the socket has it).
    conn.close();
    const status = await within(peer.closed, 20_000, "the close");
    assert(status !== Status.success, statusName(status));
    for (const a of asks) await assertRejects(() => a, TofuError);
  });

  Deno.test(`${t.name}: Channel: ByeRequests that cross give the message back to the pool`, async () => {
    await using engine = new Engine();
    await using listener = await listen(t.any(), { engine });
    const before = engine.poolSize;
    const { conn, reader, peer } = await rawAccepted(listener);
    const closing = peer.close();
    assertEquals((await reader.next()).bhdr.opCode, OpCode.ByeRequest);
    // The raw client's own ByeRequest instead of a ByeResponse: the engine closes the
    // channel, and the ByeResponse the Channel would post is refused.
    await writeAll(conn, frame(OpCode.ByeRequest, 3n));
    await within(closing, 20_000, "the close");
    await reader.toEnd();
    conn.close();
    assertEquals(statusName(await peer.closed), "success");
    assertEquals(engine.poolSize, before);
  });

  Deno.test(`${t.name}: Channel: a re-dial the peer refuses with a ByeRequest is followed by the next`, async () => {
    const address = t.fixed();
    const first = await serve(address, () => "one");
    const ch = await connect(address, {
      timeoutMs: 20_000,
      reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
    });
    try {
      using one = await ch.request("x", { timeoutMs: 20_000 });
      assertEquals(one.body.text(), "one");
      await first.close();
      await until(() => !ch.isOpen, "the drop");
      // A peer that answers the re-dial's HelloRequest with a ByeRequest.
      const raw = t.silent(address);
      try {
        const conn = await within(raw.accept(), 20_000, "the re-dial");
        const reader = new FrameReader(conn);
        const helloRequest = await reader.next();
        assertEquals(helloRequest.bhdr.opCode, OpCode.HelloRequest);
        await writeAll(conn, frame(OpCode.ByeRequest, helloRequest.bhdr.messageId));
        assertEquals((await reader.next()).bhdr.opCode, OpCode.ByeResponse);
        await reader.toEnd();
        conn.close();
      } finally {
        raw.close();
      }
      // The channel re-dials on: a request waits for the next connection.
      const asking = ch.request("y", { timeoutMs: 20_000 });
      await using _second = await serve(address, () => "two");
      using two = await within(asking, 20_000, "the answer over the next connection");
      assertEquals(two.body.text(), "two");
      assert(ch.isOpen);
    } finally {
      await ch.close();
    }
  });

  Deno.test(`${t.name}: Channel: the report of a re-dial that timed out does not restart the re-dialing`, async () => {
    const address = t.fixed();
    const first = await serve(address, () => "one");
    // The handshake timeout (2 s) also bounds each re-dial; re-dials pause 200-400 ms.
    const ch = await connect(address, {
      timeoutMs: 2000,
      reconnect: { initialDelayMs: 400, maxDelayMs: 400 },
    });
    try {
      await first.close();
      await until(() => !ch.isOpen, "the drop");
      const asking = ch.request("y", { timeoutMs: 30_000 });
      asking.catch(() => {});
      // A peer that never answers: the re-dial gives up after 2 s and closes its socket.
      const silent = t.silent(address);
      try {
        const conn = await within(silent.accept(), 20_000, "the re-dial");
        await new FrameReader(conn).toEnd();
        conn.close();
      } finally {
        silent.close();
      }
      // The request still waits for the connection the next re-dial makes.
      await using _second = await serve(address, () => "two");
      using two = await within(asking, 20_000, "the answer over the next connection");
      assertEquals(two.body.text(), "two");
    } finally {
      await ch.close();
    }
  });
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: Channel: a listener accepts a peer on the number of a closed one`, async () => {
    // Channel numbers are drawn at random, and a released number waits until 1024 others
    // were released: a fixed Math.random makes the engine draw the same one again after.
    const random = Math.random;
    Math.random = () => 0.5;
    try {
      await using engine = new Engine();
      await using listener = await listen(t.any(), { engine });
      const first = await rawAccepted(listener);
      const number = first.peer.channelNumber;
      first.conn.close();
      await within(first.peer.closed, 20_000, "the first peer's close");
      for (let i = 0; i < 1024; i += 64) {
        await Promise.all(Array.from({ length: 64 }, async () => {
          const conn = await rawConnect(listener.address);
          conn.close();
        }));
      }
      // Once those are released, a new peer gets the first one's number: the closed
      // Channel no longer routes it.
      for (let i = 0;; i++) {
        assert(i < 200, `no peer got channel ${number} again`);
        const next = await rawAccepted(listener);
        const got = next.peer.channelNumber;
        next.conn.close();
        await within(next.peer.closed, 20_000, "a peer's close");
        if (got === number) break;
      }
    } finally {
      Math.random = random;
    }
  });
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: Channel: a connect whose first attempt the peer refused with a ByeRequest still closes with a bye`, async () => {
    const address = t.fixed();
    const raw = t.silent(address);
    const connecting = connect(address, {
      timeoutMs: 20_000,
      reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
    });
    connecting.catch(() => {});
    try {
      const conn = await within(raw.accept(), 20_000, "the first attempt");
      const reader = new FrameReader(conn);
      const helloRequest = await reader.next();
      await writeAll(conn, frame(OpCode.ByeRequest, helloRequest.bhdr.messageId));
      assertEquals((await reader.next()).bhdr.opCode, OpCode.ByeResponse);
      await reader.toEnd();
      conn.close();
    } finally {
      raw.close();
    }
    await using _server = await serve(address, () => "two");
    const ch = await within(connecting, 20_000, "the next attempt");
    using two = await ch.request("x", { timeoutMs: 20_000 });
    assertEquals(two.body.text(), "two");
    // The ByeResponse of the refused attempt is not this connection's: close() says bye.
    await ch.close();
    assertEquals(statusName(await ch.closed), "success");
  });
}
