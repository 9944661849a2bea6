// A load scenario with a strict accounting check, shared by tests/accounting_test.ts
// (bounded, in CI) and tools/soak.ts (timed, by hand).
//
// Clients stream mixed messages (Requests, Signals, `more` streams) to one server, which
// answers every Request. Each channel ends with a graceful bye, an abort by the client
// or an abort by the server, chosen by a seeded PRNG. Every message carries a unique tag,
// so afterwards each direction of each channel can be checked:
// - graceful channels: every posted message was received by the peer exactly once, or
//   handed back to its sender with a status (never both, never neither);
// - aborted channels: nothing received twice or invented; what was posted but neither
//   received nor handed back was lost in flight (written, then discarded by the abort)
//   and is counted.

import {
  type ChannelGroup,
  Engine,
  type IsolateClientAddress,
  type IsolateServerAddress,
  type Message,
  OpCode,
  Status,
  type TcpClientAddress,
  type TcpServerAddress,
  type UdsClientAddress,
  type UdsServerAddress,
} from "../mod.ts";
import { seededRandom } from "./_rng.ts";

export interface LoadOptions {
  clients: number;
  messagesPerClient: number;
  seed: number;
  listenAt: () => TcpServerAddress | UdsServerAddress | IsolateServerAddress;
  connectTo: (bound: string) => TcpClientAddress | UdsClientAddress | IsolateClientAddress;
  /** Share of channels aborted by the client and by the server (default 0.2 each). */
  abortShare?: number;
}

export type Mode = "graceful" | "clientAbort" | "serverAbort";

export interface Direction {
  posted: number;
  refused: number;
  received: number;
  returned: number;
  lost: number;
  /** Received and also handed back (possible only on aborted channels). */
  both: number;
  problems: string[];
}

export interface ChannelReport {
  client: number;
  mode: Mode;
  c2s: Direction;
  s2c: Direction;
}

export interface LoadReport {
  channels: ChannelReport[];
  problems: string[];
  messages: number;
  lostInFlight: number;
  handedBack: number;
  ms: number;
}

class Tally {
  posted = new Set<string>();
  refused = 0;
  received = new Map<string, number>();
  returned = new Map<string, number>();

  check(mode: Mode, what: string): Direction {
    const problems: string[] = [];
    let lost = 0;
    let both = 0;
    for (const [tag, n] of this.received) {
      if (!this.posted.has(tag)) problems.push(`${what}: ${tag} received but never posted`);
      if (n > 1) problems.push(`${what}: ${tag} received ${n} times`);
    }
    for (const [tag, n] of this.returned) {
      if (!this.posted.has(tag)) problems.push(`${what}: ${tag} handed back but never posted`);
      if (n > 1) problems.push(`${what}: ${tag} handed back ${n} times`);
    }
    for (const tag of this.posted) {
      const got = this.received.has(tag);
      const back = this.returned.has(tag);
      if (got && back) {
        both++;
        if (mode === "graceful") problems.push(`${what}: ${tag} both received and handed back`);
      } else if (!got && !back) {
        lost++;
        if (mode === "graceful") problems.push(`${what}: ${tag} neither received nor handed back`);
      }
    }
    return {
      posted: this.posted.size,
      refused: this.refused,
      received: this.received.size,
      returned: this.returned.size,
      lost,
      both,
      problems,
    };
  }
}

/** A message handed back to its sender (not a notice such as pool_empty). */
function isHandedBack(m: Message): boolean {
  const op = m.bhdr.opCode;
  const st = m.bhdr.status;
  return m.isFromEngine() && st !== Status.success && st !== Status.poolEmpty &&
    (op === OpCode.Request || op === OpCode.Response || op === OpCode.Signal) &&
    !isFinalReport(m);
}

/** A channel's final report: an engine Signal with channel_closed and no body. */
function isFinalReport(m: Message): boolean {
  return m.isFromEngine() && m.bhdr.opCode === OpCode.Signal &&
    m.bhdr.status === Status.channelClosed && m.body.byteLength === 0;
}

function bump(map: Map<string, number>, tag: string): void {
  map.set(tag, (map.get(tag) ?? 0) + 1);
}

const decoder = new TextDecoder();

/** The tag is the body up to its first space. */
function tagOf(m: Message): string {
  const bytes = m.body.bytes();
  const space = bytes.indexOf(0x20);
  return decoder.decode(space < 0 ? bytes : bytes.subarray(0, space));
}

