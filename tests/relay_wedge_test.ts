// Messages the serveWorkers relay got from a Worker and never let go of (found by the
// hostile-tester helper): Signals a Worker's handler sends to its peer (the relay) stayed
// unread on the relay's channel to that Worker, and a streamed answer whose client had left
// was neither read nor dropped. Either filled that channel's read share, and the relay then
// stopped reading the Worker: every later request through it went unanswered.

import { assertEquals } from "@std/assert";
import { connect, serveWorkers, TofuError } from "../mod.ts";

const handler = new URL("./_relay_wedge_handler.ts", import.meta.url);

Deno.test("relay: Signals a Worker's handler sends do not stop the relay reading it", async () => {
  await using server = await serveWorkers("tcp|127.0.0.1|0", handler, {
    workers: 1,
    mode: "relay",
  });
  await using ch = await connect(server.address);
  // More than the relay's share of 1,024, 100 at a time. Before: the 1,024th failed with
  // "no answer within 5000 ms".
  for (let i = 0; i < 1100; i += 100) {
    const answers = await Promise.all(
      Array.from({ length: 100 }, () => ch.request("notify", { timeoutMs: 5000 })),
    );
    for (const a of answers) {
      assertEquals(a.body.text(), "done");
      ch.engine.put(a);
    }
  }
});

Deno.test("relay: a streamed answer whose client left is dropped, and the Worker is read on", async () => {
  await using server = await serveWorkers("tcp|127.0.0.1|0", handler, {
    workers: 1,
    mode: "relay",
  });
  const leaver = await connect(server.address);
  const asked = leaver.request("late stream").catch(() => "gone");
  await new Promise((r) => setTimeout(r, 50));
  leaver.abort(); // gone before the answer
  await leaver.closed;
  assertEquals(await asked, "gone");
  await new Promise((r) => setTimeout(r, 1000)); // the Worker streams its answer to the relay
  await using ch = await connect(server.address);
  // Before: "no answer within 5000 ms".
  using answer = await ch.request("ping", { timeoutMs: 5000 });
  assertEquals(answer.body.text(), "pong");
});

Deno.test("relay: a Worker channel that closes while its Worker lives is dialed again", async () => {
  await using server = await serveWorkers("tcp|127.0.0.1|0", handler, {
    workers: 1,
    mode: "relay",
  });
  await using ch = await connect(server.address);
  const dropped = await ch.request("drop the relay", { timeoutMs: 5000 }).then(
    () => "answered",
    () => "failed",
  );
  assertEquals(dropped, "failed");
  // Before: "the channel is closed" for every later request, for good.
  let answer = "";
  for (let i = 0; i < 50 && answer === ""; i++) {
    answer = await ch.request("ping", { timeoutMs: 5000 }).then((m) => {
      using a = m;
      return a.body.text();
    }, () => "");
    if (answer === "") await new Promise((r) => setTimeout(r, 100));
  }
  assertEquals(answer, "pong");
});

Deno.test("relay: once its only Worker has died, requests fail at once (no re-dial to a dead Worker)", async () => {
  await using server = await serveWorkers("tcp|127.0.0.1|0", handler, {
    workers: 1,
    mode: "relay",
  });
  await using ch = await connect(server.address);
  using dying = await ch.request("die", { timeoutMs: 5000 });
  assertEquals(dying.body.text(), "dying");
  await new Promise((r) => setTimeout(r, 500)); // the Worker ends
  const t0 = performance.now();
  // Before (with the re-dial of the previous test): the request waited for a connection to
  // the dead Worker until its own timeout (found by the review helper).
  const err = await ch.request("ping", { timeoutMs: 5000 }).then(() => null, (e: Error) => e);
  assertEquals(err instanceof TofuError, true, String(err));
  assertEquals(performance.now() - t0 < 2000, true, "failed at once");
});
