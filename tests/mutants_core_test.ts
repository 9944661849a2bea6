// Issue #13, mut-core: the hand-back scheduler of src/_engine_core.ts (withdrawHandBack,
// the shared slice) and the listen under way (#openListener's gone() checks). Each test
// here kills survivors of the Stryker run of 2026-11-22 (docs/testing.md, "mut-core").

import { assert, assertEquals } from "@std/assert";
import {
  type ChannelGroup,
  Engine,
  type Message,
  OpCode,
  Status,
  UdsServerAddress,
} from "../mod.ts";
import { tempUdsPath } from "../testing.ts";
import { listen, make, makeAbort, recv, transports } from "./_fixtures.ts";

/** Lets the event loop turn once (a macrotask). */
const turn = () => new Promise((r) => setTimeout(r, 0));

/** The final channel_closed Signal (a handed-back Signal of these tests has a body). */
const isClosed = (m: Message | undefined) =>
  m !== undefined && m.isFromEngine() && m.bhdr.opCode === OpCode.Signal &&
  m.bhdr.status === Status.channelClosed && m.body.byteLength === 0;

/**
 * Watches the engine's hand-back timer (the callback is the engine's `#handBackSlice`
 * field): `pending` holds the ids of those armed and neither fired nor cleared.
 */
function watchHandBackTimer() {
  const set = globalThis.setTimeout;
  const clear = globalThis.clearTimeout;
  type Id = ReturnType<typeof setTimeout>;
  const pending = new Set<Id>();
  let armed = 0;
  globalThis.setTimeout = ((fn: unknown, ms?: number, ...args: unknown[]) => {
    if (typeof fn === "function" && fn.name === "#handBackSlice") {
      armed++;
      const id: Id = set(() => {
        pending.delete(id);
        fn(...args);
      }, ms);
      pending.add(id);
      return id;
    }
    // deno-lint-ignore no-explicit-any
    return set(fn as any, ms, ...args);
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((id?: Id) => {
    if (id !== undefined) pending.delete(id);
    clear(id);
  }) as typeof clearTimeout;
  return {
    pending,
    get armed() {
      return armed;
    },
    [Symbol.dispose]() {
      globalThis.setTimeout = set;
      globalThis.clearTimeout = clear;
    },
  };
}

/** Opens `k` client channels in `client` to `server`; returns their numbers. */
async function openChannels(
  engine: Engine,
  t: (typeof transports)[number],
  server: Awaited<ReturnType<typeof listen>>,
  client: ChannelGroup,
  k: number,
): Promise<number[]> {
  const chs: number[] = [];
  for (let i = 0; i < k; i++) {
    const hello = t.connectTo(server.bound).format(engine.get("always")!);
    chs.push(client.post(hello).channelNumber);
    let req = await recv(server.group);
    while (req.bhdr.opCode !== OpCode.HelloRequest) { // reports of earlier channels
      engine.put(req);
      req = await recv(server.group);
    }
    req.bhdr.opCode = OpCode.HelloResponse;
    server.group.post(req);
    engine.put(await recv(client));
  }
  return chs;
}

/** Posts `n` Signals with bodies `${ch}:${i}` on each channel, then aborts them all. */
function fillAndAbort(engine: Engine, g: ChannelGroup, chs: number[], n: number): void {
  for (const ch of chs) {
    for (let i = 0; i < n; i++) g.post(make(engine, ch, OpCode.Signal, `${ch}:${i}`));
  }
  for (const ch of chs) g.post(makeAbort(engine, ch));
}

for (const t of transports) {
  // withdrawHandBack: a group destroyed while its channel hands back withdraws the job;
  // with no job left the timer goes at once (it was left armed with the job still listed).
  // The last job of a group that finishes leaves no timer either (it was re-armed forever).
  Deno.test(`${t.name}: the hand-back timer is armed only while a channel hands back`, async () => {
    using timer = watchHandBackTimer();
    await using engine = new Engine({ maxQueuedBytes: 2 ** 26 });
    const server = await listen(engine, t);
    const g1 = engine.create();
    const [c1] = await openChannels(engine, t, server, g1, 1);
    fillAndAbort(engine, g1, [c1!], 5_000);
    engine.put(await recv(g1)); // the abort's ByeSignal
    engine.put(await recv(g1)); // the hand-back has begun
    assertEquals(timer.pending.size, 1, "one hand-back timer while the channel hands back");
    await engine.destroy(g1);
    assertEquals(timer.pending.size, 0, "a hand-back timer left after its only job went");
    const armed = timer.armed;
    await turn();
    await turn();
    assertEquals(timer.armed, armed, "the hand-back timer came back with no job");

    // A channel that hands back all of its messages: no timer once channel_closed is out.
    const g2 = engine.create();
    const [c2] = await openChannels(engine, t, server, g2, 1);
    fillAndAbort(engine, g2, [c2!], 3_000);
    engine.put(await recv(g2)); // the abort's ByeSignal
    let i = 0;
    for (let closed = false; !closed;) {
      const m = await recv(g2);
      if (isClosed(m)) closed = true;
      else assertEquals(m.body.text(), `${c2}:${i++}`);
      engine.put(m);
    }
    assertEquals(i, 3_000, "every message came back");
    await turn();
    await turn();
    assertEquals(timer.pending.size, 0, "a hand-back timer armed with no job left");
  });

  // Two channels hand back; the group of the first (the oldest job) is destroyed: the
  // other goes on to its channel_closed, and the timer stays only as long as it does.
  Deno.test(`${t.name}: withdrawing the oldest of two hand-backs leaves the other's and then no timer`, async () => {
    using timer = watchHandBackTimer();
    await using engine = new Engine({ maxQueuedBytes: 2 ** 26 });
    const server = await listen(engine, t);
    const g1 = engine.create();
    const g2 = engine.create();
    const [c1] = await openChannels(engine, t, server, g1, 1);
    const [c2] = await openChannels(engine, t, server, g2, 1);
    fillAndAbort(engine, g1, [c1!], 5_000);
    engine.put(await recv(g1)); // the abort's ByeSignal
    engine.put(await recv(g1)); // g1's job is listed (the oldest)
    fillAndAbort(engine, g2, [c2!], 5_000);
    engine.put(await recv(g2));
    engine.put(await recv(g2)); // g2's job is listed
    await engine.destroy(g1);
    assertEquals(timer.pending.size, 1, "the other channel still hands back");
    let i = 0;
    for (let closed = false; !closed;) {
      const m = await recv(g2);
      assertEquals(m.bhdr.channelNumber, c2);
      if (isClosed(m)) closed = true;
      else i++;
      engine.put(m);
    }
    assertEquals(i, 5_000 - 1, "the rest of g2's messages came back");
    await turn();
    await turn();
    assertEquals(timer.pending.size, 0, "a hand-back timer armed with no job left");
  });

  // The slice is shared: three channels closing at once (512 is not a multiple of 3) all
  // hand back in every turn, so none closes before all have begun. With the share
  // computed as budget * jobs the oldest took the whole slice until it was done; with
  // Math.min(1, ...) the share became 0 once the budget fell below the jobs: a slice that
  // never ended.
  Deno.test(`${t.name}: three channels closing at once share each turn's slice`, async () => {
    await using engine = new Engine({ maxQueuedBytes: 2 ** 26 });
    const server = await listen(engine, t);
    const client = engine.create();
    const chs = await openChannels(engine, t, server, client, 3);
    const n = 10_000; // many turns: a channel whose job starts a few turns late still overlaps
    fillAndAbort(engine, client, chs, n);
    const next = new Map<number, number>(chs.map((ch) => [ch, 0]));
    const begun = new Set<number>();
    let closed = 0;
    while (closed < chs.length) {
      const m = await recv(client);
      const ch = m.bhdr.channelNumber;
      if (isClosed(m)) {
        assertEquals(
          begun.size,
          chs.length,
          `channel ${ch} closed before every channel had begun to hand back`,
        );
        assertEquals(next.get(ch), n, `channel ${ch}: all back before channel_closed`);
        closed++;
      } else if (m.bhdr.opCode === OpCode.Signal) {
        begun.add(ch);
        const i = next.get(ch)!;
        assertEquals(m.body.text(), `${ch}:${i}`);
        next.set(ch, i + 1);
      }
      engine.put(m);
    }
  });

  // destroy() closes its channels silently: their unsent messages are dropped at once, not
  // handed back over many turns to a group that can no longer receive them (the close
  // without `silent` armed the hand-back timer and built a message of every frame).
  Deno.test(`${t.name}: destroying a group drops its channels' unsent messages at once`, async () => {
    using timer = watchHandBackTimer();
    await using engine = new Engine({ maxQueuedBytes: 2 ** 26 });
    const server = await listen(engine, t);
    const g = engine.create();
    const chs = await openChannels(engine, t, server, g, 2);
    for (const ch of chs) {
      for (let i = 0; i < 3_000; i++) g.post(make(engine, ch, OpCode.Signal, `${ch}:${i}`));
    }
    const armed = timer.armed;
    await engine.destroy(g);
    await turn();
    await turn();
    assertEquals(timer.armed, armed, "the destroyed group's channels handed back");
    assertEquals(timer.pending.size, 0, "a hand-back timer left");
  });

  // #openListener's gone(): a listen posted and its group destroyed (or the engine
  // closed) in the same turn never listens; the number and the WelcomeRequest are given
  // back exactly once (a second recycle put the same message twice in the pool).
  for (const end of ["destroy", "close"] as const) {
    Deno.test(`${t.name}: a listen whose group ends (${end}) in the same turn gives back the welcome once`, async () => {
      const engine = new Engine({ initialPoolMsgs: 4 });
      try {
        const g = engine.create();
        const pooled = engine.poolSize;
        g.post(t.listenAt().format(engine.get("always")!));
        if (end === "destroy") {
          await engine.destroy(g);
          assertEquals(engine.channelCount, 0, "a channel left");
          assertEquals(engine.poolSize, pooled, "the WelcomeRequest went back to the pool");
          const taken = new Set<Message>();
          for (let i = 0; i < pooled + 2; i++) {
            const m = engine.get("always")!;
            assert(!taken.has(m), "the pool handed out one message twice");
            taken.add(m);
          }
          for (const m of taken) engine.put(m);
        } else {
          await engine.close();
          assertEquals(engine.channelCount, 0, "a channel left");
        }
      } finally {
        await engine.close();
      }
    });
  }
}

/** A dead Unix socket file at a fresh path (as a killed process leaves it); its inode. */
function staleSocket(): { path: string; ino: number } {
  const path = tempUdsPath();
  const other = `${path}.link`;
  const l = Deno.listen({ transport: "unix", path });
  Deno.linkSync(path, other); // a second name: Deno unlinks only `path` at the close
  l.close();
  Deno.renameSync(other, path);
  const st = Deno.lstatSync(path);
  assert(st.isSocket);
  return { path, ino: st.ino! };
}

// The listen under way must stop at its first check when the group (or the engine) ended
// meanwhile: with that check gone it probed a dead socket file at the path, removed it,
// bound the path and closed again. Unix sockets only: only there a listen that never
// should have happened leaves a trace (the file it took over is gone).
for (const end of ["destroy", "close"] as const) {
  Deno.test(`uds: a listen whose group ends (${end}) in the same turn leaves the path alone`, async () => {
    const { path, ino } = staleSocket();
    try {
      const engine = new Engine();
      try {
        const g = engine.create();
        g.post(new UdsServerAddress(path).format(engine.get("always")!));
        if (end === "destroy") await engine.destroy(g);
        else await engine.close();
        assertEquals(Deno.lstatSync(path).ino, ino, "the dead socket file was taken over");
        // Nothing holds the path: a new listen takes the dead file over.
        if (end === "destroy") {
          const g2 = engine.create();
          g2.post(new UdsServerAddress(path).format(engine.get("always")!));
          const w = await recv(g2);
          assertEquals(w.bhdr.opCode, OpCode.WelcomeResponse);
          assertEquals(w.bhdr.status, Status.success);
          engine.put(w);
        }
      } finally {
        await engine.close();
      }
    } finally {
      try {
        Deno.removeSync(path);
      } catch {
        // the new listener's close removed it
      }
    }
  });
}
