// Pool and receive-queue hot paths.
// Run: deno task bench

import { Engine, Message } from "../mod.ts";
import { Ring } from "../src/_ring.ts";
import { ReceiveQueue } from "../src/_receive_queue.ts";

const engine = new Engine({ initialPoolMsgs: 64, maxPoolMsgs: 64 });

Deno.bench("engine.get('poolOnly') + engine.put()", { group: "pool", baseline: true }, () => {
  const m = engine.get("poolOnly")!;
  m.body.set("abc");
  engine.put(m);
});

Deno.bench("new Message() (no pool)", { group: "pool" }, () => {
  const m = new Message();
  m.body.set("abc");
});

const msgs = Array.from({ length: 1024 }, () => new Message());

Deno.bench("Ring push/shift x1024", { group: "queue", baseline: true }, () => {
  const r = new Ring<Message>(1024);
  for (const m of msgs) r.push(m);
  while (r.shift() !== undefined) { /* drain */ }
});

Deno.bench("ReceiveQueue push/tryShift x1024", { group: "queue" }, () => {
  const q = new ReceiveQueue();
  for (const m of msgs) q.push(m);
  while (q.tryShift() !== null) { /* drain */ }
});

Deno.bench("Array push/shift x1024", { group: "queue" }, () => {
  const a: Message[] = [];
  for (const m of msgs) a.push(m);
  while (a.shift() !== undefined) { /* drain */ }
});
