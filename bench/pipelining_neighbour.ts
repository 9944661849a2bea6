/**
 * One peer pipelines Requests to `examples/echo_server.ts` at full speed and reads every
 * answer (a busy client, not a hostile one), while 8 good clients each do one round trip
 * every 10 ms. Prints the good clients' round-trip p50/p99/max per second, once with the
 * server run as Deno runs it by default and once with `DENO_TOKIO_EVENT_INTERVAL=1` (the
 * setting examples/echo_server.ts recommends; see docs/reliability.md, "A peer that always
 * has data").
 *
 *   deno run -A bench/pipelining_neighbour.ts [seconds per run] [runs per setting]
 *
 * Every process is a child: the server, the pipelining peer and the good clients.
 *
 * @module
 */

// deno-lint-ignore-file no-console

import { FrameDecoder, Message, OpCode } from "../mod.ts";
import { frame, writeAll } from "./_frames.ts";

const self = new URL(import.meta.url).pathname;
const role = Deno.args[0];

if (role === "--pipeline") {
  // Writes bursts of 256 Requests without waiting and reads (and drops) every answer, for
  // the given seconds; prints how many answers per second it read.
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: Number(Deno.args[1]),
  });
  const one = frame(OpCode.Request, 7, "pipelined");
  const burst = new Uint8Array(one.length * 256);
  for (let i = 0; i < 256; i++) burst.set(one, i * one.length);
  await writeAll(conn, frame(OpCode.HelloRequest, 1));
  const t0 = performance.now();
  const end = t0 + Number(Deno.args[2]) * 1000;
  let bytes = 0;
  const sink = new Uint8Array(65536);
  const reading = (async () => {
    for (;;) {
      const n = await conn.read(sink).catch(() => null);
      if (n === null) return;
      bytes += n;
    }
  })();
  while (performance.now() < end) await writeAll(conn, burst);
  const answers = bytes / one.length;
  conn.close();
  await reading;
  console.log(
    JSON.stringify({
      answersPerSec: answers / ((performance.now() - t0) / 1000),
    }),
  );
} else if (role === "--good") {
  // 8 clients, each a round trip every 10 ms; one JSON line of figures per second.
  const port = Number(Deno.args[1]);
  const seconds = Number(Deno.args[2]);
  let rtts: number[] = [];
  const end = performance.now() + seconds * 1000 + 1500;
  const client = async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const dec = new FrameDecoder();
    const m = new Message();
    const next = async () => {
      while (!dec.hasFrame()) {
        const n = await conn.read(dec.writable());
        if (n === null) throw new Error("closed");
        dec.commit(n);
      }
      dec.next(m);
    };
    await writeAll(conn, frame(OpCode.HelloRequest, 1));
    await next();
    const req = frame(OpCode.Request, 2, "g".repeat(100));
    while (performance.now() < end) {
      const t0 = performance.now();
      await writeAll(conn, req);
      await next();
      rtts.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 10));
    }
    conn.close();
  };
  const clients = Array.from({ length: 8 }, client);
  // The first 1.5 s are quiet (the parent starts the pipelining peer after 1 s).
  await new Promise((r) => setTimeout(r, 1500));
  rtts = [];
  for (let s = 0; s < seconds; s++) {
    await new Promise((r) => setTimeout(r, 1000));
    const sorted = rtts.sort((a, b) => a - b);
    rtts = [];
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
    console.log(
      JSON.stringify({
        n: sorted.length,
        p50: at(0.5),
        p99: at(0.99),
        max: at(1),
      }),
    );
  }
  await Promise.all(clients);
} else {
  const seconds = Number(Deno.args[0] ?? 5);
  const runs = Number(Deno.args[1] ?? 2);
  const server = new URL("../examples/echo_server.ts", import.meta.url).pathname;
  for (let run = 0; run < runs; run++) {
    for (const env of [{}, { DENO_TOKIO_EVENT_INTERVAL: "1" }]) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-net=127.0.0.1", server, "tcp|127.0.0.1|0"],
        env,
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const lines = child.stdout.pipeThrough(new TextDecoderStream())
        .getReader();
      let text = "";
      while (!text.includes("\n")) text += (await lines.read()).value ?? "";
      const port = text.split("\n")[0]!.split("|")[2]!;
      const good = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-net=127.0.0.1",
          self,
          "--good",
          port,
          String(seconds),
        ],
        stdout: "piped",
      }).output();
      await new Promise((r) => setTimeout(r, 1000));
      const pipeline = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-net=127.0.0.1",
          self,
          "--pipeline",
          port,
          String(seconds + 0.5),
        ],
        stdout: "piped",
        stderr: "null",
      }).output();
      const out = new TextDecoder().decode((await good).stdout).trim().split(
        "\n",
      );
      const piped = JSON.parse(
        new TextDecoder().decode((await pipeline).stdout),
      );
      child.kill("SIGINT");
      await child.status;
      const f = (x: number) => x.toFixed(1).padStart(6);
      const seconds_ = out.map((l) => JSON.parse(l)).map((w) =>
        `n ${String(w.n).padStart(4)} p50 ${f(w.p50)} p99 ${f(w.p99)} max ${f(w.max)}`
      );
      const name = "DENO_TOKIO_EVENT_INTERVAL" in env ? "event interval 1 " : "Deno's default   ";
      for (const s of seconds_) console.log(`run ${run + 1}, ${name}: ${s} ms`);
      console.log(
        `run ${run + 1}, ${name}: the pipelining peer got ${
          Math.round(piped.answersPerSec)
        } answers/s`,
      );
    }
  }
}
