/**
 * Servers on every core: {@linkcode serveWorkers} runs a request handler in several
 * Workers behind one TCP (or Unix socket) address. See `docs/workers.md`.
 *
 * @module
 */

import { connect } from "./connect.ts";
import type { Channel } from "./channel.ts";
import { type Reply, serve, type Server } from "./server.ts";
import { leaseOf, type Message } from "./message.ts";
import { OpCode } from "./opcode.ts";
import { Status, TofuError } from "./status.ts";
import { reusePortAvailable } from "./_transport_tcp.ts";
import { longTimeout } from "./_deadline.ts";
import { type IsolateLink, isolateListening, linkWorker } from "./workers.ts";

/** Options of {@linkcode serveWorkers}. */
export interface ServeWorkersOptions {
  /** How many Workers (default `navigator.hardwareConcurrency`). */
  workers?: number;
  /**
   * `reusePort`: every Worker binds the TCP address itself with `SO_REUSEPORT` (Linux and
   * `--unstable-net`); `relay`: this isolate binds the address and passes each request to a
   * Worker over an isolate channel. Default: `reusePort` where available, else `relay`.
   */
  mode?: "reusePort" | "relay";
  /** Most handlers running at once per peer in each Worker (default 256). */
  maxInFlight?: number;
  /** Milliseconds to wait for the Workers to start (default 30,000). */
  startTimeoutMs?: number;
}

let serial = 0;

// Set by WorkerServer's static block: how serveWorkers drives a server it is building,
// without public methods on it.
let makeServer: (mode: "reusePort" | "relay") => WorkerServer;
let startWorker: (
  s: WorkerServer,
  module: string,
  address: string,
  reusePort: boolean,
  maxInFlight: number,
  timeoutMs: number,
) => Promise<string>;
let startRelay: (
  s: WorkerServer,
  address: string,
  names: string[],
  timeoutMs: number,
) => Promise<void>;
let setAddress: (s: WorkerServer, address: string) => void;

/**
 * Serves Requests on `address` with the default export of `moduleUrl` (a
 * {@linkcode Handler}: `(req, ch) => reply`) running in `workers` Workers, so the handler's
 * work spreads over the cores.
 *
 * In `reusePort` mode (Linux with `--unstable-net`, and a TCP address) every Worker runs
 * its own engine bound to the same port and the kernel spreads the connections. Elsewhere
 * (`relay` mode) this isolate binds the address and hands each Request to the Workers in
 * turn over isolate channels; the handler's work still spreads, the socket I/O does not. A
 * Worker that dies (an uncaught error in it ends it) is passed over from then on; a channel
 * to a live Worker that closes is dialed again.
 * Deno 2.9.6 ends the process when `reusePort` is used without `--unstable-net`: this
 * function checks first and never does that.
 *
 * The Workers inherit this isolate's permissions; they need `--allow-read` for the handler
 * module and the modules it imports.
 *
 * @param address `tcp|HOST|PORT` (port 0 picks a free port for every Worker) or `uds|PATH`
 *   (relay mode).
 * @param moduleUrl The handler module: its default export (or `handler`) serves Requests.
 *   A URL (`new URL("./handler.ts", import.meta.url)`), or a string with a scheme or an
 *   absolute path; a relative path is refused (it has nothing sure to be relative to).
 * @throws {TypeError} If the address is not a string, or the module a relative path.
 * @param options Worker count and mode.
 * @returns The running server; close it to stop the Workers.
 * @throws {TofuError} With `listen_failed` when the Workers cannot start or bind.
 * @throws {RangeError} If `workers` is not a positive integer.
 *
 * @example Two Workers behind one port
 * ```ts ignore
 * import { connect, serveWorkers } from "@tofu/tofu";
 *
 * await using server = await serveWorkers(
 *   "tcp|127.0.0.1|0",
 *   new URL("./rip_handler.ts", import.meta.url),
 *   { workers: 2 },
 * );
 * await using ch = await connect(server.address);
 * using page = await ch.request("page 1");
 * ```
 */
