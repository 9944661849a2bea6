/**
 * The tofu drivers that bench/throughput.ts and bench/ab.ts share: a listener, a connect,
 * the receive loop, the receiver that acks a window sender, the sender (window or naive
 * `ready()`) and an echo server, each taking the library namespace `t` it drives, so
 * bench/ab.ts can run two copies of the library side by side with the same code; and a
 * line reader for a child process's output.
 *
 * @module
 */

import type { ChannelGroup, Engine, Message } from "../mod.ts";

/** The library namespace a driver runs against (../mod.ts, or a copy of it). */
export type Tofu = typeof import("../mod.ts");

/**
 * How the receiver takes messages. "drainAwait" drains like "drain" and awaits a settled
 * promise once per message: the floor of any receiver that takes one promise per message.
 */
export type RxMode = "drain" | "forAwait" | "wait" | "drainAwait";
/** How the sender keeps pace: application acks (a window), or `group.ready()`. */
export type TxMode = "window" | "ready";

const SETTLED = Promise.resolve();

/** The receiver acks every ACK_EVERY Requests. */
export const ACK_EVERY = 4096;
/** The window sender keeps at most WINDOW Requests unacknowledged. */
export const WINDOW = 8 * ACK_EVERY;

/** Listens on 127.0.0.1 (a free port) in a group of its own. */
export async function listen(
  t: Tofu,
  engine: Engine,
): Promise<{ group: ChannelGroup; port: number }> {
  const group = engine.create();
  group.post(
    new t.TcpServerAddress("127.0.0.1", 0).format(engine.get("always")!),
  );
  const w = (await group.waitReceive(5000))!;
  if (w.bhdr.status !== t.Status.success) {
    throw new Error(`listen: ${w.error?.message}`);
  }
  const port = Number(w.headers.get("~listen_on")!.split("|")[2]);
  engine.put(w);
  return { group, port };
}

/** Connects to 127.0.0.1:`port` in a new group; resolves with it and the channel. */
export async function connect(
  t: Tofu,
  engine: Engine,
  port: number,
): Promise<[ChannelGroup, number]> {
  const group = engine.create();
  const { channelNumber } = group.post(
    new t.TcpClientAddress("127.0.0.1", port).format(engine.get("always")!),
  );
  const r = (await group.waitReceive(5000))!;
  if (r.bhdr.opCode !== t.OpCode.HelloResponse) {
    throw new Error(`connect: ${r.error?.message}`);
  }
  engine.put(r);
  return [group, channelNumber];
}

/** The next message of `group`: what is queued, else awaits one. */
export async function next(group: ChannelGroup): Promise<Message> {
  const m = group.tryReceive() ?? await group.waitReceive();
  if (m === null) throw new Error("no message");
  return m;
}

/**
 * Hands every received message to `handle` until it returns true. "drain" takes what is
 * queued with tryReceive and awaits only when the queue is empty; "forAwait" uses the
 * group's async iterator; "wait" awaits waitReceive() for every message; "drainAwait" is
 * "drain" with one await of a settled promise per message.
 */
export async function receiveLoop(
  group: ChannelGroup,
  handle: (m: Message) => boolean,
  mode: RxMode = "drain",
): Promise<void> {
  if (mode === "forAwait") {
    for await (const m of group) if (handle(m)) return;
    return;
  }
  if (mode === "wait") {
    for (;;) if (handle((await group.waitReceive())!)) return;
  }
  const awaitEach = mode === "drainAwait";
  for (;;) {
    for (
      let m = group.tryReceive() ?? await group.waitReceive();
      m !== null;
      m = group.tryReceive()
    ) {
      if (awaitEach) await SETTLED;
      if (handle(m)) return;
    }
  }
}

/** Options of {@linkcode receive}. */
export interface ReceiveOptions {
  /** Carries the accepted channel over to later calls on the same connection. */
  link?: { ch: number };
  /** How messages are taken (default "drain"). */
  mode?: RxMode;
  /** Ack every ACK_EVERY Requests, for a window sender (default true). */
  acks?: boolean;
  /** Called once, when the first Request arrives (after the clock starts). */
  onFirst?: () => void;
}

