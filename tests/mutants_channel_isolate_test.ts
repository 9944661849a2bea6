// Tests that kill mutants of the isolate transport (src/_transport_isolate.ts) that the engine
// and Workers tests let survive: the pipe's byte rings (wrap-around, partial reads and writes,
// a full ring, sleeping sides woken by data, room and a close), the listener's accept and
// refusal rules, and dialing. Both ends of a pipe live in this isolate here; they share the
// same SharedArrayBuffer code path as ends in two isolates (tests/workers_test.ts).

import { assert, assertEquals, assertRejects } from "@std/assert";
import {
  closeSide,
  dialIsolate,
  isKnown,
  isolate,
  IsolateListener,
  IsolatePipe,
  Link,
  RING_BYTES,
  whenKnown,
} from "../src/_transport_isolate.ts";
import { Status } from "../mod.ts";

let names = 0;
function freshName(): string {
  return `mutch-${Deno.pid}-${++names}`;
}

/** Both ends of one pipe with a ring of `ring` bytes per direction. */
function pipePair(ring: number): [IsolatePipe, IsolatePipe] {
  const connector = IsolatePipe.create(ring);
  const acceptor = new IsolatePipe(connector.sab, "acceptor");
  return [connector, acceptor];
}

function bytes(from: number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);
}

/** Whether `p` is still pending after the event loop had a few turns (it cannot settle). */
async function pending(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(() => settled = true, () => settled = true);
  await new Promise((r) => setTimeout(r, 30));
  return !settled;
}

/** Reads exactly `n` bytes from `pipe`, in as many reads as it takes. */
async function readExactly(pipe: IsolatePipe, n: number, chunk = 1024): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const buf = new Uint8Array(Math.min(chunk, n - got));
    const r = await pipe.read(buf);
    if (r === null) throw new Error(`end of stream after ${got} of ${n} bytes`);
    out.set(buf.subarray(0, r), got);
    got += r;
  }
  return out;
}

Deno.test("isolate pipe: the ring is RING_BYTES per direction; the two directions are apart", async () => {
  assertEquals(RING_BYTES, 65_536);
  const big = IsolatePipe.create();
  assertEquals(big.sab.byteLength, 64 + 2 * RING_BYTES);
  assertEquals(big.side, "connector");
  // A write fills at most the ring: the rest waits for room.
  assertEquals(await big.write(new Uint8Array(RING_BYTES + 10)), RING_BYTES);
  big.close();

  const [c, a] = pipePair(16);
  assertEquals(a.side, "acceptor");
  assertEquals(await c.write(bytes(1, 5)), 5);
  assertEquals(await a.write(bytes(101, 7)), 7);
  // Each side reads what the other wrote, never its own bytes.
  assertEquals(await readExactly(a, 5), bytes(1, 5));
  assertEquals(await readExactly(c, 7), bytes(101, 7));
  c.close();
  a.close();
});

for (const dir of ["connector to acceptor", "acceptor to connector"]) {
  Deno.test(`isolate pipe: bytes wrap around the ring end intact (${dir})`, async () => {
    const [c, a] = pipePair(16);
    const [w, r] = dir.startsWith("connector") ? [c, a] : [a, c];
    let next = 0;
    // Offsets 0, 10, 20 (= 4 in the ring), ...: every write and read crosses the end sooner
    // or later, with reads in pieces of 3 bytes and of up to 64.
    for (let round = 0; round < 20; round++) {
      const n = 1 + (round * 7) % 16;
      const data = bytes(next, n);
      assertEquals(await w.write(data), n, `round ${round}: the ring had room for all`);
      const got = await readExactly(r, n, round % 2 === 0 ? 3 : 64);
      assertEquals(got, data, `round ${round}`);
      next += n;
    }
    // A full ring, read in two parts (the first straddles the end).
    assertEquals(await w.write(bytes(200, 16)), 16);
    assertEquals(await readExactly(r, 9, 9), bytes(200, 9));
    assertEquals(await readExactly(r, 7, 64), bytes(209, 7));
    c.close();
    a.close();
  });
}

