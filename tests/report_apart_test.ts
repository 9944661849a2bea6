// An abort hands back the unsent messages with status channel_closed, then the engine's own
// final Signal channel_closed: an application Signal handed back has the same opcode, origin
// and status as that report. msg.isReport() tells them apart (the Peers layer relies on it).

import { assert, assertEquals } from "@std/assert";
import { Engine, type Message, OpCode, Status } from "../mod.ts";
import { recv, transports } from "./_fixtures.ts";
import { rawServed } from "./_raw_peer.ts";

for (const t of transports) {
  Deno.test(`${t.name}: after an abort, only the engine's final channel_closed Signal is a report`, async () => {
    await using engine = new Engine({ maxQueuedBytes: 64 << 20 });
    const { client, ch, conn, listener } = await rawServed(engine, t);
    // The peer reads nothing: most of 200 Signals of 60,000 bytes stay queued.
    for (let i = 0; i < 200; i++) {
      const m = engine.get("always");
      m.bhdr.opCode = OpCode.Signal;
      m.bhdr.channelNumber = ch;
      m.body.set(new Uint8Array(60_000));
      client.post(m);
    }
    const abort = engine.get("always");
    abort.bhdr.opCode = OpCode.ByeSignal;
    abort.bhdr.channelNumber = ch;
    abort.bhdr.internalA = 1;
    client.post(abort);
    const seen: { op: number; status: number; report: boolean; size: number }[] = [];
    let last: Message;
    do {
      last = await recv(client, 10_000);
      seen.push({
        op: last.bhdr.opCode,
        status: last.bhdr.status,
        report: last.isReport(),
        size: last.body.byteLength,
      });
      engine.put(last);
    } while (!seen.at(-1)!.report);
    conn.close();
    listener.close();
    // The ByeSignal, the unsent Signals, then the report: every one with channel_closed.
    assertEquals(seen[0], {
      op: OpCode.ByeSignal,
      status: Status.channelClosed,
      report: false,
      size: 0,
    });
    const signals = seen.slice(1, -1);
    assert(signals.length > 0, "no Signal handed back");
    for (const s of signals) {
      assertEquals(s, {
        op: OpCode.Signal,
        status: Status.channelClosed,
        report: false,
        size: 60_000,
      });
    }
    assertEquals(seen.at(-1), {
      op: OpCode.Signal,
      status: Status.channelClosed,
      report: true,
      size: 0,
    });
    // Nothing after the report; a copy of a report, and a pool message, are not reports.
    assertEquals(await client.waitReceive(100), null);
    assert(!engine.get("always").isReport());
  });
}

Deno.test("isReport(): a message the application made, or a clone, is not a report", async () => {
  await using engine = new Engine();
  const m = engine.get("always");
  assertEquals(m.isReport(), false);
  assertEquals(m.clone().isReport(), false);
});
