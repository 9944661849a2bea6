// A peer cannot make a channel keep streams without end: every `more` stream it opens and
// does not finish stays in the channel's table of streams (about 250 bytes each, measured)
// until its last chunk comes. Past MAX_OPEN_STREAMS unfinished streams the channel's
// connection is aborted with `invalid_more_usage`.

import { assert, assertEquals } from "@std/assert";
import { deadline } from "@std/async/deadline";
import { delay } from "@std/async/delay";
import {
  type Channel,
  connect,
  encodeFrame,
  Engine,
  listen,
  type Listener,
  MAX_OPEN_STREAMS,
  Message,
  OpCode,
  serve,
  Status,
} from "../mod.ts";
import { tempUdsPath } from "../testing.ts";
import { rawConnect, readToEnd, transports, writeAll } from "./_fixtures.ts";
import { rawListen, readFrames } from "./_raw_peer.ts";

/** Frames of `op` with ids `from`..`from + n - 1`, each with `more` as given, in one buffer. */
function frames(op: number, from: number, n: number, more: 0 | 1): Uint8Array {
  const m = new Message();
  const out = new Uint8Array(n * 16);
  for (let i = 0; i < n; i++) {
    m.bhdr.opCode = op;
    m.bhdr.messageId = BigInt(from + i);
    m.bhdr.more = more;
    out.set(encodeFrame(m), i * 16);
  }
  return out;
}

