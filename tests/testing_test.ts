// The helpers of testing.ts: a free TCP port and unique temporary Unix socket paths.

import { assert, assertEquals, assertMatch, assertNotEquals, assertThrows } from "@std/assert";
import { freeTcpPort, tempUdsPath } from "../testing.ts";

Deno.test("freeTcpPort returns a port that can be bound right away, on 127.0.0.1 by default", () => {
  const port = freeTcpPort();
  assert(port > 0 && port < 65536, String(port));
  const l = Deno.listen({ hostname: "127.0.0.1", port });
  try {
    assertEquals((l.addr as Deno.NetAddr).port, port);
  } finally {
    l.close();
  }
  const other = freeTcpPort("127.0.0.1");
  const l2 = Deno.listen({ hostname: "127.0.0.1", port: other });
  l2.close();
});

Deno.test("freeTcpPort probes the interface it is given", () => {
  // An address that cannot be bound on this machine is an error, not some other port.
  assertThrows(() => freeTcpPort("192.0.2.1"));
});

Deno.test("freeTcpPort leaves nothing listening on the port", async () => {
  const port = freeTcpPort();
  const err = await Deno.connect({ hostname: "127.0.0.1", port }).then(
    (c) => {
      c.close();
      return null;
    },
    (e) => e,
  );
  assert(err instanceof Deno.errors.ConnectionRefused, String(err));
});

function withTmpdir(value: string | undefined, fn: () => void): void {
  const old = Deno.env.get("TMPDIR");
  if (value === undefined) Deno.env.delete("TMPDIR");
  else Deno.env.set("TMPDIR", value);
  try {
    fn();
  } finally {
    if (old === undefined) Deno.env.delete("TMPDIR");
    else Deno.env.set("TMPDIR", old);
  }
}

Deno.test("tempUdsPath: unique paths <tmpdir>/tofu_<pid>_<n>.port, not created", () => {
  withTmpdir(undefined, () => {
    const a = tempUdsPath();
    const b = tempUdsPath();
    assertNotEquals(a, b);
    assertMatch(a, new RegExp(`^/tmp/tofu_${Deno.pid}_\\d+\\.port$`));
    const n = (p: string) => Number(p.slice(p.lastIndexOf("_") + 1, -".port".length));
    assertEquals(n(b), n(a) + 1);
    let exists = true;
    try {
      Deno.lstatSync(a);
    } catch {
      exists = false;
    }
    assert(!exists, `${a} was created`);
  });
});

Deno.test("tempUdsPath follows TMPDIR, without trailing slashes, and /tmp when it is empty", () => {
  withTmpdir("/var/tmp///", () => {
    assertMatch(tempUdsPath(), new RegExp(`^/var/tmp/tofu_${Deno.pid}_\\d+\\.port$`));
  });
  withTmpdir("/var/tmp", () => {
    assertMatch(tempUdsPath(), /^\/var\/tmp\/tofu_/);
  });
  withTmpdir("", () => {
    assertMatch(tempUdsPath(), /^\/tmp\/tofu_/);
  });
});

// A path left behind by an earlier process with the same pid (killed before it could
// remove its socket file; pids are reused) made the next listen fail with AddrInUse.
Deno.test("tempUdsPath skips a path that already exists (left by an earlier process with this pid)", () => {
  withTmpdir(undefined, () => {
    const a = tempUdsPath();
    const n = Number(a.slice(a.lastIndexOf("_") + 1, -".port".length));
    const stale = [1, 2].map((k) => `/tmp/tofu_${Deno.pid}_${n + k}.port`);
    for (const p of stale) Deno.writeTextFileSync(p, "");
    try {
      assertEquals(tempUdsPath(), `/tmp/tofu_${Deno.pid}_${n + 3}.port`);
    } finally {
      for (const p of stale) Deno.removeSync(p);
    }
  });
});
