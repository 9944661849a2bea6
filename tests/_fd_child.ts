// A server in a child process, run under a low `ulimit -n` by tests/resilience_test.ts.
// It listens on the address in Deno.args[0], prints `bound <address>` on stdout, answers
// Hellos and Requests, and prints one `report <status> <error>` line per engine report
// on its listener channel. With `stack` as Deno.args[1], the line also carries the first
// frame of the report's error stack, formatted while the descriptors are exhausted (on
// Linux, Deno 2.9.6 panicked in the `stacker` crate when the first source-mapped stack of
// a module was formatted with no descriptor free).

// deno-lint-ignore-file no-console

import { Engine, OpCode, Status, statusName, TcpServerAddress, UdsServerAddress } from "../mod.ts";

const where = Deno.args[0]!;
const engine = new Engine();
const group = engine.create();
const address = where.startsWith("uds|")
  ? UdsServerAddress.parse(where)
  : TcpServerAddress.parse(where);
const { channelNumber: listener } = group.post(address.format(engine.get("always")!));
for await (const m of group) {
  const op = m.bhdr.opCode;
  if (op === OpCode.WelcomeResponse) {
    console.log(
      m.bhdr.status === Status.success
        ? `bound ${m.headers.get("~listen_on")}`
        : `failed ${m.error?.message}`,
    );
  } else if (m.isFromEngine() && m.bhdr.channelNumber === listener) {
    const frame = Deno.args[1] === "stack" ? ` | ${m.error?.stack?.split("\n")[1]?.trim()}` : "";
    console.log(`report ${statusName(m.bhdr.status)} ${m.error?.message ?? ""}${frame}`);
  } else if (!m.isFromEngine() && (op === OpCode.HelloRequest || op === OpCode.Request)) {
    m.bhdr.opCode = op === OpCode.HelloRequest ? OpCode.HelloResponse : OpCode.Response;
    try {
      group.post(m);
      continue;
    } catch {
      // The channel closed meanwhile.
    }
  }
  engine.put(m);
}
