/**
 * What a `serve()` server holds for peers it does not keep up with: its handlers never
 * settle (`maxInFlight` 100,000), and PEERS raw peers each write a HelloRequest and then
 * REQUESTS Requests of the largest frame (65,535 bytes of text headers and 65,535 of
 * body: 131,086 bytes). Once nothing more is read, prints the handler calls (the messages
 * the server took) and the growth of RSS, external memory and heap. The engine's defaults
 * bound it: `maxChannelHeldBytes` per peer, `maxEngineHeldBytes` for all of them.
 *
 *   deno run -A bench/held_memory.ts [PEERS=4] [REQUESTS=1500]
 *
 * @module
 */

// deno-lint-ignore-file no-console

import { encodeFrameInto, frameLength, Message, OpCode, serve } from "../mod.ts";

const PEERS = Number(Deno.args[0] ?? 4);
const REQUESTS = Number(Deno.args[1] ?? 1500);

function floodBytes(): Uint8Array {
  const hello = new Message();
  hello.bhdr.opCode = OpCode.HelloRequest;
  hello.bhdr.messageId = 1n;
  const m = new Message();
  m.bhdr.opCode = OpCode.Request;
  m.headers.append("x", "y".repeat(65535 - 4)); // "x:" + value + "\r\n"
  m.body.set(new Uint8Array(65535).fill(1));
  // Encoded in place: no garbage to be collected while memory is measured.
  const out = new Uint8Array(frameLength(hello) + REQUESTS * frameLength(m));
  let off = encodeFrameInto(hello, out, 0);
  for (let i = 0; i < REQUESTS; i++) {
    m.bhdr.messageId = BigInt(i + 2);
    off += encodeFrameInto(m, out, off);
  }
  return out;
}

const bytes = floodBytes();
let calls = 0;
const never = new Promise<void>(() => {});
const server = await serve("tcp|127.0.0.1|0", async () => {
  calls++;
  await never;
}, { maxInFlight: 100_000 });
const port = Number(server.address.split("|")[2]);
const before = Deno.memoryUsage();
const conns = await Promise.all(
  Array.from({ length: PEERS }, () => Deno.connect({ hostname: "127.0.0.1", port })),
);
for (const c of conns) {
  (async () => {
    for (let off = 0; off < bytes.length;) off += await c.write(bytes.subarray(off));
  })().catch(() => {}); // the server may close it at the end
}
// Until a second passes without a handler call.
for (let last = -1; last !== calls;) {
  last = calls;
  await new Promise((r) => setTimeout(r, 1000));
}
const after = Deno.memoryUsage();
const mib = (n: number) => `${(n / 1048576).toFixed(0)} MiB`;
console.log(
  `${PEERS} peers x ${REQUESTS} Requests of 131,086 bytes: ${calls} taken (${
    (calls / PEERS).toFixed(0)
  } per peer); growth: RSS ${mib(after.rss - before.rss)}, external ${
    mib(after.external - before.external)
  }, heap ${mib(after.heapUsed - before.heapUsed)}`,
);
Deno.exit(0); // the handlers never settle
