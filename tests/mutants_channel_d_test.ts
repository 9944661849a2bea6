// Tests that kill mutants of src/channel.ts from line 906 on (#send: the wording of a refused
// `more` message, and closing a chunk source) that the other Peers tests let survive (the
// mutation-testing helper, session of 2026-11-23), over real sockets, TCP and Unix sockets
// alike.

import { assertEquals, assertMatch, assertRejects } from "@std/assert";
import { Status, TofuError } from "../mod.ts";
import { expectTofuError, peerTransports, within } from "./_peer_fixtures.ts";
import { nextOf, pair } from "./_peer_pair.ts";

for (const t of peerTransports) {
  // Mutants: `op === OpCode.Response ? "respond" : "send"` -> `false ? ...`, and
  // "respond" -> "" (only send()'s wording was checked).
  Deno.test(`${t.name}: Channel: respond() with a message that has more set says "respond"`, async () => {
    await using p = await pair(t);
    const asking = p.client.request("q", { timeoutMs: 20_000 });
    asking.catch(() => {}); // rejected at the close, should an assertion fail first
    using req = await nextOf(p.peer);
    using first = p.peer.engine.get("always");
    first.bhdr.more = 1;
    first.body.set("part");
    const err = await assertRejects(() => p.peer.respond(req, first), TofuError);
    assertEquals(err.status, Status.invalidMoreUsage);
    assertMatch(err.message, /^Cannot respond: the message has more set/);
    await p.peer.respond(req, "whole");
    using answer = await within(asking, 20_000, "the answer");
    assertEquals(answer.body.text(), "whole");
  });

  // Mutant: `source.return?.()` -> `source.return()`: a source without return() that fails
  // had its error replaced by a TypeError of the channel's own.
  Deno.test(`${t.name}: Channel: send() passes on the error of a chunk source that has no return()`, async () => {
    await using p = await pair(t);
    let calls = 0;
    const source: AsyncIterable<string> = {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          calls++;
          return calls === 1
            ? Promise.resolve({ done: false, value: "a" })
            : Promise.reject(new Error("the source broke"));
        },
      }),
    };
    const err = await assertRejects(() => p.client.send(source), Error);
    assertEquals(err.message, "the source broke");
    // The channel works on.
    await p.client.send("after");
    using m = await nextOf(p.peer);
    assertEquals(m.body.text(), "after");
  });

  // Mutants: `finished = true` -> `finished = false` once the source is done, and
  // `if (!finished)` -> `if (true)` before `source.return?.()`: a source that said done had
  // its return() called when the last chunk could not go out.
  Deno.test(`${t.name}: Channel: a finished chunk source is not closed again when its last chunk fails`, async () => {
    await using p = await pair(t);
    let nexts = 0;
    let returns = 0;
    const source: AsyncIterable<string> = {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          nexts++;
          if (nexts === 1) return Promise.resolve({ done: false, value: "a" });
          // The last chunk ("a", held back until the source ends) cannot go out.
          p.client.abort();
          return Promise.resolve({ done: true, value: undefined });
        },
        return: () => {
          returns++;
          return Promise.resolve({ done: true, value: undefined });
        },
      }),
    };
    await expectTofuError(p.client.send(source), Status.channelClosed, "the channel is closing");
    assertEquals(nexts, 2);
    assertEquals(returns, 0, "return() of a source that said done");
  });
}
