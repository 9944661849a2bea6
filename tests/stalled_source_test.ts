// A chunk source that stalls (found by the hostile-tester helper): request() and send() of a
// stream took their timeoutMs and signal for the waits for room, re-dials and the answer,
// not for the source's next chunk; a source that stopped after two chunks (a stuck upload)
// kept the call pending for good, and the peer's reader with a half stream.

import { assert, assertEquals, assertInstanceOf, assertRejects } from "@std/assert";
import { connect, serve, Status, TofuError } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";

for (const t of ["tcp", "uds"]) {
  Deno.test(`${t}: timeoutMs and signal bound a stalled chunk source; the source is closed, the peer told`, async () => {
    const peerSaw: string[] = [];
    const address = t === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`;
    await using server = await serve(address, async (req, ch) => {
      try {
        for await (using c of ch.chunks(req)) peerSaw.push(c.body.text());
      } catch (err) {
        peerSaw.push(`error: ${(err as TofuError).status}`);
        throw err;
      }
      return "done";
    });
    await using ch = await connect(server.address);
    // A source that gives three chunks and then never answers; return() is counted.
    let returns = 0;
    const stalls = (): AsyncIterableIterator<string> => {
      const chunks = ["first", "second", "third"];
      return {
        [Symbol.asyncIterator]() {
          return this;
        },
        next: () =>
          chunks.length > 0
            ? Promise.resolve({ done: false, value: chunks.shift()! })
            : new Promise(() => {}),
        return: () => {
          returns++;
          return Promise.resolve({ done: true, value: undefined });
        },
      };
    };
    const calls = [
      () => ch.request(stalls(), { timeoutMs: 300 }),
      () => ch.send(stalls(), { timeoutMs: 300 }),
      () => ch.request(stalls(), { signal: AbortSignal.timeout(300) }),
    ];
    for (const call of calls) {
      peerSaw.length = 0;
      const t0 = performance.now();
      // Before: still pending after 3 s (the test's own bound below).
      const err = await assertRejects(() =>
        Promise.race([
          call(),
          new Promise((_, reject) => setTimeout(() => reject(new Error("still pending")), 3000)),
        ])
      );
      assertInstanceOf(err, TofuError, (err as Error).message);
      assertEquals(err.status, Status.communicationFailed);
      assert(performance.now() - t0 < 2500);
      // The chunks that went out, then the failure: the peer's reader does not wait on.
      const until = Date.now() + 2000;
      while (!peerSaw.some((s) => s.startsWith("error")) && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assertEquals(peerSaw, ["first", "second", `error: ${Status.communicationFailed}`]);
    }
    // Each source was told it is not read on.
    assertEquals(returns, 3);
  });
}
