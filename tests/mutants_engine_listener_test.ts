// Listener behaviour that mutation testing found unchecked (issue #13, docs/testing.md): the
// reports of accept errors (one per episode), of a failed listener, of maxConnections and
// of exhausted channel numbers, and a close while the listener backs off. Accept errors are
// made by wrapping the real TCP and Unix listeners (the sockets stay real): a process cannot
// run out of descriptors on cue without a low `ulimit -n` (tests/resilience_test.ts does that
// in a child process).

import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import { type ChannelGroup, Engine, type Message, OpCode, Status } from "../mod.ts";
import {
  expect,
  makeAbort,
  rawConnect,
  readToEnd,
  recv,
  type Server,
  type SocketTransport,
  transports,
  writeAll,
} from "./_fixtures.ts";
import { frame } from "./_attack.ts";
import { tcp } from "../src/_transport_tcp.ts";
import { uds } from "../src/_transport_uds.ts";
import type { Listener } from "../src/_transport.ts";

type Fault = Error | "accept";

/**
 * Makes the next listener of transport `t` fail its accepts as scripted: each accept takes
 * the next entry (an error to reject with, or "accept" for a real accept); once the script
 * is used up every accept is real. Restores the transport when disposed.
 */
function faultyListen(t: SocketTransport, script: Fault[]): Disposable {
  const transport = t.name === "tcp" ? tcp : uds;
  const listenReal = transport.listen;
  // deno-lint-ignore no-explicit-any
  (transport as any).listen = async (addr: any): Promise<Listener> => {
    const real = await listenReal.call(transport, addr);
    return {
      get address() {
        return real.address;
      },
      accept() {
        const next = script.shift();
        return next === undefined || next === "accept" ? real.accept() : Promise.reject(next);
      },
      close: () => real.close(),
      ended: () => real.ended(),
    };
  };
  return {
    [Symbol.dispose]() {
      // deno-lint-ignore no-explicit-any
      (transport as any).listen = listenReal;
    },
  };
}

/** An accept error that passes (the process ran out of descriptors). */
function emfile(): Error {
  return Object.assign(new Error("Too many open files (os error 24)"), { code: "EMFILE" });
}

/** Starts a listener and returns it with the WelcomeRequest's message id. */
async function listenWithId(engine: Engine, t: SocketTransport): Promise<Server & { id: bigint }> {
  const group = engine.create();
  const req = t.listenAt().format(engine.get("always")!);
  req.bhdr.messageId = 314n;
  const { channelNumber } = group.post(req);
  const welcome = expect(await recv(group), OpCode.WelcomeResponse, Status.success, "welcome");
  const bound = welcome.headers.get("~listen_on")!;
  engine.put(welcome);
  return { group, channel: channelNumber, bound, id: 314n };
}

/** A raw client sends a HelloRequest and the server group receives it. */
async function served(engine: Engine, group: ChannelGroup, bound: string): Promise<Deno.Conn> {
  const conn = await rawConnect(bound) as Deno.Conn;
  await writeAll(conn, frame(OpCode.HelloRequest));
  const hello = expect(await recv(group), OpCode.HelloRequest, Status.success, "hello");
  engine.put(hello);
  return conn;
}

/** Asserts `m` is an engine report on the listener channel with the Welcome's id. */
function listenerReport(m: Message, server: { channel: number; id: bigint }, status: number): void {
  expect(m, OpCode.Signal, status, "listener report");
  assert(m.isFromEngine());
  assertEquals(m.bhdr.channelNumber, server.channel);
  assertEquals(m.bhdr.messageId, server.id);
}

/** A raw client connects and the server closes the connection at once, before any byte. */
async function refused(bound: string): Promise<void> {
  const conn = await rawConnect(bound);
  assertEquals(await readToEnd(conn), 0, "closed at once");
  conn.close();
}

/** A connection is refused and the listener reports it: allocation_failed with `message`. */
async function refusalReported(
  server: Server & { id: bigint },
  message: string,
): Promise<Message> {
  await refused(server.bound);
  const report = await recv(server.group);
  listenerReport(report, server, Status.allocationFailed);
  assertEquals(report.error?.message, message);
  return report;
}

