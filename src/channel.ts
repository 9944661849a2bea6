/**
 * A connected peer of the Peers layer: requests correlated by message id, one-way
 * sends, `more` streams both ways, and the peer's own messages as an async iterator.
 *
 * @module
 */

import { parseAddress } from "./address.ts";
import { AsyncQueue, type Done, done } from "./_async_queue.ts";
import { hasRoomNow } from "./channel_group.ts";
import { checkTimeout, Deadline, sleep } from "./_deadline.ts";
import { discharge, ReadShare } from "./_read_share.ts";
import type { Hub, Route } from "./_peer_hub.ts";
import type { Engine } from "./engine.ts";
import { leaseOf, Message, setShare, shareOf, type ShareRef } from "./message.ts";
import { OpCode } from "./opcode.ts";
import { Status, statusName, TofuError } from "./status.ts";

/** One piece of a body: text (sent as UTF-8) or bytes; at most 65535 bytes. */
export type Chunk = string | Uint8Array;

/**
 * What a channel can send: a body (`string` or `Uint8Array`), a ready {@linkcode Message}
 * (sent as is, with the opcode, channel and id the call needs; not one with `more` set,
 * which is refused with `invalid_more_usage`: pass a stream as its chunks), or an iterable or async
 * iterable of chunks, sent as one `more` stream (every chunk with the same message id,
 * `more` set on all but the last).
 */
export type Payload = Chunk | Message | Iterable<Chunk> | AsyncIterable<Chunk>;

/** Options of {@linkcode Channel.request}. */
export interface RequestOptions {
  /**
   * How long to wait for the answer (and before it, for a reconnect and, between the chunks
   * of a stream, for room on the connection); default forever.
   */
  timeoutMs?: number;
  /** Text headers of the request (of its first chunk when it is a stream). */
  headers?: Record<string, string>;
  /** Gives up waiting; the promise rejects with a {@linkcode TofuError}. */
  signal?: AbortSignal;
}

/** Options of {@linkcode Channel.send}. */
export interface SendOptions extends RequestOptions {
  /** `OpCode.Signal` (default) or `OpCode.Request`; an answer to a sent Request arrives as an incoming message. */
  op?: typeof OpCode.Signal | typeof OpCode.Request;
}

/** Options of {@linkcode Channel.chunks}. */
export interface ChunksOptions {
  /**
   * How long to wait for the rest of the stream, from the first read; default forever.
   * A stream still unfinished then is dropped and the loop rejects.
   */
  timeoutMs?: number;
  /** Gives up reading; the loop rejects with a {@linkcode TofuError}. */
  signal?: AbortSignal;
}

/** Options of {@linkcode Channel.respond}. */
export interface RespondOptions {
  /** Text headers of the response (of its first chunk when it is a stream). */
  headers?: Record<string, string>;
}

/**
 * Receives a message this side posted on a channel that its connection ended before
 * writing: a Signal or Request of {@linkcode Channel.send}, a Response of
 * {@linkcode Channel.respond} or of a `serve` handler, or a chunk of a stream of them.
 * Its status says why (`peer_disconnected`, `send_failed`, `recv_failed`,
 * `channel_closed`...) and `msg.error` has the details; its body, headers and message id
 * are the ones posted. The message is yours: put it back (`engine.put(msg)` or `using`)
 * or keep it to send again. Called in the order the messages were posted, before the
 * channel reports the close. The channel is not open by then (`isOpen` is false): a
 * `send()` made in the callback waits for a re-dial within its timeout (with `reconnect`)
 * and goes out on the new connection, or rejects once the channel closes for good. A
 * `request()` is not reported here: the call rejects instead. A callback that throws is
 * reported with `reportError` (an `error` event on `globalThis`); the channel goes on.
 * Without a callback, such messages go back to the pool. A message written to the socket
 * is not reported even if the peer never reads it (its process dies with the bytes in its
 * socket): only an answer, such as a `request()`'s, confirms that the peer got a message.
 */
export type UnsentHandler = (msg: Message, channel: Channel) => void;

/** Library-internal: throws a TypeError if `fn` is given and is not a function. */
export function checkUnsentHandler(action: string, fn: unknown): void {
  if (fn !== undefined && typeof fn !== "function") {
    throw new TypeError(`Cannot ${action}: onUnsent is not a function`);
  }
}

/** How a client channel re-dials after its connection drops (see `connect`). */
export interface ReconnectOptions {
  /** The first delay before a re-dial (default 50 ms); it doubles after every failure. */
  initialDelayMs?: number;
  /** The longest delay between re-dials (default 2000 ms). */
  maxDelayMs?: number;
  /** Re-dials after one drop before the channel gives up and closes (default unlimited). */
  maxAttempts?: number;
}

/**
 * The header a {@linkcode serve} handler's failure is reported in: a Response carrying
 * `tofu-status` (a protocol status number, `processing_failed` unless the handler threw a
 * {@linkcode TofuError}) and `tofu-error` (the error's message). {@linkcode Channel.request}
 * turns such a Response into a rejected `TofuError` with that status and message.
 */
export const ERROR_STATUS_HEADER = "tofu-status";
/** The header with the message of a handler's failure; see {@linkcode ERROR_STATUS_HEADER}. */
export const ERROR_MESSAGE_HEADER = "tofu-error";

/**
 * Most `more` streams a peer may have open at once on one channel: streams it started and
 * has not finished (their last chunk, `more` clear, has not come), whether the application
 * reads them or they are being dropped. The channel keeps each one until its last chunk;
 * a peer that opens more loses its connection: the channel aborts it with status
 * `invalid_more_usage` (a re-dialling client channel dials again). Streams that answer this
 * side's own requests do not count.
 *
 * @example The limit
 * ```ts
 * import { assert } from "@std/assert";
 * import { MAX_OPEN_STREAMS } from "@tofu/tofu";
 *
 * assert(MAX_OPEN_STREAMS >= 1024);
 * ```
 */
export const MAX_OPEN_STREAMS = 1024;

/** Library-internal: the headers that report `err` to the peer (see ERROR_STATUS_HEADER). */
export function errorHeaders(err: unknown): Record<string, string> {
  const status = err instanceof TofuError && isStatusByte(err.status)
    ? err.status
    : Status.processingFailed;
  let text = textOf(err).replace(/[\r\n]+/g, " ").trim();
  if (text.length > MAX_ERROR_TEXT) {
    // A text-header block holds 65,535 bytes: a longer message would make the error
    // Response impossible to post, and the peer would hear nothing.
    let cut = MAX_ERROR_TEXT;
    const last = text.charCodeAt(cut - 1);
    if (last >= 0xd800 && last <= 0xdbff) cut--; // not half of a surrogate pair
    text = `${text.slice(0, cut)}...`;
  }
  return {
    [ERROR_STATUS_HEADER]: String(status),
    [ERROR_MESSAGE_HEADER]: text || statusName(status),
  };
}

/** Whether `n` fits the binary header's status byte (0-255). */
function isStatusByte(n: unknown): n is number {
  return Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 255;
}

/**
 * The message of what a handler threw, as text; "" for a value without one (an object
 * without a prototype, a toString or message getter that throws): the error answer must
 * go out whatever was thrown.
 */
function textOf(err: unknown): string {
  try {
    return err instanceof Error ? String(err.message) : String(err);
  } catch {
    return "";
  }
}

// Characters of an error message sent in ERROR_MESSAGE_HEADER (at most 12 KiB of UTF-8).
const MAX_ERROR_TEXT = 4096;

/** The error a message carrying {@linkcode errorHeaders} stands for, or null. */
function peerFailure(m: Message, action: string): TofuError | null {
  const failed = m.headers.get(ERROR_STATUS_HEADER);
  if (failed === undefined) return null;
  // A status in decimal (0-255, as the header's byte holds it); anything else, and 0
  // (success is no failure), reads as processing_failed.
  const parsed = /^[0-9]{1,3}$/.test(failed) ? Number(failed) : 0;
  const status = parsed > 0 && parsed <= 255 ? parsed : Status.processingFailed;
  const text = m.headers.get(ERROR_MESSAGE_HEADER) ?? statusName(status);
  return new TofuError(status, `Cannot ${action}: the peer failed: ${text}`);
}

type State = "connecting" | "open" | "reconnecting" | "closing" | "closed";

interface Pending<T = Message> {
  resolve(v: T): void;
  reject(e: TofuError): void;
}

