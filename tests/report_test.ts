// Engine reports (src/_report.ts): messages handed back, engine Signals, and error wrapping.

import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import { BinaryHeader, Message, OpCode, Status, TofuError } from "../mod.ts";
import { Owner, ownerOf, transfer } from "../src/message.ts";
import { asTofuError, engineSignal, handBack } from "../src/_report.ts";

Deno.test("handBack returns the message to the application with origin engine, status and error", () => {
  const m = new Message();
  m.bhdr.opCode = OpCode.Request;
  m.bhdr.channelNumber = 12;
  m.bhdr.messageId = 99n;
  m.body.set("payload");
  transfer(m, Owner.Engine);
  const err = new TofuError(Status.sendFailed, "Cannot send on channel 12: broken pipe");
  const back = handBack(m, Status.sendFailed, err);
  assertStrictEquals(back, m);
  assertEquals(ownerOf(m), Owner.Application);
  assert(m.isFromEngine());
  assertEquals(m.bhdr.status, Status.sendFailed);
  assertStrictEquals(m.error, err);
  assertEquals([m.bhdr.opCode, m.bhdr.channelNumber, m.bhdr.messageId], [OpCode.Request, 12, 99n]);
  assertEquals(m.body.text(), "payload");
  // Without an error the message carries none.
  const n = new Message();
  n.error = err;
  handBack(n, Status.channelClosed, null);
  assertEquals(n.error, undefined);
  assertEquals(n.bhdr.status, Status.channelClosed);
});

Deno.test("engineSignal makes a Signal from the engine, with or without a message id", () => {
  const id = new BinaryHeader();
  id.messageId = 4242n;
  const err = new TofuError(Status.poolEmpty, "Cannot read channel 5: the message pool is empty");
  const s = engineSignal(5, Status.poolEmpty, id, err);
  assertEquals(s.bhdr.opCode, OpCode.Signal);
  assert(s.isFromEngine());
  assertEquals([s.bhdr.channelNumber, s.bhdr.status, s.bhdr.messageId], [
    5,
    Status.poolEmpty,
    4242n,
  ]);
  assertStrictEquals(s.error, err);
  assertEquals(ownerOf(s), Owner.Application);
  const bare = engineSignal(7, Status.channelClosed, null, null);
  assertEquals([bare.bhdr.channelNumber, bare.bhdr.messageId], [7, 0n]);
  assertEquals(bare.error, undefined);
  assertEquals(bare.body.byteLength, 0);
});

Deno.test("asTofuError keeps a TofuError of the same status and wraps anything else", () => {
  const same = new TofuError(Status.recvFailed, "Cannot receive on channel 3: reset");
  assertStrictEquals(asTofuError(Status.recvFailed, "receive on channel 3", same), same);

  const other = new TofuError(Status.poolEmpty, "Cannot get: empty");
  const wrapped = asTofuError(Status.recvFailed, "receive on channel 3", other);
  assert(wrapped !== other);
  assertEquals(wrapped.status, Status.recvFailed);
  assertEquals(wrapped.message, "Cannot receive on channel 3: Cannot get: empty");
  assertStrictEquals(wrapped.cause, other);

  const plain = new Error("connection reset by peer");
  const e = asTofuError(Status.sendFailed, "send on channel 9", plain);
  assertEquals(e.status, Status.sendFailed);
  assertEquals(e.message, "Cannot send on channel 9: connection reset by peer");
  assertStrictEquals(e.cause, plain);

  const thrown = asTofuError(Status.acceptFailed, "accept on channel 1", "odd value");
  assertEquals(thrown.message, "Cannot accept on channel 1: odd value");
  assertEquals(thrown.cause, "odd value");
});
