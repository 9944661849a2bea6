// A handler module for tests/mutants_peers3_workers_test.ts that posts messages of its own to
// the parent (a null and a note) when it loads and when serveWorkers asks its Worker to close:
// serveWorkers must take none of them for the Worker's start or "closed" answer.

const scope = self as unknown as {
  postMessage(m: unknown): void;
  addEventListener(type: "message", f: (e: MessageEvent) => void): void;
};

scope.postMessage(null);
scope.postMessage({ note: "loaded" });
scope.addEventListener("message", (e) => {
  if (e.data?.["~tofu_serve_close"]) {
    scope.postMessage(null);
    scope.postMessage({ note: "closing" });
  }
});

export default (): string => "chatty";
