// A Unix listener closed while an accept is pending (src/_transport_uds.ts). Deno keeps the
// socket open until that accept has ended, then removes the path, whatever file is there by
// then. A listener that binds the path in between (in this process or another) must not lose
// its file then: the closing listener's file stays in place until Deno removes it, and a
// listen on the path in this process waits for that.

import { assert, assertEquals, assertInstanceOf, assertThrows } from "@std/assert";
import { Engine, OpCode, Status, UdsServerAddress } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";
import { closingSocketPaths, uds } from "../src/_transport_uds.ts";
import {
  connect,
  expect,
  expectClosed,
  makeAbort,
  recv,
  type Server,
  transports,
} from "./_fixtures.ts";
import { connectOnce, exists } from "./_paths.ts";

const udsTransport = transports.find((t) => t.name === "uds")!;

/** Asserts that a client reaches `l` on `path`, then closes `l`. */
async function assertReachable(l: Deno.UnixListener, path: string): Promise<void> {
  try {
    assert(exists(path), `the file of the listener on ${path} is gone`);
    await connectOnce(l, path);
  } finally {
    l.close();
  }
}

Deno.test("uds: a listener bound on the path of one closed with an accept pending stays reachable", async () => {
  const path = tempUdsPath();
  const l = await uds.listen({ path });
  const accepting = l.accept().catch((e) => e);
  l.close();
  // Another listener binds the path as soon as it can: at once, or once the accept ended.
  let other: Deno.UnixListener | null = null;
  try {
    other = Deno.listen({ transport: "unix", path });
  } catch (err) {
    assertInstanceOf(err, Deno.errors.AddrInUse);
  }
  assertInstanceOf(await accepting, Error);
  l.ended();
  await assertReachable(other ?? Deno.listen({ transport: "unix", path }), path);
});

Deno.test("uds: a listener closed with an accept pending keeps its file until Deno closes its socket", async () => {
  const path = tempUdsPath();
  const l = await uds.listen({ path });
  const ino = Deno.lstatSync(path).ino;
  const accepting = l.accept().catch((e) => e);
  l.close();
  // Until the accept ends, the socket is still open in Deno (a client could still connect):
  // the path is in use.
  assertEquals(exists(path) ? Deno.lstatSync(path).ino : null, ino, "the file stays meanwhile");
  assertThrows(() => Deno.listen({ transport: "unix", path }), Deno.errors.AddrInUse);
  assert(closingSocketPaths.has(path));
  assertInstanceOf(await accepting, Error);
  assert(!closingSocketPaths.has(path), "nothing is kept of a listener that has gone");
  l.ended();
  assert(!exists(path), "removed once the accept ended");
  await assertReachable(Deno.listen({ transport: "unix", path }), path);
});

Deno.test("uds: a listen on the path of a listener of this process that is closing waits for it", async () => {
  const path = tempUdsPath();
  const l = await uds.listen({ path });
  const accepting = l.accept().catch((e) => e);
  l.close();
  const again = await uds.listen({ path });
  try {
    assertInstanceOf(await accepting, Error);
    l.ended();
    assert(exists(path), "the new listener's file is there");
    await connectOnce(again, path);
  } finally {
    again.close();
    again.ended();
  }
  assert(!exists(path));
});

/** Posts a WelcomeRequest for `path` on `group`; returns its channel number. */
function postListen(engine: Engine, group: ReturnType<Engine["create"]>, path: string): number {
  return group.post(new UdsServerAddress(path).format(engine.get("always")!)).channelNumber;
}

Deno.test("engine: a unix listener closed and listened on again at once stays reachable", async () => {
  await using engine = new Engine();
  const path = tempUdsPath();
  const group = engine.create();
  const first = postListen(engine, group, path);
  engine.put(expect(await recv(group), OpCode.WelcomeResponse, Status.success, "first listen"));
  // Close it and listen on the path again before the close is reported.
  group.post(makeAbort(engine, first));
  const second = postListen(engine, group, path);
  let bound = "";
  for (let reports = 0; reports < 3; reports++) {
    const m = await recv(group);
    if (m.bhdr.opCode === OpCode.WelcomeResponse) {
      expect(m, OpCode.WelcomeResponse, Status.success, "second listen");
      assertEquals(m.bhdr.channelNumber, second);
      bound = m.headers.get("~listen_on")!;
    } else if (m.bhdr.opCode === OpCode.ByeSignal) {
      expect(m, OpCode.ByeSignal, Status.channelClosed, "close");
    } else {
      expectClosed(m, first);
    }
    engine.put(m);
  }
  assertEquals(bound, `uds|${path}`);
  const server: Server = { group, channel: second, bound };
  await connect(engine, udsTransport, server); // the handshake reaches the second listener
});

Deno.test("engine: a unix path listened on by a new engine while the old one closes stays reachable", async () => {
  const path = tempUdsPath();
  const old = new Engine();
  const oldGroup = old.create();
  postListen(old, oldGroup, path);
  old.put(expect(await recv(oldGroup), OpCode.WelcomeResponse, Status.success, "old listen"));
  const closing = old.close();
  await using engine = new Engine();
  const group = engine.create();
  const channel = postListen(engine, group, path);
  const welcome = expect(await recv(group), OpCode.WelcomeResponse, Status.success, "new listen");
  const bound = welcome.headers.get("~listen_on")!;
  engine.put(welcome);
  await closing;
  await connect(engine, udsTransport, { group, channel, bound });
});

Deno.test("uds: a file bound since is back at once when a listener with no accept pending closes", async () => {
  const path = tempUdsPath();
  const l = await uds.listen({ path });
  Deno.removeSync(path);
  const other = Deno.listen({ transport: "unix", path });
  const ino = Deno.lstatSync(path).ino;
  l.close(); // Deno unlinks the path here: the other listener's file must be back before any listen
  assertEquals(exists(path) ? Deno.lstatSync(path).ino : null, ino, "back within close()");
  l.ended();
  await assertReachable(other, path);
});
