/**
 * Address helpers: they turn a message into a connect (HelloRequest) or listen
 * (WelcomeRequest) request with the reserved `~connect_to` / `~listen_on` header.
 *
 * @module
 */

import type { Message } from "./message.ts";
import { OpCode } from "./opcode.ts";
import { Status, TofuError } from "./status.ts";

/** The header a HelloRequest names its peer with. */
export const CONNECT_TO = "~connect_to";
/** The header a WelcomeRequest names its listening address with. */
export const LISTEN_ON = "~listen_on";

/** Longest Unix socket path in bytes (Linux `sun_path` is 108 bytes with the NUL). */
export const MAX_UDS_PATH_BYTES = 107;

/** Longest isolate channel name in characters. */
export const MAX_ISOLATE_NAME = 255;

/** A parsed address: TCP host and port, a Unix socket path, or an isolate channel name. */
export type ParsedAddress =
  | { transport: "tcp"; host: string; port: number }
  | { transport: "uds"; path: string }
  | { transport: "isolate"; name: string };

function invalid(value: string, reason: string): TofuError {
  // Control characters escaped: an error text stays one line (a path with a line break in
  // it made a log line of two).
  // deno-lint-ignore no-control-regex
  const shown = value.replace(/[\x00-\x1f\x7f]/g, (c) => JSON.stringify(c).slice(1, -1));
  return new TofuError(Status.invalidAddress, `Cannot parse address "${shown}": ${reason}`);
}

/**
 * Parses `tcp|HOST|PORT`, `uds|PATH` or `isolate|NAME`. Anything else is `invalid_address`.
 *
 * @param value The header value.
 * @returns The parsed address.
 * @throws {TofuError} With status `invalid_address`.
 */
export function parseAddress(value: string): ParsedAddress {
  if (typeof value !== "string") throw invalid(String(value), "not a string");
  if (/[\r\n]/.test(value)) throw invalid(value, "it contains a line break");
  const parts = value.split("|");
  if (parts[0] === "tcp") {
    if (parts.length !== 3) throw invalid(value, "expected tcp|HOST|PORT");
    const host = parts[1]!;
    const port = parts[2]!;
    if (host.length === 0) throw invalid(value, "the host is empty");
    if (!/^[0-9]{1,5}$/.test(port) || Number(port) > 65535) {
      throw invalid(value, "the port is not a number 0..65535");
    }
    return { transport: "tcp", host, port: Number(port) };
  }
  if (parts[0] === "uds") {
    if (parts.length !== 2) throw invalid(value, "expected uds|PATH");
    const path = parts[1]!;
    if (path.length === 0) throw invalid(value, "the path is empty");
    if (path.includes("\0")) throw invalid(value, "the path contains NUL");
    if (new TextEncoder().encode(path).length > MAX_UDS_PATH_BYTES) {
      throw invalid(value, `the path is longer than ${MAX_UDS_PATH_BYTES} bytes`);
    }
    return { transport: "uds", path };
  }
  if (parts[0] === "isolate") {
    if (parts.length !== 2) throw invalid(value, "expected isolate|NAME");
    const name = parts[1]!;
    if (name.length === 0) throw invalid(value, "the name is empty");
    if (name.length > MAX_ISOLATE_NAME) {
      throw invalid(value, `the name is longer than ${MAX_ISOLATE_NAME} characters`);
    }
    if (/[\0\r\n]/.test(name)) throw invalid(value, "the name contains NUL, CR or LF");
    return { transport: "isolate", name };
  }
  throw invalid(value, "the transport must be tcp, uds or isolate");
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`Cannot make address: port ${port} is not an integer 0..65535`);
  }
}

function checkText(what: string, value: string): void {
  if (typeof value !== "string" || value.length === 0 || /[|\r\n]/.test(value)) {
    throw new TypeError(
      `Cannot make address: the ${what} must be non-empty, without '|', CR or LF`,
    );
  }
}

function formatRequest(msg: Message, op: number, header: string, value: string): Message {
  msg.bhdr.reset();
  msg.bhdr.opCode = op;
  msg.headers.append(header, value);
  return msg;
}

/**
 * A TCP address to connect to. `format(msg)` makes `msg` a HelloRequest with
 * `~connect_to: tcp|HOST|PORT`.
 *
 * @example Connecting to a server
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Message, TcpClientAddress } from "@tofu/tofu";
 *
 * const hello = new TcpClientAddress("127.0.0.1", 7099).format(new Message());
 * assertEquals(hello.headers.get("~connect_to"), "tcp|127.0.0.1|7099");
 * ```
 */
export class TcpClientAddress {
  /** Host name or IP literal. */
  readonly host: string;
  /** TCP port. */
  readonly port: number;

  /**
   * Creates the address of a TCP peer to connect to.
   *
   * @param host Host name or IP literal (default `127.0.0.1`).
   * @param port TCP port (default 7099).
   */
  constructor(host = "127.0.0.1", port = 7099) {
    checkText("host", host);
    checkPort(port);
    this.host = host;
    this.port = port;
  }

