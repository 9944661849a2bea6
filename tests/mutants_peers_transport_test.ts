// The socket transports on their own (src/_transport_tcp.ts, src/_transport_uds.ts,
// src/_transport.ts): how socket errors are classified, and the Unix socket file rules
// (a dead file is taken over, a live one or any other file is left alone, closing removes
// only the file this listener bound). Written to kill the mutants that the engine tests
// let survive; the error classification is checked on the functions themselves, since
// the tests that hit those errors for real run in child processes (unmutated under
// `deno task mutate`).

import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { Status, statusName } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";
import { closeQuietly } from "../src/_transport.ts";
import {
  isTemporaryAcceptError,
  reusePortAvailable,
  socketConnectFailure,
  socketListenFailure,
  tcp,
} from "../src/_transport_tcp.ts";
import { liveSocketPaths, removeSocketFile, uds } from "../src/_transport_uds.ts";
import { runChildJson } from "./_fixtures.ts";
import { connectOnce, exists } from "./_paths.ts";

const names = (xs: number[]) => xs.map(statusName);

Deno.test("socket errors: connect and listen failures map to their status", () => {
  const lookup = [
    new Error("failed to lookup address information: Name or service not known"),
    new Error("getaddrinfo: nodename nor servname provided, or not known"),
    new Error("No address associated with hostname"),
    new Error("DNS LOOKUP failed"),
  ];
  assertEquals(
    names(lookup.map(socketConnectFailure)),
    names(lookup.map(() => Status.invalidAddress)),
  );
  assertEquals(
    names(lookup.map(socketListenFailure)),
    names(lookup.map(() => Status.invalidAddress)),
  );
  const permission = [new Deno.errors.NotCapable("net"), new Deno.errors.PermissionDenied("x")];
  assertEquals(
    names(permission.map(socketConnectFailure)),
    names([0, 0].map(() => Status.notAllowed)),
  );
  assertEquals(
    names(permission.map(socketListenFailure)),
    names([0, 0].map(() => Status.notAllowed)),
  );
  // A missing Unix socket path is its own status when connecting, not when listening.
  assertEquals(
    statusName(socketConnectFailure(new Deno.errors.NotFound("x"))),
    "uds_path_not_found",
  );
  assertEquals(statusName(socketListenFailure(new Deno.errors.NotFound("x"))), "listen_failed");
  // Anything else.
  for (
    const other of [new Deno.errors.ConnectionRefused("refused"), new Error("boom"), "text", null]
  ) {
    assertEquals(statusName(socketConnectFailure(other)), "connect_failed", String(other));
    assertEquals(statusName(socketListenFailure(other)), "listen_failed", String(other));
  }
  // A message about something else that merely mentions an address is not a lookup failure.
  assertEquals(statusName(socketConnectFailure({ message: "lookup" })), "connect_failed");
});

Deno.test("accept errors: each code and each errno passes on its own", () => {
  for (const code of ["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM", "ECONNABORTED"]) {
    assert(isTemporaryAcceptError(Object.assign(new Error("x"), { code })), code);
    assert(isTemporaryAcceptError({ code }), `${code} on a plain object`);
  }
  for (const errno of [24, 23, 105, 12, 103]) {
    assert(isTemporaryAcceptError(new Error(`failed (os error ${errno})`)), `errno ${errno}`);
  }
  assert(isTemporaryAcceptError(new Deno.errors.ConnectionAborted("")));
  for (
    const not of [
      new Error("failed (os error 22)"),
      new Error("failed (os error 240)"),
      new Error("failed (os error 2)"),
      Object.assign(new Error("x"), { code: "EINVAL" }),
      Object.assign(new Error("x"), { code: 24 }),
      { message: "(os error 24)" },
      "(os error 24)",
      new Deno.errors.BadResource("closed"),
      null,
      undefined,
    ]
  ) {
    assert(!isTemporaryAcceptError(not), String((not as Error)?.message ?? not));
  }
});

Deno.test("reusePort is not available without --unstable-net, and listenShared says why", async () => {
  assertEquals(reusePortAvailable(), false);
  const err = await assertRejects(
    () => tcp.listenShared({ host: "127.0.0.1", port: 0 }),
    Deno.errors.NotSupported,
  );
  assertStringIncludes(err.message, "--unstable-net");
});

Deno.test("tcp: a listener names its real port, accepts, and closes twice quietly", async () => {
  const l = await tcp.listen({ host: "127.0.0.1", port: 0 });
  const port = Number(l.address.split("|")[2]);
  assert(port > 0, l.address);
  assertEquals(l.address, `tcp|127.0.0.1|${port}`);
  const accepted = l.accept();
  const client = await tcp.dial({ host: "127.0.0.1", port });
  const server = await accepted;
  await client.write(new Uint8Array([7]));
  const buf = new Uint8Array(4);
  assertEquals(await server.read(buf), 1);
  assertEquals(buf[0], 7);
  closeQuietly(client);
  closeQuietly(client); // already closed: quiet
  closeQuietly(server);
  l.close();
  l.close();
  l.ended();
  await assertRejects(() => l.accept());
  await assertRejects(() => tcp.dial({ host: "127.0.0.1", port }));
});

/** Leaves a dead socket file at `path`, as a killed process would. */
async function deadSocket(path: string): Promise<void> {
  const out = await new Deno.Command("deno", {
    args: [
      "eval",
      `Deno.listen({ transport: "unix", path: ${JSON.stringify(path)} }); Deno.exit(0);`,
    ],
    stdout: "null",
    stderr: "null",
  }).output();
  assert(out.success);
  assert(Deno.lstatSync(path).isSocket, "the child left its socket file");
}

