// A reconnecting channel that gives up (maxAttempts) closes with connect_failed; a request
// that waited for the re-dial rejected with channel_closed ("it is closed"), while the docs
// promise the closing status. Found by the hostile-tester helper.

import { assertEquals } from "@std/assert";
import { connect, serve, Status, statusName, type TofuError } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";

for (const t of ["tcp", "uds"]) {
  Deno.test(`${t}: a request waiting for a re-dial that gives up rejects with connect_failed`, async () => {
    const server = await serve(
      t === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`,
      () => "ok",
    );
    const ch = await connect(server.address, {
      reconnect: { maxAttempts: 2, initialDelayMs: 20 },
    });
    await server.close();
    const err = await ch.request("x", { timeoutMs: 10_000 }).then(
      () => null,
      (e: TofuError) => e,
    );
    assertEquals(await ch.closed, Status.connectFailed);
    assertEquals(statusName(err?.status ?? -1), "connect_failed");
    assertEquals(err?.message, "Cannot use channel: it closed (connect_failed)");
  });
}
