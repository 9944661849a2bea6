// The engine's state and its handling of posts, connects and listens. Engine and
// ChannelGroup are thin public faces over EngineCore and GroupCore.

import { CONNECT_TO, LISTEN_ON, parseAddress, type ParsedAddress } from "./address.ts";
import type { BinaryHeader } from "./binary_header.ts";
import { ChannelNumbers } from "./_channel_numbers.ts";
import { Deadlines, type Timeouts } from "./_deadlines.ts";
import { Heartbeat } from "./_heartbeat.ts";
import type { Channel, EngineHost, GroupHost, HandBack } from "./_host.ts";
import { HAND_BACK_SLICE, IoChannel } from "./_io_channel.ts";
import { ListenerChannel } from "./_listener.ts";
import type { Conn, Listener, Transport } from "./_transport.ts";
import { isolate } from "./_transport_isolate.ts";
import { tcp } from "./_transport_tcp.ts";
import { uds } from "./_transport_uds.ts";
import { type Message, Owner, ownerOf, transfer } from "./message.ts";
import { OpCode, opCodeName } from "./opcode.ts";
import { MessagePool } from "./_pool.ts";
import { ReceiveQueue } from "./_receive_queue.ts";
import { HeldBudget } from "./_read_share.ts";
import { asTofuError, engineSignal, handBack } from "./_report.ts";
import { Status, TofuError } from "./status.ts";
import { opensChannel, refuse, refuseWith, validateForPost } from "./_validate.ts";

export interface ResolvedOptions {
  initialPoolMsgs: number;
  maxPoolMsgs: number;
  maxChannels: number;
  maxQueuedBytes: number;
  maxConnections: number;
  timeouts: Timeouts;
  maxEngineQueuedBytes: number;
  maxReceiveQueueMsgs: number;
  maxChannelHeldMsgs: number;
  maxChannelHeldBytes: number;
  maxEngineHeldBytes: number;
  reusePort: boolean;
}

export class GroupCore implements GroupHost {
  readonly queue: ReceiveQueue;
  readonly channels = new Set<Channel>();
  /** Listens under way (before their channel is registered); destroy() awaits them. */
  readonly opening = new Set<Promise<void>>();
  readonly engine: EngineCore;
  destroyed = false;
  /** The destroy() under way or done: a second call resolves with it. */
  destroying: Promise<void> | null = null;

  constructor(engine: EngineCore) {
    this.engine = engine;
    this.queue = new ReceiveQueue(engine.maxReceiveQueueMsgs);
  }

  deliver(m: Message): void {
    if (!this.queue.push(m)) this.engine.recycle(m);
  }

  get full(): boolean {
    return this.queue.full;
  }

  whenRoom(cb: () => void): () => void {
    return this.queue.whenRoom(cb);
  }
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`Cannot create engine: ${name} ${value} is not a positive integer`);
  }
  return value;
}

function positiveIntegerOrInfinity(name: string, value: number): number {
  if (value !== Infinity && (!Number.isInteger(value) || value < 1)) {
    throw new RangeError(
      `Cannot create engine: ${name} ${value} is not a positive integer or Infinity`,
    );
  }
  return value;
}

export class EngineCore implements EngineHost {
  readonly pool: MessagePool;
  readonly numbers: ChannelNumbers;
  readonly maxQueuedBytes: number;
  readonly maxConnections: number;
  readonly deadlines: Deadlines;
  readonly maxEngineQueuedBytes: number;
  readonly maxReceiveQueueMsgs: number;
  readonly maxChannelHeldMsgs: number;
  readonly maxChannelHeldBytes: number;
  readonly heldBudget: HeldBudget;
  /** TCP listens bind with SO_REUSEPORT (several engines on one port). */
  readonly reusePort: boolean;
  queuedBytes = 0;
  readonly heartbeat = new Heartbeat();
  readonly channels = new Map<number, Channel>();
  readonly groups = new Set<GroupCore>();
  closed = false;
  /** The close() under way or done: a second call resolves with it. */
  #closing: Promise<void> | null = null;
  // Closed channels still handing back unsent messages, and the timer of the next turn's
  // slice. The slice is shared: k channels closing at once hand back HAND_BACK_SLICE
  // messages per turn in all, not k slices.
  #handBacks: HandBack[] = [];
  #handBackTimer: ReturnType<typeof setTimeout> | undefined = undefined;

