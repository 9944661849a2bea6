// send() posts at once when the channel is open and has room and no earlier call is still
// posting (no await), and otherwise waits for the connection or for room. Calls made one
// after another without awaiting still go out in call order, whichever way each one takes.

import { assertEquals } from "@std/assert";
import { connect, listen, OpCode } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";

for (const t of ["tcp", "uds"]) {
  Deno.test(`${t}: send() and request() calls not awaited go out in call order`, async () => {
    await using server = await listen(t === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`);
    await using ch = await connect(server.address);
    const peer = (await server[Symbol.asyncIterator]().next()).value!;
    const n = 2000;
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      // Requests (with a deadline, unlike the sends) among them: the sends after one take
      // the slow way (it is still posting) and must not overtake it.
      calls.push(
        i === 500 || i === 1500
          ? ch.request(String(i), { timeoutMs: 10_000 }).then((m) => m.body.text())
          : ch.send(String(i)),
      );
    }
    const got: string[] = [];
    for await (using m of peer) {
      got.push(m.body.text());
      if (m.bhdr.opCode === OpCode.Request) await peer.respond(m, `answer ${got.length - 1}`);
      if (got.length === n) break;
    }
    assertEquals(got, Array.from({ length: n }, (_, i) => String(i)));
    const settled = await Promise.all(calls);
    assertEquals([settled[500], settled[1500]], ["answer 500", "answer 1500"]);
    await peer.close();
  });
}

Deno.test("a stream's own source may send on its channel while the stream goes out", async () => {
  // A stream's call holds its turn until its first chunk is out, not to its end: a send()
  // its source makes between chunks waits for nothing but room (with the whole stream
  // holding the turn, the two waited for each other for good).
  await using server = await listen("tcp|127.0.0.1|0");
  await using ch = await connect(server.address);
  const peer = (await server[Symbol.asyncIterator]().next()).value!;
  const streaming = ch.send((async function* () {
    yield "head";
    yield "mid";
    for (let i = 0; i < 3; i++) await ch.send(`note ${i}`);
    yield "tail";
  })());
  const got: string[] = [];
  const it = peer[Symbol.asyncIterator]();
  const first = (await it.next()).value!;
  const reading = (async () => {
    for await (using c of peer.chunks(first, { timeoutMs: 5000 })) got.push(c.body.text());
  })();
  const notes: string[] = [];
  for (let i = 0; i < 3; i++) {
    using m = (await it.next()).value!;
    notes.push(m.body.text());
  }
  await reading;
  await streaming;
  assertEquals(got, ["head", "mid", "tail"]);
  assertEquals(notes, ["note 0", "note 1", "note 2"]);
  await peer.close();
});