interface Stream {
  queue: AsyncQueue<Message>;
  discard: boolean;
  /** chunks() has started on it. */
  read: boolean;
  /** The stream answers a request of ours: its chunks leave the read share once read. */
  answer: boolean;
}

interface Resolved {
  initialDelayMs: number;
  maxDelayMs: number;
  maxAttempts: number;
}

/** Library-internal hooks of the Peers layer (connect, listen). */
export interface ChannelControl {
  /** A client channel that owns `hub`; call `open` next. */
  client(
    hub: Hub,
    address: string,
    reconnect: Resolved | null,
    onUnsent: UnsentHandler | undefined,
  ): Channel;
  /** Dials (with re-dials if enabled) until the handshake completes. */
  open(ch: Channel, timeoutMs: number, signal: AbortSignal | undefined): Promise<void>;
  /** An accepted channel of a listener's hub, routed at `number`; `first` is its first message. */
  accept(
    hub: Hub,
    number: number,
    address: string,
    first: Message,
    onUnsent: UnsentHandler | undefined,
  ): Channel;
  /** Registers a callback for when the channel is closed for good. */
  onFinish(ch: Channel, fn: () => void): void;
  /** A function that discards what is left of the stream `first` opens (for serve). */
  discarder(ch: Channel, first: Message): () => void;
  /** `Channel.respond` by id; `onFirst` runs once the first chunk is posted. */
  respond(ch: Channel, id: bigint, body: Payload, onFirst: () => void): Promise<void>;
  /**
   * Holds the ByeResponse to the peer's ByeRequest until `drained()` resolves (at most
   * BYE_HOLD_MS): a server answers what the peer sent before its bye first (for serve).
   */
  holdBye(ch: Channel, drained: () => Promise<void>): void;
  /** Messages the channel's iterator has not handed out yet. */
  unread(ch: Channel): number;
  /**
   * Whether `err` is `ch`'s own post refused for room (`allocation_failed`: its queue is at
   * its budget), not an error of the same status from elsewhere (another channel's refusal,
   * or one a handler made up): such a post waits for room and is tried again.
   */
  refusedForRoom(ch: Channel, err: unknown): boolean;
}

// Posts refused for room (allocation_failed), each with the channel that refused it.
const roomRefusals = new WeakMap<object, Channel>();

let control!: ChannelControl;

/** Library-internal: the hooks `connect` and `listen` build channels with. */
export function channelControl(): ChannelControl {
  return control;
}

function noop(): void {}

/**
 * Stands in for a read share on the first message of a streamed answer: `release` runs when
 * the message comes back (put, posted). `queued` and `check` as a share has them, for a
 * message the application passes through a receive queue (updateReceiver).
 */
class FirstChunkWatch implements ShareRef {
  queued = 0;
  readonly #onRelease: () => void;

  constructor(onRelease: () => void) {
    this.#onRelease = onRelease;
  }

  release(): void {
    this.#onRelease();
  }

  check(): void {}
}

/** The opcodes the application posts through a Channel (send, request, respond). */
function isUnsentKind(op: number): boolean {
  return op === OpCode.Signal || op === OpCode.Request || op === OpCode.Response;
}

/**
 * Most unread messages a connection may hold beyond its read share (`maxChannelHeldMsgs`)
 * while a {@linkcode Channel.chunks} reader waits for a chunk that may be behind them: past
 * it, or past the engine's `maxChannelHeldBytes` of such messages, the connection is aborted
 * with `pool_empty` instead of waiting for good.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { MAX_LENT_MSGS } from "@tofu/tofu";
 *
 * assert(MAX_LENT_MSGS >= 4096);
 * ```
 */
export const MAX_LENT_MSGS = 4096;

// Longest a server's ByeResponse waits for the answers to what the peer sent before its bye.
const BYE_HOLD_MS = 2000;

// Requests given up on whose late answers are still recognised and dropped.
const MAX_ABANDONED = 65_536;

/**
 * One connected peer: a client channel from `connect`, or an accepted one from a
 * `Listener` or `Server`. Every message it hands you is yours: put it back with
 * `engine.put(msg)` or `using`.
 *
 * Requests are correlated by message id, so any number may be in flight. Messages from
 * the peer that are not answers to your requests (its Requests and Signals) come out of
 * the channel's async iterator. A message with `more` set opens a stream: read the
 * rest with {@linkcode Channel.chunks}.
 *
 * @example Request and response
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { connect, serve } from "@tofu/tofu";
 *
 * await using server = await serve("tcp|127.0.0.1|0", (req) => req.body.text().toUpperCase());
 * await using ch = await connect(server.address);
 * using reply = await ch.request("ping", { timeoutMs: 5000 });
 * assertEquals(reply.body.text(), "PING");
 * ```
 */
export class Channel implements AsyncIterable<Message>, AsyncDisposable {
  #hub!: Hub;
  #engine!: Engine;
  #address!: string;
  #number = 0;
  #state: State = "connecting";
  #ownsHub = false;
  #reconnect: Resolved | null = null;
  #handshakeTimeoutMs = 10_000;
  readonly #routes = new Map<number, Route>();
  readonly #pending = new Map<bigint, Pending>();
  readonly #abandoned = new Set<bigint>();
  readonly #streams = new Map<string, Stream>();
  // Streams the peer opened (not answers) and has not finished: at most MAX_OPEN_STREAMS.
  // A finished stream nobody has read yet stays in #streams, its chunks held (they count
  // against the channel's read share, which bounds those).
  #peerStreams = 0;
  // Why this side aborted the connection, for #linkClosed (its report says channel_closed).
  #abortCause: TofuError | null = null;
  readonly #incoming = new AsyncQueue<Message>();
  // Streams whose first message the iterator handed out and nobody has passed to chunks()
  // yet, with the first message and its lease then (see #sweepUnread).
  #unread: { key: string; stream: Stream; first: Message; lease: number }[] = [];
  // send() and request() calls posting now, and close()s waiting for them (see #posting).
  #postsUnderWay = 0;
  #postsDone: (() => void)[] = [];
  #closeCalled = false;
  #postsWait: Promise<void> | null = null;
  // Unread messages taken off the read share while a chunks() reader waited (#lendQueued),
  // with the share and the bytes each was charged, and their bytes in all.
  readonly #lent = new Map<Message, { share: ReadShare; bytes: number }>();
  #lentBytes = 0;
  // chunks() readers waiting on an empty stream queue now.
  #streamWaiters = 0;
  #closed!: Promise<number>;
  #resolveClosed!: (status: number) => void;
  // Callers of request() and send() waiting for the channel to open again. Not one shared
  // promise: each caller that gave up (timed out, aborted) would leave a reaction on it,
  // holding its error, for as long as the channel stays down.
  readonly #openWaiters = new Set<Pending<void>>();
  #handshake: Pending | null = null;
  #helloFailure: TofuError | null = null;
  #byeSent = false;
  #userClosed = false;
  #wakeSleep: () => void = noop;
  #onFinish: () => void = noop;
  #onUnsent: UnsentHandler | null = null;
  // Set by serve: what the ByeResponse to a peer's ByeRequest waits for (see holdBye).
  #byeHold: (() => Promise<void>) | null = null;
  // The engine has started handing back what the current connection did not write: the
  // connection is gone, its final report still to come. New sends wait as while re-dialling.
  #linkDown = false;

  static {
    control = {
      client(hub, address, reconnect, onUnsent) {
        const ch = new Channel();
        ch.#init(hub, address, true, onUnsent);
        ch.#reconnect = reconnect;
        return ch;
      },
      open: (ch, timeoutMs, signal) => ch.#open(timeoutMs, signal),
      accept(hub, number, address, first, onUnsent) {
        const ch = new Channel();
        ch.#init(hub, address, false, onUnsent);
        ch.#number = number;
        ch.#state = "open";
        ch.#resolveReady();
        hub.route(number, ch.#routeFor(number));
        ch.#deliver(first, number);
        return ch;
      },
      onFinish(ch, fn) {
        ch.#onFinish = fn;
      },
      discarder(ch, first) {
        if (!first.hasMore()) return noop;
        const key = streamKey(first);
        const stream = ch.#streams.get(key);
        return () => ch.#discard(key, stream);
      },
      respond: (ch, id, body, onFirst) => ch.#respond(id, body, undefined, onFirst),
      holdBye(ch, drained) {
        ch.#byeHold = drained;
      },
      unread: (ch) => ch.#incoming.size,
      refusedForRoom: (ch, err) =>
        typeof err === "object" && err !== null && roomRefusals.get(err) === ch,
    };
  }

  private constructor() {}

  #init(
    hub: Hub,
    address: string,
    ownsHub: boolean,
    onUnsent: UnsentHandler | undefined,
  ): void {
    this.#onUnsent = onUnsent ?? null;
    this.#hub = hub;
    this.#engine = hub.engine;
    this.#address = address;
    this.#ownsHub = ownsHub;
    this.#closed = new Promise((r) => this.#resolveClosed = r);
  }

