// Engine reports: messages handed back or made by the engine, with origin engine.

import { markReport, Message, Owner, transfer } from "./message.ts";
import { OpCode } from "./opcode.ts";
import { TofuError } from "./status.ts";
import type { BinaryHeader } from "./binary_header.ts";

/** Marks `m` as handed back to the application with `status` and `error`. */
export function handBack(m: Message, status: number, error: TofuError | null): Message {
  transfer(m, Owner.Application);
  m.bhdr.origin = 1;
  m.bhdr.status = status;
  m.error = error ?? undefined;
  return m;
}

// Signals the engine makes (pool_empty, channel_closed, receiver_update) are marked (see
// Message.isReport): put() drops them instead of pooling them, so a flood of reports never
// adds messages to circulation.

/** A new engine Signal, not from the pool; put() drops it rather than pooling it. */
export function engineSignal(
  channel: number,
  status: number,
  id: BinaryHeader | null,
  error: TofuError | null,
): Message {
  const m = new Message();
  m.bhdr.opCode = OpCode.Signal;
  m.bhdr.origin = 1;
  m.bhdr.status = status;
  m.bhdr.channelNumber = channel;
  if (id) m.bhdr.setMessageIdFrom(id);
  m.error = error ?? undefined;
  markReport(m);
  return m;
}

/** Wraps any thrown value into a TofuError with a `Cannot <action>: <reason>` message. */
export function asTofuError(status: number, action: string, cause: unknown): TofuError {
  if (cause instanceof TofuError && cause.status === status) return cause;
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new TofuError(status, `Cannot ${action}: ${reason}`, { cause });
}
