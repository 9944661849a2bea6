/**
 * End-to-end figures, side by side in one run on one machine (loopback TCP):
 *
 * - one-way throughput of 64-byte bodies: a raw Deno socket doing the same framing work
 *   (the limit), tofu through its public API with several sender and receiver styles,
 *   zeromq.js push/pull and NATS publish/subscribe (both under Node, from bench/node/);
 *   and the contract's floor (bench/_floor.ts): the least work per message of any library
 *   with tofu's message model, with nothing else, as a yardstick between raw and tofu;
 * - the same with the receiver in a second `deno` process (raw, floor and tofu);
 * - one-way bandwidth with 65,535-byte bodies (the largest), in MB/s;
 * - request/response round trips (p50, p99): raw ping-pong, tofu, zeromq.js req/rep,
 *   NATS request;
 * - 1,000 concurrent channels doing request/response on one engine;
 * - resident memory after 1 M and after 10 M messages, with the window driver and with a
 *   naive sender awaiting `group.ready()`.
 *
 * raw and tofu runs alternate (REPS rounds after a warm-up) and each figure is the
 * median of its rounds; ratios compare figures of this run only.
 *
 * Run: deno task bench:e2e [--quick]
 *
 * @module
 */

// deno-lint-ignore-file no-console

import * as tofu from "../mod.ts";
import { encodeFrameInto, Engine, Message, OpCode } from "../mod.ts";
import { floorReceive, floorSend } from "./_floor.ts";
import {
  connect,
  echo,
  lineReader,
  listen,
  next,
  receive,
  type RxMode,
  send,
  type TxMode,
  WINDOW,
} from "./_drivers.ts";

const QUICK = Deno.args.includes("--quick");
const REPS = QUICK ? 1 : 3;
const BODY = 64;
const BIG = 65535;
const BIG_N = QUICK ? 2_000 : 10_000;
const ONE_WAY = QUICK ? 200_000 : 2_000_000;
const ROUND_TRIPS = QUICK ? 2_000 : 20_000;
const HDR = 16;
const FRAME = HDR + BODY;

// ---------------------------------------------------------------------------------
// Raw Deno socket baselines

/** Receives `n` frames: read into a large buffer, parse headers, copy each body into a slot. */
async function rawReceive(conn: Deno.Conn, n: number): Promise<number> {
  const buf = new Uint8Array(256 * 1024); // the size tofu's decoder grows to
  const slot = new Uint8Array(65535);
  let start = 0;
  let end = 0;
  let got = 0;
  let t0 = 0;
  while (got < n) {
    if (start > 0 && start === end) start = end = 0;
    if (buf.length - end < 65536 + HDR) {
      buf.copyWithin(0, start, end);
      end -= start;
      start = 0;
    }
    const r = await conn.read(buf.subarray(end));
    if (r === null) throw new Error("raw receiver: EOF");
    if (t0 === 0) t0 = performance.now();
    end += r;
    while (end - start >= HDR) {
      const thl = (buf[start + 12]! << 8) | buf[start + 13]!;
      const bl = (buf[start + 14]! << 8) | buf[start + 15]!;
      const total = HDR + thl + bl;
      if (end - start < total) break;
      const b = start + HDR + thl;
      // As tofu does: a loop for short bodies, one TypedArray.set for long ones.
      if (bl <= 512) { for (let i = 0; i < bl; i++) slot[i] = buf[b + i]!; }
      else slot.set(buf.subarray(b, b + bl));
      start += total;
      got++;
    }
  }
  return performance.now() - t0;
}

function rawBatch(frames: number, body = BODY): Uint8Array {
  const m = new Message();
  m.bhdr.channelNumber = 1;
  m.bhdr.messageId = 1n;
  m.body.set(new Uint8Array(body).fill(0x61));
  const size = HDR + body;
  const out = new Uint8Array(frames * size);
  for (let i = 0; i < frames; i++) encodeFrameInto(m, out, i * size);
  return out;
}

/** Writes `n` pre-encoded frames, about 320 KB per awaited write. */
async function rawSend(conn: Deno.Conn, n: number, body = BODY): Promise<void> {
  const size = HDR + body;
  const perWrite = Math.max(1, Math.floor(4096 * FRAME / size));
  const batch = rawBatch(perWrite, body);
  for (let sent = 0; sent < n; sent += perWrite) {
    const frames = Math.min(perWrite, n - sent);
    let view = batch.subarray(0, frames * size);
    while (view.length > 0) view = view.subarray(await conn.write(view));
  }
}

