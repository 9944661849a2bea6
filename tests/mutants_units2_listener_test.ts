// The listener when its process runs out of file descriptors (issue #13, docs/testing.md,
// "mut-units: engine unit files"): the report of an episode with no descriptor free
// besides the reserve, the backoff between retries, and the end of the episode. The
// listener runs in a child process (tests/_fd_hoard_child.ts) that takes every free
// descriptor itself, over TCP and Unix sockets. Also a connection accepted in the turn the
// listener closes (the listener's accept is held by the test, around the real listener).

import { assertEquals, assertMatch } from "@std/assert";
import { Engine, OpCode, Status } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";
import {
  expect,
  expectClosed,
  makeAbort,
  rawConnect,
  readToEnd,
  recv,
  type SocketTransport,
  transports,
  writeAll,
} from "./_fixtures.ts";
import { frame } from "./_attack.ts";
import { tcp } from "../src/_transport_tcp.ts";
import { uds } from "../src/_transport_uds.ts";
import type { Conn, Listener } from "../src/_transport.ts";

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

/**
 * Makes the next listener of transport `t` hand its first accept to the test: that accept
 * resolves when the test calls `give(conn)` with a connection it accepted from `real`.
 */
function heldAccept(t: SocketTransport): Disposable & {
  real(): Listener;
  give(conn: Conn): void;
} {
  const transport = t.name === "tcp" ? tcp : uds;
  const listenReal = transport.listen;
  let real: Listener | undefined;
  let give: ((conn: Conn) => void) | undefined;
  // deno-lint-ignore no-explicit-any
  (transport as any).listen = async (addr: any): Promise<Listener> => {
    const r: Listener = await listenReal.call(transport, addr);
    real = r;
    let first = true;
    return {
      get address() {
        return r.address;
      },
      accept() {
        if (!first) return r.accept();
        first = false;
        return new Promise<Conn>((resolve) => give = resolve);
      },
      close: () => r.close(),
      ended: () => r.ended(),
    };
  };
  return {
    real: () => real!,
    give: (conn) => give!(conn),
    [Symbol.dispose]() {
      // deno-lint-ignore no-explicit-any
      (transport as any).listen = listenReal;
    },
  };
}

for (const t of transports) {
  Deno.test(`${t.name}: a connection accepted in the turn the listener closes is closed, not served`, async () => {
    using held = heldAccept(t);
    await using engine = new Engine();
    const group = engine.create();
    const { channelNumber } = group.post(t.listenAt().format(engine.get("always")!));
    const welcome = expect(await recv(group), OpCode.WelcomeResponse, Status.success, "welcome");
    const bound = welcome.headers.get("~listen_on")!;
    engine.put(welcome);
    const client = await rawConnect(bound);
    const accepted = await held.real().accept();
    await writeAll(client, frame(OpCode.HelloRequest));
    // The listener's accept completes, and the application closes the listener before the
    // listener runs again.
    held.give(accepted);
    group.post(makeAbort(engine, channelNumber));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const end = await Promise.race([
      readToEnd(client),
      new Promise<string>((r) => timer = setTimeout(() => r("still open after 10 s"), 10_000)),
    ]);
    clearTimeout(timer);
    assertEquals(end, 0, "the connection was closed without a byte");
    client.close();
    expect(await recv(group), OpCode.ByeSignal, Status.channelClosed, "bye");
    expectClosed(await recv(group), channelNumber);
    assertEquals(group.tryReceive(), null, "no HelloRequest: the connection was not served");
    assertEquals(engine.channelCount, 0);
  });
}