  constructor(o: ResolvedOptions) {
    this.pool = new MessagePool(o.initialPoolMsgs, o.maxPoolMsgs);
    this.numbers = new ChannelNumbers(o.maxChannels);
    this.maxQueuedBytes = positiveInteger("maxQueuedBytes", o.maxQueuedBytes);
    this.maxEngineQueuedBytes = positiveInteger("maxEngineQueuedBytes", o.maxEngineQueuedBytes);
    this.maxReceiveQueueMsgs = positiveInteger("maxReceiveQueueMsgs", o.maxReceiveQueueMsgs);
    this.maxChannelHeldMsgs = positiveIntegerOrInfinity(
      "maxChannelHeldMsgs",
      o.maxChannelHeldMsgs,
    );
    this.maxChannelHeldBytes = positiveIntegerOrInfinity(
      "maxChannelHeldBytes",
      o.maxChannelHeldBytes,
    );
    this.heldBudget = new HeldBudget(
      positiveIntegerOrInfinity("maxEngineHeldBytes", o.maxEngineHeldBytes),
    );
    this.reusePort = o.reusePort;
    if (
      !(Number.isInteger(o.maxConnections) || o.maxConnections === Infinity) || o.maxConnections < 1
    ) {
      throw new RangeError(
        `Cannot create engine: maxConnections ${o.maxConnections} is not a positive integer or Infinity`,
      );
    }
    this.maxConnections = o.maxConnections;
    this.deadlines = new Deadlines(o.timeouts);
  }

  charge(delta: number): void {
    this.queuedBytes += delta;
  }

  register(ch: Channel): void {
    this.channels.set(ch.number, ch);
    (ch.group as GroupCore).channels.add(ch);
  }

  release(ch: Channel): void {
    const listed = this.channels.get(ch.number) === ch;
    if (listed) this.channels.delete(ch.number);
    if (!ch.isListener) return; // an I/O channel's number and group entry: see retire()
    if (listed) this.numbers.release(ch.number);
    ch.done.then(() => (ch.group as GroupCore).channels.delete(ch));
  }

  // The group keeps a closed channel and its number stays taken until its reports are out
  // (it may be handing back unsent messages over many turns): destroy() waits for it, and
  // no new channel gets its number while reports of the old one may still come.
  retire(ch: Channel): void {
    this.numbers.release(ch.number);
    (ch.group as GroupCore).channels.delete(ch);
  }

  recycle(m: Message): void {
    transfer(m, Owner.Application);
    this.pool.put(m);
  }

  handBack(job: HandBack): void {
    this.#handBacks.push(job);
    this.#handBackTimer ??= setTimeout(this.#handBackSlice, 0);
  }

