// One connected socket: a client channel (from a HelloRequest) or an accepted one.
// Send side: a posted message is encoded into the channel's send lanes at once and goes
// back to the pool, so a peer that never reads holds only bytes charged to this channel
// (maxQueuedBytes) and to the engine (maxEngineQueuedBytes), never pool messages. Unsent
// frames are handed back as messages when the channel closes. Writes are coalesced.
// Read side: a channel reads into a free pool message or a new one while it holds fewer
// than its read share of messages not yet back (maxChannelHeldMsgs, maxChannelHeldBytes,
// and all channels' bytes maxEngineHeldBytes past a channel's allowance), while fewer than
// maxPoolMsgs (at most MAX_UNREAD_WINDOW, 1,024) of its messages wait unread in the group's
// receive queue, and while that queue has room; otherwise it stops reading (backpressure for
// that peer alone).

import { BinaryHeader } from "./binary_header.ts";
import { dropSpilled, FrameDecoder, hasLargePartial, spillFrame, takeSpilled } from "./codec.ts";
import type { Message } from "./message.ts";
import { OpCode, opCodeName } from "./opcode.ts";
import { MAX_UNREAD_WINDOW, ReadShare, Stop } from "./_read_share.ts";
import {
  type Chunk,
  ENGINE_BUDGET_ALLOWANCE,
  QUEUED_MESSAGE_OVERHEAD,
  SendLane,
} from "./_send_lane.ts";
import { SendRoom } from "./_send_room.ts";
import { asTofuError, engineSignal, handBack } from "./_report.ts";
import { Status, statusName, TofuError } from "./status.ts";
import { closeQuietly, type Conn } from "./_transport.ts";
import type { Channel, EngineHost, GroupHost, HandBack } from "./_host.ts";
import type { Expiry, Watch } from "./_deadlines.ts";

// Posted messages are validated, which sets both lengths in the binary header; the
// frame is encoded in the same call, so later changes by the application cannot matter.
function postedLength(m: Message): number {
  return 16 + m.bhdr.textHeadersLength + m.bhdr.bodyLength;
}

/** What a queued frame of `size` bytes is charged against the budgets. */
function cost(size: number): number {
  return size + QUEUED_MESSAGE_OVERHEAD;
}

/** Unsent messages a closing channel hands back per turn of the event loop. */
export const HAND_BACK_SLICE = 512;

// The flush awaits it to start one microtask after the post that kicked it.
const SETTLED = Promise.resolve();

function isBye(op: number): boolean {
  return op === OpCode.ByeRequest || op === OpCode.ByeResponse || op === OpCode.ByeSignal;
}

export class IoChannel implements Channel {
  readonly number: number;
  readonly group: GroupHost;
  readonly isListener = false;
  readonly done: Promise<void>;

  readonly #host: EngineHost;
  #conn: Conn | null = null;
  // The HelloRequest and internalA messages go in the urgent lane, written first.
  #urgent: SendLane | null = new SendLane();
  #normal: SendLane | null = new SendLane();
  #queuedBytes = 0;
  // Senders awaiting room (ChannelGroup.ready), woken as written bytes are released.
  readonly #room = new SendRoom();
  #writing = false;
  #sendClosed: string | null = null;
  #byeSent = false;
  #byeReceived = false;
  #decoder: FrameDecoder | null = new FrameDecoder();
  #starving = false;
  #poolEmptyError: TofuError | null = null;
  // Messages read on this channel and not yet back in the pool.
  readonly #share: ReadShare;
  // While the reader waits (for its share or for room in the receive queue): ends the
  // wait on close, and withdraws it from the share or the queue.
  #wakeReader: (() => void) | null = null;
  #shareWait: (() => void) | null = null;
  #roomWait: (() => void) | null = null;
  // Set while the reader waits for the engine's heartbeat (a starved event loop); the
  // reader's steps since the heartbeat last fired (see _heartbeat.ts).
  #beatWait: (() => void) | null = null;
  #beatEpoch = -1;
  #spins = 0;
  // Message id for the final channel_closed Signal: the Hello's, or the first received.
  readonly #id = new BinaryHeader();
  #hasId = false;

