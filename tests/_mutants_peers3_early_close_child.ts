// Run by tests/mutants_peers3_workers_test.ts (with env permission, so that under
// `deno task mutate` it runs the mutant too): a serveWorkers() call whose Worker cannot start
// within 1 ms is closed while that Worker is still starting, before its server exists. The
// Worker must end quietly then: Deno prints an uncaught error of a Worker to stderr.
import { serveWorkers } from "../mod.ts";

const handler = new URL("./_serve_handler.ts", import.meta.url);
try {
  await serveWorkers("tcp|127.0.0.1|0", handler, { workers: 1, startTimeoutMs: 1 });
  // deno-lint-ignore no-console
  console.log("started");
} catch (err) {
  // deno-lint-ignore no-console
  console.log((err as Error).message);
}
