/**
 * `tofu`, the command-line tool of `@tofu/tofu`: listen, send, request, ping and bench
 * over TCP (`tcp|HOST|PORT`) and Unix sockets (`uds|PATH`) from a shell, speaking the
 * tofu wire protocol, so it talks to Deno and Zig peers alike.
 *
 * Install it once, or run it straight from JSR:
 *
 * ```sh
 * deno install -g -A -n tofu jsr:@tofu/tofu/cli
 * deno run -A jsr:@tofu/tofu/cli --help
 * ```
 *
 * - `tofu listen <address> [--echo] [--json] [--count N]` accepts peers and prints every
 *   message they send.
 * - `tofu send <address> [--op Request|Signal] [--header name:value]... [--body TEXT]`
 *   sends one message and closes with a graceful bye.
 * - `tofu request <address> [--body TEXT] [--timeout MS]` prints the Response.
 * - `tofu ping <address> [--count N]` and `tofu bench <address> [--count N] [--size BYTES]`
 *   measure a link against a `tofu listen --echo` peer.
 *
 * Exit status: 0 on success, 1 on a tofu failure (one `Cannot <action>: <reason> [status]`
 * line on stderr), 2 on bad usage (with the usage text), 130 when stopped by Ctrl-C.
 *
 * @example Run the tool from another program
 * ```ts ignore
 * import { main } from "@tofu/tofu/cli";
 *
 * const status = await main(["request", "tcp|127.0.0.1|7099", "--body", "hello"]);
 * Deno.exit(status);
 * ```
 *
 * @module
 */

import config from "./deno.json" with { type: "json" };
import { Message, OpCode, TofuError } from "./mod.ts";
import {
  bench,
  type Context,
  INTERRUPTED,
  listen,
  type Outgoing,
  ping,
  request,
  send,
} from "./cli/_commands.ts";
import { parseHeader } from "./cli/_format.ts";
import { type Address, Failure, Interrupted, parseAddressArg, UsageError } from "./cli/_peer.ts";
import { colors, parseArgs, type ParsedArgs } from "./cli/_std.ts";

/** The version of the package, read from `deno.json` when the module is built. */
export const VERSION: string = config.version;

const ADDRESSES = `Addresses:
  tcp|HOST|PORT   a TCP address, e.g. 'tcp|127.0.0.1|7099' (quote it: | is a shell pipe)
  uds|PATH        a Unix socket, e.g. 'uds|/tmp/tofu.sock'`;

const EXIT = `Exit status: 0 success, 1 a tofu failure (one "Cannot <action>: <reason> [status]"
line on stderr), 2 bad usage, 130 stopped by Ctrl-C (a second Ctrl-C aborts at once).`;

const USAGE = `tofu ${VERSION}: talk to tofu peers from a shell

Usage:
  tofu <command> <address> [options]
  tofu <command> --help

Commands:
  listen    accept peers and print every message they send
  send      connect, send one message, close with a graceful bye
  request   send a Request and print its Response
  ping      measure round trips (min/p50/p99/max)
  bench     measure throughput and latency against 'tofu listen --echo'

${ADDRESSES}

Options:
  -h, --help              show this help, or a command's help after the command
  -V, --version           show the version

${EXIT}

Examples:
  tofu listen 'tcp|127.0.0.1|7099' --echo
  tofu request 'tcp|127.0.0.1|7099' --body hello
  tofu bench 'uds|/tmp/tofu.sock' --count 10000 --size 1024
`;

const SHOW = `
  --json                  one JSON object per message and line (body as text or base64)
  --full                  never cut a long body short`.slice(1);
const TIMEOUT = `
  --timeout MS            deadline for the handshake, each answer and the bye (default 5000)`
  .slice(1);
const MESSAGE = `
  -H, --header name:value a text header (repeatable)
  --body TEXT             the body
  --body-file PATH        the body, read from a file (up to 65535 bytes)`.slice(1);

interface Command {
  usage: string;
  boolean: string[];
  string: string[];
  collect: string[];
  alias: Record<string, string>;
}

