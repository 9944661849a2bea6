// A channel's outgoing frames, encoded when they are posted. The posted message itself goes
// back to the pool at once, so a channel that cannot write holds bytes (charged to its budget),
// never pool messages. Frames are whole inside a chunk; the writer takes the unsent bytes of
// the head chunk, while posts append to the tail chunk past them.

import { BinaryHeader } from "./binary_header.ts";
import { encodeWithView } from "./codec.ts";
import { dataViewOf } from "./_bytes.ts";
import { Message } from "./message.ts";
import { OpCode } from "./opcode.ts";

/** What one queued message is charged beyond its frame bytes (see docs/reliability.md). */
export const QUEUED_MESSAGE_OVERHEAD = 512;

/**
 * Charged bytes a channel may always queue, even past the engine-wide budget: a channel that
 * queues little is never made to pay for the ones that filled the budget (peers that do not
 * read). The engine-wide total can therefore exceed maxEngineQueuedBytes by at most this much
 * per channel.
 */
export const ENGINE_BUDGET_ALLOWANCE = 64 * 1024;

const HDR = BinaryHeader.byteLength;
const CHUNK_MIN = 1024;
const CHUNK_MAX = 64 * 1024;
// A frame above BIG_FRAME gets a chunk with room for BIG_FRAMES_PER_CHUNK like it: one
// write per 64 KiB frame cost as much as its copy (65,535-byte bodies 1.17x, CPU 0.84x,
// against one frame per chunk; bench/RESULTS.md).
const BIG_FRAME = 16 * 1024;
const BIG_FRAMES_PER_CHUNK = 8;
// Written full-size (or larger) chunks are kept for reuse in one bounded cache shared by
// every lane of this isolate (buffers have no identity): a busy lane otherwise allocates a
// 64 KiB buffer every ~800 small frames, or one per frame of a large body, and the garbage
// (external memory) drove a fifth of the CPU time into the garbage collector.
const SPARES = 64; // at most 64 buffers and SPARE_BYTES per isolate
const SPARE_BYTES = 8 * 1024 * 1024;
const spares: Uint8Array[] = [];
let spareBytes = 0;

export interface Chunk {
  buf: Uint8Array;
  /** A DataView over exactly `buf` (made when `buf` is set). */
  view: DataView;
  /** Bytes filled with whole frames. */
  len: number;
  /** Bytes written (always at a frame boundary). */
  sent: number;
  /** Frames encoded into `buf`, and how many of them were written. */
  frames: number;
  done: number;
  /** `len` and `frames` when the writer last took the chunk (next()). */
  taken: number;
  takenFrames: number;
  /** Where the last marked frame (see isMarked) ends; 0 if none. */
  markedEnd: number;
}

/** A new chunk over `buf`, empty. */
function chunkOf(buf: Uint8Array): Chunk {
  return {
    buf,
    view: dataViewOf(buf),
    len: 0,
    sent: 0,
    frames: 0,
    done: 0,
    taken: 0,
    takenFrames: 0,
    markedEnd: 0,
  };
}

/** Empties `c` (every frame in it was written). */
function empty(c: Chunk): void {
  c.len = c.sent = 0;
  c.frames = c.done = 0;
  c.taken = c.takenFrames = 0;
  c.markedEnd = 0;
}

/**
 * Frames whose writing the channel must see (settle reports them): the HelloRequest and
 * the Byes. Any other run of frames is settled by its counts, without reading them.
 */
function isMarked(op: number): boolean {
  return op === OpCode.HelloRequest || op === OpCode.ByeRequest ||
    op === OpCode.ByeResponse || op === OpCode.ByeSignal;
}

/** The size of the frame starting at `p` in `buf` (read from its header). */
export function frameSizeAt(buf: Uint8Array, p: number): number {
  return HDR + ((buf[p + 12]! << 8) | buf[p + 13]!) +
    ((buf[p + 14]! << 8) | buf[p + 15]!);
}

