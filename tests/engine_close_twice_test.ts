// A second destroy() or close() called while the first is under way resolves with the first:
// once the group's (or engine's) channels have closed, not before.

import { assertEquals } from "@std/assert";
import { Engine } from "../mod.ts";
import { connect, listen, transports } from "./_fixtures.ts";

for (const t of transports) {
  Deno.test(`${t.name}: a second close() under way resolves once the first has`, async () => {
    const engine = new Engine();
    const server = await listen(engine, t);
    await connect(engine, t, server);
    const order: string[] = [];
    const first = engine.close().then(() => order.push("first"));
    const second = engine.close().then(() => order.push("second"));
    await Promise.all([first, second]);
    assertEquals(order, ["first", "second"]);
    await engine.close(); // after the end: at once
  });

  Deno.test(`${t.name}: a second destroy() under way resolves once the first has`, async () => {
    const engine = new Engine();
    try {
      const server = await listen(engine, t);
      await connect(engine, t, server);
      const order: string[] = [];
      const first = engine.destroy(server.group).then(() => order.push("first"));
      const second = engine.destroy(server.group).then(() => order.push("second"));
      await Promise.all([first, second]);
      assertEquals(order, ["first", "second"]);
      await engine.destroy(server.group); // after the end: at once
    } finally {
      await engine.close();
    }
  });
}
