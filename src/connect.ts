/**
 * `connect`: dial a peer and get a {@linkcode Channel} once the Hello handshake is done.
 *
 * @module
 */

import {
  type Channel,
  channelControl,
  checkUnsentHandler,
  type ReconnectOptions,
  type UnsentHandler,
} from "./channel.ts";
import { checkTimeout } from "./_deadline.ts";
import { defaultEngine } from "./_default_engine.ts";
import type { Engine } from "./engine.ts";
import { Hub } from "./_peer_hub.ts";

/** Options of {@linkcode connect}. */
export interface ConnectOptions {
  /** The engine to use; default: a shared engine made on first use. */
  engine?: Engine;
  /** How long the handshake may take, re-dials included (default 10000 ms). */
  timeoutMs?: number;
  /**
   * Re-dial after a failure, with exponential backoff and jitter: `true` for the
   * defaults, or the delays and attempt limit. With it, `connect` keeps trying until
   * `timeoutMs`, and a connection that drops later is dialled again; requests in flight
   * then reject (nothing is sent twice), and new requests wait for the new connection.
   * While it re-dials, the channel keeps the process alive; `close()` stops it.
   */
  reconnect?: boolean | ReconnectOptions;
  /** Gives up connecting; the promise rejects with a {@linkcode TofuError}. */
  signal?: AbortSignal;
  /**
   * Receives each message this channel posted that a connection ended before writing
   * (a dropped connection, a peer that stopped reading); see {@linkcode UnsentHandler}.
   * Without it, such messages go back to the pool.
   */
  onUnsent?: UnsentHandler;
}

/**
 * Connects to a peer: sends a HelloRequest and resolves once the HelloResponse arrives.
 *
 * @param address `tcp|HOST|PORT` or `uds|PATH`.
 * @param options The engine, handshake timeout, reconnect policy, abort signal and a
 * callback for messages a connection left unwritten.
 * @returns The connected channel; close it with `await using` or `close()`.
 * @throws {TofuError} With status `connect_failed` (nothing answers, timeout, abort),
 * `uds_path_not_found`, `invalid_address` or `not_allowed` (missing `--allow-net` or
 * `--allow-read`/`--allow-write` for a Unix socket).
 * @throws {TypeError} If `address` is not a string.
 * @throws {RangeError} If `timeoutMs` or a reconnect option is out of range.
 *
 * @example Connecting with a deadline
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { connect, serve } from "@tofu/tofu";
 *
 * await using server = await serve("tcp|127.0.0.1|0", () => "pong");
 * await using ch = await connect(server.address, { timeoutMs: 5000 });
 * using reply = await ch.request("ping");
 * assertEquals(reply.body.text(), "pong");
 * ```
 */
export async function connect(address: string, options: ConnectOptions = {}): Promise<Channel> {
  if (typeof address !== "string") {
    throw new TypeError(`Cannot connect: the address must be a string, got ${typeof address}`);
  }
  const timeoutMs = options.timeoutMs ?? 10_000;
  checkTimeout("connect", timeoutMs);
  const reconnect = resolveReconnect(options.reconnect);
  checkUnsentHandler("connect", options.onUnsent);
  const hub = new Hub(options.engine ?? defaultEngine());
  const control = channelControl();
  const ch = control.client(hub, address, reconnect, options.onUnsent);
  try {
    await control.open(ch, timeoutMs, options.signal);
  } catch (err) {
    await hub.destroy();
    throw err;
  }
  return ch;
}

function resolveReconnect(
  r: boolean | ReconnectOptions | undefined,
): { initialDelayMs: number; maxDelayMs: number; maxAttempts: number } | null {
  if (!r) return null;
  const o = r === true ? {} : r;
  const out = {
    initialDelayMs: o.initialDelayMs ?? 50,
    maxDelayMs: o.maxDelayMs ?? 2000,
    maxAttempts: o.maxAttempts ?? Infinity,
  };
  for (const [name, v] of Object.entries(out)) {
    if (typeof v !== "number" || Number.isNaN(v) || v < 0) {
      throw new RangeError(`Cannot connect: reconnect.${name} ${v} is not a number >= 0`);
    }
  }
  out.initialDelayMs = Math.max(out.initialDelayMs, 1);
  out.maxDelayMs = Math.max(out.maxDelayMs, out.initialDelayMs);
  return out;
}
