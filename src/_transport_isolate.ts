// The isolate transport: tofu channels between isolates (the main one and Workers) without a
// socket. One connection is a SharedArrayBuffer holding a control block and two byte rings
// (one per direction); both sides wait with Atomics.waitAsync and never block their event
// loop. A pipe has the shape of a Deno.Conn (read, write, close) and a listener that of a
// Deno.Listener (accept, close), so the engine's channel code runs over it unchanged.
// Rendezvous between isolates goes over links: one MessagePort pair per Worker, carrying
// "names listened on" announcements and connect requests (with the pipe's buffer).
// docs/workers.md has the design and the measurements behind it.

import { AsyncQueue, done } from "./_async_queue.ts";
import { Status } from "./status.ts";
import type { Conn, Listener, Transport } from "./_transport.ts";

// Control block (Int32 slots). Per direction d (0: connector to acceptor, 1: the reverse)
// six slots from DIR + 6 * d: head, tail, reader signal, writer signal, reader waiting,
// writer waiting. A side that sleeps waits on its signal slot; anything that should wake it
// (data, room, a close) bumps the slot first, so no wake-up is lost between check and wait.
const STATE = 0; // 0 pending, 1 accepted, 2 refused
const CLOSED_CONNECTOR = 1;
const CLOSED_ACCEPTOR = 2;
const DIR = 4;
const HEAD = 0;
const TAIL = 1;
const RSIG = 2;
const WSIG = 3;
const RWAIT = 4;
const WWAIT = 5;
const CONTROL_BYTES = 64;

const PENDING = 0;
const ACCEPTED = 1;
const REFUSED = 2;

const registry = {
  local: new Map<string, IsolateListener>(),
  routes: new Map<string, Link>(),
  links: new Set<Link>(),
};

/** Default ring size per direction in bytes (a power of two). */
export const RING_BYTES = 64 * 1024;

export type Side = "connector" | "acceptor";

/** One end of a connection between isolates; a Deno.Conn for the engine's purposes. */
export class IsolatePipe implements Conn {
  readonly sab: SharedArrayBuffer;
  readonly side: Side;
  readonly #ctl: Int32Array;
  readonly #in: Uint8Array;
  readonly #out: Uint8Array;
  readonly #inBase: number;
  readonly #outBase: number;
  readonly #mask: number;
  readonly #peerClosed: number;
  #closed = false;

  constructor(sab: SharedArrayBuffer, side: Side) {
    this.sab = sab;
    this.side = side;
    const cap = (sab.byteLength - CONTROL_BYTES) / 2;
    this.#mask = cap - 1;
    this.#ctl = new Int32Array(sab, 0, CONTROL_BYTES / 4);
    const ring0 = new Uint8Array(sab, CONTROL_BYTES, cap);
    const ring1 = new Uint8Array(sab, CONTROL_BYTES + cap, cap);
    const outDir = side === "connector" ? 0 : 1;
    this.#out = outDir === 0 ? ring0 : ring1;
    this.#in = outDir === 0 ? ring1 : ring0;
    this.#outBase = DIR + 6 * outDir;
    this.#inBase = DIR + 6 * (1 - outDir);
    this.#peerClosed = side === "connector" ? CLOSED_ACCEPTOR : CLOSED_CONNECTOR;
    opened();
  }

  static create(ringBytes = RING_BYTES): IsolatePipe {
    return new IsolatePipe(new SharedArrayBuffer(CONTROL_BYTES + 2 * ringBytes), "connector");
  }