for (const t of transports) {
  Deno.test(`${t.name}: accept errors that pass are reported once per episode; the listener keeps accepting`, async () => {
    const first = emfile();
    using _f = faultyListen(t, [first, emfile(), emfile(), "accept", emfile()]);
    await using engine = new Engine();
    const server = await listenWithId(engine, t);
    const report = await recv(server.group);
    listenerReport(report, server, Status.acceptFailed);
    assertEquals(report.error?.status, Status.acceptFailed);
    assertEquals(
      report.error?.message,
      `Cannot accept on channel ${server.channel}: Too many open files (os error 24); the listener keeps accepting, retrying every 10-100 ms`,
    );
    assertStrictEquals(report.error?.cause, first);
    engine.put(report);
    // The three errors were one episode; a served connection ends it, and the next error
    // (at the accept right after it) starts a new episode: reported again.
    const a = await rawConnect(server.bound);
    await writeAll(a, frame(OpCode.HelloRequest));
    const two = [await recv(server.group), await recv(server.group)];
    two.sort((x, y) => x.bhdr.opCode - y.bhdr.opCode);
    listenerReport(two[0]!, server, Status.acceptFailed);
    expect(two[1]!, OpCode.HelloRequest, Status.success, "hello");
    for (const m of two) engine.put(m);
    const b = await served(engine, server.group, server.bound);
    assertEquals(server.group.tryReceive(), null, "nothing else was reported");
    a.close();
    b.close();
  });

  Deno.test(`${t.name}: an accept error that does not pass closes the listener with accept_failed`, async () => {
    const boom = new Error("boom");
    using _f = faultyListen(t, [boom]);
    await using engine = new Engine();
    const server = await listenWithId(engine, t);
    const closed = await recv(server.group);
    listenerReport(closed, server, Status.channelClosed);
    assertEquals(closed.error?.status, Status.acceptFailed);
    assertEquals(closed.error?.message, `Cannot accept on channel ${server.channel}: boom`);
    assertStrictEquals(closed.error?.cause, boom);
    assertEquals(engine.channelCount, 0, "the listener is gone");
    assertEquals(server.group.tryReceive(), null);
  });

  Deno.test(`${t.name}: closing a listener while it backs off ends its pause: the reports come before any timer`, async () => {
    // Nine errors: 650 ms of pauses (10, 20, 40, 80, then 100 ms each).
    using _f = faultyListen(t, Array.from({ length: 9 }, emfile));
    await using engine = new Engine();
    const server = await listenWithId(engine, t);
    const report = await recv(server.group);
    listenerReport(report, server, Status.acceptFailed);
    engine.put(report);
    // Let it reach its 100 ms pauses (a wait, not a measurement).
    await new Promise((r) => setTimeout(r, 200));
    server.group.post(makeAbort(engine, server.channel));
    // Closing wakes the paused accept loop at once: both reports are out before a
    // zero-delay timer fires, long before the pause would have ended by itself.
    await new Promise((r) => setTimeout(r, 0));
    const back = server.group.tryReceive();
    const closed = server.group.tryReceive();
    if (back === null || closed === null) {
      throw new Error("the reports were not out before a zero-delay timer fired");
    }
    expect(back, OpCode.ByeSignal, Status.channelClosed, "bye");
    assertEquals(
      back.error?.message,
      `Cannot accept on channel ${server.channel}: the application closed the listener`,
    );
    listenerReport(closed, server, Status.channelClosed);
    assertEquals(closed.error?.message, back.error?.message);
    assertEquals(server.group.tryReceive(), null);
    // The test's sanitizers fail it if the pause's timer was left armed.
  });

  Deno.test(`${t.name}: maxConnections: refused connections are closed at once, reported once per episode`, async () => {
    await using engine = new Engine({ maxConnections: 1 });
    const server = await listenWithId(engine, t);
    const a = await served(engine, server.group, server.bound);
    const report = await refusalReported(
      server,
      `Cannot accept a connection on channel ${server.channel}: 1 connections are open (maxConnections 1); new ones are closed until some close`,
    );
    engine.put(report);
    await refused(server.bound);
    assertEquals(server.group.tryReceive(), null, "the same episode: not reported again");
    // The served connection closes: a new one is served, and a later refusal is reported.
    a.close();
    const closed = expect(await recv(server.group), OpCode.Signal, Status.channelClosed, "a");
    engine.put(closed);
    const b = await served(engine, server.group, server.bound);
    await refused(server.bound);
    listenerReport(await recv(server.group), server, Status.allocationFailed);
    b.close();
  });

  Deno.test(`${t.name}: channel numbers used up: refused connections are reported once, with the limit`, async () => {
    await using engine = new Engine({ maxChannels: 2 });
    const server = await listenWithId(engine, t);
    const a = await served(engine, server.group, server.bound); // the second number
    await refusalReported(
      server,
      `Cannot accept a connection on channel ${server.channel}: all 2 channel numbers are in use`,
    );
    await refused(server.bound);
    assertEquals(server.group.tryReceive(), null, "reported once");
    a.close();
  });
}

