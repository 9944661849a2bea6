// The handler of bench/workers.ts: CPU-bound work, a fixed number of xorshift rounds given
// in the request body (the bench calibrates it to about 200 us on the machine at hand).
import type { Message } from "../mod.ts";

export function work(rounds: number): number {
  let x = 2463534242;
  for (let i = 0; i < rounds; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
  }
  return x >>> 0;
}

const worker = (globalThis as { name?: string }).name ?? "main";

/** Answers `WORKER:RESULT`, so the bench sees how the requests spread over the Workers. */
export default (req: Message): string => `${worker}:${work(Number(req.body.text()))}`;
