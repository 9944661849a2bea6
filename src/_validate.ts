// The preparation every posted message goes through (docs/protocol.md section 3, steps a-i).
// The engine calls it before it looks at channels; it does no I/O.

import type { Message } from "./message.ts";
import { isRegular, isResponse, isValidOpCode, OpCode, opCodeName } from "./opcode.ts";
import { Status, TofuError } from "./status.ts";
import { MAX_HEADERS_LENGTH } from "./text_headers.ts";
import { MAX_BODY_LENGTH } from "./body.ts";

// Process-wide, as in the reference: ids stay unique across engines in one process.
let nextMessageId = 1;

/**
 * Refuses a post: the status goes into the message's binary header (the caller keeps the
 * message and reads why there) and into the thrown error, `Cannot post OP: reason`. Every
 * refusal of post, here and in the engine, goes through this one helper (or, for errors a
 * channel's own checks throw, through {@linkcode refuseWith}).
 */
export function refuse(msg: Message, status: number, reason: string): never {
  msg.bhdr.status = status;
  throw new TofuError(status, `Cannot post ${opCodeName(msg.bhdr.opCode)}: ${reason}`);
}

/** Refuses a post with a TofuError thrown by a channel's checks (its status goes into the header). */
export function refuseWith(msg: Message, err: unknown): never {
  if (err instanceof TofuError) msg.bhdr.status = err.status;
  throw err;
}

/** Whether `op` asks the engine for a new channel (connect or listen). */
export function opensChannel(op: number): boolean {
  return op === OpCode.HelloRequest || op === OpCode.WelcomeRequest;
}

/**
 * Validates and prepares `msg` for posting. On failure it sets the status byte,
 * throws a {@linkcode TofuError} and leaves the message otherwise untouched with the
 * caller. On success origin and status are 0, the lengths are current and the
 * message id is non-zero.
 */
export function validateForPost(msg: Message): void {
  const bh = msg.bhdr;
  const op = bh.opCode;
  if (!isValidOpCode(op)) refuse(msg, Status.invalidOpCode, `opcode ${op} is not 0..9`);
  bh.origin = 0;
  bh.status = 0;
  bh.textHeadersLength = msg.headers.byteLength;
  bh.bodyLength = msg.body.byteLength;
  if (isResponse(op) && bh.hasZeroMessageId) {
    refuse(msg, Status.invalidMessageId, "a response must carry the id of its request");
  }
  if (bh.more !== 0 && !isRegular(op)) {
    refuse(msg, Status.invalidMoreUsage, "only Request, Response and Signal may set more");
  }
  const ch = bh.channelNumber;
  if (!Number.isInteger(ch) || ch < 0 || ch >= 65535) {
    refuse(msg, Status.invalidChannelNumber, `channel ${ch} is not 1..65534`);
  }
  if (ch === 0 && !opensChannel(op)) {
    refuse(
      msg,
      Status.invalidChannelNumber,
      "channel 0 is only for HelloRequest and WelcomeRequest",
    );
  }
  if (msg.headers.byteLength > MAX_HEADERS_LENGTH) {
    refuse(msg, Status.invalidHeadersLen, `text headers exceed ${MAX_HEADERS_LENGTH} bytes`);
  }
  if (opensChannel(op) && msg.headers.byteLength === 0) {
    refuse(msg, Status.wrongAddress, "it needs an address header (~connect_to or ~listen_on)");
  }
  if (msg.body.byteLength > MAX_BODY_LENGTH) {
    refuse(msg, Status.invalidBodyLen, `body exceeds ${MAX_BODY_LENGTH} bytes`);
  }
  if (bh.hasZeroMessageId) bh.setMessageIdNumber(nextMessageId++);
}
