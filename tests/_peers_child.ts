// Spawned by peers_test.ts: serves the address in Deno.args[0] with the Peers layer until
// it is killed. It answers "slow" after a long pause and anything else with "echo:" + body.
// It prints "ready" once it listens.

import { serve } from "../mod.ts";

const server = await serve(Deno.args[0]!, async (req) => {
  const text = req.body.text();
  if (text === "slow") await new Promise((r) => setTimeout(r, 60_000));
  return `echo:${text}`;
});
// deno-lint-ignore no-console
console.log(`ready ${server.address}`);