function address(t: { name: string }): string {
  return t.name === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`;
}

/** A raw socket that said Hello to `listener`, and the listener's channel for it. */
async function rawPeer(listener: Listener): Promise<{ conn: Deno.Conn; peer: Channel }> {
  const conn = await rawConnect(listener.address) as Deno.Conn;
  await writeAll(conn, frames(OpCode.HelloRequest, 1, 1, 0));
  const peer: Channel = (await listener[Symbol.asyncIterator]().next()).value;
  return { conn, peer };
}

for (const t of transports) {
  Deno.test(`${t.name}: a peer that opens streams without end loses its connection`, async () => {
    await using engine = new Engine();
    await using listener = await listen(address(t), { engine });
    const { conn, peer } = await rawPeer(listener);
    try {
      let heads = 0;
      const reading = (async () => {
        for await (using _req of peer) heads++;
      })();
      // Each Request opens a stream (more set) that never gets its last chunk.
      await writeAll(conn, frames(OpCode.Request, 2, MAX_OPEN_STREAMS + 10, 1));
      // Before: the channel stayed open and kept every stream (and read on without end).
      assertEquals(await deadline(peer.closed, 10_000), Status.invalidMoreUsage);
      await reading;
      assertEquals(heads, MAX_OPEN_STREAMS, "the streams within the limit were delivered");
    } finally {
      conn.close();
    }
  });

  Deno.test(`${t.name}: finished streams do not count toward MAX_OPEN_STREAMS`, async () => {
    await using engine = new Engine();
    await using listener = await listen(address(t), { engine });
    const { conn, peer } = await rawPeer(listener);
    try {
      // Three times the limit of streams, each a head and its last chunk.
      const count = 3 * MAX_OPEN_STREAMS;
      const streams = new Uint8Array(count * 32);
      for (let i = 0; i < count; i++) {
        streams.set(frames(OpCode.Request, 2 + i, 1, 1), i * 32);
        streams.set(frames(OpCode.Request, 2 + i, 1, 0), i * 32 + 16);
      }
      const writing = writeAll(conn, streams);
      let chunks = 0;
      // chunks() yields the head too: it is disposed there.
      for await (const head of peer) {
        for await (using _c of peer.chunks(head)) chunks++;
        if (chunks === 2 * count) break;
      }
      await writing;
      assertEquals(chunks, 2 * count);
      assert(peer.isOpen, "the channel is still open");
    } finally {
      conn.close();
    }
  });

  Deno.test(`${t.name}: serve() drops a client that opens streams its handler never reads`, async () => {
    await using engine = new Engine();
    // The handler answers at once and leaves the rest of each streamed request unread:
    // serve discards it, but each discarded stream stays until its last chunk.
    await using server = await serve(address(t), () => "ok", { engine });
    const conn = await rawConnect(server.address) as Deno.Conn;
    try {
      await writeAll(conn, frames(OpCode.HelloRequest, 1, 1, 0));
      await writeAll(conn, frames(OpCode.Request, 2, MAX_OPEN_STREAMS + 10, 1));
      // The server answers each request it took, then aborts the connection: the raw
      // peer reads the answers and then the end of the stream, within 10 s.
      const buf = new Uint8Array(1 << 16);
      let total = 0;
      for (;;) {
        const n = await deadline(conn.read(buf), 10_000).catch((err: unknown) => {
          if (err instanceof Deno.errors.ConnectionReset) return null;
          throw err;
        });
        if (n === null) break;
        total += n;
      }
      // The HelloResponse and at most one answer ("ok") per stream within the limit.
      assert(total <= 16 + 18 * MAX_OPEN_STREAMS, `${total} bytes`);
    } finally {
      conn.close();
    }
  });
}

for (const t of transports) {
  Deno.test(`${t.name}: last chunks repeated for a finished stream do not lift MAX_OPEN_STREAMS`, async () => {
    await using engine = new Engine();
    await using listener = await listen(address(t), { engine });
    const { conn, peer } = await rawPeer(listener);
    try {
      let first: Message | null = null;
      let heads = 0;
      const reading = (async () => {
        for await (const m of peer) {
          heads++;
          // The first stream's head is held (no chunks()): its finished stream stays known.
          if (first === null) first = m;
          else m[Symbol.dispose]();
        }
      })();
      // Stream 2, finished at once; then its last chunk 2,000 times more.
      await writeAll(conn, frames(OpCode.Request, 2, 1, 1));
      await writeAll(conn, frames(OpCode.Request, 2, 1, 0));
      const repeats = new Uint8Array(2000 * 16);
      for (let i = 0; i < 2000; i++) repeats.set(frames(OpCode.Request, 2, 1, 0), i * 16);
      await writeAll(conn, repeats);
      await writeAll(conn, frames(OpCode.Request, 10, MAX_OPEN_STREAMS + 10, 1));
      // Before: each repeat counted as the peer finishing a stream, so the count of open
      // streams went 2,000 below zero and the channel kept every stream.
      assertEquals(await deadline(peer.closed, 10_000), Status.invalidMoreUsage);
      await reading;
      // Stream 2 (finished, so not counted) and the MAX_OPEN_STREAMS unfinished ones.
      assertEquals(heads, 1 + MAX_OPEN_STREAMS);
      (first as Message | null)?.[Symbol.dispose]();
    } finally {
      conn.close();
    }
  });
}

/** Takes `n` messages from `it` and puts them back; fails if they do not come within 10 s. */
async function take(it: AsyncIterator<Message>, n: number): Promise<void> {
  await deadline(
    (async () => {
      for (let i = 0; i < n; i++) (await it.next()).value![Symbol.dispose]();
    })(),
    10_000,
  );
}

for (const t of transports) {
  Deno.test(`${t.name}: a re-dialling client counts the server's open streams per connection`, async () => {
    await using engine = new Engine();
    const { listener, bound } = rawListen(t);
    try {
      const dialled = connect(bound, { engine, reconnect: { initialDelayMs: 10 } });
      // Each connection: answer the Hello, then open streams and never finish them.
      const serveOnce = async (streams: number): Promise<Deno.Conn> => {
        const conn = await listener.accept();
        const [hello] = await readFrames(conn, 1);
        const id = Number(new DataView(hello!.buffer).getBigUint64(8) & 0xffff_ffffn);
        await writeAll(conn, frames(OpCode.HelloResponse, id, 1, 0));
        await writeAll(conn, frames(OpCode.Signal, 2, streams, 1));
        return conn;
      };
      const first = serveOnce(MAX_OPEN_STREAMS - 24);
      await using client = await dialled;
      const it = client[Symbol.asyncIterator]();
      await take(it, MAX_OPEN_STREAMS - 24);
      // The connection drops; what its streams left behind does not count on the next one.
      (await first).close();
      const second = await serveOnce(MAX_OPEN_STREAMS - 24);
      await take(it, MAX_OPEN_STREAMS - 24);
      assert(client.isOpen, "the client stayed connected");
      // Past the limit on one connection: it is aborted, and the client dials again.
      await writeAll(second, frames(OpCode.Signal, 100_000, 30, 1));
      const third = await serveOnce(1);
      assertEquals(await deadline(readToEnd(second), 10_000) >= 0, true);
      // The 24 heads within the limit, then the third connection's stream.
      const ids: bigint[] = [];
      while (ids.at(-1) !== 2n) {
        using m = (await deadline(it.next(), 10_000)).value!;
        ids.push(m.bhdr.messageId);
      }
      assertEquals(ids.length, 24 + 1);
      assert(client.isOpen, "the client re-dialled");
      second.close();
      third.close();
    } finally {
      listener.close();
    }
  });
}