/** Drains `group`, calling `handle` per message, until `handle` returns true. */
async function drain(group: ChannelGroup, handle: (m: Message) => boolean): Promise<void> {
  for (;;) {
    const first = group.tryReceive() ?? await group.waitReceive(30_000);
    if (first === null) throw new Error("Cannot finish the load: no message for 30 s");
    for (let m: Message | null = first; m !== null; m = group.tryReceive()) {
      if (handle(m)) return;
    }
  }
}

interface ClientState {
  mode: Mode;
  abortAt: number;
  c2s: Tally;
  s2c: Tally;
}

export async function runLoad(o: LoadOptions): Promise<LoadReport> {
  const started = performance.now();
  const rand = seededRandom(o.seed);
  const share = o.abortShare ?? 0.2;
  const states: ClientState[] = Array.from({ length: o.clients }, () => {
    const r = rand();
    const mode: Mode = r < share ? "clientAbort" : r < 2 * share ? "serverAbort" : "graceful";
    return {
      mode,
      abortAt: 1 + Math.floor(rand() * (o.messagesPerClient - 1)),
      c2s: new Tally(),
      s2c: new Tally(),
    };
  });

  await using serverEngine = new Engine({ initialPoolMsgs: 256, maxPoolMsgs: 4096 });
  await using clientEngine = new Engine({ initialPoolMsgs: 256, maxPoolMsgs: 4096 });
  const server = serverEngine.create();
  server.post(o.listenAt().format(serverEngine.get("always")!));
  const welcome = await server.waitReceive(5000);
  if (welcome?.bhdr.status !== Status.success) {
    throw new Error(`Cannot start the load: ${welcome?.error?.message}`);
  }
  const bound = welcome.headers.get("~listen_on")!;
  serverEngine.put(welcome);

  // Server: answers Hellos, Requests and ByeRequests; aborts the serverAbort channels.
  const clientOf = new Map<number, number>();
  const receivedFrom = new Map<number, number>();
  // The server is done when every client is done and every channel it saw a Hello on has
  // closed. (A client that aborts before its Hello is written leaves the server a
  // connection that closes without a frame: nothing to account for there.)
  let clientsDone = false;
  // channel_closed reports per server channel: exactly one each.
  const serverClosed = new Map<string, number>();
  const closeProblems: string[] = [];
  const serving = drain(server, (m) => {
    const ch = m.bhdr.channelNumber;
    const op = m.bhdr.opCode;
    if (m.isFromEngine()) {
      const i = clientOf.get(ch);
      if (isFinalReport(m)) {
        clientOf.delete(ch);
        bump(serverClosed, String(ch));
      } else if (i !== undefined && isHandedBack(m)) {
        bump(states[i]!.s2c.returned, tagOf(m));
      }
      serverEngine.put(m);
      return clientsDone && clientOf.size === 0;
    }
    if (op === OpCode.HelloRequest) {
      const i = Number(m.headers.get("client"));
      clientOf.set(ch, i);
      receivedFrom.set(ch, 0);
      m.bhdr.opCode = OpCode.HelloResponse;
      server.post(m);
      return false;
    }
    const i = clientOf.get(ch);
    if (i === undefined) {
      serverEngine.put(m);
      return false;
    }
    const st = states[i]!;
    if (op === OpCode.ByeRequest) {
      m.bhdr.opCode = OpCode.ByeResponse;
      server.post(m);
      return false;
    }
    const tag = tagOf(m);
    bump(st.c2s.received, tag);
    const count = (receivedFrom.get(ch) ?? 0) + 1;
    receivedFrom.set(ch, count);
    if (op === OpCode.Request && !m.hasMore()) {
      // Answer with the same body, tagged for the other direction.
      const reply = serverEngine.get("always")!;
      reply.bhdr.channelNumber = ch;
      reply.bhdr.opCode = OpCode.Response;
      reply.bhdr.messageId = m.bhdr.messageId;
      const rtag = `R${tag}`;
      reply.body.set(`${rtag} answer`);
      try {
        server.post(reply);
        st.s2c.posted.add(rtag);
      } catch {
        st.s2c.refused++;
        serverEngine.put(reply);
      }
    }
    serverEngine.put(m);
    if (st.mode === "serverAbort" && count === st.abortAt) {
      const bye = serverEngine.get("always")!;
      bye.bhdr.channelNumber = ch;
      bye.bhdr.opCode = OpCode.ByeSignal;
      bye.bhdr.internalA = 1;
      server.post(bye);
    }
    return false;
  });

  const client = async (i: number) => {
    const st = states[i]!;
    const crand = seededRandom(o.seed * 31 + i);
    const group = clientEngine.create();
    const hello = o.connectTo(bound).format(clientEngine.get("always")!);
    hello.headers.append("client", String(i));
    const { channelNumber: ch } = group.post(hello);
    let closed = false;
    const receiving = drain(group, (m) => {
      if (m.isFromEngine()) {
        // (A Signal handed back with channel_closed carries its body: not the final report.)
        if (isFinalReport(m)) {
          closed = true;
          clientEngine.put(m);
          return true;
        }
        if (isHandedBack(m)) bump(st.c2s.returned, tagOf(m));
      } else if (m.bhdr.opCode === OpCode.Response) {
        bump(st.s2c.received, tagOf(m));
      }
      clientEngine.put(m);
      return false;
    });
    let seq = 0;
    const post = (op: number, more: 0 | 1, id: bigint, tag: string): boolean => {
      const m = clientEngine.get("always")!;
      m.bhdr.channelNumber = ch;
      m.bhdr.opCode = op;
      m.bhdr.more = more;
      m.bhdr.messageId = id;
      m.body.set(`${tag} ${"p".repeat(Math.floor(crand() * 200))}`);
      try {
        group.post(m);
        st.c2s.posted.add(tag);
        return true;
      } catch {
        st.c2s.refused++;
        clientEngine.put(m);
        return false;
      }
    };
    let sent = 0;
    while (sent < o.messagesPerClient && !closed) {
      if (st.mode === "clientAbort" && sent >= st.abortAt) break;
      const r = crand();
      if (r < 0.5) post(OpCode.Request, 0, 0n, `${i}:${seq++}`);
      else if (r < 0.75) post(OpCode.Signal, 0, 0n, `${i}:${seq++}`);
      else {
        // A stream: 2-5 chunks under one id, the last without `more`.
        const chunks = 2 + Math.floor(crand() * 4);
        const id = BigInt(1_000_000 * (i + 1) + seq);
        for (let c = 0; c < chunks; c++) {
          post(OpCode.Request, c < chunks - 1 ? 1 : 0, id, `${i}:${seq++}`);
        }
      }
      sent++;
      // Yield now and then so writes, reads and aborts interleave with posting.
      if (sent % 64 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    if (!closed) {
      const end = clientEngine.get("always")!;
      end.bhdr.channelNumber = ch;
      if (st.mode === "clientAbort") {
        end.bhdr.opCode = OpCode.ByeSignal;
        end.bhdr.internalA = 1;
      } else end.bhdr.opCode = OpCode.ByeRequest;
      try {
        group.post(end);
      } catch {
        clientEngine.put(end); // already closed by the server's abort
      }
    }
    await receiving;
    // channel_closed is a channel's final report: nothing may follow it.
    for (let m = await group.waitReceive(20); m !== null; m = await group.waitReceive(20)) {
      closeProblems.push(
        `client ${i}: op ${m.bhdr.opCode} status ${m.bhdr.status} after channel_closed`,
      );
      clientEngine.put(m);
    }
  };

  await Promise.all(states.map((_, i) => client(i)));
  clientsDone = true;
  server.updateReceiver(); // wakes the server loop to check whether it is done
  await serving;
  for (let m = await server.waitReceive(20); m !== null; m = await server.waitReceive(20)) {
    if (isFinalReport(m)) {
      bump(serverClosed, String(m.bhdr.channelNumber));
    }
    serverEngine.put(m);
  }
  for (const [ch, n] of serverClosed) {
    if (n > 1) closeProblems.push(`server channel ${ch}: channel_closed delivered ${n} times`);
  }

  const channels = states.map((st, i): ChannelReport => ({
    client: i,
    mode: st.mode,
    c2s: st.c2s.check(st.mode, `client ${i} c2s`),
    s2c: st.s2c.check(st.mode, `client ${i} s2c`),
  }));
  const all = channels.flatMap((c) => [c.c2s, c.s2c]);
  return {
    channels,
    problems: [...all.flatMap((d) => d.problems), ...closeProblems],
    messages: all.reduce((a, d) => a + d.posted, 0),
    lostInFlight: all.reduce((a, d) => a + d.lost, 0),
    handedBack: all.reduce((a, d) => a + d.returned, 0),
    ms: performance.now() - started,
  };
}
