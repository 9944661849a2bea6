/**
 * Links between isolates: a Worker and its parent (or, through the parent, two Workers)
 * open tofu channels to each other with `isolate|NAME` addresses, without a socket. Call
 * {@linkcode linkWorker} in the parent for each Worker, and {@linkcode linkParent} at the
 * top of the Worker's module. See `docs/workers.md` for the design.
 *
 * @module
 */

import { closeSide, isKnown, Link, whenKnown } from "./_transport_isolate.ts";

const REQUEST = "~tofu_link_request";

// Set by IsolateLink's static block: links are made and ended only by this module.
let makeLink: (port: MessagePort, near: boolean) => IsolateLink;
let endLink: (link: IsolateLink, reason: LinkEnd) => void;
const PORT = "~tofu_link";

/** Why an {@linkcode IsolateLink} ended. */
export interface LinkEnd {
  /** `terminated`: `worker.terminate()`; `error`: an uncaught error in the Worker; `closed`: `close()`. */
  reason: "terminated" | "error" | "closed";
  /** The Worker's uncaught error, for `error`. */
  error?: unknown;
}

/**
 * A link to another isolate. While it is open, `isolate|NAME` listeners of either side are
 * reachable from the other. When it ends, every channel that crosses it closes on this side
 * with a status (`peer_disconnected`, or `send_failed`/`recv_failed` mid-frame), and the
 * messages not yet written are handed back.
 *
 * @example Closing a link ends the channels that cross it
 * ```ts ignore
 * import { linkWorker } from "@tofu/tofu";
 *
 * const worker = new Worker(new URL("./rip_worker.ts", import.meta.url), { type: "module" });
 * const link = linkWorker(worker);
 * // ... channels to isolate|rip ...
 * worker.terminate(); // the channels to it close with peer_disconnected
 * console.log((await link.ended).reason); // "terminated"
 * ```
 */
export class IsolateLink implements Disposable {
  readonly #link: Link;
  readonly #near: boolean;
  /** Resolves when the link ends, with the reason. */
  readonly ended: Promise<LinkEnd>;
  #end!: (e: LinkEnd) => void;
  #reason: LinkEnd | null = null;

  static {
    makeLink = (port, near) => new IsolateLink(port, near);
    endLink = (link, reason) => link.#endWith(reason);
  }

