// The five commands. Each returns the exit status; failures are thrown as `Failure`.

import { Engine, type Message, OpCode, opCodeName, Status, TofuError } from "../mod.ts";
import { formatMessage, ms, type ShowOptions, summarize, table } from "./_format.ts";
import { type Address, Client, Failure, Interrupted, receive, reportFailure } from "./_peer.ts";

/** Where a command writes and what stops it. */
export interface Context {
  /** Aborted (with `Interrupted`) by the first Ctrl-C. */
  signal: AbortSignal;
  /** Writes to stdout. */
  out(text: string): void;
  /** Writes one line to stderr. */
  note(line: string): void;
  /** Whether stderr is a terminal (live progress lines). */
  progress: boolean;
}

/** Exit status of a command stopped by Ctrl-C (128 + SIGINT). */
export const INTERRUPTED = 130;

/** Options of `tofu listen`. */
export interface ListenOptions extends ShowOptions {
  echo: boolean;
  quiet: boolean;
  /** Exit after this many Requests, Responses or Signals. */
  count: number | undefined;
  /** How long the close waits for the peers' ByeResponses. */
  timeoutMs: number;
}

/** `tofu listen`: accepts peers and prints every message until `--count` or Ctrl-C. */
export async function listen(address: Address, o: ListenOptions, ctx: Context): Promise<number> {
  await using engine = new Engine({ initialPoolMsgs: 64, maxPoolMsgs: 1024 });
  const group = engine.create();
  const action = `listen on ${address.text}`;
  const listener = group.post(address.server().format(engine.get("always")!)).channelNumber;
  const welcome = await group.waitReceive(10_000, { signal: ctx.signal });
  if (welcome === null) throw new Failure("timeout", `Cannot ${action}: no WelcomeResponse`);
  if (welcome.bhdr.status !== Status.success) {
    const failure = reportFailure(welcome, address, action);
    engine.put(welcome);
    throw failure;
  }
  ctx.note(`listening on ${welcome.headers.get("~listen_on") ?? address.text}`);
  engine.put(welcome);

  const open = new Set<number>();
  let counted = 0;
  let closing = false;
  let listenerFailure: Failure | undefined;

  // Answers refused per channel: the first is told at once, the others counted and told
  // when the channel closes (a peer that never reads made one line per message: 53,345).
  const refused = new Map<number, number>();
  const tellRefused = (channel: number): void => {
    const n = refused.get(channel) ?? 0;
    refused.delete(channel);
    if (n > 1) ctx.note(`${n - 1} more answers on channel ${channel} were refused`);
  };

  const reply = (m: Message, op: OpCode): void => {
    const asked = opCodeName(m.bhdr.opCode);
    m.bhdr.opCode = op;
    try {
      group.post(m);
    } catch (err) {
      if (!(err instanceof TofuError)) throw err;
      // While closing, a peer's own ByeRequest may cross ours: nothing to say about it.
      if (!closing) {
        const channel = m.bhdr.channelNumber;
        const n = (refused.get(channel) ?? 0) + 1;
        refused.set(channel, n);
        if (n === 1) ctx.note(`${err.message} (answering the ${asked} on channel ${channel})`);
      }
      engine.put(m);
    }
  };

  const handle = (m: Message): void => {
    const h = m.bhdr;
    if (m.isFromEngine()) {
      const closed = h.opCode === OpCode.Signal && h.status === Status.channelClosed;
      if (h.channelNumber === listener) {
        if (closed && !closing) listenerFailure = reportFailure(m, address, action);
      } else {
        if (closed) {
          open.delete(h.channelNumber);
          tellRefused(h.channelNumber);
        }
        if (!o.quiet) ctx.out(formatMessage(m, "received", o));
      }
      engine.put(m);
      return;
    }
    open.add(h.channelNumber);
    if (!o.quiet) ctx.out(formatMessage(m, "received", o));
    switch (h.opCode) {
      case OpCode.HelloRequest:
        return reply(m, OpCode.HelloResponse);
      case OpCode.ByeRequest:
        return reply(m, OpCode.ByeResponse);
      case OpCode.Request:
        counted++;
        return o.echo ? reply(m, OpCode.Response) : engine.put(m);
      case OpCode.Response:
      case OpCode.Signal:
        counted++;
    }
    engine.put(m);
  };

  await untilInterrupted(async () => {
    while ((o.count === undefined || counted < o.count) && listenerFailure === undefined) {
      const m = await group.waitReceive(Infinity, { signal: ctx.signal });
      if (m !== null) handle(m);
    }
  });
  if (listenerFailure !== undefined) throw listenerFailure;

  // Graceful close: stop accepting, say bye to every peer, wait for their answers.
  closing = true;
  const stop = engine.get("always")!;
  stop.bhdr.channelNumber = listener;
  stop.bhdr.opCode = OpCode.ByeSignal;
  stop.bhdr.internalA = 1;
  group.post(stop);
  for (const channel of open) {
    const bye = engine.get("always")!;
    bye.bhdr.channelNumber = channel;
    bye.bhdr.opCode = OpCode.ByeRequest;
    try {
      group.post(bye);
    } catch {
      engine.put(bye); // closed in the meantime
      open.delete(channel);
    }
  }
  const deadline = performance.now() + o.timeoutMs;
  while (open.size > 0) {
    const m = await receive(group, deadline);
    if (m === null) break;
    handle(m);
  }
  for (const channel of [...refused.keys()]) tellRefused(channel);
  return 0;
}

