// How the tool shows things: a message as a readable block or one JSON line, a
// `name:value` argument, percentiles and a two-column summary table.

import { type Message, opCodeName, statusName } from "../mod.ts";
import { colors } from "./_std.ts";

/** Text bodies longer than this many characters are cut short unless `--full`. */
export const TEXT_LIMIT = 1024;
/** Binary bodies longer than this many bytes are cut short unless `--full`. */
export const HEX_LIMIT = 256;

/** How a message is shown. */
export interface ShowOptions {
  /** One JSON object per line instead of a block. */
  json: boolean;
  /** Never cut a body short. */
  full: boolean;
}

/** Whether the message was sent by this tool or received from a peer or the engine. */
export type Direction = "sent" | "received";

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8 = new TextEncoder();

/**
 * The body as text when it is valid UTF-8 without control characters other than tab,
 * line feed and a CR that ends a line; `undefined` otherwise (show it as hex).
 */
export function printableText(bytes: Uint8Array): string | undefined {
  let text: string;
  try {
    text = fatalUtf8.decode(bytes);
  } catch {
    return undefined;
  }
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x09 || c === 0x0a) continue;
    if (c === 0x0d && text.charCodeAt(i + 1) === 0x0a) continue; // CRLF line ends only
    if (isControl(c)) return undefined;
  }
  return text;
}

// C0 controls, DEL and the C1 controls.
function isControl(c: number): boolean {
  return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

/** Replaces control characters with `\xNN` so peer text cannot drive the terminal. */
export function escapeControls(text: string): string {
  let out = "";
  for (const ch of text) {
    const c = ch.charCodeAt(0);
    out += isControl(c) ? `\\x${c.toString(16).padStart(2, "0")}` : ch;
  }
  return out;
}

/** Standard base64 of `bytes`. */
export function base64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function hexLines(bytes: Uint8Array): string[] {
  const lines: string[] = [];
  for (let off = 0; off < bytes.length; off += 16) {
    const row = bytes.subarray(off, off + 16);
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, "0")).join(" ");
    const ascii = Array.from(row, (b) => b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")
      .join("");
    lines.push(`${off.toString(16).padStart(4, "0")}  ${hex.padEnd(47)}  |${ascii}|`);
  }
  return lines;
}

function statusText(status: number): string {
  const name = statusName(status);
  return status === 0 ? name : colors.red(name);
}

/** The readable block of one message, ending with a blank line. */
export function formatBlock(msg: Message, direction: Direction, full: boolean): string {
  const h = msg.bhdr;
  const heading = [
    direction === "sent" ? colors.dim("sent") : undefined,
    colors.bold(colors.cyan(opCodeName(h.opCode))),
    `channel=${h.channelNumber}`,
    `id=${h.messageId}`,
    `status=${statusText(h.status)}`,
    `more=${h.more}`,
    `origin=${h.origin === 1 ? colors.yellow("engine") : "application"}`,
  ].filter((part) => part !== undefined).join(" ");
  const lines = [heading];
  for (const [name, value] of msg.headers) {
    lines.push(`  ${colors.magenta(escapeControls(name))}: ${escapeControls(value)}`);
  }
  if (msg.error !== undefined) lines.push(`  ${colors.red("error")}: ${msg.error.message}`);
  const bytes = msg.body.bytes();
  if (bytes.length === 0) {
    lines.push(colors.dim("  body: empty"));
  } else {
    const text = printableText(bytes);
    if (text !== undefined) {
      lines.push(colors.dim(`  body: ${bytes.length} bytes, text`));
      const chars = Array.from(text);
      const shown = full || chars.length <= TEXT_LIMIT ? text : chars.slice(0, TEXT_LIMIT).join("");
      for (const line of shown.replace(/\r\n/g, "\n").split("\n")) lines.push(`    ${line}`);
      if (shown.length < text.length) {
        const rest = bytes.length - utf8.encode(shown).length;
        lines.push(colors.dim(`    ... ${rest} more bytes (--full shows all)`));
      }
    } else {
      lines.push(colors.dim(`  body: ${bytes.length} bytes, hex`));
      const shown = full ? bytes : bytes.subarray(0, HEX_LIMIT);
      for (const line of hexLines(shown)) lines.push(`    ${line}`);
      if (shown.length < bytes.length) {
        lines.push(
          colors.dim(`    ... ${bytes.length - shown.length} more bytes (--full shows all)`),
        );
      }
    }
  }
  return lines.join("\n") + "\n\n";
}

/** The JSON object of one message (the whole body, as text or base64). */
export function messageRecord(msg: Message, direction: Direction): Record<string, unknown> {
  const h = msg.bhdr;
  const bytes = msg.body.bytes();
  const text = printableText(bytes);
  const record: Record<string, unknown> = {
    direction,
    op: opCodeName(h.opCode),
    status: statusName(h.status),
    channel: h.channelNumber,
    id: h.messageId.toString(),
    more: h.more === 1,
    origin: h.origin === 1 ? "engine" : "application",
    headers: [...msg.headers],
    bodyEncoding: text === undefined ? "base64" : "text",
    body: text ?? base64(bytes),
    bodyBytes: bytes.length,
  };
  if (msg.error !== undefined) record.error = msg.error.message;
  return record;
}

/** One message as shown: a block, or one JSON line. */
export function formatMessage(msg: Message, direction: Direction, options: ShowOptions): string {
  return options.json
    ? JSON.stringify(messageRecord(msg, direction)) + "\n"
    : formatBlock(msg, direction, options.full);
}

/**
 * Splits a `--header name:value` argument at its first colon.
 *
 * @throws {TypeError} When there is no colon, or the name or value is empty.
 */
export function parseHeader(arg: string): [string, string] {
  const colon = arg.indexOf(":");
  const name = colon < 0 ? "" : arg.slice(0, colon).trim();
  const value = colon < 0 ? "" : arg.slice(colon + 1).trim();
  if (name.length === 0 || value.length === 0) {
    throw new TypeError(
      `Cannot parse header "${arg}": expected name:value with a non-empty name and value`,
    );
  }
  return [name, value];
}

/**
 * The nearest-rank percentile `q` (0..1) of `sorted` (ascending); `NaN` when empty.
 */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

/** Latency figures in milliseconds of a set of samples. */
export interface LatencySummary {
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** min, p50, p90, p99 and max of `samples` (milliseconds, any order). */
export function summarize(samples: readonly number[]): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  return {
    min: percentile(sorted, 0),
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
    max: percentile(sorted, 1),
  };
}

/** A duration in milliseconds with three decimals. */
export function ms(value: number): string {
  return Number.isNaN(value) ? "-" : `${value.toFixed(3)} ms`;
}

/** A two-column table: a bold title line, then `label  value` rows aligned. */
export function table(title: string, rows: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...rows.map(([label]) => label.length));
  const body = rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`);
  return [colors.bold(title), ...body].join("\n") + "\n";
}
