// The relay of serveWorkers passes what a peer sends to a Worker, and the Worker's answer
// back, as they are. Found by the hostile-tester helper, it changed them without a word: a
// streamed Request reached the Worker as its first chunk (and the client got a success
// answer computed from it), a streamed answer reached the client as its first chunk, a
// Signal reached the Worker's handler as a Request, and a text header that came twice
// arrived once.

import { assert, assertEquals } from "@std/assert";
import { connect, OpCode, serveWorkers, Status, TofuError } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";

const handler = new URL("./_relay_handler.ts", import.meta.url);

for (const address of ["tcp|127.0.0.1|0", "uds"]) {
  const name = address === "uds" ? "uds" : "tcp";
  Deno.test(`${name}: the relay passes streams, Signals and repeated headers on as they are`, async (t) => {
    await using server = await serveWorkers(
      address === "uds" ? `uds|${tempUdsPath()}` : address,
      handler,
      { workers: 1, mode: "relay" },
    );
    await using ch = await connect(server.address);

    await t.step("a streamed request reaches the Worker whole", async () => {
      using answer = await ch.request(["aaa", "bbb", "ccc"], {
        timeoutMs: 10_000,
        headers: { x: "1" },
      });
      // Before: {"op":0,"x":["1"],"body":"aaa"}.
      assertEquals(JSON.parse(answer.body.text()), {
        op: OpCode.Request,
        x: ["1"],
        body: "aaabbbccc",
      });
    });

    await t.step("a streamed answer reaches the client whole", async () => {
      const first = await ch.request("stream please", { timeoutMs: 10_000 });
      let body = "";
      for await (using c of ch.chunks(first, { timeoutMs: 10_000 })) body += c.body.text();
      // Before: "c0," alone, and no stream.
      assertEquals(body, Array.from({ length: 300 }, (_, i) => `c${i},`).join(""));
    });

    await t.step("a stream the Worker fails reaches the client as that failure", async () => {
      // The relay passes a stream on one chunk behind (it knows a chunk is not the last once
      // the next comes), so the failure may come before any chunk, or after "part,".
      const parts: string[] = [];
      const err = await (async () => {
        const first = await ch.request("fail midway", { timeoutMs: 10_000 });
        for await (using c of ch.chunks(first, { timeoutMs: 10_000 })) parts.push(c.body.text());
      })().then(() => null, (e: unknown) => e);
      assert(parts.length === 0 || parts.join("") === "part,", parts.join("|"));
      assert(err instanceof TofuError, String(err));
      assertEquals((err as TofuError).status, Status.processingFailed);
      assert(
        /^Cannot (complete request|read stream): the peer failed: the source broke$/.test(
          (err as TofuError).message,
        ),
        (err as TofuError).message,
      );
    });

    await t.step("a failed request reaches the client as that failure", async () => {
      const err = await ch.request("fail", { timeoutMs: 10_000 }).then(() => null, (e) => e);
      assert(err instanceof TofuError, String(err));
      // Before the relay passed failures on as they are: "...the peer failed: Cannot
      // complete request: the peer failed: the handler broke".
      assertEquals(
        [(err as TofuError).status, (err as TofuError).message],
        [Status.processingFailed, "Cannot complete request: the peer failed: the handler broke"],
      );
    });

    await t.step("Signals reach the Worker as Signals", async () => {
      await ch.send("one");
      await ch.send("two");
      // The Worker's channel is one connection: the Signals are in before this Request.
      using answer = await ch.request("signals?", { timeoutMs: 10_000 });
      // Before: the Worker's handler got them as Requests, and saw no Signal.
      assertEquals(answer.body.text(), "one,two");
    });

    await t.step("a streamed Signal reaches the Worker whole, with its headers", async () => {
      await ch.send(["stre", "amed"], { headers: { trace: "B" } });
      // The Worker's handler records it once it has read its chunks: ask until it has.
      let seen = "";
      for (let i = 0; i < 100 && !seen.includes("streamed"); i++) {
        using answer = await ch.request("signals?", { timeoutMs: 10_000 });
        seen = answer.body.text();
        await new Promise((r) => setTimeout(r, 20));
      }
      // Before: "streamed" without its header (found by the hostile-tester helper).
      assertEquals(seen, "one,two,streamed[B]");
    });

    await t.step("a header that comes twice arrives twice", async () => {
      const m = ch.engine.get("always");
      m.headers.append("x", "1");
      m.headers.append("x", "2");
      m.body.set("hi");
      using answer = await ch.request(m, { timeoutMs: 10_000 });
      // Before: ["2"].
      assertEquals(JSON.parse(answer.body.text()).x, ["1", "2"]);
    });
  });
}

Deno.test("serveWorkers: a second close() returns once the first has closed the server", async () => {
  const server = await serveWorkers(`uds|${tempUdsPath()}`, handler, { workers: 1, mode: "relay" });
  let firstDone = false;
  const first = server.close().then(() => firstDone = true);
  await server.close();
  // Before: the second call returned at once, while the first still stopped the Worker.
  assert(firstDone, "the second close() returned before the first was done");
  await first;
});
