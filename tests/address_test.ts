import { assertEquals, assertThrows } from "@std/assert";
import {
  IsolateClientAddress,
  IsolateServerAddress,
  Message,
  OpCode,
  Status,
  TcpClientAddress,
  TcpServerAddress,
  TofuError,
  UdsClientAddress,
  UdsServerAddress,
} from "../mod.ts";
import { parseAddress } from "../src/address.ts";
import { freeTcpPort, tempUdsPath } from "../testing.ts";

Deno.test("TcpClientAddress formats a HelloRequest with ~connect_to", () => {
  const m = new Message();
  m.bhdr.opCode = OpCode.Signal;
  m.bhdr.channelNumber = 5;
  m.bhdr.messageId = 5n;
  m.headers.append("x", "y");
  new TcpClientAddress().format(m);
  assertEquals(m.bhdr.opCode, OpCode.HelloRequest);
  assertEquals(m.bhdr.channelNumber, 0);
  assertEquals(m.bhdr.messageId, 0n);
  assertEquals([...m.headers], [["x", "y"], ["~connect_to", "tcp|127.0.0.1|7099"]]);
});

Deno.test("Server and UDS addresses format WelcomeRequest / HelloRequest", () => {
  const s = new TcpServerAddress("0.0.0.0", 0).format(new Message());
  assertEquals(s.bhdr.opCode, OpCode.WelcomeRequest);
  assertEquals(s.headers.get("~listen_on"), "tcp|0.0.0.0|0");
  const uc = new UdsClientAddress("/tmp/a.sock").format(new Message());
  assertEquals(uc.bhdr.opCode, OpCode.HelloRequest);
  assertEquals(uc.headers.get("~connect_to"), "uds|/tmp/a.sock");
  const us = new UdsServerAddress("/tmp/a.sock").format(new Message());
  assertEquals(us.bhdr.opCode, OpCode.WelcomeRequest);
  assertEquals(us.headers.get("~listen_on"), "uds|/tmp/a.sock");
});

Deno.test("Address parse() round-trips toString()", () => {
  assertEquals(TcpClientAddress.parse("tcp|::1|80").toString(), "tcp|::1|80");
  assertEquals(TcpServerAddress.parse("tcp|example.org|65535").port, 65535);
  assertEquals(UdsClientAddress.parse("uds|/x/y").path, "/x/y");
  assertEquals(UdsServerAddress.parse("uds|/x/y").toString(), "uds|/x/y");
});

Deno.test("Malformed addresses give invalid_address, never a crash", () => {
  const bad = [
    "",
    "tcp",
    "tcp|host",
    "tcp||80",
    "tcp|h|",
    "tcp|h|-1",
    "tcp|h|65536",
    "tcp|h|8a",
    "tcp|h|80|x",
    "udp|h|80",
    "uds",
    "uds|",
    "uds|a|b",
    `uds|/${"x".repeat(200)}`,
    "TCP|h|80",
  ];
  for (const v of bad) {
    const err = assertThrows(() => parseAddress(v), TofuError, undefined, v);
    assertEquals(err.status, Status.invalidAddress, v);
  }
  assertThrows(() => TcpClientAddress.parse("uds|/a"), TofuError);
  assertThrows(() => UdsServerAddress.parse("tcp|a|1"), TofuError);
});

Deno.test("Address constructors reject argument mistakes", () => {
  assertThrows(() => new TcpClientAddress("h", 70000), RangeError);
  assertThrows(() => new TcpServerAddress("", 1), TypeError);
  assertThrows(() => new UdsClientAddress("a|b"), TypeError);
});

Deno.test("Isolate addresses format, parse and reject like the others", () => {
  const c = new IsolateClientAddress("rip-1").format(new Message());
  assertEquals(c.bhdr.opCode, OpCode.HelloRequest);
  assertEquals(c.headers.get("~connect_to"), "isolate|rip-1");
  const s = new IsolateServerAddress("rip-1").format(new Message());
  assertEquals(s.bhdr.opCode, OpCode.WelcomeRequest);
  assertEquals(s.headers.get("~listen_on"), "isolate|rip-1");
  assertEquals(IsolateClientAddress.parse("isolate|a b").name, "a b");
  assertEquals(IsolateServerAddress.parse("isolate|x").toString(), "isolate|x");
  assertEquals(parseAddress(`isolate|${"n".repeat(255)}`), {
    transport: "isolate",
    name: "n".repeat(255),
  });
  for (
    const v of ["isolate", "isolate|", "isolate|a|b", `isolate|${"n".repeat(256)}`, "isolate|a\0"]
  ) {
    const err = assertThrows(() => parseAddress(v), TofuError, undefined, v);
    assertEquals(err.status, Status.invalidAddress, v);
  }
  assertThrows(() => IsolateClientAddress.parse("tcp|a|1"), TofuError);
  assertThrows(() => TcpServerAddress.parse("isolate|a"), TofuError);
  assertThrows(() => new IsolateClientAddress(""), TypeError);
  assertThrows(() => new IsolateServerAddress("a|b"), TypeError);
  assertThrows(() => new IsolateServerAddress("n".repeat(256)), RangeError);
});

Deno.test("testing helpers: freeTcpPort() and tempUdsPath()", () => {
  const port = freeTcpPort();
  const l = Deno.listen({ hostname: "127.0.0.1", port });
  l.close();
  const a = tempUdsPath();
  const b = tempUdsPath();
  assertEquals(a === b, false);
  assertEquals(/\/tofu_\d+_\d+\.port$/.test(a), true, a);
});
