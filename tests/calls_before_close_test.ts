// Calls made before close() (found by the hostile-tester helper): send() and request() post
// only after an await (a wait for room at least), so close() posted its ByeRequest first and
// both were refused with an internal text ("Cannot wait for room on channel N: the channel
// is closing"); a fire-and-forget send() followed by close() lost its message. Now close()
// lets the calls already made go out first, and refuses later ones with the call's name.

import { assertEquals, assertRejects } from "@std/assert";
import { connect, serve, Status, TofuError } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";

for (const t of ["tcp", "uds"]) {
  Deno.test(`${t}: send() and request() made before close() go out before its bye`, async () => {
    const got: string[] = [];
    const address = t === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`;
    await using server = await serve(address, (req) => {
      got.push(req.body.text());
      return `answer to ${req.body.text()}`;
    });
    const ch = await connect(server.address);
    const asked = ch.request("the request", { timeoutMs: 5000 });
    const sent = ch.send("the signal");
    const streamed = ch.send(["a stream ", "of two"]);
    await ch.close();
    // Before: both rejected with "Cannot wait for room on channel N: the channel is closing
    // (ByeRequest already posted)", and the server received nothing.
    using answer = await asked;
    assertEquals(answer.body.text(), "answer to the request");
    await sent;
    await streamed;
    assertEquals(got.slice(0, 2), ["the request", "the signal"]);
    // Calls after close() are refused with the call's name.
    const late = await assertRejects(() => ch.send("late"), TofuError);
    assertEquals(late.status, Status.channelClosed);
    assertEquals(late.message, "Cannot send: the channel is closed");
  });

  Deno.test(`${t}: a call made while close() waits for earlier ones is refused as closing`, async () => {
    const address = t === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`;
    await using server = await serve(address, (req) => req.body.text());
    const ch = await connect(server.address);
    const sent = ch.send("before");
    const closing = ch.close();
    const err = await assertRejects(() => ch.request("during", { timeoutMs: 5000 }), TofuError);
    assertEquals(err.status, Status.channelClosed);
    assertEquals(err.message, "Cannot complete request: the channel is closing");
    await sent;
    await closing;
  });
}

// Found by the review helper: a second close() posted the bye at once, without waiting for
// the calls made before the first; and calls refused while close() waited came through
// microtasks only, so a loop retrying at once kept close() waiting for good.
Deno.test("a second close() waits for calls made before the first, and a retry loop lets close() happen", async () => {
  await using server = await serve("tcp|127.0.0.1|0", () => "ok");
  async function* slow() {
    yield "a";
    await new Promise((r) => setTimeout(r, 100));
    yield "b";
  }
  const ch = await connect(server.address);
  const sent = ch.send(slow()).then(() => "sent", (e: Error) => `refused: ${e.message}`);
  await Promise.all([ch.close(), ch.close()]);
  assertEquals(await sent, "sent");

  const ch2 = await connect(server.address);
  const streaming = ch2.send(slow());
  let closed = false;
  const closing = ch2.close().then(() => closed = true);
  let refusals = 0;
  while (!closed && refusals < 200_000) {
    await ch2.send("x").catch(() => refusals++);
  }
  assertEquals(closed, true, `${refusals} refusals and close() still waiting`);
  await streaming;
  await closing;
});
