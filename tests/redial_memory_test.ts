// A client channel that keeps re-dialling a peer that is not there (reconnect with no
// attempt limit) must hold no more memory after thousands of attempts than after a few
// hundred: each attempt's pause and handshake wait must let go of what they raced; and so
// must each call that gave up waiting for the channel to open again.
// tests/_redial_memory_child.ts measures the heap after a full GC (it needs --expose-gc).

import { assert } from "@std/assert";
import { transports } from "./_fixtures.ts";
import { gcChild } from "./_gc_child.ts";

async function growthPerAttempt(transport: string, path: string): Promise<number> {
  return (await gcChild("./_redial_memory_child.ts", transport, path)).bytesPerAttempt!;
}

// Measured after 1,000 attempts (the code is compiled by then), over 1,000 more. Before the
// fix: 3.9-4.5 KB per attempt on the first dial (every attempt's race with the one handshake
// deadline stayed attached to it, holding its rejection), 390-400 bytes per re-dial after a
// drop (every pause's race with the end of the channel's group), 2,440 bytes per request() or
// send() that gave up waiting for a dropped channel to open again (each left a reaction on the
// channel's one "open again" promise, holding its error). After: 46-94 bytes, falling to 34
// over 3,000 attempts (what is left is Deno's timers and the end of compilation).
Deno.test("dialling forever holds no more memory per attempt", async (s) => {
  const cases = transports.flatMap((t) => [
    { t: t.name, path: "open", what: "connect() to nobody, re-dialling within one deadline" },
    { t: t.name, path: "redial", what: "a dropped channel re-dialling" },
    { t: t.name, path: "waiting", what: "request() and send() giving up on a dropped channel" },
  ]);
  // In parallel: an attempt mostly waits for its 4 ms pause.
  const growth = await Promise.all(cases.map((c) => growthPerAttempt(c.t, c.path)));
  for (const [i, c] of cases.entries()) {
    await s.step(`${c.t}: ${c.what}`, () => {
      assert(growth[i]! < 200, `${growth[i]!.toFixed(0)} bytes more per attempt`);
    });
  }
});

// A send() that gave up waiting for room on a channel whose peer never reads left its wait
// (and its error) with the channel until room came or the channel closed: 2,690 bytes per
// call before the fix, 21-27 after.
Deno.test("sends that give up on a full channel hold no more memory per call", async (s) => {
  const growth = await Promise.all(transports.map((t) => growthPerAttempt(t.name, "full")));
  for (const [i, t] of transports.entries()) {
    await s.step(`${t.name}: send() with a 1 ms timeout, again and again`, () => {
      assert(growth[i]! < 200, `${growth[i]!.toFixed(0)} bytes more per call`);
    });
  }
});
