// Runs a measuring child script with --expose-gc (the memory tests' children print one JSON
// line of figures) and returns what it printed; fails with the child's stderr if it failed.

import { assert } from "@std/assert";

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
