// The handler module of tests/relay_wedge_test.ts.
import type { Channel, Message } from "../mod.ts";

export default async (req: Message, ch: Channel): Promise<unknown> => {
  const text = req.body.text();
  if (text === "late stream") {
    // More chunks than the relay's read share (1,024 by default), after a pause.
    return (async function* () {
      await new Promise((r) => setTimeout(r, 300));
      for (let i = 0; i < 3000; i++) yield `chunk ${i}`;
    })();
  }
  if (text === "die") {
    setTimeout(() => {
      throw new Error("the Worker dies"); // uncaught: it ends the Worker
    }, 10);
    return "dying";
  }
  if (text === "drop the relay") {
    ch.abort(); // the Worker's channel to its peer, the relay
    return "never sent";
  }
  if (text === "notify") {
    await ch.send("working"); // a Signal to the handler's peer: the relay
    return "done";
  }
  return "pong";
};