/** The opcode of the frame starting at `p` in `buf`. */
export function opCodeAt(buf: Uint8Array, p: number): number {
  return buf[p + 2]! & 0x0f;
}

export class SendLane {
  #chunks: Chunk[] = [];
  #head = 0;
  #frames = 0;

  /** Chunks held (written ones included until dropped); for tests. */
  get chunkCount(): number {
    return this.#chunks.length;
  }

  /** Frames queued and not yet written. */
  get frames(): number {
    return this.#frames;
  }

  /**
   * Encodes `m` (of `size` bytes, from its validated header) at the tail.
   * @throws {RangeError} If the message's real size is not `size`; nothing is queued then.
   */
  append(m: Message, size: number): void {
    let tail = this.#chunks[this.#chunks.length - 1];
    if (tail === undefined || tail.buf.length - tail.len < size) {
      if (tail !== undefined && tail.sent === tail.len) {
        // An empty tail is not being written (a write takes unsent bytes): give it a bigger buffer.
        const old = tail.buf;
        tail.buf = this.#alloc(chunkSize(size, old.length));
        tail.view = dataViewOf(tail.buf);
        this.#spare(old);
        empty(tail);
      } else {
        tail = chunkOf(this.#alloc(chunkSize(size, tail?.buf.length ?? 0)));
        this.#chunks.push(tail);
      }
    }
    // Encoded straight into the chunk with the chunk's own DataView (no bounding view: a
    // view and its DataView per frame cost more than the encoding). Room for `size` bytes was made above; a message whose
    // real frame is longer either does not fit (encodeWithView throws) or is caught by
    // the size check, and tail.len does not move, so nothing is queued.
    const n = encodeWithView(m, tail.buf, tail.view, tail.len);
    if (n !== size) {
      throw new RangeError(
        `the message's frame is ${n} bytes, its header says ${size}`,
      );
    }
    tail.buf[tail.len + 2]! &= 0x3f; // internalA and internalB are local flags, never sent
    tail.len += size;
    tail.frames++;
    if (isMarked(opCodeAt(tail.buf, tail.len - size))) tail.markedEnd = tail.len;
    this.#frames++;
  }

  /**
   * The head chunk with unsent bytes, or null when everything was written. The writer
   * takes its bytes from `sent` to `len` (posts may append past them meanwhile).
   */
  next(): Chunk | null {
    while (this.#head < this.#chunks.length) {
      const c = this.#chunks[this.#head]!;
      if (c.sent < c.len) {
        // Written chunks go now, not when the lane runs empty: a sender that keeps the
        // lane busy would otherwise keep every chunk it ever wrote.
        if (this.#head > 0) this.#dropWritten();
        c.taken = c.len;
        c.takenFrames = c.frames;
        return c;
      }
      if (this.#head === this.#chunks.length - 1) break;
      this.#head++;
    }
    this.#compact();
    return null;
  }

  // Drops the chunks before the head (written, their writes completed), keeping spares.
  #dropWritten(): void {
    for (let i = 0; i < this.#head; i++) this.#spare(this.#chunks[i]!.buf);
    this.#chunks.splice(0, this.#head);
    this.#head = 0;
  }

  /**
   * Marks the frames of `c` ending at or before `upTo` as written; a frame cut by `upTo`
   * stays unsent. Calls `marked` with the opcode of each HelloRequest or Bye among them
   * (see isMarked). Returns how many frames were written; their bytes are then in
   * {@linkcode SendLane.settledBytes}. A write of all the bytes the writer took (the
   * common case) is settled by counts, without reading its frames, unless a marked frame
   * is among them.
   */
  settle(c: Chunk, upTo: number, marked: (op: number) => void): number {
    let n = 0;
    const from = c.sent;
    if (upTo === c.taken && c.markedEnd <= c.sent && c.sent < upTo) {
      n = c.takenFrames - c.done;
      c.sent = upTo;
    } else {
      let p = c.sent;
      const buf = c.buf;
      while (p < c.len) {
        const size = frameSizeAt(buf, p);
        if (p + size > upTo) break;
        const op = opCodeAt(buf, p);
        if (isMarked(op)) marked(op);
        n++;
        p += size;
      }
      c.sent = p;
    }
    c.done += n;
    this.#frames -= n;
    this.settledBytes = c.sent - from; // before a compaction empties the chunk
    if (c.sent === c.len && this.#head === this.#chunks.length - 1) this.#compact();
    return n;
  }

  /** The bytes of the frames the last settle() marked as written. */
  settledBytes = 0;

  // Drops written chunks; an empty last chunk is reused unless it grew past CHUNK_MAX.
  #compact(): void {
    const last = this.#chunks[this.#chunks.length - 1];
    if (last === undefined || last.sent < last.len) {
      if (this.#head > 0) this.#dropWritten();
      return;
    }
    for (let i = 0; i < this.#chunks.length - 1; i++) {
      this.#spare(this.#chunks[i]!.buf);
    }
    this.#head = 0;
    if (last.buf.length > CHUNK_MAX) {
      this.#spare(last.buf);
      this.#chunks.length = 0;
    } else {
      empty(last);
      // Kept in place when it is the only chunk: emptying the array and pushing it back
      // reallocated the array at every write of a round trip.
      if (this.#chunks.length > 1) {
        this.#chunks[0] = last;
        this.#chunks.length = 1;
      }
    }
  }

  // A buffer of at least `want` bytes: a spare if one fits.
  #alloc(want: number): Uint8Array {
    const spare = spares[spares.length - 1];
    if (want >= CHUNK_MAX && spare !== undefined && spare.length >= want) {
      spareBytes -= spare.length;
      return spares.pop()!;
    }
    return new Uint8Array(want);
  }

  // Keeps a written chunk's buffer for reuse (its write has completed: chunks before the
  // head, and every chunk once all are written).
  #spare(buf: Uint8Array): void {
    if (
      buf.length >= CHUNK_MAX && spares.length < SPARES &&
      spareBytes + buf.length <= SPARE_BYTES
    ) {
      spareBytes += buf.length;
      spares.push(buf);
    }
  }

  /** Calls `each` with a copy of every unsent frame as a new message, oldest first; empties the lane. */
  drain(each: (m: Message, size: number) => void): void {
    this.drainSome(Infinity, each);
  }

  /**
   * Like {@linkcode drain}, for at most `max` frames: the oldest unsent ones, taken off the
   * lane. Returns how many; the lane is released once it is empty. Only for a closed
   * channel's lane (nothing is written from it any more).
   */
  drainSome(max: number, each: (m: Message, size: number) => void): number {
    let n = 0;
    for (; this.#head < this.#chunks.length; this.#head++) {
      const c = this.#chunks[this.#head]!;
      while (c.sent < c.len) {
        if (n === max) return n;
        const size = frameSizeAt(c.buf, c.sent);
        const m = frameToMessage(c.buf, c.sent, size);
        c.sent += size;
        c.done++;
        this.#frames--;
        n++;
        each(m, size);
      }
    }
    this.release();
    return n;
  }

  /** Drops every buffer. */
  release(): void {
    this.#chunks = [];
    this.#head = 0;
    this.#frames = 0;
  }
}

function chunkSize(size: number, previous: number): number {
  if (size > BIG_FRAME) return Math.max(size * BIG_FRAMES_PER_CHUNK, previous);
  return Math.max(size, Math.min(CHUNK_MAX, Math.max(CHUNK_MIN, previous * 2)));
}

function frameToMessage(buf: Uint8Array, p: number, size: number): Message {
  const m = new Message();
  m.bhdr.decodeFrom(buf, p);
  const thl = m.bhdr.textHeadersLength;
  if (thl > 0) m.headers.setRaw(buf.subarray(p + HDR, p + HDR + thl));
  if (size > HDR + thl) m.body.set(buf.subarray(p + HDR + thl, p + size));
  return m;
}
