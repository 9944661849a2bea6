// Loads ../shared/wire-vectors.json at test time (the contract's golden frames).

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

const url = new URL("../../shared/wire-vectors.json", import.meta.url);

export const vectors: Vector[] = JSON.parse(await Deno.readTextFile(url)).vectors;