  /**
   * Makes `msg` a HelloRequest for this address (the binary header is reset).
   *
   * @param msg The message to format.
   * @returns The same message.
   */
  format(msg: Message): Message {
    return formatRequest(msg, OpCode.HelloRequest, CONNECT_TO, this.toString());
  }

  /** The header value, `tcp|HOST|PORT`. */
  toString(): string {
    return `tcp|${this.host}|${this.port}`;
  }

  /**
   * Parses `tcp|HOST|PORT`.
   *
   * @param value The header value.
   * @returns The address.
   * @throws {TofuError} With status `invalid_address`.
   */
  static parse(value: string): TcpClientAddress {
    const a = parseAddress(value);
    if (a.transport !== "tcp") throw invalid(value, "not a tcp address");
    return new TcpClientAddress(a.host, a.port);
  }
}

/**
 * A TCP address to listen on. `format(msg)` makes `msg` a WelcomeRequest with
 * `~listen_on: tcp|HOST|PORT` (port 0 picks a free port; the WelcomeResponse names it).
 *
 * @example Listening on a free port
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Message, TcpServerAddress } from "@tofu/tofu";
 *
 * const welcome = new TcpServerAddress("127.0.0.1", 0).format(new Message());
 * assertEquals(welcome.headers.get("~listen_on"), "tcp|127.0.0.1|0");
 * ```
 */
export class TcpServerAddress {
  /** Interface to bind (an IP literal or host name). */
  readonly host: string;
  /** TCP port (0: any free port). */
  readonly port: number;

  /**
   * Creates a TCP address to listen on.
   *
   * @param host Interface to bind (default `127.0.0.1`).
   * @param port TCP port (default 7099; 0 picks a free one).
   */
  constructor(host = "127.0.0.1", port = 7099) {
    checkText("host", host);
    checkPort(port);
    this.host = host;
    this.port = port;
  }

  /**
   * Makes `msg` a WelcomeRequest for this address (the binary header is reset).
   *
   * @param msg The message to format.
   * @returns The same message.
   */
  format(msg: Message): Message {
    return formatRequest(msg, OpCode.WelcomeRequest, LISTEN_ON, this.toString());
  }

  /** The header value, `tcp|HOST|PORT`. */
  toString(): string {
    return `tcp|${this.host}|${this.port}`;
  }

  /**
   * Parses `tcp|HOST|PORT`.
   *
   * @param value The header value.
   * @returns The address.
   * @throws {TofuError} With status `invalid_address`.
   */
  static parse(value: string): TcpServerAddress {
    const a = parseAddress(value);
    if (a.transport !== "tcp") throw invalid(value, "not a tcp address");
    return new TcpServerAddress(a.host, a.port);
  }
}

/**
 * A Unix socket path to connect to. `format(msg)` makes `msg` a HelloRequest with
 * `~connect_to: uds|PATH`.
 *
 * @example Connecting over a Unix socket
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Message, UdsClientAddress } from "@tofu/tofu";
 *
 * const hello = new UdsClientAddress("/tmp/tofu.sock").format(new Message());
 * assertEquals(hello.headers.get("~connect_to"), "uds|/tmp/tofu.sock");
 * ```
 */
export class UdsClientAddress {
  /** Filesystem path of the socket. */
  readonly path: string;

  /**
   * Creates the address of a Unix socket to connect to.
   *
   * @param path Filesystem path of the socket.
   */
  constructor(path: string) {
    checkText("path", path);
    this.path = path;
  }

  /**
   * Makes `msg` a HelloRequest for this path (the binary header is reset).
   *
   * @param msg The message to format.
   * @returns The same message.
   */
  format(msg: Message): Message {
    return formatRequest(msg, OpCode.HelloRequest, CONNECT_TO, this.toString());
  }

  /** The header value, `uds|PATH`. */
  toString(): string {
    return `uds|${this.path}`;
  }

  /**
   * Parses `uds|PATH`.
   *
   * @param value The header value.
   * @returns The address.
   * @throws {TofuError} With status `invalid_address`.
   */
  static parse(value: string): UdsClientAddress {
    const a = parseAddress(value);
    if (a.transport !== "uds") throw invalid(value, "not a uds address");
    return new UdsClientAddress(a.path);
  }
}

/**
 * A Unix socket path to listen on. `format(msg)` makes `msg` a WelcomeRequest with
 * `~listen_on: uds|PATH`.
 *
 * @example Listening on a Unix socket
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Message, UdsServerAddress } from "@tofu/tofu";
 *
 * const welcome = new UdsServerAddress("/tmp/tofu.sock").format(new Message());
 * assertEquals(welcome.headers.get("~listen_on"), "uds|/tmp/tofu.sock");
 * ```
 */
export class UdsServerAddress {
  /** Filesystem path of the socket. */
  readonly path: string;

