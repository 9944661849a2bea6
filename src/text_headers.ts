/**
 * The text-header block of a message: `name:value\r\n` lines.
 *
 * @module
 */

import { ByteBuffer, EMPTY } from "./_bytes.ts";
import { Status } from "./status.ts";

/** Largest text-header block, in bytes (the `u16` length field). */
export const MAX_HEADERS_LENGTH = 65535;

const decoder = new TextDecoder();

function trimName(name: string): string {
  let start = 0;
  let end = name.length;
  while (start < end && isNameSpace(name.charCodeAt(start))) start++;
  while (end > start && isNameSpace(name.charCodeAt(end - 1))) end--;
  return name.slice(start, end);
}

function isNameSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

function trimValue(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && isValueSpace(value.charCodeAt(start))) start++;
  while (end > start && isValueSpace(value.charCodeAt(end - 1))) end--;
  return value.slice(start, end);
}

function isValueSpace(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/**
 * Parses a text-header block by the protocol's rules: lines split on CRLF only,
 * empty lines skipped, each line split at its first `:`, the value trimmed of
 * spaces and tabs; a line without `:` is all name with an empty value.
 *
 * @param block The raw block.
 * @returns The `[name, value]` pairs in order.
 */
export function parseHeaderBlock(block: Uint8Array): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (block.length === 0) return out;
  const text = decoder.decode(block);
  let pos = 0;
  while (pos <= text.length) {
    let eol = text.indexOf("\r\n", pos);
    if (eol < 0) eol = text.length;
    if (eol > pos) {
      const line = text.slice(pos, eol);
      const colon = line.indexOf(":");
      if (colon < 0) out.push([line, ""]);
      else out.push([line.slice(0, colon), trimValue(line.slice(colon + 1))]);
    }
    pos = eol + 2;
  }
  return out;
}

let textHeadersBuffer: (x: TextHeaders) => ByteBuffer;

/** Library-internal: the byte buffer behind a TextHeaders (for the codec). */
export function textHeadersBytes(x: TextHeaders): ByteBuffer {
  return textHeadersBuffer(x);
}

/**
 * The text headers of a message, stored as the encoded block that goes on the
 * wire, so sending and receiving copy bytes and nothing else.
 *
 * @example Adding and reading headers
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Message } from "@tofu/tofu";
 *
 * const msg = new Message();
 * msg.headers.append("Job-ID", "12345");
 * assertEquals(msg.headers.get("Job-ID"), "12345");
 * assertEquals([...msg.headers], [["Job-ID", "12345"]]);
 * ```
 */
export class TextHeaders {
  readonly #buf: ByteBuffer;

  static {
    textHeadersBuffer = (x) => x.#buf;
  }

  /**
   * Creates an empty header block.
   *
   * @param storage Initial storage (it grows as needed).
   */
  constructor(storage: Uint8Array = EMPTY) {
    this.#buf = new ByteBuffer(
      storage,
      MAX_HEADERS_LENGTH,
      Status.invalidHeadersLen,
      "text headers",
    );
  }

  /** Size of the encoded block in bytes. */
  get byteLength(): number {
    return this.#buf.length;
  }

  /** Size of the storage the block currently has (it is kept across resets). */
  get capacity(): number {
    return this.#buf.capacity;
  }

  /**
   * Appends a `name:value` line. The name is trimmed of spaces, tabs, CR and LF.
   *
   * @param name A non-empty name without `:`, CR or LF.
   * @param value A non-empty value without CR or LF.
   * @throws {TypeError} If the name or value is empty or contains a forbidden character.
   * @throws {TofuError} With status `invalid_headers_len` if the block would exceed 65535 bytes.
   */
  append(name: string, value: string): void {
    const n = trimName(String(name));
    const v = String(value);
    if (n.length === 0) throw new TypeError("Cannot append header: the name is empty");
    if (v.length === 0) throw new TypeError(`Cannot append header "${n}": the value is empty`);
    if (/[\r\n:]/.test(n)) {
      throw new TypeError(`Cannot append header "${n}": a name must not contain ':', CR or LF`);
    }
    if (/[\r\n]/.test(v)) {
      throw new TypeError(`Cannot append header "${n}": a value must not contain CR or LF`);
    }
    const start = this.#buf.length;
    try {
      this.#buf.appendString(n);
      this.#buf.appendString(":");
      this.#buf.appendString(v);
      this.#buf.appendString("\r\n");
    } catch (err) {
      this.#buf.truncate(start);
      throw err;
    }
  }

  /**
   * Returns the value of the first header called `name` (byte-exact, case-sensitive).
   *
   * @param name The header name.
   * @returns Its value, or `undefined`.
   */
  get(name: string): string | undefined {
    for (const [n, v] of parseHeaderBlock(this.#buf.view())) if (n === name) return v;
    return undefined;
  }

  /**
   * Returns every value of the headers called `name`, in order.
   *
   * @param name The header name.
   * @returns The values (empty when there are none).
   */
  getAll(name: string): string[] {
    return parseHeaderBlock(this.#buf.view()).filter(([n]) => n === name).map(([, v]) => v);
  }

  /** Yields the `[name, value]` pairs in order, duplicates included. */
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return parseHeaderBlock(this.#buf.view())[Symbol.iterator]();
  }

  /** Removes every header (the storage is kept). */
  reset(): void {
    this.#buf.reset();
  }

  /**
   * The encoded block as a view, valid until the headers change.
   *
   * @returns The raw `name:value\r\n` bytes.
   */
  raw(): Uint8Array {
    return this.#buf.view();
  }

  /**
   * Replaces the block with already encoded bytes, as received from the wire.
   *
   * @param block The raw block.
   * @throws {TofuError} With status `invalid_headers_len` if longer than 65535 bytes.
   */
  setRaw(block: Uint8Array): void {
    this.#buf.set(block);
  }
}
