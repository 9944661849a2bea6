// Tests that kill mutants of src/channel.ts lines 866-1060 (the end of a channel, dialing,
// re-dialing and the stream key) that the other Peers tests let survive, over real sockets,
// TCP and Unix sockets alike. A plain engine's listener plays the server, so that each
// HelloRequest is answered, refused or left unanswered as the test says.

import { assert, assertEquals, assertInstanceOf } from "@std/assert";
import { delay } from "@std/async/delay";
import {
  type Channel,
  connect,
  decodeFrame,
  encodeFrame,
  Engine,
  Message,
  OpCode,
  Status,
  statusName,
  TofuError,
} from "../mod.ts";
import { expectTofuError, peerTransports, within } from "./_peer_fixtures.ts";
import {
  listen as plainListen,
  make,
  makeAbort,
  type SocketTransport,
  transports,
  until,
  writeAll,
} from "./_fixtures.ts";
import { rawListen, readFrames } from "./_raw_peer.ts";

/** What the server does with a HelloRequest: answer it, drop its connection, or hold it. */
type HelloPolicy = "answer" | "drop" | "hold";

/** A plain engine's listener that plays the server of a Peers client, one Hello at a time. */
interface HelloServer extends AsyncDisposable {
  engine: Engine;
  /** The address a client dials. */
  bound: string;
  /** How many HelloRequests came so far. */
  readonly hellos: number;
  /** What to do with each HelloRequest from now on (default "hold"). */
  policy: HelloPolicy;
  /** The server channel of the next HelloRequest (of those not yet taken). */
  nextHello(): Promise<number>;
  /** Answers the held HelloRequest of channel `ch`. */
  answer(ch: number): void;
  /** Aborts the server's channel `ch` (its connection closes). */
  drop(ch: number): void;
  /** Closes the server's channel `ch` gracefully (a ByeRequest). */
  bye(ch: number): void;
  /** Resolves once the server's channel `ch` is closed (either side). */
  closed(ch: number): Promise<void>;
}

async function helloServer(t: SocketTransport): Promise<HelloServer> {
  const engine = new Engine();
  const { group, bound } = await plainListen(engine, t);
  const held = new Map<number, Message>();
  const fresh: number[] = [];
  let wakeHello = (): void => {};
  const closed = new Set<number>();
  const closeWaiters = new Map<number, Array<() => void>>();
  let hellos = 0;
  const server: HelloServer = {
    engine,
    bound,
    get hellos() {
      return hellos;
    },
    policy: "hold",
    async nextHello() {
      while (fresh.length === 0) {
        await within(new Promise<void>((r) => wakeHello = r), 20_000, "the next HelloRequest");
      }
      return fresh.shift()!;
    },
    answer(ch) {
      const m = held.get(ch)!;
      held.delete(ch);
      m.bhdr.opCode = OpCode.HelloResponse;
      group.post(m);
    },
    drop(ch) {
      const m = held.get(ch);
      held.delete(ch);
      engine.put(m);
      group.post(makeAbort(engine, ch));
    },
    bye(ch) {
      group.post(make(engine, ch, OpCode.ByeRequest));
    },
    closed(ch) {
      if (closed.has(ch)) return Promise.resolve();
      return within(
        new Promise<void>((r) => closeWaiters.set(ch, [...(closeWaiters.get(ch) ?? []), r])),
        20_000,
        `the close of the server's channel ${ch}`,
      );
    },
    async [Symbol.asyncDispose]() {
      for (const m of held.values()) engine.put(m);
      held.clear();
      await engine.close();
      await pumped;
    },
  };
  const pumped = (async () => {
    for await (const m of group as AsyncIterable<Message>) {
      const bh = m.bhdr;
      if (m.isFromEngine() && bh.opCode === OpCode.Signal && bh.status === Status.channelClosed) {
        closed.add(bh.channelNumber);
        for (const w of closeWaiters.get(bh.channelNumber) ?? []) w();
        closeWaiters.delete(bh.channelNumber);
        engine.put(m);
        continue;
      }
      if (bh.opCode === OpCode.HelloRequest && !m.isFromEngine()) {
        hellos++;
        const ch = bh.channelNumber;
        held.set(ch, m);
        if (server.policy === "answer") server.answer(ch);
        else if (server.policy === "drop") server.drop(ch);
        else {
          fresh.push(ch);
          wakeHello();
        }
        continue;
      }
      if (bh.opCode === OpCode.ByeRequest && !m.isFromEngine()) {
        bh.opCode = OpCode.ByeResponse; // a graceful close() of the client
        group.post(m);
        continue;
      }
      engine.put(m);
    }
  })();
  return server;
}

