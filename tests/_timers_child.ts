// deno-lint-ignore-file no-console
// Run by tests/mutants_engine_units_test.ts: which timers keep a process alive. It leaves
// long unref'd timers armed (a Deadline, a sleep, a Deadlines sweep, receive-queue timers
// after their timed waits were served) and must still exit as soon as the ref'd waits
// below are over. The steps run one after another, each from the end of the one before
// (no top-level await, which would keep the process alive by itself): a ref'd wait that
// did not keep the process alive ends it early, without its line.

import { Deadline, sleep } from "../src/_deadline.ts";
import { Deadlines } from "../src/_deadlines.ts";
import { ReceiveQueue } from "../src/_receive_queue.ts";
import { Message } from "../mod.ts";

const HOUR = 3_600_000;

new Deadline("wait", HOUR, undefined);
sleep(HOUR);
new Deadlines({ handshake: HOUR, frame: 0, idle: 0, writeStall: 0 }).watch({ expire() {} });

// 1. A timed wait keeps the process alive until it ends, even when the queue's timer was
// armed (and unref'd) by an earlier wait that was served at once.
const q = new ReceiveQueue();
q.wait(40, undefined);
q.push(new Message());
q.wait(80, undefined).then((m) => {
  console.log(`timed wait ended: ${m}`);
  step2();
});

// 2. While one timed wait is pending, serving another must not let the process go.
function step2(): void {
  const q3 = new ReceiveQueue();
  q3.wait(HOUR, undefined);
  q3.wait(100, undefined).then((m) => {
    console.log(`the other timed wait ended: ${m}`);
    step3();
  });
  q3.push(new Message()); // serves the hour-long wait, the first in line
}

// 3. A timed wait served early lets the process go, although its timer is still armed; so
// does one after an untimed wait (which never counts as timed). Last, a ref'd pause alone
// keeps the process alive until it ends.
function step3(): void {
  const q2 = new ReceiveQueue();
  q2.wait(Infinity, undefined);
  q2.push(new Message());
  q2.wait(HOUR, undefined);
  q2.push(new Message());
  console.log("served");
  sleep(50, true).done.then(() => console.log("slept"));
}
