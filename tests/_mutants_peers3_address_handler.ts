// A handler module for the serveWorkers tests of tests/mutants_peers3_workers_test.ts: answers
// with the address of the channel the request came on (a TCP address when the Worker accepted
// the peer itself, reusePort mode; an isolate address when the relay passed it on).
import type { Channel, Message } from "../mod.ts";

export default (_req: Message, ch: Channel): string => ch.address;
