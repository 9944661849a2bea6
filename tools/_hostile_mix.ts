// The hostile mix of tools/soak.ts: examples/echo_server.ts runs as a child process under
// a low file descriptor limit (`ulimit -n`), attacked from this process by
// - non-reading peers: send a HelloRequest and Requests and never read the answers;
// - stalled frames: send a HelloRequest and half a frame, then nothing;
// - silent peers: connect and send nothing;
// - connect storms: bursts of clients that send Hello+Request and leave at once;
// while good clients (tools/_good_clients.ts: one engine, persistent channels) do
// request/response round trips whose latency is recorded. Every attacker is bounded in count
// and lifetime. The good clients run in a process of their own (spawned here), so the
// attackers' work in this event loop does not delay their reads and timestamps;
// `goodInMix: true` runs them in this process instead, as before.
//
// tools/soak.ts runs this file as its own process (so that the load scenario, which keeps
// the soak's event loop busy, does not inflate the good clients' latency): it takes its
// options as JSON in Deno.args[0], prints a JSON snapshot line every 2 s, and stops
// (server child included) when its stdin closes.

// deno-lint-ignore-file no-console

import { encodeFrame, Engine, OpCode } from "../mod.ts";
import { GoodClients, type GoodFigures, spawnGoodClients } from "./_good_clients.ts";

export interface HostileOptions {
  /** `ulimit -n` of the server child. */
  fdLimit: number;
  goodClients: number;
  nonReaders: number;
  stalled: number;
  silent: number;
  /** Clients per connect storm (one storm every 2 s). */
  storm: number;
  /** Runs the good clients in this process rather than in one of their own (default false). */
  goodInMix?: boolean;
  /**
   * Runs the server with Deno's default tokio event interval (61) rather than the 1 that
   * examples/echo_server.ts recommends for a server (default false; see docs/reliability.md).
   */
  tokioDefault?: boolean;
  /**
   * Seconds the server serves the good clients alone before the first attacker arrives
   * (default 0); their figures from that time are dropped, so every window reported is one
   * under attack. A measurement of a server that has been running, not of a cold start.
   */
  warmUpSeconds?: number;
}

export interface HostileSnapshot {
  roundTrips: number;
  p50: number;
  p99: number;
  max: number;
  /** Good round trips that failed (channel closed, no answer within 10 s). */
  failures: number;
  attackers: number;
  serverRss: number;
  /** Reports the server printed since the last snapshot, by status (accept_failed, ...). */
  serverReports: Record<string, number>;
  /**
   * Set once the server child has ended while attacked (how, and its other stderr lines), or
   * once the good clients' own process has ended early: either ends the run as a failure.
   */
  serverDied: string | null;
}

function frame(op: number, body = "", id = 1n): Uint8Array {
  const engine = new Engine({ initialPoolMsgs: 1 });
  const m = engine.get("always")!;
  m.bhdr.opCode = op;
  m.bhdr.messageId = id;
  if (body) m.body.set(body);
  return encodeFrame(m);
}

const HELLO = frame(OpCode.HelloRequest);
const REQUEST = frame(OpCode.Request, "attack", 2n);
const HALF = frame(OpCode.Request, "x".repeat(4000), 3n).subarray(0, 100);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

