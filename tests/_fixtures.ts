// Shared fixtures of the engine tests: transports, a listening server and a handshake.

import { assert, assertEquals } from "@std/assert";
import {
  type ChannelGroup,
  encodeFrame,
  type Engine,
  IsolateClientAddress,
  IsolateServerAddress,
  Message,
  OpCode,
  Status,
  statusName,
  TcpClientAddress,
  TcpServerAddress,
  UdsClientAddress,
  UdsServerAddress,
} from "../mod.ts";
import { freeTcpPort, tempUdsPath } from "../testing.ts";
import type { Conn } from "../src/_transport.ts";
import { dialIsolate } from "../src/_transport_isolate.ts";

type ServerAddress = TcpServerAddress | UdsServerAddress | IsolateServerAddress;
type ClientAddress = TcpClientAddress | UdsClientAddress | IsolateClientAddress;

export interface Transport {
  name: "tcp" | "uds" | "isolate";
  /** A fresh address to listen on. */
  listenAt(): ServerAddress;
  /** The client address for a bound `~listen_on` value. */
  connectTo(bound: string): ClientAddress;
  /** An address nobody listens on. */
  nobody(): ClientAddress;
  /** A fixed server address and the client address that reaches it. */
  pair(): [ServerAddress, ClientAddress];
}

/** A transport over real sockets. */
export interface SocketTransport extends Transport {
  name: "tcp" | "uds";
}

export const transports: SocketTransport[] = [
  {
    name: "tcp",
    listenAt: () => new TcpServerAddress("127.0.0.1", 0),
    connectTo: (bound) => TcpClientAddress.parse(bound),
    // A port bound and released: nothing listens on it afterwards.
    nobody: () => new TcpClientAddress("127.0.0.1", freeTcpPort()),
    pair: () => {
      const port = freeTcpPort();
      return [new TcpServerAddress("127.0.0.1", port), new TcpClientAddress("127.0.0.1", port)];
    },
  },
  {
    name: "uds",
    listenAt: () => new UdsServerAddress(tempUdsPath()),
    connectTo: (bound) => UdsClientAddress.parse(bound),
    nobody: () => new UdsClientAddress(tempUdsPath()),
    pair: () => {
      const path = tempUdsPath();
      return [new UdsServerAddress(path), new UdsClientAddress(path)];
    },
  },
];

let isolateNames = 0;
function isolateName(): string {
  return `test-${Deno.pid}-${++isolateNames}`;
}

/**
 * Channels between isolates (src/_transport_isolate.ts) without a socket. In one isolate both
 * ends share the process's registry, which runs the same pipe code as across Workers
 * (tests/workers_test.ts covers the Workers themselves).
 */
export const isolateTransport: Transport = {
  name: "isolate",
  listenAt: () => new IsolateServerAddress(isolateName()),
  connectTo: (bound) => IsolateClientAddress.parse(bound),
  nobody: () => new IsolateClientAddress(isolateName()),
  pair: () => {
    const name = isolateName();
    return [new IsolateServerAddress(name), new IsolateClientAddress(name)];
  },
};

/** The transports the section-9 lifecycle suite runs over: sockets and isolate channels. */
export const lifecycleTransports: Transport[] = [...transports, isolateTransport];

/** Receives the next message or fails the test after `ms`. */
export async function recv(group: ChannelGroup, ms = 5000): Promise<Message> {
  const m = await group.waitReceive(ms);
  if (m === null) throw new Error(`no message within ${ms} ms`);
  return m;
}

/** Asserts that nothing arrives within `ms`. */
export async function assertQuiet(group: ChannelGroup, ms = 100): Promise<void> {
  const m = await group.waitReceive(ms);
  assert(
    m === null,
    `unexpected message: op ${m?.bhdr.opCode} status ${statusName(m?.bhdr.status ?? 0)}`,
  );
}

export function expect(
  m: Message,
  op: number,
  status: number,
  what = "",
): Message {
  assertEquals(
    [m.bhdr.opCode, statusName(m.bhdr.status)],
    [op, statusName(status)],
    `${what} (error: ${m.error?.message})`,
  );
  return m;
}

/** Asserts the final report of a closed channel. */
export function expectClosed(m: Message, channel: number, id?: bigint): void {
  expect(m, OpCode.Signal, Status.channelClosed, "channel_closed Signal");
  assert(m.isFromEngine());
  assertEquals(m.bhdr.channelNumber, channel);
  if (id !== undefined) assertEquals(m.bhdr.messageId, id);
}

export interface Server {
  group: ChannelGroup;
  channel: number;
  bound: string;
}

