// The handler module of tests/relay_test.ts: reports what reached the Worker, exactly.
import { type Channel, type Message, OpCode } from "../mod.ts";

const signals: string[] = [];

export default async (req: Message, ch: Channel): Promise<unknown> => {
  if (req.bhdr.opCode === OpCode.Signal) {
    // Its body (whole, if streamed) and its trace header, if any.
    const trace = req.headers.get("trace");
    let body = req.body.text();
    if (req.hasMore()) {
      body = "";
      for await (using c of ch.chunks(req)) body += c.body.text();
    }
    signals.push(trace === undefined ? body : `${body}[${trace}]`);
    return;
  }
  const text = req.body.text();
  if (text === "signals?") return signals.join(",");
  if (text === "stream please") {
    return (function* () {
      for (let i = 0; i < 300; i++) yield `c${i},`;
    })();
  }
  if (text === "fail midway") {
    return (function* () {
      yield "part,";
      yield "more,"; // the first chunk goes out once the next one is known
      throw new Error("the source broke");
    })();
  }
  if (text === "fail") throw new Error("the handler broke");
  // Read before chunks(), which yields `req` too and puts it back.
  const seen = { op: req.bhdr.opCode, x: req.headers.getAll("x"), body: text };
  if (req.hasMore()) {
    seen.body = "";
    for await (using c of ch.chunks(req)) seen.body += c.body.text();
  }
  return JSON.stringify(seen);
};
