// Raw-socket helpers shared by the neighbour benches: one encoded frame, and a write of
// all its bytes.

import { encodeFrame, Message } from "../mod.ts";

/** The encoded frame of a message with opcode `op`, message id `id` and an optional text body. */
export function frame(op: number, id: number, body = ""): Uint8Array {
  const m = new Message();
  m.bhdr.opCode = op;
  m.bhdr.messageId = BigInt(id);
  if (body) m.body.set(body);
  return encodeFrame(m);
}

/** Writes every byte of `bytes` to `conn`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}
