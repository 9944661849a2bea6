// Long-running use of the Peers layer: a re-dialling client channel whose connection drops
// while streamed answers it stopped reading are still arriving must not keep those streams
// for as long as it lives. tests/_review_peers_child.ts measures the heap after a full GC
// (it needs --expose-gc).

import { assert } from "@std/assert";
import { transports } from "./_fixtures.ts";
import { gcChild } from "./_gc_child.ts";

async function growthPerStream(transport: string): Promise<number> {
  return (await gcChild("./_review_peers_child.ts", transport)).bytesPerStream!;
}

// Measured over 4,000 abandoned streams after 4,000 (200 drops of 20 each). Before the fix:
// 279-437 bytes per stream (each stream the client stopped reading stayed in the channel's
// table of streams, under a key naming the dropped connection, for good). After: 34-49.
Deno.test("a re-dialling channel lets go of the unread streams of a dropped connection", async (s) => {
  const growth = await Promise.all(transports.map((t) => growthPerStream(t.name)));
  for (const [i, t] of transports.entries()) {
    await s.step(t.name, () => {
      assert(growth[i]! < 150, `${growth[i]!.toFixed(0)} bytes more per abandoned stream`);
    });
  }
});
