/**
 * `listen`: accept peers on one or more addresses and get each as a {@linkcode Channel}.
 *
 * @module
 */

import { parseAddress } from "./address.ts";
import { AsyncQueue, done } from "./_async_queue.ts";
import { type Channel, channelControl, checkUnsentHandler, type UnsentHandler } from "./channel.ts";
import { sleep } from "./_deadline.ts";
import { defaultEngine } from "./_default_engine.ts";
import type { Engine } from "./engine.ts";
import type { Message } from "./message.ts";
import { OpCode } from "./opcode.ts";
import { Hub } from "./_peer_hub.ts";
import { Status, statusName, TofuError } from "./status.ts";

/** Options of {@linkcode listen}. */
export interface ListenOptions {
  /** The engine to use; default: a shared engine made on first use. */
  engine?: Engine;
  /**
   * Receives each message an accepted channel posted that its connection ended before
   * writing (a peer that left or stopped reading), with that channel; see
   * {@linkcode UnsentHandler}. Without it, such messages go back to the pool.
   */
  onUnsent?: UnsentHandler;
}

interface Slot {
  requested: string;
  bound: string;
  resolve(): void;
  reject(e: TofuError): void;
}

const CLOSE_GRACE_MS = 1000;

let makeListener: (
  engine: Engine,
  onUnsent: UnsentHandler | undefined,
  onAccepted: ((ch: Channel) => void) | null,
) => Listener;
let startListener: (l: Listener, addresses: string[]) => Promise<void>;

/**
 * Listens on one or more addresses (a TCP port and a Unix socket at once, say) and
 * yields every peer that connects as an open {@linkcode Channel}. Peers that send a
 * HelloRequest are welcomed with a HelloResponse.
 *
 * @param address One address (`tcp|HOST|PORT`, port 0 picks a free port, or
 * `uds|PATH`) or several.
 * @param options The engine, and a callback for messages a connection left unwritten.
 * @returns The listener, once every address is bound.
 * @throws {TofuError} With status `listen_failed` (address in use, no such interface),
 * `invalid_address` or `not_allowed` (a missing permission); nothing stays bound then.
 * @throws {TypeError} If no address is given.
 *
 * @example Accepting one peer
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { connect, listen } from "@tofu/tofu";
 *
 * await using listener = await listen("tcp|127.0.0.1|0");
 * await using client = await connect(listener.address);
 * for await (const peer of listener) {
 *   await client.send("hi");
 *   for await (using msg of peer) {
 *     assertEquals(msg.body.text(), "hi");
 *     break;
 *   }
 *   break;
 * }
 * ```
 */
export function listen(
  address: string | readonly string[],
  options: ListenOptions = {},
): Promise<Listener> {
  return listenWith(address, options, null);
}

/**
 * Library-internal: {@linkcode listen}, with `onAccepted` called for each accepted peer
 * before anything it sent is delivered (serve() sets up the peer there: a peer whose
 * ByeRequest came before serve() took it from the listener got its ByeResponse at once,
 * and the answers to what it sent before were lost).
 */
export async function listenWith(
  address: string | readonly string[],
  options: ListenOptions,
  onAccepted: ((ch: Channel) => void) | null,
): Promise<Listener> {
  const addresses = typeof address === "string" ? [address] : [...address];
  if (addresses.length === 0 || addresses.some((a) => typeof a !== "string")) {
    throw new TypeError("Cannot listen: give one address string or a non-empty array of them");
  }
  checkUnsentHandler("listen", options.onUnsent);
  const listener = makeListener(options.engine ?? defaultEngine(), options.onUnsent, onAccepted);
  await startListener(listener, addresses);
  return listener;
}

/**
 * A set of listening sockets and the peers they accepted. Iterate it to get each new
 * peer; close it to stop accepting and say bye to every peer.
 *
 * @example One listener on a TCP port and a Unix socket
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { connect, listen } from "@tofu/tofu";
 * import { tempUdsPath } from "@tofu/tofu/testing";
 *
 * await using listener = await listen(["tcp|127.0.0.1|0", `uds|${tempUdsPath()}`]);
 * const [tcp, uds] = listener.addresses;
 * await using viaTcp = await connect(tcp!);
 * await using viaUds = await connect(uds!);
 * const peers = listener[Symbol.asyncIterator]();
 * await peers.next();
 * await peers.next();
 * assertEquals(listener.peerCount, 2);
 * ```
 */
export class Listener implements AsyncIterable<Channel>, AsyncDisposable {
  readonly #engine: Engine;
  readonly #hub: Hub;
  readonly #slots = new Map<number, Slot>();
  readonly #accepted = new AsyncQueue<Channel>();
  readonly #live = new Set<Channel>();
  #closing: Promise<void> | null = null;

  static {
    makeListener = (engine, onUnsent, onAccepted) => new Listener(engine, onUnsent, onAccepted);
    startListener = (l, addresses) => l.#start(addresses);
  }

  readonly #onUnsent: UnsentHandler | undefined;
  readonly #onAccepted: ((ch: Channel) => void) | null;

  private constructor(
    engine: Engine,
    onUnsent: UnsentHandler | undefined,
    onAccepted: ((ch: Channel) => void) | null,
  ) {
    this.#engine = engine;
    this.#onUnsent = onUnsent;
    this.#onAccepted = onAccepted;
    this.#hub = new Hub(engine, (m) => this.#accept(m));
    // The engine closed (or the group is gone): no peer comes any more.
    this.#hub.onEnd(() => this.#accepted.close());
  }

