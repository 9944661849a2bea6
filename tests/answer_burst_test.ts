// A burst of large answers to a peer that reads them all (found by the hostile-tester
// helper): answers were posted without waiting for room, so 200 concurrent requests with
// 60 kB answers filled the connection's 4 MiB queue faster than the socket drained; the next
// answer was refused, serve() took that for a peer that does not read and aborted it, and
// every request in flight failed (TCP: 135 of 200; UDS: 197; streamed answers: all 200).
// Answers now wait for room as sends do.

import { assertEquals } from "@std/assert";
import { connect, serve } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";

for (const t of ["tcp", "uds"]) {
  const address = () => t === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`;

  for (const streamed of [false, true]) {
    Deno.test(`${t}: 200 concurrent requests with 60 kB ${streamed ? "streamed " : ""}answers are all answered`, async () => {
      const body = new Uint8Array(60_000).fill(0x42);
      await using server = await serve(
        address(),
        () => streamed ? [body.subarray(0, 30_000), body.subarray(30_000)] : body,
      );
      await using ch = await connect(server.address);
      const sizes = await Promise.all(Array.from({ length: 200 }, async (_, k) => {
        const first = await ch.request(`q${k}`, { timeoutMs: 20_000 });
        let size = 0;
        for await (using c of ch.chunks(first, { timeoutMs: 20_000 })) size += c.body.byteLength;
        return size;
      }));
      assertEquals(sizes, new Array(200).fill(60_000));
      assertEquals(ch.isOpen, true);
    });
  }
}
