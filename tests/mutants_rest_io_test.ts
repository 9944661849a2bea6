// The reader of an I/O channel whose reads keep finding bytes (src/_io_channel.ts), written
// for the last survivor of that file (issue #13, docs/testing.md, "mut-rest: the last
// files"): the heartbeat check after a read.
//
// A Deno socket read always goes through the event loop's I/O poll, so over TCP and Unix
// sockets the timers run between reads whatever the reader does (tests/mutants_io2_test.ts
// measured it). An isolate pipe does not: its read completes at once, without a turn of the
// loop, whenever its ring holds bytes. A peer that wrote far more than one read takes (here
// a hand-driven peer that keeps the ring full, as a fast Worker could) gives a reader that never
// waits: without the check after each read it would chain microtasks through the whole
// ring, and every timer of the process would wait for it.

import { assert, assertEquals } from "@std/assert";
import { Engine, Message, OpCode, Status } from "../mod.ts";
import { encodeFrame } from "../src/codec.ts";
import { dialIsolate } from "../src/_transport_isolate.ts";
import { expect, expectClosed, isolateTransport, listen, recv } from "./_fixtures.ts";
import { frame } from "./_attack.ts";

Deno.test("isolate: a reader whose reads always find bytes lets a zero-delay timer run long before the peer's bytes are all read", async () => {
  const engine = new Engine();
  try {
    const server = await listen(engine, isolateTransport);
    const name = server.bound.split("|")[1]!;
    const pipe = await dialIsolate(name, 4 * 1024 * 1024);
    let ch = 0;
    try {
      let written = 0;
      for (const f = frame(OpCode.HelloRequest, "", 1n); written < f.length;) {
        written += await pipe.write(f.subarray(written));
      }
      const hello = expect(await recv(server.group), OpCode.HelloRequest, Status.success, "hello");
      ch = hello.bhdr.channelNumber;
      engine.put(hello);

      // 2,000 Signals of 65,535 bytes (about 131 MB) through a 4 MiB ring that the peer
      // keeps topped up: the application writes the next ones as it takes each Signal, in
      // the same microtasks as the reader, so every read finds bytes (16 KiB at first, then
      // up to 256 KiB: four Signals a read) and the reader never waits for its share.
      const count = 2000;
      const ring = 4 * 1024 * 1024;
      const m = new Message();
      m.bhdr.channelNumber = 9;
      m.bhdr.opCode = OpCode.Signal;
      m.body.set(new Uint8Array(65535));
      const f = encodeFrame(m);
      let sent = 0;
      // Bytes in the ring at most (the reader may have taken more than the Signals taken).
      const topUp = (taken: number) => {
        while (sent < count && (sent - taken + 1) * f.length <= ring) {
          f[16] = sent & 0xff;
          // The ring has room: the whole frame is copied in now, and the write resolves
          // without waiting.
          pipe.write(f).then((n) => assertEquals(n, f.length, "written at once"));
          sent++;
        }
      };
      topUp(0);

      // At the first Signal the application arms a zero-delay timer, and notes how many
      // Signals it had taken when the timer ran.
      let got = 0;
      let whenTimerRan = -1;
      const timerRan = Promise.withResolvers<void>();
      const take = (s: Message) => {
        expect(s, OpCode.Signal, Status.success, `Signal ${got}`);
        assertEquals([s.bhdr.channelNumber, s.body.byteLength], [ch, 65535]);
        assertEquals(s.body.bytes()[0], got & 0xff, "in order");
        engine.put(s);
        if (got++ === 0) {
          setTimeout(() => {
            whenTimerRan = got;
            timerRan.resolve();
          }, 0);
        }
      };
      while (got < count) {
        // Each wake-up takes every Signal delivered so far, then writes as many again.
        take(await recv(server.group, 60_000));
        for (let s = server.group.tryReceive(); s !== null; s = server.group.tryReceive()) take(s);
        topUp(got);
      }
      await timerRan.promise;
      assert(
        whenTimerRan < count,
        `the timer ran only after all ${count} Signals were read (at ${whenTimerRan})`,
      );
      assert(whenTimerRan >= 1);
    } finally {
      pipe.close();
    }
    // The channel ends on the pipe's close with its final report.
    const closed = await recv(server.group, 20_000);
    expectClosed(closed, ch);
    assertEquals(closed.error?.message, `Cannot use channel ${ch}: the peer closed the connection`);
    engine.put(closed);
  } finally {
    await engine[Symbol.asyncDispose]();
  }
});