/** A client channel of `engine` connected to `server` (its first Hello answered). */
async function connected(
  server: HelloServer,
  engine: Engine,
  options: Parameters<typeof connect>[1] = {},
): Promise<{ ch: Channel; first: number }> {
  const connecting = connect(server.bound, { engine, timeoutMs: 20_000, ...options });
  const first = await server.nextHello();
  server.answer(first);
  return { ch: await within(connecting, 20_000, "connect()"), first };
}

/** Drops the server side of `ch`'s connection `first`; resolves once `ch` is re-dialling. */
async function dropLink(server: HelloServer, ch: Channel, first: number): Promise<void> {
  server.drop(first);
  await server.closed(first);
  await until(() => !ch.isOpen, "the client noticing the drop");
}

for (const t of transports) {
  Deno.test(`${t.name}: Channel: closing the engine while a channel waits to re-dial ends it (shutdown_started)`, async () => {
    await using server = await helloServer(t);
    const engine = new Engine();
    // The pause before the re-dial is 30 s at least: the engine closes during it.
    const { ch, first } = await connected(server, engine, {
      reconnect: { initialDelayMs: 60_000 },
    });
    const reading = (async () => {
      for await (const _m of ch) { /* nothing arrives */ }
      return "ended";
    })();
    await dropLink(server, ch, first);
    const waiting = ch.request("after the drop");
    waiting.catch(() => {});
    await within(engine.close(), 20_000, "engine.close()");
    assertEquals(statusName(await within(ch.closed, 20_000, "closed")), "shutdown_started");
    // The closing status, as for requests in flight (it was channel_closed).
    const err = await within(
      expectTofuError(waiting, Status.shutdownStarted),
      20_000,
      "the request",
    );
    assertEquals(err.message, "Cannot use channel: it closed (shutdown_started)");
    assertEquals(await within(reading, 20_000, "the iterator"), "ended");
    assertEquals([ch.isOpen, ch.channelNumber, server.hellos], [false, 0, 1]);
    await ch.close();
  });

  Deno.test(`${t.name}: connect(): closing the engine while it waits to re-dial rejects at once (shutdown_started)`, async () => {
    await using server = await helloServer(t);
    server.policy = "drop";
    const engine = new Engine();
    const connecting = connect(server.bound, {
      engine,
      timeoutMs: 120_000,
      reconnect: { initialDelayMs: 60_000 },
    });
    connecting.catch(() => {});
    await until(() => server.hellos === 1, "the first dial");
    await delay(50); // the dial fails; the pause of 30 s at least begins
    await within(engine.close(), 20_000, "engine.close()");
    await within(expectTofuError(connecting, Status.shutdownStarted), 20_000, "connect()");
    assertEquals(server.hellos, 1);
  });

  Deno.test(`${t.name}: connect(): closing the engine during the handshake rejects at once (shutdown_started)`, async () => {
    await using server = await helloServer(t);
    for (const reconnect of [false, true]) {
      const engine = new Engine();
      const connecting = connect(server.bound, { engine, timeoutMs: 120_000, reconnect });
      connecting.catch(() => {});
      const ch = await server.nextHello(); // held: the client waits for the answer
      await within(engine.close(), 20_000, "engine.close()");
      const err = await within(
        expectTofuError(connecting, Status.shutdownStarted),
        20_000,
        `connect() (reconnect ${reconnect})`,
      );
      assertEquals(err.message, "Cannot use channel: the engine is closed");
      await server.closed(ch);
    }
  });

  Deno.test(`${t.name}: connect(): maxAttempts re-dials after the first dial, then it gives up`, async () => {
    await using server = await helloServer(t);
    server.policy = "drop";
    // maxDelayMs is never reached: the pauses are half to all of 1, 2 and 4 ms.
    const err = await within(
      connect(server.bound, {
        timeoutMs: 120_000,
        reconnect: { initialDelayMs: 1, maxDelayMs: 60_000, maxAttempts: 3 },
      }).then(() => null, (e) => e),
      20_000,
      "connect()",
    );
    assertInstanceOf(err, TofuError);
    assertEquals(server.hellos, 4);
  });

  Deno.test(`${t.name}: Channel: a dropped connection is re-dialled maxAttempts times, then closed (connect_failed)`, async () => {
    await using server = await helloServer(t);
    await using engine = new Engine();
    const { ch, first } = await connected(server, engine, {
      reconnect: { initialDelayMs: 1, maxDelayMs: 60_000, maxAttempts: 3 },
    });
    server.policy = "drop";
    const reading = (async () => {
      for await (const _m of ch) { /* nothing arrives */ }
      return "ended";
    })();
    server.drop(first);
    assertEquals(statusName(await within(ch.closed, 20_000, "closed")), "connect_failed");
    assertEquals(server.hellos, 1 + 3);
    assertEquals(await within(reading, 20_000, "the iterator"), "ended");
    const err = await expectTofuError(ch.request("late"), Status.channelClosed);
    assertEquals(err.message, "Cannot complete request: the channel is closed");
    await ch.close();
  });

  Deno.test(`${t.name}: Channel: a re-dial whose handshake times out is dropped, then the next one connects`, async () => {
    await using server = await helloServer(t);
    await using engine = new Engine();
    // connect()'s timeoutMs bounds each re-dial's handshake too.
    const { ch, first } = await connected(server, engine, {
      timeoutMs: 2000,
      reconnect: { initialDelayMs: 1, maxDelayMs: 1 },
    });
    const deadlines = await recordTimers("new Deadline", async () => {
      await dropLink(server, ch, first);
      const unanswered = await server.nextHello();
      // Never answered: after 2 s the client gives the attempt up and closes its connection.
      await server.closed(unanswered);
      const next = await server.nextHello();
      assert(next !== unanswered);
      server.answer(next);
      await until(() => ch.isOpen, "the reconnect");
    });
    assertEquals(deadlines, [2000, 2000], "one handshake deadline per re-dial");
    await ch.close();
    assertEquals(statusName(await ch.closed), "success");
  });

  Deno.test(`${t.name}: Channel: abort() during a re-dial drops the connection being dialled at once`, async () => {
    await using server = await helloServer(t);
    await using engine = new Engine();
    const { ch, first } = await connected(server, engine, {
      reconnect: { initialDelayMs: 1, maxDelayMs: 1 },
    });
    await dropLink(server, ch, first);
    const dialling = await server.nextHello(); // held: the re-dial waits for its answer
    await until(() => ch.channelNumber !== 0, "the re-dial's channel number");
    ch.abort();
    assertEquals(ch.channelNumber, 0, "no connection once abort() returns");
    assertEquals(statusName(await within(ch.closed, 20_000, "closed")), "channel_closed");
    await server.closed(dialling);
    await ch.close();
  });
}

