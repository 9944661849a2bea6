/**
 * The floor of the message contract: the least work any library that keeps tofu's message
 * model must do per message, written as straight-line code over a raw socket, with nothing
 * else. bench/throughput.ts runs it beside the raw socket and tofu, so a target stated as a
 * fraction of the raw socket can be read against what the model itself costs.
 *
 * Per message, the sender takes a message from a free list, copies the application's body
 * into it (the application's `m.body.set(...)`), gives it an id, encodes the 16-byte binary
 * header and copies the body into the send buffer (`post`), and puts the message back on the
 * free list (written). It writes every 4,096 frames with one awaited write, as the raw sender
 * does. The receiver reads into a 256 KiB buffer, parses each header, takes a message from a
 * free list, fills it in and copies the body into it, queues it, and the application takes
 * each queued message and gives it back (`put`).
 *
 * Left out, each something tofu does: validation of what is posted, ownership of messages,
 * text headers, the channel table, send-queue accounting and its limits, flow control (the
 * raw and floor senders never wait for the receiver), the read share, an async receive
 * queue, reports, and any copy of the header for the caller. Copies are four 32-bit words
 * per step through DataViews, the fastest measured here for 64-byte bodies (scratch
 * variants of this file: byte loops for every copy ran at 0.4x of it; `TypedArray.set` for
 * the two sender-side copies with a byte loop on the receive side, at 0.9x).
 *
 * @module
 */

const HDR = 16;
/** The largest body a floor message holds (the floor runs the 64-byte scenarios only). */
const BODY_MAX = 1024;

/** A message as the floor keeps it: the binary header's fields and a body. */
class FloorMessage {
  channel = 0;
  opCode = 0;
  id = 0;
  length = 0;
  readonly body = new Uint8Array(BODY_MAX);
  readonly view = new DataView(this.body.buffer);
}

/** Copies `n` bytes in 32-bit words, 16 bytes per step, then what is left byte by byte. */
function copy(
  src: DataView,
  from: number,
  dst: DataView,
  to: number,
  n: number,
): void {
  let i = 0;
  for (const blocks = n & ~15; i < blocks; i += 16) {
    dst.setUint32(to + i, src.getUint32(from + i, true), true);
    dst.setUint32(to + i + 4, src.getUint32(from + i + 4, true), true);
    dst.setUint32(to + i + 8, src.getUint32(from + i + 8, true), true);
    dst.setUint32(to + i + 12, src.getUint32(from + i + 12, true), true);
  }
  for (; i < n; i++) dst.setUint8(to + i, src.getUint8(from + i));
}

function freeList(size: number): FloorMessage[] {
  return Array.from({ length: size }, () => new FloorMessage());
}

/**
 * Sends `n` Requests of `bodySize` bytes (at most 1,024) on channel 1, about 320 KB per
 * awaited write (4,096 frames of 64-byte bodies).
 */
export async function floorSend(
  conn: Deno.Conn,
  n: number,
  bodySize: number,
): Promise<void> {
  if (bodySize > BODY_MAX) {
    throw new RangeError(`floor: bodies of at most ${BODY_MAX} bytes`);
  }
  const perWrite = Math.max(1, Math.floor((4096 * 80) / (HDR + bodySize)));
  const free = freeList(4);
  const src = new Uint8Array(bodySize).fill(0x61);
  const srcView = new DataView(src.buffer);
  const out = new Uint8Array(perWrite * (HDR + bodySize));
  const outView = new DataView(out.buffer);
  let id = 0;
  for (let sent = 0; sent < n;) {
    const frames = Math.min(perWrite, n - sent);
    let off = 0;
    for (let i = 0; i < frames; i++) {
      const m = free.pop() ?? new FloorMessage();
      m.channel = 1;
      m.opCode = 4;
      copy(srcView, 0, m.view, 0, bodySize);
      m.length = bodySize;
      m.id = ++id;
      outView.setUint16(off, m.channel);
      outView.setUint8(off + 2, m.opCode);
      outView.setUint8(off + 3, 0);
      outView.setUint32(off + 4, 0);
      outView.setUint32(off + 8, m.id);
      outView.setUint16(off + 12, 0);
      outView.setUint16(off + 14, m.length);
      copy(m.view, 0, outView, off + HDR, m.length);
      off += HDR + m.length;
      free.push(m);
    }
    sent += frames;
    let rest = out.subarray(0, off);
    while (rest.length > 0) rest = rest.subarray(await conn.write(rest));
  }
}

/** Receives `n` frames; resolves with the milliseconds from the first read to the last frame. */
export async function floorReceive(
  conn: Deno.Conn,
  n: number,
): Promise<number> {
  const buf = new Uint8Array(256 * 1024);
  const view = new DataView(buf.buffer);
  const free = freeList(1024);
  const queue: FloorMessage[] = [];
  let start = 0;
  let end = 0;
  let got = 0;
  let t0 = 0;
  while (got < n) {
    if (start > 0 && start === end) start = end = 0;
    if (buf.length - end < 65536 + HDR) {
      buf.copyWithin(0, start, end);
      end -= start;
      start = 0;
    }
    const r = await conn.read(buf.subarray(end));
    if (r === null) throw new Error("floor receiver: EOF");
    if (t0 === 0) t0 = performance.now();
    end += r;
    while (end - start >= HDR) {
      const thl = view.getUint16(start + 12);
      const bl = view.getUint16(start + 14);
      const total = HDR + thl + bl;
      if (end - start < total) break;
      if (bl > BODY_MAX) {
        throw new RangeError(`floor receiver: a body of ${bl} bytes`);
      }
      const m = free.pop() ?? new FloorMessage();
      m.channel = view.getUint16(start);
      m.opCode = view.getUint8(start + 2);
      m.id = view.getUint32(start + 8);
      copy(view, start + HDR + thl, m.view, 0, bl);
      m.length = bl;
      queue.push(m);
      start += total;
    }
    for (let m = queue.shift(); m !== undefined; m = queue.shift()) {
      got++;
      free.push(m);
    }
  }
  return performance.now() - t0;
}
