// Review of the Unix listener close with an accept pending (src/_transport_uds.ts).
//
// A listen the engine has under way when its group is destroyed or the engine closes: the
// Unix transport may still be waiting then (for a listener of this process closing on the
// path, or for the probe of a dead file). Once destroy() or close() has resolved, nothing of
// the engine may hold the path: no socket bound late, no file.
//
// A listen on a closing path waits until the last accept pending at the close has ended (Deno
// refuses the others at once with Busy), not the first.

import { assert, assertEquals } from "@std/assert";
import { Engine, OpCode, Status, UdsServerAddress } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";
import { closingSocketPaths, uds } from "../src/_transport_uds.ts";
import { expect, makeAbort, recv } from "./_fixtures.ts";
import { connectOnce, exists } from "./_paths.ts";

type Group = ReturnType<Engine["create"]>;

/** Posts a WelcomeRequest for `path` on `group`; returns its channel number. */
function postListen(engine: Engine, group: Group, path: string): number {
  return group.post(new UdsServerAddress(path).format(engine.get("always")!)).channelNumber;
}

/** Leaves a dead socket file at `path` (its socket closed, the file kept). */
function deadSocketFile(path: string): void {
  const l = Deno.listen({ transport: "unix", path });
  Deno.linkSync(path, `${path}.dead`);
  l.close(); // Deno unlinks the path here
  Deno.renameSync(`${path}.dead`, path);
}

/**
 * Asserts that `path` is free: no file, and a listener bound on it now keeps its file and
 * takes a connection a while later (nothing of the engine unlinks it meanwhile).
 */
async function assertFree(path: string): Promise<void> {
  assert(!exists(path), `a file is left on ${path}`);
  assert(!closingSocketPaths.has(path), "a listener of the engine is still closing");
  const l = Deno.listen({ transport: "unix", path }); // AddrInUse if the engine still holds it
  try {
    await new Promise((r) => setTimeout(r, 50));
    assert(exists(path), "the new listener's file is gone");
    await connectOnce(l, path);
  } finally {
    l.close();
  }
}

/** Starts a listen on `path` that has to wait; `how` says why. */
async function startWaitingListen(
  engine: Engine,
  group: Group,
  path: string,
  how: "closing" | "dead file",
): Promise<void> {
  if (how === "closing") {
    const first = postListen(engine, group, path);
    engine.put(expect(await recv(group), OpCode.WelcomeResponse, Status.success, "first listen"));
    group.post(makeAbort(engine, first)); // closed with its accept pending
    assert(closingSocketPaths.has(path));
  } else {
    deadSocketFile(path);
  }
  postListen(engine, group, path);
}

for (const how of ["closing", "dead file"] as const) {
  Deno.test(`engine: a unix listen under way (${how}) holds nothing once the engine has closed`, async () => {
    const engine = new Engine();
    const path = tempUdsPath();
    await startWaitingListen(engine, engine.create(), path, how);
    await engine.close();
    await assertFree(path);
  });

  Deno.test(`engine: a unix listen under way (${how}) holds nothing once its group is destroyed`, async () => {
    await using engine = new Engine();
    const path = tempUdsPath();
    const group = engine.create();
    await startWaitingListen(engine, group, path, how);
    await engine.destroy(group);
    await assertFree(path);
  });
}

Deno.test("uds: a listen on a closing path waits for the last of the accepts pending at the close", async () => {
  const path = tempUdsPath();
  const l = await uds.listen({ path });
  // Deno refuses a second accept while one is pending (Busy): those end first.
  const accepts = [l.accept(), l.accept(), l.accept()].map((a) => a.then(() => "", (e) => e.name));
  l.close();
  const again = await uds.listen({ path }); // AddrInUse if it went on after a Busy one ended
  try {
    assertEquals(await Promise.all(accepts), ["BadResource", "Busy", "Busy"]);
    await new Promise((r) => setTimeout(r, 50));
    assert(exists(path), "the new listener's file is there");
    await connectOnce(again, path);
  } finally {
    again.close();
  }
  assert(!exists(path));
});