  withdrawHandBack(job: HandBack): void {
    const i = this.#handBacks.indexOf(job);
    if (i >= 0) this.#handBacks.splice(i, 1);
    if (this.#handBacks.length === 0 && this.#handBackTimer !== undefined) {
      clearTimeout(this.#handBackTimer);
      this.#handBackTimer = undefined;
    }
  }

  // One turn's slice, shared evenly by the channels handing back (oldest first).
  #handBackSlice = (): void => {
    this.#handBackTimer = undefined;
    let budget = HAND_BACK_SLICE;
    while (budget > 0 && this.#handBacks.length > 0) {
      const jobs = this.#handBacks;
      const part = Math.max(1, Math.floor(budget / jobs.length));
      const left: HandBack[] = [];
      for (const job of jobs) {
        if (budget > 0 && !job.finished) budget -= job.step(Math.min(part, budget));
        if (!job.finished) left.push(job);
      }
      this.#handBacks = left;
    }
    if (this.#handBacks.length > 0) this.#handBackTimer = setTimeout(this.#handBackSlice, 0);
  };

  post(group: GroupCore, msg: Message): BinaryHeader {
    const op = msg.bhdr.opCode;
    if (ownerOf(msg) !== Owner.Application) {
      // The one refusal that leaves the message untouched: it is not the caller's.
      throw new TofuError(
        Status.notAllowed,
        `Cannot post ${opCodeName(op)}: the message is not yours (already posted or put)`,
      );
    }
    if (this.closed || group.destroyed) {
      refuse(
        msg,
        Status.shutdownStarted,
        `the ${this.closed ? "engine is closed" : "group is destroyed"}`,
      );
    }
    validateForPost(msg);
    const bh = msg.bhdr;
    if (opensChannel(op) && bh.channelNumber === 0) {
      const n = this.numbers.allocate();
      if (n === null) {
        refuse(
          msg,
          Status.allocationFailed,
          `all ${this.numbers.limit} channel numbers are in use`,
        );
      }
      bh.channelNumber = n;
      const result = bh.clone();
      transfer(msg, Owner.Engine);
      if (op === OpCode.WelcomeRequest) this.#listen(group, msg);
      else this.#connect(group, msg);
      return result;
    }
    const ch = this.channels.get(bh.channelNumber);
    if (ch === undefined) {
      refuse(msg, Status.invalidChannelNumber, `channel ${bh.channelNumber} is not open`);
    }
    if (ch.group !== group) {
      refuse(msg, Status.invelidMchnGroup, `channel ${bh.channelNumber} belongs to another group`);
    }
    const abort = op === OpCode.ByeSignal && bh.internalA === 1;
    if (ch.isListener) {
      if (!abort) {
        refuse(
          msg,
          Status.notAllowed,
          `channel ${bh.channelNumber} is a listener; only a ByeSignal with internalA (close) is allowed`,
        );
      }
      const result = bh.clone();
      transfer(msg, Owner.Engine);
      const err = new TofuError(
        Status.channelClosed,
        `Cannot accept on channel ${ch.number}: the application closed the listener`,
      );
      group.deliver(handBack(msg, Status.channelClosed, err));
      ch.close(Status.channelClosed, err);
      return result;
    }
    if (op === OpCode.WelcomeRequest || op === OpCode.WelcomeResponse) {
      // Local opcodes: written on a connection, they made the peer drop it (recv_failed).
      refuse(
        msg,
        Status.notAllowed,
        `it never goes on the wire, and channel ${bh.channelNumber} is a connection (a WelcomeRequest on channel 0 listens)`,
      );
    }
    const io = ch as IoChannel;
    if (abort) {
      const result = bh.clone();
      transfer(msg, Owner.Engine);
      io.abort(msg);
      return result;
    }
    try {
      io.checkPost(msg);
    } catch (err) {
      refuseWith(msg, err);
    }
    const result = bh.clone();
    try {
      io.post(msg); // encodes the frame; the message goes back to the pool
    } catch (err) {
      refuseWith(msg, err);
    }
    return result;
  }

  #fail(group: GroupCore, msg: Message, op: number, status: number, err: TofuError): void {
    const n = msg.bhdr.channelNumber;
    msg.bhdr.opCode = op;
    group.deliver(handBack(msg, status, err));
    group.deliver(engineSignal(n, Status.channelClosed, msg.bhdr, err));
    this.numbers.release(n);
  }

