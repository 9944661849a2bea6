import { assert, assertEquals, assertThrows } from "@std/assert";
import { Engine, Message, OpCode, Status, TofuError } from "../mod.ts";
import { parseHeaderBlock } from "../src/text_headers.ts";

const enc = new TextEncoder();

Deno.test("TextHeaders.append() produces name:value CRLF and get() reads it back", () => {
  const m = new Message();
  m.headers.append("Job-ID", "12345");
  m.headers.append("  PDL\t", "PDF");
  assertEquals(new TextDecoder().decode(m.headers.raw()), "Job-ID:12345\r\nPDL:PDF\r\n");
  assertEquals(m.headers.get("PDL"), "PDF");
  assertEquals(m.headers.get("pdl"), undefined, "names are case-sensitive");
  assertEquals(m.headers.byteLength, 23);
});

Deno.test("TextHeaders keeps duplicates in order", () => {
  const m = new Message();
  m.headers.append("a", "1");
  m.headers.append("b", "2");
  m.headers.append("a", "3");
  assertEquals([...m.headers], [["a", "1"], ["b", "2"], ["a", "3"]]);
  assertEquals(m.headers.get("a"), "1");
  assertEquals(m.headers.getAll("a"), ["1", "3"]);
});

Deno.test("TextHeaders.append() rejects empty and malformed names and values", () => {
  const m = new Message();
  const bad: Array<[string, string]> = [
    ["", "x"],
    [" \t\r\n", "x"],
    ["a", ""],
    ["a:b", "x"],
    ["a\rb", "x"],
    ["a", "x\ny"],
    ["a", "x\r"],
  ];
  for (const [n, v] of bad) {
    const err = assertThrows(() => m.headers.append(n, v), TypeError);
    assert(err.message.startsWith("Cannot append header"), err.message);
  }
  assertEquals(m.headers.byteLength, 0, "nothing was appended");
});

Deno.test("TextHeaders enforces 65535 bytes with invalid_headers_len, all or nothing", () => {
  const m = new Message();
  m.headers.append("big", "x".repeat(65535 - 6)); // "big:" + value + CRLF = 65535
  assertEquals(m.headers.byteLength, 65535);
  const err = assertThrows(() => m.headers.append("a", "b"), TofuError);
  assertEquals(err.status, Status.invalidHeadersLen);
  assertEquals(m.headers.byteLength, 65535);
  assertThrows(() => m.headers.setRaw(new Uint8Array(65536)), TofuError);
});

Deno.test("parseHeaderBlock follows the protocol's parsing rules", () => {
  const block = enc.encode("a: 1 \t\r\n\r\nnocolon\r\nb:x:y\r\nc\n:d\r\nlast:\tv");
  assertEquals(parseHeaderBlock(block), [
    ["a", "1"],
    ["nocolon", ""],
    ["b", "x:y"],
    ["c\n", "d"],
    ["last", "v"],
  ]);
  assertEquals(parseHeaderBlock(new Uint8Array(0)), []);
});

Deno.test("Body append/set/bytes/text and the 65535-byte limit", () => {
  const m = new Message();
  m.body.set("h\u00e9llo");
  m.body.append(new Uint8Array([0x21]));
  assertEquals(m.body.text(), "h\u00e9llo!");
  assertEquals(m.body.byteLength, 7);
  m.body.set(new Uint8Array(65535));
  const e1 = assertThrows(() => m.body.append("x"), TofuError);
  assertEquals(e1.status, Status.invalidBodyLen);
  assertEquals(m.body.byteLength, 65535);
  m.body.set("keep");
  const e2 = assertThrows(() => m.body.set("\u00e9".repeat(40000)), TofuError);
  assertEquals(e2.status, Status.invalidBodyLen);
  assertEquals(m.body.text(), "keep", "a refused set leaves the body unchanged");
  assertThrows(() => m.body.set(new Uint8Array(65536)), TofuError);
  assertEquals(m.body.text(), "keep");
});

Deno.test("Message flags, reset() keeps grown storage, clone() is deep", () => {
  const m = new Message();
  m.bhdr.opCode = OpCode.Response;
  m.bhdr.more = 1;
  m.bhdr.origin = 1;
  m.bhdr.messageId = 5n;
  m.headers.append("k", "v");
  m.body.set(new Uint8Array(5000));
  assert(m.hasMore() && m.isFromEngine() && !m.isFromApplication());
  const c = m.clone();
  const cap = m.body.capacity;
  m.reset();
  assertEquals(m.body.byteLength, 0);
  assertEquals(m.headers.byteLength, 0);
  assertEquals(m.bhdr.messageId, 0n);
  assertEquals(m.body.capacity, cap, "storage is kept");
  assert(!m.hasMore() && m.isFromApplication());
  assertEquals(c.body.byteLength, 5000);
  assertEquals(c.headers.get("k"), "v");
  assertEquals(c.bhdr.messageId, 5n);
  assert(c.hasMore());
});

Deno.test("Message prints opcode and status names, channel, id, headers and a body preview", () => {
  const m = new Message();
  m.bhdr.opCode = OpCode.Request;
  m.bhdr.channelNumber = 7;
  m.bhdr.messageId = 42n;
  m.bhdr.more = 1;
  m.headers.append("Job-ID", "12");
  m.body.set("hello");
  assertEquals(
    Deno.inspect(m),
    'Message Request success {\n  channel: 7, id: 42n, application, more\n  Job-ID: 12\n  body: "hello"\n}',
  );
  const r = new Message();
  r.bhdr.opCode = OpCode.Signal;
  r.bhdr.origin = 1;
  r.bhdr.status = Status.channelClosed;
  r.body.set(new Uint8Array([0xff, 0x00, 0x10]));
  assertEquals(
    Deno.inspect(r),
    "Message Signal channel_closed {\n  channel: 0, id: 0n, engine\n  body: ff 00 10\n}",
  );
  const long = new Message();
  // 30 three-byte characters: the 64-byte preview ends inside the 22nd, which is left out.
  long.body.set("\u20ac".repeat(30));
  const shown = Deno.inspect(long);
  assert(shown.includes(`"${"\u20ac".repeat(21)}" ... (90 bytes)`), shown);
});

Deno.test("Message[Symbol.dispose] puts a pool message back once; a standalone one is left alone", async () => {
  await using engine = new Engine();
  const before = engine.poolSize;
  const m: Message = engine.get("always"); // typed Message: no `!` needed
  m.body.set("x");
  assertEquals(engine.poolSize, before - 1);
  m[Symbol.dispose]();
  assertEquals(engine.poolSize, before);
  m[Symbol.dispose]();
  assertEquals(engine.poolSize, before, "disposing twice is a no-op");
  const again = engine.get("always");
  assertEquals(again, m, "the same message is handed out again");
  m[Symbol.dispose]();
  assertEquals(engine.poolSize, before);
  new Message()[Symbol.dispose](); // a standalone message has no pool
  assertEquals(engine.poolSize, before);
});