for (const t of transports) {
  Deno.test(`${t.name}: a refusal before any connection was served is reported too`, async () => {
    await using engine = new Engine({ maxChannels: 1 }); // the listener takes the only number
    const server = await listenWithId(engine, t);
    await refusalReported(
      server,
      `Cannot accept a connection on channel ${server.channel}: all 1 channel numbers are in use`,
    );
  });
}

/**
 * How many file descriptors this process has open (Linux), counted by a child process: a
 * test's permissions do not reach /proc. The pipes to the child count the same every time.
 */
async function openFds(): Promise<number> {
  const code = `let n = 0; for (const _ of Deno.readDirSync("/proc/${Deno.pid}/fd")) n++; ` +
    `console.log(n);`;
  const out = await new Deno.Command("deno", { args: ["eval", code], stderr: "inherit" })
    .output();
  return Number(new TextDecoder().decode(out.stdout));
}

for (const t of transports) {
  Deno.test(`${t.name}: a listener holds one reserve descriptor, takes it back after accept errors, frees it on close`, async () => {
    await using engine = new Engine();
    // The reserve needs read permission for /dev/null (`deno task mutate` grants it;
    // `deno task test` does not, and the listener then keeps none).
    const reserve = Deno.permissions.querySync({ name: "read", path: "/dev/null" }).state ===
        "granted"
      ? 1
      : 0;
    // A listener without trouble: its socket and its reserve.
    const quiet = await listenWithId(engine, t);
    const listening = await openFds();
    quiet.group.post(makeAbort(engine, quiet.channel));
    expect(await recv(quiet.group), OpCode.ByeSignal, Status.channelClosed, "bye");
    listenerReport(await recv(quiet.group), quiet, Status.channelClosed);
    assertEquals(listening - await openFds(), 1 + reserve, "the socket and the reserve are closed");

    // An accept error frees the reserve; the next accept takes it back first.
    using _f = faultyListen(t, [emfile()]);
    const server = await listenWithId(engine, t);
    listenerReport(await recv(server.group), server, Status.acceptFailed);
    const conn = await served(engine, server.group, server.bound);
    const serving = await openFds();
    conn.close();
    expect(await recv(server.group), OpCode.Signal, Status.channelClosed, "the client's channel");
    server.group.post(makeAbort(engine, server.channel));
    expect(await recv(server.group), OpCode.ByeSignal, Status.channelClosed, "bye");
    listenerReport(await recv(server.group), server, Status.channelClosed);
    assertEquals(
      serving - await openFds(),
      3 + reserve,
      "the client's socket, the accepted one, the listener's socket and its reserve",
    );
  });
}

Deno.test("a listener without read permission for /dev/null (no reserve) accepts as before", async () => {
  const out = await new Deno.Command("deno", {
    // Env permission for Stryker's variable lets a mutant be active in the child too.
    args: [
      "run",
      "--no-prompt",
      "--allow-net=127.0.0.1",
      "--allow-env=__STRYKER_ACTIVE_MUTANT__",
      new URL("./_no_reserve_child.ts", import.meta.url).pathname,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  assertEquals(new TextDecoder().decode(out.stdout).trim(), "served 3");
});
