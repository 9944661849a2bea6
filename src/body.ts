/**
 * The body of a message: up to 65535 bytes of application data.
 *
 * @module
 */

import { ByteBuffer, EMPTY } from "./_bytes.ts";
import { Status } from "./status.ts";

/** Largest body, in bytes (the `u16` length field). */
export const MAX_BODY_LENGTH = 65535;

const decoder = new TextDecoder();

let bodyBuffer: (x: Body) => ByteBuffer;

/** Library-internal: the byte buffer behind a Body (for the codec). */
export function bodyBytes(x: Body): ByteBuffer {
  return bodyBuffer(x);
}

/**
 * The body of a message. Its storage grows on demand and is kept when the message
 * is reset, so a pooled message stops allocating once it has seen its largest body.
 *
 * @example Filling and reading a body
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Message } from "@tofu/tofu";
 *
 * const msg = new Message();
 * msg.body.set("hello, ");
 * msg.body.append("tofu");
 * assertEquals(msg.body.text(), "hello, tofu");
 * ```
 */
export class Body {
  readonly #buf: ByteBuffer;

  static {
    bodyBuffer = (x) => x.#buf;
  }

  /**
   * Creates an empty body.
   *
   * @param storage Initial storage (it grows as needed).
   */
  constructor(storage: Uint8Array = EMPTY) {
    this.#buf = new ByteBuffer(storage, MAX_BODY_LENGTH, Status.invalidBodyLen, "body");
  }

  /** Size of the body in bytes. */
  get byteLength(): number {
    return this.#buf.length;
  }

  /** Size of the storage the body currently has (it is kept across resets). */
  get capacity(): number {
    return this.#buf.capacity;
  }

  /**
   * Appends bytes, or the UTF-8 encoding of a string.
   *
   * @param data What to append.
   * @throws {TofuError} With status `invalid_body_len` if the body would exceed 65535 bytes;
   * the body is then unchanged.
   */
  append(data: Uint8Array | string): void {
    if (typeof data === "string") this.#buf.appendString(data);
    else this.#buf.append(data);
  }

  /**
   * Replaces the body with bytes, or the UTF-8 encoding of a string.
   *
   * @param data The new content.
   * @throws {TofuError} With status `invalid_body_len` if longer than 65535 bytes;
   * the body is then unchanged.
   */
  set(data: Uint8Array | string): void {
    if (typeof data === "string") this.#buf.setString(data);
    else this.#buf.set(data);
  }

  /**
   * The body bytes as a view (no copy), valid until the message is changed, put or posted.
   *
   * @returns A view of the body.
   */
  bytes(): Uint8Array {
    return this.#buf.view();
  }

  /**
   * The body decoded as UTF-8.
   *
   * @returns The text.
   */
  text(): string {
    return decoder.decode(this.#buf.view());
  }

  /** Empties the body (the storage is kept). */
  reset(): void {
    this.#buf.reset();
  }
}
