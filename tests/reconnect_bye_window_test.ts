// Calls on a re-dialing channel while the peer's bye is under way (found by the
// hostile-tester helper): they were refused at once ("the channel is closed") though the
// channel re-dials and would have answered them; and as that refusal took microtasks only,
// a loop retrying at once on failure never let the event loop turn, so the bye never ended
// and the process froze (a server restarting gracefully in the same process never closed).

import { assertEquals } from "@std/assert";
import { connect, encodeFrame, Engine, Message, OpCode } from "../mod.ts";
import { readToEnd } from "./_fixtures.ts";
import { frame } from "./_attack.ts";
import { readFrames } from "./_raw_peer.ts";

Deno.test("requests retried during the peer's bye wait for the re-dial and are answered", async () => {
  using l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  let drain!: () => void;
  const drained = new Promise<void>((r) => drain = r);
  const server = (async () => {
    const c1 = await l.accept();
    await readFrames(c1, 1); // HelloRequest
    await c1.write(frame(OpCode.HelloResponse));
    await new Promise((r) => setTimeout(r, 300)); // the client fills the socket (unread)
    await c1.write(frame(OpCode.ByeRequest, "", 9n));
    // The client's ByeResponse waits behind what it queued: its bye lasts until we read.
    await drained;
    await readToEnd(c1);
    c1.close();
    const c2 = await l.accept();
    await readFrames(c2, 1); // the re-dial's HelloRequest
    await c2.write(frame(OpCode.HelloResponse));
    const [req] = await readFrames(c2, 1);
    const m = new Message();
    m.bhdr.opCode = OpCode.Response;
    m.bhdr.messageId = new DataView(req!.buffer, req!.byteOffset).getBigUint64(4);
    m.body.set("answer on the new connection");
    await c2.write(encodeFrame(m));
    return c2;
  })();
  await using engine = new Engine({ maxQueuedBytes: 64 << 20 });
  const ch = await connect(`tcp|127.0.0.1|${port}`, { engine, reconnect: { initialDelayMs: 10 } });
  // 12 MB sent to a peer that does not read yet: far more than the socket buffers take.
  const filler = new Uint8Array(60_000);
  const sends = Array.from({ length: 200 }, () => ch.send(filler).catch(() => {}));
  while (ch.isOpen) await new Promise((r) => setTimeout(r, 5));
  // The peer's ByeRequest came; ours waits behind the queue.
  let refusals = 0;
  let answer = "";
  const asking = (async () => {
    while (answer === "" && refusals < 100_000) {
      try {
        using m = await ch.request("q", { timeoutMs: 10_000 });
        answer = m.body.text();
      } catch {
        refusals++;
      }
    }
  })();
  await new Promise((r) => setTimeout(r, 100));
  drain();
  await asking;
  await Promise.all(sends);
  // Before: 100,000 refusals ("Cannot complete request: the channel is closed"), all
  // before the event loop turned once.
  assertEquals([answer, refusals], ["answer on the new connection", 0]);
  ch.abort();
  await ch.closed;
  (await server).close();
});