  /** The engine whose pool the channel's messages come from. */
  get engine(): Engine {
    return this.#engine;
  }

  /**
   * The address: for a client channel the one it dials (`tcp|127.0.0.1|7099`), for an
   * accepted channel the bound address it came in on (found from the address in the
   * peer's HelloRequest; a peer that skipped the handshake gets the listener's first).
   */
  get address(): string {
    return this.#address;
  }

  /** The engine's local channel number of the current connection; 0 while there is none. */
  get channelNumber(): number {
    return this.#number;
  }

  /** Whether the channel is connected now (not connecting, reconnecting or closed). */
  get isOpen(): boolean {
    return this.#state === "open" && !this.#linkDown;
  }

  /**
   * Resolves once the channel is closed for good, with the closing status:
   * `Status.success` after a graceful bye (either side), otherwise the reason, such as
   * `peer_disconnected`, `recv_failed`, `channel_closed` (an abort),
   * `invalid_more_usage` (the peer opened more than {@linkcode MAX_OPEN_STREAMS} streams),
   * `invalid_message_id` (the peer sent a Request with message id 0, which no Response can
   * answer) or `shutdown_started` (the engine was closed). It never rejects.
   */
  get closed(): Promise<number> {
    return this.#closed;
  }

  /**
   * Sends a Request and resolves with the peer's Response (matched by message id).
   * If the Response is the first chunk of a stream, read the rest with
   * {@linkcode Channel.chunks}; put it back without that (a `using` block that ignores
   * streams) and the rest of the stream is dropped as it comes. Like `send()`, it waits
   * for room while more than 2 MiB is queued unsent on the connection (and, when the
   * connection's budget is full, until it has drained), within its timeout. While a
   * reconnecting channel is down, the request waits for the new connection within its
   * timeout. A request is sent at most once: if the connection drops before the answer,
   * the promise rejects.
   *
   * @param body The request body, a ready message, or chunks to send as one stream. A
   *   message gets a new message id (one it received keeps its sender's id until then).
   * @param options Timeout, headers and abort signal.
   * @returns The Response; it is yours (put it back or dispose it).
   * @throws {TofuError} On timeout or abort (status `communication_failed`), when the
   * channel closes first (the closing status, or `channel_closed` after a graceful bye),
   * when the request cannot be posted (the post's status), or when the peer's handler
   * failed (the status and message of its `tofu-status` / `tofu-error` headers).
   * @throws {RangeError} If `timeoutMs` is negative or not a number.
   *
   * @example A request with a deadline and a header
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { connect, serve } from "@tofu/tofu";
   *
   * await using server = await serve("tcp|127.0.0.1|0", (req) => `job ${req.headers.get("Job-ID")}`);
   * await using ch = await connect(server.address);
   * using reply = await ch.request("print", { timeoutMs: 5000, headers: { "Job-ID": "7" } });
   * assertEquals(reply.body.text(), "job 7");
   * ```
   */
  async request(body: Payload, options: RequestOptions = {}): Promise<Message> {
    using deadline = new Deadline("complete request", options.timeoutMs, options.signal);
    const { promise: reply, resolve, reject } = Promise.withResolvers<Message>();
    reply.catch(noop);
    let id: bigint | undefined;
    let m: Message;
    try {
      await this.#posting(async () => {
        await this.#whenOpen("complete request", deadline);
        // Answers are matched by id, so the engine gives the Request one of its own, unique
        // in this process: a received message keeps the id its sender chose (a proxy
        // forwarding two clients' Requests with the same id mixed up their answers).
        if (body instanceof Message) body.bhdr.messageId = 0n;
        await this.#send(OpCode.Request, body, options.headers, 0n, (first) => {
          id = first;
          this.#pending.set(first, { resolve, reject });
        }, deadline);
      });
      m = await deadline.race(reply);
    } catch (err) {
      if (id !== undefined) {
        if (this.#pending.delete(id)) this.#abandon(id);
        else reply.then((late) => this.#drop(late), noop);
      }
      throw err;
    }
    const failure = peerFailure(m, "complete request");
    if (failure === null) return m;
    this.#drop(m);
    throw failure;
  }

  /**
   * Sends a one-way Signal (or a Request whose answer you read from the iterator).
   * Resolves once every chunk is posted (the engine then owns them and writes them in
   * order; a chunk the connection ends before writing goes to the `onUnsent` callback of
   * `connect`, `listen` or `serve`, see {@linkcode UnsentHandler}). While a reconnecting
   * channel is down, it waits within `timeoutMs`; while more than 2 MiB is queued unsent on
   * the connection, it waits for room first, and before each chunk of a stream
   * (backpressure, see `ChannelGroup.ready`), all within `timeoutMs`, so a loop of awaited
   * sends keeps pace with the peer.
   *
   * @param body The body, a ready message (its message id is kept; 0 gets a new one), or
   *   chunks to send as one stream.
   * @param options The opcode, headers, timeout and abort signal.
   * @returns The message id the engine assigned.
   * @throws {TofuError} If the channel is closed, the wait times out or is aborted,
   * or the engine refuses a chunk (the post's status).
   * @throws {TypeError} If the body or a chunk is not a string, Uint8Array or Message.
   * An error of the chunk source is passed on; a stream that fails after its first
   * chunk went out is ended with an error chunk (see {@linkcode Channel.chunks}).
   *
   * @example A one-way Signal, read from the other side's iterator
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { connect, listen } from "@tofu/tofu";
   *
   * await using listener = await listen("tcp|127.0.0.1|0");
   * await using client = await connect(listener.address);
   * await client.send("hello", { headers: { kind: "note" } });
   * for await (const peer of listener) {
   *   for await (using msg of peer) {
   *     assertEquals([msg.headers.get("kind"), msg.body.text()], ["note", "hello"]);
   *     break;
   *   }
   *   break;
   * }
   * ```
   */
  async send(body: Payload, options: SendOptions = {}): Promise<bigint> {
    const op = options.op ?? OpCode.Signal;
    if (op !== OpCode.Signal && op !== OpCode.Request) {
      throw new TypeError(`Cannot send: op ${op} is not OpCode.Signal or OpCode.Request`);
    }
    if (
      (typeof body === "string" || body instanceof Uint8Array) && this.#state === "open" &&
      !this.#linkDown && !this.#closeCalled && this.#postsUnderWay === 0 &&
      !options.signal?.aborted && hasRoomNow(this.#hub.group, this.#number)
    ) {
      // At once: the channel is open and has room, and no earlier call is still posting
      // (it goes first). What the slow path below does in six awaits, a third of its time.
      checkTimeout("send", options.timeoutMs);
      try {
        return this.#postChunk(op, body, options.headers, 0n, 0);
      } catch (err) {
        if (!control.refusedForRoom(this, err)) throw err;
        // Refused for room (the engine's budget, shared): wait for it below.
      }
    }
    using deadline = new Deadline("send", options.timeoutMs, options.signal);
    return await this.#posting(async () => {
      await this.#whenOpen("send", deadline);
      return await this.#send(op, body, options.headers, 0n, noop, deadline);
    });
  }

  /** Resolves once no send() or request() is posting, or after close()'s 2 s grace. */
  async #waitForPosts(): Promise<void> {
    const grace = sleep(2000, true);
    await Promise.race([new Promise<void>((r) => this.#postsDone.push(r)), grace.done]);
    grace.wake();
  }

  /**
   * Runs the posting part of a send() or request(): a close() called meanwhile waits for it
   * (within its grace) before its ByeRequest, so calls made before close() go out first.
   * Their posts are not synchronous (they wait for room, a turn at least), and close()
   * posted its bye first: they failed with "the channel is closing".
   */
  async #posting<T>(post: () => Promise<T>): Promise<T> {
    this.#postsUnderWay++;
    try {
      return await post();
    } finally {
      if (--this.#postsUnderWay === 0 && this.#postsDone.length > 0) {
        const waiting = this.#postsDone;
        this.#postsDone = [];
        for (const wake of waiting) wake();
      }
    }
  }

  /**
   * Answers a Request from the peer: a Response with the request's message id. An
   * iterable of chunks goes out as a streamed response. Passing the request message
   * itself as `body` turns it into the response (its body and headers are kept).
   * Resolves once posted; when the connection's queue is full (`maxQueuedBytes`) it waits
   * for room and tries again (a peer that reads nothing is closed by the engine's
   * `writeStallTimeoutMs`; with that timeout off, the wait lasts until the channel closes). A Response the connection ends before writing goes to
   * `onUnsent` (see {@linkcode UnsentHandler}).
   *
   * @param req The request being answered (you still own it, unless passed as `body`),
   * or its message id.
   * @param body The response body, a ready message, chunks, or nothing.
   * @param options Headers of the response.
   * @throws {TofuError} If the channel is closed, `req` has no message id, or the
   * engine refuses a chunk (a streamed response that fails partway is ended with an
   * error chunk, as for {@linkcode Channel.send}).
   * @throws {TypeError} If `req` is not a Message or a bigint, or the body has a wrong type.
   *
   * @example Answering a Request that came out of the iterator
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { connect, listen } from "@tofu/tofu";
   *
   * await using listener = await listen("tcp|127.0.0.1|0");
   * await using client = await connect(listener.address);
   * const asking = client.request("2 + 2", { timeoutMs: 5000 });
   * for await (const peer of listener) {
   *   for await (using req of peer) {
   *     await peer.respond(req, "4");
   *     break;
   *   }
   *   break;
   * }
   * using answer = await asking;
   * assertEquals(answer.body.text(), "4");
   * ```
   */
  async respond(
    req: Message | bigint,
    body?: Payload,
    options: RespondOptions = {},
  ): Promise<void> {
    if (!(req instanceof Message) && typeof req !== "bigint") {
      throw new TypeError("Cannot respond: req is not a Message or a message id");
    }
    const id = typeof req === "bigint" ? req : req.bhdr.messageId;
    await this.#respond(id, body ?? "", options.headers, noop);
  }

  async #respond(
    id: bigint,
    body: Payload,
    headers: Record<string, string> | undefined,
    onFirst: (id: bigint) => void,
  ): Promise<void> {
    if (this.#state !== "open" && this.#state !== "closing") {
      throw new TofuError(Status.channelClosed, "Cannot respond: the channel is closed");
    }
    if (id === 0n) {
      throw new TofuError(Status.invalidMessageId, "Cannot respond: the request has no message id");
    }
    // A reply refused for room waits until the queue drains and tries again (no time limit:
    // a peer that reads nothing is closed by writeStallTimeoutMs). Refused at once, a burst
    // of large answers to a peer that reads them all cost it its channel (serve() took it
    // for one that does not read).
    using room = new Deadline("respond", undefined, undefined);
    await this.#send(OpCode.Response, body, headers, id, onFirst, room);
  }

  /**
   * Reads a `more` stream: yields `first` and then every following chunk with the same
   * message id, up to and including the last one (`more` clear). A message without
   * `more` is a stream of one. Every yielded message is yours; `for await (using c of
   * ch.chunks(first))` releases each one as the loop moves on. Leaving the loop early
   * discards the rest of the stream. `first` itself is yielded, so release it in one place
   * only: with `for await (const first of ch)` around such a loop, not `using` (a message
   * put back twice may be in use again by then, and the second release takes it away).
   *
   * @param first The first chunk (an incoming message or a request's answer).
   * @param options A timeout for the whole stream and an abort signal; default none.
   * @returns The chunks in order.
   * @throws {TofuError} With status `channel_closed` if the channel closes before the
   * last chunk, `invalid_more_usage` if `first` opens no stream on this channel, or the
   * peer's status if its sender failed partway (the stream then ends with an error
   * chunk; the message is `Cannot read stream: the peer failed: <its message>`), or
   * `communication_failed` when `timeoutMs` passes or `signal` aborts first (the rest of
   * the stream is then dropped as it arrives).
   * @throws {RangeError} If `timeoutMs` is not a number >= 0.
   *
   * @example Downloading a stream
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { connect, serve } from "@tofu/tofu";
   *
   * await using server = await serve("tcp|127.0.0.1|0", () => ["a", "b", "c"]);
   * await using ch = await connect(server.address);
   * const first = await ch.request("list", { timeoutMs: 5000 });
   * const parts: string[] = [];
   * for await (using chunk of ch.chunks(first)) parts.push(chunk.body.text());
   * assertEquals(parts, ["a", "b", "c"]);
   * ```
   */
  async *chunks(
    first: Message,
    options: ChunksOptions = {},
  ): AsyncGenerator<Message, void, undefined> {
    const bounded = options.timeoutMs !== undefined || options.signal !== undefined;
    using deadline = bounded
      ? new Deadline("read stream", options.timeoutMs, options.signal)
      : null;
    const key = streamKey(first);
    const stream = first.hasMore() ? this.#streams.get(key) : undefined;
    if (first.hasMore() && !stream) {
      throw new TofuError(
        Status.invalidMoreUsage,
        `Cannot read stream: message ${first.bhdr.messageId} opens no stream on this channel`,
      );
    }
    if (stream) stream.read = true;
    let finished = !first.hasMore();
    try {
      yield first;
      while (!finished) {
        const taken = stream!.queue.take();
        const waits = stream!.queue.waiting;
        if (waits) {
          this.#streamWaiters++;
          this.#lendQueued();
        }
        let c: Message | Done;
        try {
          // A chunk that comes after the deadline won goes back to the pool.
          c = deadline === null ? await taken : await deadline.race(taken, () => {
            void taken.then((late) => {
              if (late !== done) this.#engine.put(late);
            });
          });
        } finally {
          if (waits) this.#streamWaiters--;
        }
        if (this.#lent.size > 0 && c !== done) this.#unlend(c);
        if (c === done) {
          throw new TofuError(
            Status.channelClosed,
            "Cannot read stream: the channel closed before the last chunk",
          );
        }
        finished = !c.hasMore();
        const failure = finished ? peerFailure(c, "read stream") : null;
        if (failure) {
          this.#engine.put(c);
          throw failure;
        }
        // A chunk of an answer, like the answer, no longer counts once read; unread
        // chunks still hold the peer back.
        if (stream!.answer) discharge(c);
        yield c;
      }
    } finally {
      if (stream) this.#discard(key, stream);
    }
  }

  /**
   * Yields the peer's messages that are not answers to this side's requests, until the
   * channel closes. A message with `more` set opens a stream: read the rest with
   * {@linkcode Channel.chunks}. While you hold that first message, its chunks are held for
   * you and count against the engine's `maxChannelHeldMsgs` (the channel stops reading
   * when they fill it); once you put it back without calling `chunks()` (say, `using` it
   * in a loop that ignores streams), the stream is dropped when you take the next message,
   * and its chunks go back to the pool as they come. A peer may have at most
   * {@linkcode MAX_OPEN_STREAMS} streams open at once.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<Message> {
    for (;;) {
      if (this.#unread.length > 0) this.#sweepUnread();
      const m = await this.#incoming.take();
      if (this.#lent.size > 0 && m !== done) this.#unlend(m);
      if (m === done) return;
      if (m.hasMore()) {
        const key = streamKey(m);
        const stream = this.#streams.get(key);
        if (stream && !stream.read) this.#unread.push({ key, stream, first: m, lease: leaseOf(m) });
      }
      yield m;
    }
  }

  /**
   * Drops the streams whose first message was put back without chunks() ever starting on
   * it: nobody can read them any more, and their chunks would hold the channel's read share
   * for good (the channel stops reading once they fill it).
   */
  #sweepUnread(): void {
    this.#unread = this.#unread.filter((u) => {
      if (u.stream.read || u.stream.discard || this.#streams.get(u.key) !== u.stream) return false;
      if (leaseOf(u.first) === u.lease) return true; // still the application's
      this.#discard(u.key, u.stream);
      return false;
    });
  }

  /**
   * Closes gracefully: sends a ByeRequest after everything already posted and waits
   * for the peer's ByeResponse (at most two seconds, then it aborts). Requests still
   * waiting reject, and messages that arrived but were never read (from the iterator or
   * an unfinished stream) go back to the pool. Calling it again waits for the same
   * close; on a channel the peer closed it just gives back the unread messages.
   *
   * @returns Once the channel is closed.
   *
   * @example Closing, and the closing status
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { connect, serve, Status } from "@tofu/tofu";
   *
   * await using server = await serve("tcp|127.0.0.1|0", () => "ok");
   * const ch = await connect(server.address);
   * await ch.close();
   * assertEquals(await ch.closed, Status.success);
   * assertEquals(ch.isOpen, false);
   * ```
   */
  async close(): Promise<void> {
    this.#userClosed = true;
    if (this.#state === "open" && (this.#postsUnderWay > 0 || this.#postsWait !== null)) {
      // Calls made before this close go out before its bye (bounded: a call may wait for
      // room behind a peer that reads nothing); calls made from now on are refused. A
      // second close() waits for the same (it posted the bye at once).
      this.#closeCalled = true;
      this.#postsWait ??= this.#waitForPosts();
      await this.#postsWait;
    }
    this.#closeCalled = true;
    if (this.#state === "open") {
      this.#state = "closing";
      this.#postBye(OpCode.ByeRequest);
    } else if (this.#state === "connecting" || this.#state === "reconnecting") {
      this.#stopDialing();
    }
    if (this.#state === "closing") {
      // Ours or the peer's bye: either way the close is bounded (a ByeResponse that cannot
      // be written, behind a peer that reads nothing, would otherwise hold it for good).
      // Ref'd: the application awaits this close, and nothing else may keep the process
      // alive (a channel holding its share of unread messages has no read pending).
      const grace = sleep(2000, true);
      const closedFirst = await Promise.race([this.#closed.then(() => true), grace.done]);
      grace.wake();
      if (!closedFirst) this.abort();
    }
    await this.#closed;
    this.#releaseUnread();
    if (this.#ownsHub) await this.#hub.destroy();
  }

  /**
   * Aborts at once: nothing more is sent, unsent messages are dropped (or handed to
   * `onUnsent` with `channel_closed`, see {@linkcode UnsentHandler}) and waiting
   * requests reject with `channel_closed`. `closed` resolves once the engine is done;
   * then messages that arrived but were never read go back to the pool.
   */
  abort(): void {
    this.#userClosed = true;
    void this.#closed.then(() => this.#releaseUnread());
    if (this.#state === "open" || this.#state === "closing") {
      this.#state = "closing";
      this.#postBye(OpCode.ByeSignal);
    } else if (this.#state === "connecting" || this.#state === "reconnecting") {
      this.#stopDialing();
    }
  }

  /** Same as {@linkcode Channel.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- sending ----

  #postBye(op: typeof OpCode.ByeRequest | typeof OpCode.ByeSignal): void {
    if (this.#byeSent && op === OpCode.ByeRequest) return;
    this.#byeSent = true;
    const m = this.#engine.get("always");
    m.bhdr.opCode = op;
    m.bhdr.channelNumber = this.#number;
    if (op === OpCode.ByeSignal) m.bhdr.internalA = 1;
    try {
      this.#hub.group.post(m);
    } catch {
      // The channel is already closing: its final report is on the way.
      this.#engine.put(m);
    }
  }

  async #send(
    op: number,
    body: Payload,
    headers: Record<string, string> | undefined,
    id: bigint,
    onFirst: (id: bigint) => void,
    deadline: Deadline,
  ): Promise<bigint> {
    if (body instanceof Message && body.bhdr.more !== 0) {
      // Sent as one message it would end the stream at its first chunk, and the rest of
      // it would be dropped: a proxy's client got the first chunk as a whole answer.
      throw new TofuError(
        Status.invalidMoreUsage,
        `Cannot ${
          op === OpCode.Response ? "respond" : "send"
        }: the message has more set (the first chunk of a stream); pass its chunks (for one received, ch.chunks(msg)) to send the whole stream`,
      );
    }
    if (op !== OpCode.Response) {
      // send() and request() keep pace with the socket: wait while the connection has more
      // than 2 MiB unsent. With the deadline's signal, a call that gave up leaves no wait
      // behind on a full channel. A reply is posted at once while it has room (it waits
      // only when refused for room, below).
      await deadline.race(this.#hub.group.ready(this.#number, { signal: deadline.waitSignal }));
    }
    if (body instanceof Message) {
      const bh = body.bhdr;
      bh.opCode = op as OpCode;
      if (id !== 0n) bh.messageId = id;
      if (headers) appendHeaders(body, headers);
      const posted = await this.#postWithRoom(() => this.#postMessage(body, op), deadline);
      onFirst(posted);
      return posted;
    }
    if (typeof body === "string" || body instanceof Uint8Array) {
      const posted = await this.#postWithRoom(
        () => this.#postChunk(op, body, headers, id, 0),
        deadline,
      );
      onFirst(posted);
      return posted;
    }
    if (body === null || typeof body !== "object" || !isChunkSource(body)) {
      throw new TypeError(
        "Cannot send: the body is not a string, Uint8Array, Message or iterable of chunks",
      );
    }
    // Look one chunk ahead: only the last one goes out with `more` clear.
    let prev: Chunk | undefined;
    let first = true;
    const link = this.#number;
    // Iterated by hand: the deadline bounds a source that stalls too (a `for await` waited
    // for its next chunk past any timeout or abort).
    const source = asyncChunks(body);
    let finished = false;
    try {
      for (;;) {
        const step = await deadline.race(source.next());
        if (step.done) {
          finished = true;
          break;
        }
        const c = step.value;
        if (typeof c !== "string" && !(c instanceof Uint8Array)) {
          throw new TypeError("Cannot send: a chunk is not a string or Uint8Array");
        }
        if (this.#number !== link) {
          // The rest of a stream must not go to a new connection that never saw its start.
          throw new TofuError(
            Status.channelClosed,
            "Cannot send stream: the connection closed in the middle of it",
          );
        }
        if (prev !== undefined) {
          // A long stream keeps pace with the socket, within the caller's deadline.
          await deadline.race(this.#hub.group.ready(link, { signal: deadline.waitSignal }));
          const chunk = prev;
          const chunkHeaders = first ? headers : undefined;
          id = await this.#postWithRoom(
            () => this.#postChunk(op, chunk, chunkHeaders, id, 1),
            deadline,
          );
          if (first) onFirst(id);
          first = false;
        }
        prev = c;
      }
      const last = prev ?? "";
      const lastHeaders = first ? headers : undefined;
      id = await this.#postWithRoom(() => this.#postChunk(op, last, lastHeaders, id, 0), deadline);
    } catch (err) {
      // The source is closed (not awaited: a stalled one answers only when it moves).
      if (!finished) void Promise.resolve(source.return?.()).catch(noop);
      // Part of the stream went out: end it with the failure, so the peer's reader
      // gets an error instead of waiting for a last chunk that never comes.
      if (!first && this.#number === link) {
        try {
          this.#postChunk(op, "", errorHeaders(err), id, 0);
        } catch {
          // The channel is closing: the peer's reader ends with it.
        }
      }
      throw err;
    }
    if (first) onFirst(id);
    return id;
  }

  /**
   * Posts with `post`; with a deadline, a post refused for room on this channel waits until
   * the channel's queue is empty (and a turn of the event loop has passed) and tries again,
   * within the deadline. Senders that waited for room together are woken together, and the
   * ones after the budget filled were refused (200 concurrent 60 kB requests: 131; replies
   * likewise: serve() then dropped a peer that read all its answers).
   */
  async #postWithRoom(post: () => bigint, deadline: Deadline): Promise<bigint> {
    for (;;) {
      try {
        return post();
      } catch (err) {
        if (!control.refusedForRoom(this, err)) throw err;
      }
      const link = this.#number;
      try {
        await deadline.race(
          this.#hub.group.ready(link, { lowWaterBytes: 0, signal: deadline.waitSignal }),
        );
        await deadline.race(new Promise((r) => setTimeout(r, 0)));
      } catch (err) {
        if (deadline.expired || this.#number === link) throw err;
      }
      if (this.#number !== link) {
        throw new TofuError(
          Status.channelClosed,
          "Cannot send: the connection closed while the message waited for room",
        );
      }
    }
  }

  #postChunk(
    op: number,
    data: Chunk,
    headers: Record<string, string> | undefined,
    id: bigint,
    more: 0 | 1,
  ): bigint {
    const m = this.#engine.get("always");
    try {
      const bh = m.bhdr;
      bh.opCode = op as OpCode;
      bh.messageId = id;
      bh.more = more;
      if (data.length > 0) m.body.set(data);
      if (headers) appendHeaders(m, headers);
    } catch (err) {
      this.#engine.put(m);
      throw err;
    }
    return this.#postMessage(m, op, true);
  }

  #postMessage(m: Message, op: number, ours = false): bigint {
    if (this.#state !== "open" && !(this.#state === "closing" && op === OpCode.Response)) {
      if (ours) this.#engine.put(m);
      throw new TofuError(
        Status.channelClosed,
        `Cannot send ${op === OpCode.Response ? "response" : "message"}: the channel is ${
          this.#state === "closing" ? "closing" : "not connected"
        }`,
      );
    }
    m.bhdr.channelNumber = this.#number;
    try {
      return this.#hub.group.post(m).messageId;
    } catch (err) {
      if (ours) this.#engine.put(m);
      if (err instanceof TofuError && err.status === Status.allocationFailed) {
        roomRefusals.set(err, this);
      }
      throw err;
    }
  }

  /** Resolves once the channel is open (at once if it is), within `deadline`. */
  #whenOpen(action: string, deadline: Deadline): Promise<void> {
    if (this.#closeCalled && this.#state !== "closed") {
      // After a turn, as below: a loop retrying at once kept close() waiting for good.
      return deadline.race(refuseAfterTurn(`Cannot ${action}: the channel is closing`));
    }
    if (this.#state === "open" && !this.#linkDown) return deadline.race(Promise.resolve());
    // The peer's bye under way on a channel that will re-dial: the call waits for the new
    // connection, as while re-dialing (it was refused at once as closed).
    const redials = this.#state === "closing" && this.#reconnect !== null && !this.#userClosed;
    if (this.#state === "closed" || (this.#state === "closing" && !redials)) {
      // After a turn of the event loop: a loop that retries at once on failure, refused
      // through microtasks only, kept the close it waits for from ever happening.
      return deadline.race(
        refuseAfterTurn(
          `Cannot ${action}: the channel is ${this.#state === "closed" ? "closed" : "closing"}`,
        ),
      );
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const waiter = { resolve, reject };
    this.#openWaiters.add(waiter);
    return deadline.race(promise, () => this.#openWaiters.delete(waiter));
  }

  #resolveReady(): void {
    const waiting = [...this.#openWaiters];
    this.#openWaiters.clear();
    for (const w of waiting) w.resolve();
  }

  #rejectReady(err: TofuError): void {
    const waiting = [...this.#openWaiters];
    this.#openWaiters.clear();
    for (const w of waiting) w.reject(err);
  }

  /**
   * A Request handed back unsent: if it is a request()'s, rejects the call and returns
   * true (also for the later chunks of its stream, and for a call that gave up already).
   */
  #requestHandedBack(m: Message): boolean {
    const id = m.bhdr.messageId;
    const p = this.#pending.get(id);
    if (p === undefined) return this.#abandoned.has(id);
    this.#pending.delete(id);
    if (m.hasMore()) this.#abandon(id); // its later chunks come back too
    p.reject(
      new TofuError(
        m.bhdr.status,
        `Cannot complete request: ${m.error?.message ?? statusName(m.bhdr.status)}`,
        { cause: m.error },
      ),
    );
    return true;
  }

  /** Hands a message posted and not written to the application (see UnsentHandler). */
  #unsent(m: Message): void {
    const fn = this.#onUnsent;
    if (fn === null) {
      this.#engine.put(m);
      return;
    }
    try {
      fn(m, this);
    } catch (err) {
      reportError(err);
    }
  }

  #abandon(id: bigint): void {
    // Remember the id so its late answer is dropped; a peer that never answers must
    // not make the set grow for good, so the oldest ids are forgotten past the limit
    // (an answer that late reaches the iterator like any uncorrelated Response).
    this.#abandoned.add(id);
    if (this.#abandoned.size > MAX_ABANDONED) {
      this.#abandoned.delete(this.#abandoned.values().next().value!);
    }
  }

  #drop(m: Message): void {
    // An answer nobody will read (its request gave up, or it reports a failure):
    // release it and the rest of its stream.
    if (m.hasMore()) this.#discard(streamKey(m));
    this.#engine.put(m);
  }

  // ---- receiving ----

  #routeFor(number: number): Route {
    let r = this.#routes.get(number);
    if (!r) {
      r = { deliver: (m) => this.#deliver(m, number), gone: () => this.#gone(number) };
      this.#routes.set(number, r);
    }
    return r;
  }

  #deliver(m: Message, number: number): void {
    const bh = m.bhdr;
    if (m.isFromEngine()) {
      // The final report, not one of our Signals handed back with the same status (an
      // abort or idle close hands back unsent messages with channel_closed, before it).
      if (
        bh.opCode === OpCode.Signal && bh.status === Status.channelClosed && m.isReport()
      ) {
        this.#hub.unroute(number, this.#routeFor(number));
        this.#routes.delete(number);
        const error = m.error ?? null;
        this.#engine.put(m);
        if (number === this.#number) this.#linkClosed(error);
        return;
      }
      if (number === this.#number && this.#state === "open" && !m.isReport()) {
        this.#linkDown = true; // handed back: the connection closed
      }
      if (number === this.#number && bh.opCode === OpCode.HelloRequest) {
        this.#helloFailure = m.error ??
          new TofuError(
            bh.status,
            `Cannot connect to ${this.#address}: ${statusName(bh.status)}`,
          );
      } else if (bh.opCode === OpCode.Request && this.#requestHandedBack(m)) {
        // A request() of ours: the call rejected (or had given up); nothing to hand on.
      } else if (isUnsentKind(bh.opCode) && !m.isReport()) {
        this.#unsent(m);
        return;
      }
      // pool_empty notes (the engine holds this peer back until messages of the channel
      // come back) and the channel's own handshake and bye messages: nothing else to do.
      this.#engine.put(m);
      return;
    }
    if (number !== this.#number) {
      this.#engine.put(m); // a late frame of an earlier connection
      return;
    }
    switch (bh.opCode) {
      case OpCode.HelloResponse:
        this.#engine.put(m);
        this.#handshake?.resolve(m);
        this.#handshake = null;
        return;
      case OpCode.HelloRequest:
        // The peer's handshake (accepted channels): welcome it with the same message.
        bh.opCode = OpCode.HelloResponse;
        this.#postReply(m);
        return;
      case OpCode.ByeRequest:
        if (bh.messageId === 0n || bh.more !== 0) {
          // The answer (this message as a ByeResponse) could not be posted: a response needs
          // an id, and a bye no `more`. A tofu peer sends neither; this one loses its link.
          this.#engine.put(m);
          this.#abortLink(
            bh.more !== 0
              ? new TofuError(
                Status.invalidMoreUsage,
                `Cannot receive on channel ${number}: the peer's ByeRequest has more set`,
              )
              : new TofuError(
                Status.invalidMessageId,
                `Cannot receive on channel ${number}: the peer's ByeRequest has message id 0`,
              ),
          );
          return;
        }
        bh.opCode = OpCode.ByeResponse;
        this.#byeSent = true;
        if (this.#state === "open") this.#state = "closing";
        if (this.#byeHold === null) this.#postReply(m);
        else this.#answerByeLater(m, this.#byeHold);
        return;
      case OpCode.ByeResponse:
      case OpCode.ByeSignal:
        this.#engine.put(m); // the engine closes the channel; its report follows
        return;
    }
    if (bh.opCode === OpCode.Request && bh.hasZeroMessageId) {
      // No Response can name it (id 0 is refused for answers), and a tofu peer never sends
      // one (posting assigns an id): the peer is broken, and loses its connection.
      this.#engine.put(m);
      this.#abortLink(
        new TofuError(
          Status.invalidMessageId,
          `Cannot receive on channel ${number}: the peer sent a Request with message id 0, which no Response can answer`,
        ),
      );
      return;
    }
    // The key is made only when a stream may need it (a string and a bigint per message).
    const key = this.#streams.size > 0 || m.hasMore() ? streamKey(m) : "";
    const stream = this.#streams.size > 0 ? this.#streams.get(key) : undefined;
    if (stream) {
      // The peer finished it, once: a finished stream stays known until it is read, and a
      // last chunk repeated for it must not count as another stream finished.
      if (!m.hasMore() && !stream.answer && !stream.queue.closed) this.#peerStreams--;
      if (stream.discard) {
        if (!m.hasMore()) this.#streams.delete(key);
        this.#engine.put(m);
      } else {
        const direct = stream.queue.waiting; // to its reader at once: not lent
        if (!stream.queue.push(m)) this.#engine.put(m);
        else if (!direct && this.#streamWaiters > 0) this.#lend(m);
        if (!m.hasMore()) stream.queue.close();
      }
      return;
    }
    if (bh.opCode === OpCode.Response) {
      const id = bh.messageId;
      if (this.#abandoned.has(id)) {
        if (!m.hasMore()) this.#abandoned.delete(id);
        this.#engine.put(m);
        return;
      }
      const p = this.#pending.get(id);
      if (p) {
        this.#pending.delete(id);
        // An answer the application asked for is not the peer's to hold back: it no longer
        // counts against the channel's read share (maxChannelHeldMsgs), so any number of
        // answers may be held (chunks of a streamed answer once read, see chunks()).
        // Unread messages and those taken from the iterator do count.
        discharge(m);
        if (m.hasMore()) {
          this.#openStream(key, true);
          // The unread chunks do count: once the application lets go of the first message
          // (puts it back or posts it) without chunks() starting, nobody can read them, and
          // they would hold the share for good. The message tells us when, on its way back
          // (in place of a share, which it no longer has).
          const stream = this.#streams.get(key)!;
          setShare(
            m,
            new FirstChunkWatch(() => {
              if (!stream.read) this.#discard(key, stream);
            }),
          );
        }
        p.resolve(m);
        return;
      }
    }
    if (m.hasMore()) {
      if (this.#peerStreams >= MAX_OPEN_STREAMS) {
        this.#engine.put(m);
        this.#abortLink(
          new TofuError(
            Status.invalidMoreUsage,
            `Cannot receive on channel ${number}: the peer has ${MAX_OPEN_STREAMS} streams open (unfinished) and opened one more (MAX_OPEN_STREAMS)`,
          ),
        );
        return;
      }
      this.#openStream(key, false);
    }
    if (!this.#incoming.push(m)) this.#engine.put(m);
    else if (this.#streamWaiters > 0) this.#lend(m);
  }

  #releaseUnread(): void {
    // The application closed the channel: nobody will read what is still queued. (Lent
    // messages count again first: their put gives their bytes back to the engine's budget.)
    this.#clearLent();
    for (const m of this.#incoming.drain()) this.#engine.put(m);
    for (const [key, s] of this.#streams) this.#discard(key, s);
  }

  /** Releases what a stream has queued; the rest of it is dropped as it arrives. */
  #discard(key: string, stream = this.#streams.get(key)): void {
    if (!stream || this.#streams.get(key) !== stream) return;
    if (stream.queue.closed) this.#streams.delete(key); // nothing more will arrive
    else stream.discard = true;
    for (const c of stream.queue.drain()) {
      if (this.#lent.size > 0) this.#unlend(c);
      this.#engine.put(c);
    }
  }

  /**
   * While a chunks() reader waits on an empty stream, the chunk it waits for may be behind
   * other messages of the connection (another stream, or what the peer sent between the
   * chunks). Unread, they fill the read share, the engine stops reading, and the chunk never
   * comes: nothing would move for good. So messages queued unread while a reader waits are
   * taken off the share (lent room), at most MAX_LENT_MSGS of them at a time; past that,
   * the connection is aborted with pool_empty.
   */
  #lendQueued(): void {
    const lend = (m: Message) => this.#lend(m);
    this.#incoming.forEach(lend);
    for (const s of this.#streams.values()) s.queue.forEach(lend);
  }

  #lend(m: Message): void {
    const share = shareOf(m);
    // Not charged (an answer's), or lent already.
    if (!(share instanceof ReadShare)) return;
    const bytes = share.lend(m);
    this.#lent.set(m, { share, bytes });
    this.#lentBytes += bytes;
    const byteLimit = share.byteLimit;
    if (this.#lent.size > MAX_LENT_MSGS) {
      this.#abortLink(
        new TofuError(
          Status.poolEmpty,
          `Cannot read stream on channel ${this.#number}: more than ${MAX_LENT_MSGS} unread messages came ahead of its next chunk (MAX_LENT_MSGS)`,
        ),
      );
    } else if (this.#lentBytes > byteLimit) {
      this.#abortLink(
        new TofuError(
          Status.poolEmpty,
          `Cannot read stream on channel ${this.#number}: more than ${byteLimit} bytes of unread messages came ahead of its next chunk (maxChannelHeldBytes)`,
        ),
      );
    }
  }

  // A message lent room counts again once the application takes it, or just before it is
  // put back (so that the put gives its bytes back to the engine's budget, which kept them):
  // taken from a lent queue and never charged again, it escaped both limits (a serve()
  // handler holding it held memory that counted nowhere; found by the review helper).
  #unlend(m: Message): void {
    const lent = this.#lent.get(m);
    if (lent === undefined) return;
    this.#lent.delete(m);
    this.#lentBytes -= lent.bytes;
    lent.share.reclaim(m, lent.bytes);
  }

  /** Every message lent room counts again (the connection ended, or the channel closed). */
  #clearLent(): void {
    for (const [m, { share, bytes }] of this.#lent) share.reclaim(m, bytes);
    this.#lent.clear();
    this.#lentBytes = 0;
  }

  #openStream(key: string, answer: boolean): void {
    if (!answer) this.#peerStreams++;
    this.#streams.set(key, {
      queue: new AsyncQueue<Message>(),
      discard: false,
      read: false,
      answer,
    });
  }

  /**
   * Aborts the current connection (a ByeSignal, nothing more is sent) because of the peer;
   * `cause` becomes the closing error (the engine reports the abort as channel_closed).
   */
  #abortLink(cause: TofuError): void {
    if (this.#abortCause !== null) return;
    this.#abortCause = cause;
    void cause.stack; // formatted now, it keeps no frame of the channel
    const m = this.#engine.get("always");
    m.bhdr.opCode = OpCode.ByeSignal;
    m.bhdr.channelNumber = this.#number;
    m.bhdr.internalA = 1;
    this.#postReply(m);
  }

  /**
   * Posts the ByeResponse `m` once `drained()` resolves or BYE_HOLD_MS have passed: the
   * peer may still be sent answers until then (it reads on while it waits for the
   * ByeResponse). Answers are still posted while the channel is closing.
   */
  #answerByeLater(m: Message, drained: () => Promise<void>): void {
    const number = this.#number;
    const grace = sleep(BYE_HOLD_MS);
    void Promise.race([drained().catch(noop), grace.done]).then(() => {
      grace.wake();
      if (this.#number === number && this.#state === "closing") this.#postReply(m);
      else this.#engine.put(m); // the connection is gone meanwhile
    });
  }

  #postReply(m: Message): void {
    try {
      this.#hub.group.post(m);
    } catch {
      this.#engine.put(m);
    }
  }

  #linkClosed(error: TofuError | null): void {
    this.#number = 0;
    this.#clearLent();
    this.#linkDown = false;
    // Each connection starts with no abort cause: one left from a failed handshake turned
    // every later check that aborts a misbehaving peer off (#abortLink returns at once).
    const cause = this.#abortCause;
    this.#abortCause = null;
    if (this.#handshake) {
      const h = this.#handshake;
      this.#handshake = null;
      this.#byeSent = false; // a bye of the failed attempt (its ByeResponse) went with it
      h.reject(
        this.#helloFailure ?? this.#handshakeFailure(cause ?? error) ??
          new TofuError(Status.connectFailed, `Cannot connect to ${this.#address}: refused`),
      );
      return;
    }
    if (cause !== null) error = cause;
    const status = error ? error.status : Status.success;
    this.#failInFlight(
      error ?? new TofuError(Status.channelClosed, "Cannot use channel: the peer said bye"),
    );
    if (!this.#userClosed && this.#reconnect && !this.#hub.destroyed) {
      this.#state = "reconnecting";
      this.#redial();
    } else {
      this.#finish(status);
    }
  }

  /**
   * A connection that ended during the handshake, as a connect failure: the engine's
   * receive errors named a channel number the caller never saw, with a status connect()
   * does not document (an HTTP server that answered and closed: `recv_failed`, "Cannot
   * receive on channel 12028: the peer closed the connection inside a frame").
   */
  #handshakeFailure(err: TofuError | null): TofuError | null {
    if (err === null) return null;
    const st = err.status;
    if (
      st === Status.connectFailed || st === Status.udsPathNotFound ||
      st === Status.invalidAddress || st === Status.notAllowed || st === Status.shutdownStarted
    ) {
      return err;
    }
    return new TofuError(
      Status.connectFailed,
      `Cannot connect to ${this.#address}: the handshake failed (${
        statusName(st)
      }: ${err.message})`,
      { cause: err },
    );
  }

  #gone(number: number): void {
    if (number !== this.#number && this.#state !== "reconnecting") return;
    this.#number = 0;
    const err = new TofuError(Status.shutdownStarted, "Cannot use channel: the engine is closed");
    if (this.#handshake) {
      this.#handshake.reject(err);
      this.#handshake = null;
    }
    this.#failInFlight(err);
    this.#finish(Status.shutdownStarted);
  }

  #failInFlight(cause: TofuError): void {
    const status = cause.status === Status.success ? Status.channelClosed : cause.status;
    for (const p of this.#pending.values()) {
      p.reject(
        new TofuError(
          status,
          `Cannot complete request: the channel closed (${statusName(status)})`,
          { cause },
        ),
      );
    }
    this.#pending.clear();
    this.#abandoned.clear();
    this.#peerStreams = 0; // nothing more of any stream comes on this connection
    for (const [key, s] of this.#streams) {
      s.queue.close();
      // Nothing of a stream nobody reads comes after its connection: a channel that
      // re-dials would keep it (its key names the old connection) for as long as it lives.
      if (s.discard) this.#streams.delete(key);
    }
  }

  #finish(status: number): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#wakeSleep();
    this.#incoming.close();
    for (const s of this.#streams.values()) s.queue.close();
    // Calls waiting for the channel to open reject with the closing status, as requests in
    // flight do (channel_closed after a bye).
    this.#rejectReady(
      status === Status.success
        ? new TofuError(Status.channelClosed, "Cannot use channel: it is closed")
        : new TofuError(status, `Cannot use channel: it closed (${statusName(status)})`),
    );
    this.#resolveClosed(status);
    this.#onFinish();
    if (this.#ownsHub) this.#hub.destroy();
  }

  // ---- dialing ----

  #dialOnce(deadline: Deadline): Promise<void> {
    if (deadline.expired) return deadline.promise;
    const hello = this.#engine.get("always");
    hello.bhdr.opCode = OpCode.HelloRequest;
    this.#helloFailure = null;
    let number: number;
    try {
      parseAddress(this.#address); // its own error, before the header's
      hello.headers.append("~connect_to", this.#address);
      number = this.#hub.group.post(hello).channelNumber;
    } catch (err) {
      this.#engine.put(hello);
      return Promise.reject(
        err instanceof TofuError
          ? err
          : new TofuError(Status.invalidAddress, `Cannot connect to ${this.#address}: ${err}`),
      );
    }
    this.#number = number;
    this.#hub.route(number, this.#routeFor(number));
    const shaken = new Promise<void>((resolve, reject) => {
      this.#handshake = { resolve: () => resolve(), reject };
    });
    return deadline.race(shaken).catch((err) => {
      if (this.#number === number && this.#handshake) {
        // Timed out or aborted: drop this attempt; its reports are ignored.
        this.#handshake = null;
        this.#postBye(OpCode.ByeSignal);
        this.#byeSent = false;
        this.#number = 0;
      }
      throw err;
    });
  }

  async #open(timeoutMs: number, signal: AbortSignal | undefined): Promise<void> {
    this.#handshakeTimeoutMs = timeoutMs;
    using deadline = new Deadline(
      `connect to ${this.#address}`,
      timeoutMs,
      signal,
      Status.connectFailed,
    );
    let delay = this.#reconnect?.initialDelayMs ?? 0;
    let attempts = 0;
    let last: TofuError | undefined;
    const giveUp = (err: TofuError): never => {
      this.#state = "closed";
      this.#resolveClosed(err.status ?? Status.connectFailed);
      // Out of time after failed attempts: say why the last one failed.
      if (last && deadline.expired && err !== last && !signal?.aborted) {
        const why = last.message.replace(`Cannot connect to ${this.#address}: `, "");
        throw new TofuError(err.status, `${err.message}; the last attempt: ${why}`, {
          cause: last,
        });
      }
      throw err;
    };
    for (;;) {
      try {
        await this.#dialOnce(deadline);
        this.#state = "open";
        this.#resolveReady();
        return;
      } catch (err) {
        attempts++;
        const r = this.#reconnect;
        if (
          !r || deadline.expired || attempts > r.maxAttempts || this.#userClosed ||
          this.#hub.destroyed // the engine is closed: no dial can succeed
        ) {
          giveUp(err as TofuError);
        }
        last = err as TofuError;
        const pause = sleep(jitter(delay), true);
        this.#wakeSleep = pause.wake;
        // A pause ends early when the engine closes: the next dial then fails at once.
        const unhook = this.#hub.onEnd(pause.wake);
        try {
          await deadline.race(pause.done).catch(giveUp);
        } finally {
          unhook();
          pause.wake(); // its timer would keep the process alive
        }
        delay = Math.min(delay * 2, r!.maxDelayMs);
      }
    }
  }

  async #redial(): Promise<void> {
    const r = this.#reconnect!;
    let delay = r.initialDelayMs;
    for (let attempt = 1; this.#state === "reconnecting"; attempt++) {
      if (attempt > r.maxAttempts) {
        this.#finish(Status.connectFailed);
        return;
      }
      const pause = sleep(jitter(delay), true);
      this.#wakeSleep = pause.wake;
      // No connection of this channel is routed while it pauses, so nothing calls #gone
      // if the engine closes meanwhile: the end of the hub's pump says so instead.
      const unhook = this.#hub.onEnd(pause.wake);
      await pause.done;
      unhook();
      pause.wake();
      if (this.#state !== "reconnecting") return;
      if (this.#hub.destroyed) return this.#gone(this.#number);
      using deadline = new Deadline(
        `reconnect to ${this.#address}`,
        this.#handshakeTimeoutMs,
        undefined,
        Status.connectFailed,
      );
      try {
        await this.#dialOnce(deadline);
        if (this.#state !== "reconnecting") return;
        this.#state = "open";
        this.#byeSent = false;
        this.#resolveReady();
        return;
      } catch {
        delay = Math.min(delay * 2, r.maxDelayMs);
      }
    }
  }

  #stopDialing(): void {
    const handshake = this.#handshake;
    this.#handshake = null;
    if (this.#number !== 0) {
      this.#postBye(OpCode.ByeSignal);
      this.#number = 0;
    }
    this.#finish(Status.channelClosed);
    // A dial in progress ends now, not when its handshake deadline passes.
    handshake?.reject(new TofuError(Status.channelClosed, "Cannot connect: the channel is closed"));
  }
}

