// The receiving Worker of bench/workers.ts: listens where it is told (an isolate name or a
// TCP address), takes `n` one-way Requests, acknowledges every ACK_EVERY, and reports the
// time from the first to the last.
import { Engine, linkParent, type Message, OpCode, Status } from "../mod.ts";

const ACK_EVERY = 4096;
const WINDOW = 8 * ACK_EVERY;
const scope = self as unknown as {
  postMessage(m: unknown): void;
  onmessage: ((e: MessageEvent<{ listen: string; n: number }>) => void) | null;
};
const linked = linkParent();

scope.onmessage = async (e) => {
  await linked;
  const { listen, n } = e.data;
  const engine = new Engine({
    initialPoolMsgs: WINDOW + 1024,
    maxPoolMsgs: WINDOW + 1024,
  });
  const group = engine.create();
  const welcome = engine.get("always");
  welcome.bhdr.opCode = OpCode.WelcomeRequest;
  welcome.headers.append("~listen_on", listen);
  group.post(welcome);
  const w = (await group.waitReceive(5000))!;
  if (w.bhdr.status !== Status.success) {
    throw new Error(`listen: ${w.error?.message}`);
  }
  scope.postMessage({ bound: w.headers.get("~listen_on") });
  engine.put(w);
  let ch = 0;
  let got = 0;
  let t0 = 0;
  for (;;) {
    let m: Message | null = group.tryReceive() ?? await group.waitReceive();
    for (; m !== null; m = group.tryReceive()) {
      const op = m.bhdr.opCode;
      if (op === OpCode.Request) {
        if (t0 === 0) t0 = performance.now();
        got++;
        engine.put(m);
        if (got % ACK_EVERY === 0 || got === n) {
          const ack = engine.get("always");
          ack.bhdr.channelNumber = ch;
          ack.bhdr.opCode = OpCode.Signal;
          group.post(ack);
        }
      } else if (op === OpCode.HelloRequest) {
        ch = m.bhdr.channelNumber;
        m.bhdr.opCode = OpCode.HelloResponse;
        group.post(m);
      } else engine.put(m);
      if (got === n) {
        scope.postMessage({ ms: performance.now() - t0 });
        await new Promise((r) => setTimeout(r, 100)); // the last ack goes out
        await engine.close();
        return;
      }
    }
  }
};
