// Text headers (src/text_headers.ts): the protocol's parsing rules, append's checks and
// trimming, and the block limit.

import { assertEquals, assertThrows } from "@std/assert";
import { Status, TextHeaders, TofuError } from "../mod.ts";
import { MAX_HEADERS_LENGTH, parseHeaderBlock } from "../src/text_headers.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const text = (h: TextHeaders) => new TextDecoder().decode(h.raw());

Deno.test("parseHeaderBlock: CRLF lines, empty lines skipped, first colon splits, value trimmed", () => {
  assertEquals(parseHeaderBlock(new Uint8Array(0)), []);
  assertEquals(parseHeaderBlock(enc("a:1\r\nb:2\r\n")), [["a", "1"], ["b", "2"]]);
  // A trailing line without CRLF still counts; empty lines are skipped.
  assertEquals(parseHeaderBlock(enc("\r\n\r\na:1\r\n\r\nb:2")), [["a", "1"], ["b", "2"]]);
  // Split at the first colon; the value is trimmed of spaces and tabs only.
  assertEquals(parseHeaderBlock(enc("url: \thttp://x:80/ \t\r\n")), [["url", "http://x:80/"]]);
  assertEquals(parseHeaderBlock(enc("v:\x0bx\x0b")), [["v", "\x0bx\x0b"]]);
  // The name is kept as it is (no trimming), and may be empty.
  assertEquals(parseHeaderBlock(enc(" n :v\r\n:only")), [[" n ", "v"], ["", "only"]]);
  // A line without a colon is all name with an empty value.
  assertEquals(parseHeaderBlock(enc("flag\r\nk:v")), [["flag", ""], ["k", "v"]]);
  // A lone CR or LF does not end a line.
  assertEquals(parseHeaderBlock(enc("a:1\n2\rb\r\nc:3")), [["a", "1\n2\rb"], ["c", "3"]]);
  assertEquals(parseHeaderBlock(enc("a:")), [["a", ""]]);
  assertEquals(parseHeaderBlock(enc("a:   ")), [["a", ""]]);
  assertEquals(parseHeaderBlock(enc("x")), [["x", ""]]);
  assertEquals(parseHeaderBlock(enc("\r\n")), []);
  assertEquals(parseHeaderBlock(enc("a:1\r")), [["a", "1\r"]]);
});

Deno.test("TextHeaders.append writes name:value CRLF, the name trimmed of space, tab, CR, LF", () => {
  const h = new TextHeaders();
  h.append(" \t\r\nJob ID\n\r\t ", "  keep  spaces ");
  h.append("n", "v");
  assertEquals(text(h), "Job ID:  keep  spaces \r\nn:v\r\n");
  assertEquals(h.byteLength, text(h).length);
  // Non-strings are converted.
  h.reset();
  h.append(42 as unknown as string, 7 as unknown as string);
  assertEquals(text(h), "42:7\r\n");
  // UTF-8 is counted in bytes.
  h.reset();
  h.append("k", "\u00e9\u20ac");
  assertEquals(h.byteLength, 2 + 2 + 3 + 2);
  assertEquals(h.get("k"), "\u00e9\u20ac");
});

Deno.test("TextHeaders.append refuses empty and forbidden names and values with TypeError", () => {
  const h = new TextHeaders();
  const refused = (name: string, value: string, message: string) => {
    const err = assertThrows(() => h.append(name, value), TypeError);
    assertEquals(err.message, message);
  };
  refused("", "v", "Cannot append header: the name is empty");
  refused(" \t\r\n", "v", "Cannot append header: the name is empty");
  refused("n", "", 'Cannot append header "n": the value is empty');
  refused("a:b", "v", `Cannot append header "a:b": a name must not contain ':', CR or LF`);
  refused("a\rb", "v", `Cannot append header "a\rb": a name must not contain ':', CR or LF`);
  refused("a\nb", "v", `Cannot append header "a\nb": a name must not contain ':', CR or LF`);
  refused("n", "a\rb", 'Cannot append header "n": a value must not contain CR or LF');
  refused("n", "a\nb", 'Cannot append header "n": a value must not contain CR or LF');
  refused(" n ", "x\n", 'Cannot append header "n": a value must not contain CR or LF');
  assertEquals(h.byteLength, 0);
  // A colon in a value is fine.
  h.append("n", "a:b");
  assertEquals(h.get("n"), "a:b");
});

Deno.test("TextHeaders: a line that would pass 65535 bytes is refused and nothing of it is kept", () => {
  const h = new TextHeaders();
  h.append("a", "1");
  const before = text(h);
  for (const [name, value] of [["big", "x".repeat(MAX_HEADERS_LENGTH)], ["n".repeat(65530), "v"]]) {
    const err = assertThrows(() => h.append(name!, value!), TofuError);
    assertEquals(err.status, Status.invalidHeadersLen);
    assertEquals(text(h), before, "unchanged");
  }
  // Fill up to exactly the limit: "f:" + value + CRLF.
  h.append("f", "y".repeat(MAX_HEADERS_LENGTH - h.byteLength - 4));
  assertEquals(h.byteLength, MAX_HEADERS_LENGTH);
  // Even the CRLF of a line must fit.
  const err = assertThrows(() => h.append("z", "z"), TofuError);
  assertEquals(err.status, Status.invalidHeadersLen);
  assertEquals(
    err.message,
    "Cannot append to text headers: 65536 bytes exceeds the limit of 65535",
  );
  assertEquals(h.byteLength, MAX_HEADERS_LENGTH);
  assertEquals(h.get("a"), "1");
});

Deno.test("TextHeaders get, getAll and iteration: byte-exact names, duplicates in order", () => {
  const h = new TextHeaders();
  h.append("Name", "1");
  h.append("name", "2");
  h.append("Name", "3");
  assertEquals(h.get("Name"), "1");
  assertEquals(h.get("name"), "2");
  assertEquals(h.get("NAME"), undefined);
  assertEquals(h.getAll("Name"), ["1", "3"]);
  assertEquals(h.getAll("none"), []);
  assertEquals([...h], [["Name", "1"], ["name", "2"], ["Name", "3"]]);
});

Deno.test("TextHeaders reset keeps the storage; setRaw takes wire bytes as they are", () => {
  const h = new TextHeaders();
  h.append("k", "v".repeat(100));
  const cap = h.capacity;
  h.reset();
  assertEquals(h.byteLength, 0);
  assertEquals(h.capacity, cap);
  assertEquals([...h], []);
  h.setRaw(enc("odd line\r\nk: v \r\n"));
  assertEquals([...h], [["odd line", ""], ["k", "v"]]);
  assertEquals(text(h), "odd line\r\nk: v \r\n");
  const err = assertThrows(() => h.setRaw(new Uint8Array(MAX_HEADERS_LENGTH + 1)), TofuError);
  assertEquals(err.status, Status.invalidHeadersLen);
  assertEquals(text(h), "odd line\r\nk: v \r\n", "unchanged");
  // Storage given to the constructor is used first.
  const storage = new Uint8Array(32);
  const s = new TextHeaders(storage);
  assertEquals(s.capacity, 32);
  s.append("a", "b");
  assertEquals(new TextDecoder().decode(storage.subarray(0, 5)), "a:b\r\n");
});
