// A handler module for tests/mutants_peers3_workers_test.ts whose Worker dies of an uncaught
// error when serveWorkers asks it to close its server (before it can answer that it closed).

addEventListener("message", (e) => {
  if ((e as MessageEvent).data?.["~tofu_serve_close"]) {
    throw new Error("the Worker crashed while closing, on purpose");
  }
});

export default (): string => "alive";
