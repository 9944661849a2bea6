// A listener that cannot open its reserve descriptor again (src/_listener.ts), written for
// the last survivor of that file (issue #13, docs/testing.md, "mut-rest: the last files"):
// while the reserve cannot be held, the listener does not accept, it keeps pausing.
//
// Over TCP and Unix sockets the two are the same: an accept with no descriptor free fails
// at once with EMFILE (Linux takes the new descriptor before it looks at the queue), in the
// same episode and with the same backoff as the reserve's own refusal. The accepts of an
// isolate listener take no descriptor, so there an accept without the reserve would
// succeed: a connection served while the process has no descriptor free, which the reserve
// is there to prevent (see the header of src/_listener.ts). The listener runs in a child
// process (tests/_mutants_rest_hoard_child.ts) that takes every free descriptor itself.

import { assertEquals, assertMatch } from "@std/assert";
import { Status } from "../mod.ts";

Deno.test("isolate: a listener that cannot open its reserve again accepts nothing until descriptors are free, then serves", async () => {
  const child = new Deno.Command("deno", {
    args: [
      "run",
      "--no-prompt",
      "--allow-read=/dev/null",
      // Env permission for Stryker's variable lets a mutant be active in the child too.
      "--allow-env=__STRYKER_ACTIVE_MUTANT__",
      new URL("./_mutants_rest_hoard_child.ts", import.meta.url).pathname,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // A listener that never pauses or never serves again leaves the child waiting: it is
  // killed after 30 s (the test then fails).
  const guard = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const out = await child.output();
  clearTimeout(guard);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  const all = `${lines.join("\n")}\n${new TextDecoder().decode(out.stderr)}`;
  assertEquals(out.code, 0, all);
  assertEquals(lines.slice(0, 2), ["served A", "served B"], all);
  assertMatch(
    lines[2]!,
    new RegExp(
      `^report ${Status.acceptFailed} Cannot accept on channel \\d+: no file descriptor is free besides the listener's reserve; the listener keeps accepting, retrying every 10-100 ms$`,
    ),
  );
  // C connected while no descriptor was free: the listener paused five times without
  // accepting it, and served it once the descriptors were freed.
  assertEquals(lines.slice(3), ["C waits 5 pauses", "served C", "done"], all);
});