  private constructor(port: MessagePort, near: boolean) {
    this.#link = new Link(port);
    this.#near = near;
    this.ended = new Promise((resolve) => this.#end = resolve);
    this.#link.onDead(() => this.#end(this.#reason ?? { reason: "closed" }));
  }

  /** Whether the link has ended. */
  get closed(): boolean {
    return this.#link.dead;
  }

  #endWith(reason: LinkEnd): void {
    if (this.#link.dead) return;
    this.#reason = reason;
    if (this.#near) {
      // This isolate is going away: close its own ends so the far side sees them closed,
      // and say so, so that the far side ends its side of the link (and forgets the names).
      for (const [sab, beyond] of this.#link.pipes) {
        closeSide(sab, beyond === "connector" ? "acceptor" : "connector");
      }
      this.#link.send({ t: "end" });
    }
    this.#link.kill();
  }

  /**
   * Ends the link: channels crossing it close on both sides; names announced over it are
   * no longer reachable. Idempotent.
   */
  close(): void {
    this.#endWith({ reason: "closed" });
  }

  /** Same as {@linkcode IsolateLink.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Links a Worker to this isolate. Call it right after `new Worker(...)` and before adding
 * your own `message` listeners: the one message of the link setup is consumed here. The
 * Worker's module calls {@linkcode linkParent}.
 *
 * `worker.terminate()` and an uncaught error in the Worker end the link: every channel to
 * the Worker closes with a status and its unsent messages are handed back. An uncaught error
 * is taken as the Worker's end (its `error` event is cancelled so that it does not end this
 * isolate too, and the Worker is terminated); it is in {@linkcode IsolateLink.ended}.
 *
 * @param worker A module Worker whose module calls {@linkcode linkParent}.
 * @returns The link.
 * @throws {TypeError} If the Worker is already linked.
 *
 * @example Connecting to an engine in a Worker
 * ```ts ignore
 * import { connect, isolateListening, linkWorker } from "@tofu/tofu";
 *
 * const worker = new Worker(new URL("./rip_worker.ts", import.meta.url), { type: "module" });
 * using _link = linkWorker(worker);
 * await isolateListening("rip");
 * await using ch = await connect("isolate|rip");
 * using reply = await ch.request("page 1");
 * ```
 */
export function linkWorker(worker: Worker): IsolateLink {
  if (linked.has(worker)) throw new TypeError("Cannot link worker: it is already linked");
  const { port1, port2 } = new MessageChannel();
  const link = makeLink(port1, false);
  linked.add(worker);
  let answered = false;
  const onMessage = (e: MessageEvent) => {
    if ((e.data as Record<string, unknown> | null)?.[REQUEST] !== true) return;
    e.stopImmediatePropagation();
    // The Worker asks again until it has the port (see linkParent): the first request is
    // answered, the ones still on their way are not the application's either.
    if (answered) return;
    answered = true;
    worker.postMessage({ [PORT]: port2 }, [port2]);
  };
  worker.addEventListener("message", onMessage);
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    endLink(link, { reason: "error", error: e.error ?? e.message });
    terminate();
  };
  worker.addEventListener("error", onError);
  const terminate = worker.terminate.bind(worker);
  worker.terminate = () => {
    endLink(link, { reason: "terminated" });
    terminate();
  };
  link.ended.then(() => {
    worker.removeEventListener("message", onMessage);
    worker.removeEventListener("error", onError);
  });
  return link;
}

const linked = new WeakSet<Worker>();
let parentLink: Promise<IsolateLink> | null = null;

/**
 * Links this Worker to its parent (the isolate that called {@linkcode linkWorker} on it).
 * Call it once at the top of the Worker's module; later calls return the same link.
 * `self.close()` and `Deno.exit()` in this Worker end the link first, so channels to it close
 * on the other side.
 *
 * @returns The link, once the parent answered.
 * @throws {TypeError} If called outside a Worker.
 *
 * @example The Worker side
 * ```ts ignore
 * import { linkParent, serve } from "@tofu/tofu";
 *
 * await linkParent();
 * await serve("isolate|rip", (req) => rasterize(req.body.bytes()));
 * ```
 */
export function linkParent(): Promise<IsolateLink> {
  const scope = globalThis as unknown as {
    postMessage?: (m: unknown) => void;
    close?: () => void;
    addEventListener: typeof globalThis.addEventListener;
    removeEventListener: typeof globalThis.removeEventListener;
  };
  if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "function") {
    return Promise.reject(new TypeError("Cannot link to the parent: not running in a Worker"));
  }
  parentLink ??= new Promise((resolve) => {
    // A request the parent was not listening for yet (linkWorker() called after an await
    // following new Worker()) is lost: ask again, every 50 ms, then every second, until the
    // port comes. Before, linkParent() never resolved and nothing said so.
    let asked = 0;
    let again: ReturnType<typeof setTimeout> | undefined;
    const ask = () => {
      scope.postMessage!({ [REQUEST]: true });
      again = setTimeout(ask, ++asked < 40 ? 50 : 1000);
      Deno.unrefTimer(again);
    };
    const onMessage = (e: Event) => {
      const data = (e as MessageEvent).data as Record<string, unknown> | null;
      const port = data?.[PORT];
      if (!(port instanceof MessagePort)) return;
      e.stopImmediatePropagation();
      clearTimeout(again);
      scope.removeEventListener("message", onMessage);
      const link = makeLink(port, true);
      // Both end this Worker without a word to its parent: end the link first, so that the
      // channels to this Worker close on the other side.
      const close = scope.close!.bind(globalThis);
      scope.close = () => {
        endLink(link, { reason: "closed" });
        close();
      };
      const exit = Deno.exit;
      Deno.exit = (code?: number): never => {
        endLink(link, { reason: "closed" });
        return exit(code);
      };
      resolve(link);
    };
    scope.addEventListener("message", onMessage);
    ask();
  });
  return parentLink;
}

/**
 * Resolves once an engine listens on `isolate|name` in this isolate or in a linked one.
 * A connect to a name nobody has announced fails at once (like a TCP connect to a closed
 * port), and the announcement travels on the link, not on the Worker's own message channel:
 * wait here before connecting to a name a Worker is about to listen on.
 *
 * @param name The isolate channel name.
 * @param options `signal` cancels the wait (it rejects with `signal.reason`).
 * @returns Resolves when the name is reachable.
 *
 * @example Waiting for a Worker's listener
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Engine, IsolateServerAddress, isolateListening } from "@tofu/tofu";
 *
 * await using engine = new Engine();
 * const g = engine.create();
 * g.post(new IsolateServerAddress("doc-example").format(engine.get("always")));
 * await isolateListening("doc-example", { signal: AbortSignal.timeout(5000) });
 * using welcome = await g.waitReceive(5000);
 * assertEquals(welcome?.headers.get("~listen_on"), "isolate|doc-example");
 * ```
 */
export function isolateListening(
  name: string,
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  if (isKnown(name)) return Promise.resolve();
  return whenKnown(name, options.signal);
}
