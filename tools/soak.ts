/**
 * Soak test: runs the accounting scenario of tools/_load_scenario.ts again and again
 * for a given time, alternating TCP and Unix sockets, with many channels per cycle.
 * After each cycle it checks the invariant and prints resident memory, so a leak or
 * a lost message shows up as a trend or a failure. Not part of CI.
 *
 *   deno task soak                 # 60 s, 50 channels per cycle
 *   deno task soak --seconds 600 --clients 100 --messages 2000
 *
 * Beside it runs a hostile mix (tools/_hostile_mix.ts): examples/echo_server.ts in a child
 * process under `ulimit -n` (default 128), attacked by non-reading peers, stalled frames,
 * silent peers and connect storms, while good clients do round trips; after each cycle
 * the good clients' round-trip p50/p99/max, failures and the server's RSS are printed.
 * The good clients (tools/_good_clients.ts) run in a process of their own, so that the
 * attackers' work does not delay their reads and timestamps (attackers and good clients
 * are different machines in a real deployment); `--good-in-mix` runs them in the mix's
 * process instead, as before, for comparison. `--no-hostile` runs the load alone.
 * The server runs with `DENO_TOKIO_EVENT_INTERVAL=1`, as examples/echo_server.ts recommends;
 * `--tokio-default` runs it with Deno's default. `--warm-up S` lets the good clients alone use
 * the server for S seconds before the first attacker (those seconds are not reported).
 *
 *   deno task soak --seconds 240 --fd-limit 128 --storm 200
 *
 * Exits with status 1 at the first cycle whose invariant fails.
 *
 * @module
 */

// deno-lint-ignore-file no-console

import { TcpClientAddress, TcpServerAddress, UdsClientAddress, UdsServerAddress } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";
import { runLoad } from "./_load_scenario.ts";
import type { HostileOptions, HostileSnapshot } from "./_hostile_mix.ts";

