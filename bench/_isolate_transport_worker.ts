// The Worker side of bench/isolate_transport.ts: sends one-way 64-byte frames to the main
// isolate over the transport named in the first message, as fast as the transport lets it.

import { encodeFrame, Message } from "../mod.ts";

interface Start {
  mode: "port" | "sab";
  count: number;
  batchBytes: number;
  windowBytes: number;
  port?: MessagePort;
  sab?: SharedArrayBuffer;
}

// One 64-byte frame in the codec's byte format: 16-byte binary header, 48-byte body.
function frame(): Uint8Array {
  const m = new Message();
  m.bhdr.channelNumber = 1;
  m.body.set(new Uint8Array(48).fill(0x61));
  return encodeFrame(m);
}

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<Start>) => void) | null;
};
scope.onmessage = async (e: MessageEvent<Start>) => {
  const s = e.data;
  const f = frame();
  if (s.mode === "port") await sendPort(s, f);
  else await sendSab(s, f);
};

// Batches of frames in transferred ArrayBuffers; the receiver returns credit (bytes it has
// consumed) so that at most windowBytes are in flight.
async function sendPort(s: Start, f: Uint8Array): Promise<void> {
  const port = s.port!;
  let inFlight = 0;
  let wake: (() => void) | null = null;
  port.onmessage = (e: MessageEvent<number>) => {
    inFlight -= e.data;
    wake?.();
    wake = null;
  };
  const perBatch = Math.floor(s.batchBytes / f.length);
  let sent = 0;
  while (sent < s.count) {
    while (inFlight + s.batchBytes > s.windowBytes) {
      await new Promise<void>((r) => wake = r);
    }
    const n = Math.min(perBatch, s.count - sent);
    const buf = new Uint8Array(n * f.length);
    for (let i = 0; i < n; i++) buf.set(f, i * f.length);
    port.postMessage(buf, [buf.buffer]);
    inFlight += buf.length;
    sent += n;
  }
}

// A single-producer single-consumer byte ring in a SharedArrayBuffer: a control block of
// four Int32 (head, tail, writer-waiting, reader-waiting) then the data. Frames never wrap:
// a frame that does not fit before the end is preceded by a skip marker.
async function sendSab(s: Start, f: Uint8Array): Promise<void> {
  const sab = s.sab!;
  const ctl = new Int32Array(sab, 0, 4);
  const data = new Uint8Array(sab, 16);
  const cap = data.length;
  const perBatch = Math.floor(s.batchBytes / f.length);
  let sent = 0;
  let tail = 0; // bytes written, monotonic modulo 2^31 wrap is avoided by the bench's size
  while (sent < s.count) {
    const n = Math.min(perBatch, s.count - sent);
    const need = n * f.length;
    for (;;) {
      const head = Atomics.load(ctl, 0);
      const used = tail - head;
      const pos = tail % cap;
      const room = cap - used;
      const contiguous = cap - pos;
      const skip = contiguous < need ? contiguous : 0;
      if (room >= need + skip) {
        if (skip > 0) {
          // The reader sees a header-less gap: a 0xff byte marks "skip to the ring's start".
          data[pos] = 0xff;
          tail += skip;
        }
        const p = tail % cap;
        for (let i = 0; i < n; i++) data.set(f, p + i * f.length);
        tail += need;
        Atomics.store(ctl, 1, tail);
        if (Atomics.load(ctl, 3) === 1) Atomics.notify(ctl, 1);
        break;
      }
      Atomics.store(ctl, 2, 1);
      const r = Atomics.waitAsync(ctl, 0, head);
      if (r.async) await r.value;
      Atomics.store(ctl, 2, 0);
    }
    sent += n;
  }
}
