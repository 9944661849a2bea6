// deno-lint-ignore-file no-console
// Phase-1 measurement of issue #11: which isolate transport carries tofu frames faster?
// One Worker sends one-way 64-byte frames (the codec's byte format) to the main isolate:
//   port: batches of frames in ArrayBuffers transferred over a MessagePort, with credit
//         returned by the receiver (window of in-flight bytes);
//   sab:  a single-producer single-consumer byte ring in a SharedArrayBuffer, both sides
//         waiting with Atomics.waitAsync (never blocking an event loop).
// The receiver walks every frame header (lengths at bytes 12..15) as a decoder would.
//
//   deno run --allow-read bench/isolate_transport.ts [count] [batchBytes]
//
// Prints one line per transport and a JSON line last.

const count = Number(Deno.args[0] ?? 2_000_000);
const batchBytes = Number(Deno.args[1] ?? 64 * 1024);
const windowBytes = 1024 * 1024;
const FRAME = 64;

function worker(): Worker {
  return new Worker(
    new URL("./_isolate_transport_worker.ts", import.meta.url),
    {
      type: "module",
    },
  );
}

// Counts frames in buf[from, to) by their header lengths; returns frames seen.
function walk(view: DataView, from: number, to: number): number {
  let n = 0;
  let off = from;
  while (off + 16 <= to) {
    const len = 16 + view.getUint16(off + 12) + view.getUint16(off + 14);
    off += len;
    n++;
  }
  return n;
}

async function runPort(): Promise<number> {
  const w = worker();
  const { port1, port2 } = new MessageChannel();
  let got = 0;
  const t0 = performance.now();
  const done = new Promise<void>((resolve) => {
    port1.onmessage = (e: MessageEvent<Uint8Array>) => {
      const b = e.data;
      got += walk(
        new DataView(b.buffer, b.byteOffset, b.byteLength),
        0,
        b.length,
      );
      port1.postMessage(b.length);
      if (got >= count) resolve();
    };
  });
  w.postMessage({ mode: "port", count, batchBytes, windowBytes, port: port2 }, [
    port2,
  ]);
  await done;
  const s = (performance.now() - t0) / 1000;
  port1.close();
  w.terminate();
  return count / s;
}

async function runSab(): Promise<number> {
  const w = worker();
  const sab = new SharedArrayBuffer(16 + windowBytes);
  const ctl = new Int32Array(sab, 0, 4);
  const data = new Uint8Array(sab, 16);
  const view = new DataView(sab, 16);
  const cap = data.length;
  const t0 = performance.now();
  w.postMessage({ mode: "sab", count, batchBytes, windowBytes, sab });
  let head = 0;
  let got = 0;
  while (got < count) {
    const tail = Atomics.load(ctl, 1);
    if (tail === head) {
      Atomics.store(ctl, 3, 1);
      const r = Atomics.waitAsync(ctl, 1, tail);
      if (r.async) await r.value;
      Atomics.store(ctl, 3, 0);
      continue;
    }
    while (head < tail) {
      const pos = head % cap;
      if (data[pos] === 0xff) {
        head += cap - pos;
        continue;
      }
      const end = Math.min(pos + (tail - head), cap);
      const n = walk(view, pos, end);
      got += n;
      head += n * FRAME;
    }
    Atomics.store(ctl, 0, head);
    if (Atomics.load(ctl, 2) === 1) Atomics.notify(ctl, 0);
  }
  const s = (performance.now() - t0) / 1000;
  w.terminate();
  return count / s;
}

const port = await runPort();
console.log(
  `MessagePort, transferred ${batchBytes}-byte batches: ${(port / 1e6).toFixed(2)} M msg/s`,
);
const sab = await runSab();
console.log(
  `SharedArrayBuffer ring + Atomics.waitAsync: ${(sab / 1e6).toFixed(2)} M msg/s`,
);
console.log(
  JSON.stringify({
    count,
    batchBytes,
    port_msgs_per_s: Math.round(port),
    sab_msgs_per_s: Math.round(sab),
  }),
);
