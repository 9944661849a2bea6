// What a serve() handler returns for a message that is not a Request (found by the
// hostile-tester helper): an echo handler `(req) => req` kept every Signal it returned, so
// each held the peer's read share for good, and after maxChannelHeldMsgs of them the engine
// stopped reading that peer; its next Request was never answered.

import { assertEquals } from "@std/assert";
import { connect, Engine, serve } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";

for (const t of ["tcp", "uds"]) {
  Deno.test(`${t}: a handler that returns the Signal it got gives it back; the peer is read on`, async () => {
    await using engine = new Engine({ maxChannelHeldMsgs: 64 });
    let calls = 0;
    const address = t === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`;
    await using server = await serve(address, (req) => {
      calls++;
      return req;
    }, { engine });
    await using ch = await connect(server.address);
    for (let i = 0; i < 200; i++) await ch.send(`signal ${i}`);
    // Before: "Cannot complete request: no answer within 5000 ms".
    using answer = await ch.request("ping", { timeoutMs: 5000 });
    assertEquals(answer.body.text(), "ping");
    assertEquals(calls, 201);
  });
}

Deno.test("a ReadableStream a handler returns but that is not sent is cancelled", async () => {
  // Nothing answers a Signal: the stream returned for it is let go of (found by the review
  // helper: only iterators were closed, and a returned file's stream stayed open).
  let cancelled = 0;
  await using server = await serve("tcp|127.0.0.1|0", () =>
    new ReadableStream<Uint8Array>({
      cancel() {
        cancelled++;
      },
    }));
  await using ch = await connect(server.address);
  await ch.send("a Signal");
  for (let i = 0; i < 100 && cancelled === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assertEquals(cancelled, 1);
});
