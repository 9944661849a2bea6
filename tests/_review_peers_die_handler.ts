// A handler module for tests/review_peers_workers_test.ts: answers with the Worker's name; on
// "die" it answers nothing and ends its Worker with an uncaught error.
import type { Message } from "../mod.ts";

export default (req: Message): string | Promise<never> => {
  if (req.body.text() === "die") {
    setTimeout(() => {
      throw new Error("the Worker dies, on purpose");
    });
    return new Promise<never>(() => {});
  }
  return (self as unknown as { name: string }).name;
};
