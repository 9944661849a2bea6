/**
 * `serve`: answer every Request of every peer with what a handler returns.
 *
 * @module
 */

import { type Channel, channelControl, errorHeaders, type Payload } from "./channel.ts";
import type { Engine } from "./engine.ts";
import { type Listener, type ListenOptions, listenWith } from "./listener.ts";
import { leaseOf, Message } from "./message.ts";
import { OpCode } from "./opcode.ts";

/**
 * What a handler may return: the Response body (`string`, `Uint8Array`), a ready
 * {@linkcode Message} (the request itself, changed, is fine), chunks to stream back as
 * one `more` response, or nothing (an empty Response).
 */
export type Reply = Payload | void | null | undefined;

/**
 * Handles one message of a peer. For a Request, its return value (or what its promise
 * resolves to) becomes the Response; if it throws, the peer gets an error Response (see
 * {@linkcode serve}). Signals, and Responses that answer no `ch.request()` (say, of a
 * Request the handler sent with `ch.send`), reach it too; their return value is ignored. After it
 * settles the message goes back to the pool, unless it was returned as the reply.
 * If the message opens a `more` stream, read the rest with `ch.chunks(req)` before the
 * handler settles (or in the chunks it returns): what is left unread is then dropped.
 */
export type Handler = (req: Message, ch: Channel) => Reply | Promise<Reply>;

/** Options of {@linkcode serve}. */
export interface ServeOptions extends ListenOptions {
  /**
   * Most handlers running at once for one peer (default 256). Past it the server stops
   * taking that peer's messages until a handler settles; the peer's further frames wait
   * unread, and the engine's backpressure slows that peer down, nobody else.
   */
  maxInFlight?: number;
}

let makeServer: (
  listener: Listener,
  handler: Handler,
  maxInFlight: number,
  drains: WeakMap<Channel, () => Promise<void>>,
) => Server;

/**
 * Serves Requests on one or more addresses: every Request of every peer is passed to
 * `handler`, concurrently, and its return value is sent back as the Response.
 *
 * A handler that throws (or rejects) sends an error Response: empty body, header
 * `tofu-status` with a status number (`processing_failed`, or the `status` of a thrown
 * {@linkcode TofuError}) and header `tofu-error` with the error's message. A
 * `Channel.request` on the other side rejects with a `TofuError` carrying both.
 * A peer that misbehaves (bad frames, a closed socket, not reading its answers) loses
 * its own channel only; the other peers are served on.
 *
 * @param address One address (`tcp|HOST|PORT`, port 0 picks one; `uds|PATH`) or several.
 * @param handler Turns each Request into its Response.
 * @param options The engine, the per-peer limit of running handlers and a callback for
 * messages a connection left unwritten.
 * @returns The running server.
 * @throws {TofuError} As {@linkcode listen} does.
 *
 * @example An upper-casing server and a failing one
 * ```ts
 * import { assertEquals, assertRejects } from "@std/assert";
 * import { connect, serve, Status, TofuError } from "@tofu/tofu";
 *
 * await using server = await serve("tcp|127.0.0.1|0", (req) => {
 *   if (req.body.text() === "") throw new Error("empty request");
 *   return req.body.text().toUpperCase();
 * });
 * await using ch = await connect(server.address);
 * using reply = await ch.request("abc");
 * assertEquals(reply.body.text(), "ABC");
 * const err = await assertRejects(() => ch.request(""), TofuError);
 * assertEquals(err.status, Status.processingFailed);
 * assertEquals(err.message, "Cannot complete request: the peer failed: empty request");
 * ```
 */
export async function serve(
  address: string | readonly string[],
  handler: Handler,
  options: ServeOptions = {},
): Promise<Server> {
  if (typeof handler !== "function") {
    throw new TypeError("Cannot serve: the handler is not a function");
  }
  const maxInFlight = options.maxInFlight ?? 256;
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
    throw new RangeError(`Cannot serve: maxInFlight ${maxInFlight} is not a positive integer`);
  }
  // Each peer's ByeResponse waits for what it sent before (see #servePeer), set up as the
  // peer is accepted: its ByeRequest may come before the loop below takes it.
  const drains = new WeakMap<Channel, () => Promise<void>>();
  const listener = await listenWith(address, options, (ch) => {
    channelControl().holdBye(ch, async () => {
      // A message handed to the peer's loop but not yet taken (its `for await` resumes on a
      // later microtask), or a peer not yet taken from the listener, is counted nowhere:
      // after a turn it is.
      await new Promise((r) => setTimeout(r, 0));
      await drains.get(ch)?.();
    });
  });
  return makeServer(listener, handler, maxInFlight, drains);
}

/**
 * A running server from {@linkcode serve}.
 *
 * @example Stopping a server from outside
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { connect, serve, Status } from "@tofu/tofu";
 *
 * const server = await serve("tcp|127.0.0.1|0", () => "ok");
 * const ch = await connect(server.address);
 * await server.close(); // says bye to every peer
 * assertEquals(await ch.closed, Status.success);
 * assertEquals(server.peerCount, 0);
 * ```
 */
export class Server implements AsyncDisposable {
  readonly #listener: Listener;
  readonly #handler: Handler;
  readonly #maxInFlight: number;
  readonly #accepting: Promise<void>;