/** What `send` and `request` put into their message. */
export interface Outgoing {
  headers: Array<[string, string]>;
  body: Uint8Array | string;
}

function fill(m: Message, what: Outgoing): Message {
  for (const [name, value] of what.headers) m.headers.append(name, value);
  m.body.set(what.body);
  return m;
}

/** Options of a command that connects. */
export interface ClientCommandOptions {
  timeoutMs: number;
}

/** Options of `tofu send`. */
export interface SendOptions extends ShowOptions, ClientCommandOptions, Outgoing {
  op: typeof OpCode.Request | typeof OpCode.Signal;
  more: boolean;
}

/** `tofu send`: connects, sends one message, prints it and anything the peer sends back. */
export async function send(address: Address, o: SendOptions, ctx: Context): Promise<number> {
  await using client = await Client.connect(address, {
    timeoutMs: o.timeoutMs,
    signal: ctx.signal,
  });
  const m = fill(client.message(o.op), o);
  m.bhdr.more = o.more ? 1 : 0;
  const shown = m.clone();
  shown.bhdr.messageId = client.group.post(m).messageId;
  ctx.out(formatMessage(shown, "sent", o));
  const failure = await sayBye(client, ctx, (r) => ctx.out(formatMessage(r, "received", o)));
  if (failure !== undefined) throw failure;
  return 0;
}

// Runs `work` to its end or to the first Ctrl-C; says whether Ctrl-C ended it.
async function untilInterrupted(work: () => Promise<void>): Promise<boolean> {
  try {
    await work();
    return false;
  } catch (err) {
    if (!(err instanceof Interrupted)) throw err;
    return true;
  }
}

// Says bye; a message of ours that comes back instead of being written is a failure.
async function sayBye(
  client: Client,
  ctx: Context,
  show: (m: Message) => void = () => {},
): Promise<Failure | undefined> {
  let failure: Failure | undefined;
  const closed = await client.bye((m) => {
    if (m.isFromEngine()) {
      if (m.bhdr.opCode !== OpCode.ByeRequest) {
        failure ??= reportFailure(m, client.address, `send to ${client.address.text}`);
      }
    } else {
      show(m);
    }
    client.engine.put(m);
  });
  if (!closed && failure === undefined) {
    ctx.note(`no ByeResponse within ${client.timeoutMs} ms; closed the channel`);
  }
  return failure;
}

/** Options of `tofu request`. */
export interface RequestOptions extends ShowOptions, ClientCommandOptions, Outgoing {}

/**
 * `tofu request`: sends a Request and prints its Response (every chunk of a `more`
 * stream, and Signals under the same message id).
 */
export async function request(address: Address, o: RequestOptions, ctx: Context): Promise<number> {
  await using client = await Client.connect(address, {
    timeoutMs: o.timeoutMs,
    signal: ctx.signal,
  });
  const action = `request on ${address.text}`;
  const id = client.group.post(fill(client.message(OpCode.Request), o)).messageId;
  // The timeout is for each answer: it starts again with every chunk of a streamed one
  // (it was one deadline for the whole stream, though the help says "each answer").
  let deadline = performance.now() + o.timeoutMs;
  const interrupted = await untilInterrupted(async () => {
    for (let done = false; !done;) {
      const m = await client.next(deadline, action);
      const op = m.bhdr.opCode;
      if (m.bhdr.messageId === id && (op === OpCode.Response || op === OpCode.Signal)) {
        ctx.out(formatMessage(m, "received", o));
        done = op === OpCode.Response && m.bhdr.more === 0;
        deadline = performance.now() + o.timeoutMs;
      }
      client.engine.put(m);
    }
  });
  const failure = await sayBye(client, ctx);
  if (failure !== undefined) throw failure;
  return interrupted ? INTERRUPTED : 0;
}

/** A live `label done/total  rate msg/s  elapsed` line on a terminal's stderr. */
class Progress {
  readonly #label: string;
  readonly #total: number;
  readonly #on: boolean;
  readonly #start = performance.now();
  #last = 0;
  #drawn = false;

  constructor(label: string, total: number, on: boolean) {
    this.#label = label;
    this.#total = total;
    this.#on = on;
  }

