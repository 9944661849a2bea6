// request() posted at once, whatever was queued on the channel: 200 concurrent requests of
// 60 kB on one channel, more than its send budget (maxQueuedBytes, 4 MiB) holds, had 131
// of them refused at once with allocation_failed, while send() waits for room. The relay
// of serveWorkers forwards with request() over one channel per Worker, so it refused
// moderate load that a direct server answered (the hostile-tester helper: 72 of 200).
// Now request() waits for room like send(), within its timeout.

import { assertEquals } from "@std/assert";
import { connect, serve, statusName, type TofuError } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";

for (const t of ["tcp", "uds"]) {
  Deno.test(`${t}: 200 concurrent 60 kB requests on one channel are all answered`, async () => {
    await using server = await serve(
      t === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`,
      (req) => String(req.body.bytes().length),
    );
    await using ch = await connect(server.address);
    const outcomes: Record<string, number> = {};
    await Promise.all(Array.from({ length: 200 }, async () => {
      const key = await ch.request(new Uint8Array(60_000), { timeoutMs: 20_000 }).then(
        (m) => {
          using answer = m;
          return answer.body.text();
        },
        (e: TofuError) => `${statusName(e.status)}: ${e.message}`,
      );
      outcomes[key] = (outcomes[key] ?? 0) + 1;
    }));
    // Before: { "60000": 69, "allocation_failed: Cannot post Request ...": 131 }.
    assertEquals(outcomes, { "60000": 200 });
  });
}