Deno.test("isolate pipe: a full ring holds the writer until the reader makes room", async () => {
  const [c, a] = pipePair(16);
  assertEquals(await c.write(bytes(0, 20)), 16, "a write takes what fits");
  const writing = c.write(bytes(16, 4));
  assert(await pending(writing), "no room: the writer waits");
  assertEquals(await readExactly(a, 5), bytes(0, 5));
  assertEquals(await writing, 4, "room again: the write goes on");
  assertEquals(await readExactly(a, 15), bytes(5, 15));
  c.close();
  a.close();
});

Deno.test("isolate pipe: an empty ring holds the reader until bytes arrive", async () => {
  const [c, a] = pipePair(16);
  const buf = new Uint8Array(8);
  const reading = a.read(buf);
  assert(await pending(reading), "nothing to read: the reader waits");
  assertEquals(await c.write(bytes(50, 3)), 3);
  assertEquals(await reading, 3);
  assertEquals(buf.subarray(0, 3), bytes(50, 3));
  // And again, on a reader that already slept once.
  const again = a.read(buf);
  assert(await pending(again));
  assertEquals(await c.write(bytes(60, 2)), 2);
  assertEquals(await again, 2);
  assertEquals(buf.subarray(0, 2), bytes(60, 2));
  c.close();
  a.close();
});

Deno.test("isolate pipe: a peer's close: its last bytes are read first, then the end", async () => {
  const [c, a] = pipePair(16);
  assert(!a.peerClosed && !c.peerClosed);
  await c.write(bytes(7, 6));
  c.close();
  assert(a.peerClosed, "the acceptor sees the connector's close");
  assert(!c.peerClosed, "a side's own close is not its peer's");
  assertEquals(await readExactly(a, 6), bytes(7, 6));
  assertEquals(await a.read(new Uint8Array(8)), null);
  assertEquals(await a.read(new Uint8Array(8)), null, "and it stays ended");
  const err = await assertRejects(() => a.write(bytes(0, 1)), Deno.errors.BrokenPipe);
  assertEquals(err.message, "the peer isolate closed the connection");
  a.close();
});

Deno.test("isolate pipe: a reader and a writer asleep wake up when the peer closes", async () => {
  const [c, a] = pipePair(16);
  assertEquals(await a.write(bytes(0, 16)), 16, "the ring from a to c is full");
  const writing = a.write(bytes(0, 1));
  const reading = a.read(new Uint8Array(8));
  assert(await pending(writing), "a's writer sleeps (no room)");
  assert(await pending(reading), "a's reader sleeps (nothing from c)");
  c.close();
  // c's close wakes a's writer (the peer is gone) and a's reader (the end of the stream).
  const err = await assertRejects(() => writing, Deno.errors.BrokenPipe);
  assertEquals(err.message, "the peer isolate closed the connection");
  assertEquals(await reading, null);
  a.close();
});

Deno.test("isolate pipe: a side's own close ends its sleeping reader and writer", async () => {
  const [c, a] = pipePair(16);
  const reading = c.read(new Uint8Array(8));
  assertEquals(await c.write(bytes(0, 16)), 16);
  const writing = c.write(bytes(0, 1));
  assert(await pending(reading));
  assert(await pending(writing));
  c.close();
  assertEquals(await reading, null);
  const err = await assertRejects(() => writing, Deno.errors.BadResource);
  assertEquals(err.message, "the isolate pipe is closed");
  assertEquals(await c.read(new Uint8Array(8)), null, "a closed side reads nothing");
  await assertRejects(() => c.write(bytes(0, 1)), Deno.errors.BadResource);
  c.close(); // again: nothing happens
  a.close();
});

Deno.test("isolate pipe: a side's own close does not end what its peer still reads from it", async () => {
  // The acceptor closes; the connector reads what the acceptor wrote before.
  const [c, a] = pipePair(16);
  await a.write(bytes(30, 4));
  a.close();
  assert(c.peerClosed && !a.peerClosed);
  assertEquals(await readExactly(c, 4), bytes(30, 4));
  assertEquals(await c.read(new Uint8Array(4)), null);
  c.close();
});

Deno.test("isolate pipe: closeSide() from outside (a dead Worker) ends that side for its peer", async () => {
  const [c, a] = pipePair(16);
  const reading = c.read(new Uint8Array(4));
  assert(await pending(reading));
  closeSide(c.sab, "acceptor");
  assertEquals(await reading, null);
  assert(c.peerClosed);
  a.close();
  c.close();
});