const COMMANDS: Record<string, Command> = {
  listen: {
    usage: `Usage: tofu listen <address> [--echo] [--quiet] [--json] [--full] [--count N]
                   [--timeout MS]

Listens on <address>, accepts every peer (HelloRequest -> HelloResponse, ByeRequest ->
ByeResponse) and prints every message it receives: opcode, channel, message id, status,
more, origin, headers and the body (text when printable UTF-8, else hex). Stops on Ctrl-C
or after --count, saying bye to every peer; exits 0.

Options:
  --echo                  answer every Request with a Response (same id, headers, body)
  -q, --quiet             print nothing per message (for 'tofu bench')
  -n, --count N           exit after N Requests, Responses or Signals
  --timeout MS            how long the close waits for the peers' ByeResponses (default 2000)
${SHOW}

${ADDRESSES}

Examples:
  tofu listen 'tcp|127.0.0.1|7099'
  tofu listen 'tcp|0.0.0.0|7099' --echo --json
  tofu listen 'uds|/tmp/tofu.sock' --echo --quiet
`,
    boolean: ["help", "json", "full", "echo", "quiet"],
    string: ["count", "timeout"],
    collect: [],
    alias: { h: "help", n: "count", q: "quiet" },
  },
  send: {
    usage: `Usage: tofu send <address> [--op Request|Signal] [--header name:value]...
                 [--body TEXT | --body-file PATH] [--more] [--json] [--timeout MS]

Connects to <address>, sends one message, prints it (and anything the peer sends back
before the channel closes) and closes with a graceful bye.

Options:
  --op OP                 Request (default) or Signal
${MESSAGE}
  --more                  set the more flag (a chunk of a stream)
${SHOW}
${TIMEOUT}

${ADDRESSES}

Examples:
  tofu send 'tcp|127.0.0.1|7099' --op Signal --body 'disk almost full'
  tofu send 'uds|/tmp/tofu.sock' -H job:42 --body-file page.pdf
`,
    boolean: ["help", "json", "full", "more"],
    string: ["op", "header", "body", "body-file", "timeout"],
    collect: ["header"],
    alias: { h: "help", H: "header" },
  },
  request: {
    usage: `Usage: tofu request <address> [--header name:value]... [--body TEXT | --body-file PATH]
                    [--timeout MS] [--json] [--full]

Connects to <address>, sends a Request and prints its Response (every chunk of a 'more'
stream, and Signals under the same message id), then closes with a graceful bye.

Options:
${MESSAGE}
${SHOW}
${TIMEOUT}

${ADDRESSES}

Examples:
  tofu request 'tcp|127.0.0.1|7099' --body hello
  tofu request 'uds|/tmp/tofu.sock' -H op:status --json --timeout 1000
`,
    boolean: ["help", "json", "full"],
    string: ["header", "body", "body-file", "timeout"],
    collect: ["header"],
    alias: { h: "help", H: "header" },
  },
  ping: {
    usage: `Usage: tofu ping <address> [--count N] [--timeout MS] [--json]

Sends N Requests one after the other to a peer that answers them (such as
'tofu listen --echo') and prints min, p50, p99 and max round-trip times. Shows a live
progress line on a terminal.

Options:
  -n, --count N           round trips (default 10)
  --json                  print the summary as one JSON object
${TIMEOUT}

${ADDRESSES}

Examples:
  tofu ping 'tcp|127.0.0.1|7099'
  tofu ping 'uds|/tmp/tofu.sock' --count 1000 --json
`,
    boolean: ["help", "json"],
    string: ["count", "timeout"],
    collect: [],
    alias: { h: "help", n: "count" },
  },
  bench: {
    usage: `Usage: tofu bench <address> [--count N] [--size BYTES] [--window N] [--json]

Sends N Requests of BYTES bytes, at most --window in flight, to a peer that echoes them
('tofu listen --echo --quiet') and prints msg/s, MB/s and latency percentiles. Shows a
live progress line on a terminal.

Options:
  -n, --count N           requests (default 10000)
  --size BYTES            body size, 0..65535 (default 1024)
  --window N              requests in flight at most (default 64), and never more than
                          2 MiB of them (a peer queues 4 MiB of answers by default)
  --json                  print the summary as one JSON object
${TIMEOUT}

${ADDRESSES}

Examples:
  tofu listen 'tcp|127.0.0.1|7099' --echo --quiet &
  tofu bench 'tcp|127.0.0.1|7099' --count 100000 --size 128
`,
    boolean: ["help", "json"],
    string: ["count", "size", "window", "timeout"],
    collect: [],
    alias: { h: "help", n: "count" },
  },
};