  #closed = false;
  #closeStatus = 0;
  #closeError: TofuError | null = null;
  #silent = false;
  // Set when the group is destroyed after the close: no reports any more.
  #dropReports = false;
  // The hand-backs queued on the engine (#finish), and how to drop what is left of them.
  #handing: { job: HandBack; drop: () => void } | null = null;
  #tasks: Promise<void>[] = [];
  #flushTask: Promise<void> | null = null;
  #resolveDone!: () => void;
  #retired = false;
  // Timeouts (src/_deadlines.ts); null when every timeout is off.
  readonly #watch: Watch | null;
  // A copy of the HelloRequest, kept until the peer's first frame: if none comes in time,
  // the handshake timeout hands it back with connect_failed even after it was written.
  #heldHello: Message | null = null;
  #helloWritten = false;
  readonly #isClient: boolean;

  constructor(host: EngineHost, group: GroupHost, number: number, hello: Message | null) {
    this.#host = host;
    this.group = group;
    this.number = number;
    this.done = new Promise((r) => this.#resolveDone = r);
    this.#isClient = hello !== null;
    this.#share = new ReadShare(
      host.maxChannelHeldMsgs,
      Math.max(1, Math.min(host.pool.max, MAX_UNREAD_WINDOW)),
      host.maxChannelHeldBytes,
      host.heldBudget,
    );
    this.#watch = host.deadlines.watch(this);
    if (hello) {
      this.#id.setMessageIdFrom(hello.bhdr);
      this.#hasId = true;
      if ((this.#watch?.handshakeSince ?? 0) > 0) this.#heldHello = hello.clone();
      // The HelloRequest is the first urgent frame: urgent messages follow it.
      this.#queue(hello, true);
    }
  }

  /** Throws if this channel cannot take `m` now (the caller still owns `m`). */
  checkPost(m: Message): void {
    if (this.#closed) {
      throw new TofuError(
        Status.invalidChannelNumber,
        `Cannot ${this.#postAction(m)}: the channel is closed`,
      );
    }
    if (this.#sendClosed !== null) {
      throw new TofuError(
        Status.channelClosed,
        `Cannot ${
          this.#postAction(m)
        }: the channel is closing (${this.#sendClosed} already posted)`,
      );
    }
    // A Bye is never refused for room: it is how a full channel gets closed, and once one
    // is posted nothing else is taken (above), so it goes past the budgets at most once.
    if (isBye(m.bhdr.opCode)) return;
    const c = cost(postedLength(m));
    const host = this.#host;
    if (this.#queuedBytes > 0 && this.#queuedBytes + c > host.maxQueuedBytes) {
      throw new TofuError(
        Status.allocationFailed,
        `Cannot ${
          this.#postAction(m)
        }: ${this.#queuedBytes} bytes are already queued on it (maxQueuedBytes ${host.maxQueuedBytes})`,
      );
    }
    if (
      host.queuedBytes > 0 && host.queuedBytes + c > host.maxEngineQueuedBytes &&
      this.#queuedBytes + c > ENGINE_BUDGET_ALLOWANCE
    ) {
      throw new TofuError(
        Status.allocationFailed,
        `Cannot ${
          this.#postAction(m)
        }: ${host.queuedBytes} bytes are already queued in the engine (maxEngineQueuedBytes ${host.maxEngineQueuedBytes})`,
      );
    }
  }

  /**
   * Resolves once the charged queued bytes are at or below `mark` and the frame bytes at or
   * below `frameMark`; see ChannelGroup.ready.
   */
  ready(mark: number, frameMark: number, signal: AbortSignal | undefined): Promise<void> {
    // The action's text is made only for an error: a sender may call this per message.
    if (this.#closed) {
      return Promise.reject(
        new TofuError(
          Status.invalidChannelNumber,
          `Cannot wait for room on channel ${this.number}: the channel is closed`,
        ),
      );
    }
    if (this.#sendClosed !== null) {
      return Promise.reject(
        new TofuError(
          Status.channelClosed,
          `Cannot wait for room on channel ${this.number}: the channel is closing (${this.#sendClosed} already posted)`,
        ),
      );
    }
    return this.#room.wait(this.#queuedBytes, this.#frameBytes(), mark, frameMark, signal);
  }

  /** Whether ready(mark, frameMark) would resolve at once. */
  hasRoom(mark: number, frameMark: number): boolean {
    return !this.#closed && this.#sendClosed === null && this.#queuedBytes <= mark &&
      this.#frameBytes() <= frameMark;
  }

  // The queued frames' own bytes: each is charged its size plus QUEUED_MESSAGE_OVERHEAD.
  #frameBytes(): number {
    return this.#queuedBytes -
      (this.#urgent!.frames + this.#normal!.frames) * QUEUED_MESSAGE_OVERHEAD;
  }

  #postAction(m: Message): string {
    return `post ${opCodeName(m.bhdr.opCode)} on channel ${this.number}`;
  }

  /**
   * Queues a posted message (validated, accepted by checkPost): its frame is encoded now
   * and the message goes back to the pool.
   * @throws {TofuError} `invalid_message` if it cannot be encoded; the caller keeps it.
   */
  post(m: Message): void {
    const op = m.bhdr.opCode;
    try {
      this.#queue(m, m.bhdr.internalA === 1);
    } catch (err) {
      throw asTofuError(Status.invalidMessage, this.#postAction(m), err);
    }
    if (isBye(op)) this.#sendClosed = opCodeName(op);
    this.#host.recycle(m);
    this.#kick();
  }

  #queue(m: Message, urgent: boolean): void {
    const size = postedLength(m);
    (urgent ? this.#urgent! : this.#normal!).append(m, size);
    this.#queuedBytes += cost(size);
    this.#host.charge(cost(size));
  }

  /** Abort (ByeSignal with internalA): nothing more is sent; reports follow. */
  abort(byeSignal: Message): void {
    const err = new TofuError(
      Status.channelClosed,
      `Cannot send on channel ${this.number}: the application aborted it`,
    );
    this.group.deliver(handBack(byeSignal, Status.channelClosed, err));
    this.close(Status.channelClosed, err);
  }

  /** Starts I/O on a connected stream (a socket, or a pipe between isolates). */
  attach(conn: Conn): void {
    if (this.#closed) {
      closeQuietly(conn);
      return;
    }
    this.#conn = conn;
    this.#tasks.push(this.#readLoop(conn));
    this.#kick();
  }

  #kick(): void {
    if (this.#writing || this.#conn === null || this.#closed) return;
    if (this.#urgent!.frames === 0 && this.#normal!.frames === 0) return;
    this.#writing = true;
    // A microtask (the flush's first await) lets every post of the current turn join the
    // same write; no promise and closure of its own per write.
    this.#flushTask = this.#flush();
  }

  // Writes the urgent lane first, then the normal one, a chunk's unsent bytes per write.
  // Any error (of the socket or of the engine itself) closes the channel with
  // send_failed; what was not written is then handed back.
  async #flush(): Promise<void> {
    await SETTLED;
    const conn = this.#conn!;
    try {
      while (!this.#closed) {
        const lane = this.#urgent!.frames > 0 ? this.#urgent! : this.#normal!;
        const chunk = lane.next();
        if (chunk === null) break;
        const from = chunk.sent;
        const to = chunk.len;
        let off = from;
        try {
          while (off < to) {
            this.#watch?.beforeWrite();
            const n = await conn.write(chunk.buf.subarray(off, to));
            this.#watch?.afterWrite();
            if (n <= 0) throw new Error("the socket accepted no bytes");
            off += n;
          }
        } finally {
          this.#settle(lane, chunk, off);
        }
      }
    } catch (err) {
      if (!this.#closed) {
        this.close(
          Status.sendFailed,
          asTofuError(Status.sendFailed, `send on channel ${this.number}`, err),
        );
      }
    } finally {
      this.#writing = false;
      this.#flushTask = null;
    }
  }

  /** Accounts for frames written up to `upTo` in `chunk`. */
  #settle(lane: SendLane, chunk: Chunk, upTo: number): void {
    this.#closeAfter = false;
    const n = lane.settle(chunk, upTo, this.#onMarked);
    // Each frame is charged its bytes plus the overhead (see cost()).
    const released = lane.settledBytes + n * QUEUED_MESSAGE_OVERHEAD;
    this.#queuedBytes -= released;
    this.#host.charge(-released);
    if (this.#room.waiting) this.#room.update(this.#queuedBytes, this.#frameBytes());
    if (this.#closeAfter || (this.#byeSent && this.#byeReceived)) {
      this.close(Status.channelClosed, null);
    }
  }

  // A HelloRequest or a Bye was written (SendLane.settle): bound once, not per write.
  #closeAfter = false;
  readonly #onMarked = (op: number): void => {
    if (op === OpCode.HelloRequest) this.#helloWritten = true;
    else if (op === OpCode.ByeRequest) this.#byeSent = true;
    else this.#closeAfter = true; // ByeResponse or ByeSignal
  };

  async #readLoop(conn: Conn): Promise<void> {
    const dec = this.#decoder!;
    const pool = this.#host.pool;
    const share = this.#share;
    const group = this.group;
    try {
      for (;;) {
        while (dec.hasFrame()) {
          if (this.#closed) return;
          if (this.#watch !== null) this.#handshakeDone(this.#watch);
          if (group.full) {
            // The group's receive queue is at its bound: wait until the application reads.
            if (!await this.#waitRoom()) return;
            continue;
          }
          if (share.full) {
            // This channel holds its share (or has its window of messages unread in the
            // group's queue): it alone waits until one of them comes back (is taken).
            const stop = share.stoppedBy;
            if (stop !== Stop.None) this.#starve(stop);
            if (!await this.#waitShare()) return;
            if (this.#starvesLoop()) await this.#yield();
            continue;
          }
          const m = pool.take();
          try {
            dec.next(m);
          } catch (err) {
            this.#host.recycle(m);
            this.close(
              Status.recvFailed,
              asTofuError(Status.recvFailed, `receive on channel ${this.number}`, err),
            );
            return;
          }
          share.charge(m); // once decoded: it is charged its frame's size
          this.#deliverFrame(m);
        }
        if (this.#closed) return;
        // A starvation episode (one pool_empty Signal) lasts until the reader has caught up
        // with the socket: a reader woken for one message at a time stays in it.
        this.#starving = false;
        // A large frame not yet complete goes into its message now, if the channel may take
        // one (as for a whole frame): the rest of its body is copied in as it is read, and
        // the partial frame is not moved to the front of the decoder's buffer to make room.
        if (hasLargePartial(dec) && !group.full && !share.full) {
          const m = pool.take();
          spillFrame(dec, m);
          share.charge(m); // its whole frame, as the header announces it
        }
        this.#watch?.beforeRead(dec.buffered > 0);
        const n = await conn.read(dec.writable());
        if (this.#starvesLoop()) await this.#yield();
        if (this.#closed) return;
        this.#watch?.afterRead();
        if (n === null) {
          if (dec.atFrameBoundary) {
            this.close(
              Status.peerDisconnected,
              new TofuError(
                Status.peerDisconnected,
                `Cannot use channel ${this.number}: the peer closed the connection`,
              ),
            );
          } else {
            this.close(
              Status.recvFailed,
              new TofuError(
                Status.recvFailed,
                `Cannot receive on channel ${this.number}: the peer closed the connection inside a frame (${dec.buffered} bytes of it received)`,
              ),
            );
          }
          return;
        }
        dec.commit(n);
        const whole = takeSpilled(dec);
        if (whole !== null) {
          if (this.#watch !== null) this.#handshakeDone(this.#watch);
          while (group.full) {
            if (!await this.#waitRoom()) {
              this.#host.recycle(whole);
              return;
            }
          }
          this.#deliverFrame(whole);
        }
      }
    } catch (err) {
      if (!this.#closed) {
        this.close(
          Status.recvFailed,
          asTofuError(Status.recvFailed, `receive on channel ${this.number}`, err),
        );
      }
    } finally {
      // A large frame cut short by the close: its message goes back to the pool.
      const part = dropSpilled(dec);
      if (part !== null) this.#host.recycle(part);
    }
  }

  /** Counts one more step of the reader; true if it should let the event loop turn. */
  #starvesLoop(): boolean {
    const hb = this.#host.heartbeat;
    if (hb.epoch !== this.#beatEpoch) {
      this.#beatEpoch = hb.epoch;
      this.#spins = 0;
    }
    return hb.starved(++this.#spins);
  }

  /** Lets the event loop turn (see _heartbeat.ts); ends early if the channel closes. */
  #yield(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#wakeReader = resolve;
      this.#beatWait = this.#host.heartbeat.wait(resolve);
    }).finally(() => {
      this.#wakeReader = null;
      this.#beatWait = null;
    });
  }

  /** Waits for a message of this channel to come back; false if the channel closed first. */
  #waitShare(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      this.#wakeReader = () => resolve(false);
      this.#shareWait = this.#share.whenFree(() => resolve(true));
    }).finally(() => {
      this.#wakeReader = null;
      this.#shareWait = null;
    });
  }

  /** Waits for room in the group's receive queue; false if the channel closed first. */
  #waitRoom(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      this.#wakeReader = () => resolve(false);
      this.#roomWait = this.group.whenRoom(() => resolve(true));
    }).finally(() => {
      this.#wakeReader = null;
      this.#roomWait = null;
    });
  }

  #starve(stop: Stop): void {
    if (this.#starving) return;
    this.#starving = true;
    const share = this.#share;
    let err: TofuError;
    if (stop === Stop.Messages) {
      // Starvation can recur often under load; one error per channel spares a stack trace
      // each time (its text does not change).
      err = this.#poolEmptyError ??= new TofuError(
        Status.poolEmpty,
        `Cannot read channel ${this.number}: it holds ${share.limit} messages not yet put back (maxChannelHeldMsgs); put messages back to resume`,
      );
    } else if (stop === Stop.Bytes) {
      err = new TofuError(
        Status.poolEmpty,
        `Cannot read channel ${this.number}: it holds ${share.heldBytes} bytes of messages not yet put back (maxChannelHeldBytes ${share.byteLimit}); put messages back to resume`,
      );
    } else {
      err = new TofuError(
        Status.poolEmpty,
        `Cannot read channel ${this.number}: the engine's channels hold ${share.budget.bytes} bytes of messages not yet put back (maxEngineHeldBytes ${share.budget.max}); put messages back to resume`,
      );
    }
    void err.stack; // formatted now, it keeps no frame of the channel
    this.group.deliver(engineSignal(this.number, Status.poolEmpty, null, err));
  }