  /**
   * Creates a Unix socket address to listen on.
   *
   * @param path Filesystem path of the socket.
   */
  constructor(path: string) {
    checkText("path", path);
    this.path = path;
  }

  /**
   * Makes `msg` a WelcomeRequest for this path (the binary header is reset).
   *
   * @param msg The message to format.
   * @returns The same message.
   */
  format(msg: Message): Message {
    return formatRequest(msg, OpCode.WelcomeRequest, LISTEN_ON, this.toString());
  }

  /** The header value, `uds|PATH`. */
  toString(): string {
    return `uds|${this.path}`;
  }

  /**
   * Parses `uds|PATH`.
   *
   * @param value The header value.
   * @returns The address.
   * @throws {TofuError} With status `invalid_address`.
   */
  static parse(value: string): UdsServerAddress {
    const a = parseAddress(value);
    if (a.transport !== "uds") throw invalid(value, "not a uds address");
    return new UdsServerAddress(a.path);
  }
}

function checkName(name: string): void {
  checkText("name", name);
  if (name.length > MAX_ISOLATE_NAME || name.includes("\0")) {
    throw new RangeError(
      `Cannot make address: the name must be at most ${MAX_ISOLATE_NAME} characters, without NUL`,
    );
  }
}

/**
 * The name of a channel endpoint in another isolate (a Worker, or the main isolate) to
 * connect to. `format(msg)` makes `msg` a HelloRequest with `~connect_to: isolate|NAME`.
 * The connection needs no socket: see `linkWorker` and `docs/workers.md`.
 *
 * @example Connecting to a Worker's engine
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { IsolateClientAddress, Message } from "@tofu/tofu";
 *
 * const hello = new IsolateClientAddress("rip").format(new Message());
 * assertEquals(hello.headers.get("~connect_to"), "isolate|rip");
 * ```
 */
export class IsolateClientAddress {
  /** The name the other engine listens on. */
  readonly name: string;

  /**
   * Creates the address of an isolate channel endpoint to connect to.
   *
   * @param name 1 to 255 characters, without `|`, CR, LF or NUL.
   * @throws {TypeError} If the name is empty or contains `|`, CR or LF.
   * @throws {RangeError} If the name is too long or contains NUL.
   */
  constructor(name: string) {
    checkName(name);
    this.name = name;
  }

  /**
   * Makes `msg` a HelloRequest for this name (the binary header is reset).
   *
   * @param msg The message to format.
   * @returns The same message.
   */
  format(msg: Message): Message {
    return formatRequest(msg, OpCode.HelloRequest, CONNECT_TO, this.toString());
  }

  /** The header value, `isolate|NAME`. */
  toString(): string {
    return `isolate|${this.name}`;
  }

  /**
   * Parses `isolate|NAME`.
   *
   * @param value The header value.
   * @returns The address.
   * @throws {TofuError} With status `invalid_address`.
   */
  static parse(value: string): IsolateClientAddress {
    const a = parseAddress(value);
    if (a.transport !== "isolate") throw invalid(value, "not an isolate address");
    return new IsolateClientAddress(a.name);
  }
}

/**
 * A name to listen on for channels from other isolates (Workers, or the main isolate).
 * `format(msg)` makes `msg` a WelcomeRequest with `~listen_on: isolate|NAME`. The name is
 * announced to every linked isolate (see `linkWorker`); a second listen on a live name fails
 * with `listen_failed`.
 *
 * @example Listening for channels from other isolates
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { IsolateServerAddress, Message } from "@tofu/tofu";
 *
 * const welcome = new IsolateServerAddress("rip").format(new Message());
 * assertEquals(welcome.headers.get("~listen_on"), "isolate|rip");
 * ```
 */
export class IsolateServerAddress {
  /** The name to listen on. */
  readonly name: string;

  /**
   * Creates an isolate channel name to listen on.
   *
   * @param name 1 to 255 characters, without `|`, CR, LF or NUL.
   * @throws {TypeError} If the name is empty or contains `|`, CR or LF.
   * @throws {RangeError} If the name is too long or contains NUL.
   */
  constructor(name: string) {
    checkName(name);
    this.name = name;
  }

  /**
   * Makes `msg` a WelcomeRequest for this name (the binary header is reset).
   *
   * @param msg The message to format.
   * @returns The same message.
   */
  format(msg: Message): Message {
    return formatRequest(msg, OpCode.WelcomeRequest, LISTEN_ON, this.toString());
  }

  /** The header value, `isolate|NAME`. */
  toString(): string {
    return `isolate|${this.name}`;
  }

  /**
   * Parses `isolate|NAME`.
   *
   * @param value The header value.
   * @returns The address.
   * @throws {TofuError} With status `invalid_address`.
   */
  static parse(value: string): IsolateServerAddress {
    const a = parseAddress(value);
    if (a.transport !== "isolate") throw invalid(value, "not an isolate address");
    return new IsolateServerAddress(a.name);
  }
}
