// deno-lint-ignore-file no-console
// Run by tests/mutants_rest_listener_test.ts: a listener on an isolate name (its accepts
// need no file descriptor) in a process that runs out of descriptors on cue, as in
// tests/_fd_hoard_child.ts. It prints one line per step (`served A`, `served B`,
// `report <status> <message>`, `C waits <n> pauses`, `served C`, `done`), or
// `C accepted with no descriptor free` and exits 1.
//
// Needs --allow-read=/dev/null (the listener's reserve, and the hoard's opens).

import {
  Engine,
  IsolateClientAddress,
  IsolateServerAddress,
  type Message,
  OpCode,
  Status,
} from "../mod.ts";
import { pause, recorder } from "./_pause_recorder.ts";

const name = `rest-hoard-${Deno.pid}`;
const engine = new Engine();
const server = engine.create();
const client = engine.create();

async function next(group: typeof server, what: string): Promise<Message> {
  const m = await group.waitReceive(20_000);
  if (m === null) throw new Error(`Cannot run the child: no ${what} within 20 s`);
  return m;
}

server.post(new IsolateServerAddress(name).format(engine.get("always")!));
const welcome = await next(server, "WelcomeResponse");
if (welcome.bhdr.status !== Status.success) throw new Error(welcome.error?.message);
const listening = welcome.bhdr.channelNumber;
engine.put(welcome);

/** A client connects (its HelloRequest is posted); returns its channel number. */
function dial(): number {
  return client.post(new IsolateClientAddress(name).format(engine.get("always")!)).channelNumber;
}

/** Answers `hello` and waits for the client's HelloResponse. */
async function answer(hello: Message, who: string): Promise<void> {
  hello.bhdr.opCode = OpCode.HelloResponse;
  server.post(hello);
  const m = await next(client, `HelloResponse of ${who}`);
  if (m.bhdr.opCode !== OpCode.HelloResponse) {
    throw new Error(`Cannot run the child: ${who} got ${m.bhdr.opCode} ${m.error?.message}`);
  }
  engine.put(m);
  console.log(`served ${who}`);
}

/** Opens /dev/null until no descriptor is left. */
function hoardAll(hoard: Deno.FsFile[]): void {
  for (;;) {
    try {
      hoard.push(Deno.openSync("/dev/null"));
    } catch {
      return;
    }
  }
}

dial();
await answer(await next(server, "HelloRequest of A"), "A");

// No descriptor free. B's accept takes none (an isolate pipe), and then the listener finds
// none free besides its reserve: it reports the episode, drops the reserve and pauses.
const hoard: Deno.FsFile[] = [];
hoardAll(hoard);
recorder.recording = true;
dial();
let report: Message | null = null;
for (let served = false; !served || report === null;) {
  const m = await next(server, "HelloRequest of B and the report");
  if (m.isFromEngine() && m.bhdr.channelNumber === listening) {
    report = m;
  } else {
    await answer(m, "B");
    served = true;
  }
}
console.log(`report ${report.bhdr.status} ${report.error?.message}`);
engine.put(report);

// The descriptor the dropped reserve freed is taken too (the listener holds its reserve
// only inside one synchronous step, so it is free now): the reserve cannot be opened again.
hoardAll(hoard);
const before = recorder.delays.length;
// C connects. The listener must not accept while it cannot hold its reserve: it goes on
// pausing, and C waits.
dial();
while (recorder.delays.length < before + 5) {
  await pause(10);
  const m = server.tryReceive();
  if (m !== null) {
    console.log(
      `C accepted with no descriptor free (op ${m.bhdr.opCode} status ${m.bhdr.status}, after ${
        recorder.delays.length - before
      } pauses)`,
    );
    Deno.exit(1);
  }
}
console.log(`C waits ${recorder.delays.length - before} pauses`);
recorder.recording = false;
for (const f of hoard.splice(0)) f.close();
await answer(await next(server, "HelloRequest of C"), "C");
console.log("done");
await engine.destroy(server);
await engine.destroy(client);
await engine[Symbol.asyncDispose]();
