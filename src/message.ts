/**
 * The tofu message: binary header, text headers and body.
 *
 * @module
 */

import { BinaryHeader } from "./binary_header.ts";
import { Body } from "./body.ts";
import { opCodeName } from "./opcode.ts";
import { statusName, type TofuError } from "./status.ts";
import { TextHeaders } from "./text_headers.ts";

/**
 * Who holds a message; only the library reads or changes it. Application: it may be
 * changed, posted or put. Pooled: it sits in a pool. Engine: it was posted and the
 * engine owns it until it is written or handed back.
 */
export const Owner = { Application: 0, Pooled: 1, Engine: 2 } as const;
/** One of the values of {@linkcode Owner}. */
export type Owner = typeof Owner[keyof typeof Owner];

// The owner, the pool, the lease and the read share live in #private fields (invisible to
// users and to `deno doc`); these functions, set by Message's static block, are the
// library's only way in.
let readOwner: (m: Message) => Owner;
let writeOwner: (m: Message, owner: Owner) => void;
let writeHome: (m: Message, home: MessageHome) => void;
let readLease: (m: Message) => number;
let readShare: (m: Message) => ShareRef | null;
let writeShare: (m: Message, share: ShareRef | null, bytes: number) => void;
let readHeldBytes: (m: Message) => number;
let readResolved: (m: Message) => Promise<Message>;
let readIterResolved: (m: Message) => Promise<IteratorResult<Message>>;
let writeReport: (m: Message) => void;

/** Library-internal: the read share a received message is charged to (src/_read_share.ts). */
export interface ShareRef {
  /** `m` is back (put, posted, recycled) or taken off the share; it was charged `bytes`. */
  release(bytes: number): void;
}

/** Library-internal: where a pool message goes back to (its engine's pool). */
export interface MessageHome {
  put(m: Message): void;
}

const BODY_PREVIEW = 64;

