// The Peers layer's router: one ChannelGroup, one pump that reads it, and a table from
// channel number to whoever handles that channel (a Channel, a listening socket).
// Built only on the public Engine/ChannelGroup API.

import type { ChannelGroup } from "./channel_group.ts";
import type { Engine } from "./engine.ts";
import type { Message } from "./message.ts";

/** Whoever handles the messages of one channel number. */
export interface Route {
  /** A message of this channel; the route owns it. */
  deliver(m: Message): void;
  /** The group is gone (destroyed, or its engine closed) without a final report. */
  gone(): void;
}

export class Hub {
  readonly engine: Engine;
  readonly group: ChannelGroup;
  readonly #routes = new Map<number, Route>();
  readonly #fallback: (m: Message) => void;
  readonly pumped: Promise<void>;
  #destroyed = false;
  #ended = false;
  // Called once when the pump ends (see onEnd).
  readonly #onEnd = new Set<() => void>();

  /** `fallback` gets messages of channels nobody routes (on a server: new peers). */
  constructor(engine: Engine, fallback?: (m: Message) => void) {
    this.engine = engine;
    this.group = engine.create();
    this.#fallback = fallback ?? ((m) => engine.put(m));
    this.pumped = this.#pump();
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /**
   * Calls `fn` when the pump ends (at once if it has), and returns what takes it off
   * again. Unlike a reaction on `pumped`, nothing of a removed `fn` stays behind: a
   * channel that pauses between re-dials for as long as its group lives adds one per pause.
   */
  onEnd(fn: () => void): () => void {
    if (this.#ended) {
      fn();
      return () => {};
    }
    this.#onEnd.add(fn);
    return () => this.#onEnd.delete(fn);
  }

  route(channel: number, r: Route): void {
    this.#routes.set(channel, r);
  }

  unroute(channel: number, r: Route): void {
    if (this.#routes.get(channel) === r) this.#routes.delete(channel);
  }

  /** Destroys the group: its sockets close, routes hear `gone()`. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    try {
      await this.engine.destroy(this.group);
    } catch {
      // The engine was closed already: the group is gone either way.
    }
    await this.pumped;
  }

  async #pump(): Promise<void> {
    try {
      for await (const m of this.group) {
        const r = this.#routes.get(m.bhdr.channelNumber);
        try {
          if (r) r.deliver(m);
          else this.#fallback(m);
        } catch {
          // A route's failure must not stop the other channels of the group.
          this.engine.put(m);
        }
      }
    } catch {
      // Only a destroyed group or closed engine ends the loop.
    }
    this.#destroyed = true;
    const routes = [...this.#routes.values()];
    this.#routes.clear();
    for (const r of routes) r.gone();
    this.#ended = true;
    const waiting = [...this.#onEnd];
    this.#onEnd.clear();
    for (const fn of waiting) fn();
  }
}
