// A Worker for tests/workers_test.ts: links to its parent, then obeys commands sent with
// postMessage. Each command answers with { done: cmd } (or { error }) once it has taken effect.

import {
  connect,
  Engine,
  isolateListening,
  IsolateServerAddress,
  linkParent,
  OpCode,
  serve,
} from "../mod.ts";

type Command =
  | { cmd: "echo"; name: string }
  | { cmd: "serve"; name: string }
  | { cmd: "starve"; name: string; pool: number }
  | { cmd: "release" }
  | { cmd: "count" }
  | { cmd: "request"; address: string; body: string }
  | { cmd: "crash" }
  | { cmd: "close" }
  | { cmd: "exit" };

const scope = self as unknown as {
  postMessage(m: unknown): void;
  onmessage: ((ev: MessageEvent<Command>) => void) | null;
};

// Commands may arrive before the link is up: handle them once it is.
const linked = linkParent();
const engine = new Engine({ initialPoolMsgs: 16, maxPoolMsgs: 1024 });
let starveEngine: Engine | null = null;
let held: { put(): void }[] = [];

// Echoes every Request as a Response on an engine-layer listener.
async function echo(name: string, e: Engine): Promise<void> {
  const g = e.create();
  g.post(new IsolateServerAddress(name).format(e.get("always")));
  const welcome = await g.waitReceive(5000);
  if (welcome?.bhdr.opCode !== OpCode.WelcomeResponse) throw new Error("no WelcomeResponse");
  e.put(welcome);
  (async () => {
    for await (const m of g) {
      const op = m.bhdr.opCode;
      if (op === OpCode.HelloRequest) m.bhdr.opCode = OpCode.HelloResponse;
      else if (op === OpCode.Request) m.bhdr.opCode = OpCode.Response;
      else if (op === OpCode.ByeRequest) m.bhdr.opCode = OpCode.ByeResponse;
      else {
        e.put(m);
        continue;
      }
      try {
        g.post(m);
      } catch {
        e.put(m);
      }
    }
  })();
}

// A listener that answers the Hello, then keeps every message it receives (never puts it
// back) until "release": its small pool empties and it stops reading.
async function starve(name: string, pool: number): Promise<void> {
  const e = starveEngine = new Engine({ initialPoolMsgs: pool, maxPoolMsgs: pool });
  const g = e.create();
  g.post(new IsolateServerAddress(name).format(e.get("always")));
  const welcome = await g.waitReceive(5000);
  if (welcome?.bhdr.opCode !== OpCode.WelcomeResponse) throw new Error("no WelcomeResponse");
  e.put(welcome);
  (async () => {
    for await (const m of g) {
      if (m.bhdr.opCode === OpCode.HelloRequest) {
        m.bhdr.opCode = OpCode.HelloResponse;
        g.post(m);
      } else if (m.bhdr.opCode === OpCode.Request) {
        if (held !== null) held.push({ put: () => e.put(m) });
        else e.put(m);
        count++;
      } else e.put(m);
    }
  })();
}
let count = 0;

scope.onmessage = async (ev: MessageEvent<Command>) => {
  const c = ev.data;
  await linked;
  try {
    if (c.cmd === "echo") await echo(c.name, engine);
    else if (c.cmd === "serve") {
      await serve(`isolate|${c.name}`, (req) => `worker:${req.body.text()}`);
    } else if (c.cmd === "starve") await starve(c.name, c.pool);
    else if (c.cmd === "count") {
      scope.postMessage({ done: c.cmd, count });
      return;
    } else if (c.cmd === "release") {
      const h = held;
      held = null as unknown as typeof held;
      for (const m of h) m.put();
    } else if (c.cmd === "request") {
      // The parent's announcement and this command travel on different ports.
      const name = c.address.slice("isolate|".length);
      await isolateListening(name, { signal: AbortSignal.timeout(20_000) });
      await using ch = await connect(c.address);
      using reply = await ch.request(c.body);
      scope.postMessage({ done: c.cmd, reply: reply.body.text() });
      return;
    } else if (c.cmd === "exit") {
      setTimeout(() => Deno.exit(0), 0);
    } else if (c.cmd === "close") {
      setTimeout(() => (self as unknown as { close(): void }).close(), 0);
    } else if (c.cmd === "crash") {
      setTimeout(() => {
        throw new Error("the worker crashed on purpose");
      }, 0);
    }
    scope.postMessage({ done: c.cmd });
  } catch (err) {
    scope.postMessage({ error: String(err) });
  }
};
void starveEngine;
