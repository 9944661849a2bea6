// A connection's read buffer grows to 256 KiB for a frame over 16 KiB. It stayed that size
// for as long as the connection lasted: peers that each sent one 60 kB Request and then
// went quiet held ~180-220 KiB each (1,500 such peers: +261 MiB; idleTimeoutMs is off by
// default). Found by the hostile-tester helper. Now the decoder goes back to its first
// 16 KiB buffer whenever it runs empty, and the grown one waits, with a few others, for the
// next decoder that needs one.

import { assert } from "@std/assert";
import { transports } from "./_fixtures.ts";
import { gcChild } from "./_gc_child.ts";

for (const t of transports) {
  Deno.test(`${t.name}: 200 peers quiet after one 60 kB Request hold little memory`, async () => {
    const perPeer = (await gcChild("./_idle_after_big_child.ts", t.name, "200")).perPeer ?? NaN;
    // Before: about 262,000 bytes per peer (a 256 KiB buffer each).
    assert(perPeer < 64 * 1024, `${Math.round(perPeer)} bytes of external memory per peer`);
  });
}
