// One deadline for a Peers-layer wait: a timeout and an abort signal folded into one
// promise that rejects with a TofuError. Its timer is unref'd (it never keeps a
// process alive) and both the timer and the abort listener go away on dispose().

import { Status, TofuError } from "./status.ts";

function noop(): void {}

/**
 * The longest delay setTimeout keeps (about 24.8 days): a longer one overflows, and the
 * timer fires after 1 ms.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `cb` after `ms` milliseconds, any number of them: past {@linkcode MAX_TIMER_MS} the
 * timer is re-armed until the time has come. A timer that is not `ref` does not keep the
 * process alive. Returns the canceller.
 */
export function longTimeout(cb: () => void, ms: number, ref: boolean): () => void {
  const at = performance.now() + ms;
  let id: ReturnType<typeof setTimeout>;
  const arm = (left: number) => {
    id = left > MAX_TIMER_MS
      ? setTimeout(() => arm(at - performance.now()), MAX_TIMER_MS)
      : setTimeout(cb, left);
    if (!ref) Deno.unrefTimer(id);
  };
  arm(ms);
  return () => clearTimeout(id);
}

export class Deadline implements Disposable {
  readonly promise: Promise<never>;
  #cancelTimer: (() => void) | undefined;
  #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;
  #expired = false;
  // The races under way: each is rejected when the deadline passes. A race leaves the set
  // when its promise settles, so a deadline raced many times (a dial re-tried under one
  // handshake deadline) holds only the races still open.
  readonly #racers = new Set<(e: unknown) => void>();
  // Made on first use of `signal`, aborted when the deadline passes.
  #controller: AbortController | undefined;
  #reason: unknown;
  // Neither a finite timeout nor a signal: it never passes (a call without options, the
  // common case). Its races need no entry in #racers and its waits no signal: a promise,
  // a set entry and an AbortController per call cost a send() a third of its time.
  readonly #never: boolean;

  /**
   * @param action What is being waited for, for the message (`Cannot <action>: ...`).
   * @param timeoutMs How long; `Infinity` or `undefined` waits forever.
   * @param signal Aborts the wait.
   * @param status The status of the timeout and abort errors.
   */
  constructor(
    action: string,
    timeoutMs: number | undefined,
    signal: AbortSignal | undefined,
    status: number = Status.communicationFailed,
  ) {
    checkTimeout(action, timeoutMs);
    this.#never = signal === undefined &&
      (timeoutMs === undefined || !Number.isFinite(timeoutMs));
    if (this.#never) {
      this.promise = NEVER;
      return;
    }
    let rejectRaw!: (e: unknown) => void;
    this.promise = new Promise<never>((_, r) => rejectRaw = r);
    const reject = (e: unknown) => {
      this.#expired = true;
      this.#reason = e;
      rejectRaw(e);
      for (const r of this.#racers) r(e);
      this.#racers.clear();
      this.#controller?.abort(e);
    };
    this.promise.catch(noop); // a deadline nobody raced is not an unhandled rejection
    if (signal?.aborted) {
      reject(aborted(action, status, signal));
      return;
    }
    if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
      this.#cancelTimer = longTimeout(
        () => {
          this.#cancelTimer = undefined;
          reject(new TofuError(status, `Cannot ${action}: no answer within ${timeoutMs} ms`));
        },
        timeoutMs,
        false,
      );
    }
    if (signal) {
      this.#signal = signal;
      this.#onAbort = () => reject(aborted(action, status, signal));
      signal.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  /**
   * An AbortSignal that aborts (with the deadline's error) when the deadline passes, for
   * waits that take a signal and must stop waiting then, not just lose the race.
   */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#expired) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /** {@linkcode Deadline.signal}, or undefined for a deadline that never passes. */
  get waitSignal(): AbortSignal | undefined {
    return this.#never ? undefined : this.signal;
  }

  /** Whether the time ran out or the signal aborted. */
  get expired(): boolean {
    return this.#expired;
  }

  /**
   * Settles like `p`, unless the deadline passes or the signal aborts first. Once
   * expired it rejects even if `p` has settled too (an aborted signal wins every race).
   * `onLost` runs if the deadline wins, so the caller can drop what `p` waits on.
   */
  race<T>(p: Promise<T>, onLost?: () => void): Promise<T> {
    // As many turns as a race below takes, so that calls with and without a deadline keep
    // their order (a send() without options overtook a request() made before it).
    if (this.#never) return p.then(same);
    if (this.#expired) {
      p.catch(noop); // lost unseen: its rejection, if it comes, is nobody's
      onLost?.();
      return this.promise;
    }
    // Not Promise.race with this.promise: that would leave a reaction on it per race,
    // kept until the deadline itself is gone.
    return new Promise<T>((resolve, reject) => {
      const lose = onLost
        ? (e: unknown) => {
          onLost();
          reject(e);
        }
        : reject;
      this.#racers.add(lose);
      p.then((v) => {
        this.#racers.delete(lose);
        resolve(v);
      }, (e) => {
        this.#racers.delete(lose);
        reject(e);
      });
    });
  }

  [Symbol.dispose](): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    if (this.#onAbort) this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#onAbort = undefined;
  }
}

function same<T>(v: T): T {
  return v;
}

// The promise of a deadline that never passes.
const NEVER: Promise<never> = new Promise<never>(noop);

function aborted(action: string, status: number, signal: AbortSignal): TofuError {
  return new TofuError(status, `Cannot ${action}: aborted`, { cause: signal.reason });
}

/** Throws a RangeError unless `ms` is undefined, a number >= 0 or Infinity. */
export function checkTimeout(action: string, ms: number | undefined): void {
  if (ms === undefined) return;
  if (typeof ms !== "number" || Number.isNaN(ms) || ms < 0) {
    throw new RangeError(`Cannot ${action}: timeoutMs ${ms} is not a number >= 0`);
  }
}

/**
 * Resolves after `ms` or as soon as `wake()` is called. An unref'd timer (`ref` false)
 * does not keep the process alive; a reconnect pause must (someone waits for it).
 */
export function sleep(ms: number, ref = false): { done: Promise<void>; wake(): void } {
  let wake!: () => void;
  const done = new Promise<void>((r) => wake = r);
  const cancel = longTimeout(wake, ms, ref);
  return {
    done,
    wake: () => {
      cancel();
      wake();
    },
  };
}
