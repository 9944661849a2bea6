// A timeout longer than setTimeout can hold (2^31 - 1 ms, about 24.8 days) overflowed: the
// timer fired after 1 ms. A request() given `timeoutMs: 2 ** 31` to a server that answers
// in 300 ms rejected at once with "no answer within 2147483648 ms"; serveWorkers() with
// such a `startTimeoutMs` gave up before its Workers could start; a waitReceive() with
// such a timeout re-armed its timer every millisecond for as long as it waited. Every
// timer of the library now takes any delay (src/_deadline.ts, longTimeout).

import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import { connect, type Message, serve, serveWorkers, TofuError } from "../mod.ts";
import { Deadline, MAX_TIMER_MS, sleep } from "../src/_deadline.ts";
import { ReceiveQueue } from "../src/_receive_queue.ts";
import { tempUdsPath } from "../testing.ts";
import { FakeTime } from "./_fake_time.ts";

const LONG = [2 ** 31, 3e9, Number.MAX_SAFE_INTEGER];

for (const [name, address] of [["tcp", "tcp|127.0.0.1|0"], ["uds", ""]] as const) {
  Deno.test(`${name}: request() with a timeout past 2^31 - 1 ms waits for its answer`, async () => {
    await using server = await serve(address || `uds|${tempUdsPath()}`, async (req) => {
      await new Promise((r) => setTimeout(r, 300));
      return `${req.body.text()}: late but answered`;
    });
    await using ch = await connect(server.address, { timeoutMs: 2 ** 31 });
    for (const timeoutMs of LONG) {
      using answer = await ch.request(String(timeoutMs), { timeoutMs });
      assertEquals(answer.body.text(), `${timeoutMs}: late but answered`);
    }
  });
}

Deno.test("serveWorkers() with a startTimeoutMs past 2^31 - 1 ms starts its Workers", async () => {
  const handler = new URL("./_serve_handler.ts", import.meta.url);
  // Relay mode: the Workers listen on isolate channels, which the relay waits for.
  await using server = await serveWorkers(`uds|${tempUdsPath()}`, handler, {
    workers: 1,
    startTimeoutMs: 3e9,
  });
  await using ch = await connect(server.address);
  using answer = await ch.request("hello");
  assert(answer.body.text().endsWith(":hello"), answer.body.text());
});

Deno.test("Deadline: a timeout past 2^31 - 1 ms fires at its time, not after 1 ms", async () => {
  using time = new FakeTime();
  const start = time.now;
  using d = new Deadline("wait", 3e9, undefined);
  let err: unknown = null;
  d.promise.catch((e) => err = e);
  assertEquals(time.asked, [MAX_TIMER_MS], "no delay past what setTimeout holds");
  time.advance(start + MAX_TIMER_MS);
  await Promise.resolve();
  assertEquals(d.expired, false, "still waiting after 24.8 days");
  assertEquals(time.asked, [MAX_TIMER_MS, 3e9 - MAX_TIMER_MS]);
  time.advance(start + 3e9 - 1);
  assertEquals(d.expired, false);
  time.advance(start + 3e9);
  await Promise.resolve();
  assert(d.expired);
  assert(err instanceof TofuError && /no answer within 3000000000 ms/.test(err.message));
  assertEquals(time.keepingAlive, 0, "a deadline's timer never keeps the process alive");
});

Deno.test("Deadline: disposing cancels a long timer, whichever part of it is armed", () => {
  using time = new FakeTime();
  const d = new Deadline("wait", 3e9, undefined);
  time.advance(time.now + MAX_TIMER_MS);
  assertEquals(d.expired, false);
  assertEquals(time.asked, [MAX_TIMER_MS, 3e9 - MAX_TIMER_MS], "the second part is armed");
  assertEquals(time.pending, 1);
  d[Symbol.dispose]();
  assertEquals(time.pending, 0);
});

Deno.test("sleep(): a pause past 2^31 - 1 ms lasts its time; wake() ends it early", async () => {
  using time = new FakeTime();
  const start = time.now;
  const pause = sleep(3e9, true);
  let done = false;
  void pause.done.then(() => done = true);
  time.advance(start + MAX_TIMER_MS);
  await Promise.resolve();
  assertEquals(done, false);
  assertEquals(time.asked, [MAX_TIMER_MS, 3e9 - MAX_TIMER_MS]);
  assertEquals(time.keepingAlive, 1, "a ref'd pause keeps the process alive throughout");
  pause.wake();
  await pause.done;
  assertEquals(time.pending, 0, "wake() cleared the timer");
});

Deno.test("ReceiveQueue: a wait past 2^31 - 1 ms arms no timer longer than setTimeout holds", async () => {
  using time = new FakeTime();
  const start = time.now;
  const q = new ReceiveQueue();
  let got: Message | null | undefined;
  void q.wait(3e9, undefined).then((m) => got = m);
  assertEquals(time.asked, [MAX_TIMER_MS]);
  time.advance(start + MAX_TIMER_MS);
  await Promise.resolve();
  assertStrictEquals(got, undefined, "still waiting after 24.8 days");
  assertEquals(time.asked.length, 2, "armed once more, for the rest");
  assert(time.asked[1]! <= MAX_TIMER_MS);
  time.advance(start + 3e9);
  await Promise.resolve();
  assertStrictEquals(got, null, "timed out at its time");
});