/** Starts a listener in a new group and waits for its WelcomeResponse. */
export async function listen(engine: Engine, t: Transport): Promise<Server> {
  const group = engine.create();
  const req = t.listenAt().format(engine.get("always")!);
  const { channelNumber } = group.post(req);
  const welcome = expect(await recv(group), OpCode.WelcomeResponse, Status.success, "welcome");
  assertEquals(welcome.bhdr.channelNumber, channelNumber);
  const bound = welcome.headers.get("~listen_on")!;
  engine.put(welcome);
  return { group, channel: channelNumber, bound };
}

export interface Link {
  client: ChannelGroup;
  clientCh: number;
  serverCh: number;
  helloId: bigint;
}

/** Connects a new client group to `server` and completes the Hello handshake. */
export async function connect(engine: Engine, t: Transport, server: Server): Promise<Link> {
  const client = engine.create();
  const hello = t.connectTo(server.bound).format(engine.get("always")!);
  const posted = client.post(hello);
  const req = expect(await recv(server.group), OpCode.HelloRequest, Status.success, "hello");
  assertEquals(req.bhdr.messageId, posted.messageId);
  const serverCh = req.bhdr.channelNumber;
  req.bhdr.opCode = OpCode.HelloResponse;
  server.group.post(req);
  const resp = expect(await recv(client), OpCode.HelloResponse, Status.success, "hello response");
  assertEquals(resp.bhdr.channelNumber, posted.channelNumber);
  assertEquals(resp.bhdr.messageId, posted.messageId);
  engine.put(resp);
  return { client, clientCh: posted.channelNumber, serverCh, helloId: posted.messageId };
}

/** A message ready to post on `channel`. */
export function make(
  engine: Engine,
  channel: number,
  op: number,
  body = "",
  id = 0n,
): Message {
  const m = engine.get("always")!;
  m.bhdr.channelNumber = channel;
  m.bhdr.opCode = op;
  m.bhdr.messageId = id;
  if (body) m.body.set(body);
  return m;
}

/** A raw byte stream to a listener: a socket, or an isolate pipe (src/_transport.ts). */
export type RawConn = Conn;

/** Opens a raw connection to a bound `~listen_on` address (a hand-driven peer). */
export function rawConnect(bound: string): Promise<RawConn> {
  const [kind, a, b] = bound.split("|");
  if (kind === "isolate") return dialIsolate(a!);
  return kind === "tcp"
    ? Deno.connect({ hostname: a!, port: Number(b) })
    : Deno.connect({ transport: "unix", path: a! });
}

/** Reads from `conn` until EOF; returns the bytes read. */
export async function readToEnd(conn: RawConn): Promise<number> {
  const buf = new Uint8Array(65536);
  let total = 0;
  for (;;) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) return total;
    total += n;
  }
}

/**
 * Waits until `cond()` holds, checking every 5 ms; fails after `ms` (a bound for something
 * that must happen, so that a mutant that stops it fails the test instead of hanging it).
 */
export async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Writes all of `bytes` (conn.write may write fewer bytes than it is given). */
export async function writeAll(conn: RawConn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

/** A ByeSignal with internalA on `channel`: posting it aborts the channel (or closes a listener). */
export function makeAbort(engine: Engine, channel: number): Message {
  const m = make(engine, channel, OpCode.ByeSignal);
  m.bhdr.internalA = 1;
  return m;
}

/**
 * The bytes a flooding raw peer writes: a HelloRequest with message id 1, then Signals with
 * ids 2 to `n`, all without a body.
 */
export function floodFrames(n: number): Uint8Array {
  const m = new Message();
  const frames: Uint8Array[] = [];
  for (let id = 1; id <= n; id++) {
    m.bhdr.opCode = id === 1 ? OpCode.HelloRequest : OpCode.Signal;
    m.bhdr.messageId = BigInt(id);
    frames.push(encodeFrame(m));
  }
  return new Uint8Array(frames.flatMap((f) => [...f]));
}

/** Receives from `group` until `count` channel_closed messages came, putting each back. */
export async function recvUntilClosed(
  engine: Engine,
  group: ChannelGroup,
  count = 1,
): Promise<void> {
  for (let closed = 0; closed < count;) {
    const m = await recv(group);
    if (m.bhdr.status === Status.channelClosed) closed++;
    engine.put(m);
  }
}

/**
 * Runs `deno run <flags> <script>` in a child process, asserts that it exits with 0 (its
 * stderr is the failure message) and returns the JSON value of the last line it printed.
 */
export async function runChildJson(
  script: URL,
  flags: string[],
): Promise<ReturnType<typeof JSON.parse>> {
  const out = await new Deno.Command("deno", {
    args: ["run", ...flags, script.pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
}
