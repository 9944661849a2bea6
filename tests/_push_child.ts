// Spawned by peers_review_test.ts: listens on Deno.args[0] and pushes a Signal stream to
// every peer. With Deno.args[1] "cut" it sends only the first chunk and then waits to be
// killed; otherwise it sends the chunks "x", "y", "z". It prints "ready" once it listens.
// A fresh process numbers its messages from 1 again, like a restarted server.

import { listen } from "../mod.ts";

const cut = Deno.args[1] === "cut";
const listener = await listen(Deno.args[0]!);
// deno-lint-ignore no-console
console.log(`ready ${listener.address}`);
for await (const peer of listener) {
  void peer.send(
    (async function* () {
      yield cut ? "a" : "x";
      yield cut ? "b" : "y";
      if (cut) await new Promise(() => {});
      yield "z";
    })(),
  ).catch(() => {});
}