/**
 * Runs `f` with the jitter of re-dial pauses pinned to its middle (`Math.random()` is 0.5
 * when `jitter()` asks) and records the delay of every timer started meanwhile from `site`
 * (a function of src/_deadline.ts: `sleep`, a pause, or `new Deadline`, a deadline).
 */
async function recordTimers(site: string, f: () => Promise<void>): Promise<number[]> {
  const random = Math.random;
  const setTimer = globalThis.setTimeout;
  const from = new RegExp(`at ${site} \\(.*_deadline\\.ts`);
  const timers: number[] = [];
  Math.random = () => /\bjitter\b/.test(new Error().stack ?? "") ? 0.5 : random();
  globalThis.setTimeout = ((...a: Parameters<typeof setTimeout>) => {
    if (from.test(new Error().stack ?? "")) timers.push(a[1] ?? 0);
    return setTimer(...a);
  }) as typeof setTimeout;
  try {
    await f();
  } finally {
    Math.random = random;
    globalThis.setTimeout = setTimer;
  }
  return timers;
}

for (const t of transports) {
  Deno.test(`${t.name}: Channel: re-dials pause half to all of a delay that doubles up to maxDelayMs`, async () => {
    await using server = await helloServer(t);
    await using engine = new Engine();
    let ch: Channel | undefined;
    /** Refuses three Hellos, answers the fourth; returns its channel. */
    const refuseThree = async () => {
      for (let i = 0; i < 3; i++) server.drop(await server.nextHello());
      const ok = await server.nextHello();
      server.answer(ok);
      return ok;
    };
    const pauses = await recordTimers("sleep", async () => {
      const serving = refuseThree();
      ch = await within(
        connect(server.bound, {
          engine,
          timeoutMs: 20_000,
          reconnect: { initialDelayMs: 40, maxDelayMs: 100 },
        }),
        20_000,
        "connect()",
      );
      const first = await serving;
      const reserving = refuseThree();
      await dropLink(server, ch, first);
      await reserving;
      await until(() => ch!.isOpen, "the reconnect");
    });
    // jitter(d) = d/2 + 0.5 * d/2: 40 -> 30, 80 -> 60, 160 capped at 100 -> 75. connect()
    // pauses after each failed dial (three); a re-dial pauses before each dial (four).
    assertEquals(pauses, [30, 60, 75, 30, 60, 75, 75]);
    assertEquals(server.hellos, 8);
    await ch!.close();
    assertEquals(statusName(await ch!.closed), "success");
  });

  Deno.test(`${t.name}: Channel: after a reconnect, close() says bye again (the peer's bye is forgotten)`, async () => {
    await using server = await helloServer(t);
    await using engine = new Engine();
    const { ch, first } = await connected(server, engine, {
      reconnect: { initialDelayMs: 1, maxDelayMs: 1 },
    });
    server.bye(first); // the server closes gracefully; the client answers and re-dials
    await server.closed(first);
    server.answer(await server.nextHello());
    await until(() => ch.isOpen, "the reconnect");
    // A ByeRequest goes out and is answered: success, not an abort after the 2 s grace.
    await ch.close();
    assertEquals(statusName(await ch.closed), "success");
  });

  Deno.test(`${t.name}: Channel: a dial takes its HelloRequest from an empty pool too`, async () => {
    await using server = await helloServer(t);
    await using engine = new Engine();
    const drained: Message[] = [];
    for (let m = engine.get("poolOnly"); m !== null; m = engine.get("poolOnly")) drained.push(m);
    try {
      const { ch } = await connected(server, engine);
      assert(ch.isOpen);
      await ch.close();
    } finally {
      for (const m of drained) engine.put(m);
    }
  });

  Deno.test(`${t.name}: Channel: streams are told apart by opcode: an answer, a Signal and a Request of one id`, async () => {
    const { listener, bound } = rawListen(t);
    const accepting = listener.accept();
    const connecting = connect(bound, { timeoutMs: 20_000 });
    await using conn = await within(accepting, 20_000, "accept");
    await readFrames(conn, 1); // the HelloRequest
    await writeAll(conn, encodeFrame(chunk(OpCode.HelloResponse, "", 1n, 0)));
    const ch = await within(connecting, 20_000, "connect()");
    const asking = ch.request("q", { timeoutMs: 20_000 });
    const [request] = await readFrames(conn, 1);
    const id = decodeFrame(request!).bhdr.messageId;
    // The peer numbers its own messages: its Signal and Request streams may reuse the id of
    // the request it answers (and each other's).
    const frames = [
      chunk(OpCode.Response, "r1", id, 1),
      chunk(OpCode.Signal, "s1", id, 1),
      chunk(OpCode.Request, "q1", id, 1),
      chunk(OpCode.Response, "r2", id, 0),
      chunk(OpCode.Signal, "s2", id, 0),
      chunk(OpCode.Request, "q2", id, 0),
    ].map((m) => encodeFrame(m));
    await writeAll(conn, new Uint8Array(frames.flatMap((f) => [...f])));
    const answer = await asking;
    const it = ch[Symbol.asyncIterator]();
    const signal = (await within(it.next(), 20_000, "the Signal")).value as Message;
    const req = (await within(it.next(), 20_000, "the Request")).value as Message;
    const read = async (first: Message) => {
      const out: string[] = [];
      for await (using c of ch.chunks(first)) out.push(`${c.bhdr.opCode}:${c.body.text()}`);
      return out;
    };
    const { Response: R, Signal: S, Request: Q } = OpCode;
    assertEquals(await within(read(answer), 20_000, "the answer"), [`${R}:r1`, `${R}:r2`]);
    assertEquals(await within(read(signal), 20_000, "the Signal"), [`${S}:s1`, `${S}:s2`]);
    assertEquals(await within(read(req), 20_000, "the Request"), [`${Q}:q1`, `${Q}:q2`]);
    ch.abort(); // the raw peer would never answer a bye
    await ch.close();
    listener.close();
  });
}

