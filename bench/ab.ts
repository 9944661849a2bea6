/**
 * In-process A/B of two copies of the library: each scenario runs against copy A and copy B
 * alternately (A, B, B, A, ... so neither always goes first), after one warm-up of each, and
 * prints the medians of wall-clock throughput and of CPU time per message
 * (`process.cpuUsage()`: user + system of the whole process, both sides of the socket),
 * plus the B/A ratio of each round. CPU per message is disturbed less by other load on
 * the machine than wall time.
 *
 * Make the copies with `git archive`:
 *
 * ```sh
 * rm -rf /tmp/ab && mkdir -p /tmp/ab/A /tmp/ab/B
 * git archive HEAD~1 mod.ts src | tar -x -C /tmp/ab/A
 * git archive HEAD mod.ts src | tar -x -C /tmp/ab/B   # or: cp -r mod.ts src /tmp/ab/B
 * deno run --config deno.json --allow-net=127.0.0.1 --allow-read=/tmp/ab --allow-env \
 *   --allow-sys=loadavg bench/ab.ts --a /tmp/ab/A --b /tmp/ab/B --scenario drain --rounds 7
 * ```
 *
 * `--config deno.json` (the root one) supplies the `@std` import map that bench/deno.json
 * lacks. `--two` runs the receiver in a child `deno` process (needs --allow-run too).
 * `--profile FILE` profiles copy B alone (`--heap`: allocations instead of CPU time).
 * `--b-rx MODE` (drain, forAwait, wait) makes copy B's receiver take messages that way, so
 * `--a X --b X --scenario drain --b-rx forAwait` measures one receiver against another;
 * `--b-tx ready` likewise makes copy B's sender the naive `ready()` loop.
 * With `--v8-flags=--expose-gc` (before the script name), garbage is collected before each
 * round, so the previous round's engines are not collected during the next one.
 * `--isolated` (with --allow-run) runs every round in a fresh child process that loads one
 * copy only (a warm-up round there, then the measured one): in one process the copies share
 * the drivers' compiled code and the heap, and an A/A run favoured the copy loaded first
 * (see bench/RESULTS.md). Then compare CPU per message, and run A/B and B/A both.
 *
 * Scenarios: drain (window sender, tryReceive drain), ready (naive sender awaiting ready()),
 * forAwait, wait (await waitReceive() per message), big (65,535-byte bodies, ready sender),
 * pingpong (round trips: p50 and p99 instead of a rate).
 *
 * @module
 */

// deno-lint-ignore-file no-console

import process from "node:process";
import { parseArgs } from "@std/cli/parse-args";
import type { ChannelGroup as Group } from "../mod.ts";
import {
  connect,
  echo,
  lineReader,
  listen as server,
  receive,
  type RxMode,
  send,
  type Tofu,
  type TxMode,
  WINDOW,
} from "./_drivers.ts";

const args = parseArgs(Deno.args, {
  string: [
    "a",
    "b",
    "scenario",
    "rounds",
    "n",
    "pool",
    "profile",
    "child",
    "b-rx",
    "b-tx",
    "solo",
    "rx",
    "tx",
  ],
  boolean: ["heap", "two", "isolated"],
  default: { scenario: "drain", rounds: "7" },
});
const ROUNDS = Number(args.rounds);
const SCENARIO = args.scenario;
const BODY = SCENARIO === "big" ? 65535 : 64;
const N = Number(
  args.n ??
    (SCENARIO === "big" ? 20_000 : SCENARIO === "pingpong" ? 10_000 : 400_000),
);
const POOL = Number(args.pool ?? WINDOW + 1024);

async function load(dir: string): Promise<Tofu> {
  return await import(`file://${dir}/mod.ts`);
}

function engineOf(t: Tofu) {
  // The window sender queues up to 32,768 frames (each charged its size + 512 bytes).
  return new t.Engine({
    initialPoolMsgs: POOL,
    maxPoolMsgs: POOL,
    maxQueuedBytes: 64 << 20,
  });
}

const RX_MODE: RxMode = SCENARIO === "forAwait" || SCENARIO === "wait" ? SCENARIO : "drain";
const TX_MODE: TxMode = SCENARIO === "ready" || SCENARIO === "big" ? "ready" : "window";
// --b-tx MODE: copy B's sender keeps pace that way instead (one process only), so that
// `--a X --b X --scenario drain --b-tx ready` measures the naive ready() sender against
// the window sender (B's receiver then sends no acks).
const B_TX: TxMode = (args["b-tx"] as TxMode | undefined) ?? TX_MODE;
// --b-rx MODE: copy B's receiver takes messages that way instead (one process only), so
// that `--a X --b X --scenario drain --b-rx forAwait` measures one receiver against another.
const B_RX: RxMode = (args["b-rx"] as RxMode | undefined) ?? RX_MODE;

