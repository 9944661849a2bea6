// Tests that kill mutants of the Peers files (src/listener.ts, src/server.ts) and of the Unix
// socket transport (src/_transport_uds.ts) left by the earlier mutant tests, over real
// sockets, TCP and Unix sockets alike.

import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import {
  type Channel,
  connect,
  encodeFrame,
  Engine,
  FrameDecoder,
  listen,
  type Listener,
  Message,
  OpCode,
  serve,
} from "../mod.ts";
import { leaseOf } from "../src/message.ts";
import { tempUdsPath } from "../testing.ts";
import { uds } from "../src/_transport_uds.ts";
import { hello, peerTransports, within } from "./_peer_fixtures.ts";
import { type RawConn, rawConnect, writeAll } from "./_fixtures.ts";

/**
 * Calls `f` with every timer of 1 or 2 seconds it starts stretched to 10 minutes: the close
 * graces of a listener (1 s) and a channel (2 s) then wait until the peer acts, so a test can
 * look at what happens meanwhile without racing the grace.
 */
function withLongGraces<T>(f: () => T): T {
  const real = globalThis.setTimeout;
  globalThis.setTimeout = ((...a: Parameters<typeof setTimeout>) => {
    const [handler, ms, ...args] = a;
    return real(handler, ms === 1000 || ms === 2000 ? 600_000 : ms, ...args);
  }) as typeof setTimeout;
  try {
    return f();
  } finally {
    globalThis.setTimeout = real;
  }
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: a closing listener stops accepting at once, while it waits for its peers' byes`, async () => {
    await using engine = new Engine();
    const listener = await listen(t.any(), { engine });
    const address = listener.address;
    // A peer that completes the handshake and never answers the bye holds the close.
    const deaf = await rawConnect(address);
    await writeAll(deaf, hello(address));
    await within(listener[Symbol.asyncIterator]().next(), 20_000, "the deaf peer is accepted");
    const closing = withLongGraces(() => listener.close());
    // The listening socket goes first: connecting fails long before the close ends.
    let refused = false;
    for (let i = 0; i < 1000 && !refused; i++) {
      try {
        (await rawConnect(address)).close();
        await new Promise((r) => setTimeout(r, 20));
      } catch {
        refused = true;
      }
    }
    assert(refused, "connects were still accepted while the listener closed");
    deaf.close(); // the deaf peer goes: its channel ends, and the close with it
    await within(closing, 20_000, "listener.close()");
    assertEquals(engine.channelCount, 0);
  });
}

/** A plain socket peer that speaks frames: what a tofu client would not show. */
class RawPeer {
  readonly conn: RawConn;
  readonly #dec = new FrameDecoder();
  readonly #buf = new Uint8Array(64 * 1024);

  private constructor(conn: RawConn) {
    this.conn = conn;
  }

  /** Connects to `address` and completes the handshake. */
  static async open(address: string): Promise<RawPeer> {
    const p = new RawPeer(await rawConnect(address));
    await writeAll(p.conn, hello(address));
    const welcome = await within(p.next(), 20_000, "the HelloResponse");
    assertEquals(welcome?.bhdr.opCode, OpCode.HelloResponse);
    return p;
  }

  /** Sends a Request with message id `id`. */
  async request(id: bigint, body: string): Promise<void> {
    const m = new Message();
    m.bhdr.opCode = OpCode.Request;
    m.bhdr.messageId = id;
    m.body.set(body);
    await writeAll(this.conn, encodeFrame(m));
  }

