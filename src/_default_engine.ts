// The engine the Peers layer uses when the caller passes none. It is made on first use
// and never closed: its timers run only while it has channels (the timeout sweep is
// unref'd), so once its channels are closed it keeps no process alive.

import { Engine } from "./engine.ts";

let shared: Engine | undefined;

export function defaultEngine(): Engine {
  return shared ??= new Engine();
}
