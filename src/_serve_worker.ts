// The module every Worker of serveWorkers() runs: it loads the application's handler
// module and serves it, on the shared TCP port (reusePort mode) or on an isolate channel
// the parent relays to (relay mode). It answers the parent on its own message channel.

import { Engine } from "./engine.ts";
import type { Handler, Server } from "./server.ts";
import { serve } from "./server.ts";
import { linkParent } from "./workers.ts";

interface Start {
  "~tofu_serve": { module: string; address: string; reusePort: boolean; maxInFlight: number };
}

const scope = self as unknown as {
  postMessage(m: unknown): void;
  addEventListener(type: "message", f: (e: MessageEvent) => void): void;
};

let server: Server | null = null;
let engine: Engine | null = null;
const linked = linkParent();

scope.addEventListener("message", async (e: MessageEvent) => {
  const data = e.data as Partial<Start> & { "~tofu_serve_close"?: true } | null;
  if (data?.["~tofu_serve_close"]) {
    await server?.close();
    await engine?.close();
    scope.postMessage({ "~tofu_serve_closed": true });
    return;
  }
  const start = data?.["~tofu_serve"];
  if (start === undefined) return;
  try {
    await linked;
    const mod = await import(start.module);
    const handler: unknown = mod.default ?? mod.handler;
    if (typeof handler !== "function") {
      throw new TypeError(`${start.module} exports no default (or "handler") function`);
    }
    engine = new Engine({ reusePort: start.reusePort, maxPoolMsgs: 1024 });
    server = await serve(start.address, handler as Handler, {
      engine,
      maxInFlight: start.maxInFlight,
    });
    scope.postMessage({ "~tofu_serve_bound": server.address });
  } catch (err) {
    scope.postMessage({ "~tofu_serve_error": String((err as Error)?.message ?? err) });
  }
});
