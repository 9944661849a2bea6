// Listener.close() (and so Server.close()) with answers a peer has not read (found by the hostile-tester helper): the
// listener waited one second for each peer's bye, then destroyed its group, which dropped the
// answers still queued without handing them to onUnsent. Now the peers still there are
// aborted first, and what they did not write goes to onUnsent.

import { assertEquals } from "@std/assert";
import { encodeFrame, Engine, listen, Message, OpCode } from "../mod.ts";

for (const t of ["tcp", "uds"]) {
  Deno.test(`${t}: every answer a slow peer has not read by close() is written or handed to onUnsent`, async () => {
    await using engine = new Engine();
    let unsent = 0;
    const address = t === "tcp" ? "tcp|127.0.0.1|0" : `uds|${await Deno.makeTempDir()}/close.sock`;
    const listener = await listen(address, {
      engine,
      onUnsent: (m) => {
        unsent++;
        engine.put(m);
      },
    });
    // Answers each Request with 60 kB; counts the answers posted (respond() resolved: the
    // engine owns them). Those still waiting for room when the listener closes are not.
    let posted = 0;
    let read = 0;
    const body = new Uint8Array(60_000).fill(0x62);
    const serving = (async () => {
      for await (const peer of listener) {
        for await (const req of peer) {
          read++;
          peer.respond(req, body).then(() => posted++, () => {});
          engine.put(req);
        }
      }
    })();
    const [kind, a, b] = listener.address.split("|");
    const conn = kind === "tcp"
      ? await Deno.connect({ hostname: a!, port: Number(b) })
      : await Deno.connect({ transport: "unix", path: a! });
    // A raw peer: a HelloRequest and 200 Requests, then it reads nothing until later (12 MB
    // of answers: more than the socket buffers take).
    const m = new Message();
    m.bhdr.opCode = OpCode.HelloRequest;
    m.bhdr.messageId = 1n;
    const frames = [encodeFrame(m)];
    m.bhdr.opCode = OpCode.Request;
    m.body.set("x");
    for (let i = 0; i < 200; i++) {
      m.bhdr.messageId = BigInt(i + 2);
      frames.push(encodeFrame(m));
    }
    for (const f of frames) await conn.write(f);
    while (read < 200) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100)); // the answers that have room are posted
    const postedAtClose = posted;
    const closing = listener.close();
    // The peer reads everything only after the listener's grace (one second).
    await new Promise((r) => setTimeout(r, 1500));
    let bytes = 0;
    const buf = new Uint8Array(1 << 20);
    try {
      for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) bytes += n;
    } catch {
      // reset by the abort
    }
    await closing;
    await serving;
    conn.close();
    // Whole Responses the peer got (after the 16-byte HelloResponse).
    const received = Math.floor((bytes - 16) / (16 + 60_000));
    assertEquals(posted, postedAtClose, "nothing posted after the close began");
    // Before: those not written were not handed back (0 handed back).
    assertEquals(received + unsent, posted, `${received} received, ${unsent} handed back`);
    assertEquals(unsent > 0, true, "the peer did not read them all in time");
  });
}
