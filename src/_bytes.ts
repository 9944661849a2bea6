// A growable byte buffer with a hard size limit. Its first storage may be a view into a
// pool slab; it grows into its own ArrayBuffer and keeps that buffer across resets.

import { TofuError } from "./status.ts";

const encoder = new TextEncoder();

// Up to this many bytes, copying in 4-byte words through DataViews beats creating a
// subarray view for TypedArray.set (a view costs ~150-190 ns in Deno).
const WORD_COPY_MAX = 512;

/** A DataView over exactly the bytes of `u8`. */
export function dataViewOf(u8: Uint8Array): DataView {
  return new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
}

/**
 * Copies `n` bytes between DataViews: 16 bytes per step as four little-endian 4-byte
 * words (native order: no byte swaps), then 4-byte words, then byte by byte. 64 bytes:
 * ~28-45 ns against ~69-88 ns one big-endian word per step (measured here). Integer words
 * only: a float64 copy would canonicalise NaN payload bytes before V8 optimises it.
 */
export function copyWords(
  src: DataView,
  srcOff: number,
  dst: DataView,
  dstOff: number,
  n: number,
): void {
  let i = 0;
  for (const blocks = n & ~15; i < blocks; i += 16) {
    const s = srcOff + i;
    const d = dstOff + i;
    dst.setUint32(d, src.getUint32(s, true), true);
    dst.setUint32(d + 4, src.getUint32(s + 4, true), true);
    dst.setUint32(d + 8, src.getUint32(s + 8, true), true);
    dst.setUint32(d + 12, src.getUint32(s + 12, true), true);
  }
  for (const words = n & ~3; i < words; i += 4) {
    dst.setUint32(dstOff + i, src.getUint32(srcOff + i, true), true);
  }
  for (; i < n; i++) dst.setUint8(dstOff + i, src.getUint8(srcOff + i));
}

/** Shared zero-length storage: a buffer gets its own on its first write. */
export const EMPTY: Uint8Array = new Uint8Array(0);

export class ByteBuffer {
  #buf: Uint8Array;
  // #buf.length, kept here: a received message's copy checks it without touching the array.
  #cap: number;
  #dv: DataView | null = null;
  #len = 0;
  readonly #limit: number;
  readonly #status: number;
  readonly #what: string;

  constructor(storage: Uint8Array, limit: number, status: number, what: string) {
    this.#buf = storage;
    this.#cap = storage.length;
    this.#limit = limit;
    this.#status = status;
    this.#what = what;
  }

  get length(): number {
    return this.#len;
  }

  get capacity(): number {
    return this.#buf.length;
  }

  view(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  reset(): void {
    this.#len = 0;
  }

  #tooLong(size: number, action: string): TofuError {
    return new TofuError(
      this.#status,
      `Cannot ${action} ${this.#what}: ${size} bytes exceeds the limit of ${this.#limit}`,
    );
  }

  /** Makes room for `total` bytes, keeping the current content. */
  reserve(total: number, action = "grow"): void {
    if (total > this.#limit) throw this.#tooLong(total, action);
    if (total <= this.#buf.length) return;
    let cap = Math.max(64, this.#buf.length * 2);
    while (cap < total) cap *= 2;
    cap = Math.min(cap, this.#limit);
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
    this.#cap = cap;
    this.#dv = null;
  }

  #view(): DataView {
    return this.#dv ??= dataViewOf(this.#buf);
  }

  append(bytes: Uint8Array): void {
    const end = this.#len + bytes.length;
    if (end > this.#buf.length) this.reserve(end, "append to");
    this.#buf.set(bytes, this.#len);
    this.#len = end;
  }

  /** Replaces the content with `bytes`. */
  set(bytes: Uint8Array): void {
    if (bytes.length > this.#buf.length) this.reserve(bytes.length, "set");
    this.#buf.set(bytes, 0);
    this.#len = bytes.length;
  }

  /** Appends the UTF-8 encoding of `s`; all or nothing (it checks before writing). */
  appendString(s: string): void {
    const start = this.#len;
    // Most strings fit in the spare room; only a long one needs its exact size first.
    const spare = this.#buf.length - start;
    if (spare < s.length * 3) this.reserve(start + byteLengthUtf8(s), "append to");
    const { written } = encoder.encodeInto(s, this.#buf.subarray(start));
    this.#len = start + written;
  }

  /** Replaces the content with the UTF-8 encoding of `s`; unchanged if it is too long. */
  setString(s: string): void {
    if (s.length * 3 > this.#limit) {
      const n = byteLengthUtf8(s);
      if (n > this.#limit) throw this.#tooLong(n, "set");
    }
    this.#len = 0;
    this.appendString(s);
  }

  /**
   * Replaces the content with `src[start, end)`. Short copies use a plain loop:
   * creating a subarray view costs more than copying a few dozen bytes.
   */
  copyIn(src: Uint8Array, srcView: DataView, start: number, end: number): void {
    const n = end - start;
    if (n > this.#cap) this.reserve(n, "set");
    if (n <= WORD_COPY_MAX) copyWords(srcView, start, this.#view(), 0, n);
    else this.#buf.set(src.subarray(start, end), 0);
    this.#len = n;
  }

  /** Copies the content into `target` at `offset` (which must have room). */
  copyOut(target: Uint8Array, targetView: DataView, offset: number): void {
    const n = this.#len;
    if (n <= WORD_COPY_MAX) copyWords(this.#view(), 0, targetView, offset, n);
    else target.set(this.#buf.subarray(0, n), offset);
  }

  /** Truncates to `len` bytes (used to undo a partial append). */
  truncate(len: number): void {
    if (len < this.#len) this.#len = len;
  }
}

export function byteLengthUtf8(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}