Deno.test("isolate listener: accept, refusal once closed, and a name in use", async () => {
  const name = freshName();
  assert(!isKnown(name));
  const l = new IsolateListener(name);
  assertEquals([l.name, l.address], [name, `isolate|${name}`]);
  assert(isKnown(name));
  const inUse = assertThrowsAddrInUse(() => new IsolateListener(name));
  assertEquals(inUse, `an engine of this isolate listens on isolate|${name}`);
  // A dial is accepted once the listener accepts it.
  const dialing = dialIsolate(name, 16);
  assert(await pending(dialing), "not accepted yet");
  const acceptor = await l.accept();
  const connector = await dialing;
  assertEquals([connector.side, acceptor.side], ["connector", "acceptor"]);
  assertEquals(connector.sab, acceptor.sab);
  assertEquals(connector.sab.byteLength, 64 + 32, "the ring size asked for");
  await connector.write(bytes(9, 3));
  assertEquals(await readExactly(acceptor, 3), bytes(9, 3));
  // A dial that arrived but was never accepted is refused at the close.
  const unaccepted = dialIsolate(name);
  assert(await pending(unaccepted));
  l.close();
  const refused = await assertRejects(() => unaccepted, Deno.errors.ConnectionRefused);
  assertEquals(refused.message, `no isolate listens on isolate|${name}`);
  assert(!isKnown(name), "the name is free");
  const accepting = await assertRejects(() => l.accept(), Deno.errors.BadResource);
  assertEquals(accepting.message, "the isolate listener is closed");
  // Offered after the close (a connect routed to it late): refused at once.
  const late = IsolatePipe.create(16);
  l.offer(late.sab);
  await assertRejects(() => late.accepted(), Deno.errors.ConnectionRefused, "no isolate accepted");
  late.close();
  l.close(); // again: nothing happens
  // The name can be listened on again; the old listener's close does not free the new one's.
  const again = new IsolateListener(name);
  l.close();
  assert(isKnown(name));
  again.close();
  assert(!isKnown(name));
  connector.close();
  acceptor.close();
});

function assertThrowsAddrInUse(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert(e instanceof Deno.errors.AddrInUse, String(e));
    return (e as Error).message;
  }
  throw new Error("no AddrInUse thrown");
}

Deno.test("isolate: dialing a name nobody listens on is refused", async () => {
  const name = freshName();
  const err = await assertRejects(() => dialIsolate(name), Deno.errors.ConnectionRefused);
  assertEquals(err.message, `no isolate listens on isolate|${name}`);
  const viaTransport = await assertRejects(
    () => isolate.dial({ name }),
    Deno.errors.ConnectionRefused,
  );
  assertEquals(viaTransport.message, `no isolate listens on isolate|${name}`);
});

Deno.test("isolate: the transport object listens, dials and classifies failures", async () => {
  const name = freshName();
  const l = await isolate.listen({ name });
  assertEquals(l.address, `isolate|${name}`);
  const dialing = isolate.dial({ name });
  const acceptor = await l.accept();
  const connector = await dialing as IsolatePipe;
  assertEquals(connector.sab.byteLength, 64 + 2 * RING_BYTES, "the default ring");
  assertEquals(isolate.connectFailure(new Error("x")), Status.connectFailed);
  assertEquals(isolate.listenFailure(new Error("x")), Status.listenFailed);
  assertEquals(isolate.isTemporaryAcceptError(new Error("x")), false);
  connector.close();
  acceptor.close();
  l.close();
});

Deno.test("isolate: whenKnown() resolves when a name is listened on; an abort rejects it", async () => {
  const name = freshName();
  const waiting = whenKnown(name);
  assert(await pending(waiting));
  const other = new IsolateListener(freshName());
  assert(await pending(waiting), "another name does not end the wait");
  other.close();
  const l = new IsolateListener(name);
  await waiting;
  await whenKnown(name); // known: at once
  l.close();
  const ac = new AbortController();
  const aborted = whenKnown(name, ac.signal);
  assert(await pending(aborted));
  ac.abort(new Error("gave up"));
  await assertRejects(() => aborted, Error, "gave up");
  await assertRejects(
    () => whenKnown(name, AbortSignal.abort(new Error("at once"))),
    Error,
    "at once",
  );
  // An aborted wait no longer watches the name; a later listen wakes only live waits.
  const live = whenKnown(name, new AbortController().signal);
  const l2 = new IsolateListener(name);
  await live;
  l2.close();
});

