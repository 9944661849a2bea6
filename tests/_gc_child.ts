// Runs a measuring child script with --expose-gc (the memory tests' children print one JSON
// line of figures) and returns what it printed; fails with the child's stderr if it failed.

import { assert } from "@std/assert";
import { type ChannelGroup, Engine } from "../mod.ts";
import { transports } from "./_fixtures.ts";

export async function gcChild(
  script: string,
  ...args: string[]
): Promise<Record<string, number>> {
  const out = await new Deno.Command("deno", {
    args: [
      "run",
      "--allow-net",
      "--allow-read",
      "--allow-write=/tmp",
      "--allow-env",
      "--v8-flags=--expose-gc",
      new URL(script, import.meta.url).pathname,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert(out.success, `child failed: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

/** In a child run with --expose-gc: the process's external memory after a full GC. */
export function externalAfterGc(): number {
  (globalThis as { gc?: () => void }).gc!();
  return Deno.memoryUsage().external;
}

/**
 * In a child: an engine (up to 10,000 connections) listening on the transport named `name`
 * (tcp or uds), its group, and the bound address to connect to.
 */
export async function listeningEngine(
  name: string,
): Promise<{ engine: Engine; group: ChannelGroup; bound: string }> {
  const t = transports.find((x) => x.name === name)!;
  const engine = new Engine({ maxConnections: 10_000 });
  const group = engine.create();
  group.post(t.listenAt().format(engine.get("always")));
  const welcome = (await group.waitReceive(5000))!;
  const bound = welcome.headers.get("~listen_on")!;
  engine.put(welcome);
  return { engine, group, bound };
}