function streamKey(m: Message): string {
  // The channel number tells connections apart: a peer restarted behind a reconnect
  // may number its messages from 1 again.
  const bh = m.bhdr;
  const kind = bh.opCode === OpCode.Response ? "r" : `i${bh.opCode}`;
  return `${bh.channelNumber}:${kind}:${bh.messageId}`;
}

function appendHeaders(m: Message, headers: Record<string, string>): void {
  for (const [name, value] of Object.entries(headers)) m.headers.append(name, value);
}

/** Rejects with `channel_closed` and `text` after a turn of the event loop. */
function refuseAfterTurn(text: string): Promise<void> {
  return new Promise<void>((_, reject) =>
    setTimeout(() => reject(new TofuError(Status.channelClosed, text)), 0)
  );
}

/** The chunks of `body` (a sync or async iterable) as an async iterator. */
function asyncChunks(body: object): AsyncIterator<unknown> {
  if (Symbol.asyncIterator in body) {
    return (body as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  }
  // As `for await` takes a sync iterable: each value awaited.
  return (async function* () {
    yield* body as Iterable<unknown>;
  })();
}

function isChunkSource(v: object): boolean {
  return Symbol.asyncIterator in v || Symbol.iterator in v;
}

function jitter(ms: number): number {
  // Between half and all of the delay, so many clients do not re-dial in step.
  return ms / 2 + Math.random() * ms / 2;
}
