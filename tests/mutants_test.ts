// Tests written to kill mutants that survived the rest of the suite (issue #13). Each one
// fails with its mutation applied to src/ and passes without it; the mutation is named
// above each test.

import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  Engine,
  type Message,
  OpCode,
  opCodeName,
  Status,
  statusName,
  TcpClientAddress,
  TofuError,
  UdsClientAddress,
} from "../mod.ts";
import { tempUdsPath } from "../testing.ts";
import {
  assertQuiet,
  connect,
  expect,
  expectClosed,
  listen,
  make,
  makeAbort,
  recv,
  transports,
} from "./_fixtures.ts";

/** A plain socket listener (no tofu engine behind it) and the client address that reaches it. */
function rawListener(
  transport: "tcp" | "uds",
): { listener: Deno.Listener; address: TcpClientAddress | UdsClientAddress } {
  if (transport === "tcp") {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    return { listener, address: new TcpClientAddress("127.0.0.1", port) };
  }
  const path = tempUdsPath();
  return {
    listener: Deno.listen({ transport: "unix", path }),
    address: new UdsClientAddress(path),
  };
}

/** Reads `count` whole frames from `conn`; returns each frame's bytes. */
async function readFrames(conn: Deno.Conn, count: number): Promise<Uint8Array[]> {
  const frames: Uint8Array[] = [];
  let buf = new Uint8Array(0);
  const chunk = new Uint8Array(65536);
  while (frames.length < count) {
    if (buf.length >= 16) {
      const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      const size = 16 + view.getUint16(12) + view.getUint16(14);
      if (buf.length >= size) {
        frames.push(buf.slice(0, size));
        buf = buf.slice(size);
        continue;
      }
    }
    const n = await conn.read(chunk);
    if (n === null) throw new Error(`the connection ended after ${frames.length} frames`);
    const next = new Uint8Array(buf.length + n);
    next.set(buf);
    next.set(chunk.subarray(0, n), buf.length);
    buf = next;
  }
  return frames;
}

// Mutation: the outbound proto mask in IoChannel widened from 0x3f to 0x7f (internalA
// sent) or to 0xbf (internalB sent). A tofu peer clears both bits on receipt, so only
// the raw bytes show the leak.
for (const t of transports) {
  Deno.test(`${t.name}: internalA and internalB never reach the wire (raw bytes)`, async () => {
    const { listener, address } = rawListener(t.name);
    try {
      await using engine = new Engine();
      const group = engine.create();
      const hello = address.format(engine.get("always")!);
      hello.bhdr.internalB = 1;
      const { channelNumber: ch } = group.post(hello);
      const plain = make(engine, ch, OpCode.Request, "plain");
      plain.bhdr.internalB = 1;
      group.post(plain);
      const signal = make(engine, ch, OpCode.Signal, "flagB");
      signal.bhdr.internalB = 1;
      group.post(signal);
      const urgent = make(engine, ch, OpCode.Signal, "urgent");
      urgent.bhdr.internalA = 1;
      group.post(urgent);
      const both = make(engine, ch, OpCode.Request, "urgentB");
      both.bhdr.internalA = 1;
      both.bhdr.internalB = 1;
      group.post(both);
      const bye = make(engine, ch, OpCode.ByeRequest);
      bye.bhdr.internalB = 1;
      group.post(bye);

      const conn = await listener.accept();
      try {
        const frames = await readFrames(conn, 6);
        const decoder = new TextDecoder();
        const seen = frames.map((f) => {
          const bl = (f[14]! << 8) | f[15]!;
          return [f[2]!, decoder.decode(f.subarray(f.length - bl))];
        });
        // Urgent messages jump the queue, after the HelloRequest, in their posting order.
        assertEquals(seen, [
          [0x03, ""],
          [0x02, "urgent"],
          [0x00, "urgentB"],
          [0x00, "plain"],
          [0x02, "flagB"],
          [0x05, ""],
        ]);
      } finally {
        conn.close();
      }
      // The peer left without answering: the channel ends with one channel_closed.
      for (;;) {
        const m = await recv(group);
        if (m.bhdr.opCode === OpCode.Signal && m.bhdr.status === Status.channelClosed) {
          expectClosed(m, ch);
          break;
        }
        engine.put(m);
      }
    } finally {
      listener.close();
    }
  });
}

