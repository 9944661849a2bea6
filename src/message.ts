/**
 * The tofu message: binary header, text headers and body.
 *
 * @module
 */

import { BinaryHeader } from "./binary_header.ts";
import { Body } from "./body.ts";
import type { TofuError } from "./status.ts";
import { TextHeaders } from "./text_headers.ts";

/**
 * Who holds a message; only the library reads or changes it. Application: it may be
 * changed, posted or put. Pooled: it sits in a pool. Engine: it was posted and the
 * engine owns it until it is written or handed back.
 */
export const Owner = { Application: 0, Pooled: 1, Engine: 2 } as const;
/** One of the values of {@linkcode Owner}. */
export type Owner = typeof Owner[keyof typeof Owner];

/** Library-internal key of a message's owner field. */
export const kOwner: unique symbol = Symbol("tofu.owner");

/**
 * A tofu message. Get one from an engine's pool with `engine.get("always")`,
 * fill it, post it, and give received messages back with `engine.put(msg)`.
 *
 * @example Building a request
 * ```ts
 * import { Message, OpCode } from "@tofu/tofu";
 *
 * const msg = new Message();
 * msg.bhdr.opCode = OpCode.Request;
 * msg.headers.append("Job-ID", "7");
 * msg.body.set("print me");
 * console.log(msg.isFromApplication(), msg.hasMore()); // true false
 * ```
 */
export class Message {
  /** The binary header: channel, opcode, flags, status and message id. */
  readonly bhdr: BinaryHeader = new BinaryHeader();
  /** The text headers (`name:value` lines). */
  readonly headers: TextHeaders;
  /** The body. */
  readonly body: Body;
  /**
   * On a message the engine hands back with a non-zero status: the error that
   * explains the status in words (for example the missing permission). Never sent.
   */
  error: TofuError | undefined = undefined;

  /** @internal Library bookkeeping: who holds the message (the application, a pool, the engine). */
  [kOwner]: Owner = Owner.Application;

  /**
   * Creates a standalone message (not from a pool).
   *
   * @param headerStorage Initial storage for the header block (grows as needed).
   * @param bodyStorage Initial storage for the body (grows as needed).
   */
  constructor(headerStorage?: Uint8Array, bodyStorage?: Uint8Array) {
    this.headers = new TextHeaders(headerStorage);
    this.body = new Body(bodyStorage);
  }

  /** Whether the engine made this message (a report). */
  isFromEngine(): boolean {
    return this.bhdr.origin === 1;
  }

  /** Whether the application (local or remote) made this message. */
  isFromApplication(): boolean {
    return this.bhdr.origin === 0;
  }

  /** Whether more chunks of the same stream follow this one. */
  hasMore(): boolean {
    return this.bhdr.more === 1;
  }

  /** Clears header, text headers, body and error; storage is kept. */
  reset(): void {
    this.bhdr.reset();
    this.headers.reset();
    this.body.reset();
    this.error = undefined;
  }

  /**
   * Returns a deep copy, owned by the application.
   *
   * @returns The copy.
   */
  clone(): Message {
    const m = new Message();
    m.copyFrom(this);
    return m;
  }

  /**
   * Overwrites this message with a copy of `other` (header, text headers, body, error).
   *
   * @param other The message to copy.
   */
  copyFrom(other: Message): void {
    this.bhdr.copyFrom(other.bhdr);
    this.headers.setRaw(other.headers.raw());
    this.body.set(other.body.bytes());
    this.error = other.error;
  }
}

/** Library-internal: the owner of a message. */
export function ownerOf(m: Message): Owner {
  return m[kOwner];
}

/** Library-internal: hand a message to a new owner. */
export function transfer(m: Message, owner: Owner): void {
  m[kOwner] = owner;
}
