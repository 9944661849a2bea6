// A handler module for tests/mutants_peers3_workers_test.ts that posts a message of its own to
// the parent when it loads: serveWorkers must not take it for the Worker's start answer.

(self as unknown as { postMessage(m: unknown): void }).postMessage({ note: "loaded" });

export default (): string => "chatty";
