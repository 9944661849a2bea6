// deno-lint-ignore-file no-console
// Run by tests/redial_memory_test.ts with --v8-flags=--expose-gc: a client channel that
// keeps dialling a peer that is not there must not hold more memory with every attempt.
// Deno.args: the transport (`tcp` or `uds`) and the path that dials:
// - `open`: connect() to an address nobody listens on, re-dialling (1 ms pauses) within
//   one long handshake deadline;
// - `redial`: a connected channel whose listener closed, re-dialling after the drop;
// - `waiting`: a dropped channel that waits a minute between re-dials while request() and
//   send() are called on it again and again, each giving up after 1 ms (the attempts);
// - `full`: a channel to a peer that never reads, full, while send() is called on it again
//   and again, each giving up after 1 ms waiting for room (the attempts).
// The attempts are counted at setTimeout (the only timers of 1 ms or less here: the pauses,
// or the deadlines of `waiting`; Deno clamps a nested timer to 4 ms, so an attempt takes
// about 4.5 ms). After WARM_UP attempts it collects garbage and reads the heap, again after
// MEASURED more; prints the growth per attempt in bytes (JSON: {"attempts", "bytesPerAttempt"}).

const timers = globalThis as unknown as { setTimeout(fn: () => void, ms?: number): number };
const realSetTimeout = timers.setTimeout;
let pauses = 0;
let wanted = Infinity;
let reached: () => void = () => {};
timers.setTimeout = (fn: () => void, ms?: number) => {
  if (ms !== undefined && ms > 0 && ms <= 1 && ++pauses === wanted) reached();
  return realSetTimeout(fn, ms);
};

const { connect, Engine, listen, OpCode } = await import("../mod.ts");
const { transports, writeAll } = await import("./_fixtures.ts");
const { rawListen } = await import("./_raw_peer.ts");
const { frame } = await import("./_attack.ts");

const WARM_UP = 1000;
const MEASURED = 1000;
const t = transports.find((x) => x.name === Deno.args[0])!;
const path = Deno.args[1];
const gc = (globalThis as unknown as { gc(): void }).gc;

function attempts(n: number): Promise<void> {
  return new Promise((r) => {
    wanted = pauses + n;
    reached = r;
  });
}

async function heapUsed(): Promise<number> {
  await new Promise<void>((r) => realSetTimeout(r, 0));
  gc();
  gc();
  return Deno.memoryUsage().heapUsed;
}

const reconnect = { initialDelayMs: 1, maxDelayMs: 1 };
const ac = new AbortController();
let done: Promise<unknown>;
if (path === "open") {
  done = connect(t.nobody().toString(), { reconnect, timeoutMs: 600_000, signal: ac.signal })
    .then(() => {
      throw new Error("Cannot run the child: the address nobody listens on answered");
    }, (e) => e);
} else if (path === "full") {
  const { listener, bound } = rawListen(t);
  const accepted = (async () => {
    const conn = await listener.accept();
    await conn.read(new Uint8Array(4096)); // the HelloRequest; nothing is read after it
    await writeAll(conn, frame(OpCode.HelloResponse));
    return conn;
  })();
  const engine = new Engine({ maxQueuedBytes: 1 << 20 });
  const ch = await connect(bound, { engine });
  const conn = await accepted;
  const big = new Uint8Array(60_000);
  while (await ch.send(big, { timeoutMs: 200 }).then(() => true, () => false));
  const sending = (async () => {
    while (!ac.signal.aborted) {
      const err = await ch.send("ping", { timeoutMs: 1 }).then(() => null, (e: Error) => e);
      if (!err?.message.includes("no answer within 1 ms")) {
        throw new Error(`Cannot run the child: a send on the full channel gave ${err}`);
      }
    }
  })();
  done = new Promise<void>((r) => {
    ac.signal.addEventListener("abort", async () => {
      await sending;
      conn.close();
      listener.close();
      await ch.close();
      await engine.close();
      r();
    });
  });
} else {
  const l = await listen(t.listenAt().toString());
  const ch = await connect(l.addresses[0]!, {
    reconnect: path === "redial" ? reconnect : { initialDelayMs: 60_000, maxDelayMs: 60_000 },
  });
  await l.close();
  let waiting = Promise.resolve();
  if (path === "waiting") {
    // The drop is seen once the channel's read ends; then every call waits for it to open.
    await new Promise<void>((r) => realSetTimeout(r, 200));
    waiting = (async () => {
      for (let i = 0; !ac.signal.aborted; i++) {
        const call = i % 2 === 0 ? ch.request("ping", { timeoutMs: 1 }) : ch.send("ping", {
          timeoutMs: 1,
        });
        const err = await call.then(() => null, (e: Error) => e);
        if (!err?.message.includes("no answer within 1 ms")) {
          throw new Error(`Cannot run the child: a call on the dropped channel gave ${err}`);
        }
      }
    })();
  }
  done = new Promise<void>((r) => {
    ac.signal.addEventListener("abort", () => waiting.then(() => ch.close()).then(() => r()));
  });
}
await attempts(WARM_UP);
const before = await heapUsed();
await attempts(MEASURED);
const after = await heapUsed();
ac.abort();
await done;
console.log(JSON.stringify({ attempts: MEASURED, bytesPerAttempt: (after - before) / MEASURED }));