/** Runs tools/_hostile_mix.ts as its own process; snapshots arrive every 2 s. */
async function startHostile(o: HostileOptions) {
  const child = new Deno.Command("deno", {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-run=bash,deno,ps",
      "--allow-read",
      new URL("./_hostile_mix.ts", import.meta.url).pathname,
      JSON.stringify(o),
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let snaps: HostileSnapshot[] = [];
  let rest = "";
  let started!: () => void;
  const ready = new Promise<void>((r) => started = r);
  const reading = (async () => {
    for (;;) {
      const { value, done } = await lines.read();
      if (done) return;
      rest += value;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      for (const line of parts) {
        const j = JSON.parse(line);
        if (j.started) started();
        else snaps.push(j);
      }
    }
  })();
  await ready;
  return {
    take(): HostileSnapshot[] {
      const out = snaps;
      snaps = [];
      return out;
    },
    async stop(): Promise<void> {
      await child.stdin.close();
      await reading;
      await child.status;
    },
  };
}

function arg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}

const seconds = arg("seconds", 60);
const clients = arg("clients", 50);
const messages = arg("messages", 2000);
const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;

console.log(`soak: ${seconds} s, ${clients} channels x ${messages} messages per cycle`);
const hostile = Deno.args.includes("--no-hostile") ? null : await startHostile({
  fdLimit: arg("fd-limit", 128),
  goodClients: arg("good", 8),
  nonReaders: arg("non-readers", 4),
  stalled: arg("stalled", 20),
  silent: arg("silent", 20),
  storm: arg("storm", 200),
  goodInMix: Deno.args.includes("--good-in-mix"),
  tokioDefault: Deno.args.includes("--tokio-default"),
  warmUpSeconds: arg("warm-up", 0),
});
if (hostile) {
  console.log(
    "hostile mix: echo server child under ulimit -n, attacked; good clients measured " +
      (Deno.args.includes("--good-in-mix") ? "in the mix's process" : "in their own process") +
      "; server with " +
      (Deno.args.includes("--tokio-default")
        ? "Deno's default tokio event interval (61)"
        : "DENO_TOKIO_EVENT_INTERVAL=1") +
      (arg("warm-up", 0) > 0
        ? `; attackers after ${arg("warm-up", 0)} s of good clients alone (not reported)`
        : ""),
  );
}
const p99s: number[] = [];
let goodTrips = 0;
let goodFailures = 0;
const end = performance.now() + seconds * 1000;
let cycle = 0;
let total = 0;
let lost = 0;
let back = 0;
const rss: number[] = [];
while (performance.now() < end) {
  const uds = cycle % 2 === 1;
  const report = await runLoad({
    clients,
    messagesPerClient: messages,
    seed: 1000 + cycle,
    listenAt: uds
      ? () => new UdsServerAddress(tempUdsPath())
      : () => new TcpServerAddress("127.0.0.1", 0),
    connectTo: (bound) => uds ? UdsClientAddress.parse(bound) : TcpClientAddress.parse(bound),
  });
  cycle++;
  total += report.messages;
  lost += report.lostInFlight;
  back += report.handedBack;
  rss.push(Deno.memoryUsage().rss);
  console.log(
    `cycle ${cycle} (${uds ? "uds" : "tcp"}): ${report.messages} messages in ` +
      `${report.ms.toFixed(0)} ms, ${report.handedBack} handed back, ` +
      `${report.lostInFlight} lost in flight on aborted channels, rss ${mib(rss.at(-1)!)}`,
  );
  const snaps = hostile?.take() ?? [];
  if (snaps.length > 0) {
    const trips = snaps.reduce((a, h) => a + h.roundTrips, 0);
    const failures = snaps.reduce((a, h) => a + h.failures, 0);
    const p99 = Math.max(0, ...snaps.map((h) => h.p99));
    const max = Math.max(0, ...snaps.map((h) => h.max));
    for (const h of snaps) p99s.push(h.p99);
    const windows = snaps.map((h) => h.p99.toFixed(1)).join(" ");
    goodTrips += trips;
    goodFailures += failures;
    const last = snaps.at(-1);
    const reports: Record<string, number> = {};
    for (const h of snaps) {
      for (const [k, v] of Object.entries(h.serverReports)) reports[k] = (reports[k] ?? 0) + v;
    }
    const said = Object.entries(reports).map(([k, v]) => `${k} x${v}`).join(", ") || "nothing";
    console.log(
      `  hostile: ${trips} good round trips, 2-s p99 ${windows} ms (worst ${p99.toFixed(1)}), ` +
        `max ${max.toFixed(0)} ms, ${failures} failed; ${last?.attackers ?? "?"} attackers ` +
        `holding connections; server rss ${last ? mib(last.serverRss) : "?"}, reported ${said}`,
    );
  }
  const died = snaps.find((h) => h.serverDied !== null)?.serverDied;
  if (died) {
    console.log(`FAILED: ${died}`);
    Deno.exit(1); // the mix sees its stdin close and stops
  }
  if (report.problems.length > 0) {
    console.log(`invariant broken:\n${report.problems.slice(0, 20).join("\n")}`);
    Deno.exit(1); // the mix sees its stdin close and stops its server too
  }
}
if (hostile) {
  await hostile.stop();
  p99s.sort((a, b) => a - b);
  console.log(
    `hostile mix done: ${goodTrips} good round trips, ${goodFailures} failed; ` +
      `worst 2-s p99 ${Math.max(...p99s).toFixed(1)} ms, ` +
      `median 2-s p99 ${(p99s[p99s.length >> 1] ?? 0).toFixed(1)} ms, ` +
      `${p99s.filter((p) => p <= 50).length} of ${p99s.length} windows at most 50 ms, ` +
      `95th percentile of the 2-s p99s ${
        (p99s[Math.floor(p99s.length * 0.95)] ?? 0).toFixed(1)
      } ms`,
  );
}
console.log(
  `soak done: ${cycle} cycles, ${total} messages, ${back} handed back, ${lost} lost in flight; ` +
    `rss first ${mib(rss[0] ?? 0)}, last ${mib(rss.at(-1) ?? 0)}, max ${mib(Math.max(...rss))}`,
);
