// The message body (src/body.ts): bytes and strings, the 65535-byte limit, storage reuse.

import { assertEquals, assertThrows } from "@std/assert";
import { Body, Status, TofuError } from "../mod.ts";
import { MAX_BODY_LENGTH } from "../src/body.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("Body append and set take bytes or strings (UTF-8)", () => {
  const b = new Body();
  assertEquals([b.byteLength, b.text()], [0, ""]);
  b.append("h\u00e9");
  b.append(enc("llo"));
  assertEquals(b.text(), "h\u00e9llo");
  assertEquals(b.byteLength, 6);
  assertEquals(b.bytes(), enc("h\u00e9llo"));
  b.set(enc("\u20ac"));
  assertEquals(b.bytes(), enc("\u20ac"));
  b.set("abc");
  assertEquals(b.text(), "abc");
  b.set("");
  assertEquals(b.byteLength, 0);
  b.set(new Uint8Array(0));
  assertEquals(b.byteLength, 0);
});

Deno.test("Body refuses to pass 65535 bytes, as bytes or as a string, and stays unchanged", () => {
  assertEquals(MAX_BODY_LENGTH, 65535);
  const b = new Body();
  b.set("keep");
  const refused = (fn: () => void, message: string) => {
    const err = assertThrows(fn, TofuError);
    assertEquals(err.status, Status.invalidBodyLen);
    assertEquals(err.message, message);
    assertEquals(b.text(), "keep");
  };
  refused(
    () => b.set(new Uint8Array(65536)),
    "Cannot set body: 65536 bytes exceeds the limit of 65535",
  );
  refused(
    () => b.set("\u00e9".repeat(32768)),
    "Cannot set body: 65536 bytes exceeds the limit of 65535",
  );
  refused(
    () => b.append(new Uint8Array(65532)),
    "Cannot append to body: 65536 bytes exceeds the limit of 65535",
  );
  refused(
    () => b.append("x".repeat(65532)),
    "Cannot append to body: 65536 bytes exceeds the limit of 65535",
  );
  b.append("x".repeat(65531));
  assertEquals(b.byteLength, 65535);
});

Deno.test("Body reset keeps its storage; given storage is used first", () => {
  const storage = new Uint8Array(16);
  const b = new Body(storage);
  assertEquals(b.capacity, 16);
  b.set("sixteen bytes!!!");
  assertEquals(new TextDecoder().decode(storage), "sixteen bytes!!!");
  b.append("+");
  assertEquals(b.capacity, 64);
  b.reset();
  assertEquals([b.byteLength, b.capacity], [0, 64]);
});
