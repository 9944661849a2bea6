// Tests that kill mutants of the Peers layer (src/_peer_hub.ts, src/connect.ts,
// src/listener.ts, src/server.ts, src/channel.ts) that the other Peers tests let survive,
// over real sockets, TCP and Unix sockets alike.

import { assert, assertEquals, assertRejects, assertStrictEquals } from "@std/assert";
import {
  type Channel,
  connect,
  Engine,
  listen,
  type Message,
  OpCode,
  serve,
  Status,
  statusName,
  TofuError,
} from "../mod.ts";
import { Hub } from "../src/_peer_hub.ts";
import { expectTofuError, peerTransports, within } from "./_peer_fixtures.ts";

/** Whether `m` is in `engine`'s pool now (it was put back). */
function inPool(engine: Engine, m: Message): boolean {
  const out: Message[] = [];
  for (let p = engine.get("poolOnly"); p !== null; p = engine.get("poolOnly")) out.push(p);
  for (const p of out) engine.put(p);
  return out.includes(m);
}

/** Posts a WelcomeRequest for `address` on `hub`'s group; returns its channel number. */
function welcome(hub: Hub, address: string): number {
  const m = hub.engine.get("always")!;
  m.bhdr.opCode = OpCode.WelcomeRequest;
  m.headers.append("~listen_on", address);
  return hub.group.post(m).channelNumber;
}

/** A route that records what it gets. */
function recorder() {
  const got: Message[] = [];
  let gone = 0;
  let wake: (() => void) | null = null;
  return {
    got,
    get gone() {
      return gone;
    },
    route: {
      deliver(m: Message) {
        got.push(m);
        wake?.();
      },
      gone() {
        gone++;
      },
    },
    async next(): Promise<Message> {
      while (got.length === 0) await new Promise<void>((r) => wake = r);
      return got.shift()!;
    },
  };
}

for (const t of peerTransports) {
  Deno.test(`${t.name}: Hub: a route that throws loses its message to the pool, the pump goes on`, async () => {
    await using engine = new Engine();
    const hub = new Hub(engine, () => {
      throw new Error("the fallback must not be called");
    });
    const thrown: Message[] = [];
    const a = welcome(hub, t.any());
    hub.route(a, {
      deliver(m) {
        thrown.push(m);
        throw new Error("route failure");
      },
      gone() {},
    });
    const b = welcome(hub, t.any());
    const rec = recorder();
    hub.route(b, rec.route);
    const m = await within(rec.next(), 20_000, "the second WelcomeResponse");
    assertEquals([m.bhdr.opCode, m.bhdr.status], [OpCode.WelcomeResponse, Status.success]);
    engine.put(m);
    assertEquals(thrown.length, 1, "the throwing route was called first");
    assert(inPool(engine, thrown[0]!), "the message the route failed on is back in the pool");
    assert(!hub.destroyed);
    await hub.destroy();
    assert(hub.destroyed);
    assertEquals(rec.gone, 1, "a route hears gone() once");
    await hub.destroy(); // again: nothing happens
    assertEquals(rec.gone, 1);
  });

  Deno.test(`${t.name}: Hub: unrouted messages go to the fallback, or back to the pool without one`, async () => {
    await using engine = new Engine();
    const fallen: Message[] = [];
    const withFallback = new Hub(engine, (m) => fallen.push(m));
    const n = welcome(withFallback, t.any());
    for (let i = 0; i < 2000 && fallen.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assertEquals(fallen.map((m) => [m.bhdr.opCode, m.bhdr.channelNumber]), [[
      OpCode.WelcomeResponse,
      n,
    ]]);
    engine.put(fallen.pop());
    await withFallback.destroy();

    // Without a fallback (a client's hub): an unrouted message is put back.
    const plain = new Hub(engine);
    const rec = recorder();
    // Route the first, let the second pass unrouted, then route a third to know it passed.
    const first = welcome(plain, t.any());
    plain.route(first, rec.route);
    engine.put(await within(rec.next(), 20_000, "the first WelcomeResponse"));
    const drop = engine.get("always")!;
    drop.bhdr.opCode = OpCode.WelcomeRequest;
    drop.headers.append("~listen_on", t.any());
    plain.group.post(drop);
    const third = welcome(plain, t.any());
    plain.route(third, rec.route);
    engine.put(await within(rec.next(), 20_000, "the third WelcomeResponse"));
    // Responses come in posting order: the unrouted one was handled before the third.
    assert(inPool(engine, drop), "the unrouted WelcomeResponse is back in the pool");
    await plain.destroy();
  });

  Deno.test(`${t.name}: Hub: unroute() removes only the route it is given; gone() reaches the rest`, async () => {
    await using engine = new Engine();
    const fallen: Message[] = [];
    const hub = new Hub(engine, (m) => fallen.push(m));
    const a = recorder();
    const b = recorder();
    const n = welcome(hub, t.any());
    hub.route(n, a.route);
    hub.unroute(n, b.route); // not its route: a stays
    engine.put(await within(a.next(), 20_000, "the WelcomeResponse"));
    hub.unroute(n, a.route);
    // The group's channels close with the engine: their reports reach nobody but the fallback.
    const other = recorder();
    const m = welcome(hub, t.any());
    hub.route(m, other.route);
    engine.put(await within(other.next(), 20_000, "the second WelcomeResponse"));
    await engine.close();
    await hub.destroy(); // the engine was closed first: quiet
    assert(hub.destroyed);
    assertEquals([a.gone, b.gone, other.gone], [0, 0, 1]);
    for (const f of fallen) engine.put(f);
  });
}