  /** The next frame, or null at the end of the stream. */
  async next(): Promise<Message | null> {
    while (!this.#dec.hasFrame()) {
      const n = await this.conn.read(this.#buf);
      if (n === null) return null;
      this.#dec.push(this.#buf.subarray(0, n));
    }
    const m = new Message();
    this.#dec.next(m);
    return m;
  }
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: serve(): a stream that fails partway ends with one error chunk, and no error Response after it`, async () => {
    await using server = await serve(t.any(), (req) => {
      if (req.body.text() === "ok") return "ok";
      return (function* () {
        yield "part 1";
        yield "part 2";
        throw new Error("broken stream");
      })();
    });
    const peer = await RawPeer.open(server.address);
    try {
      await peer.request(7n, "stream");
      const frames: string[] = [];
      for (;;) {
        const m = await within(peer.next(), 20_000, "the stream's frames");
        if (m === null) throw new Error("the server closed the connection");
        const bh = m.bhdr;
        frames.push(`${bh.messageId}:${bh.more}:${m.body.text()}:${m.headers.get("tofu-error")}`);
        if (bh.more === 0) break;
      }
      assertEquals(frames, ["7:1:part 1:undefined", "7:0::broken stream"]);
      // Anything more for id 7 would come before the answer to the next request.
      await peer.request(8n, "ok");
      const next = await within(peer.next(), 20_000, "the answer to request 8");
      assertEquals([next?.bhdr.messageId, next?.body.text()], [8n, "ok"]);
    } finally {
      peer.conn.close();
    }
  });

  Deno.test(`${t.name}: serve(): a peer that never reads its answers loses its channel once its writes stall`, async () => {
    // Each answer is 60 kB and the engine queues at most 256 KiB per channel: far more than
    // the socket buffers take is asked for, so the answers wait for room, the socket takes
    // nothing, and the write stall timeout closes the channel. (Refused room once made
    // serve() drop the peer at once, also one that read its answers in a burst.)
    await using engine = new Engine({ maxQueuedBytes: 256 * 1024, writeStallTimeoutMs: 500 });
    const big = "x".repeat(60_000);
    await using server = await serve(t.any(), () => big, { engine });
    const peer = await RawPeer.open(server.address);
    try {
      let sent = 0;
      try {
        while (sent < 400) await peer.request(BigInt(++sent), "more");
      } catch {
        // The server cut the connection while requests were still being written.
      }
      // Past the write stall timeout the server closes the channel: reading what was
      // buffered then ends with the connection.
      await new Promise((r) => setTimeout(r, 1500));
      let answers = 0;
      const ended = (async () => {
        try {
          while ((await peer.next()) !== null) answers++;
        } catch {
          // Reset by the server: ended too.
        }
      })();
      await within(ended, 20_000, "the end of the connection");
      assert(answers < sent, `${answers} answers to ${sent} requests: some could not be queued`);
    } finally {
      peer.conn.close();
    }
  });
}

/** Whether `m` is in `engine`'s pool now (it was put back). */
function inPool(engine: Engine, m: Message): boolean {
  const out: Message[] = [];
  for (let p = engine.get("poolOnly"); p !== null; p = engine.get("poolOnly")) out.push(p);
  for (const p of out) engine.put(p);
  return out.includes(m);
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: serve(): a request the handler put back and took again as a new message stays the handler's`, async () => {
    await using engine = new Engine({ initialPoolMsgs: 16, maxPoolMsgs: 100_000 });
    let held: Message | null = null;
    let heldLease = -1;
    await using server = await serve(t.any(), (req) => {
      if (req.body.text() === "check") {
        // Had serve() put it back, its lease would have moved on (the pool may have handed it
        // out again since, say to read a frame into).
        if (held === null || leaseOf(held) !== heldLease || inPool(engine, held)) return "lost";
        return held.body.text() === "mine" ? "held" : "changed";
      }
      engine.put(req); // given back...
      held = engine.get("always")!; // ...and taken again: the pool hands out the same object
      held.body.set("mine");
      heldLease = leaseOf(held);
      return held === req ? "same" : "another";
    }, { engine });
    await using ch = await connect(server.address, { engine, timeoutMs: 20_000 });
    using first = await ch.request("put back", { timeoutMs: 20_000 });
    assertEquals(first.body.text(), "same");
    // The first handler has settled by now: serve() must not have put the message back.
    using check = await ch.request("check", { timeoutMs: 20_000 });
    assertEquals(check.body.text(), "held");
    engine.put(held);
  });
}

/** Accepts the next peer of `listener` (within 20 s). */
async function nextPeer(listener: Listener): Promise<Channel> {
  const r = await within(listener[Symbol.asyncIterator]().next(), 20_000, "the next peer");
  return r.value as Channel;
}

Deno.test("listen(): only a HelloRequest's ~connect_to names the address a peer dialled", async () => {
  await using listener = await listen([
    "tcp|127.0.0.1|0",
    `uds|${tempUdsPath()}`,
    "tcp|127.0.0.1|0",
  ]);
  const bound = listener.addresses;
  // A peer that skips the handshake and sends a Signal that happens to carry the header.
  const raw = await rawConnect(bound[2]!);
  try {
    const signal = new Message();
    signal.bhdr.opCode = OpCode.Signal;
    signal.headers.append("~connect_to", bound[2]!);
    signal.body.set("no hello");
    await writeAll(raw, encodeFrame(signal));
    const peer = await nextPeer(listener);
    assertEquals(peer.address, bound[0], "taken for a peer of the first address");
    const first = await within(peer[Symbol.asyncIterator]().next(), 20_000, "the Signal");
    assertEquals((first.value as Message).body.text(), "no hello");
    peer.engine.put(first.value as Message);
  } finally {
    raw.close();
  }
});

