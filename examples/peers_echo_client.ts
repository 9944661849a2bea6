/**
 * An echo client on the Peers layer: sends a few requests at once, prints each echo,
 * and says bye. Compare `echo_client.ts`, the same on the low-level layer.
 *
 *   deno run --allow-net=127.0.0.1 examples/peers_echo_client.ts [tcp|127.0.0.1|7099] [count]
 *
 * Start `examples/peers_echo_server.ts` (or `echo_server.ts`) first.
 *
 * @module
 */

// deno-lint-ignore-file no-console

import { connect } from "../mod.ts";

/** Sends `count` requests to `address` concurrently and returns the echoed bodies in order. */
export async function echoes(address: string, count: number): Promise<string[]> {
  await using ch = await connect(address, { timeoutMs: 5000 });
  const replies = await Promise.all(
    Array.from({ length: count }, (_, i) => ch.request(`hello #${i + 1}`, { timeoutMs: 5000 })),
  );
  return replies.map((reply) => {
    using _ = reply; // back to the pool once read
    return reply.body.text();
  });
}

if (import.meta.main) {
  const bodies = await echoes(Deno.args[0] ?? "tcp|127.0.0.1|7099", Number(Deno.args[1] ?? 3));
  for (const body of bodies) console.log(body);
}
