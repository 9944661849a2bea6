// A serve() handler's error goes back in the `tofu-error` header, and a text-header block
// holds at most 65,535 bytes: an error message longer than that made the error Response
// impossible to post, so the client's request() waited for its timeout (or for ever).

import { assert, assertEquals, assertRejects } from "@std/assert";
import { connect, serve, Status, TofuError } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";

for (const kind of ["tcp", "uds"] as const) {
  Deno.test(`${kind}: a handler error of 70,000 characters still answers the request, shortened`, async () => {
    await using server = await serve(
      kind === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`,
      (req) => {
        throw new TofuError(
          Status.invalidMessage,
          `bad input: ${"x".repeat(70_000)} ${req.body.text()}`,
        );
      },
    );
    await using ch = await connect(server.address);
    const err = await assertRejects(() => ch.request("q", { timeoutMs: 5_000 }), TofuError);
    assertEquals(err.status, Status.invalidMessage);
    assert(
      err.message.startsWith("Cannot complete request: the peer failed: bad input: xxx"),
      err.message.slice(0, 80),
    );
    assert(err.message.endsWith("..."), err.message.slice(-20));
    assert(err.message.length < 5_000, `${err.message.length} characters`);
    // The server goes on answering.
    const again = await assertRejects(() => ch.request("r", { timeoutMs: 5_000 }), TofuError);
    assertEquals(again.status, Status.invalidMessage);
  });
}
