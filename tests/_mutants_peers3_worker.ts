// A Worker for tests/mutants_peers3_workers_test.ts: links to its parent, then obeys commands
// sent with postMessage, each answered with { done: cmd } (or { error }):
// - dial: connects to `address` (an isolate name the parent listens on) with the Peers layer
//   and keeps the channel open (this Worker is the connector of that pipe);
// - close / exit: ends this Worker with self.close() / Deno.exit(), right after answering;
// - crash: an uncaught error, right after answering;
// - ping: answers once the link is up.
// Before it links, it posts a null and a message of its own (linkWorker() must leave both to
// the parent's application).

import { connect, isolateListening, linkParent } from "../mod.ts";
import type { Channel } from "../mod.ts";

type Command =
  | { cmd: "dial"; address: string }
  | { cmd: "close" }
  | { cmd: "exit" }
  | { cmd: "crash" }
  | { cmd: "ping" };

const scope = self as unknown as {
  postMessage(m: unknown): void;
  onmessage: ((ev: MessageEvent<Command>) => void) | null;
};

scope.postMessage(null);
scope.postMessage({ hello: "before the link" });
const linked = linkParent();
const open: Channel[] = [];

scope.onmessage = async (ev: MessageEvent<Command>) => {
  const c = ev.data;
  if (c === null) return; // the parent's own null (tests/mutants_peers3_workers_test.ts)
  await linked;
  try {
    if (c.cmd === "dial") {
      // The parent's announcement and this command travel on different ports.
      await isolateListening(c.address.slice("isolate|".length), {
        signal: AbortSignal.timeout(20_000),
      });
      open.push(await connect(c.address, { timeoutMs: 20_000 }));
    } else if (c.cmd === "close") {
      setTimeout(() => (self as unknown as { close(): void }).close(), 0);
    } else if (c.cmd === "exit") {
      setTimeout(() => Deno.exit(0), 0);
    } else if (c.cmd === "crash") {
      setTimeout(() => {
        throw new Error("the Worker crashed on purpose");
      }, 0);
    }
    scope.postMessage({ done: c.cmd });
  } catch (err) {
    scope.postMessage({ error: String(err) });
  }
};
