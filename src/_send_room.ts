// Senders waiting for room on one channel (ChannelGroup.ready): each waits until the
// channel's charged queued bytes are at or below its low-water mark, and its frame bytes
// (the same frames without the per-frame overhead) at or below its frame mark. The channel
// reports every release of queued bytes (a write settled) and its close; nothing here runs
// a timer.

import type { TofuError } from "./status.ts";

interface RoomWaiter {
  mark: number;
  frameMark: number;
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

// One settled promise serves every wait that has room at once (the common case).
const ROOM: Promise<void> = Promise.resolve();

export class SendRoom {
  #waiters: RoomWaiter[] = [];
  #closed: TofuError | null = null;

  /** Whether a sender waits (the channel then reports its queued bytes). */
  get waiting(): boolean {
    return this.#waiters.length > 0;
  }

  /**
   * Resolves once the charged `queued` bytes are at or below `mark` and the `frames` bytes
   * at or below `frameMark` (at once if they are), rejects with the channel's close error or
   * `signal.reason`.
   */
  wait(
    queued: number,
    frames: number,
    mark: number,
    frameMark: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closed);
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (queued <= mark && frames <= frameMark) return ROOM;
    return new Promise<void>((resolve, reject) => {
      const w: RoomWaiter = { mark, frameMark, resolve, reject, signal, onAbort: undefined };
      if (signal) {
        w.onAbort = () => {
          const i = this.#waiters.indexOf(w);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(signal.reason);
        };
        signal.addEventListener("abort", w.onAbort, { once: true });
      }
      this.#waiters.push(w);
    });
  }

  /**
   * The channel's queued bytes fell to `queued` charged, `frames` of frames: wakes every
   * sender whose marks they reached.
   */
  update(queued: number, frames: number): void {
    const ws = this.#waiters;
    let kept = 0;
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i]!;
      if (queued <= w.mark && frames <= w.frameMark) {
        settle(w);
        w.resolve();
      } else ws[kept++] = w;
    }
    ws.length = kept;
  }

  /** The channel closed: every sender (now and later) gets `err`. */
  close(err: TofuError): void {
    if (this.#closed) return;
    this.#closed = err;
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) {
      settle(w);
      w.reject(err);
    }
  }
}

function settle(w: RoomWaiter): void {
  if (w.signal && w.onAbort) w.signal.removeEventListener("abort", w.onAbort);
  w.onAbort = undefined;
}
