// Timeouts of I/O channels: handshake, frame completion, idle and write stall.
//
// One coarse sweep serves every channel of an engine: each channel keeps a few
// timestamps in a Watch (set by cheap hooks on reads, writes and decoded frames, never a
// timer per message), and one interval, running only while some channel is watched,
// compares them with the limits. A limit fires between its value and its value plus one
// tick (a quarter of the smallest limit, between 25 ms and 1 s). The interval is unref'd:
// it never keeps the process alive by itself, and it stops when the last channel closes.
//
// Writes read no clock: a write only counts itself (a round trip makes one write per side,
// and performance.now() costs 130-160 ns here). The sweep stamps a write the first time it
// finds it in flight, which is at or after the write began, so a stall is never timed
// longer than it is; and at most one sweep period after it began, so with the write-stall
// limit on, the sweep runs every half tick and a stall still fires by its value plus one
// tick (found within a half tick, fired within another).

/** Limits in milliseconds; 0 turns one off. */
export interface Timeouts {
  /** From accept (or from post, on the client) to the first complete frame from the peer. */
  handshake: number;
  /** From the first byte of a frame to its last. */
  frame: number;
  /** Without a byte read or written. */
  idle: number;
  /** A write that the socket takes no byte of. */
  writeStall: number;
}

export type Expiry = "handshake" | "frame" | "idle" | "writeStall";

/** A watched channel: closes itself when told that a limit passed. */
export interface Expirable {
  expire(what: Expiry, limitMs: number): void;
}

const TICK_MIN_MS = 25;
const TICK_MAX_MS = 1000;

/** A millisecond clock (performance.now() by default; tests step their own). */
export type Clock = () => number;

const performanceClock: Clock = () => performance.now();

/** Per-channel timestamps (performance.now() milliseconds; 0 while not running). */
export class Watch {
  readonly owner: Expirable;
  handshakeSince: number;
  frameSince = 0;
  /** Writes started (the sweep tells one write from the next by it). */
  writes = 0;
  /** A write is in flight (started, no byte taken yet). */
  writing = false;
  /** The write the sweep last found in flight (its number in `writes`), and when. */
  stallWrite = -1;
  stallSince = 0;
  activeAt: number;
  // Only the idle limit reads activeAt: without it, reads and writes skip a clock read
  // each (performance.now() costs ~90 ns here, several per round trip).
  readonly #idle: boolean;
  readonly #now: Clock;

  constructor(owner: Expirable, now: Clock, idle: boolean) {
    this.owner = owner;
    this.#now = now;
    this.handshakeSince = now();
    this.activeAt = this.handshakeSince;
    this.#idle = idle;
  }

  /** A complete frame is buffered: the handshake is done and no frame is pending. */
  frameDone(): void {
    this.frameSince = 0;
    this.handshakeSince = 0;
  }

  /** A read starts; `partial` says bytes of an unfinished frame are buffered. */
  beforeRead(partial: boolean): void {
    if (!partial) this.frameSince = 0;
    else if (this.frameSince === 0) this.frameSince = this.#now();
  }

  /** A read returned bytes. */
  afterRead(): void {
    if (this.#idle) this.activeAt = this.#now();
  }

  /** A write starts (no clock read: the sweep stamps a write it finds in flight). */
  beforeWrite(): void {
    this.writes++;
    this.writing = true;
  }

  /** A write took bytes. */
  afterWrite(): void {
    this.writing = false;
    if (this.#idle) this.activeAt = this.#now();
  }
}

export class Deadlines {
  readonly limits: Readonly<Timeouts>;
  readonly #watches = new Set<Watch>();
  /** The tick in milliseconds: how late past its value a limit may fire. */
  readonly tickMs: number;
  /** The sweep's period: the tick, or half of it when the write-stall limit is on. */
  readonly periodMs: number;
  readonly #enabled: boolean;
  readonly #now: Clock;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(limits: Timeouts, now: Clock = performanceClock) {
    this.#now = now;
    for (const [name, ms] of Object.entries(limits)) {
      if (!Number.isInteger(ms) || ms < 0) {
        throw new RangeError(
          `Cannot create engine: ${name}TimeoutMs ${ms} is not a non-negative integer (0 turns it off)`,
        );
      }
    }
    this.limits = { ...limits };
    const on = Object.values(limits).filter((ms) => ms > 0);
    this.#enabled = on.length > 0;
    this.tickMs = Math.min(TICK_MAX_MS, Math.max(TICK_MIN_MS, Math.floor(Math.min(...on) / 4)));
    this.periodMs = limits.writeStall > 0 ? Math.floor(this.tickMs / 2) : this.tickMs;
  }

  /** Starts watching a channel; null when every limit is off. */
  watch(owner: Expirable): Watch | null {
    if (!this.#enabled) return null;
    const w = new Watch(owner, this.#now, this.limits.idle > 0);
    this.#watches.add(w);
    if (this.#timer === undefined) {
      const timer = setInterval(() => this.sweep(), this.periodMs);
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
    return w;
  }

  /** Stops watching (the channel closed). */
  unwatch(w: Watch | null): void {
    if (w === null || !this.#watches.delete(w) || this.#watches.size > 0) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Compares every watched channel with the limits (run by the interval). */
  sweep(): void {
    const now = this.#now();
    const { handshake, frame, idle, writeStall } = this.limits;
    for (const w of this.#watches) {
      let what: Expiry | null = null;
      let limit = 0;
      if (writeStall > 0 && w.writing && stalled(w, now) >= writeStall) {
        [what, limit] = ["writeStall", writeStall];
      } else if (handshake > 0 && w.handshakeSince > 0 && now - w.handshakeSince >= handshake) {
        [what, limit] = ["handshake", handshake];
      } else if (frame > 0 && w.frameSince > 0 && now - w.frameSince >= frame) {
        [what, limit] = ["frame", frame];
      } else if (idle > 0 && !w.writing && now - w.activeAt >= idle) {
        [what, limit] = ["idle", idle];
      }
      if (what === null) continue;
      this.unwatch(w);
      w.owner.expire(what, limit);
    }
  }
}

// How long the write in flight has been known to stall: since the first sweep that found
// it (0 at that sweep). It began at or before then, so this never exceeds the real stall.
function stalled(w: Watch, now: number): number {
  if (w.stallWrite !== w.writes) {
    w.stallWrite = w.writes;
    w.stallSince = now;
  }
  return now - w.stallSince;
}
