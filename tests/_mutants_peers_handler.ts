// The handler module of tests/mutants_peers_workers_test.ts: answers with the most handlers
// of this Worker seen running at once, after holding each request a moment so that
// concurrent requests overlap unless the server runs them one at a time; or with the value
// of its `echo` header, when it has one.
import type { Message } from "../mod.ts";

let running = 0;
let most = 0;

export default async (req: Message): Promise<string> => {
  running++;
  most = Math.max(most, running);
  try {
    await new Promise((r) => setTimeout(r, 50));
    const echo = req.headers.get("echo");
    return echo === undefined ? `${most}:${req.body.text()}` : `echo:${echo}`;
  } finally {
    running--;
  }
};
