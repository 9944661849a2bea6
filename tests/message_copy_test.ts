// Message flags, reset, clone and copyFrom, and ownership (src/message.ts).

import { assert, assertEquals, assertNotStrictEquals, assertStrictEquals } from "@std/assert";
import { Message, OpCode, Status, TofuError } from "../mod.ts";
import { Owner, ownerOf, transfer } from "../src/message.ts";

function full(): Message {
  const m = new Message();
  m.bhdr.channelNumber = 77;
  m.bhdr.opCode = OpCode.Response;
  m.bhdr.origin = 1;
  m.bhdr.more = 1;
  m.bhdr.status = Status.sendFailed;
  m.bhdr.internalA = 1;
  m.bhdr.internalB = 1;
  m.bhdr.messageId = 0xdead_beef_0000_0001n;
  m.headers.append("a", "1");
  m.headers.append("b", "2");
  m.body.set("the body");
  m.error = new TofuError(Status.sendFailed, "Cannot send on channel 77: gone");
  return m;
}

Deno.test("Message flags: origin and more", () => {
  const m = new Message();
  assert(m.isFromApplication() && !m.isFromEngine() && !m.hasMore());
  m.bhdr.origin = 1;
  m.bhdr.more = 1;
  assert(!m.isFromApplication() && m.isFromEngine() && m.hasMore());
});

Deno.test("Message.reset clears header, headers, body and error; keeps storage", () => {
  const m = full();
  const bodyCap = m.body.capacity;
  m.reset();
  assertEquals(m.bhdr.channelNumber, 0);
  assertEquals(m.bhdr.opCode, OpCode.Request);
  assertEquals([m.bhdr.origin, m.bhdr.more, m.bhdr.status], [0, 0, 0]);
  assertEquals([m.bhdr.internalA, m.bhdr.internalB], [0, 0]);
  assertEquals(m.bhdr.messageId, 0n);
  assertEquals([m.headers.byteLength, m.body.byteLength], [0, 0]);
  assertEquals(m.error, undefined);
  assertEquals(m.body.capacity, bodyCap);
});

Deno.test("Message.clone and copyFrom copy everything into independent buffers", () => {
  const src = full();
  const copy = src.clone();
  assertNotStrictEquals(copy, src);
  for (
    const m of [
      copy,
      (() => {
        const t = new Message();
        t.body.set("old content that is longer");
        t.headers.append("old", "x");
        t.copyFrom(src);
        return t;
      })(),
    ]
  ) {
    assertEquals(m.bhdr.channelNumber, 77);
    assertEquals(m.bhdr.opCode, OpCode.Response);
    assertEquals([m.bhdr.origin, m.bhdr.more, m.bhdr.status], [1, 1, Status.sendFailed]);
    assertEquals([m.bhdr.internalA, m.bhdr.internalB], [1, 1]);
    assertEquals(m.bhdr.messageId, 0xdead_beef_0000_0001n);
    assertEquals([...m.headers], [["a", "1"], ["b", "2"]]);
    assertEquals(m.body.text(), "the body");
    assertStrictEquals(m.error, src.error);
    // Independent: changing the copy leaves the source alone.
    m.body.set("changed");
    m.headers.append("c", "3");
    m.bhdr.channelNumber = 1;
    assertEquals(src.body.text(), "the body");
    assertEquals([...src.headers].length, 2);
    assertEquals(src.bhdr.channelNumber, 77);
  }
});

Deno.test("ownerOf and transfer: a new message belongs to the application", () => {
  const m = new Message();
  assertEquals(ownerOf(m), Owner.Application);
  transfer(m, Owner.Engine);
  assertEquals(ownerOf(m), Owner.Engine);
  transfer(m, Owner.Pooled);
  assertEquals(ownerOf(m), Owner.Pooled);
  assertEquals(Owner, { Application: 0, Pooled: 1, Engine: 2 });
});

Deno.test("Message storages given to the constructor back the headers and body", () => {
  const h = new Uint8Array(8);
  const b = new Uint8Array(8);
  const m = new Message(h, b);
  assertEquals([m.headers.capacity, m.body.capacity], [8, 8]);
  m.headers.append("k", "v");
  m.body.set("body");
  assertEquals(new TextDecoder().decode(h.subarray(0, 5)), "k:v\r\n");
  assertEquals(new TextDecoder().decode(b.subarray(0, 4)), "body");
});