// Mutation: no closed-guard at the top of IoChannel.close(). A ByeSignal whose write is
// under way when the application aborts closes the channel twice: once for the abort and
// once when the write completes, and without the guard each close reports channel_closed.
for (const t of transports) {
  Deno.test(`${t.name}: a ByeSignal being written, then an abort: exactly one channel_closed`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    let raced = 0;
    for (let trial = 0; trial < 10; trial++) {
      const link = await connect(engine, t, server);
      link.client.post(make(engine, link.clientCh, OpCode.ByeSignal));
      // Let the flush start its write (1 or 2 microtask turns; by 3 the write has finished).
      for (let i = 0; i <= trial % 2; i++) await Promise.resolve();
      const abort = makeAbort(engine, link.clientCh);
      try {
        link.client.post(abort);
        raced++;
      } catch (err) {
        // The write finished first and closed the channel: nothing to race this time.
        assertEquals((err as TofuError).status, Status.invalidChannelNumber);
        engine.put(abort);
      }
      let closed = 0;
      for (;;) {
        const m = await recv(link.client);
        assertEquals(m.bhdr.channelNumber, link.clientCh);
        assert(m.isFromEngine(), `trial ${trial}: op ${m.bhdr.opCode} from the peer`);
        const last = m.bhdr.opCode === OpCode.Signal && m.bhdr.status === Status.channelClosed;
        engine.put(m);
        if (last) {
          closed++;
          break;
        }
      }
      // Both closes report at once; anything after the final report is a second one.
      const extra = await link.client.waitReceive(30);
      assertEquals(
        extra === null ? null : [extra.bhdr.opCode, statusName(extra.bhdr.status)],
        null,
        `trial ${trial}: a report after channel_closed`,
      );
      assertEquals(closed, 1);
      // The server side ends too (the ByeSignal arrived, or the connection dropped), once.
      for (;;) {
        const m = await recv(server.group);
        assertEquals(m.bhdr.channelNumber, link.serverCh);
        const last = m.bhdr.opCode === OpCode.Signal && m.bhdr.status === Status.channelClosed;
        engine.put(m);
        if (last) break;
      }
      await engine.destroy(link.client);
    }
    assert(raced > 0, "the abort never met a write under way");
    await assertQuiet(server.group, 30);
  });
}

// Mutation: the accept loop returns instead of continuing after refusing a connection
// because every channel number is in use. The listener must keep serving.
for (const t of transports) {
  Deno.test(`${t.name}: a listener keeps accepting after a maxChannels refusal`, async () => {
    await using serverEngine = new Engine({ maxChannels: 2 });
    await using clientEngine = new Engine();
    const server = await listen(serverEngine, t); // number 1 of 2
    const first = await connect(clientEngine, t, server); // accepted: number 2 of 2

    // A second connection needs a third number: refused, reported on the listener.
    const refused = clientEngine.create();
    const { channelNumber: refusedCh } = refused.post(
      t.connectTo(server.bound).format(clientEngine.get("always")!),
    );
    const s = expect(await recv(server.group), OpCode.Signal, Status.allocationFailed);
    assertEquals(s.bhdr.channelNumber, server.channel);
    serverEngine.put(s);
    for (;;) {
      const m = await recv(refused);
      assertEquals(m.bhdr.channelNumber, refusedCh);
      const last = m.bhdr.opCode === OpCode.Signal;
      if (last) expectClosed(m, refusedCh);
      clientEngine.put(m);
      if (last) break;
    }

    // Free a number: the first client aborts and the server's channel closes.
    first.client.post(makeAbort(clientEngine, first.clientCh));
    expectClosed(await recv(server.group), first.serverCh);

    // A new connection is served on the freed number.
    const again = await connect(clientEngine, t, server);
    again.client.post(make(clientEngine, again.clientCh, OpCode.Signal, "served"));
    const got = expect(await recv(server.group), OpCode.Signal, Status.success);
    assertEquals(got.body.text(), "served");
    assertEquals(got.bhdr.channelNumber, again.serverCh);
    serverEngine.put(got);
  });
}

// Mutation: the channel check in validateForPost accepting 65535 (`ch > 65535`). The
// engine would then look the channel up and refuse it for another reason, after giving
// the message an id; the range check refuses it before any preparation.
for (const t of transports) {
  Deno.test(`${t.name}: posting on channel 65535 is refused with invalid_channel_number`, async () => {
    await using engine = new Engine();
    const server = await listen(engine, t);
    const link = await connect(engine, t, server);
    for (const op of [OpCode.Request, OpCode.Signal, OpCode.ByeRequest]) {
      const m: Message = make(engine, 65535, op, "to nowhere");
      const err = assertThrows(() => link.client.post(m), TofuError);
      assertEquals(statusName(err.status), statusName(Status.invalidChannelNumber));
      assertEquals(err.message, `Cannot post ${opCodeName(op)}: channel 65535 is not 1..65534`);
      assertEquals(statusName(m.bhdr.status), statusName(Status.invalidChannelNumber));
      assertEquals(m.bhdr.messageId, 0n, "refused before the message got an id");
      // The refused message stays with the caller: aimed at the open channel, it goes out.
      m.bhdr.channelNumber = link.clientCh;
      link.client.post(m);
      const got = expect(await recv(server.group), op, Status.success);
      assertEquals(got.body.text(), "to nowhere");
      if (op === OpCode.ByeRequest) {
        got.bhdr.opCode = OpCode.ByeResponse;
        server.group.post(got);
      } else engine.put(got);
    }
    expect(await recv(link.client), OpCode.ByeResponse, Status.success);
    expectClosed(await recv(link.client), link.clientCh);
    expectClosed(await recv(server.group), link.serverCh);
  });
}
