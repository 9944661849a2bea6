// connect() to something that is not a tofu peer (found by the hostile-tester helper): an
// HTTP server that answered "400 Bad Request" and closed made connect() reject with
// recv_failed, "Cannot receive on channel 12028: ...": a channel number the caller never saw,
// no address, and a status connect() does not document. Now it is connect_failed, with the
// address and the engine's words.

import { assertEquals, assertInstanceOf, assertMatch, assertRejects } from "@std/assert";
import { connect, Status, TofuError } from "../mod.ts";

Deno.test("connect() to an HTTP server that answers and closes fails with connect_failed and the address", async () => {
  const reply = new TextEncoder().encode(
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request",
  );
  using l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  const serving = (async () => {
    const c = await l.accept();
    await c.read(new Uint8Array(4096)).catch(() => null);
    await c.write(reply).catch(() => {});
    c.close();
  })();
  const address = `tcp|127.0.0.1|${port}`;
  const err = await assertRejects(() => connect(address, { timeoutMs: 5000 }), TofuError);
  assertEquals(err.status, Status.connectFailed, err.message);
  assertMatch(err.message, new RegExp(`^Cannot connect to tcp\\|127\\.0\\.0\\.1\\|${port}: `));
  assertInstanceOf(err.cause, TofuError);
  assertEquals((err.cause as TofuError).status, Status.recvFailed);
  await serving;
});
