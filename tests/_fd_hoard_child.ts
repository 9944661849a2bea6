// deno-lint-ignore-file no-console
// Run by tests/mutants_units2_listener_test.ts: a listener in a process that runs out of
// file descriptors on cue. The process opens /dev/null until no descriptor is left (the
// hoard) instead of lowering `ulimit -n`, so the episode starts and ends exactly where this
// script says. Deno.args[0] is the address to listen on (`tcp|127.0.0.1|0` or `uds|PATH`).
// It prints one line per step (`served A`, `served B`, `report <opcode> <status> <message>`,
// `pauses <ms,...>`, `served C`, `served D`, `done`); the test checks them.
//
// The listener needs --allow-read=/dev/null for its reserve descriptor (and the hoard for
// its opens). Its pauses between retries are read from the delays it asks setTimeout for.

import {
  Engine,
  type Message,
  OpCode,
  Status,
  TcpClientAddress,
  TcpServerAddress,
  UdsClientAddress,
  UdsServerAddress,
} from "../mod.ts";
import { pause, recorder } from "./_pause_recorder.ts";

const where = Deno.args[0]!;
const isUds = where.startsWith("uds|");

const engine = new Engine();
const server = engine.create();
const client = engine.create();

async function next(group: typeof server, what: string): Promise<Message> {
  const m = await group.waitReceive(20_000);
  if (m === null) throw new Error(`Cannot run the child: no ${what} within 20 s`);
  return m;
}

/** Listens on `at`; returns the listener's channel number and bound address. */
async function listen(at: string): Promise<{ channel: number; bound: string }> {
  server.post(
    (isUds ? UdsServerAddress.parse(at) : TcpServerAddress.parse(at)).format(
      engine.get("always")!,
    ),
  );
  const welcome = await next(server, "WelcomeResponse");
  if (welcome.bhdr.status !== Status.success) throw new Error(welcome.error?.message);
  const out = { channel: welcome.bhdr.channelNumber, bound: welcome.headers.get("~listen_on")! };
  engine.put(welcome);
  return out;
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

const first = await listen(where);

/**
 * A client connects and the server answers its HelloRequest; returns the listener's report
 * if one came meanwhile.
 */
async function serve(
  name: string,
  { channel, bound }: { channel: number; bound: string } = first,
): Promise<Message | null> {
  client.post(
    (isUds ? UdsClientAddress.parse(bound) : TcpClientAddress.parse(bound)).format(
      engine.get("always")!,
    ),
  );
  let report: Message | null = null;
  for (;;) {
    const m = await next(server, `HelloRequest of ${name}`);
    if (m.isFromEngine() && m.bhdr.channelNumber === channel && report === null) {
      report = m;
      continue;
    }
    if (m.bhdr.opCode !== OpCode.HelloRequest) {
      throw new Error(`Cannot run the child: ${name} got ${m.bhdr.opCode} ${m.error?.message}`);
    }
    m.bhdr.opCode = OpCode.HelloResponse;
    server.post(m);
    break;
  }
  const answer = await next(client, `HelloResponse of ${name}`);
  if (answer.bhdr.opCode !== OpCode.HelloResponse) {
    throw new Error(`Cannot run the child: ${name} got ${answer.bhdr.opCode}`);
  }
  engine.put(answer);
  console.log(`served ${name}`);
  return report;
}

if (await serve("A") !== null) throw new Error("Cannot run the child: a report before A");

// Every descriptor taken but two: B's client socket takes one, its accept the other. The
// listener then has none free besides its reserve.
const hoard: Deno.FsFile[] = [];
recorder.recording = true;
hoardAll(hoard);
hoard.pop()!.close();
hoard.pop()!.close();
const report = await serve("B") ?? await next(server, "report of the listener");
if (report.bhdr.channelNumber !== first.channel || !report.isFromEngine()) {
  throw new Error(
    `Cannot run the child: expected the listener's report, got ${report.error?.message}`,
  );
}
console.log(`report ${report.bhdr.opCode} ${report.bhdr.status} ${report.error?.message}`);
engine.put(report);
// Six pauses of the backoff, then the hoard goes.
while (recorder.delays.length < 6) await pause(20);
recorder.recording = false;
console.log(`pauses ${recorder.delays.join(",")}`);
for (const f of hoard.splice(0)) f.close();
const late = await serve("C");
if (late !== null) console.log(`report ${late.error?.message}`);

// A second listener, opened while exactly one descriptor is free: its socket takes it and
// there is none left for a reserve. It keeps none from then on, and serves D with no report.
hoardAll(hoard);
hoard.pop()!.close();
const second = await listen(isUds ? `${where}.2` : where);
for (const f of hoard.splice(0)) f.close();
const d = await serve("D", second);
if (d !== null) console.log(`report ${d.error?.message}`);
console.log("done");
await engine.destroy(server);
await engine.destroy(client);
await engine[Symbol.asyncDispose]();