export class HostileMix {
  readonly #o: HostileOptions;
  #child: Deno.ChildProcess | null = null;
  #port = 0;
  #running = true;
  #tasks: Promise<void>[] = [];
  #drain: Promise<void> = Promise.resolve();
  #drainErrors: Promise<void> = Promise.resolve();
  #reports: Record<string, number> = {};
  /** The server's stderr lines that are not reports (a panic message, ...). */
  #otherStderr: string[] = [];
  #serverDied: string | null = null;
  #attackers = 0;
  #good: {
    take(): GoodFigures | Promise<GoodFigures>;
    died?: () => string | null;
    stop(): Promise<void>;
  } | null = null;

  constructor(o: HostileOptions) {
    this.#o = o;
  }

  async start(): Promise<void> {
    const server = new URL("../examples/echo_server.ts", import.meta.url).pathname;
    this.#child = new Deno.Command("bash", {
      args: [
        "-c",
        // --allow-read=/dev/null lets the listener keep its reserve descriptor.
        `ulimit -n ${this.#o.fdLimit} && exec deno run --allow-net=127.0.0.1 --allow-read=/dev/null "$0" tcp\\|127.0.0.1\\|0`,
        server,
      ],
      // As examples/echo_server.ts recommends: look for socket events after every turn of
      // the event loop, not every 61st (a peer that always has data delays the others).
      env: this.#o.tokioDefault ? {} : { DENO_TOKIO_EVENT_INTERVAL: "1" },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // The server prints one line per engine report that is not a plain close
    // (`channel 123: accept_failed`); count them by status.
    const errors = this.#child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    this.#drainErrors = (async () => {
      let rest = "";
      for (;;) {
        const { value, done } = await errors.read();
        if (done) return;
        const parts = (rest + value).split("\n");
        rest = parts.pop()!;
        for (const line of parts) {
          // "channel N: status", or "channel N: status xCOUNT" for answers handed back.
          const report = /^channel \d+: (\w+)(?: x(\d+))?$/.exec(line);
          if (report === null) {
            if (line.trim() !== "" && this.#otherStderr.length < 40) this.#otherStderr.push(line);
            continue;
          }
          const status = report[1]!;
          this.#reports[status] = (this.#reports[status] ?? 0) + Number(report[2] ?? 1);
        }
      }
    })();
    const reader = this.#child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("Cannot start the hostile mix: the echo server ended");
      text += value;
    }
    this.#port = Number(text.split("\n")[0]!.split("|")[2]);
    // The server must outlive the attack: an exit before stop() is a failure of the run.
    this.#child.status.then(async (st) => {
      if (!this.#running) return;
      await this.#drainErrors;
      const panic = this.#otherStderr.find((l) => l.includes("panicked at"));
      this.#serverDied = `the echo server died (exit code ${st.code}${
        st.signal ? `, ${st.signal}` : ""
      })${panic ? `: ${panic.trim()}` : ""}; its stderr: ${this.#otherStderr.join(" / ")}`;
    });
    // Keep draining its stdout so it never blocks on a full pipe.
    this.#drain = (async () => {
      while (!(await reader.read()).done);
    })();
    const o = this.#o;
    const good = { port: this.#port, goodClients: o.goodClients };
    if (o.goodInMix) {
      const inMix = new GoodClients(good);
      inMix.start();
      this.#good = inMix;
    } else {
      this.#good = await spawnGoodClients(good);
    }
    if ((o.warmUpSeconds ?? 0) > 0) {
      await sleep(o.warmUpSeconds! * 1000);
      await this.#good.take(); // the warm-up's figures are not reported
      this.#takeReports();
    }
    for (let i = 0; i < o.nonReaders; i++) this.#tasks.push(this.#loop(() => this.#nonReader()));
    for (let i = 0; i < o.stalled; i++) this.#tasks.push(this.#loop(() => this.#hold(HALF)));
    for (let i = 0; i < o.silent; i++) this.#tasks.push(this.#loop(() => this.#hold(null)));
    this.#tasks.push(this.#loop(() => this.#storm()));
  }

  /** Figures since the last snapshot. */
  async snapshot(): Promise<HostileSnapshot> {
    const good = await this.#good!.take();
    let serverRss = 0;
    try {
      // /proc/<pid> needs --allow-all in Deno; ps needs only --allow-run=ps.
      const out = new Deno.Command("ps", { args: ["-o", "rss=", "-p", String(this.#child!.pid)] })
        .outputSync();
      serverRss = Number(new TextDecoder().decode(out.stdout).trim()) * 1024 || 0;
    } catch {
      // No ps, or the child is gone.
    }
    return {
      ...good,
      attackers: this.#attackers,
      serverRss,
      serverReports: this.#takeReports(),
      serverDied: this.#serverDied ?? this.#good!.died?.() ?? null,
    };
  }

  #takeReports(): Record<string, number> {
    const r = this.#reports;
    this.#reports = {};
    return r;
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#tasks);
    await this.#good?.stop();
    try {
      this.#child?.kill("SIGINT");
    } catch {
      // Gone already.
    }
    await this.#child?.status;
    await this.#drain;
    await this.#drainErrors;
  }

  async #loop(attack: () => Promise<void>): Promise<void> {
    while (this.#running) {
      await attack().catch(() => {});
      await sleep(50);
    }
  }

  /** Connects, giving up after 2 s (a storm fills the server's backlog; connects then hang). */
  async #connect(): Promise<Deno.Conn> {
    const pending = Deno.connect({ hostname: "127.0.0.1", port: this.#port });
    const conn = await Promise.race([pending, sleep(2000).then(() => null)]);
    if (conn !== null) return conn;
    pending.then((late) => late.close(), () => {});
    throw new Error("Cannot connect: no answer within 2 s");
  }

  /** Sends requests for up to 10 s and never reads. */
  async #nonReader(): Promise<void> {
    const conn = await this.#connect();
    this.#attackers++;
    try {
      await writeAll(conn, HELLO);
      const burst = new Uint8Array(REQUEST.length * 256);
      for (let i = 0; i < 256; i++) burst.set(REQUEST, i * REQUEST.length);
      // One write at a time (concurrent writes could interleave and corrupt frames); once
      // the server stops reading us, the write hangs and we stay until the time is up.
      const end = performance.now() + 10_000;
      let pending: Promise<void> | null = null;
      let broken = false;
      while (this.#running && !broken && performance.now() < end) {
        pending ??= writeAll(conn, burst).then(
          () => void (pending = null),
          () => void (broken = true),
        );
        await Promise.race([pending, sleep(500)]);
      }
    } finally {
      this.#attackers--;
      conn.close();
    }
  }

  /** Sends `bytes` after a HelloRequest (or nothing at all) and holds the socket for 10 s. */
  async #hold(bytes: Uint8Array | null): Promise<void> {
    const conn = await this.#connect();
    this.#attackers++;
    try {
      if (bytes !== null) await writeAll(conn, new Uint8Array([...HELLO, ...bytes]));
      for (let t = 0; t < 20 && this.#running; t++) await sleep(500);
    } finally {
      this.#attackers--;
      conn.close();
    }
  }

  /** A burst of clients that send Hello+Request and leave at once; then a 2 s pause. */
  async #storm(): Promise<void> {
    const both = new Uint8Array([...HELLO, ...REQUEST]);
    await Promise.all(Array.from({ length: this.#o.storm }, async () => {
      const conn = await this.#connect().catch(() => null);
      if (conn === null) return;
      await writeAll(conn, both).catch(() => {});
      conn.close();
    }));
    for (let t = 0; t < 4 && this.#running; t++) await sleep(500);
  }
}

if (import.meta.main) {
  const mix = new HostileMix(JSON.parse(Deno.args[0] ?? "{}"));
  await mix.start();
  console.log(JSON.stringify({ started: true }));
  // One snapshot every 2 s (the good clients' figures may come from their own process).
  let taking: Promise<void> | null = null;
  const timer = setInterval(() => {
    taking ??= mix.snapshot().then((s) => {
      console.log(JSON.stringify(s));
      taking = null;
    });
  }, 2000);
  // Runs until the parent closes stdin.
  for await (const _ of Deno.stdin.readable);
  clearInterval(timer);
  await taking;
  await mix.stop();
}