function integer(args: ParsedArgs, name: string, fallback: number, min: number, max: number) {
  const raw = args[name];
  if (raw === undefined) return fallback;
  const text = String(raw);
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || value < min || value > max) {
    throw new UsageError(`Cannot parse --${name} "${text}": expected an integer ${min}..${max}`);
  }
  return value;
}

function optionalInteger(args: ParsedArgs, name: string, min: number, max: number) {
  return args[name] === undefined ? undefined : integer(args, name, 0, min, max);
}

// Fills a scratch message first, so that a body or header tofu refuses fails before
// anything is dialed (TofuError `invalid_body_len`, `invalid_headers_len`).
function checked(what: Outgoing): Outgoing {
  const scratch = new Message();
  for (const [name, value] of what.headers) scratch.headers.append(name, value);
  scratch.body.set(what.body);
  return what;
}

async function outgoing(args: ParsedArgs): Promise<Outgoing> {
  const headers = (args.header as string[]).map((h) => {
    try {
      return parseHeader(h);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  });
  const text = args.body as string | undefined;
  const file = args["body-file"] as string | undefined;
  if (text !== undefined && file !== undefined) {
    throw new UsageError("Cannot build the message: give --body or --body-file, not both");
  }
  if (file === undefined) return checked({ headers, body: text ?? "" });
  try {
    return checked({ headers, body: await Deno.readFile(file) });
  } catch (err) {
    if (err instanceof TofuError) throw err;
    const reason = (err as Error).message;
    if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
      throw new Failure(
        "not_allowed",
        `Cannot read body file ${file}: ${reason}; run again with --allow-read=${file} (or -A)`,
      );
    }
    throw new UsageError(`Cannot read body file ${file}: ${reason}`);
  }
}

const TIMEOUT_MAX = 86_400_000;

// `--count -3` would parse as the flags `--count` and `-3`; glue a negative number to the
// option before it so that the value is checked (and refused) as a value.
function negativeValues(argv: string[], spec: Command): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = /^--?([\w-]+)$/.exec(argv[i]!)?.[1];
    const flag = name === undefined ? undefined : spec.alias[name] ?? name;
    const next = argv[i + 1];
    if (flag !== undefined && spec.string.includes(flag) && next && /^-\d/.test(next)) {
      out.push(`${argv[i]}=${next}`);
      i++;
    } else {
      out.push(argv[i]!);
    }
  }
  return out;
}

async function run(name: string, spec: Command, argv: string[], ctx: Context): Promise<number> {
  const unknown: string[] = [];
  const args = parseArgs(negativeValues(argv, spec), {
    boolean: spec.boolean,
    string: ["_", ...spec.string],
    collect: spec.collect,
    alias: spec.alias,
    unknown: (arg, key) => {
      if (key === undefined) return true; // a positional argument
      unknown.push(arg);
      return false;
    },
  });
  if (args.help === true) {
    ctx.out(spec.usage);
    return 0;
  }
  if (unknown.length > 0) {
    throw new UsageError(`Cannot run ${name}: unknown option ${unknown[0]}`);
  }
  const positional = args._.map(String);
  if (positional.length === 0) throw new UsageError(`Cannot run ${name}: missing <address>`);
  if (positional.length > 1) {
    throw new UsageError(`Cannot run ${name}: unexpected argument "${positional[1]}"`);
  }
  const address: Address = parseAddressArg(positional[0]!);
  const show = { json: args.json === true, full: args.full === true };
  const timeoutMs = integer(args, "timeout", 5000, 1, TIMEOUT_MAX);
  switch (name) {
    case "listen":
      return await listen(address, {
        ...show,
        echo: args.echo === true,
        quiet: args.quiet === true,
        count: optionalInteger(args, "count", 1, Number.MAX_SAFE_INTEGER),
        timeoutMs: integer(args, "timeout", 2000, 1, TIMEOUT_MAX),
      }, ctx);
    case "send": {
      const op = String(args.op ?? "Request");
      if (op !== "Request" && op !== "Signal") {
        throw new UsageError(`Cannot parse --op "${op}": expected Request or Signal`);
      }
      return await send(address, {
        ...show,
        ...await outgoing(args),
        timeoutMs,
        op: op === "Signal" ? OpCode.Signal : OpCode.Request,
        more: args.more === true,
      }, ctx);
    }
    case "request":
      return await request(address, { ...show, ...await outgoing(args), timeoutMs }, ctx);
    case "ping":
      return await ping(address, {
        json: show.json,
        timeoutMs,
        count: integer(args, "count", 10, 1, 10_000_000),
      }, ctx);
    default:
      return await bench(address, {
        json: show.json,
        timeoutMs,
        count: integer(args, "count", 10_000, 1, 100_000_000),
        size: integer(args, "size", 1024, 0, 65535),
        window: integer(args, "window", 64, 1, 4096),
      }, ctx);
  }
}

