// deno-lint-ignore-file no-console
// Run by tests/mutants_engine_units_test.ts: which timers keep a process alive. It leaves
// long unref'd timers armed (a Deadline, a sleep, a Deadlines sweep, a receive queue's
// timer after its timed wait was served) and must still exit as soon as the ref'd waits
// below are over; each of those must finish first and print its line.

import { Deadline, sleep } from "../src/_deadline.ts";
import { Deadlines } from "../src/_deadlines.ts";
import { ReceiveQueue } from "../src/_receive_queue.ts";
import { Message } from "../mod.ts";

const HOUR = 3_600_000;

new Deadline("wait", HOUR, undefined);
sleep(HOUR);
new Deadlines({ handshake: HOUR, frame: 0, idle: 0, writeStall: 0 }).watch({ expire() {} });

// A ref'd pause keeps the process alive until it ends (it outlasts every other wait here).
sleep(300, true).done.then(() => console.log("slept"));

// A timed wait keeps the process alive until it ends, even when the queue's timer was
// armed (unref'd) by an earlier wait that was served.
const q = new ReceiveQueue();
const first = q.wait(40, undefined);
q.push(new Message());
await first;
q.wait(80, undefined).then((m) => console.log(`timed wait ended: ${m}`));

// A timed wait served early lets the process go, although its timer is still armed.
const q2 = new ReceiveQueue();
const served = q2.wait(HOUR, undefined);
q2.push(new Message());
await served;
console.log("served");
