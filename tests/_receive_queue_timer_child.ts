// deno-lint-ignore-file no-console
// Child of tests/receive_queue_timer_test.ts. In Deno 2.9 the first setTimeout of a process
// runs the pending microtasks when it is called outside one (here: from an event listener
// that Deno calls directly). A message delivered by such a microtask serves the timed wait
// that is arming the queue's timer; the timer must then not keep the process alive.
import { ReceiveQueue } from "../src/_receive_queue.ts";
import { Message } from "../src/message.ts";

addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  const q = new ReceiveQueue();
  const m = new Message();
  let delivered = false;
  queueMicrotask(() => {
    delivered = true;
    q.push(m);
  });
  // An hour: served at once, it must not hold the process for that long.
  const w = q.wait(3_600_000, undefined);
  const duringArm = delivered;
  w.then((got) => console.log(JSON.stringify({ duringArm, served: got === m })));
});
// Nothing in this file has called setTimeout yet.
Promise.reject(new Error("start"));