/**
 * Receiver side: answers the client's Hello, takes `n` Requests, acks every ACK_EVERY
 * (when `acks`). Resolves with the milliseconds from the first Request to the last.
 */
export async function receive(
  t: Tofu,
  engine: Engine,
  group: ChannelGroup,
  n: number,
  { link = { ch: 0 }, mode = "drain", acks = true, onFirst }: ReceiveOptions = {},
): Promise<number> {
  let got = 0;
  let t0 = 0;
  await receiveLoop(group, (m) => {
    const op = m.bhdr.opCode;
    if (op === t.OpCode.Request) {
      if (t0 === 0) {
        t0 = performance.now();
        onFirst?.();
      }
      got++;
      engine.put(m);
      if (acks && (got % ACK_EVERY === 0 || got === n)) {
        const ack = engine.get("always")!;
        ack.bhdr.channelNumber = link.ch;
        ack.bhdr.opCode = t.OpCode.Signal;
        group.post(ack);
      }
    } else if (op === t.OpCode.HelloRequest) {
      link.ch = m.bhdr.channelNumber;
      m.bhdr.opCode = t.OpCode.HelloResponse;
      group.post(m);
    } else engine.put(m);
    return got === n;
  }, mode);
  return performance.now() - t0;
}

/**
 * Sender side: posts `n` Requests of `bodySize` bytes on `ch`. "window": at most WINDOW
 * unacknowledged (the receiver acks every ACK_EVERY). "ready": a naive loop that awaits
 * `group.ready(ch)` before each post and reads nothing back.
 */
export async function send(
  t: Tofu,
  engine: Engine,
  group: ChannelGroup,
  ch: number,
  n: number,
  mode: TxMode,
  bodySize: number,
): Promise<void> {
  const body = new Uint8Array(bodySize).fill(0x61);
  if (mode === "ready") {
    for (let i = 0; i < n; i++) {
      await group.ready(ch);
      const m = engine.get("always");
      m.bhdr.channelNumber = ch;
      m.body.set(body);
      group.post(m);
    }
    return;
  }
  let sent = 0;
  let acked = 0;
  while (acked < n) {
    while (sent < n && sent - acked < WINDOW) {
      const m = engine.get("always")!;
      m.bhdr.channelNumber = ch;
      m.body.set(body);
      group.post(m);
      sent++;
    }
    const a = await next(group);
    if (a.bhdr.opCode === t.OpCode.Signal && a.isFromApplication()) {
      acked = Math.min(n, acked + ACK_EVERY);
    } else if (a.isFromEngine()) {
      throw new Error(`sender: status ${a.bhdr.status}`);
    }
    engine.put(a);
  }
}

/**
 * Serves as an echo server: accepts every Hello and answers each Request with a
 * Response, until `n` Requests were answered. `onReport` sees every engine report.
 */
export function echo(
  t: Tofu,
  engine: Engine,
  group: ChannelGroup,
  n: number,
  onReport: (m: Message) => void = () => {},
): Promise<void> {
  let answered = 0;
  return receiveLoop(group, (m) => {
    if (m.isFromEngine()) onReport(m);
    if (m.bhdr.opCode === t.OpCode.HelloRequest) {
      m.bhdr.opCode = t.OpCode.HelloResponse;
    } else if (m.bhdr.opCode === t.OpCode.Request) {
      m.bhdr.opCode = t.OpCode.Response;
      answered++;
    } else {
      engine.put(m);
      return false;
    }
    group.post(m);
    return answered === n;
  });
}

/** Reads `stdout` (a child process's) line by line: each call resolves with the next line. */
export function lineReader(stdout: ReadableStream<Uint8Array>): () => Promise<string> {
  const lines = stdout.pipeThrough(new TextDecoderStream()).values();
  let buffered = "";
  return async () => {
    while (!buffered.includes("\n")) {
      const r = await lines.next();
      if (r.done) throw new Error("child ended early");
      buffered += r.value;
    }
    const i = buffered.indexOf("\n");
    const line = buffered.slice(0, i);
    buffered = buffered.slice(i + 1);
    return line;
  };
}
