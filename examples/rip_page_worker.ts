/**
 * A RIP Worker for `examples/print_server.ts --workers N`: it rasterizes one page per
 * Request, served on an isolate channel (`isolate|NAME`, NAME from the parent's first
 * message). The heavy part runs here, on its own core; the RIP front that talks to the
 * spool server only hands pages over.
 *
 * @module
 */

import { linkParent, type Message, serve } from "../mod.ts";

/** Stands in for rasterizing: CPU-bound work proportional to the page's length. */
export function rasterize(page: string): string {
  let x = 2463534242;
  for (let i = 0; i < 20_000 * page.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
  }
  return `${page.length} bytes -> raster ${(x >>> 0).toString(16)}`;
}

const scope = self as unknown as {
  name: string;
  postMessage(m: unknown): void;
  onmessage: ((e: MessageEvent<{ serve: string }>) => void) | null;
};
const linked = linkParent();

scope.onmessage = async (e) => {
  await linked;
  await serve(e.data.serve, (req: Message) => `${scope.name}: ${rasterize(req.body.text())}`);
  scope.postMessage({ serving: e.data.serve });
};