/**
 * A tofu message. Get one from an engine's pool with `engine.get("always")`,
 * fill it, post it, and give received messages back with `engine.put(msg)`.
 *
 * @example Building a request
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Message, OpCode } from "@tofu/tofu";
 *
 * const msg = new Message();
 * msg.bhdr.opCode = OpCode.Request;
 * msg.headers.append("Job-ID", "7");
 * msg.body.set("print me");
 * assertEquals([msg.isFromApplication(), msg.hasMore()], [true, false]);
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

  // Who holds the message: the application, a pool or the engine.
  #owner: Owner = Owner.Application;
  // The pool `[Symbol.dispose]` returns the message to.
  #home: MessageHome | undefined = undefined;
  // Counts ownership changes: a holder that remembers the count can tell whether the
  // message is still the one it was given (not put back and handed out again meanwhile).
  // Fields rather than WeakMaps: a message changes hands several times on its way through
  // the engine, and a WeakMap lookup per change cost ~18% of a one-way CPU profile.
  #lease = 0;
  // The read share of the channel that received it, until it is back (src/_read_share.ts).
  #share: ShareRef | null = null;
  // The bytes it was charged to that share (the message may change before it is back).
  #heldBytes = 0;
  // A promise already resolved with this message, and one resolved with the iterator result
  // `{ done: false, value: this }` (frozen), made once and returned each time the message is
  // received through waitReceive() or a group's iterator: a settled promise never changes, and
  // a pooled message is received many times (a promise and an object per receive otherwise).
  #resolved: Promise<Message> | null = null;
  #iterResolved: Promise<IteratorResult<Message>> | null = null;
  // Made by the engine as a report (src/_report.ts): never a pool message, never a copy.
  #report = false;

  static {
    readOwner = (m) => m.#owner;
    writeOwner = (m, owner) => {
      m.#owner = owner;
      m.#lease = (m.#lease + 1) | 0;
    };
    writeHome = (m, home) => {
      m.#home = home;
    };
    readLease = (m) => m.#lease;
    readShare = (m) => m.#share;
    writeShare = (m, share, bytes) => {
      m.#share = share;
      m.#heldBytes = bytes;
    };
    readHeldBytes = (m) => m.#heldBytes;
    readResolved = (m) => m.#resolved ??= Promise.resolve(m);
    readIterResolved = (m) =>
      m.#iterResolved ??= Promise.resolve(Object.freeze({ done: false, value: m }));
    writeReport = (m) => {
      m.#report = true;
    };
  }

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

  /**
   * Whether the engine made this message or handed it back (origin 1): a report, or a
   * message posted and returned unsent with a status saying why.
   */
  isFromEngine(): boolean {
    return this.bhdr.origin === 1;
  }

  /**
   * Whether the engine made this message itself as a report: the final Signal
   * `channel_closed` of a channel, a `pool_empty` or `receiver_update` Signal. False for a
   * message handed back unsent, even one with the same opcode and status (an abort hands
   * back a posted Signal with `channel_closed` before the final report), and for a copy.
   *
   * @example Telling the end of a channel from a Signal of yours handed back
   * ```ts ignore
   * const m = await group.waitReceive();
   * const ended = m.isReport() && m.bhdr.status === Status.channelClosed;
   * ```
   */
  isReport(): boolean {
    return this.#report;
  }

  /** Whether the application (local or remote) made this message. */
  isFromApplication(): boolean {
    return this.bhdr.origin === 0;
  }

  /** Whether more chunks of the same stream follow this one. */
  hasMore(): boolean {
    return this.bhdr.more === 1;
  }

  /**
   * Puts a pool message back into its engine's pool, so `using msg = ...` releases it
   * at the end of the block. A no-op for a standalone message (`new Message()`), for a
   * message that was posted, and for one already put back as long as the pool has not
   * handed it out again: like a second `put`, disposing a message you gave away can
   * take it from its next holder, so give a `using` message back only by leaving its block.
   *
   * @example Releasing a message at the end of a block
   * ```ts
   * import { assertEquals } from "@std/assert";
   * import { Engine } from "@tofu/tofu";
   *
   * await using engine = new Engine();
   * const before = engine.poolSize;
   * {
   *   using msg = engine.get("always");
   *   msg.body.set("scratch");
   *   assertEquals(engine.poolSize, before - 1);
   * }
   * assertEquals(engine.poolSize, before);
   * ```
   */
  [Symbol.dispose](): void {
    if (this.#owner === Owner.Application) this.#home?.put(this);
  }

  /**
   * Renders the message for `console.log` and the REPL: opcode and status names,
   * channel, message id, flags, header lines and a preview of the body.
   *
   * @param inspect Deno's inspect function, for nested values.
   * @param options Deno's inspect options.
   * @returns A readable multi-line description.
   */
  [Symbol.for("Deno.customInspect")](
    inspect: (value: unknown, options?: unknown) => string,
    options?: unknown,
  ): string {
    return describe(this, inspect, options);
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
  return readOwner(m);
}

/** Library-internal: hand a message to a new owner. */
export function transfer(m: Message, owner: Owner): void {
  writeOwner(m, owner);
}

/** Library-internal: records the pool a message returns to on `[Symbol.dispose]`. */
export function setHome(m: Message, home: MessageHome): void {
  writeHome(m, home);
}

/** Library-internal: a token that changes whenever the message changes hands. */
export function leaseOf(m: Message): number {
  return readLease(m);
}

/** Library-internal: the read share `m` is charged to, or null. */
export function shareOf(m: Message): ShareRef | null {
  return readShare(m);
}

/** Library-internal: charges `m` to `share` (null: to none), `bytes` of it. */
export function setShare(m: Message, share: ShareRef | null, bytes = 0): void {
  writeShare(m, share, bytes);
}

/** Library-internal: the bytes `m` is charged to its read share (see setShare). */
export function heldBytesOf(m: Message): number {
  return readHeldBytes(m);
}

/** Library-internal: a promise resolved with `m` (the same one each time). */
export function resolvedWith(m: Message): Promise<Message> {
  return readResolved(m);
}

/** Library-internal: a promise resolved with the iterator result of `m` (the same one each time). */
/** Library-internal: marks `m` as a report the engine made (see Message.isReport). */
export function markReport(m: Message): void {
  writeReport(m);
}

export function iterResolvedWith(m: Message): Promise<IteratorResult<Message>> {
  return readIterResolved(m);
}

function describe(
  m: Message,
  inspect: (value: unknown, options?: unknown) => string,
  options: unknown,
): string {
  const bh = m.bhdr;
  const flags = [bh.origin ? "engine" : "application"];
  if (bh.more) flags.push("more");
  if (bh.internalA) flags.push("internalA");
  const lines = [
    `Message ${opCodeName(bh.opCode)} ${statusName(bh.status)} {`,
    `  channel: ${bh.channelNumber}, id: ${bh.messageId}n, ${flags.join(", ")}`,
  ];
  for (const [name, value] of m.headers) lines.push(`  ${name}: ${value}`);
  const bytes = m.body.bytes();
  if (bytes.length > 0) {
    const head = bytes.subarray(0, BODY_PREVIEW);
    let preview: string;
    try {
      // stream: a character cut by the preview's end is held back, not an error.
      const text = new TextDecoder("utf-8", { fatal: true }).decode(head, { stream: true });
      preview = inspect(text, options);
    } catch {
      preview = Array.from(head, (b) => b.toString(16).padStart(2, "0")).join(" ");
    }
    const rest = bytes.length > head.length ? ` ... (${bytes.length} bytes)` : "";
    lines.push(`  body: ${preview}${rest}`);
  }
  if (m.error) lines.push(`  error: ${m.error.message}`);
  lines.push("}");
  return lines.join("\n");
}
