import { assert, assertEquals, assertThrows } from "@std/assert";
import { Message, OpCode, Status, TofuError } from "../mod.ts";
import { validateForPost } from "../src/_validate.ts";

function msg(op: number, channel = 1, id = 0n): Message {
  const m = new Message();
  m.bhdr.opCode = op;
  m.bhdr.channelNumber = channel;
  m.bhdr.messageId = id;
  m.headers.append("keep", "me");
  m.body.set("body stays");
  return m;
}

function assertRefused(m: Message, status: number): void {
  const before = { id: m.bhdr.messageId, ch: m.bhdr.channelNumber, op: m.bhdr.opCode };
  const err = assertThrows(() => validateForPost(m), TofuError);
  assertEquals(err.status, status, err.message);
  assert(err.message.startsWith("Cannot post "), err.message);
  assertEquals(m.bhdr.status, status, "the status byte is set");
  // The message is intact with the caller.
  assertEquals(m.bhdr.messageId, before.id);
  assertEquals(m.bhdr.channelNumber, before.ch);
  assertEquals(m.bhdr.opCode, before.op);
  assertEquals(m.headers.get("keep"), "me");
  assertEquals(m.body.text(), "body stays");
}

Deno.test("validateForPost step a: opcode outside 0..9 is invalid_op_code", () => {
  assertRefused(msg(10), Status.invalidOpCode);
  assertRefused(msg(15), Status.invalidOpCode);
});

Deno.test("validateForPost step c: a response with id 0 is invalid_message_id", () => {
  for (const op of [OpCode.Response, OpCode.HelloResponse, OpCode.ByeResponse]) {
    assertRefused(msg(op), Status.invalidMessageId);
  }
  const w = msg(OpCode.WelcomeResponse, 0);
  assertRefused(w, Status.invalidMessageId);
});

Deno.test("validateForPost step d: more on a non-regular opcode is invalid_more_usage", () => {
  for (const op of [OpCode.HelloRequest, OpCode.ByeRequest, OpCode.ByeSignal]) {
    const m = msg(op, 1, 3n);
    m.bhdr.more = 1;
    assertRefused(m, Status.invalidMoreUsage);
  }
  const ok = msg(OpCode.Signal, 1, 3n);
  ok.bhdr.more = 1;
  validateForPost(ok);
});

Deno.test("validateForPost step e: channel 0 outside Hello/Welcome is invalid_channel_number", () => {
  assertRefused(msg(OpCode.Request, 0), Status.invalidChannelNumber);
  assertRefused(msg(OpCode.Request, 65535), Status.invalidChannelNumber);
  assertRefused(msg(OpCode.Request, 1.5), Status.invalidChannelNumber);
});

Deno.test("validateForPost step g: Hello/Welcome without headers is wrong_address", () => {
  for (const op of [OpCode.HelloRequest, OpCode.WelcomeRequest]) {
    const m = new Message();
    m.bhdr.opCode = op;
    m.body.set("body stays");
    const err = assertThrows(() => validateForPost(m), TofuError);
    assertEquals(err.status, Status.wrongAddress);
    assertEquals(m.body.text(), "body stays");
  }
});

Deno.test("validateForPost steps f and h: the codec limits make oversize impossible", () => {
  // The text headers and body refuse to grow past 65535 bytes, so the post checks
  // are a second line of defence; the first is tested in message_test.ts.
  const m = msg(OpCode.Request);
  assertThrows(() => m.body.set(new Uint8Array(65536)), TofuError);
  validateForPost(m);
});

Deno.test("validateForPost step b and i: forces origin/status, assigns increasing ids", () => {
  const a = msg(OpCode.Request);
  a.bhdr.origin = 1;
  a.bhdr.status = 99;
  validateForPost(a);
  assertEquals(a.bhdr.origin, 0);
  assertEquals(a.bhdr.status, 0);
  assert(a.bhdr.messageId > 0n);
  assertEquals(a.bhdr.textHeadersLength, a.headers.byteLength);
  assertEquals(a.bhdr.bodyLength, a.body.byteLength);
  const b = msg(OpCode.Request);
  validateForPost(b);
  assertEquals(b.bhdr.messageId, a.bhdr.messageId + 1n);
  const c = msg(OpCode.Request, 1, 77n);
  validateForPost(c);
  assertEquals(c.bhdr.messageId, 77n, "a set id is kept");
});
