// The tool's side of a conversation, on the public Engine/ChannelGroup API: dial and
// handshake, receive with a deadline and Ctrl-C, say bye, and turn engine reports into
// one `Cannot <action>: <reason>` failure.

import {
  type ChannelGroup,
  Engine,
  type Message,
  OpCode,
  opCodeName,
  Status,
  statusName,
  TcpClientAddress,
  TcpServerAddress,
  TofuError,
  UdsClientAddress,
  UdsServerAddress,
} from "../mod.ts";

/** A tofu failure: exit status 1 with one line on stderr naming the status. */
export class Failure extends Error {
  /** The protocol status name, or `timeout` when the peer did not answer in time. */
  readonly status: string;

  constructor(status: string, message: string) {
    super(message);
    this.name = "Failure";
    this.status = status;
  }

  /** The line printed on stderr. */
  get line(): string {
    return `${this.message} [${this.status}]`;
  }
}

/** A mistake on the command line: exit status 2 with the usage text. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** The reason a wait rejects with after the first Ctrl-C. */
export class Interrupted extends Error {
  constructor() {
    super("Cannot continue: interrupted");
    this.name = "Interrupted";
  }
}

/** A parsed command-line address. */
export interface Address {
  /** As typed: `tcp|HOST|PORT` or `uds|PATH`. */
  text: string;
  client(): TcpClientAddress | UdsClientAddress;
  server(): TcpServerAddress | UdsServerAddress;
  /** The Deno flags that grant access to this address. */
  flags: string;
}

/**
 * Parses `tcp|HOST|PORT` or `uds|PATH`.
 *
 * @throws {UsageError} When the text is not an address.
 */
