/**
 * The tofu wire codec: frames are a 16-byte {@linkcode BinaryHeader}, the text-header
 * block, then the body. The core is sans-IO ({@linkcode FrameDecoder},
 * {@linkcode encodeFrameInto}); the engine and the web streams are built on it.
 *
 * @module
 */

import { BinaryHeader } from "./binary_header.ts";
import { Message } from "./message.ts";
import { OpCode, opCodeName } from "./opcode.ts";
import { Status, TofuError } from "./status.ts";
import { bodyBytes } from "./body.ts";
import { type ByteBuffer, dataViewOf } from "./_bytes.ts";
import { textHeadersBytes } from "./text_headers.ts";

/** Largest possible frame: 16 + 65535 + 65535 bytes. */
export const MAX_FRAME_LENGTH = 16 + 65535 + 65535;

const HDR = BinaryHeader.byteLength;
// Frames above this size make the decoder grow to its largest size at once (see writable()).
const LARGE_FRAME = 16 * 1024;

/**
 * Returns the encoded size of `msg` in bytes.
 *
 * @param msg The message.
 * @returns 16 + text-header block + body.
 */
export function frameLength(msg: Message): number {
  return HDR + msg.headers.byteLength + msg.body.byteLength;
}

/**
 * Encodes `msg` into `target` at `offset`, with the lengths taken from the message's
 * real text headers and body. Every header bit is written as it is.
 *
 * @param msg The message.
 * @param target The destination.
 * @param offset Where the frame starts.
 * @returns The number of bytes written ({@linkcode frameLength}).
 * @throws {RangeError} If the frame does not fit.
 *
 * @example Encoding into a reusable buffer
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { encodeFrameInto, Message } from "@tofu/tofu";
 *
 * const out = new Uint8Array(1024);
 * const msg = new Message();
 * msg.bhdr.channelNumber = 3;
 * msg.body.set("abc");
 * assertEquals(encodeFrameInto(msg, out, 0), 19);
 * ```
 */
export function encodeFrameInto(msg: Message, target: Uint8Array, offset: number): number {
  return encodeWithView(msg, target, targetView(target), offset);
}

/**
 * Library-internal: {@linkcode encodeFrameInto} with the caller's DataView over exactly
 * `target` (a send lane keeps one per chunk: making one per frame cost more than encoding).
 */
export function encodeWithView(
  msg: Message,
  target: Uint8Array,
  view: DataView,
  offset: number,
): number {
  const hdrs = textHeadersBytes(msg.headers);
  const body = bodyBytes(msg.body);
  const thl = hdrs.length;
  const total = HDR + thl + body.length;
  if (target.length - offset < total) {
    throw new RangeError(
      `Cannot encode frame: needs ${total} bytes, ${target.length - offset} available`,
    );
  }
  msg.bhdr.encodeWithLengths(target, offset, thl, body.length);
  if (thl > 0) hdrs.copyOut(target, view, offset + HDR);
  body.copyOut(target, view, offset + HDR + thl);
  return total;
}

// Encoders write batch after batch into the same buffer: keep the view of the last one.
let lastTarget: Uint8Array | null = null;
let lastTargetView: DataView | null = null;

function targetView(target: Uint8Array): DataView {
  if (target !== lastTarget) {
    lastTarget = target;
    lastTargetView = dataViewOf(target);
  }
  return lastTargetView!;
}

/**
 * Encodes one message into a new frame.
 *
 * @param msg The message.
 * @returns The frame bytes.
 *
 * @example Encoding a request
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { encodeFrame, Message } from "@tofu/tofu";
 *
 * const msg = new Message();
 * msg.bhdr.channelNumber = 3;
 * msg.bhdr.messageId = 7n;
 * msg.body.set("abc");
 * assertEquals(encodeFrame(msg).length, 19);
 * ```
 */
export function encodeFrame(msg: Message): Uint8Array {
  const out = new Uint8Array(frameLength(msg));
  encodeFrameInto(msg, out, 0);
  return out;
}

/**
 * Checks the proto byte of a received header: opcodes 10-15 and the local-only
 * opcodes never travel on the wire.
 */