  // `m` is the application's already (pool.take()).
  #deliverFrame(m: Message): void {
    const bh = m.bhdr;
    // A remote peer cannot forge engine reports or local flags.
    bh.origin = 0;
    bh.status = 0;
    bh.internalA = 0;
    bh.internalB = 0;
    bh.channelNumber = this.number;
    if (!this.#hasId) {
      this.#id.setMessageIdFrom(bh);
      this.#hasId = true;
    }
    const op = bh.opCode;
    this.group.deliver(m);
    if (op === OpCode.ByeRequest) {
      this.#byeReceived = true;
      if (this.#byeSent) this.close(Status.channelClosed, null);
    } else if (op === OpCode.ByeResponse || op === OpCode.ByeSignal) {
      this.close(Status.channelClosed, null);
    }
  }

  close(status: number, error: TofuError | null, silent = false): void {
    if (this.#closed) {
      // Destroyed while handing back: what is left would only go to the pool.
      if (silent) this.#withdraw();
      return;
    }
    this.#closed = true;
    this.#closeStatus = status;
    // The error outlives the channel (in its reports): format its stack now, so that it
    // keeps no reference to the channel's frames.
    void error?.stack;
    this.#closeError = error;
    this.#silent = silent;
    this.#host.deadlines.unwatch(this.#watch);
    if (this.#conn) closeQuietly(this.#conn);
    // A reader waiting for its share or for room withdraws its wait and ends.
    this.#shareWait?.();
    this.#roomWait?.();
    this.#beatWait?.();
    this.#wakeReader?.();
    if (this.#room.waiting) {
      this.#room.close(
        new TofuError(
          Status.channelClosed,
          `Cannot wait for room on channel ${this.number}: the channel closed (${
            statusName(status)
          })`,
        ),
      );
    }
    this.#host.release(this);
    const tasks = this.#flushTask ? [...this.#tasks, this.#flushTask] : this.#tasks;
    // Reports go out once every read, write and connect has settled, so the final
    // Signal means the channel is completely done.
    Promise.allSettled(tasks).then(() => this.#finish());
  }

  #handshakeDone(w: Watch): void {
    w.frameDone();
    this.#heldHello = null;
  }

