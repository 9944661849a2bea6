/**
 * An echo server on the Peers layer: every Request comes back as its Response, body and
 * headers included. Compare `echo_server.ts`, the same on the low-level layer.
 *
 *   deno run --allow-net=127.0.0.1 examples/peers_echo_server.ts [tcp|127.0.0.1|7099]
 *
 * @module
 */

// deno-lint-ignore-file no-console

import { serve, type Server } from "../mod.ts";

/** Serves echoes on `address` (port 0 picks a free one). */
export function serveEchoes(address: string): Promise<Server> {
  return serve(address, (req) => req); // returning the request turns it into the response
}

if (import.meta.main) {
  const server = await serveEchoes(Deno.args[0] ?? "tcp|127.0.0.1|7099");
  console.log(`echoing on ${server.address}; Ctrl-C stops`);
  Deno.addSignalListener("SIGINT", () => server.close().then(() => Deno.exit(0)));
}
