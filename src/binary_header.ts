/**
 * The 16-byte binary header that starts every tofu frame.
 *
 * @module
 */

import { OpCode } from "./opcode.ts";

const TWO_32 = 0x1_0000_0000;
const MASK_64 = 0xffff_ffff_ffff_ffffn;

/**
 * The fixed part of a tofu frame: channel number, proto bits, status, message id
 * and the lengths of the text-header block and the body, all big-endian.
 *
 * | offset | size | field |
 * |---:|---:|---|
 * | 0 | 2 | channelNumber |
 * | 2 | 1 | proto: opCode (bits 0-3), origin (4), more (5), internalA (6), internalB (7) |
 * | 3 | 1 | status |
 * | 4 | 8 | messageId |
 * | 12 | 2 | textHeadersLength |
 * | 14 | 2 | bodyLength |
 *
 * @example Encoding and decoding a header
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { BinaryHeader, OpCode } from "@tofu/tofu";
 *
 * const bh = new BinaryHeader();
 * bh.channelNumber = 3;
 * bh.opCode = OpCode.Request;
 * bh.messageId = 7n;
 * const bytes = new Uint8Array(BinaryHeader.byteLength);
 * bh.encodeInto(bytes);
 * assertEquals(BinaryHeader.decode(bytes).messageId, 7n);
 * ```
 */
export class BinaryHeader {
  /** Size of the encoded header in bytes. */
  static readonly byteLength = 16;

  /** The sender's local channel number (u16); 0 means "not assigned yet". */
  channelNumber = 0;
  /** Operation code (0-15 fit the field; 0-9 are defined, see {@linkcode OpCode}). */
  opCode: number = OpCode.Request;
  /** 0 when the application made the message, 1 when the engine did. */
  origin: 0 | 1 = 0;
  /** 1 on every chunk of a stream except the last. */
  more: 0 | 1 = 0;
  /** Protocol status (u8, see `Status`); 0 on the wire from a correct sender. */
  status = 0;
  /** Local urgent / abort flag; never meaningful to the peer. */
  internalA: 0 | 1 = 0;
  /** Unused flag, kept 0. */
  internalB: 0 | 1 = 0;
  /**
   * Length of the text-header block. Only meaningful on a header decoded with
   * {@linkcode BinaryHeader.decode}; encoding a `Message` uses its real lengths.
   */
  textHeadersLength = 0;
  /** Length of the body; see {@linkcode BinaryHeader.textHeadersLength}. */
  bodyLength = 0;

  // The u64 id is kept as two u32 halves so the hot path never allocates a bigint.
  #idHi = 0;
  #idLo = 0;

  /** The message id, a u64 (the full range of `bigint` 0 to 2^64-1). */
  get messageId(): bigint {
    return (BigInt(this.#idHi) << 32n) | BigInt(this.#idLo);
  }

  set messageId(value: bigint) {
    if (typeof value !== "bigint") {
      throw new TypeError(`Cannot set messageId: expected a bigint, got ${typeof value}`);
    }
    if (value < 0n || value > MASK_64) {
      throw new RangeError(`Cannot set messageId: ${value} is outside 0..2^64-1`);
    }
    this.#idHi = Number(value >> 32n);
    this.#idLo = Number(value & 0xffff_ffffn);
  }

  /** Whether the message id is 0, without allocating a bigint. */
  get hasZeroMessageId(): boolean {
    return this.#idHi === 0 && this.#idLo === 0;
  }

  /**
   * Sets the message id from a safe integer without allocating a bigint.
   *
   * @param value An integer in 0..2^53-1.
   */
  setMessageIdNumber(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`Cannot set messageId: ${value} is not a safe non-negative integer`);
    }
    this.#idHi = Math.floor(value / TWO_32);
    this.#idLo = value >>> 0;
  }

  /**
   * Copies only the message id of `other`.
   *
   * @param other Another header.
   */
  setMessageIdFrom(other: BinaryHeader): void {
    this.#idHi = other.#idHi;
    this.#idLo = other.#idLo;
  }

  /**
   * Whether this header's message id equals `other`'s.
   *
   * @param other Another header.
   * @returns True when both ids are equal.
   */
  sameMessageId(other: BinaryHeader): boolean {
    return this.#idHi === other.#idHi && this.#idLo === other.#idLo;
  }

  /** Resets every field to its default (a Request on channel 0 with id 0). */
  reset(): void {
    this.channelNumber = 0;
    this.opCode = OpCode.Request;
    this.origin = 0;
    this.more = 0;
    this.status = 0;
    this.internalA = 0;
    this.internalB = 0;
    this.textHeadersLength = 0;
    this.bodyLength = 0;
    this.#idHi = 0;
    this.#idLo = 0;
  }