Deno.test("isolate: an open pipe keeps the process alive; closed pipes (closed twice, too) do not", async () => {
  const out = await new Deno.Command("deno", {
    args: [
      "run",
      "--no-check",
      "--allow-read",
      "--allow-env", // under `deno task mutate`, the child runs the mutant too
      new URL("./_mutants_channel_keepalive_child.ts", import.meta.url).pathname,
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(15_000), // a process kept alive for good is killed
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals([out.code, out.signal], [0, null], stderr);
  assertEquals(new TextDecoder().decode(out.stdout), "alive\n", "alive until the last pipe closed");
});

Deno.test("isolate pipe: a reader that slept leaves the accept state alone", async () => {
  const name = freshName();
  const l = new IsolateListener(name);
  const dialing = dialIsolate(name, 16);
  const acceptor = await l.accept();
  const connector = await dialing;
  const pairs: [IsolatePipe, IsolatePipe][] = [[connector, acceptor], [acceptor, connector]];
  for (const [w, r] of pairs) {
    const reading = r.read(new Uint8Array(4));
    assert(await pending(reading));
    await w.write(bytes(1, 2));
    assertEquals(await reading, 2);
  }
  assert(!(await pending(connector.accepted())), "still accepted");
  l.close();
  connector.close();
  acceptor.close();
});

/** The far end of a link: the other port of a MessageChannel, recording what arrives. */
function farEnd(port: MessagePort) {
  const got: { t: string; names?: string[]; name?: string; sab?: SharedArrayBuffer }[] = [];
  let wake: (() => void) | null = null;
  port.onmessage = (e) => {
    got.push(e.data);
    wake?.();
  };
  return {
    got,
    post: (m: unknown) => port.postMessage(m),
    async next(): Promise<(typeof got)[number]> {
      for (let i = 0; got.length === 0 && i < 400; i++) {
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 50);
        });
      }
      const m = got.shift();
      if (m === undefined) throw new Error("nothing arrived over the link");
      return m;
    },
  };
}

function acceptByHand(sab: SharedArrayBuffer): IsolatePipe {
  const c = new Int32Array(sab, 0, 16);
  Atomics.store(c, 0, 1); // STATE: accepted
  Atomics.notify(c, 0);
  return new IsolatePipe(sab, "acceptor");
}

Deno.test("isolate link: names go up and down, connects cross it, and its death closes them", async () => {
  const here = freshName();
  const there = freshName();
  const l = new IsolateListener(here);
  const mc = new MessageChannel();
  const far = farEnd(mc.port2);
  const link = new Link(mc.port1);
  const up = await far.next();
  assertEquals(up.t, "up");
  assert(up.names!.includes(here), "a new link hears this isolate's names");
  // The far isolate listens on `there`; a name it announces that is local here is ignored.
  far.post({ t: "up", names: [there, here] });
  await whenKnown(there, AbortSignal.timeout(20_000));
  const inUse = assertThrowsAddrInUse(() => new IsolateListener(there));
  assertEquals(inUse, `another isolate listens on isolate|${there}`);
  // A connect from the far side for a name it routes itself is refused, not sent back.
  const loop = IsolatePipe.create(16);
  far.post({ t: "connect", name: there, sab: loop.sab });
  await assertRejects(() => loop.accepted(), Deno.errors.ConnectionRefused);
  loop.close();
  far.got.length = 0;
  // A connect to `there` goes over the link; the far side accepts it.
  const dialing = dialIsolate(there, 16);
  const connect = await far.next();
  assertEquals([connect.t, connect.name], ["connect", there]);
  // (the refused loop's connector was remembered first)
  assertEquals([...link.pipes.values()], ["connector", "acceptor"], "the side beyond the link");
  const acceptor = acceptByHand(connect.sab!);
  const connector = await dialing;
  await connector.write(bytes(3, 2));
  assertEquals(await readExactly(acceptor, 2), bytes(3, 2));
  // A connect from the far side reaches the local listener.
  const theirs = IsolatePipe.create(16);
  far.post({ t: "connect", name: here, sab: theirs.sab });
  const accepted = await l.accept();
  await theirs.accepted();
  assertEquals([...link.pipes.values()], ["connector", "acceptor", "connector"]);
  // A local listener going away is announced; so is one coming.
  l.close();
  assertEquals(await far.next(), { t: "down", names: [here] });
  // `here` was never routed over the link (it was local when announced): free to listen on.
  new IsolateListener(here).close();
  assertEquals(await far.next(), { t: "up", names: [here] });
  assertEquals(await far.next(), { t: "down", names: [here] });
  // The far side's "down" for a name it never announced changes nothing here.
  far.post({ t: "down", names: [here] });
  // Its death: both pipes closed on its side, its names gone, onDead called once.
  let dead = 0;
  link.onDead(() => dead++);
  assert(!link.dead);
  link.kill();
  link.kill();
  assert(link.dead);
  assertEquals(dead, 1);
  assert(!isKnown(there), "the far side's names are gone with it");
  assert(connector.peerClosed, "the far acceptor is closed for the connector here");
  assert(accepted.peerClosed, "the far connector is closed for the acceptor here");
  const refused = await assertRejects(() => dialIsolate(there), Deno.errors.ConnectionRefused);
  assertEquals(refused.message, `no isolate listens on isolate|${there}`);
  for (const p of [connector, acceptor, accepted, theirs]) p.close();
  mc.port2.close();
});