  /** Whether the peer (or whoever watches it) closed its end. */
  get peerClosed(): boolean {
    return Atomics.load(this.#ctl, this.#peerClosed) === 1;
  }

  /** Reads up to `p.length` bytes; null at the end of the stream (peer closed, all read). */
  async read(p: Uint8Array): Promise<number | null> {
    const c = this.#ctl;
    const b = this.#inBase;
    // Before sleeping, the reader raises its flag and then looks again: a writer that
    // missed the flag wrote before that second look, so no wake-up is lost.
    let armed = false;
    let sig = 0;
    for (;;) {
      if (this.#closed) return null;
      let n = this.#take(p);
      // The peer writes its last bytes before it marks its end closed: look once more.
      if (n === 0 && this.peerClosed) n = this.#take(p) || -1;
      if (n !== 0) {
        if (armed) Atomics.store(c, b + RWAIT, 0);
        return n > 0 ? n : null;
      }
      if (!armed) {
        armed = true;
        Atomics.store(c, b + RWAIT, 1);
        sig = Atomics.load(c, b + RSIG);
        continue;
      }
      await sleep(c, b + RSIG, sig);
      // The flag stays up (cleared on success): look again with the signal as it is now.
      sig = Atomics.load(c, b + RSIG);
    }
  }

  #take(p: Uint8Array): number {
    const c = this.#ctl;
    const b = this.#inBase;
    const head = Atomics.load(c, b + HEAD);
    const used = (Atomics.load(c, b + TAIL) - head) | 0;
    if (used === 0) return 0;
    const n = Math.min(used, p.length);
    const pos = head & this.#mask;
    const first = Math.min(n, this.#in.length - pos);
    p.set(this.#in.subarray(pos, pos + first));
    if (first < n) p.set(this.#in.subarray(0, n - first), first);
    Atomics.store(c, b + HEAD, (head + n) | 0);
    if (Atomics.load(c, b + WWAIT) === 1) wake(c, b + WSIG);
    return n;
  }

  /** Writes some of `p` (at least one byte) once the ring has room. */
  async write(p: Uint8Array): Promise<number> {
    const c = this.#ctl;
    const b = this.#outBase;
    let armed = false;
    let sig = 0;
    for (;;) {
      if (this.#closed) throw new Deno.errors.BadResource("the isolate pipe is closed");
      if (this.peerClosed) {
        throw new Deno.errors.BrokenPipe("the peer isolate closed the connection");
      }
      const n = this.#put(p);
      if (n > 0) {
        if (armed) Atomics.store(c, b + WWAIT, 0);
        return n;
      }
      if (!armed) {
        armed = true;
        Atomics.store(c, b + WWAIT, 1);
        sig = Atomics.load(c, b + WSIG);
        continue;
      }
      await sleep(c, b + WSIG, sig);
      sig = Atomics.load(c, b + WSIG);
    }
  }

  #put(p: Uint8Array): number {
    const c = this.#ctl;
    const b = this.#outBase;
    const tail = Atomics.load(c, b + TAIL);
    const room = this.#out.length - ((tail - Atomics.load(c, b + HEAD)) | 0);
    if (room === 0 || p.length === 0) return 0;
    const n = Math.min(room, p.length);
    const pos = tail & this.#mask;
    const first = Math.min(n, this.#out.length - pos);
    this.#out.set(p.subarray(0, first), pos);
    if (first < n) this.#out.set(p.subarray(first, n), 0);
    Atomics.store(c, b + TAIL, (tail + n) | 0);
    if (Atomics.load(c, b + RWAIT) === 1) wake(c, b + RSIG);
    return n;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closed();
    closeSide(this.sab, this.side);
  }

  /** Connector: resolves once accepted; rejects when refused. */
  async accepted(): Promise<void> {
    const c = this.#ctl;
    for (;;) {
      const s = Atomics.load(c, STATE);
      if (s === ACCEPTED) return;
      if (s === REFUSED) throw new Deno.errors.ConnectionRefused("no isolate accepted");
      await sleep(c, STATE, PENDING);
    }
  }
}

function wake(c: Int32Array, slot: number): void {
  Atomics.add(c, slot, 1);
  Atomics.notify(c, slot);
}

// A pending Atomics.waitAsync does not keep Deno's event loop alive, but an open channel
// must, as an open socket does, and so must a wait whose wake-up is on its way (a pipe can
// close while its writer sleeps). One ref'd timer runs while any pipe or listener is open
// or any side sleeps: counted, since a timer per wait would cost more than the wait.
let holds = 0;
let keepAlive: ReturnType<typeof setInterval> | undefined;

function opened(): void {
  if (holds++ === 0) keepAlive = setInterval(() => {}, 1e9);
}

function closed(): void {
  if (--holds === 0) clearInterval(keepAlive);
}

async function sleep(c: Int32Array, slot: number, seen: number): Promise<void> {
  const r = Atomics.waitAsync(c, slot, seen);
  if (!r.async) return;
  opened();
  try {
    await r.value;
  } finally {
    closed();
  }
}

function setState(sab: SharedArrayBuffer, state: number): void {
  const c = new Int32Array(sab, 0, CONTROL_BYTES / 4);
  if (Atomics.compareExchange(c, STATE, PENDING, state) === PENDING) Atomics.notify(c, STATE);
}

/**
 * Marks one side of a pipe closed and wakes everything that sleeps on it. Used by the side
 * itself, and by the isolate that watches a Worker when that Worker dies.
 */
export function closeSide(sab: SharedArrayBuffer, side: Side): void {
  const c = new Int32Array(sab, 0, CONTROL_BYTES / 4);
  Atomics.store(c, side === "connector" ? CLOSED_CONNECTOR : CLOSED_ACCEPTOR, 1);
  setState(sab, REFUSED); // a connect still pending is refused
  for (const d of [0, 1]) {
    wake(c, DIR + 6 * d + RSIG);
    wake(c, DIR + 6 * d + WSIG);
  }
}

/** A name listened on in this isolate: connects to it arrive here. */
export class IsolateListener implements Listener {
  readonly name: string;
  readonly address: string;
  readonly #queue = new AsyncQueue<SharedArrayBuffer>();
  #closed = false;

  constructor(name: string) {
    if (registry.local.has(name)) {
      throw new Deno.errors.AddrInUse(`an engine of this isolate listens on isolate|${name}`);
    }
    if (registry.routes.has(name)) {
      throw new Deno.errors.AddrInUse(`another isolate listens on isolate|${name}`);
    }
    this.name = name;
    this.address = `isolate|${name}`;
    registry.local.set(name, this);
    opened();
    announce({ t: "up", names: [name] }, null);
    wakeWaiters();
  }

  /** Hands an incoming connection to the accept loop (refused once closed). */
  offer(sab: SharedArrayBuffer): void {
    if (!this.#queue.push(sab)) setState(sab, REFUSED);
  }

  async accept(): Promise<IsolatePipe> {
    const sab = await this.#queue.take();
    if (sab === done) throw new Deno.errors.BadResource("the isolate listener is closed");
    setState(sab, ACCEPTED);
    return new IsolatePipe(sab, "acceptor");
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closed();
    if (registry.local.get(this.name) === this) {
      registry.local.delete(this.name);
      announce({ t: "down", names: [this.name] }, null);
    }
    this.#queue.close();
    // Connects that arrived but were never accepted are refused.
    for (const sab of this.#queue.drain()) setState(sab, REFUSED);
  }

  ended(): void {}
}

type LinkMessage =
  | { t: "up"; names: string[] }
  | { t: "down"; names: string[] }
  | { t: "connect"; name: string; sab: SharedArrayBuffer }
  // The isolate that sends it is going away (self.close(), Deno.exit()): a MessagePort
  // says nothing when its far end closes, so without it the names routed through this link
  // stayed reachable, and connects to them were lost.
  | { t: "end" };

/** One MessagePort to another isolate, and what crosses it. */
export class Link {
  readonly port: MessagePort;
  /** Pipes crossing this link, by the side that lives beyond it. */
  readonly pipes = new Map<SharedArrayBuffer, Side>();
  sweepAt = 64;
  #dead = false;
  readonly #onDead = new Set<() => void>();

  constructor(port: MessagePort) {
    this.port = port;
    registry.links.add(this);
    port.onmessage = (e: MessageEvent<LinkMessage>) => this.#receive(e.data);
    // Tell the other side every name reachable through this isolate.
    const names = [...registry.local.keys()];
    for (const [name, via] of registry.routes) if (via !== this) names.push(name);
    if (names.length > 0) this.send({ t: "up", names });
  }

  get dead(): boolean {
    return this.#dead;
  }

  send(m: LinkMessage): void {
    if (!this.#dead) this.port.postMessage(m);
  }

  onDead(f: () => void): void {
    this.#onDead.add(f);
  }

  #receive(m: LinkMessage): void {
    if (this.#dead) return;
    if (m.t === "up") {
      const fresh = m.names.filter((n) => !registry.local.has(n));
      for (const n of fresh) registry.routes.set(n, this);
      if (fresh.length > 0) {
        announce({ t: "up", names: fresh }, this);
        wakeWaiters();
      }
    } else if (m.t === "down") {
      const gone = m.names.filter((n) => registry.routes.get(n) === this);
      for (const n of gone) registry.routes.delete(n);
      if (gone.length > 0) announce({ t: "down", names: gone }, this);
    } else if (m.t === "connect") {
      remember(this, m.sab, "connector");
      route(m.name, m.sab, this);
    } else if (m.t === "end") {
      this.kill();
    }
  }

  /**
   * The isolate beyond this link is gone (or the link is closed): every pipe crossing it
   * is closed on that side, so the channels on this side end with a status.
   */
  kill(): void {
    if (this.#dead) return;
    this.#dead = true;
    registry.links.delete(this);
    for (const [sab, side] of this.pipes) closeSide(sab, side);
    this.pipes.clear();
    const gone: string[] = [];
    for (const [name, via] of registry.routes) {
      if (via === this) {
        registry.routes.delete(name);
        gone.push(name);
      }
    }
    if (gone.length > 0) announce({ t: "down", names: gone }, this);
    this.port.onmessage = null;
    this.port.close();
    for (const f of this.#onDead) f();
  }
}

// Pipes whose both sides closed are dropped from a link's table when it has doubled since
// the last sweep, so a long-lived link does not grow with every connection it carried.
function remember(link: Link, sab: SharedArrayBuffer, side: Side): void {
  link.pipes.set(sab, side);
  if (link.pipes.size < link.sweepAt) return;
  for (const s of link.pipes.keys()) {
    const c = new Int32Array(s, 0, CONTROL_BYTES / 4);
    if (Atomics.load(c, CLOSED_CONNECTOR) === 1 && Atomics.load(c, CLOSED_ACCEPTOR) === 1) {
      link.pipes.delete(s);
    }
  }
  link.sweepAt = Math.max(64, 2 * link.pipes.size);
}

function announce(m: LinkMessage, except: Link | null): void {
  for (const l of registry.links) if (l !== except) l.send(m);
}

/** Delivers a connect to a local listener, forwards it over a link, or refuses it. */
function route(name: string, sab: SharedArrayBuffer, from: Link | null): void {
  const l = registry.local.get(name);
  if (l !== undefined) {
    l.offer(sab);
    return;
  }
  const via = registry.routes.get(name);
  if (via !== undefined && via !== from && !via.dead) {
    remember(via, sab, "acceptor");
    via.send({ t: "connect", name, sab });
    return;
  }
  setState(sab, REFUSED);
}

/** Opens a connection to `isolate|name`; rejects when nobody listens on the name. */
export async function dialIsolate(name: string, ringBytes = RING_BYTES): Promise<IsolatePipe> {
  const pipe = IsolatePipe.create(ringBytes);
  route(name, pipe.sab, null);
  try {
    await pipe.accepted();
  } catch {
    pipe.close();
    throw new Deno.errors.ConnectionRefused(`no isolate listens on isolate|${name}`);
  }
  return pipe;
}

const waiters = new Set<() => void>();

function wakeWaiters(): void {
  for (const w of [...waiters]) w();
}

/** Whether a name is listened on here or announced by a linked isolate. */
export function isKnown(name: string): boolean {
  return registry.local.has(name) || registry.routes.has(name);
}

/** Resolves once `name` is listened on here or in a linked isolate. */
export function whenKnown(name: string, signal?: AbortSignal): Promise<void> {
  if (isKnown(name)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const check = () => {
      if (!isKnown(name)) return;
      cleanup();
      resolve();
    };
    const abort = () => {
      cleanup();
      reject(signal!.reason);
    };
    const cleanup = () => {
      waiters.delete(check);
      signal?.removeEventListener("abort", abort);
    };
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    waiters.add(check);
    signal?.addEventListener("abort", abort, { once: true });
  });
}

/** The isolate transport of the engine (src/_transport.ts). */
export const isolate: Transport<{ name: string }> = {
  dial: (addr) => dialIsolate(addr.name),
  // deno-lint-ignore require-await
  listen: async (addr) => new IsolateListener(addr.name),
  connectFailure: () => Status.connectFailed,
  listenFailure: () => Status.listenFailed,
  // The only accept error is "closed".
  isTemporaryAcceptError: () => false,
};