/** The receiving side: resolves with [ms from the first Request to the last, CPU us]. */
async function receiver(
  t: Tofu,
  rxE: InstanceType<Tofu["Engine"]>,
  group: Group,
  mode: RxMode = RX_MODE,
  tx: TxMode = TX_MODE,
): Promise<[number, number]> {
  let c0 = process.cpuUsage();
  const ms = await receive(t, rxE, group, N, {
    mode,
    acks: tx === "window",
    onFirst: () => c0 = process.cpuUsage(),
  });
  const cpu = process.cpuUsage(c0);
  return [ms, cpu.user + cpu.system];
}

/** The sending side: connects to `port` and sends N Requests. */
async function sender(
  t: Tofu,
  txE: InstanceType<Tofu["Engine"]>,
  port: number,
  tx: TxMode = TX_MODE,
): Promise<void> {
  const [group, ch] = await connect(t, txE, port);
  await send(t, txE, group, ch, N, tx, BODY);
}

/**
 * One round: [messages per second, CPU ns per message, NaN] or, for pingpong,
 * [p50 us, CPU ns per round trip, p99 us]. With --two the receiver runs in a child
 * process (same copy) and CPU is the sum of both processes.
 */
async function round(
  t: Tofu,
  dir: string,
  rx: RxMode = RX_MODE,
  tx: TxMode = TX_MODE,
): Promise<number[]> {
  // With --v8-flags=--expose-gc: the previous round's engines (their pools) are collected
  // before this round, not during it.
  (globalThis as { gc?: () => void }).gc?.();
  if (args.two) return await twoProcess(t, dir);
  const rxE = engineOf(t);
  const txE = engineOf(t);
  try {
    const srv = await server(t, rxE);
    if (SCENARIO === "pingpong") {
      return await pingpong(t, rxE, srv.group, srv.port);
    }
    const receiving = receiver(t, rxE, srv.group, rx, tx);
    await sender(t, txE, srv.port, tx);
    const [ms, cpuUs] = await receiving;
    return [N / (ms / 1000), (cpuUs * 1000) / N, NaN];
  } catch (err) {
    console.error(err);
    throw err;
  } finally {
    await txE.close();
    await rxE.close();
  }
}

async function twoProcess(t: Tofu, dir: string): Promise<number[]> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      new URL("../deno.json", import.meta.url).pathname,
      `--allow-read=${dir}`,
      "--allow-net=127.0.0.1",
      "--allow-env",
      new URL(import.meta.url).pathname,
      "--child",
      dir,
      "--scenario",
      SCENARIO,
      "--n",
      String(N),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const nextLine = lineReader(child.stdout);
  const port = Number(await nextLine());
  const txE = engineOf(t);
  const c0 = process.cpuUsage();
  try {
    await sender(t, txE, port);
    const [ms, rxCpuUs] = JSON.parse(await nextLine()) as [number, number];
    const tx = process.cpuUsage(c0);
    if (Deno.env.get("AB_SPLIT")) {
      console.error(
        `  rx ${(rxCpuUs * 1000 / N).toFixed(0)} ns/msg, tx ${
          ((tx.user + tx.system) * 1000 / N).toFixed(0)
        } ns/msg (system ${(tx.system * 1000 / N).toFixed(0)}), ${
          (N / ms / 1000).toFixed(2)
        } M msg/s`,
      );
    }
    await txE.close(); // the child waits for this before it closes its side
    await child.status;
    return [N / (ms / 1000), ((rxCpuUs + tx.user + tx.system) * 1000) / N, NaN];
  } finally {
    await txE.close();
  }
}

async function pingpong(
  t: Tofu,
  engine: InstanceType<Tofu["Engine"]>,
  sgroup: Group,
  port: number,
): Promise<number[]> {
  const serving = echo(t, engine, sgroup, N);
  const [group, ch] = await connect(t, engine, port);
  const body = new Uint8Array(BODY).fill(0x61);
  const rtts: number[] = [];
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    const m = engine.get("always")!;
    m.bhdr.channelNumber = ch;
    m.body.set(body);
    group.post(m);
    engine.put(group.tryReceive() ?? (await group.waitReceive())!);
    rtts.push(performance.now() - t0);
  }
  const cpu = process.cpuUsage(c0);
  await serving;
  rtts.sort((a, b) => a - b);
  return [
    rtts[Math.floor(rtts.length / 2)]! * 1000,
    ((cpu.user + cpu.system) * 1000) / N,
    rtts[Math.floor(rtts.length * 0.99)]! * 1000,
  ];
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

