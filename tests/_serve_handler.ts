// The handler module of the serveWorkers tests: answers with the Worker's name.
import type { Message } from "../mod.ts";

export default (req: Message): string =>
  `${(self as unknown as { name: string }).name}:${req.body.text()}`;
