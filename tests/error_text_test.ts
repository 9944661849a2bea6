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

// Values a handler may throw that String() cannot turn into text (found by the
// hostile-tester helper): making the error headers threw, the error answer was never sent,
// and the client's request() waited for its timeout (for ever without one).
const unprintable: Record<string, () => unknown> = {
  "an object without a prototype": () => Object.create(null),
  "an object whose toString throws": () => ({
    toString() {
      throw new Error("no text");
    },
  }),
  "an Error whose message getter throws": () => {
    const e = new Error("x");
    Object.defineProperty(e, "message", {
      get() {
        throw new Error("no message");
      },
    });
    return e;
  },
  "a symbol": () => Symbol("odd"),
};

for (const kind of ["tcp", "uds"] as const) {
  Deno.test(`${kind}: a handler that throws a value without text still answers with an error`, async () => {
    await using server = await serve(
      kind === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`,
      (req) => {
        throw unprintable[req.body.text()]!();
      },
    );
    await using ch = await connect(server.address);
    for (const what of Object.keys(unprintable)) {
      const err = await assertRejects(() => ch.request(what, { timeoutMs: 5_000 }), TofuError);
      assertEquals(err.status, Status.processingFailed, what);
      assert(err.message.startsWith("Cannot complete request: the peer failed: "), err.message);
    }
  });

  // A peer's tofu-status header is a status in decimal (docs/protocol.md); anything else
  // made a TofuError whose status was no status at all (-5, 3.5, Infinity, 4096, hex).
  Deno.test(`${kind}: a peer's tofu-status that is not a status reads as processing_failed`, async () => {
    const sent = ["-5", "3.5", "1e300", "Infinity", "256", "0x10", "7a", "", "0"];
    let i = 0;
    await using server = await serve(
      kind === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`,
      (_req, ch) => {
        const m = ch.engine.get("always");
        m.headers.append("tofu-status", sent[i++]!);
        m.headers.append("tofu-error", "made up");
        return m;
      },
    );
    await using ch = await connect(server.address);
    for (const value of sent) {
      const err = await assertRejects(() => ch.request(value, { timeoutMs: 5_000 }), TofuError);
      assertEquals(err.status, Status.processingFailed, `tofu-status "${value}"`);
    }
    // A real status is kept.
    const real = await serve(`uds|${tempUdsPath()}`, () => {
      throw new TofuError(Status.invalidMessage, "bad");
    });
    await using ch2 = await connect(real.address);
    const err = await assertRejects(() => ch2.request("x", { timeoutMs: 5_000 }), TofuError);
    assertEquals(err.status, Status.invalidMessage);
    await real.close();
  });
}