/** A connected pair of raw loopback TCP sockets, Nagle off on both; the listener is closed. */
async function rawPair(): Promise<[Deno.TcpConn, Deno.TcpConn]> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  const [server, client] = await Promise.all([
    l.accept(),
    Deno.connect({ hostname: "127.0.0.1", port }),
  ]);
  l.close();
  server.setNoDelay(true);
  client.setNoDelay(true);
  return [server, client];
}

/**
 * One-way throughput over a raw socket pair, in messages per second: `receive` on one end
 * (resolving with the milliseconds from its first read to the last frame), `send` on the
 * other.
 */
async function pairOneWay(
  n: number,
  receive: (conn: Deno.Conn, n: number) => Promise<number>,
  send: (conn: Deno.Conn, n: number) => Promise<void>,
): Promise<number> {
  const [server, client] = await rawPair();
  const recv = receive(server, n);
  await send(client, n);
  const ms = await recv;
  client.close();
  server.close();
  return n / (ms / 1000);
}

function rawOneWay(n: number, body = BODY): Promise<number> {
  return pairOneWay(n, rawReceive, (conn, k) => rawSend(conn, k, body));
}

/** One-way throughput of the contract's floor (bench/_floor.ts), 64-byte bodies. */
function floorOneWay(n: number): Promise<number> {
  return pairOneWay(n, floorReceive, (conn, k) => floorSend(conn, k, BODY));
}

async function readFull(conn: Deno.Conn, buf: Uint8Array): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const r = await conn.read(buf.subarray(off));
    if (r === null) throw new Error("EOF");
    off += r;
  }
}

async function rawPingPong(n: number): Promise<number[]> {
  const [server, client] = await rawPair();
  const echo = (async () => {
    const b = new Uint8Array(FRAME);
    for (let i = 0; i < n; i++) {
      await readFull(server, b);
      await server.write(b);
    }
  })();
  const frame = rawBatch(1);
  const back = new Uint8Array(FRAME);
  const rtts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await client.write(frame);
    await readFull(client, back);
    rtts.push(performance.now() - t);
  }
  await echo;
  client.close();
  server.close();
  return rtts;
}

// ---------------------------------------------------------------------------------
// tofu through the public API

// The receiver may hold up to WINDOW unacknowledged messages, so its pool covers the
// window: with a smaller pool, backpressure (pool_empty) is what gets measured. The
// window sender queues up to WINDOW frames, each charged its size + 512 bytes (19 MiB):
// past the default maxQueuedBytes of 4 MiB, so the budget is raised to 64 MiB.
function benchEngine(): Engine {
  return new Engine({
    initialPoolMsgs: WINDOW + 1024,
    maxPoolMsgs: WINDOW + 1024,
    maxQueuedBytes: 64 * 1024 * 1024,
  });
}

/** One-way throughput in messages per second. */
async function tofuOneWay(
  n: number,
  tx: TxMode = "window",
  rx: RxMode = "drain",
  bodySize = BODY,
): Promise<number> {
  await using rxEngine = benchEngine();
  await using txEngine = benchEngine();
  const server = await listen(tofu, rxEngine);
  const receiving = receive(tofu, rxEngine, server.group, n, {
    mode: rx,
    acks: tx === "window",
  });
  const [group, ch] = await connect(tofu, txEngine, server.port);
  await send(tofu, txEngine, group, ch, n, tx, bodySize);
  const ms = await receiving;
  return n / (ms / 1000);
}

async function tofuPingPong(n: number): Promise<number[]> {
  await using engine = benchEngine();
  const server = await listen(tofu, engine);
  const serving = echo(tofu, engine, server.group, n);
  const [group, ch] = await connect(tofu, engine, server.port);
  const body = new Uint8Array(BODY).fill(0x61);
  const rtts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const m = engine.get("always")!;
    m.bhdr.channelNumber = ch;
    m.body.set(body);
    group.post(m);
    engine.put(await next(group));
    rtts.push(performance.now() - t);
  }
  await serving;
  return rtts;
}