Deno.test("listen(): a dialled address matches a bound one of the same kind only", async () => {
  const path = tempUdsPath();
  await using listener = await listen([`uds|${path}`, "tcp|127.0.0.1|0"]);
  const tcp = listener.addresses[1]!;
  const port = tcp.split("|")[2]!;
  // A TCP peer whose dialled host happens to be the Unix socket's path: the port decides.
  const raw = await rawConnect(tcp);
  try {
    await writeAll(raw, hello(`tcp|${path}|${port}`));
    const peer = await nextPeer(listener);
    assertEquals(peer.address, tcp);
  } finally {
    raw.close();
  }
});

for (const t of peerTransports) {
  Deno.test(`${t.name}: closing a listener whose engine is already closed gives its messages back`, async () => {
    const engine = new Engine();
    const listener = await listen(t.any(), { engine });
    await engine.close();
    const before = engine.poolSize;
    // The listener's bye to its listening channel cannot be posted any more: it goes to the pool.
    await within(listener.close(), 20_000, "listener.close()");
    assertEquals(engine.poolSize, before + 1);
  });
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: listen() on an engine whose pool is empty takes a fresh message`, async () => {
    await using engine = new Engine();
    const taken: Message[] = [];
    for (let m = engine.get("poolOnly"); m !== null; m = engine.get("poolOnly")) taken.push(m);
    assertEquals(engine.poolSize, 0);
    // The WelcomeRequest is a fresh message then.
    const listener = await listen(t.any(), { engine });
    for (const m of taken) engine.put(m);
    assertEquals(listener.addresses.length, 1);
    await within(listener.close(), 20_000, "listener.close()");
  });
}

/** The names in `path`'s directory that start with its own name and a dot (spare names). */
function spares(path: string): string[] {
  const dir = path.slice(0, path.lastIndexOf("/"));
  const base = path.slice(path.lastIndexOf("/") + 1);
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.startsWith(`${base}.`));
}

Deno.test("uds: a live socket whose backlog is full is left alone (its probe fails but is not refused)", async () => {
  const path = tempUdsPath();
  const other = Deno.listen({ transport: "unix", path }); // never accepts
  const ino = Deno.lstatSync(path).ino;
  const pending: Deno.Conn[] = [];
  try {
    // Connects wait in the backlog until it is full; the next one fails at once.
    let full = false;
    for (let i = 0; i < 5000 && !full; i++) {
      try {
        pending.push(await within(Deno.connect({ transport: "unix", path }), 20_000, "connect"));
      } catch (err) {
        assert(!(err instanceof Deno.errors.ConnectionRefused), String(err));
        full = true;
      }
    }
    assert(full, `${pending.length} connects all waited in the backlog`);
    const err = await assertRejects(() => uds.listen({ path }), Deno.errors.AddrInUse);
    assertStringIncludes(err.message, `the socket ${path} did not refuse a probe (`);
    assertStringIncludes(err.message, "); it may be live");
    assertEquals(Deno.lstatSync(path).ino, ino, "the live socket file is kept");
  } finally {
    for (const c of pending) c.close();
    other.close();
  }
});

Deno.test("uds: a kept file that cannot be put back (a directory took its path) leaves no spare name", async () => {
  const path = tempUdsPath();
  const l = await uds.listen({ path });
  // With an accept pending, Deno unlinks the path only once that accept has ended, and the
  // spare is put back then (with none, both happen within close()).
  const accepting = l.accept().catch(() => null);
  Deno.removeSync(path);
  const other = Deno.listen({ transport: "unix", path });
  try {
    l.close(); // the other listener's file is kept under a spare name across the close
    assertEquals(spares(path).length, 1, "kept under a spare name");
    Deno.removeSync(path);
    Deno.mkdirSync(path);
    // The accept ends: the spare cannot be renamed back over a directory, so it is removed.
    assertEquals(await accepting, null);
    l.ended();
    assertEquals(spares(path), []);
    assert(Deno.lstatSync(path).isDirectory, "the directory is left alone");
  } finally {
    other.close();
    Deno.removeSync(path, { recursive: true });
  }
});

Deno.test("uds: a path that cannot be looked at (under a plain file) fails at the check, before a bind", async () => {
  const file = tempUdsPath();
  Deno.writeTextFileSync(file, "not a directory");
  try {
    const err = await assertRejects(
      () => uds.listen({ path: `${file}/x.sock` }),
      Deno.errors.NotADirectory,
    );
    // The error of the check itself (Deno names the call), passed on as it is.
    assertStringIncludes(err.message, `lstat '${file}/x.sock'`);
  } finally {
    Deno.removeSync(file);
  }
});
