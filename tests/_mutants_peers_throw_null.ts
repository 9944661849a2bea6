// A handler module whose evaluation throws `null` (not an Error): serveWorkers must report
// it as it is (tests/mutants_peers_workers_test.ts).
throw null;
