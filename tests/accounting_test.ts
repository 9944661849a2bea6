// The accounting invariant under load (see tools/_load_scenario.ts): 10 clients x
// 10,000 mixed messages with random aborts on either side and graceful byes.

import { assert, assertEquals } from "@std/assert";
import { runLoad } from "../tools/_load_scenario.ts";
import { lifecycleTransports } from "./_fixtures.ts";

for (const t of lifecycleTransports) {
  Deno.test(`${t.name}: 10 clients x 10,000 mixed messages: every message accounted for`, async () => {
    const report = await runLoad({
      clients: 10,
      messagesPerClient: 10_000,
      seed: t.name === "tcp" ? 7 : t.name === "uds" ? 11 : 13,
      listenAt: t.listenAt,
      connectTo: t.connectTo,
    });
    assertEquals(report.problems, [], report.problems.slice(0, 10).join("\n"));
    const modes = new Set(report.channels.map((c) => c.mode));
    const count = (mode: string) => report.channels.filter((c) => c.mode === mode).length;
    assert(modes.has("graceful") && (modes.has("clientAbort") || modes.has("serverAbort")));
    for (const c of report.channels) {
      if (c.mode === "graceful") {
        // Nothing is lost or handed back on a graceful channel: all was delivered.
        assertEquals(c.c2s.received, c.c2s.posted, `client ${c.client} c2s`);
        assertEquals(c.s2c.received, c.s2c.posted, `client ${c.client} s2c`);
      }
    }
    // deno-lint-ignore no-console
    console.log(
      `${t.name}: all ${report.messages} messages accounted for in ${report.ms.toFixed(0)} ms ` +
        `(${count("graceful")} graceful channels delivered everything; on ` +
        `${count("clientAbort") + count("serverAbort")} aborted ones ${report.handedBack} came ` +
        `back with a status and ${report.lostInFlight} were written, then dropped by the abort)`,
    );
  });
}