  static {
    makeServer = (listener, handler, maxInFlight, drains) =>
      new Server(listener, handler, maxInFlight, drains);
  }

  readonly #drains: WeakMap<Channel, () => Promise<void>>;

  private constructor(
    listener: Listener,
    handler: Handler,
    maxInFlight: number,
    drains: WeakMap<Channel, () => Promise<void>>,
  ) {
    this.#listener = listener;
    this.#handler = handler;
    this.#maxInFlight = maxInFlight;
    this.#drains = drains;
    this.#accepting = this.#acceptAll();
  }

  /** The first bound address, with the real port (`tcp|127.0.0.1|40123`). */
  get address(): string {
    return this.#listener.address;
  }

  /** Every bound address. */
  get addresses(): string[] {
    return this.#listener.addresses;
  }

  /** The engine of the server. */
  get engine(): Engine {
    return this.#listener.engine;
  }

  /** Peers connected now. */
  get peerCount(): number {
    return this.#listener.peerCount;
  }

  /**
   * Stops accepting, says bye to every peer and releases the sockets. It resolves
   * promptly (within about two seconds): it does not wait for handlers still running;
   * their answers are dropped. Answers already sent that a peer has not read within the
   * first second go to `onUnsent` (the peer is aborted). Idempotent.
   */
  async close(): Promise<void> {
    await this.#listener.close();
    await this.#accepting;
  }

  /** Same as {@linkcode Server.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #acceptAll(): Promise<void> {
    for await (const ch of this.#listener) void this.#servePeer(ch);
  }

  async #servePeer(ch: Channel): Promise<void> {
    let inFlight = 0;
    let slotFree: (() => void) | null = null;
    // Woken whenever a handler settles (its answer posted).
    let onSettle: (() => void)[] = [];
    const settled = () => {
      inFlight--;
      slotFree?.();
      slotFree = null;
      const waiting = onSettle;
      onSettle = [];
      for (const wake of waiting) wake();
    };
    // The peer may still be answered after its ByeRequest: the ByeResponse waits until
    // everything it sent before has been handled (at most a grace, see Channel).
    const control = channelControl();
    this.#drains.set(ch, async () => {
      while (inFlight > 0 || control.unread(ch) > 0) {
        await new Promise<void>((r) => onSettle.push(r));
      }
    });
    for await (const m of ch) {
      inFlight++;
      this.#handle(m, ch).then(settled);
      if (inFlight >= this.#maxInFlight) await new Promise<void>((r) => slotFree = r);
    }
  }

  async #handle(req: Message, ch: Channel): Promise<void> {
    const engine = ch.engine;
    const lease = leaseOf(req);
    // Read before the handler runs: it may release `req` (say, through chunks()).
    const id = req.bhdr.messageId;
    const isRequest = req.bhdr.opCode === OpCode.Request;
    const discardRest = channelControl().discarder(ch, req);
    let reply: Reply = undefined;
    let posted = false;
    try {
      reply = await this.#handler(req, ch);
      if (!isRequest) {
        // Nothing answers a Signal (or a Response): what the handler returned is not sent,
        // and goes back like the message (kept, the message held the peer's share for good).
        abandon(reply, req, engine);
        reply = undefined;
      } else await channelControl().respond(ch, id, reply ?? "", () => posted = true);
    } catch (err) {
      abandon(reply, req, engine);
      reply = undefined;
      // A streamed reply that failed partway was ended with the error already.
      // Also while the channel is closing: the peer's ByeResponse waits for this answer.
      if (isRequest && !posted) await this.#fail(id, ch, err);
    } finally {
      // Unless the handler gave `req` away (put it back, or it went out as the reply).
      if (reply !== req && leaseOf(req) === lease) engine.put(req);
      discardRest(); // the part of a streamed request the handler did not read
    }
  }

  async #fail(id: bigint, ch: Channel, err: unknown): Promise<void> {
    // An answer waits for room (a peer that reads nothing is closed by the engine's
    // writeStallTimeoutMs): an allocation_failed here is the handler's own, and answered.
    try {
      await ch.respond(id, "", { headers: errorHeaders(err) });
    } catch {
      // The channel closed meanwhile: nobody is left to tell.
    }
  }
}

/**
 * Lets go of a reply that will not be sent: a Message goes back to the pool (unless it is
 * the request, released apart), and chunks not read to the end are closed (`return()`), so
 * that a generator's `finally` runs and a source built to release something on `return()`
 * does so even if nothing of it was read (respond() refused before it started).
 */
function abandon(reply: Reply, req: Message, engine: Engine): void {
  if (reply instanceof Message) {
    if (reply !== req) engine.put(reply);
    return;
  }
  if (reply instanceof ReadableStream) {
    void reply.cancel().catch(() => {}); // a stream (a file's, say) is let go of too
    return;
  }
  const close = (reply as { return?: unknown } | null | undefined)?.return;
  if (typeof reply === "object" && reply !== null && typeof close === "function") {
    try {
      void Promise.resolve(close.call(reply)).catch(() => {});
    } catch {
      // A return() that throws: nothing more to release.
    }
  }
}
