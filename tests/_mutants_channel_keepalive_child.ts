// Run by tests/mutants_channel_isolate_test.ts (with env permission, so that under
// `deno task mutate` it runs the mutant too): an open isolate pipe keeps the process alive,
// and once every pipe is closed (each counted once, however often it is closed) nothing
// does. Prints "alive" from an unref'd timer that only fires while a pipe is still open.
import { IsolatePipe } from "../src/_transport_isolate.ts";

const c = IsolatePipe.create(16);
const a = new IsolatePipe(c.sab, "acceptor");
const other = IsolatePipe.create(16);
// A reader that sleeps and is woken by data: its wait is counted and uncounted.
const reading = a.read(new Uint8Array(4));
await new Promise((r) => setTimeout(r, 20));
await c.write(new Uint8Array([1]));
await reading;
c.close();
c.close(); // a second close counts nothing
a.close();
const timer = setTimeout(() => {
  // deno-lint-ignore no-console
  console.log("alive");
  other.close();
}, 200);
Deno.unrefTimer(timer);
