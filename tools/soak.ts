/**
 * Soak test: runs the accounting scenario of tools/_load_scenario.ts again and again
 * for a given time, alternating TCP and Unix sockets, with many channels per cycle.
 * After each cycle it checks the invariant and prints resident memory, so a leak or
 * a lost message shows up as a trend or a failure. Not part of CI.
 *
 *   deno task soak                 # 60 s, 50 channels per cycle
 *   deno task soak --seconds 600 --clients 100 --messages 2000
 *
 * Exits with status 1 at the first cycle whose invariant fails.
 *
 * @module
 */

// deno-lint-ignore-file no-console

import { TcpClientAddress, TcpServerAddress, UdsClientAddress, UdsServerAddress } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";
import { runLoad } from "./_load_scenario.ts";

function arg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}

const seconds = arg("seconds", 60);
const clients = arg("clients", 50);
const messages = arg("messages", 2000);
const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;

console.log(`soak: ${seconds} s, ${clients} channels x ${messages} messages per cycle`);
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
  if (report.problems.length > 0) {
    console.log(`invariant broken:\n${report.problems.slice(0, 20).join("\n")}`);
    Deno.exit(1);
  }
}
console.log(
  `soak done: ${cycle} cycles, ${total} messages, ${back} handed back, ${lost} lost in flight; ` +
    `rss first ${mib(rss[0] ?? 0)}, last ${mib(rss.at(-1) ?? 0)}, max ${mib(Math.max(...rss))}`,
);
