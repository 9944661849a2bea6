// Shared fixtures of the Peers-layer tests: the transports as address strings, and the
// assertions on rejections and deadlines they all use.

import { assert, assertEquals, assertRejects } from "@std/assert";
import { delay } from "@std/async/delay";
import {
  encodeFrame,
  type Engine,
  Message,
  OpCode,
  Status,
  statusName,
  TofuError,
} from "../mod.ts";
import { freeTcpPort, tempUdsPath } from "../testing.ts";

export interface PeerTransport {
  name: "tcp" | "uds";
  /** An address to listen on (TCP: port 0). */
  any(): string;
  /** A fixed address that can be listened on again after a restart. */
  fixed(): string;
  /** An address nobody listens on, and the status connecting to it gives. */
  nobody(): [string, number];
  /** A plain socket listener on `address` that accepts and never answers. */
  silent(address: string): Deno.Listener;
}

export const peerTransports: PeerTransport[] = [
  {
    name: "tcp",
    any: () => "tcp|127.0.0.1|0",
    fixed: () => `tcp|127.0.0.1|${freeTcpPort()}`,
    nobody: () => [`tcp|127.0.0.1|${freeTcpPort()}`, Status.connectFailed],
    silent: (a) => Deno.listen({ hostname: "127.0.0.1", port: Number(a.split("|")[2]) }),
  },
  {
    name: "uds",
    any: () => `uds|${tempUdsPath()}`,
    fixed: () => `uds|${tempUdsPath()}`,
    nobody: () => [`uds|${tempUdsPath()}`, Status.udsPathNotFound],
    silent: (a) => Deno.listen({ transport: "unix", path: a.slice(4) }),
  },
];

/** Asserts that `p` rejects with a TofuError of `status` whose message has `includes`. */
export async function expectTofuError(
  p: Promise<unknown>,
  status: number,
  includes?: string,
): Promise<TofuError> {
  const err = await assertRejects(() => p, TofuError);
  assertEquals(statusName(err.status), statusName(status), err.message);
  if (includes) assert(err.message.includes(includes), err.message);
  return err;
}

/** Resolves with the value of `p`, or fails the test after `ms`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts `script` (a test server) as a child `deno` process listening on `address`, with
 * only the permissions that address needs; resolves once it prints "ready". The returned
 * function kills it (SIGKILL: a crash, not a graceful stop) and waits for it to end.
 */
export async function startServerChild(
  t: PeerTransport,
  address: string,
  script: URL,
  ...args: string[]
): Promise<() => Promise<void>> {
  const child = new Deno.Command("deno", {
    args: [
      "run",
      // Deno asks net permission for a Unix socket path too ("unix:/tmp/...").
      t.name === "tcp" ? "--allow-net=127.0.0.1" : `--allow-net=unix:${address.slice(4)}`,
      "--allow-read=/tmp",
      "--allow-write=/tmp",
      script.pathname,
      address,
      ...args,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await within(reader.read(), 30_000, "child server start");
  assert(value?.startsWith("ready"), value);
  return async () => {
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel();
  };
}

/** The bytes of a raw peer's HelloRequest (message id 1) to the listener at `address`. */
export function hello(address: string): Uint8Array {
  const m = new Message();
  m.bhdr.opCode = OpCode.HelloRequest;
  m.bhdr.messageId = 1n;
  m.headers.append("~connect_to", address);
  return encodeFrame(m);
}

/**
 * Remembers the messages now in `engine`'s pool; `check()` asserts (within a generous
 * deadline) that every one of them is back in the pool and, unless `channels` is null, that
 * the engine has exactly `channels` channels open. Small scenarios never drain the pool, so a
 * message missing at the end was leaked.
 */
export function poolProbe(
  engine: Engine,
  channels: number | null = 0,
): { check(what: string): Promise<void> } {
  const drain = () => {
    const out: Message[] = [];
    for (let m = engine.get("poolOnly"); m !== null; m = engine.get("poolOnly")) out.push(m);
    return out;
  };
  const start = drain();
  for (const m of start) engine.put(m);
  return {
    async check(what) {
      const until = Date.now() + 10_000;
      let missing = 0;
      for (;;) {
        const now = drain();
        const back = new Set(now);
        missing = start.filter((m) => !back.has(m)).length;
        for (const m of now) engine.put(m);
        const settled = channels === null || engine.channelCount === channels;
        if ((missing === 0 && settled) || Date.now() > until) break;
        await delay(20);
      }
      assertEquals(missing, 0, `${what}: messages not back in the pool`);
      if (channels !== null) {
        assertEquals(engine.channelCount, channels, `${what}: channels still open`);
      }
    },
  };
}