  /** A timeout of src/_deadlines.ts passed: closes with the status that names it. */
  expire(what: Expiry, ms: number): void {
    const n = this.number;
    const [status, text] = what === "writeStall"
      ? [
        Status.sendFailed,
        `Cannot send on channel ${n}: the socket took no byte for ${ms} ms (writeStallTimeoutMs)`,
      ]
      : what === "frame"
      ? [
        Status.recvFailed,
        `Cannot receive on channel ${n}: a frame did not complete within ${ms} ms (frameTimeoutMs)`,
      ]
      : what === "idle"
      ? [Status.channelClosed, `Cannot use channel ${n}: idle for ${ms} ms (idleTimeoutMs)`]
      : this.#isClient
      ? [
        Status.connectFailed,
        `Cannot connect on channel ${n}: no answer to the HelloRequest within ${ms} ms (handshakeTimeoutMs)`,
      ]
      : [
        Status.recvFailed,
        `Cannot receive on channel ${n}: no HelloRequest within ${ms} ms of the accept (handshakeTimeoutMs)`,
      ];
    this.close(status, new TofuError(status, text));
  }

  #finish(): void {
    const urgent = this.#urgent!;
    const normal = this.#normal!;
    // Closed means released: the decoder and the send buffers go now, and nothing the
    // reports keep (their error) refers back to them.
    this.#urgent = this.#normal = null;
    this.#decoder = null;
    this.#conn = null;
    this.#tasks = [];
    // The unsent frames stay charged to the engine until they are handed back (or dropped):
    // they are in memory until then, over as many turns as that takes.
    let unsent = this.#queuedBytes;
    this.#queuedBytes = 0;
    const uncharge = (bytes: number) => {
      unsent -= bytes;
      this.#host.charge(-bytes);
    };
    if (this.#silent || this.#dropReports) {
      uncharge(unsent);
      this.#heldHello = null;
      urgent.release();
      normal.release();
      this.#end();
      return;
    }
    let handing = false;
    try {
      const status = this.#closeStatus;
      const err = this.#closeError ??
        new TofuError(status, `Cannot send on channel ${this.number}: the channel closed`);
      void err.stack;
      const back = (m: Message) => this.group.deliver(handBack(m, status, err));
      const backUnsent = (m: Message, size: number) => {
        uncharge(cost(size));
        back(m);
      };
      // A HelloRequest written but never answered comes back first when the connect failed.
      const held = this.#heldHello;
      this.#heldHello = null;
      if (held !== null && this.#helloWritten && status === Status.connectFailed) back(held);
      if (urgent.frames + normal.frames === 0) {
        uncharge(unsent);
        this.#deliverClosed();
        return;
      }
      // The unsent frames go back a part of the engine's slice per turn of the event loop:
      // a peer that never read can leave thousands, and building and delivering them all at
      // once (and the application's handling of them, in the same macrotask) would hold up
      // every other channel. The engine shares one slice among the channels handing back.
      const job = {
        finished: false,
        step: (max: number): number => {
          const n = urgent.drainSome(max, backUnsent);
          const total = n + normal.drainSome(max - n, backUnsent);
          if (urgent.frames + normal.frames === 0) {
            uncharge(unsent);
            job.finished = true;
            this.#handing = null;
            try {
              this.#deliverClosed();
            } finally {
              this.#end();
            }
          }
          return total;
        },
      };
      this.#handing = {
        job,
        drop: () => {
          job.finished = true;
          uncharge(unsent);
          urgent.release();
          normal.release();
        },
      };
      this.#host.handBack(job);
      handing = true;
    } finally {
      if (!handing) {
        uncharge(unsent);
        this.#end();
      }
    }
  }

  #deliverClosed(): void {
    this.#retire();
    this.group.deliver(
      engineSignal(
        this.number,
        Status.channelClosed,
        this.#hasId ? this.#id : null,
        this.#closeError,
      ),
    );
  }

  // The channel's reports are out (or dropped): its number may be drawn again. Not before:
  // a new channel with the number would get the old one's hand-backs and channel_closed.
  #retire(): void {
    if (this.#retired) return;
    this.#retired = true;
    this.#host.retire(this);
  }

  #end(): void {
    this.#retire();
    this.#resolveDone();
  }

  // The group was destroyed after the close: reports would go to the pool, so drop them.
  #withdraw(): void {
    this.#dropReports = true;
    const handing = this.#handing;
    if (handing === null) return;
    this.#handing = null;
    this.#host.withdrawHandBack(handing.job);
    handing.drop();
    this.#end();
  }
}
