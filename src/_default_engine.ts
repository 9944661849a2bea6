// The engine the Peers layer uses when the caller passes none. It is made on first use
// and never closed: its timers run only while it has channels (the timeout sweep is
// unref'd), so once its channels are closed it keeps no process alive.

// An application may close it (`await ch.engine.close()` on a channel made without an
// engine): the next caller then gets a new one, instead of "the engine is closed" for good.

import { Engine, engineClosed } from "./engine.ts";

let shared: Engine | undefined;

export function defaultEngine(): Engine {
  if (shared === undefined || engineClosed(shared)) shared = new Engine();
  return shared;
}