async function tofuManyChannels(
  channels: number,
  rounds: number,
): Promise<[number, number]> {
  await using engine = new Engine({ initialPoolMsgs: 2048, maxPoolMsgs: 8192 });
  const server = await listen(tofu, engine);
  let errors = 0;
  const serving = echo(
    tofu,
    engine,
    server.group,
    channels * rounds,
    () => errors++,
  );
  const t0 = performance.now();
  await Promise.all(Array.from({ length: channels }, async () => {
    const [group, ch] = await connect(tofu, engine, server.port);
    for (let r = 0; r < rounds; r++) {
      const m = engine.get("always")!;
      m.bhdr.channelNumber = ch;
      m.body.set("ping");
      group.post(m);
      const resp = await next(group);
      if (resp.bhdr.opCode !== OpCode.Response || resp.isFromEngine()) errors++;
      engine.put(resp);
    }
  }));
  const ms = performance.now() - t0;
  await serving;
  return [errors, (channels * rounds) / (ms / 1000)];
}

// ---------------------------------------------------------------------------------
// Two-process mode: the receiver runs in a child `deno` process.

async function childReceiver(kind: string, n: number): Promise<void> {
  if (kind === "raw" || kind === "floor") {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    console.log(JSON.stringify({ port: (l.addr as Deno.NetAddr).port }));
    const conn = await l.accept();
    const ms = await (kind === "raw" ? rawReceive(conn, n) : floorReceive(conn, n));
    console.log(JSON.stringify({ rate: n / (ms / 1000) }));
    conn.close();
    l.close();
  } else {
    await using rx = benchEngine();
    const server = await listen(tofu, rx);
    console.log(JSON.stringify({ port: server.port }));
    const link = { ch: 0 };
    const ms = await receive(tofu, rx, server.group, n, {
      acks: kind === "tofu",
      link,
    });
    // Closing the engine drops what is unsent: the sender waits for the last ack.
    if (kind === "tofu") {
      await server.group.ready(link.ch, { lowWaterBytes: 0 });
    }
    console.log(JSON.stringify({ rate: n / (ms / 1000) }));
  }
}

async function twoProcess(
  kind: "raw" | "floor" | "tofu" | "tofu-ready",
  n: number,
): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-read",
      new URL(import.meta.url).pathname,
      "--child",
      kind,
      String(n),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const nextLine = lineReader(child.stdout);
  const { port } = JSON.parse(await nextLine());
  if (kind === "raw" || kind === "floor") {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    await (kind === "raw" ? rawSend(conn, n) : floorSend(conn, n, BODY));
    const { rate } = JSON.parse(await nextLine());
    conn.close();
    await child.status;
    return rate;
  }
  await using tx = benchEngine();
  const [group, ch] = await connect(tofu, tx, port);
  await send(
    tofu,
    tx,
    group,
    ch,
    n,
    kind === "tofu" ? "window" : "ready",
    BODY,
  );
  const { rate } = JSON.parse(await nextLine());
  await child.status;
  return rate;
}

// ---------------------------------------------------------------------------------
// Memory: resident size after 1 M and after 10 M messages through one channel, measured
// in a child process of its own (so that earlier runs do not weigh on it).

async function memoryGrowth(mode: TxMode): Promise<[number, number]> {
  await using rx = benchEngine();
  await using tx = benchEngine();
  const server = await listen(tofu, rx);
  const link = { ch: 0 };
  const acks = mode === "window";
  // The first receiver pass answers the Hello, so it starts before the connect.
  let receiving = receive(tofu, rx, server.group, 1_000_000, { link, acks });
  const [group, ch] = await connect(tofu, tx, server.port);
  await send(tofu, tx, group, ch, 1_000_000, mode, BODY);
  await receiving;
  const after1 = Deno.memoryUsage().rss;
  for (let i = 0; i < 9; i++) {
    receiving = receive(tofu, rx, server.group, 1_000_000, { link, acks });
    await send(tofu, tx, group, ch, 1_000_000, mode, BODY);
    await receiving;
    if (Deno.env.get("TOFU_BENCH_TRACE")) {
      const u = Deno.memoryUsage();
      console.error(
        `${i + 2} M: rss ${(u.rss / 2 ** 20).toFixed(0)} MiB, heap ${
          (u.heapUsed / 2 ** 20).toFixed(0)
        } MiB, external ${(u.external / 2 ** 20).toFixed(0)} MiB`,
      );
    }
  }
  const after10 = Deno.memoryUsage().rss;
  return [after1, after10];
}

async function childMemory(mode: TxMode): Promise<[number, number]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-env=TOFU_BENCH_TRACE",
      new URL(import.meta.url).pathname,
      "--child",
      "mem",
      mode,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

// ---------------------------------------------------------------------------------
// zeromq.js and NATS under Node (bench/node/, installed by `npm ci --prefix bench/node`).

const NODE_DIR = new URL("./node/", import.meta.url).pathname;

interface Foreign {
  oneWay: number;
  rtts: number[];
}

