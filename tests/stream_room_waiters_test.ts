// Kills the surviving mutant channel.ts:901 `ready(link, { signal: deadline.signal })` ->
// `ready(link, {})` (the mutation-testing helper, session of 2026-11-23): a stream send that gives up while
// waiting for room before its next chunk must leave no wait behind on the full channel (as
// the ready() before the first chunk, whose signal tests/redial_memory_test.ts "full" covers).
// tests/_stream_room_child.ts measures it with --expose-gc.

import { assert, assertEquals } from "@std/assert";
import { gcChild } from "./_gc_child.ts";

Deno.test("tcp: stream sends that give up waiting for room before a chunk hold nothing once given up", async () => {
  const r = await gcChild("./_stream_room_child.ts", "1000");
  assertEquals(r.timedOut, 1000); // every send gave up (the peer reads nothing meanwhile)
  // Unmutated: -11..+11 bytes per call; with the wait left behind: 1,100-1,130.
  // Under load (CI beside another test run) it measured up to 216: the bound sits halfway.
  assert(r.heldPerCall! < 550, `${r.heldPerCall!.toFixed(0)} bytes held per given-up send`);
});
