// A hand-driven peer for the I/O channel tests: a plain socket (no tofu engine behind it)
// on one side of a channel, so that every byte written and every report is known.

import { assertEquals } from "@std/assert";
import { type ChannelGroup, type Engine, type Message, OpCode, Status } from "../mod.ts";
import { tempUdsPath } from "../testing.ts";
import { expect, rawConnect, recv, type SocketTransport, writeAll } from "./_fixtures.ts";
import { frame } from "./_attack.ts";

/** Receives until the final channel_closed Signal of `ch`; returns what came before it. */
export async function untilClosed(
  group: ChannelGroup,
  ch: number,
): Promise<{ before: Message[]; closed: Message }> {
  const before: Message[] = [];
  for (;;) {
    const m = await recv(group, 20_000);
    // The engine's own report, not a Signal of ours handed back with the same status.
    if (
      m.bhdr.channelNumber === ch && m.bhdr.opCode === OpCode.Signal &&
      m.bhdr.status === Status.channelClosed && m.isReport()
    ) {
      return { before, closed: m };
    }
    before.push(m);
  }
}

/**
 * Reads `count` whole frames from a raw peer's socket; fails if they have not all come
 * within `ms` (a bound for something that must happen, so that a mutant that stops every
 * write fails the test instead of hanging it).
 */
export async function readFrames(
  conn: Deno.Conn,
  count: number,
  ms = 10_000,
): Promise<Uint8Array[]> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${count} frames did not come within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([readFramesUnbounded(conn, count), late]);
  } finally {
    clearTimeout(timer);
  }
}

async function readFramesUnbounded(conn: Deno.Conn, count: number): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  let buf = new Uint8Array(1 << 16);
  let start = 0;
  let end = 0;
  while (out.length < count) {
    if (end - start >= 16) {
      const size = 16 + ((buf[start + 12]! << 8) | buf[start + 13]!) +
        ((buf[start + 14]! << 8) | buf[start + 15]!);
      if (end - start >= size) {
        out.push(buf.slice(start, start + size));
        start += size;
        continue;
      }
    }
    if (start > 0) {
      buf.copyWithin(0, start, end);
      end -= start;
      start = 0;
    }
    if (end === buf.length) {
      const bigger = new Uint8Array(buf.length * 2);
      bigger.set(buf);
      buf = bigger;
    }
    const n = await conn.read(buf.subarray(end));
    if (n === null) throw new Error(`the socket ended after ${out.length} frames`);
    end += n;
  }
  return out;
}

/** A plain listening socket of transport `t` and the `~connect_to` value that reaches it. */
export function rawListen(t: SocketTransport): { listener: Deno.Listener; bound: string } {
  if (t.name === "tcp") {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    return { listener, bound: `tcp|127.0.0.1|${(listener.addr as Deno.NetAddr).port}` };
  }
  const path = tempUdsPath();
  return { listener: Deno.listen({ transport: "unix", path }), bound: `uds|${path}` };
}

/** A plain socket listener that answers its first client's Hello and then reads nothing. */
export function silentListener(
  t: SocketTransport,
): { listener: Deno.Listener; bound: string; accepted: Promise<Deno.Conn> } {
  const { listener, bound } = rawListen(t);
  const accepted = (async () => {
    const conn = await listener.accept();
    await conn.read(new Uint8Array(4096)); // the HelloRequest
    await writeAll(conn, frame(OpCode.HelloResponse));
    return conn;
  })();
  return { listener, bound, accepted };
}

/** Connects a raw peer to `bound` and sends a HelloRequest; returns the server's channel. */
export async function rawHello(
  engine: Engine,
  group: ChannelGroup,
  bound: string,
  id = 1n,
): Promise<{ conn: Deno.Conn; ch: number }> {
  const conn = await rawConnect(bound) as Deno.Conn;
  await writeAll(conn, frame(OpCode.HelloRequest, "", id));
  const hello = expect(await recv(group), OpCode.HelloRequest, Status.success, "hello");
  assertEquals(hello.bhdr.messageId, id);
  const ch = hello.bhdr.channelNumber;
  engine.put(hello);
  return { conn, ch };
}

/** A client channel of `engine` connected to a plain socket that answered its Hello. */
export async function rawServed(
  engine: Engine,
  t: SocketTransport,
): Promise<{ client: ChannelGroup; ch: number; conn: Deno.Conn; listener: Deno.Listener }> {
  const { listener, bound } = rawListen(t);
  const client = engine.create();
  const accepted = listener.accept();
  const hello = engine.get("always")!;
  hello.bhdr.opCode = OpCode.HelloRequest;
  hello.headers.append("~connect_to", bound);
  const { channelNumber: ch } = client.post(hello);
  const conn = await accepted;
  await writeAll(conn, frame(OpCode.HelloResponse));
  expect(await recv(client), OpCode.HelloResponse, Status.success, "hello response");
  return { client, ch, conn, listener };
}
