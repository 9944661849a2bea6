// The good clients of the soak's hostile mix (tools/_hostile_mix.ts): one engine with
// persistent channels to the attacked echo server, each doing request/response round trips
// one at a time and recording their latency.
//
// By default the mix runs this file as a process of its own, so that the attackers' work
// in the mix's event loop (non-readers writing at full speed, connect storms) does not delay
// the good clients' reads and timestamps: in a real deployment attackers and good clients
// are different machines. It takes `{ port, goodClients }` as JSON in Deno.args[0], prints
// `{"started":true}` once running, then answers each line it reads on stdin with a JSON line
// of the figures since the previous one (GoodFigures), and stops when its stdin closes.
// `--good-in-mix` (tools/soak.ts) runs the same class inside the mix's process instead.

// deno-lint-ignore-file no-console

import { Engine, type Message, OpCode, Status, TcpClientAddress } from "../mod.ts";

export interface GoodOptions {
  /** The echo server's TCP port on 127.0.0.1. */
  port: number;
  goodClients: number;
}

/** The good clients' figures over one window. */
export interface GoodFigures {
  roundTrips: number;
  p50: number;
  p99: number;
  max: number;
  /** Good round trips that failed (channel closed, no answer within 10 s). */
  failures: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

export class GoodClients {
  readonly #o: GoodOptions;
  #running = true;
  #tasks: Promise<void>[] = [];
  #rtts: number[] = [];
  #failures = 0;
  #engine = new Engine({ initialPoolMsgs: 64, maxPoolMsgs: 256 });

  constructor(o: GoodOptions) {
    this.#o = o;
  }

  start(): void {
    for (let i = 0; i < this.#o.goodClients; i++) this.#tasks.push(this.#good(i));
  }

  /** Figures since the last call. */
  take(): GoodFigures {
    const sorted = this.#rtts.sort((a, b) => a - b);
    this.#rtts = [];
    const failures = this.#failures;
    this.#failures = 0;
    return {
      roundTrips: sorted.length,
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      max: sorted.at(-1) ?? 0,
      failures,
    };
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#tasks);
    await this.#engine.close();
  }

  /** A good client: round trips one at a time; reconnects if its channel closes. */
  async #good(i: number): Promise<void> {
    const engine = this.#engine;
    const take = async (group: ReturnType<Engine["create"]>, want: (m: Message) => boolean) => {
      for (;;) {
        const m = await group.waitReceive(10_000);
        if (m === null) return false;
        const closed = m.isFromEngine() && m.bhdr.opCode === OpCode.Signal &&
          m.bhdr.status === Status.channelClosed;
        const ok = !m.isFromEngine() && want(m);
        engine.put(m);
        if (ok) return true;
        if (closed || m.isFromEngine()) return false;
      }
    };
    while (this.#running) {
      const group = engine.create();
      try {
        const hello = new TcpClientAddress("127.0.0.1", this.#o.port).format(
          engine.get("always")!,
        );
        hello.headers.append("good", String(i));
        const { channelNumber } = group.post(hello);
        if (!await take(group, (m) => m.bhdr.opCode === OpCode.HelloResponse)) {
          this.#failures++;
          continue;
        }
        while (this.#running) {
          const req = engine.get("always")!;
          req.bhdr.channelNumber = channelNumber;
          req.bhdr.opCode = OpCode.Request;
          req.body.set(`good ${i} ${"g".repeat(100)}`);
          const t0 = performance.now();
          const { messageId } = group.post(req);
          const answered = await take(
            group,
            (m) => m.bhdr.opCode === OpCode.Response && m.bhdr.messageId === messageId,
          );
          if (!answered) {
            this.#failures++;
            break;
          }
          this.#rtts.push(performance.now() - t0);
          await sleep(10);
        }
      } catch {
        this.#failures++;
      } finally {
        await engine.destroy(group);
      }
      if (this.#running) await sleep(100); // only after a failure: reconnect gently
    }
  }
}

/**
 * Runs this file as a child process; `take()` asks it for the figures since the last call.
 * The child's clients start before this resolves.
 */
export async function spawnGoodClients(o: GoodOptions): Promise<{
  take(): Promise<GoodFigures>;
  /** Set once the process has ended before stop(): how. */
  died(): string | null;
  stop(): Promise<void>;
}> {
  const child = new Deno.Command("deno", {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      new URL(import.meta.url).pathname,
      JSON.stringify(o),
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const writer = child.stdin.getWriter();
  const waiting: ((f: GoodFigures) => void)[] = [];
  let stopping = false;
  let died: string | null = null;
  child.status.then((st) => {
    if (!stopping) {
      died = `the good clients' process ended (exit code ${st.code}${
        st.signal ? `, ${st.signal}` : ""
      })`;
    }
  });
  let started!: () => void;
  let failed!: (e: Error) => void;
  const ready = new Promise<void>((ok, fail) => {
    started = ok;
    failed = fail;
  });
  const reading = (async () => {
    let rest = "";
    for (;;) {
      const { value, done } = await lines.read();
      if (done) break;
      const parts = (rest + value).split("\n");
      rest = parts.pop()!;
      for (const line of parts) {
        const j = JSON.parse(line);
        if (j.started) started();
        else waiting.shift()?.(j);
      }
    }
    failed(new Error("Cannot start the good clients: their process ended"));
    // The process is gone: answer any figures still asked for with an empty window.
    for (const w of waiting.splice(0)) {
      w({ roundTrips: 0, p50: 0, p99: 0, max: 0, failures: 0 });
    }
  })();
  await ready;
  const encoder = new TextEncoder();
  return {
    take(): Promise<GoodFigures> {
      const answer = new Promise<GoodFigures>((r) => waiting.push(r));
      writer.write(encoder.encode("take\n")).catch(() => {
        for (const w of waiting.splice(0)) {
          w({ roundTrips: 0, p50: 0, p99: 0, max: 0, failures: 0 });
        }
      });
      return answer;
    },
    died: () => died,
    async stop(): Promise<void> {
      stopping = true;
      await writer.close().catch(() => {});
      await reading;
      await child.status;
    },
  };
}

if (import.meta.main) {
  const good = new GoodClients(JSON.parse(Deno.args[0] ?? "{}"));
  good.start();
  console.log(JSON.stringify({ started: true }));
  // One line of figures per line asked; runs until the parent closes stdin.
  for await (const chunk of Deno.stdin.readable) {
    for (const byte of chunk) if (byte === 10) console.log(JSON.stringify(good.take()));
  }
  await good.stop();
}