/** A message with these fields, as a raw peer sends it. */
function chunk(op: number, body: string, id: bigint, more: 0 | 1): Message {
  const m = new Message();
  m.bhdr.opCode = op;
  m.bhdr.messageId = id;
  m.bhdr.more = more;
  if (body) m.body.set(body);
  return m;
}

Deno.test("connect(): a dial the engine refuses fails at once with its status and reason", async () => {
  const bogus = await within(
    expectTofuError(connect("bogus", { timeoutMs: 120_000 }), Status.invalidAddress),
    20_000,
    "connect(bogus)",
  );
  assertEquals(
    bogus.message,
    'Cannot parse address "bogus": the transport must be tcp, uds or isolate',
  );
  // A line break: the parser's reason, escaped (it was the header's TypeError, with the
  // raw break).
  const address = "tcp|127.0.0.1|1\nx";
  const bad = await within(
    expectTofuError(connect(address, { timeoutMs: 120_000 }), Status.invalidAddress),
    20_000,
    "connect() with a line break",
  );
  assertEquals(bad.message, 'Cannot parse address "tcp|127.0.0.1|1\\nx": it contains a line break');
});

for (const t of peerTransports) {
  Deno.test(`${t.name}: connect(): out of time after failed dials, it gives the last one's reason and error`, async () => {
    const [nobody, status] = t.nobody();
    const err = await within(
      expectTofuError(
        connect(nobody, { timeoutMs: 1500, reconnect: { initialDelayMs: 5, maxDelayMs: 20 } }),
        Status.connectFailed,
      ),
      20_000,
      "connect()",
    );
    const last = err.cause as TofuError;
    assertInstanceOf(last, TofuError);
    assertEquals(statusName(last.status), statusName(status));
    const prefix = `Cannot connect to ${nobody}: `;
    assert(last.message.startsWith(prefix), last.message);
    const why = last.message.slice(prefix.length);
    assertEquals(err.message, `${prefix}no answer within 1500 ms; the last attempt: ${why}`);
  });

  Deno.test(`${t.name}: connect(): aborted after failed dials, it says aborted and no more`, async () => {
    const [nobody] = t.nobody();
    const ac = new AbortController();
    const connecting = connect(nobody, {
      timeoutMs: 120_000,
      reconnect: { initialDelayMs: 60_000 },
      signal: ac.signal,
    });
    connecting.catch(() => {});
    await delay(100); // the first dial is refused; the pause of 30 s at least begins
    ac.abort();
    const err = await within(
      expectTofuError(connecting, Status.connectFailed),
      20_000,
      "connect()",
    );
    assertEquals(err.message, `Cannot connect to ${nobody}: aborted`);
  });
}