if (args.profile) {
  // Profiles B alone (node:inspector, 200 us sampling) and writes a .cpuprofile.
  const { Session } = await import("node:inspector");
  const s = new Session();
  s.connect();
  const post = (method: string, params: object = {}) =>
    new Promise<unknown>((resolve, reject) =>
      s.post(method, params, (e, r) => e ? reject(e) : resolve(r))
    );
  const B = await load(args.b!);
  await round(B, args.b!);
  // --heap: the sampling heap profiler instead (what allocates, not what runs).
  const [domain, start, stop] = args.heap
    ? ["HeapProfiler", "startSampling", "stopSampling"]
    : ["Profiler", "start", "stop"];
  await post(`${domain}.enable`);
  if (!args.heap) await post("Profiler.setSamplingInterval", { interval: 200 });
  await post(
    `${domain}.${start}`,
    args.heap
      ? {
        samplingInterval: 256,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      }
      : {},
  );
  for (let r = 0; r < ROUNDS; r++) await round(B, args.b!);
  const { profile } = await post(`${domain}.${stop}`) as { profile: unknown };
  Deno.writeTextFileSync(args.profile, JSON.stringify(profile));
  Deno.exit(0);
}
if (args.child) {
  // The receiving process of --two: prints its port, then [ms, CPU us] once done.
  const t = await load(args.child);
  const rxE = engineOf(t);
  const srv = await server(t, rxE);
  console.log(srv.port);
  console.log(JSON.stringify(await receiver(t, rxE, srv.group)));
  // Closing at once could hand back the final ack before it is written: wait until the
  // sender, which closes its engine once it has every ack, has gone.
  for (;;) {
    const m = await srv.group.waitReceive(10_000);
    if (
      m === null ||
      (m.isFromEngine() && m.bhdr.status === t.Status.channelClosed)
    ) break;
    rxE.put(m);
  }
  await rxE.close();
  Deno.exit(0);
}
if (args.solo) {
  // One copy alone in this process (--isolated): a warm-up round, then one measured round,
  // printed as JSON for the parent.
  const t = await load(args.solo);
  const rx = (args.rx as RxMode | undefined) ?? RX_MODE;
  const tx = (args.tx as TxMode | undefined) ?? TX_MODE;
  await round(t, args.solo, rx, tx);
  console.log(JSON.stringify(await round(t, args.solo, rx, tx)));
  Deno.exit(0);
}

/**
 * --isolated: each round runs in a fresh `deno` process that loads one copy only. In one
 * process the two copies share the drivers' code (and its inline caches) and the heap,
 * which favoured one copy: A/A runs (the same tree twice, 1 M messages, 9-11 rounds) gave
 * the copy loaded second 0.80x the throughput and 1.18-1.24x the CPU per message with
 * --expose-gc, 0.96x and 1.02x without; isolated, 0.995x the CPU.
 */
async function soloRound(
  dir: string,
  rx: RxMode,
  tx: TxMode,
): Promise<number[]> {
  const flags = [
    "run",
    "--config",
    new URL("../deno.json", import.meta.url).pathname,
    `--allow-read=${dir}`,
    "--allow-net=127.0.0.1",
    "--allow-env",
  ];
  if (args.two) flags.push("--allow-run"); // the child starts the receiver's process
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      ...flags,
      new URL(import.meta.url).pathname,
      "--solo",
      dir,
      "--scenario",
      SCENARIO,
      "--n",
      String(N),
      "--pool",
      String(POOL),
      "--rx",
      rx,
      "--tx",
      tx,
      ...(args.two ? ["--two"] : []),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`solo round of ${dir} failed`);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]!) as number[];
}

const ra: number[][] = [];
const rb: number[][] = [];
if (args.isolated) {
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) {
      ra.push(await soloRound(args.a!, RX_MODE, TX_MODE));
      rb.push(await soloRound(args.b!, B_RX, B_TX));
    } else {
      rb.push(await soloRound(args.b!, B_RX, B_TX));
      ra.push(await soloRound(args.a!, RX_MODE, TX_MODE));
    }
  }
} else {
  const A = await load(args.a!);
  const B = await load(args.b!);
  await round(A, args.a!);
  await round(B, args.b!, B_RX, B_TX);
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) {
      ra.push(await round(A, args.a!));
      rb.push(await round(B, args.b!, B_RX, B_TX));
    } else {
      rb.push(await round(B, args.b!, B_RX, B_TX));
      ra.push(await round(A, args.a!));
    }
  }
}
const [l1 = NaN] = Deno.loadavg();
const pp = SCENARIO === "pingpong";
const show = (m: number[]) =>
  pp
    ? `p50 ${m[0]!.toFixed(1)} us, p99 ${m[2]!.toFixed(1)} us, ${
      m[1]!.toFixed(0)
    } ns CPU/round trip`
    : `${(m[0]! / 1e6).toFixed(3)} M msg/s, ${m[1]!.toFixed(0)} ns CPU/msg`;
const ma = [0, 1, 2].map((k) => median(ra.map((r) => r[k]!)));
const mb = [0, 1, 2].map((k) => median(rb.map((r) => r[k]!)));
console.log(
  `${SCENARIO} n=${N} rounds=${ROUNDS} load ${l1.toFixed(2)}\n` +
    `A: ${show(ma)}\nB: ${show(mb)}\n` +
    `B/A: ${pp ? "p50" : "rate"} ${(mb[0]! / ma[0]!).toFixed(3)}x, CPU ${
      (mb[1]! / ma[1]!).toFixed(3)
    }x${pp ? `, p99 ${(mb[2]! / ma[2]!).toFixed(3)}x` : ""}; per round ${
      ra.map((a, i) => (rb[i]![0]! / a[0]!).toFixed(2)).join(" ")
    } (first figure)`,
);
