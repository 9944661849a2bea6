/**
 * Operation codes of the binary header and their roles.
 *
 * @module
 */

/**
 * The operation codes of the tofu protocol (bits 0-3 of the proto byte).
 *
 * @example Making a signal
 * ```ts
 * import { Message, OpCode } from "@tofu/tofu";
 *
 * const msg = new Message();
 * msg.bhdr.opCode = OpCode.Signal;
 * ```
 */
export const OpCode = {
  Request: 0,
  Response: 1,
  Signal: 2,
  HelloRequest: 3,
  HelloResponse: 4,
  ByeRequest: 5,
  ByeResponse: 6,
  ByeSignal: 7,
  WelcomeRequest: 8,
  WelcomeResponse: 9,
} as const;

/** One of the values of {@linkcode OpCode}. */
export type OpCode = typeof OpCode[keyof typeof OpCode];

const OPCODE_NAMES = [
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
] as const;

/**
 * Returns the name of an operation code (`"HelloRequest"`), or `"invalid(N)"`.
 *
 * @param op The operation code.
 * @returns Its name.
 *
 * @example Naming an opcode
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { opCodeName } from "@tofu/tofu";
 *
 * assertEquals(opCodeName(3), "HelloRequest");
 * ```
 */
export function opCodeName(op: number): string {
  return OPCODE_NAMES[op] ?? `invalid(${op})`;
}

/** Whether `op` is a defined operation code (0-9). */
export function isValidOpCode(op: number): op is OpCode {
  return Number.isInteger(op) && op >= 0 && op <= 9;
}

/** Request, Response and Signal: the only opcodes that may carry `more`. */
export function isRegular(op: number): boolean {
  return op >= 0 && op <= 2;
}

/** Opcodes in the response role, which must reuse a non-zero message id. */
export function isResponse(op: number): boolean {
  return op === 1 || op === 4 || op === 6 || op === 9;
}
