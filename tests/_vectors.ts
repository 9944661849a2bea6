// The contract's golden frames: tests/testdata/wire-vectors.json is a byte-identical copy of
// the project's shared wire-vectors.json, imported as a module so no read permission is needed.

import data from "./testdata/wire-vectors.json" with { type: "json" };

export interface Vector {
  name: string;
  description: string;
  fields: {
    channelNumber: number;
    opCode: number;
    origin: 0 | 1;
    more: 0 | 1;
    status: number;
    messageId: string;
    headers: Array<[string, string]>;
    bodyHex: string;
  };
  hex: string;
}

export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export const vectors: Vector[] = (data as unknown as { vectors: Vector[] }).vectors;