async function runNode(
  script: string,
  args: (string | number)[],
): Promise<Foreign | string> {
  try {
    Deno.statSync(`${NODE_DIR}node_modules`);
  } catch {
    return "bench/node/node_modules missing (run npm ci --prefix bench/node)";
  }
  try {
    const out = await new Deno.Command("node", {
      args: [`${NODE_DIR}${script}`, ...args.map(String)],
      cwd: NODE_DIR,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    if (!out.success || text === "") {
      return `node ${script} failed: ${new TextDecoder().decode(out.stderr).split("\n")[0]}`;
    }
    return JSON.parse(text.split("\n").pop()!);
  } catch (err) {
    return `node ${script} not run: ${(err as Error).message}`;
  }
}

async function natsRun(n: number, rounds: number): Promise<Foreign | string> {
  let server: Deno.ChildProcess;
  const port = freePort();
  try {
    server = new Deno.Command("nats-server", {
      args: ["-a", "127.0.0.1", "-p", String(port)],
      stdout: "null",
      stderr: "null",
    }).spawn();
  } catch (err) {
    return `no nats-server binary (${(err as Error).message.split("\n")[0]}); ` +
      "install it with apt-get install nats-server";
  }
  try {
    for (let i = 0;; i++) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        break;
      } catch (err) {
        if (i > 100) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    return await runNode("nats.mjs", [port, n, rounds, BODY]);
  } finally {
    server.kill("SIGTERM");
    await server.status;
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

// ---------------------------------------------------------------------------------

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function median(values: number[]): number {
  return pct(values, 50);
}

function us(ms: number): string {
  return `${(ms * 1000).toFixed(1)} us`;
}

function rate(r: number): string {
  return `${(r / 1e6).toFixed(2)} M msg/s`;
}

function mbps(msgPerS: number, body: number): string {
  return `${((msgPerS * body) / 1e6).toFixed(0)} MB/s`;
}

function x(a: number, b: number): string {
  return Number.isFinite(a) && Number.isFinite(b) ? `${(a / b).toFixed(2)}x` : "n/a";
}

/** Runs each function REPS times, interleaved, after one warm-up each; medians. */
async function interleaved(
  fns: Array<() => Promise<number>>,
): Promise<number[]> {
  for (const f of fns) await f();
  const runs: number[][] = fns.map(() => []);
  for (let r = 0; r < REPS; r++) {
    for (let i = 0; i < fns.length; i++) runs[i]!.push(await fns[i]!());
  }
  return runs.map(median);
}

async function main(): Promise<void> {
  const [l1 = NaN, l5 = NaN] = Deno.loadavg();
  console.log(
    `tofu end-to-end benchmarks: ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}, ` +
      `loopback TCP, load average ${l1.toFixed(2)} / ${l5.toFixed(2)} (1 / 5 min), ` +
      `medians of ${REPS} interleaved rounds after a warm-up${QUICK ? " (quick)" : ""}\n`,
  );
  const n = ONE_WAY;
  const zmq = await runNode("zmq.mjs", [
    Math.min(n, 500_000),
    ROUND_TRIPS,
    BODY,
  ]);
  const nats = await natsRun(Math.min(n, 1_000_000), ROUND_TRIPS);
  for (const [name, r] of [["zeromq.js", zmq], ["NATS", nats]] as const) {
    if (typeof r === "string") console.log(`(${name}: ${r})`);
  }
  const zOne = typeof zmq === "string" ? NaN : zmq.oneWay;
  const nOne = typeof nats === "string" ? NaN : nats.oneWay;

  const [
    raw1 = NaN,
    floor1 = NaN,
    win1 = NaN,
    ready1 = NaN,
    forAwait1 = NaN,
    wait1 = NaN,
  ] = await interleaved([
    () => rawOneWay(n),
    () => floorOneWay(n),
    () => tofuOneWay(n, "window", "drain"),
    () => tofuOneWay(n, "ready", "drain"),
    () => tofuOneWay(n, "window", "forAwait"),
    () => tofuOneWay(n, "window", "wait"),
  ]);
  const [raw2 = NaN, floor2 = NaN, tofu2 = NaN, tofu2ready = NaN] = await interleaved([
    () => twoProcess("raw", n),
    () => twoProcess("floor", n),
    () => twoProcess("tofu", n),
    () => twoProcess("tofu-ready", n),
  ]);
  const [rawBig = NaN, tofuBig = NaN] = await interleaved([
    () => rawOneWay(BIG_N, BIG),
    () => tofuOneWay(BIG_N, "ready", "drain", BIG),
  ]);
  const rtt: number[][][] = [[], []];
  await rawPingPong(ROUND_TRIPS / 10);
  await tofuPingPong(ROUND_TRIPS / 10);
  for (let r = 0; r < REPS; r++) {
    rtt[0]!.push(await rawPingPong(ROUND_TRIPS));
    rtt[1]!.push(await tofuPingPong(ROUND_TRIPS));
  }
  const rttAt = (i: number, p: number) => median(rtt[i]!.map((v) => pct(v, p)));

  const rows = [
    "| figure | raw Deno socket | tofu | tofu / raw | zeromq.js (Node) | NATS (Node, local server) | tofu / zeromq.js | tofu / NATS |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    `| one-way, one process, window sender, tryReceive drain | ${rate(raw1)} | ${rate(win1)} | ${
      x(win1, raw1)
    } | ${rate(zOne)} | ${rate(nOne)} | ${x(win1, zOne)} | ${x(win1, nOne)} |`,
    `| one-way, one process, the contract's floor (bench/_floor.ts, no library) | ${rate(raw1)} | ${
      rate(floor1)
    } | ${x(floor1, raw1)} | | | | |`,
    `| one-way, one process, naive sender awaiting ready() | ${rate(raw1)} | ${rate(ready1)} | ${
      x(ready1, raw1)
    } | | | ${x(ready1, zOne)} | ${x(ready1, nOne)} |`,
    `| one-way, one process, for await receiver | ${rate(raw1)} | ${rate(forAwait1)} | ${
      x(forAwait1, raw1)
    } | | | | |`,
    `| one-way, one process, await waitReceive() per message | ${rate(raw1)} | ${rate(wait1)} | ${
      x(wait1, raw1)
    } | | | | |`,
    `| one-way, two processes, window sender | ${rate(raw2)} | ${rate(tofu2)} | ${
      x(tofu2, raw2)
    } | | | | |`,
    `| one-way, two processes, the contract's floor | ${rate(raw2)} | ${rate(floor2)} | ${
      x(floor2, raw2)
    } | | | | |`,
    `| one-way, two processes, naive sender awaiting ready() | ${rate(raw2)} | ${
      rate(tofu2ready)
    } | ${x(tofu2ready, raw2)} | | | | |`,
    `| one-way, 65,535-byte bodies, one process | ${mbps(rawBig, BIG)} | ${mbps(tofuBig, BIG)} | ${
      x(tofuBig, rawBig)
    } | | | | |`,
  ];
  for (const p of [50, 99]) {
    const r = rttAt(0, p);
    const t = rttAt(1, p);
    const z = typeof zmq === "string" ? NaN : pct(zmq.rtts, p);
    const q = typeof nats === "string" ? NaN : pct(nats.rtts, p);
    rows.push(
      `| round trip p${p}, one process | ${us(r)} | ${us(t)} | ${x(t, r)} | ${us(z)} | ${us(q)} | ${
        x(t, z)
      } | ${x(t, q)} |`,
    );
  }
  console.log(rows.join("\n"));
  console.log(
    `\nratios: ready() sender / window sender ${x(ready1, win1)}; for await / drain ${
      x(forAwait1, win1)
    }; waitReceive per message / drain ${x(wait1, win1)}; window sender / the contract's floor ${
      x(win1, floor1)
    } in one process, ${x(tofu2, floor2)} in two`,
  );

  const [errors, manyRate] = await tofuManyChannels(1000, QUICK ? 5 : 20);
  console.log(
    `1,000 concurrent channels x ${QUICK ? 5 : 20} request/response each on one engine: ` +
      `${errors} errors, ${(manyRate / 1000).toFixed(1)} k round trips/s`,
  );

  if (!QUICK) {
    for (const mode of ["window", "ready"] as const) {
      const [m1, m10] = await childMemory(mode);
      console.log(
        `resident memory (${mode} sender, own process): ${
          (m1 / 2 ** 20).toFixed(0)
        } MiB after 1 M messages, ` +
          `${(m10 / 2 ** 20).toFixed(0)} MiB after 10 M (${(m10 / m1).toFixed(2)}x)`,
      );
    }
  }
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--child");
  if (i < 0) await main();
  else if (Deno.args[i + 1] === "mem") {
    console.log(JSON.stringify(await memoryGrowth(Deno.args[i + 2] as TxMode)));
  } else await childReceiver(Deno.args[i + 1]!, Number(Deno.args[i + 2]));
}