export async function serveWorkers(
  address: string,
  moduleUrl: string | URL,
  options: ServeWorkersOptions = {},
): Promise<WorkerServer> {
  if (typeof address !== "string") {
    throw new TypeError(
      `Cannot serve on Workers: the address must be a string, got ${typeof address}`,
    );
  }
  const module = moduleHref(moduleUrl);
  const n = options.workers ?? navigator.hardwareConcurrency ?? 1;
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`Cannot serve on Workers: workers ${n} is not a positive integer`);
  }
  const shareable = address.startsWith("tcp|") && reusePortAvailable();
  const mode = options.mode ?? (shareable ? "reusePort" : "relay");
  if (mode === "reusePort" && !shareable) {
    throw new TofuError(
      Status.listenFailed,
      `Cannot serve on Workers: reusePort needs a tcp address, Linux and --unstable-net`,
    );
  }
  const maxInFlight = options.maxInFlight ?? 256;
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  const server = makeServer(mode);
  try {
    if (mode === "reusePort") {
      // The first Worker picks the port (port 0); the others bind the same one.
      let bound = address;
      for (let i = 0; i < n; i++) {
        bound = await startWorker(server, module, bound, true, maxInFlight, timeoutMs);
      }
      setAddress(server, bound);
    } else {
      const names: string[] = [];
      for (let i = 0; i < n; i++) {
        const name = `tofu-serve-${Deno.pid}-${++serial}`;
        await startWorker(server, module, `isolate|${name}`, false, maxInFlight, timeoutMs);
        names.push(name);
      }
      await startRelay(server, address, names, timeoutMs);
    }
  } catch (err) {
    await server.close();
    if (err instanceof TofuError) throw err;
    throw new TofuError(
      Status.listenFailed,
      `Cannot serve on Workers: ${(err as Error)?.message ?? err}`,
      { cause: err },
    );
  }
  return server;
}

/**
 * A server from {@linkcode serveWorkers}: its Workers and, in relay mode, the relay.
 *
 * @example Checking which mode runs
 * ```ts ignore
 * import { serveWorkers } from "@tofu/tofu";
 *
 * await using server = await serveWorkers("tcp|0.0.0.0|7099", new URL("./h.ts", import.meta.url));
 * // "reusePort" on Linux under --unstable-net: every Worker accepts on the port itself.
 * console.log(server.mode, server.workers, server.address);
 * ```
 */
export class WorkerServer implements AsyncDisposable {
  /** `reusePort` (every Worker binds the port) or `relay` (this isolate relays). */
  readonly mode: "reusePort" | "relay";
  readonly #workers: { worker: Worker; link: IsolateLink }[] = [];
  #address = "";
  #relay: Server | null = null;
  #channels: Channel[] = [];
  #closing: Promise<void> | null = null;

  static {
    makeServer = (mode) => new WorkerServer(mode);
    startWorker = (s, ...args) => s.#start(...args);
    startRelay = (s, ...args) => s.#startRelay(...args);
    setAddress = (s, address) => {
      s.#address = address;
    };
  }

  private constructor(mode: "reusePort" | "relay") {
    this.mode = mode;
  }

  /** The bound address, with the real port (`tcp|127.0.0.1|40123`). */
  get address(): string {
    return this.#address;
  }

  /** How many Workers serve. */
  get workers(): number {
    return this.#workers.length;
  }