  #connect(group: GroupCore, hello: Message): void {
    const value = hello.headers.get(CONNECT_TO);
    let addr: ParsedAddress;
    try {
      addr = addressIn(value, CONNECT_TO, "connect");
    } catch (err) {
      this.#fail(group, hello, OpCode.HelloRequest, Status.invalidAddress, err as TofuError);
      return;
    }
    const ch = new IoChannel(this, group, hello.bhdr.channelNumber, hello);
    this.recycle(hello); // its frame is queued on the channel
    this.register(ch);
    // Not tracked by the channel: closing it (abort, timeout, destroy) must not wait for a
    // connect that can hang for minutes. A connect that completes after the close is
    // closed at once by attach(); a late failure finds the channel closed already.
    const t = transportOf(addr);
    dial(t, addr).then(
      (conn) => ch.attach(conn),
      (err) => {
        const status = t.connectFailure(err);
        ch.close(status, asTofuError(status, `connect to ${value}`, err));
      },
    );
  }

  #listen(group: GroupCore, welcome: Message): void {
    const opening = this.#openListener(group, welcome);
    group.opening.add(opening);
    const done = () => group.opening.delete(opening);
    opening.then(done, done);
  }

  async #openListener(group: GroupCore, welcome: Message): Promise<void> {
    const value = welcome.headers.get(LISTEN_ON);
    const id = welcome.bhdr.clone();
    const n = welcome.bhdr.channelNumber;
    // Reports must not arrive before post returns.
    await Promise.resolve();
    const gone = () => {
      if (!this.closed && !group.destroyed) return false;
      this.numbers.release(n);
      this.recycle(welcome);
      return true;
    };
    if (gone()) return;
    let addr: ParsedAddress;
    try {
      addr = addressIn(value, LISTEN_ON, "listen");
    } catch (err) {
      this.#fail(group, welcome, OpCode.WelcomeResponse, Status.invalidAddress, err as TofuError);
      return;
    }
    const t = transportOf(addr);
    let listener: Listener;
    try {
      listener = await listen(t, addr, this.reusePort);
    } catch (err) {
      if (gone()) return;
      const status = t.listenFailure(err);
      this.#fail(
        group,
        welcome,
        OpCode.WelcomeResponse,
        status,
        asTofuError(status, `listen on ${value}`, err),
      );
      return;
    }
    const ch = new ListenerChannel(this, group, n, listener, t.isTemporaryAcceptError, id);
    this.register(ch);
    // Destroyed while the socket path was probed: close what was just opened.
    if (this.closed || group.destroyed) {
      ch.close(Status.shutdownStarted, null, true);
      this.recycle(welcome);
      await ch.done; // its socket is gone by the time destroy() resolves
      return;
    }
    welcome.bhdr.opCode = OpCode.WelcomeResponse;
    welcome.bhdr.origin = 0;
    welcome.bhdr.status = 0;
    replaceHeader(welcome, LISTEN_ON, ch.address);
    transfer(welcome, Owner.Application);
    group.deliver(welcome);
  }

  destroy(group: GroupCore): Promise<void> {
    return group.destroying ??= this.#destroy(group);
  }

  async #destroy(group: GroupCore): Promise<void> {
    group.destroyed = true;
    this.groups.delete(group);
    const err = new TofuError(Status.shutdownStarted, "Cannot receive: the group is destroyed");
    const channels = [...group.channels];
    for (const ch of channels) ch.close(Status.shutdownStarted, err, true);
    for (const m of group.queue.shutdown(err)) this.recycle(m);
    await Promise.all([...channels.map((ch) => ch.done), ...group.opening]);
  }

  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  async #close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.groups].map((g) => this.destroy(g)));
    this.pool.clear();
    this.heartbeat.stop();
  }
}

/** Parses the reserved address header's value; a missing header is `invalid_address`. */
function addressIn(value: string | undefined, header: string, action: string): ParsedAddress {
  if (value === undefined) {
    throw new TofuError(Status.invalidAddress, `Cannot ${action}: no ${header} header`);
  }
  return parseAddress(value);
}

// Each address kind has its transport (src/_transport.ts): the engine itself makes no
// socket call.
// deno-lint-ignore no-explicit-any
function transportOf(addr: ParsedAddress): Transport<any> {
  return addr.transport === "tcp" ? tcp : addr.transport === "uds" ? uds : isolate;
}

// Async so that anything a transport throws becomes a rejection, never a throw out of post().
// deno-lint-ignore no-explicit-any
async function dial(t: Transport<any>, addr: ParsedAddress): Promise<Conn> {
  return await t.dial(addr);
}

async function listen(
  // deno-lint-ignore no-explicit-any
  t: Transport<any>,
  addr: ParsedAddress,
  reusePort: boolean,
): Promise<Listener> {
  if (reusePort && addr.transport === "tcp") return await tcp.listenShared(addr);
  return await t.listen(addr);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Rewrites the first `name:` line of the raw block and keeps every other line byte for
// byte: rebuilding through append() would drop or reject lines the peer was free to send.
function replaceHeader(msg: Message, name: string, value: string): void {
  const lines = decoder.decode(msg.headers.raw()).split("\r\n");
  const i = lines.findIndex((line) => {
    const colon = line.indexOf(":");
    return (colon < 0 ? line : line.slice(0, colon)) === name;
  });
  if (i < 0) return;
  lines[i] = `${name}:${value}`;
  try {
    msg.headers.setRaw(encoder.encode(lines.join("\r\n")));
  } catch {
    // The longer address would push the block past 65535 bytes: keep the request's own.
  }
}
