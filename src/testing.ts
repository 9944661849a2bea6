/**
 * Helpers for tests: a free TCP port and a unique temporary Unix socket path.
 *
 * @module
 */

/**
 * Finds a TCP port that is free on `hostname` right now (binds port 0, reads the
 * port, closes). Needs `--allow-net`.
 *
 * @param hostname Interface to probe (default `127.0.0.1`).
 * @returns The port.
 *
 * @example Picking a port for a test server
 * ```ts
 * import { assert } from "@std/assert";
 * import { freeTcpPort } from "@tofu/tofu/testing";
 *
 * const port = freeTcpPort();
 * assert(port > 0 && port < 65536);
 * ```
 */
export function freeTcpPort(hostname = "127.0.0.1"): number {
  const l = Deno.listen({ hostname, port: 0 });
  try {
    return (l.addr as Deno.NetAddr).port;
  } finally {
    l.close();
  }
}

let counter = 0;

function tmpDir(): string {
  try {
    return Deno.env.get("TMPDIR") || "/tmp";
  } catch {
    return "/tmp"; // no --allow-env
  }
}

/**
 * Returns a unique Unix socket path `<tmpdir>/tofu_<pid>_<n>.port` (not created). A path
 * that already exists (left by an earlier process with the same pid) is skipped when the
 * process may read it.
 *
 * @returns The path.
 *
 * @example Picking a socket path for a test server
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { tempUdsPath } from "@tofu/tofu/testing";
 *
 * assertEquals(tempUdsPath().endsWith(".port"), true);
 * ```
 */
export function tempUdsPath(): string {
  const dir = tmpDir().replace(/\/+$/, "");
  // Never prompt for read permission: without it, paths are not checked.
  const mayRead = Deno.permissions.querySync({ name: "read", path: dir }).state === "granted";
  for (;;) {
    const path = `${dir}/tofu_${Deno.pid}_${counter++}.port`;
    // A file left by an earlier process with the same pid (killed before it removed its
    // socket) would make the listen fail: skip it.
    if (!mayRead) return path;
    try {
      Deno.lstatSync(path);
    } catch {
      return path;
    }
  }
}