  /** The first bound address, with the real port (`tcp|127.0.0.1|40123`, `uds|/tmp/x.sock`). */
  get address(): string {
    return this.addresses[0] ?? "";
  }

  /** Every bound address, in the order given to `listen`. */
  get addresses(): string[] {
    return [...this.#slots.values()].map((s) => s.bound);
  }

  /** The engine of the listener and its channels. */
  get engine(): Engine {
    return this.#engine;
  }

  /** Peers connected now. */
  get peerCount(): number {
    return this.#live.size;
  }

  /** Yields each accepted peer, until the listener closes. */
  async *[Symbol.asyncIterator](): AsyncIterator<Channel> {
    for (;;) {
      const ch = await this.#accepted.take();
      if (ch === done) return;
      yield ch;
    }
  }

  /**
   * Stops accepting, says bye to every peer (a graceful close, at most one second),
   * aborts the peers still there (what they did not write goes to `onUnsent`, within
   * another second), then releases the sockets. Idempotent.
   */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  /** Same as {@linkcode Listener.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #close(): Promise<void> {
    for (const number of this.#slots.keys()) this.#abortChannel(number);
    this.#accepted.close();
    // Ref'd: awaited by the application; the peers' sockets may have nothing pending.
    const grace = sleep(CLOSE_GRACE_MS, true);
    await Promise.race([Promise.all([...this.#live].map((ch) => ch.close())), grace.done]);
    grace.wake();
    // Peers still there after the grace are aborted, and their channels' closes awaited
    // (bounded too): what they did not write is then handed back (to onUnsent) before the
    // group goes; destroying it first dropped those answers without a word.
    if (this.#live.size > 0) {
      const left = [...this.#live];
      for (const ch of left) ch.abort();
      const handBack = sleep(CLOSE_GRACE_MS, true);
      await Promise.race([Promise.all(left.map((ch) => ch.closed)), handBack.done]);
      handBack.wake();
    }
    await this.#hub.destroy();
  }

  async #start(addresses: string[]): Promise<void> {
    const waits: Promise<void>[] = [];
    try {
      for (const requested of addresses) {
        const m = this.#engine.get("always");
        m.bhdr.opCode = OpCode.WelcomeRequest;
        let number: number;
        try {
          parseAddress(requested); // its own error, before the header's
          m.headers.append("~listen_on", requested);
          number = this.#hub.group.post(m).channelNumber;
        } catch (err) {
          this.#engine.put(m);
          throw err instanceof TofuError
            ? err
            : new TofuError(Status.invalidAddress, `Cannot listen on ${requested}: ${err}`);
        }
        waits.push(
          new Promise<void>((resolve, reject) => {
            const slot: Slot = { requested, bound: requested, resolve, reject };
            this.#slots.set(number, slot);
            this.#hub.route(number, {
              deliver: (msg) => this.#slotMessage(slot, msg),
              gone: () =>
                reject(
                  new TofuError(Status.shutdownStarted, "Cannot listen: the engine is closed"),
                ),
            });
          }),
        );
      }
      await Promise.all(waits);
    } catch (err) {
      await Promise.allSettled(waits);
      await this.#hub.destroy();
      throw err;
    }
  }

  #slotMessage(slot: Slot, m: Message): void {
    const bh = m.bhdr;
    if (bh.opCode === OpCode.WelcomeResponse) {
      if (bh.status === Status.success) {
        slot.bound = m.headers.get("~listen_on") ?? slot.requested;
        slot.resolve();
      } else {
        slot.reject(
          m.error ??
            new TofuError(
              bh.status,
              `Cannot listen on ${slot.requested}: ${statusName(bh.status)}`,
            ),
        );
      }
    }
    this.#engine.put(m);
  }

  #accept(m: Message): void {
    const number = m.bhdr.channelNumber;
    if (m.isFromEngine() || number === 0) {
      this.#engine.put(m);
      return;
    }
    if (this.#closing) {
      // A peer that arrived while closing: refuse it.
      this.#engine.put(m);
      this.#abortChannel(number);
      return;
    }
    const ch = channelControl().accept(
      this.#hub,
      number,
      this.#addressFor(m),
      m,
      this.#onUnsent,
    );
    this.#live.add(ch);
    channelControl().onFinish(ch, () => this.#live.delete(ch));
    this.#onAccepted?.(ch);
    this.#accepted.push(ch);
  }

  #addressFor(first: Message): string {
    // The engine does not say which socket accepted a peer, but a tofu HelloRequest
    // carries the address the peer dialled: the bound address of the same kind and
    // port (TCP) or path (Unix socket) is the one it came in on.
    const bound = this.addresses;
    const dialled = first.bhdr.opCode === OpCode.HelloRequest && bound.length > 1
      ? first.headers.get("~connect_to")?.split("|")
      : undefined;
    const match = dialled && bound.find((a) => {
      const [kind, host, port] = a.split("|");
      return kind === dialled[0] && (kind === "uds" ? host === dialled[1] : port === dialled[2]);
    });
    return match || this.address;
  }

  #abortChannel(number: number): void {
    const bye = this.#engine.get("always");
    bye.bhdr.opCode = OpCode.ByeSignal;
    bye.bhdr.internalA = 1;
    bye.bhdr.channelNumber = number;
    try {
      this.#hub.group.post(bye);
    } catch {
      this.#engine.put(bye);
    }
  }
}