export function parseAddressArg(text: string): Address {
  try {
    if (text.startsWith("uds|")) {
      const path = UdsClientAddress.parse(text).path;
      return {
        text,
        client: () => new UdsClientAddress(path),
        server: () => new UdsServerAddress(path),
        flags: `--allow-net=unix:${path} --allow-read=${path} --allow-write=${path}`,
      };
    }
    const { host, port } = TcpClientAddress.parse(text);
    return {
      text,
      client: () => new TcpClientAddress(host, port),
      server: () => new TcpServerAddress(host, port),
      flags: `--allow-net=${host.includes(":") ? `[${host}]` : host}`,
    };
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

/** The failure an engine report stands for. */
export function reportFailure(m: Message, address: Address, action: string): Failure {
  const status = statusName(m.bhdr.status);
  const closed = m.bhdr.opCode === OpCode.Signal && m.bhdr.status === Status.channelClosed;
  let message = m.error?.message ??
    `Cannot ${action}: ${
      closed ? "the channel closed" : `the ${opCodeName(m.bhdr.opCode)} came back`
    }`;
  if (m.bhdr.status === Status.notAllowed) {
    // Deno's own hint names one flag at a time; name every flag this address needs.
    message = message.replace(/,? run again with the --allow-\w+ flag/, "") +
      `; run again with ${address.flags} (or -A)`;
  }
  return new Failure(status, message);
}

/** Receives the next message before `deadline` (a `performance.now()` time). */
export async function receive(
  group: ChannelGroup,
  deadline: number,
  signal?: AbortSignal,
): Promise<Message | null> {
  const left = deadline - performance.now();
  if (left <= 0) return group.tryReceive();
  return await group.waitReceive(left, signal ? { signal } : {});
}

/** Options of a client session. */
export interface ClientOptions {
  /** Deadline for the handshake, each answer and the bye, in milliseconds. */
  timeoutMs: number;
  /** Aborted by the first Ctrl-C. */
  signal: AbortSignal;
  /** Pool sizes for long runs. */
  poolMsgs?: number;
}

/** One connected channel of the tool. */
export class Client implements AsyncDisposable {
  readonly engine: Engine;
  readonly group: ChannelGroup;
  readonly address: Address;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
  channel = 0;
  #open = false;

  private constructor(address: Address, options: ClientOptions) {
    const pool = options.poolMsgs ?? 16;
    this.engine = new Engine({ initialPoolMsgs: pool, maxPoolMsgs: pool * 4 });
    this.group = this.engine.create();
    this.address = address;
    this.timeoutMs = options.timeoutMs;
    this.signal = options.signal;
  }

  /**
   * Dials `address` and waits for the HelloResponse.
   *
   * @throws {Failure} When the connect fails or no HelloResponse comes in time.
   */
  static async connect(address: Address, options: ClientOptions): Promise<Client> {
    const client = new Client(address, options);
    try {
      await client.#handshake();
    } catch (err) {
      await client.engine.close();
      throw err;
    }
    return client;
  }

  async #handshake(): Promise<void> {
    const action = `connect to ${this.address.text}`;
    const hello = this.address.client().format(this.engine.get("always")!);
    this.channel = this.group.post(hello).channelNumber;
    this.#open = true;
    const deadline = performance.now() + this.timeoutMs;
    for (;;) {
      const m = await receive(this.group, deadline, this.signal);
      if (m === null) {
        throw new Failure(
          "timeout",
          `Cannot ${action}: no HelloResponse within ${this.timeoutMs} ms`,
        );
      }
      try {
        if (
          m.isFromEngine() && m.bhdr.status !== Status.success && m.bhdr.status !== Status.poolEmpty
        ) {
          if (m.bhdr.status === Status.channelClosed) this.#open = false;
          throw reportFailure(m, this.address, action);
        }
        if (m.bhdr.opCode === OpCode.HelloResponse) return;
      } finally {
        this.engine.put(m);
      }
    }
  }

  /** A pool message addressed to this channel with opcode `op`. */
  message(op: OpCode): Message {
    const m = this.engine.get("always")!;
    m.bhdr.channelNumber = this.channel;
    m.bhdr.opCode = op;
    return m;
  }

  /**
   * The next message from the peer before `deadline`. Skips `pool_empty` notices; answers
   * a peer's ByeRequest and fails.
   *
   * @throws {Failure} When the channel fails, the peer closes it, or nothing came before
   *   `deadline` (`timeout`: no Response within the client's `timeoutMs`).
   */
  async next(deadline: number, action: string): Promise<Message> {
    for (;;) {
      const m = await receive(this.group, deadline, this.signal);
      if (m === null) {
        throw new Failure("timeout", `Cannot ${action}: no Response within ${this.timeoutMs} ms`);
      }
      const h = m.bhdr;
      if (m.isFromEngine()) {
        if (h.status === Status.poolEmpty) {
          this.engine.put(m);
          continue;
        }
        if (h.opCode === OpCode.Signal && h.status === Status.channelClosed) this.#open = false;
        const failure = reportFailure(m, this.address, action);
        this.engine.put(m);
        throw failure;
      }
      if (h.opCode === OpCode.ByeRequest) {
        h.opCode = OpCode.ByeResponse; // the peer closes: answer, then stop
        this.group.post(m);
        this.#open = false;
        throw new Failure("channel_closed", `Cannot ${action}: the peer said bye (ByeRequest)`);
      }
      if (h.opCode === OpCode.ByeResponse || h.opCode === OpCode.HelloResponse) {
        this.engine.put(m);
        continue;
      }
      return m;
    }
  }

  /**
   * Says bye and waits until the channel is closed. Peer Requests, Responses and
   * Signals and the engine's reports that arrive meanwhile go to `onMessage`, which
   * owns them. Returns `false` when the peer did not answer in time (the channel is
   * then left to the engine's close).
   */
  async bye(onMessage: (m: Message) => void): Promise<boolean> {
    if (!this.#open) return true;
    try {
      this.group.post(this.message(OpCode.ByeRequest));
    } catch (err) {
      if (err instanceof TofuError) return true; // already closed
      throw err;
    }
    const deadline = performance.now() + this.timeoutMs;
    for (;;) {
      // No Ctrl-C signal here: the first Ctrl-C asks for exactly this graceful close,
      // and a second one exits the process.
      const m = await receive(this.group, deadline);
      if (m === null) return false;
      const h = m.bhdr;
      if (m.isFromEngine()) {
        if (h.opCode === OpCode.Signal && h.status === Status.channelClosed) {
          this.engine.put(m);
          this.#open = false;
          return true;
        }
        if (h.status === Status.poolEmpty) this.engine.put(m);
        else onMessage(m);
      } else if (h.opCode <= OpCode.Signal) {
        onMessage(m);
      } else {
        this.engine.put(m);
      }
    }
  }

  /** Closes the engine (and so any channel still open). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.engine.close();
  }
}