  update(done: number): void {
    if (!this.#on) return;
    const now = performance.now();
    if (now - this.#last < 100) return;
    this.#last = now;
    const seconds = (now - this.#start) / 1000;
    const rate = seconds > 0 ? Math.round(done / seconds) : 0;
    const line = `${this.#label} ${done}/${this.#total}  ${rate} msg/s  ${seconds.toFixed(1)} s`;
    Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[2K${line}`));
    this.#drawn = true;
  }

  clear(): void {
    if (this.#drawn) Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[2K"));
  }
}

/** Options of `tofu ping`. */
export interface PingOptions extends ClientCommandOptions {
  count: number;
  json: boolean;
}

/** `tofu ping`: sequential round trips, then min/p50/p99/max. */
export async function ping(address: Address, o: PingOptions, ctx: Context): Promise<number> {
  await using client = await Client.connect(address, {
    timeoutMs: o.timeoutMs,
    signal: ctx.signal,
  });
  const action = `ping ${address.text}`;
  const samples: number[] = [];
  const progress = new Progress("ping", o.count, ctx.progress);
  const start = performance.now();
  const interrupted = await untilInterrupted(async () => {
    while (samples.length < o.count) {
      const req = client.message(OpCode.Request);
      req.body.set("ping");
      const sent = performance.now();
      const id = client.group.post(req).messageId;
      const deadline = sent + o.timeoutMs;
      for (;;) {
        const m = await client.next(deadline, action);
        const answered = m.bhdr.opCode === OpCode.Response && m.bhdr.messageId === id;
        client.engine.put(m);
        if (answered) break;
      }
      samples.push(performance.now() - sent);
      progress.update(samples.length);
    }
  }).finally(() => progress.clear());
  const elapsed = performance.now() - start;
  await sayBye(client, ctx);
  const s = summarize(samples);
  if (o.json) {
    ctx.out(
      JSON.stringify({
        command: "ping",
        address: address.text,
        count: samples.length,
        elapsedMs: elapsed,
        latencyMs: s,
      }) + "\n",
    );
  } else {
    ctx.out(table(`ping ${address.text}: ${samples.length} round trips`, [
      ["min", ms(s.min)],
      ["p50", ms(s.p50)],
      ["p99", ms(s.p99)],
      ["max", ms(s.max)],
      ["elapsed", ms(elapsed)],
    ]));
  }
  return interrupted ? INTERRUPTED : 0;
}

/** Options of `tofu bench`. */
export interface BenchOptions extends ClientCommandOptions {
  count: number;
  size: number;
  window: number;
  json: boolean;
}

/**
 * `tofu bench`: `count` Requests of `size` bytes, at most `window` in flight, against an
 * echoing peer; msg/s, MB/s and latency percentiles.
 */
export async function bench(address: Address, o: BenchOptions, ctx: Context): Promise<number> {
  await using client = await Client.connect(address, {
    timeoutMs: o.timeoutMs,
    signal: ctx.signal,
    poolMsgs: Math.max(16, o.window * 2),
  });
  const action = `bench ${address.text}`;
  const payload = new Uint8Array(o.size).map((_, i) => 0x61 + (i % 26));
  const sentAt = new Map<bigint, number>();
  const latencies: number[] = [];
  const progress = new Progress("bench", o.count, ctx.progress);
  const start = performance.now();
  let sent = 0;
  // At most 2 MiB in flight: the echoing peer must queue every answer (4 MiB by default,
  // each charged its frame and 512 bytes), and an echo it cannot queue is never answered;
  // this side's own queue refused the 64 Requests of 65,535 bytes of the default window.
  const inFlight = Math.max(1, Math.min(o.window, Math.floor((2 << 20) / (o.size + 528))));
  const interrupted = await untilInterrupted(async () => {
    while (latencies.length < o.count) {
      while (sent < o.count && sentAt.size < inFlight) {
        const req = client.message(OpCode.Request);
        req.body.set(payload);
        sentAt.set(client.group.post(req).messageId, performance.now());
        sent++;
      }
      const m = await client.next(performance.now() + o.timeoutMs, action);
      const at = m.bhdr.opCode === OpCode.Response ? sentAt.get(m.bhdr.messageId) : undefined;
      if (at !== undefined) {
        latencies.push(performance.now() - at);
        sentAt.delete(m.bhdr.messageId);
      }
      client.engine.put(m);
      progress.update(latencies.length);
    }
  }).finally(() => progress.clear());
  const elapsed = performance.now() - start;
  await sayBye(client, ctx);
  const s = summarize(latencies);
  const perSecond = latencies.length / (elapsed / 1000);
  const mbPerSecond = perSecond * o.size / 1e6;
  if (o.json) {
    ctx.out(
      JSON.stringify({
        command: "bench",
        address: address.text,
        count: latencies.length,
        size: o.size,
        window: o.window,
        elapsedMs: elapsed,
        msgPerSec: perSecond,
        mbPerSec: mbPerSecond,
        latencyMs: s,
      }) + "\n",
    );
  } else {
    ctx.out(table(
      `bench ${address.text}: ${latencies.length} requests of ${o.size} bytes, window ${o.window}`,
      [
        ["elapsed", ms(elapsed)],
        ["msg/s", perSecond.toFixed(0)],
        ["MB/s", `${mbPerSecond.toFixed(2)} (payload, each way)`],
        ["latency min", ms(s.min)],
        ["latency p50", ms(s.p50)],
        ["latency p90", ms(s.p90)],
        ["latency p99", ms(s.p99)],
        ["latency max", ms(s.max)],
      ],
    ));
  }
  return interrupted ? INTERRUPTED : 0;
}
