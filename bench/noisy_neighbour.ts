/**
 * Reproduction of issue #8 finding 1: one client floods a server with 16-byte Requests and
 * never reads the replies, while 7 good clients do request/reply round trips. Prints how many
 * round trips the good clients completed and the server's RSS.
 *
 *   deno run -A bench/noisy_neighbour.ts [reuse|always] [seconds]
 *
 * `reuse`: the server answers by posting the request back as a Response (examples/echo_server.ts).
 * `always`: the server builds each reply with get("always") and puts the request back.
 * A refused post (allocation_failed) is put back; the clients run in a child process.
 *
 * @module
 */

// deno-lint-ignore-file no-console

import { Engine, FrameDecoder, Message, OpCode, TcpServerAddress, TofuError } from "../mod.ts";
import { frame, writeAll } from "./_frames.ts";

async function goodClient(port: number, until: number): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const dec = new FrameDecoder();
  const m = new Message();
  const next = async (): Promise<Message | null> => {
    while (!dec.hasFrame()) {
      const n = await conn.read(dec.writable()).catch(() => null);
      if (n === null) return null;
      dec.commit(n);
    }
    dec.next(m);
    return m;
  };
  const timer = setTimeout(() => conn.close(), until - Date.now());
  let served = 0;
  try {
    await writeAll(conn, frame(OpCode.HelloRequest, 1));
    if (!await next()) return 0;
    for (let id = 2; Date.now() < until; id++) {
      await writeAll(conn, frame(OpCode.Request, id, "ping"));
      const r = await next();
      if (r === null) break;
      served++;
    }
  } catch {
    // closed at the deadline
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed */ }
  }
  return served;
}

async function flooder(port: number, until: number): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const one = frame(OpCode.Request, 7);
  const chunk = new Uint8Array(one.length * 4096);
  for (let i = 0; i < 4096; i++) chunk.set(one, i * one.length);
  const timer = setTimeout(() => conn.close(), until - Date.now());
  let sent = 0;
  try {
    await writeAll(conn, frame(OpCode.HelloRequest, 1));
    while (Date.now() < until) {
      await writeAll(conn, chunk);
      sent += chunk.length;
    }
  } catch {
    // closed at the deadline
  }
  clearTimeout(timer);
  return sent;
}

if (Deno.args[0] === "--clients") {
  const port = Number(Deno.args[1]);
  const until = Date.now() + Number(Deno.args[2]) * 1000;
  const flood = flooder(port, until);
  // Let the flood take hold before the good clients arrive.
  await new Promise((r) => setTimeout(r, 1000));
  const served = await Promise.all(Array.from({ length: 7 }, () => goodClient(port, until)));
  console.log(JSON.stringify({ served, flooded: await flood }));
  Deno.exit(0);
}

const mode = Deno.args[0] ?? "reuse";
const seconds = Number(Deno.args[1] ?? 10);
const engine = new Engine();
const group = engine.create();
group.post(new TcpServerAddress("127.0.0.1", 0).format(engine.get("always")!));
const welcome = (await group.waitReceive())!;
const port = Number(welcome.headers.get("~listen_on")!.split("|")[2]);
engine.put(welcome);
const rss0 = Deno.memoryUsage().rss;
let peak = rss0;
let refused = 0;
let reports = 0;
const sampler = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 200);

function tryPost(m: Message): void {
  try {
    group.post(m);
  } catch (err) {
    if (!(err instanceof TofuError)) throw err;
    refused++;
    engine.put(m);
  }
}

const serving = (async () => {
  for await (const m of group) {
    const op = m.bhdr.opCode;
    if (m.isFromEngine()) {
      reports++;
      engine.put(m);
    } else if (op === OpCode.HelloRequest) {
      m.bhdr.opCode = OpCode.HelloResponse;
      tryPost(m);
    } else if (op === OpCode.Request) {
      if (mode === "reuse") {
        m.bhdr.opCode = OpCode.Response;
        tryPost(m);
      } else {
        const r = engine.get("always")!;
        r.bhdr.channelNumber = m.bhdr.channelNumber;
        r.bhdr.messageId = m.bhdr.messageId;
        r.bhdr.opCode = OpCode.Response;
        r.body.set(m.body.bytes());
        engine.put(m);
        tryPost(r);
      }
    } else engine.put(m);
  }
})();

const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    new URL(import.meta.url).pathname,
    "--clients",
    String(port),
    String(seconds),
  ],
  stdout: "piped",
}).output();
const out = await child;
clearInterval(sampler);
const result = JSON.parse(new TextDecoder().decode(out.stdout));
const served: number[] = result.served;
console.log(
  JSON.stringify({
    mode,
    seconds,
    goodServed: served,
    goodClientsServed: served.filter((n) => n > 0).length,
    goodRoundTrips: served.reduce((a, b) => a + b, 0),
    floodedMiB: +(result.flooded / 2 ** 20).toFixed(1),
    refusedPosts: refused,
    engineReports: reports,
    rssGrowthMiB: +((peak - rss0) / 2 ** 20).toFixed(0),
  }),
);
await engine.close();
await serving;