for (const t of transports) {
  Deno.test(`${t.name}: a stream whose first message is put back unread does not stall the channel`, async () => {
    await using engine = new Engine();
    await using listener = await listen(address(t), { engine });
    const { conn, peer } = await rawPeer(listener);
    try {
      // A stream of 5,000 chunks (more than the channel's read share of 1,024), then a
      // plain Request. The application reads the channel and never calls chunks().
      const chunks = 5_000;
      const writing = (async () => {
        await writeAll(conn, frames(OpCode.Request, 2, 1, 1));
        for (let i = 0; i < chunks; i++) await writeAll(conn, frames(OpCode.Request, 2, 1, 1));
        await writeAll(conn, frames(OpCode.Request, 2, 1, 0));
        await writeAll(conn, frames(OpCode.Request, 3, 1, 0));
      })();
      const ids: bigint[] = [];
      const reading = (async () => {
        for await (using m of peer) {
          ids.push(m.bhdr.messageId);
          if (m.bhdr.messageId === 3n) break;
        }
      })();
      // Before: the unread chunks filled the share, the channel stopped reading, and the
      // Request after the stream never came. Now the stream is dropped once its first
      // message is back in the pool, and its chunks go back there as they come.
      await deadline(Promise.all([writing, reading]), 10_000);
      assertEquals(ids, [2n, 3n]);
      assert(peer.isOpen);
    } finally {
      conn.close();
    }
  });

  Deno.test(`${t.name}: a stream being read with chunks() is kept while the iterator moves on`, async () => {
    await using engine = new Engine();
    await using listener = await listen(address(t), { engine });
    const { conn, peer } = await rawPeer(listener);
    try {
      await writeAll(conn, frames(OpCode.Request, 2, 1, 1));
      const it = peer[Symbol.asyncIterator]();
      const head = (await it.next()).value!;
      // chunks() yields the first message and `using` puts it back at once; the stream is
      // still being read, so the iterator must leave it alone.
      const got: bigint[] = [];
      const reading = (async () => {
        for await (using c of peer.chunks(head, { timeoutMs: 5000 })) got.push(c.bhdr.messageId);
      })();
      await delay(20);
      await writeAll(conn, frames(OpCode.Request, 3, 1, 0));
      using next = (await deadline(it.next(), 5000)).value!;
      assertEquals(next.bhdr.messageId, 3n);
      for (let i = 0; i < 3; i++) await writeAll(conn, frames(OpCode.Request, 2, 1, 1));
      await writeAll(conn, frames(OpCode.Request, 2, 1, 0));
      await reading;
      assertEquals(got, [2n, 2n, 2n, 2n, 2n]);
    } finally {
      conn.close();
    }
  });

  Deno.test(`${t.name}: a stream whose first message is still held is kept for chunks()`, async () => {
    await using engine = new Engine();
    await using listener = await listen(address(t), { engine });
    const { conn, peer } = await rawPeer(listener);
    try {
      // The stream's first message and 3 more chunks, then a plain Request.
      for (let i = 0; i < 4; i++) await writeAll(conn, frames(OpCode.Request, 2, 1, 1));
      await writeAll(conn, frames(OpCode.Request, 3, 1, 0));
      const it = peer[Symbol.asyncIterator]();
      const head = (await it.next()).value!;
      // The next message is taken while the stream's first message is held: the stream
      // must still be there to read afterwards.
      using next = (await deadline(it.next(), 5000)).value!;
      assertEquals(next.bhdr.messageId, 3n);
      await writeAll(conn, frames(OpCode.Request, 2, 1, 0));
      let n = 0;
      for await (using _c of peer.chunks(head, { timeoutMs: 5000 })) n++;
      assertEquals(n, 1 + 3 + 1);
    } finally {
      conn.close();
    }
  });
}
