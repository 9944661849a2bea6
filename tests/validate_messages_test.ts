// validateForPost's refusals with their exact messages, and the boundaries it accepts
// (src/_validate.ts).

import { assert, assertEquals, assertThrows } from "@std/assert";
import { Message, OpCode, Status, statusName, TofuError } from "../mod.ts";
import { opensChannel, validateForPost } from "../src/_validate.ts";

function msg(op: number, channel = 1, id = 0n): Message {
  const m = new Message();
  m.bhdr.opCode = op;
  m.bhdr.channelNumber = channel;
  m.bhdr.messageId = id;
  return m;
}

function refused(m: Message, status: number, message: string): void {
  const err = assertThrows(() => validateForPost(m), TofuError);
  assertEquals([statusName(err.status), err.message], [statusName(status), message]);
  assertEquals(m.bhdr.status, status);
}

Deno.test("validateForPost: each refusal names the opcode and the reason", () => {
  refused(msg(12), Status.invalidOpCode, "Cannot post invalid(12): opcode 12 is not 0..9");
  refused(msg(-1), Status.invalidOpCode, "Cannot post invalid(-1): opcode -1 is not 0..9");
  refused(
    msg(OpCode.Response),
    Status.invalidMessageId,
    "Cannot post Response: a response must carry the id of its request",
  );
  const more = msg(OpCode.ByeRequest, 1, 5n);
  more.bhdr.more = 1;
  refused(
    more,
    Status.invalidMoreUsage,
    "Cannot post ByeRequest: only Request, Response and Signal may set more",
  );
  refused(
    msg(OpCode.Signal, -1),
    Status.invalidChannelNumber,
    "Cannot post Signal: channel -1 is not 1..65534",
  );
  refused(
    msg(OpCode.Signal, 0),
    Status.invalidChannelNumber,
    "Cannot post Signal: channel 0 is only for HelloRequest and WelcomeRequest",
  );
  refused(
    msg(OpCode.HelloRequest, 0),
    Status.wrongAddress,
    "Cannot post HelloRequest: it needs an address header (~connect_to or ~listen_on)",
  );
  refused(
    msg(OpCode.WelcomeRequest, 0),
    Status.wrongAddress,
    "Cannot post WelcomeRequest: it needs an address header (~connect_to or ~listen_on)",
  );
});

Deno.test("validateForPost accepts the boundaries: channel 1 and 65534, channel 0 to open one", () => {
  for (const ch of [1, 65534]) {
    const m = msg(OpCode.Request, ch);
    validateForPost(m);
    assertEquals(m.bhdr.channelNumber, ch);
  }
  for (const op of [OpCode.HelloRequest, OpCode.WelcomeRequest]) {
    const m = msg(op, 0);
    m.headers.append("~connect_to", "tcp|127.0.0.1|1");
    validateForPost(m);
    assertEquals(m.bhdr.textHeadersLength, m.headers.byteLength);
  }
  // A Hello on an existing channel number is the engine's business, not a validation error.
  const h = msg(OpCode.HelloRequest, 9);
  h.headers.append("~connect_to", "tcp|127.0.0.1|1");
  validateForPost(h);
  // A response with an id, and more on Response and Request, pass.
  const r = msg(OpCode.Response, 3, 77n);
  r.bhdr.more = 1;
  validateForPost(r);
  assertEquals(r.bhdr.messageId, 77n, "an id that is set is kept");
  const q = msg(OpCode.Request, 3);
  q.bhdr.more = 1;
  validateForPost(q);
  assert(q.bhdr.messageId > 0n);
});

Deno.test("opensChannel: HelloRequest and WelcomeRequest only", () => {
  for (let op = 0; op < 10; op++) {
    assertEquals(opensChannel(op), op === OpCode.HelloRequest || op === OpCode.WelcomeRequest);
  }
});

Deno.test("validateForPost accepts text headers and a body of exactly 65535 bytes", () => {
  const m = msg(OpCode.Request, 5);
  m.headers.append("big", "h".repeat(65535 - 6)); // "big:" + value + CRLF
  m.body.set(new Uint8Array(65535));
  assertEquals([m.headers.byteLength, m.body.byteLength], [65535, 65535]);
  validateForPost(m);
  assertEquals([m.bhdr.textHeadersLength, m.bhdr.bodyLength], [65535, 65535]);
});
