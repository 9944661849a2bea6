// One connected socket: a client channel (from a HelloRequest) or an accepted one.
// Writes are coalesced: every message queued when a flush starts goes out in one write.
// Reads stop while the pool has no free message (backpressure).

import { BinaryHeader } from "./binary_header.ts";
import { encodeFrameInto, FrameDecoder } from "./codec.ts";
import type { Message } from "./message.ts";
import { OpCode, opCodeName } from "./opcode.ts";
import { Ring } from "./_ring.ts";
import { asTofuError, engineSignal, handBack } from "./_report.ts";
import { Status, TofuError } from "./status.ts";
import type { Channel, EngineHost, GroupHost } from "./_host.ts";
import type { Expiry, Watch } from "./_deadlines.ts";

const OUT_INITIAL = 64 * 1024;

// Posted messages are validated, which sets both lengths in the binary header, and
// the application may not change them afterwards: reading the fields is enough.
function postedLength(m: Message): number {
  return 16 + m.bhdr.textHeadersLength + m.bhdr.bodyLength;
}

function isBye(op: number): boolean {
  return op === OpCode.ByeRequest || op === OpCode.ByeResponse || op === OpCode.ByeSignal;
}

export class IoChannel implements Channel {
  readonly number: number;
  readonly group: GroupHost;
  readonly isListener = false;
  readonly done: Promise<void>;

  readonly #host: EngineHost;
  #conn: Deno.Conn | null = null;
  readonly #sendQ = new Ring<Message>();
  #batch: Message[] = [];
  #batchEnds: number[] = [];
  #out: Uint8Array | null = null;
  #queuedBytes = 0;
  #writing = false;
  #helloUnsent: boolean;
  #sendClosed: string | null = null;
  #byeSent = false;
  #byeReceived = false;
  readonly #decoder = new FrameDecoder();
  #starving = false;
  #poolEmptyError: TofuError | null = null;
  #wakeReader: (() => void) | null = null;
  // Message id for the final channel_closed Signal: the Hello's, or the first received.
  readonly #id = new BinaryHeader();
  #hasId = false;

  #closed = false;
  #closeStatus = 0;
  #closeError: TofuError | null = null;
  #silent = false;
  #tasks: Promise<void>[] = [];
  #flushTask: Promise<void> | null = null;
  #resolveDone!: () => void;
  readonly #watch: Watch | null;
  #heldHello: Message | null = null;
  readonly #isClient: boolean;

  constructor(host: EngineHost, group: GroupHost, number: number, hello: Message | null) {
    this.#host = host;
    this.group = group;
    this.number = number;
    this.#helloUnsent = hello !== null;
    this.done = new Promise((r) => this.#resolveDone = r);
    this.#isClient = hello !== null;
    this.#watch = host.deadlines.watch(this);
    if (hello) {
      this.#id.setMessageIdFrom(hello.bhdr);
      this.#hasId = true;
      this.#queue(hello, false);
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
    const size = postedLength(m);
    if (this.#queuedBytes > 0 && this.#queuedBytes + size > this.#host.maxQueuedBytes) {
      throw new TofuError(
        Status.allocationFailed,
        `Cannot ${
          this.#postAction(m)
        }: ${this.#queuedBytes} bytes are already queued (maxQueuedBytes ${this.#host.maxQueuedBytes})`,
      );
    }
  }

  #postAction(m: Message): string {
    return `post ${opCodeName(m.bhdr.opCode)} on channel ${this.number}`;
  }

  /** Queues a posted message (already validated and owned by the engine). */
  post(m: Message): void {
    const op = m.bhdr.opCode;
    if (isBye(op)) this.#sendClosed = opCodeName(op);
    this.#queue(m, m.bhdr.internalA === 1);
    this.#kick();
  }

  #queue(m: Message, urgent: boolean): void {
    this.#queuedBytes += postedLength(m);
    if (!urgent) this.#sendQ.push(m);
    else if (this.#helloUnsent && this.#sendQ.length > 0) {
      // Urgent messages jump the queue, but the HelloRequest stays first on the wire.
      const hello = this.#sendQ.shift()!;
      this.#sendQ.unshift(m);
      this.#sendQ.unshift(hello);
    } else this.#sendQ.unshift(m);
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

  /** Starts I/O on a connected socket. */
  attach(conn: Deno.Conn): void {
    if (this.#closed) {
      closeQuietly(conn);
      return;
    }
    this.#conn = conn;
    if ("setNoDelay" in conn) {
      try {
        (conn as Deno.TcpConn).setNoDelay(true);
      } catch {
        // Not fatal: Nagle only adds latency.
      }
    }
    this.#tasks.push(this.#readLoop(conn));
    this.#kick();
  }

  #kick(): void {
    if (this.#writing || this.#conn === null || this.#closed || this.#sendQ.length === 0) return;
    this.#writing = true;
    // A microtask lets every post of the current turn join the same write.
    this.#flushTask = Promise.resolve().then(() => this.#flush());
  }

  async #flush(): Promise<void> {
    const conn = this.#conn!;
    try {
      while (!this.#closed && this.#sendQ.length > 0) {
        const len = this.#fill();
        const out = this.#out!;
        let off = 0;
        try {
          while (off < len) {
            this.#watch?.beforeWrite();
            const n = await conn.write(out.subarray(off, len));
            this.#watch?.afterWrite();
            if (n <= 0) throw new Error("the socket accepted no bytes");
            off += n;
          }
        } catch (err) {
          this.#written(off);
          if (!this.#closed) {
            this.close(
              Status.sendFailed,
              asTofuError(Status.sendFailed, `send on channel ${this.number}`, err),
            );
          }
          return;
        }
        this.#written(len);
      }
    } finally {
      this.#writing = false;
      this.#flushTask = null;
    }
  }

