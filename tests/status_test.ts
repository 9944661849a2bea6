import { assertEquals, assertInstanceOf } from "@std/assert";
import { OpCode, opCodeName, Status, statusName, TofuError } from "../mod.ts";

Deno.test("Status numbers and statusName() match docs/protocol.md section 7", () => {
  assertEquals(Status.success, 0);
  assertEquals(Status.invelidMchnGroup, 11);
  assertEquals(Status.poolEmpty, 19);
  assertEquals(Status.channelClosed, 22);
  assertEquals(Status.unknownError, 31);
  assertEquals(statusName(Status.channelClosed), "channel_closed");
  assertEquals(statusName(11), "invelid_mchn_group");
  assertEquals(statusName(31), "unknown_error");
  assertEquals(statusName(200), "unknown_error");
  assertEquals(statusName(-1), "unknown_error");
  // Every camelCase key maps to its snake_case protocol name.
  for (const [key, value] of Object.entries(Status)) {
    assertEquals(statusName(value).replace(/_(.)/g, (_, c) => c.toUpperCase()), key);
  }
});

Deno.test("OpCode values and names", () => {
  assertEquals(OpCode.WelcomeResponse, 9);
  assertEquals(opCodeName(OpCode.ByeSignal), "ByeSignal");
  assertEquals(opCodeName(12), "invalid(12)");
});

Deno.test("TofuError carries the status and its name", () => {
  const e = new TofuError(Status.poolEmpty, "Cannot read: empty");
  assertInstanceOf(e, Error);
  assertEquals(e.status, 19);
  assertEquals(e.statusName, "pool_empty");
  assertEquals(e.name, "TofuError");
});