  // Starts one Worker serving `address`; returns its bound address.
  async #start(
    module: string,
    address: string,
    reusePort: boolean,
    maxInFlight: number,
    timeoutMs: number,
  ): Promise<string> {
    const worker = new Worker(new URL("./_serve_worker.ts", import.meta.url), {
      type: "module",
      name: `tofu-serve-${this.#workers.length + 1}`,
    });
    const link = linkWorker(worker);
    this.#workers.push({ worker, link });
    return await new Promise<string>((resolve, reject) => {
      const cancelTimer = longTimeout(
        () => reject(new Error(`the Worker did not start within ${timeoutMs} ms`)),
        timeoutMs,
        true,
      );
      const onMessage = (e: MessageEvent) => {
        const d = e.data as Record<string, string> | null;
        const bound = d?.["~tofu_serve_bound"];
        const error = d?.["~tofu_serve_error"];
        if (bound === undefined && error === undefined) return;
        cancelTimer();
        worker.removeEventListener("message", onMessage);
        if (bound !== undefined) resolve(bound);
        else reject(new Error(error));
      };
      worker.addEventListener("message", onMessage);
      link.ended.then((end) => {
        cancelTimer();
        reject(new Error(`the Worker ended (${end.reason}): ${end.error ?? ""}`));
      });
      worker.postMessage({ "~tofu_serve": { module, address, reusePort, maxInFlight } });
    });
  }

  // Binds `address` here and passes each Request to the Workers in turn.
  async #startRelay(address: string, names: string[], timeoutMs: number): Promise<void> {
    // Not AbortSignal.timeout: past MAX_TIMER_MS (about 24.8 days) it fires at once.
    const timeout = new AbortController();
    const cancelTimer = longTimeout(
      () => timeout.abort(new DOMException("The Workers did not listen in time", "TimeoutError")),
      timeoutMs,
      false,
    );
    try {
      for (const [i, name] of names.entries()) {
        await isolateListening(name, { signal: timeout.signal });
        // Re-dialed if it closes while its Worker lives (a Worker's serve() may drop it);
        // closed for good once the Worker has ended (re-dialed, requests handed to it waited
        // for a connection that never came).
        const ch = await connect(`isolate|${name}`, {
          reconnect: { initialDelayMs: 50, maxDelayMs: 1000 },
        });
        this.#channels.push(ch);
        void this.#workers[i]!.link.ended.then(() => ch.abort());
        void dropUnasked(ch);
      }
    } finally {
      cancelTimer();
    }
    let next = 0;
    const channels = this.#channels;
    this.#relay = await serve(address, (req, peer) => {
      // A Worker that died (an uncaught error ends it) is passed over: its channel is closed
      // for good, and the live Workers take its share; one re-dialing is passed over while
      // another is open.
      let ch = channels[next++ % channels.length]!;
      for (let i = 1; !ch.isOpen && i < channels.length; i++) {
        ch = channels[next++ % channels.length]!;
      }
      return relay(req, peer, ch);
    });
    this.#address = this.#relay.address;
  }

  /**
   * Stops the relay (if any), closes every Worker's server and terminates the Workers.
   * Calling it again waits for the same close.
   */
  close(): Promise<void> {
    return this.#closing ??= this.#close();
  }

  async #close(): Promise<void> {
    await this.#relay?.close();
    await Promise.all(this.#channels.map((ch) => ch.close()));
    await Promise.all(this.#workers.map(({ worker, link }) => stop(worker, link)));
  }

  /** Same as {@linkcode WorkerServer.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * The handler module's URL: a URL, a string with a scheme, or an absolute file path. A
 * relative path was resolved against this library's own file (for a JSR install, a
 * jsr.io URL): "Module not found", far from what the caller meant.
 */
function moduleHref(moduleUrl: string | URL): string {
  if (moduleUrl instanceof URL) return moduleUrl.href;
  if (typeof moduleUrl !== "string") {
    throw new TypeError(
      `Cannot serve on Workers: the module must be a URL or a string, got ${typeof moduleUrl}`,
    );
  }
  if (/^[a-zA-Z][a-zA-Z\d+.-]*:/.test(moduleUrl)) return new URL(moduleUrl).href;
  if (moduleUrl.startsWith("/")) return new URL(moduleUrl, "file:///").href;
  throw new TypeError(
    `Cannot serve on Workers: the module ${moduleUrl} is a relative path; pass new URL(${
      JSON.stringify(moduleUrl)
    }, import.meta.url)`,
  );
}

/**
 * Passes the peer's message `req` to a Worker over `ch` and gives back its answer as it
 * is: a Signal as a Signal, a Request (single or a `more` stream) with its text headers and
 * body, and the answer as a Message or, when the Worker streams it, as a stream.
 */
async function relay(req: Message, peer: Channel, ch: Channel): Promise<Reply> {
  if (req.bhdr.opCode !== OpCode.Request) {
    if (req.bhdr.opCode !== OpCode.Signal) return undefined;
    await (req.hasMore()
      ? ch.send(chunkBytes(peer, req), { headers: singleHeaders(req) })
      : withCopy(req, ch, (m) => ch.send(m)));
    return undefined;
  }
  const answer =
    await (req.hasMore()
      ? ch.request(chunkBytes(peer, req), { headers: singleHeaders(req) })
      : withCopy(req, ch, (m) => ch.request(m))).catch(passOn);
  if (!answer.hasMore()) return answer;
  return answerStream(ch, answer);
}

/**
 * The streamed answer `first` opens on `ch`, as chunks for the peer's Response. If it is
 * closed before it was read at all (the peer left, and respond() refused before starting
 * it), `first` goes back, and with it the rest of the stream as it arrives: a generator
 * not started runs nothing on return(), and the unread chunks held the Worker's channel
 * (its read share) for good.
 */
function answerStream(ch: Channel, first: Message): AsyncIterableIterator<Uint8Array> {
  const chunks = chunkBytes(ch, first);
  let started = false;
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    next() {
      started = true;
      return chunks.next();
    },
    return(value?: unknown) {
      if (!started) {
        started = true;
        ch.engine.put(first);
      }
      return chunks.return(value);
    },
  };
}