function checkWireHeader(proto: number): TofuError | null {
  const op = proto & 0x0f;
  if (op > 9) {
    return new TofuError(Status.invalidOpCode, `Cannot decode frame: opcode ${op} is not 0..9`);
  }
  if (op === OpCode.WelcomeRequest || op === OpCode.WelcomeResponse) {
    return new TofuError(
      Status.invalidOpCode,
      `Cannot decode frame: ${opCodeName(op)} is local and never travels on the wire`,
    );
  }
  if (op === OpCode.ByeSignal && (proto & 0x40) !== 0) {
    return new TofuError(
      Status.invalidOpCode,
      "Cannot decode frame: ByeSignal with internalA is a local abort and never travels on the wire",
    );
  }
  return null;
}

let largePartial: (d: FrameDecoder) => boolean;
let spill: (d: FrameDecoder, target: Message) => void;
let spilled: (d: FrameDecoder) => Message | null;
let dropSpill: (d: FrameDecoder) => Message | null;

/** Options of {@linkcode FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Initial buffer size in bytes (default 16 KiB); it grows to fit the largest frame. */
  initialCapacity?: number;
  /**
   * Size the buffer may grow to for throughput when reads keep filling it, or once the
   * first 16 KiB of a frame over 16 KiB are in (default 256 KiB).
   */
  maxCapacity?: number;
}

/**
 * An incremental, sans-IO frame decoder. Feed it bytes in any chunking with
 * {@linkcode FrameDecoder.push} (or read straight into {@linkcode FrameDecoder.writable}
 * and {@linkcode FrameDecoder.commit}), then take frames with
 * {@linkcode FrameDecoder.next}. A bad header is rejected as soon as its 16 bytes are
 * in, before any body is buffered; after that the decoder stays failed, so it never
 * invents frames from the bytes that follow.
 *
 * @example Decoding a stream split at an arbitrary point
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { encodeFrame, FrameDecoder, Message } from "@tofu/tofu";
 *
 * const src = new Message();
 * src.bhdr.channelNumber = 1;
 * src.body.set("hello");
 * const bytes = encodeFrame(src);
 * const dec = new FrameDecoder();
 * const out = new Message();
 * dec.push(bytes.subarray(0, 5));
 * assertEquals(dec.next(out), false); // incomplete
 * dec.push(bytes.subarray(5));
 * assertEquals(dec.next(out), true);
 * assertEquals(out.body.text(), "hello");
 * ```
 */
export class FrameDecoder {
  #buf: Uint8Array;
  #view: DataView;
  #start = 0;
  #end = 0;
  #error: TofuError | null = null;
  #lastWritable = 0;
  // The start and size of the frame hasFrame() last checked complete and well-formed
  // (-1: none), so that next() does not check its header again.
  #checkedAt = -1;
  #checkedTotal = 0;
  readonly #maxCapacity: number;
  // A large frame being completed in its message (see spillFrame): the message, its body,
  // the frame's 16 + text-header bytes, and how many body bytes are still to come. The
  // bytes read go into the body first; the buffer holds only what follows the frame.
  #into: Message | null = null;
  #intoBody: ByteBuffer | null = null;
  #intoHead = 0;
  #intoLeft = 0;

  static {
    largePartial = (d) => d.#largePartial();
    spill = (d, target) => d.#spill(target);
    spilled = (d) => d.#spilled();
    dropSpill = (d) => d.#dropSpill();
  }

  /**
   * Creates a decoder.
   *
   * @param options Buffer sizing.
   */
  constructor(options: FrameDecoderOptions = {}) {
    const initial = Math.max(HDR, options.initialCapacity ?? 16 * 1024);
    this.#buf = new Uint8Array(initial);
    this.#view = dataViewOf(this.#buf);
    this.#maxCapacity = Math.max(initial, options.maxCapacity ?? 256 * 1024);
  }

  /** Bytes buffered and not yet returned as frames. */
  get buffered(): number {
    const pending = this.#end - this.#start;
    return this.#into === null ? pending : pending + this.#intoHead + this.#intoBody!.length;
  }

  /** The error that failed this decoder, if any. */
  get error(): TofuError | null {
    return this.#error;
  }

  /** Current buffer size in bytes. */
  get capacity(): number {
    return this.#buf.length;
  }

