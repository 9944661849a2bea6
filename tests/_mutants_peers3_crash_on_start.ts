// A handler module for tests/mutants_peers3_workers_test.ts whose Worker dies of an uncaught
// error while it loads (its evaluation never ends, so the Worker never answers the start).

setTimeout(() => {
  throw new Error("the Worker crashed while starting, on purpose");
}, 0);
await new Promise(() => {});

export default (): string => "never";
