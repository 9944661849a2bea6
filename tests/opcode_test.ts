// Opcode names and roles (src/opcode.ts), checked for every value 0..15 and a few non-integers.

import { assertEquals } from "@std/assert";
import { OpCode, opCodeName } from "../mod.ts";
import { isRegular, isResponse, isValidOpCode } from "../src/opcode.ts";

const NAMES = [
  "Request",
  "Response",
  "Signal",
  "HelloRequest",
  "HelloResponse",
  "ByeRequest",
  "ByeResponse",
  "ByeSignal",
  "WelcomeRequest",
  "WelcomeResponse",
];

Deno.test("OpCode: the ten values, in wire order", () => {
  assertEquals(Object.entries(OpCode), NAMES.map((name, i) => [name, i]));
});

Deno.test("opCodeName names 0..9 and marks anything else invalid", () => {
  for (let op = 0; op < 10; op++) assertEquals(opCodeName(op), NAMES[op]);
  for (const op of [10, 15, -1, 1.5, 255]) assertEquals(opCodeName(op), `invalid(${op})`);
});

Deno.test("isValidOpCode: integers 0..9 only", () => {
  for (let op = -2; op < 16; op++) assertEquals(isValidOpCode(op), op >= 0 && op <= 9, String(op));
  for (const op of [0.5, 8.5, NaN, Infinity]) assertEquals(isValidOpCode(op), false, String(op));
});

Deno.test("isRegular: Request, Response and Signal; isResponse: the four responses", () => {
  const regular = [OpCode.Request, OpCode.Response, OpCode.Signal];
  const responses = [
    OpCode.Response,
    OpCode.HelloResponse,
    OpCode.ByeResponse,
    OpCode.WelcomeResponse,
  ];
  for (let op = -2; op < 16; op++) {
    assertEquals(isRegular(op), (regular as number[]).includes(op), `isRegular(${op})`);
    assertEquals(isResponse(op), (responses as number[]).includes(op), `isResponse(${op})`);
  }
});