Deno.test("isolate link: announcements pass on to the other links, never back", async () => {
  const n = freshName();
  const mx = new MessageChannel();
  const my = new MessageChannel();
  const fx = farEnd(mx.port2);
  const fy = farEnd(my.port2);
  const x = new Link(mx.port1);
  const y = new Link(my.port1);
  fx.post({ t: "up", names: [n] });
  assertEquals(await fy.next(), { t: "up", names: [n] }, "y hears what x announced");
  assert(isKnown(n));
  // A third link learns names known through the other links at once.
  const mz = new MessageChannel();
  const fz = farEnd(mz.port2);
  const z = new Link(mz.port1);
  const zUp = await fz.next();
  assertEquals(zUp.t, "up");
  assert(zUp.names!.includes(n));
  // "down" from a link that does not route the name changes nothing.
  fy.post({ t: "down", names: [n] });
  fx.post({ t: "down", names: [n] });
  assertEquals(await fy.next(), { t: "down", names: [n] });
  assertEquals(await fz.next(), { t: "down", names: [n] });
  assert(!isKnown(n));
  // Nothing went back to x.
  fx.post({ t: "up", names: [n] });
  await whenKnown(n, AbortSignal.timeout(20_000));
  await fy.next();
  await fz.next();
  assertEquals(fx.got, [], "x hears nothing of its own");
  // x dies: its name goes down on the other links; names routed by y stay.
  const byY = freshName();
  fy.post({ t: "up", names: [byY] });
  await whenKnown(byY, AbortSignal.timeout(20_000));
  await fz.next();
  x.kill();
  assert(isKnown(byY));
  assertEquals(await fy.next(), { t: "down", names: [n] });
  assertEquals(await fz.next(), { t: "down", names: [n] });
  y.kill();
  z.kill();
  // A dead link sends nothing.
  y.send({ t: "up", names: ["x"] });
  for (const m of [mx, my, mz]) m.port2.close();
});

Deno.test("isolate link: pipes whose both sides closed are swept from its table", async () => {
  const mc = new MessageChannel();
  const far = farEnd(mc.port2);
  const link = new Link(mc.port1);
  const marker = freshName();
  const nobody = freshName();
  const open = IsolatePipe.create(16); // one pipe still open on both sides
  far.post({ t: "connect", name: nobody, sab: open.sab });
  for (let i = 0; i < 69; i++) {
    const sab = new SharedArrayBuffer(64 + 32); // a pipe's buffer, its sides marked by hand
    const c = new Int32Array(sab, 0, 16);
    if (i !== 0) Atomics.store(c, 1, 1); // closed connector, except for the first
    if (i !== 1) Atomics.store(c, 2, 1); // closed acceptor, except for the second
    far.post({ t: "connect", name: nobody, sab });
  }
  far.post({ t: "up", names: [marker] });
  await whenKnown(marker, AbortSignal.timeout(20_000));
  // At 64 the table was swept: the open pipe and the two half-closed ones stayed, then 6 more.
  assertEquals(link.pipes.size, 3 + 6);
  assertEquals(link.sweepAt, 64);
  await assertRejects(() => open.accepted(), Deno.errors.ConnectionRefused);
  open.close();
  link.kill();
  mc.port2.close();
});