Deno.test("uds: a dead socket file is taken over; closing removes the file and frees the path", async () => {
  const path = tempUdsPath();
  await deadSocket(path);
  const l = await uds.listen({ path });
  assertEquals(l.address, `uds|${path}`);
  assert(liveSocketPaths.has(path));
  const accepted = l.accept();
  const c = await uds.dial({ path });
  (await accepted).close();
  c.close();
  l.close();
  assert(!liveSocketPaths.has(path), "the path is no longer live");
  l.ended();
  assert(!exists(path), "the socket file is removed");
  l.close(); // again: nothing happens
  // The same path can be listened on again, and is live again.
  const again = await uds.listen({ path });
  assert(liveSocketPaths.has(path));
  again.close();
  again.ended();
  assert(!exists(path));
});

Deno.test("uds: a path live in this process, or live elsewhere, or not a socket, is left alone", async () => {
  const path = tempUdsPath();
  const l = await uds.listen({ path });
  try {
    const err = await assertRejects(() => uds.listen({ path }), Deno.errors.AddrInUse);
    assertStringIncludes(err.message, "a listener of this process is bound to");
    assertEquals(statusName(uds.listenFailure(err)), "listen_failed");
    // The same file spelt another way is this process's too (it said "another process is
    // listening"; found by the hostile-tester helper).
    const spelt = path.replace(/\/([^/]+)$/, "/./$1");
    const again = await assertRejects(() => uds.listen({ path: spelt }), Deno.errors.AddrInUse);
    assertEquals(again.message, `a listener of this process is bound to ${spelt}`);
  } finally {
    l.close();
    l.ended();
  }
  // A socket that another listener (not a tofu one) accepts on: the probe is answered.
  const other = Deno.listen({ transport: "unix", path });
  const ino = Deno.lstatSync(path).ino;
  try {
    const err = await assertRejects(() => uds.listen({ path }), Deno.errors.AddrInUse);
    assertStringIncludes(err.message, "another process is listening on");
    assertEquals(Deno.lstatSync(path).ino, ino, "the live socket file is kept");
    await connectOnce(other, path);
  } finally {
    other.close();
  }
  // A regular file is never removed.
  const file = tempUdsPath();
  Deno.writeTextFileSync(file, "keep me");
  try {
    const err = await assertRejects(() => uds.listen({ path: file }), Deno.errors.AlreadyExists);
    assertStringIncludes(err.message, "exists and is not a socket");
    assertEquals(Deno.readTextFileSync(file), "keep me");
  } finally {
    Deno.removeSync(file);
  }
  // A path in a directory that does not exist: the error is Deno's own.
  await assertRejects(
    () => uds.listen({ path: `/tmp/tofu-missing-${Deno.pid}/x.port` }),
    Deno.errors.NotFound,
  );
  // Nobody listens: connecting says the path is not found.
  const nobody = tempUdsPath();
  const err = await assertRejects(() => uds.dial({ path: nobody }));
  assertEquals(statusName(uds.connectFailure(err)), "uds_path_not_found");
});

for (const pending of [true, false]) {
  // The engine's listener has an accept pending, except while it backs off after an accept
  // error: Deno then removes the path at close() already, not when the accept ends.
  const when = pending ? "with an accept pending" : "with no accept pending";
  Deno.test(`uds: closing a listener (${when}) keeps a file another listener bound since`, async () => {
    const path = tempUdsPath();
    const l = await uds.listen({ path });
    const accepting = pending ? l.accept().catch(() => null) : Promise.resolve(null);
    Deno.removeSync(path);
    const other = Deno.listen({ transport: "unix", path });
    const ino = Deno.lstatSync(path).ino;
    l.close();
    l.close(); // twice: the second must not undo what the first kept
    assertEquals(await accepting, null);
    l.ended();
    assertEquals(Deno.lstatSync(path).ino, ino, "the other listener's file is back in place");
    const dir = path.slice(0, path.lastIndexOf("/"));
    const base = path.slice(path.lastIndexOf("/") + 1);
    const leftovers = [...Deno.readDirSync(dir)].filter((e) => e.name.startsWith(`${base}.`));
    assertEquals(leftovers, [], "no hard link is left behind");
    await connectOnce(other, path);
    other.close();
  });
}

Deno.test("uds: closing a listener whose file is already gone is quiet", async () => {
  const path = tempUdsPath();
  const l = await uds.listen({ path });
  Deno.removeSync(path);
  l.close();
  l.ended();
  assert(!exists(path));
});

Deno.test("removeSocketFile removes a socket (of the given inode) and nothing else", async () => {
  const file = tempUdsPath();
  Deno.writeTextFileSync(file, "x");
  removeSocketFile(file);
  assert(exists(file), "a regular file is kept");
  Deno.removeSync(file);
  removeSocketFile(file); // missing: quiet

  const path = tempUdsPath();
  await deadSocket(path);
  const ino = Deno.lstatSync(path).ino!;
  removeSocketFile(path, ino + 1);
  assert(exists(path), "a socket of another inode is kept");
  removeSocketFile(path, ino);
  assert(!exists(path), "the socket of that inode is removed");
  await deadSocket(path);
  removeSocketFile(path);
  assert(!exists(path), "without an inode any socket file is removed");
});

Deno.test("reusePort under --unstable-net: two engines bind one port; serveWorkers picks reusePort", async () => {
  // The child gets env permission so that, under `deno task mutate`, it runs the mutated code
  // too (docs/testing.md): this is the only place where reusePort is available.
  const r = await runChildJson(
    new URL("./_mutants_peers_reuse_child.ts", import.meta.url),
    ["--unstable-net", "--allow-net=127.0.0.1", "--allow-read", "--allow-env"],
  );
  assertEquals(r, {
    first: "success",
    second: "success",
    port: true,
    mode: "reusePort",
    workers: 2,
    reply: "r",
  });
});
