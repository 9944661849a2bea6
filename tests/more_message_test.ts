// A Message with `more` set passed as a body (found by the hostile-tester helper): send,
// request and respond cleared `more` and sent it as a whole message, so the proxy pattern
// serve(addr, (req) => backend.request(req)) in front of a streamed answer gave its client
// the first chunk as a complete answer, and the rest of the stream was dropped without a
// word. Now such a message is refused with invalid_more_usage.

import { assertEquals, assertMatch, assertRejects } from "@std/assert";
import { connect, OpCode, serve, Status, TofuError } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";

for (const t of ["tcp", "uds"]) {
  const address = () => t === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`;

  Deno.test(`${t}: a proxy that returns a streamed answer as its reply fails loudly, not truncated`, async () => {
    await using backend = await serve(address(), (req) => {
      if (req.body.text() === "one") return "single";
      return ["part 1 ", "part 2 ", "part 3"];
    });
    await using toBackend = await connect(backend.address);
    await using proxy = await serve(address(), (req) => toBackend.request(req));
    await using ch = await connect(proxy.address);
    // Before: the answer was "part 1 " with more clear, as if complete.
    const err = await assertRejects(() => ch.request("stream", { timeoutMs: 5000 }), TofuError);
    assertEquals(err.status, Status.invalidMoreUsage);
    assertMatch(err.message, /the message has more set \(the first chunk of a stream\)/);
    // The rest of the backend's stream was dropped: the proxy's channel to it reads on.
    using single = await ch.request("one", { timeoutMs: 5000 });
    assertEquals(single.body.text(), "single");
  });

  Deno.test(`${t}: send() of a hand-made message with more set is refused; the message stays the caller's`, async () => {
    const got: string[] = [];
    await using server = await serve(address(), (req) => {
      got.push(req.body.text());
    });
    await using ch = await connect(server.address);
    const m = ch.engine.get("always");
    m.bhdr.more = 1;
    m.body.set("part");
    const err = await assertRejects(() => ch.send(m), TofuError);
    assertEquals(err.status, Status.invalidMoreUsage);
    assertMatch(err.message, /^Cannot send: the message has more set/);
    // Still the caller's: it can be fixed and sent.
    m.bhdr.more = 0;
    await ch.send(m);
    using answer = await ch.request("after", { timeoutMs: 5000 });
    assertEquals(answer.bhdr.opCode, OpCode.Response);
    assertEquals(got, ["part", "after"]);
  });
}