/** Raised by a write to a closed stdout (`tofu listen | head`): the run ends quietly. */
class OutputClosed extends Error {}

const encoder = new TextEncoder();

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  for (let off = 0; off < bytes.length;) off += file.writeSync(bytes.subarray(off));
}

function failureLine(err: unknown, command: string): string {
  if (err instanceof Failure) return err.line;
  if (err instanceof TofuError) return `${err.message} [${err.statusName}]`;
  const message = err instanceof Error ? err.message : String(err);
  return `${
    message.startsWith("Cannot ") ? message : `Cannot ${command}: ${message}`
  } [unknown_error]`;
}

/**
 * Runs the tool with command-line arguments and returns its exit status. Writes to
 * stdout and stderr; the first Ctrl-C (SIGINT) closes open channels gracefully, a second
 * one exits the process at once with status 130.
 *
 * @param args The arguments after the program name, such as `["ping", "tcp|127.0.0.1|7099"]`.
 * @returns 0 on success, 1 on a tofu failure, 2 on bad usage, 130 when stopped by Ctrl-C.
 *
 * @example Print the help text
 * ```ts ignore
 * import { main } from "@tofu/tofu/cli";
 *
 * await main(["--help"]); // 0
 * ```
 */
export async function main(args: string[]): Promise<number> {
  colors.setColorEnabled(Deno.stdout.isTerminal()); // also never with NO_COLOR
  const err = (line: string) => writeAll(Deno.stderr, line + "\n");
  const controller = new AbortController();
  const ctx: Context = {
    signal: controller.signal,
    out: (text) => {
      try {
        writeAll(Deno.stdout, text);
      } catch (e) {
        if (e instanceof Deno.errors.BrokenPipe) throw new OutputClosed();
        throw e;
      }
    },
    note: err,
    progress: Deno.stderr.isTerminal(),
  };
  const [name, ...rest] = args;
  if (name === undefined) {
    err(USAGE);
    return 2;
  }
  if (["-h", "--help", "help", "-V", "--version"].includes(name)) {
    try {
      ctx.out(name.endsWith("V") || name.endsWith("version") ? `tofu ${VERSION}\n` : USAGE);
    } catch (e) {
      if (!(e instanceof OutputClosed)) throw e;
    }
    return 0;
  }
  const spec = COMMANDS[name];
  if (spec === undefined) {
    err(`Cannot run "${name}": unknown command\n`);
    err(USAGE);
    return 2;
  }

  let presses = 0;
  const onInterrupt = () => {
    if (++presses > 1) Deno.exit(INTERRUPTED);
    err("closing channels (Ctrl-C again to abort)");
    controller.abort(new Interrupted());
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  try {
    return await run(name, spec, rest, ctx);
  } catch (e) {
    if (e instanceof OutputClosed) return 0;
    if (e instanceof Interrupted) return INTERRUPTED;
    if (e instanceof UsageError) {
      err(`${e.message}\n`);
      err(spec.usage);
      return 2;
    }
    err(failureLine(e, name));
    return 1;
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