  /** Encodes queued messages into the outbound buffer; returns the byte count. */
  #fill(): number {
    this.#batch.length = 0;
    this.#batchEnds.length = 0;
    let out = this.#out ??= new Uint8Array(OUT_INITIAL);
    let len = 0;
    for (let m = this.#sendQ.peek(); m !== undefined; m = this.#sendQ.peek()) {
      const size = postedLength(m);
      if (len + size > out.length) {
        if (len > 0) break;
        out = this.#out = new Uint8Array(size);
      }
      encodeFrameInto(m, out, len);
      out[len + 2]! &= 0x3f; // internalA and internalB are local flags, never sent
      len += size;
      this.#sendQ.shift();
      this.#batch.push(m);
      this.#batchEnds.push(len);
      if (isBye(m.bhdr.opCode)) break;
    }
    return len;
  }

  /** Settles the batch after `upTo` bytes were written; unwritten messages stay in it. */
  #written(upTo: number): void {
    let i = 0;
    let closeAfter = false;
    for (; i < this.#batch.length && this.#batchEnds[i]! <= upTo; i++) {
      const m = this.#batch[i]!;
      const op = m.bhdr.opCode;
      if (op === OpCode.HelloRequest) this.#helloUnsent = false;
      else if (op === OpCode.ByeRequest) this.#byeSent = true;
      else if (op === OpCode.ByeResponse || op === OpCode.ByeSignal) closeAfter = true;
      this.#queuedBytes -= postedLength(m);
      // A written HelloRequest stays here until the peer answers: if it never does,
      // the handshake timeout hands it back with connect_failed.
      if (op === OpCode.HelloRequest && (this.#watch?.handshakeSince ?? 0) > 0) {
        this.#heldHello = m;
      } else this.#host.recycle(m);
    }
    this.#batch.splice(0, i);
    this.#batchEnds.length = 0;
    if (closeAfter || (this.#byeSent && this.#byeReceived)) {
      this.close(Status.channelClosed, null);
    }
  }

  async #readLoop(conn: Deno.Conn): Promise<void> {
    const dec = this.#decoder;
    const pool = this.#host.pool;
    try {
      for (;;) {
        let waited = false;
        while (dec.hasFrame()) {
          if (this.#closed) return;
          if (this.#watch !== null) this.#handshakeDone(this.#watch);
          const m = pool.get("poolOnly");
          if (m === null) {
            this.#starve();
            waited = true;
            await new Promise<void>((resolve) => {
              this.#wakeReader = resolve;
              pool.whenAvailable(resolve);
            });
            this.#wakeReader = null;
            continue;
          }
          // A starvation episode ends when a message is free without waiting; a
          // wake-up that takes the one message just put back is the same episode.
          if (!waited) this.#starving = false;
          waited = false;
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
          this.#deliverFrame(m);
        }
        if (this.#closed) return;
        this.#starving = false; // caught up: no longer held back by the pool
        this.#watch?.beforeRead(dec.buffered > 0);
        const n = await conn.read(dec.writable());
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
      }
    } catch (err) {
      if (!this.#closed) {
        this.close(
          Status.recvFailed,
          asTofuError(Status.recvFailed, `receive on channel ${this.number}`, err),
        );
      }
    }
  }

  #starve(): void {
    if (this.#starving) return;
    this.#starving = true;
    // Starvation can recur often under load; one error per channel spares a stack trace each time.
    this.#poolEmptyError ??= new TofuError(
      Status.poolEmpty,
      `Cannot read channel ${this.number}: the message pool is empty; put messages back to resume`,
    );
    this.group.deliver(engineSignal(this.number, Status.poolEmpty, null, this.#poolEmptyError));
  }

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
    if (this.#closed) return;
    this.#closed = true;
    this.#closeStatus = status;
    this.#closeError = error;
    this.#silent = silent;
    this.#host.deadlines.unwatch(this.#watch);
    if (this.#conn) closeQuietly(this.#conn);
    this.#wakeReader?.();
    this.#host.release(this);
    const tasks = this.#flushTask ? [...this.#tasks, this.#flushTask] : this.#tasks;
    // Reports go out once every read, write and connect has settled, so the final
    // Signal means the channel is completely done.
    Promise.allSettled(tasks).then(() => this.#finish());
  }

  #handshakeDone(w: Watch): void {
    w.frameDone();
    if (this.#heldHello !== null) {
      this.#host.recycle(this.#heldHello);
      this.#heldHello = null;
    }
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
    const unsent = [...this.#batch, ...this.#sendQ.drain()];
    if (this.#heldHello !== null) {
      if (this.#closeStatus === Status.connectFailed) unsent.unshift(this.#heldHello);
      else this.#host.recycle(this.#heldHello);
      this.#heldHello = null;
    }
    this.#batch.length = 0;
    this.#queuedBytes = 0;
    if (this.#silent) {
      for (const m of unsent) this.#host.recycle(m);
    } else {
      const status = this.#closeStatus;
      const err = this.#closeError ??
        new TofuError(status, `Cannot send on channel ${this.number}: the channel closed`);
      for (const m of unsent) this.group.deliver(handBack(m, status, err));
      this.group.deliver(
        engineSignal(
          this.number,
          Status.channelClosed,
          this.#hasId ? this.#id : null,
          this.#closeError,
        ),
      );
    }
    this.#resolveDone();
  }
}

export function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch {
    // Already closed.
  }
}