  /**
   * Copies every field of `other` into this header.
   *
   * @param other The header to copy.
   */
  copyFrom(other: BinaryHeader): void {
    this.channelNumber = other.channelNumber;
    this.opCode = other.opCode;
    this.origin = other.origin;
    this.more = other.more;
    this.status = other.status;
    this.internalA = other.internalA;
    this.internalB = other.internalB;
    this.textHeadersLength = other.textHeadersLength;
    this.bodyLength = other.bodyLength;
    this.#idHi = other.#idHi;
    this.#idLo = other.#idLo;
  }

  /** Returns a copy of this header. */
  clone(): BinaryHeader {
    const bh = new BinaryHeader();
    bh.copyFrom(this);
    return bh;
  }

  /**
   * Writes the 16 header bytes at the start of `view`, using
   * {@linkcode BinaryHeader.textHeadersLength} and {@linkcode BinaryHeader.bodyLength}.
   *
   * @param view At least 16 bytes.
   * @throws {RangeError} If `view` is shorter than 16 bytes.
   */
  encodeInto(view: Uint8Array): void {
    this.encodeWithLengths(view, 0, this.textHeadersLength, this.bodyLength);
  }

  /**
   * Writes the header at `view[offset]` with the given block lengths.
   * Fields are masked to their wire widths.
   *
   * @param view The destination.
   * @param offset Where the 16 bytes start.
   * @param thl The text-header block length (u16).
   * @param bl The body length (u16).
   * @throws {RangeError} If fewer than 16 bytes remain after `offset`.
   */
  encodeWithLengths(view: Uint8Array, offset: number, thl: number, bl: number): void {
    if (view.length - offset < 16) {
      throw new RangeError(
        `Cannot encode binary header: needs 16 bytes, ${view.length - offset} available`,
      );
    }
    const ch = this.channelNumber;
    view[offset] = ch >>> 8;
    view[offset + 1] = ch;
    view[offset + 2] = (this.opCode & 0x0f) | ((this.origin & 1) << 4) | ((this.more & 1) << 5) |
      ((this.internalA & 1) << 6) | ((this.internalB & 1) << 7);
    view[offset + 3] = this.status;
    const hi = this.#idHi;
    const lo = this.#idLo;
    view[offset + 4] = hi >>> 24;
    view[offset + 5] = hi >>> 16;
    view[offset + 6] = hi >>> 8;
    view[offset + 7] = hi;
    view[offset + 8] = lo >>> 24;
    view[offset + 9] = lo >>> 16;
    view[offset + 10] = lo >>> 8;
    view[offset + 11] = lo;
    view[offset + 12] = thl >>> 8;
    view[offset + 13] = thl;
    view[offset + 14] = bl >>> 8;
    view[offset + 15] = bl;
  }

  /**
   * Reads the 16 bytes at `view[offset]` into this header, every bit as it is on
   * the wire (no validation; the codec decides what is acceptable).
   *
   * @param view The source.
   * @param offset Where the 16 bytes start.
   * @throws {RangeError} If fewer than 16 bytes remain after `offset`.
   */
  decodeFrom(view: Uint8Array, offset = 0): void {
    if (view.length - offset < 16) {
      throw new RangeError(
        `Cannot decode binary header: needs 16 bytes, ${view.length - offset} available`,
      );
    }
    this.channelNumber = (view[offset]! << 8) | view[offset + 1]!;
    const proto = view[offset + 2]!;
    this.opCode = proto & 0x0f;
    this.origin = ((proto >>> 4) & 1) as 0 | 1;
    this.more = ((proto >>> 5) & 1) as 0 | 1;
    this.internalA = ((proto >>> 6) & 1) as 0 | 1;
    this.internalB = ((proto >>> 7) & 1) as 0 | 1;
    this.status = view[offset + 3]!;
    this.#idHi = ((view[offset + 4]! << 24) | (view[offset + 5]! << 16) |
      (view[offset + 6]! << 8) | view[offset + 7]!) >>> 0;
    this.#idLo = ((view[offset + 8]! << 24) | (view[offset + 9]! << 16) |
      (view[offset + 10]! << 8) | view[offset + 11]!) >>> 0;
    this.textHeadersLength = (view[offset + 12]! << 8) | view[offset + 13]!;
    this.bodyLength = (view[offset + 14]! << 8) | view[offset + 15]!;
  }

  /**
   * Decodes a standalone header from the first 16 bytes of `view`.
   *
   * @param view At least 16 bytes.
   * @returns The decoded header.
   * @throws {RangeError} If `view` is shorter than 16 bytes.
   */
  static decode(view: Uint8Array): BinaryHeader {
    const bh = new BinaryHeader();
    bh.decodeFrom(view, 0);
    return bh;
  }
}
