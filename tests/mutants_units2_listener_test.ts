// The listener when its process runs out of file descriptors (issue #13, docs/testing.md,
// "mut-units: engine unit files"): the report of an episode with no descriptor free
// besides the reserve, the backoff between retries, and the end of the episode. The
// listener runs in a child process (tests/_fd_hoard_child.ts) that takes every free
// descriptor itself, over TCP and Unix sockets.

import { assertEquals, assertMatch } from "@std/assert";
import { Status } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";
import { transports } from "./_fixtures.ts";

for (const t of transports) {
  Deno.test(`${t.name}: with no descriptor free besides its reserve, a listener reports it once, backs off 10 to 100 ms, then serves again; one opened with no descriptor for a reserve keeps none`, async () => {
    const where = t.name === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`;
    const child = new Deno.Command("deno", {
      args: [
        "run",
        "--no-prompt",
        "--allow-net",
        "--allow-read=/dev/null,/tmp",
        "--allow-write=/tmp",
        // Env permission for Stryker's variable lets a mutant be active in the child too.
        "--allow-env=__STRYKER_ACTIVE_MUTANT__",
        new URL("./_fd_hoard_child.ts", import.meta.url).pathname,
        where,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // A listener that never pauses starves the child's event loop: it never ends by
    // itself, and is killed after 30 s (the test then fails).
    const guard = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const out = await child.output();
    clearTimeout(guard);
    const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
    assertEquals(out.code, 0, `${lines.join("\n")}\n${new TextDecoder().decode(out.stderr)}`);
    assertEquals(lines.length, 7, lines.join("\n"));
    assertEquals(lines.slice(0, 2), ["served A", "served B"]);
    // The episode's one report: a Signal with accept_failed, naming the reason.
    assertMatch(
      lines[2]!,
      new RegExp(
        `^report 2 ${Status.acceptFailed} Cannot accept on channel \\d+: no file descriptor is free besides the listener's reserve; the listener keeps accepting, retrying every 10-100 ms$`,
      ),
    );
    // The pauses it asked for: doubling from 10 ms, at most 100 ms.
    assertEquals(lines[3], "pauses 10,20,40,80,100,100");
    // Served again, and no second report; a listener opened with no descriptor free for a
    // reserve keeps none, and serves with no report.
    assertEquals(lines.slice(4), ["served C", "served D", "done"]);
  });
}