/**
 * Passes `use` a message of `ch`'s engine with `m`'s text headers (every line, in order)
 * and body; if `use` fails before the copy was posted, the copy goes back to the pool.
 */
async function withCopy<T>(
  m: Message,
  ch: Channel,
  use: (copy: Message) => Promise<T>,
): Promise<T> {
  const copy = ch.engine.get("always");
  copy.headers.setRaw(m.headers.raw());
  copy.body.set(m.body.bytes());
  const lease = leaseOf(copy);
  try {
    return await use(copy);
  } catch (err) {
    if (leaseOf(copy) === lease) ch.engine.put(copy); // never posted: still ours
    throw err;
  }
}

/**
 * The text headers of a streamed request's first chunk, for `request()`: a name that comes
 * twice cannot be passed on that way, and is refused rather than cut to one value.
 */
function singleHeaders(m: Message): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of m.headers) {
    if (Object.hasOwn(out, name)) {
      throw new TofuError(
        Status.invalidMoreUsage,
        `Cannot relay a streamed request: its header ${name} comes more than once`,
      );
    }
    out[name] = value;
  }
  return out;
}

/**
 * Throws `err`; the Worker's own failure (an error answer, turned into a TofuError with a
 * prefix by request() or chunks()) as the Worker gave it, without that prefix: the relay's
 * error answer adds it again.
 */
function passOn(err: unknown): never {
  if (err instanceof TofuError) {
    const own = /^Cannot (?:complete request|read stream): the peer failed: /;
    if (own.test(err.message)) throw new TofuError(err.status, err.message.replace(own, ""));
  }
  throw err;
}

/**
 * Reads what a Worker sends the relay that answers none of its requests (Signals a handler
 * sends its peer, say) and lets it go: in relay mode the Worker's peer is the relay, and no
 * client is known to pass it on to. Left unread, each held the channel's read share, and
 * after `maxChannelHeldMsgs` of them the relay stopped reading the Worker's answers.
 */
async function dropUnasked(ch: Channel): Promise<void> {
  try {
    for await (const m of ch) ch.engine.put(m); // a stream it opens is dropped with it
  } catch {
    // The channel failed: its requests fail with it.
  }
}

/** The bodies of the stream `first` opens on `from`, each copied (its message goes back). */
async function* chunkBytes(from: Channel, first: Message): AsyncGenerator<Uint8Array> {
  try {
    for await (using c of from.chunks(first)) yield c.body.bytes().slice();
  } catch (err) {
    passOn(err);
  }
}

// Asks a Worker to close its server (so its peers get a graceful end), then terminates it.
async function stop(worker: Worker, link: IsolateLink): Promise<void> {
  if (!link.closed) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      worker.addEventListener("message", (e) => {
        if ((e.data as Record<string, unknown> | null)?.["~tofu_serve_closed"]) {
          clearTimeout(timer);
          resolve();
        }
      });
      link.ended.then(() => {
        clearTimeout(timer);
        resolve();
      });
      worker.postMessage({ "~tofu_serve_close": true });
    });
  }
  worker.terminate();
}