  /** Moves unconsumed bytes to the front and makes room for at least `need` bytes. */
  #makeRoom(need: number): void {
    const pending = this.#end - this.#start;
    if (this.#start > 0 && (this.#buf.length - this.#end < need || pending === 0)) {
      this.#checkedAt = -1;
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#start = 0;
      this.#end = pending;
    }
    if (this.#buf.length - this.#end < need) {
      let cap = this.#buf.length * 2;
      while (cap - pending < need) cap *= 2;
      const next = new Uint8Array(cap);
      this.#checkedAt = -1;
      next.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = next;
      this.#view = dataViewOf(next);
      this.#start = 0;
      this.#end = pending;
    }
  }

  /**
   * Appends bytes (copied).
   *
   * @param chunk The next bytes of the stream.
   */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#makeRoom(chunk.length);
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
    if (this.#into !== null) this.#feed();
  }

  /**
   * Returns free space to read into directly (for example with `conn.read`), then call
   * {@linkcode FrameDecoder.commit} with the number of bytes read. The space holds the
   * rest of the frame being assembled, or at least as much again as has arrived of it
   * (16 KiB in all without more): a frame's header alone never makes the buffer grow
   * past 16 KiB, whatever size it announces.
   *
   * @returns A view of the free space.
   */
  writable(): Uint8Array {
    let need = 1;
    const pending = this.#end - this.#start;
    if (pending >= HDR) {
      const thl = (this.#buf[this.#start + 12]! << 8) | this.#buf[this.#start + 13]!;
      const bl = (this.#buf[this.#start + 14]! << 8) | this.#buf[this.#start + 15]!;
      const total = HDR + thl + bl;
      // Room for the rest of the frame, but no more than what has arrived of it (or than
      // 16 KiB in all): a peer that announces the largest frame and sends nothing more
      // does not make the buffer grow (it made it grow to 256 KiB for a 16-byte header).
      need = Math.max(1, Math.min(total - pending, Math.max(pending, LARGE_FRAME - pending)));
      // A large frame: room for several like it at once, once its first 16 KiB are in.
      // Sized to fit one frame, the buffer was full after each read (loopback hands over
      // 64 KiB at a time, never aligned with the frames), so the partial frame each read left
      // was moved to the front after every read: 64 KiB moved per 64 KiB frame. At the
      // largest size, it moves once every few.
      if (
        total > LARGE_FRAME && pending >= LARGE_FRAME && this.#buf.length < this.#maxCapacity
      ) {
        need = Math.max(need, this.#maxCapacity - pending);
      }
    }
    // A read that filled all the space offered suggests a busy stream: grow to read more per call.
    if (
      this.#lastWritable > 0 && this.#lastWritable === this.#buf.length &&
      this.#buf.length < this.#maxCapacity
    ) {
      need = Math.max(need, this.#buf.length * 2 - pending);
    }
    this.#lastWritable = 0;
    this.#makeRoom(need);
    return this.#buf.subarray(this.#end);
  }

  /**
   * Records that `n` bytes were written into the view from {@linkcode FrameDecoder.writable}.
   *
   * @param n Bytes written.
   * @throws {RangeError} If `n` exceeds the free space.
   */
  commit(n: number): void {
    if (!Number.isInteger(n) || n < 0 || this.#end + n > this.#buf.length) {
      throw new RangeError(`Cannot commit ${n} bytes: only ${this.#buf.length - this.#end} free`);
    }
    this.#lastWritable = n === this.#buf.length - this.#end && this.#start === 0 ? n : 0;
    this.#end += n;
    if (this.#into !== null) this.#feed();
  }

  // Whether the buffer holds the start of a large frame, its header checked and its text
  // headers complete, and not the whole frame: #spill can take it into its message now.
  #largePartial(): boolean {
    if (this.#error !== null || this.#into !== null) return false;
    const pending = this.#end - this.#start;
    if (pending < HDR) return false;
    const buf = this.#buf;
    const s = this.#start;
    const thl = (buf[s + 12]! << 8) | buf[s + 13]!;
    const total = HDR + thl + ((buf[s + 14]! << 8) | buf[s + 15]!);
    // Only once 16 KiB of it are in: its message reserves room for the whole body.
    return total > LARGE_FRAME && pending >= HDR + thl && pending >= LARGE_FRAME &&
      pending < total && checkWireHeader(buf[s + 2]!) === null;
  }

  // Decodes the partial frame #largePartial found into `target`: its header, text headers
  // and the body bytes buffered so far. The rest of the body goes straight into the
  // message as it is read (#feed), so the partial frame is never moved to the front of the
  // buffer to make room (64 KiB per read when reads fill the buffer), and is copied once.
  #spill(target: Message): void {
    const buf = this.#buf;
    const s = this.#start;
    const thl = (buf[s + 12]! << 8) | buf[s + 13]!;
    const bl = (buf[s + 14]! << 8) | buf[s + 15]!;
    const from = s + HDR + thl;
    target.error = undefined;
    target.bhdr.decodeFrom(buf, s);
    const view = this.#view;
    textHeadersBytes(target.headers).copyIn(buf, view, s + HDR, from);
    const body = bodyBytes(target.body);
    body.reset(); // reserve() keeps the content: none to keep
    body.reserve(bl, "set");
    body.copyIn(buf, view, from, this.#end);
    this.#into = target;
    this.#intoBody = body;
    this.#intoHead = HDR + thl;
    this.#intoLeft = bl - (this.#end - from);
    this.#checkedAt = -1;
    this.#start = this.#end = 0;
    // As writable() grows for a large frame's header (which it no longer sees).
    if (this.#buf.length < this.#maxCapacity) {
      this.#buf = new Uint8Array(this.#maxCapacity);
      this.#view = dataViewOf(this.#buf);
    }
  }

  // Moves the bytes read for a spilled frame's body into its message.
  #feed(): void {
    const k = Math.min(this.#intoLeft, this.#end - this.#start);
    if (k === 0) return;
    const s = this.#start;
    this.#intoBody!.append(this.#buf.subarray(s, s + k));
    this.#intoLeft -= k;
    this.#start = s + k;
    if (this.#start === this.#end) this.#start = this.#end = 0;
  }

  // The spilled frame's message once its body is complete (the decoder lets go of it).
  #spilled(): Message | null {
    if (this.#into === null || this.#intoLeft > 0) return null;
    return this.#dropSpill();
  }

  // Lets go of the spilled frame's message, complete or not.
  #dropSpill(): Message | null {
    const m = this.#into;
    this.#into = null;
    this.#intoBody = null;
    this.#intoHead = this.#intoLeft = 0;
    return m;
  }

  /**
   * Whether a complete frame (or a bad header) is buffered, so that
   * {@linkcode FrameDecoder.next} will not return false.
   */
  hasFrame(): boolean {
    if (this.#error) return true;
    const pending = this.#end - this.#start;
    if (pending < HDR) return false;
    const s = this.#start;
    if (s === this.#checkedAt) return true;
    const buf = this.#buf;
    if (checkWireHeader(buf[s + 2]!)) return true;
    const total = HDR + ((buf[s + 12]! << 8) | buf[s + 13]!) + ((buf[s + 14]! << 8) | buf[s + 15]!);
    if (pending < total) return false;
    this.#checkedAt = s;
    this.#checkedTotal = total;
    return true;
  }

  /**
   * Decodes the next complete frame into `target` (which is overwritten).
   *
   * @param target The message to fill.
   * @returns True when a frame was decoded, false when more bytes are needed.
   * @throws {TofuError} With status `invalid_op_code` for a frame that must never be
   * received; the decoder then stays failed and throws the same error again.
   */
  next(target: Message): boolean {
    if (this.#error) throw this.#error;
    const pending = this.#end - this.#start;
    if (pending < HDR) return false;
    const buf = this.#buf;
    const s = this.#start;
    const thl = (buf[s + 12]! << 8) | buf[s + 13]!;
    let total: number;
    if (s === this.#checkedAt) {
      total = this.#checkedTotal; // checked by hasFrame(): once per frame
    } else {
      const bad = checkWireHeader(buf[s + 2]!);
      if (bad) {
        this.#error = bad;
        throw bad;
      }
      total = HDR + thl + ((buf[s + 14]! << 8) | buf[s + 15]!);
      if (pending < total) return false;
    }
    this.#checkedAt = -1;
    target.error = undefined;
    target.bhdr.decodeFrom(buf, s);
    const view = this.#view;
    const headers = textHeadersBytes(target.headers);
    if (thl === 0) headers.reset();
    else headers.copyIn(buf, view, s + HDR, s + HDR + thl);
    bodyBytes(target.body).copyIn(buf, view, s + HDR + thl, s + total);
    this.#start = s + total;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return true;
  }

  /**
   * Whether the stream ended cleanly (no partial frame buffered).
   */
  get atFrameBoundary(): boolean {
    return this.#end === this.#start && this.#into === null;
  }
}

/**
 * Library-internal: whether `dec` holds the start of a large frame (over 16 KiB), its
 * header valid and its text headers complete, but not the whole frame.
 */
export function hasLargePartial(dec: FrameDecoder): boolean {
  return largePartial(dec);
}

/**
 * Library-internal: decodes the partial frame {@linkcode hasLargePartial} found into
 * `target` (which is overwritten); the rest of its body goes into `target` as bytes come
 * in (read into {@linkcode FrameDecoder.writable}, or pushed). Take it back with
 * {@linkcode takeSpilled} once complete; {@linkcode FrameDecoder.buffered} counts its bytes.
 */
export function spillFrame(dec: FrameDecoder, target: Message): void {
  spill(dec, target);
}

/** Library-internal: the spilled frame's message once complete (then let go), else null. */
export function takeSpilled(dec: FrameDecoder): Message | null {
  return spilled(dec);
}

/** Library-internal: lets go of the spilled frame's message, complete or not (null: none). */
export function dropSpilled(dec: FrameDecoder): Message | null {
  return dropSpill(dec);
}

/**
 * Decodes exactly one frame.
 *
 * @param bytes One whole frame.
 * @returns A new message.
 * @throws {TofuError} With status `invalid_message` if `bytes` is not exactly one frame,
 * or `invalid_op_code` for an opcode that never travels on the wire.
 *
 * @example Decoding a golden frame
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { decodeFrame } from "@tofu/tofu";
 *
 * const hex = "00030000000000000000000700000003616263";
 * const bytes = new Uint8Array(hex.match(/../g)!.map((h) => parseInt(h, 16)));
 * const msg = decodeFrame(bytes);
 * assertEquals(msg.bhdr.messageId, 7n);
 * assertEquals(msg.body.text(), "abc");
 * ```
 */
export function decodeFrame(bytes: Uint8Array): Message {
  if (bytes.length < HDR) {
    throw new TofuError(
      Status.invalidMessage,
      `Cannot decode frame: ${bytes.length} bytes is shorter than the 16-byte header`,
    );
  }
  const bad = checkWireHeader(bytes[2]!);
  if (bad) throw bad;
  const thl = (bytes[12]! << 8) | bytes[13]!;
  const bl = (bytes[14]! << 8) | bytes[15]!;
  const total = HDR + thl + bl;
  if (bytes.length !== total) {
    throw new TofuError(
      Status.invalidMessage,
      `Cannot decode frame: the header announces ${total} bytes, got ${bytes.length}`,
    );
  }
  const msg = new Message();
  msg.bhdr.decodeFrom(bytes, 0);
  msg.headers.setRaw(bytes.subarray(HDR, HDR + thl));
  msg.body.set(bytes.subarray(HDR + thl, total));
  return msg;
}

/**
 * A `TransformStream` from bytes, in any chunking, to decoded messages (one new
 * `Message` per frame). An invalid frame, or a stream that ends inside a frame,
 * errors the stream with a {@linkcode TofuError}.
 *
 * @example Decoding a byte stream
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { encodeFrame, FrameDecoderStream, Message } from "@tofu/tofu";
 *
 * const msg = new Message();
 * msg.bhdr.channelNumber = 1;
 * msg.body.set("hi");
 * const frames = ReadableStream.from([encodeFrame(msg)]).pipeThrough(new FrameDecoderStream());
 * const texts = (await Array.fromAsync(frames)).map((m) => m.body.text());
 * assertEquals(texts, ["hi"]);
 * ```
 */
export class FrameDecoderStream extends TransformStream<Uint8Array, Message> {
  /** Creates the stream. */
  constructor() {
    const dec = new FrameDecoder();
    super({
      transform(chunk, controller) {
        dec.push(chunk);
        while (dec.hasFrame()) {
          const m = new Message();
          dec.next(m);
          controller.enqueue(m);
        }
      },
      flush() {
        if (!dec.atFrameBoundary) {
          throw new TofuError(
            Status.invalidMessage,
            `Cannot decode frame: the stream ended inside a frame (${dec.buffered} bytes left)`,
          );
        }
      },
    });
  }
}

/**
 * A `TransformStream` from messages to frame bytes (one chunk per message).
 *
 * @example Encoding messages onto a byte stream
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { FrameEncoderStream, Message } from "@tofu/tofu";
 *
 * const msg = new Message();
 * msg.bhdr.channelNumber = 1;
 * const bytes = ReadableStream.from([msg]).pipeThrough(new FrameEncoderStream());
 * const lengths = (await Array.fromAsync(bytes)).map((chunk) => chunk.length);
 * assertEquals(lengths, [16]);
 * ```
 */
export class FrameEncoderStream extends TransformStream<Message, Uint8Array> {
  /** Creates the stream. */
  constructor() {
    super({
      transform(msg, controller) {
        controller.enqueue(encodeFrame(msg));
      },
    });
  }
}
