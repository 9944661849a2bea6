// The receive queue's shared deadline timer keeps the process alive exactly while a timed
// wait is pending, even when arming it runs pending microtasks that serve the wait, arm the
// timer again or shut the queue down (src/_receive_queue.ts).

import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import { Message, Status, TofuError } from "../mod.ts";
import { ReceiveQueue } from "../src/_receive_queue.ts";
import { FakeTime } from "./_fake_time.ts";

Deno.test("ReceiveQueue: a timed wait served while its timer is armed does not hold the process (real Deno)", async () => {
  const out = await new Deno.Command("deno", {
    args: [
      "run",
      "--no-prompt",
      // Env permission for Stryker's variable lets a mutant be active in the child too.
      "--allow-env=__STRYKER_ACTIVE_MUTANT__",
      new URL("./_receive_queue_timer_child.ts", import.meta.url).pathname,
    ],
    stdout: "piped",
    stderr: "piped",
    // Held by the served wait's timer, the child would live for an hour.
    signal: AbortSignal.timeout(30_000),
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, `killed (held by the timer?) or failed: ${stdout} ${stderr}`);
  const r = JSON.parse(stdout.trim());
  // The case under test happened: the message came while the timer was being armed.
  assertEquals(r, { duringArm: true, served: true });
});

Deno.test("ReceiveQueue: a message delivered while the timer is armed leaves it unref'd", async () => {
  using time = new FakeTime();
  const q = new ReceiveQueue();
  const m = new Message();
  time.onArm = () => {
    time.onArm = null;
    q.push(m);
  };
  const w = q.wait(3_600_000, undefined);
  assertStrictEquals(await w, m);
  assertEquals([time.pending, time.keepingAlive], [1, 0], "armed, but no timed wait is pending");
  // A later timed wait makes it keep the process alive again, and ends on it.
  const later = q.wait(3_600_000, undefined);
  assertEquals([time.pending, time.keepingAlive], [1, 1]);
  time.advance(time.now + 3_600_000);
  assertEquals(await later, null);
  assertEquals(time.pending, 0);
});

Deno.test("ReceiveQueue: a wait with an earlier deadline started while the timer is armed leaves one timer", async () => {
  using time = new FakeTime();
  const q = new ReceiveQueue();
  let inner: Promise<Message | null> | undefined;
  time.onArm = () => {
    time.onArm = null;
    inner = q.wait(5, undefined);
  };
  const outer = q.wait(100, undefined);
  assert(inner !== undefined);
  assertEquals([time.pending, time.keepingAlive], [1, 1], "one timer, for the earliest deadline");
  assertEquals(time.nextAt, time.now + 5);
  time.advance(time.now + 5);
  assertEquals(await inner, null);
  assertEquals([time.pending, time.nextAt], [1, time.now + 95], "armed again for the other");
  time.advance(time.now + 95);
  assertEquals(await outer, null);
  assertEquals(time.pending, 0, "no timer left behind");
});

Deno.test("ReceiveQueue: a queue shut down while its timer is armed leaves no timer", async () => {
  using time = new FakeTime();
  const q = new ReceiveQueue();
  const err = new TofuError(Status.shutdownStarted, "Cannot receive: closing");
  time.onArm = () => {
    time.onArm = null;
    q.shutdown(err);
  };
  const w = q.wait(3_600_000, undefined);
  assertStrictEquals(await w.catch((e) => e), err);
  assertEquals(time.pending, 0, "no timer holds the process for a shut down queue");
});
