// The command-line tool, driven as a subprocess (`deno run cli.ts ...`) against real
// peers over TCP and Unix sockets: raw sockets writing frame bytes, servers built with
// the library, and the tool itself (`listen --echo`).

import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import config from "../deno.json" with { type: "json" };
import {
  encodeFrame,
  Engine,
  FrameDecoder,
  type Message,
  Message as Msg,
  OpCode,
  serve,
  Status,
} from "../mod.ts";
import { tempUdsPath } from "../testing.ts";
import { type Server, transports, until, writeAll } from "./_fixtures.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLI = new URL("../cli.ts", import.meta.url).pathname;
const GRANT = ["--allow-net", "--allow-read=/tmp", "--allow-write=/tmp"];
const COMMANDS = ["listen", "send", "request", "ping", "bench"];

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the tool to completion. */
async function cli(
  args: string[],
  grant: string[] = GRANT,
  env: Record<string, string> = { NO_COLOR: "1" },
): Promise<Result> {
  const out = await new Deno.Command("deno", {
    args: ["run", "--no-prompt", ...grant, CLI, ...args],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return { code: out.code, stdout: text.decode(out.stdout), stderr: text.decode(out.stderr) };
}

/** A running tool whose output is collected as it comes. */
class Running implements AsyncDisposable {
  stdout = "";
  stderr = "";
  readonly #child: Deno.ChildProcess;
  readonly #pumps: Promise<void>[];
  readonly status: Promise<Deno.CommandStatus>;

  constructor(args: string[]) {
    this.#child = new Deno.Command("deno", {
      args: ["run", "--no-prompt", ...GRANT, CLI, ...args],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#pumps = [
      this.#pump(this.#child.stdout, (s) => this.stdout += s),
      this.#pump(this.#child.stderr, (s) => this.stderr += s),
    ];
    this.status = this.#child.status;
  }

  async #pump(stream: ReadableStream<Uint8Array>, add: (s: string) => void): Promise<void> {
    for await (const s of stream.pipeThrough(new TextDecoderStream())) add(s);
  }

  /** Waits until `stream` matches `re` (generous deadline for a loaded machine). */
  async waitFor(stream: "stdout" | "stderr", re: RegExp, ms = 30_000): Promise<RegExpMatchArray> {
    const end = Date.now() + ms;
    for (;;) {
      const m = this[stream].match(re);
      if (m) return m;
      if (Date.now() > end) {
        throw new Error(`no ${re} on ${stream} within ${ms} ms: ${this.stdout}|${this.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The address printed by `tofu listen`. */
  async bound(): Promise<string> {
    return (await this.waitFor("stderr", /listening on (\S+)/))[1]!;
  }

  interrupt(): void {
    this.#child.kill("SIGINT");
  }

  /** Waits for the exit and the end of its output. */
  async end(): Promise<Result> {
    const { code } = await this.status;
    await Promise.all(this.#pumps);
    return { code, stdout: this.stdout, stderr: this.stderr };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await this.end();
  }
}

/** Where a tool may listen on transport `t`. */
function listenAddress(t: { name: "tcp" | "uds" }): string {
  return t.name === "tcp" ? "tcp|127.0.0.1|0" : `uds|${tempUdsPath()}`;
}

function rawConnect(bound: string): Promise<Deno.Conn> {
  const [kind, a, b] = bound.split("|");
  return kind === "tcp"
    ? Deno.connect({ hostname: a!, port: Number(b) })
    : Deno.connect({ transport: "unix", path: a! });
}

function frame(op: number, id: bigint, body: string | Uint8Array, headers: string[][] = []) {
  const m = new Msg();
  m.bhdr.opCode = op;
  m.bhdr.messageId = id;
  m.bhdr.channelNumber = 7;
  for (const [n, v] of headers) m.headers.append(n!, v!);
  m.body.set(body);
  return encodeFrame(m);
}

/** Reads frames from a raw socket until one with opcode `op` arrives. */
async function readUntil(conn: Deno.Conn, decoder: FrameDecoder, op: number): Promise<Message> {
  const buf = new Uint8Array(65536);
  for (;;) {
    for (let m = new Msg(); decoder.next(m); m = new Msg()) {
      if (m.bhdr.opCode === op) return m;
    }
    const n = await conn.read(buf);
    if (n === null) throw new Error(`EOF before opcode ${op}`);
    decoder.push(buf.subarray(0, n));
  }
}

const BINARY = new Uint8Array([0x00, 0x01, 0xfe, 0xff, 0x1b, 0x5b, 0x33, 0x31, 0x6d]);
const BIG_ID = 2n ** 63n + 5n; // beyond a double's exact integers

/** A raw-socket peer: Hello, a Request (header, text body), a Signal (binary body). */
async function rawPeerSession(bound: string): Promise<void> {
  using conn = await rawConnect(bound);
  const decoder = new FrameDecoder();
  await writeAll(conn, frame(OpCode.HelloRequest, 1n, "", [["~connect_to", bound]]));
  await readUntil(conn, decoder, OpCode.HelloResponse);
  await writeAll(conn, frame(OpCode.Request, BIG_ID, "hello\nworld", [["trace", "abc"]]));
  await writeAll(conn, frame(OpCode.Signal, 3n, BINARY));
  // After --count 2 the tool says bye; answer it like a well-behaved peer.
  const bye = await readUntil(conn, decoder, OpCode.ByeRequest);
  await writeAll(conn, frame(OpCode.ByeResponse, bye.bhdr.messageId, ""));
}

/** A library server on `t`: accepts, records, answers Requests with `answer` (null: silence). */
async function libraryServer(
  engine: Engine,
  t: (typeof transports)[number],
  answer: ((m: Message) => string | null) | null,
): Promise<Server & { seen: Message[]; done: Promise<void> }> {
  const group = engine.create();
  const { channelNumber } = group.post(t.listenAt().format(engine.get("always")!));
  const welcome = (await group.waitReceive(10_000))!;
  assertEquals(welcome.bhdr.status, Status.success);
  const bound = welcome.headers.get("~listen_on")!;
  engine.put(welcome);
  const seen: Message[] = [];
  const done = (async () => {
    for await (const m of group) {
      if (!m.isFromEngine()) seen.push(m.clone());
      const op = m.bhdr.opCode;
      let reply: string | null;
      if (op === OpCode.HelloRequest) m.bhdr.opCode = OpCode.HelloResponse;
      else if (op === OpCode.ByeRequest) m.bhdr.opCode = OpCode.ByeResponse;
      else if (op === OpCode.Request && answer && (reply = answer(m)) !== null) {
        m.bhdr.opCode = OpCode.Response;
        m.body.set(reply);
      } else {
        engine.put(m);
        continue;
      }
      group.post(m);
    }
  })();
  return { group, channel: channelNumber, bound, seen, done };
}

/** The one stderr line of a tofu failure. */
function assertFailureLine(r: Result, pattern: RegExp): void {
  assertEquals(r.code, 1, `stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split("\n");
  assertEquals(lines.length, 1, `one line expected: ${r.stderr}`);
  assertMatch(lines[0]!, /^Cannot [^:]+: .* \[[a-z_]+\]$/);
  assertMatch(lines[0]!, pattern);
}

Deno.test("tofu --help, <command> --help and --version", async (t) => {
  await t.step("tofu --help lists every command", async () => {
    const r = await cli(["--help"]);
    assertEquals(r.code, 0);
    for (const c of COMMANDS) assertStringIncludes(r.stdout, `  ${c} `);
    assertStringIncludes(r.stdout, "Examples:");
  });
  for (const c of COMMANDS) {
    await t.step(`tofu ${c} --help shows its usage with examples`, async () => {
      const r = await cli([c, "--help"]);
      assertEquals(r.code, 0);
      assertStringIncludes(r.stdout, `Usage: tofu ${c} <address>`);
      assertStringIncludes(r.stdout, "Examples:");
      assertStringIncludes(r.stdout, `  tofu ${c} '`);
    });
  }
  await t.step("tofu --version prints the version of deno.json", async () => {
    const r = await cli(["--version"]);
    assertEquals([r.code, r.stdout], [0, `tofu ${config.version}\n`]);
  });
});

Deno.test("tofu with bad usage exits 2 with the usage text", async (t) => {
  const cases: Array<[string, string[], RegExp]> = [
    ["no command", [], /^tofu .*: talk to tofu peers/],
    ["an unknown command", ["shout", "tcp|127.0.0.1|1"], /^Cannot run "shout": unknown command/],
    ["an unknown option", ["ping", "tcp|127.0.0.1|1", "--bogus"], /unknown option --bogus/],
    ["a missing address", ["request"], /^Cannot run request: missing <address>/],
    ["a malformed address", ["send", "tcp|127.0.0.1"], /^Cannot parse address "tcp\|127\.0\.0\.1"/],
    [
      "a second address",
      ["send", "uds|/tmp/a", "uds|/tmp/b"],
      /unexpected argument "uds\|\/tmp\/b"/,
    ],
    ["a bad --count", ["ping", "tcp|127.0.0.1|1", "--count", "-3"], /Cannot parse --count/],
    [
      "a bad --size",
      ["bench", "tcp|127.0.0.1|1", "--size", "70000"],
      /Cannot parse --size "70000"/,
    ],
    ["a bad --op", ["send", "tcp|127.0.0.1|1", "--op", "Response"], /Cannot parse --op "Response"/],
    ["a header without colon", ["send", "tcp|127.0.0.1|1", "-H", "x"], /Cannot parse header "x"/],
    ["two bodies", ["request", "tcp|127.0.0.1|1", "--body", "a", "--body-file", "/x"], /not both/],
  ];
  for (const [what, args, message] of cases) {
    await t.step(what, async () => {
      const r = await cli(args);
      assertEquals(r.code, 2, `stderr: ${r.stderr}`);
      assertMatch(r.stderr, message);
      assertStringIncludes(r.stderr, "Usage:");
      assertEquals(r.stdout, "");
    });
  }
});

for (const tr of transports) {
  Deno.test(`tofu listen prints what a raw-socket peer sends (${tr.name})`, async (t) => {
    await t.step("as readable blocks", async () => {
      await using tool = new Running(["listen", listenAddress(tr), "--count", "2"]);
      await rawPeerSession(await tool.bound());
      const r = await tool.end();
      assertEquals(r.code, 0, r.stderr);
      assertMatch(
        r.stdout,
        /^HelloRequest channel=\d+ id=1 status=success more=0 origin=application$/m,
      );
      assertMatch(r.stdout, new RegExp(`^Request channel=\\d+ id=${BIG_ID} status=success`, "m"));
      assertStringIncludes(
        r.stdout,
        "  trace: abc\n  body: 11 bytes, text\n    hello\n    world\n",
      );
      assertMatch(r.stdout, /^Signal channel=\d+ id=3 status=success more=0 origin=application$/m);
      assertStringIncludes(r.stdout, "  body: 9 bytes, hex\n    0000  00 01 fe ff 1b 5b 33 31 6d");
      assert(!r.stdout.includes("\x1b"), "peer bytes must never reach the terminal raw");
    });
    await t.step("--echo answers with the same id, headers and body", async () => {
      await using tool = new Running(["listen", listenAddress(tr), "--echo", "--count", "1"]);
      const bound = await tool.bound();
      using conn = await rawConnect(bound);
      const decoder = new FrameDecoder();
      await writeAll(conn, frame(OpCode.HelloRequest, 1n, "", [["~connect_to", bound]]));
      await readUntil(conn, decoder, OpCode.HelloResponse);
      await writeAll(conn, frame(OpCode.Request, BIG_ID, BINARY, [["k", "v"]]));
      const echo = await readUntil(conn, decoder, OpCode.Response);
      assertEquals([echo.bhdr.messageId, [...echo.headers]], [BIG_ID, [["k", "v"]]]);
      assertEquals(echo.body.bytes(), BINARY);
      const bye = await readUntil(conn, decoder, OpCode.ByeRequest);
      await writeAll(conn, frame(OpCode.ByeResponse, bye.bhdr.messageId, ""));
      assertEquals((await tool.end()).code, 0);
    });

    await t.step("as JSON lines", async () => {
      await using tool = new Running(["listen", listenAddress(tr), "--count", "2", "--json"]);
      await rawPeerSession(await tool.bound());
      const r = await tool.end();
      assertEquals(r.code, 0, r.stderr);
      const records = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
      const request = records.find((x) => x.op === "Request");
      assertEquals(
        [request.id, request.headers, request.bodyEncoding, request.body, request.more],
        [BIG_ID.toString(), [["trace", "abc"]], "text", "hello\nworld", false],
      );
      assertEquals([request.status, request.origin, request.direction], [
        "success",
        "application",
        "received",
      ]);
      const signal = records.find((x) => x.op === "Signal" && x.origin === "application");
      assertEquals(signal.bodyEncoding, "base64");
      assertEquals(Uint8Array.from(atob(signal.body), (c) => c.charCodeAt(0)), BINARY);
      assertEquals(records[0].op, "HelloRequest");
    });
  });

  Deno.test(`tofu send and request against a library server (${tr.name})`, async (t) => {
    await using engine = new Engine();
    const server = await libraryServer(engine, tr, (m) => m.body.text().toUpperCase());
    const client = tr.connectTo(server.bound).toString();

    await t.step(
      "send delivers one Signal with headers, body and more, then says bye",
      async () => {
        const r = await cli([
          "send",
          client,
          "--op",
          "Signal",
          "-H",
          "job:42",
          "--header",
          "user: ana",
          "--body",
          "page 1",
          "--more",
        ]);
        assertEquals(r.code, 0, r.stderr);
        assertMatch(r.stdout, /^sent Signal channel=\d+ id=\d+ status=success more=1/);
        await until(() => server.seen.some((m) => m.bhdr.opCode === OpCode.ByeRequest), "bye");
        const sig = server.seen.find((m) => m.bhdr.opCode === OpCode.Signal)!;
        assertEquals([...sig.headers], [["job", "42"], ["user", "ana"]]);
        assertEquals([sig.body.text(), sig.bhdr.more], ["page 1", 1]);
        const ops = server.seen.map((m) => m.bhdr.opCode);
        assertEquals(ops.slice(-3), [OpCode.HelloRequest, OpCode.Signal, OpCode.ByeRequest]);
      },
    );

    await t.step("send --body-file sends the file's bytes", async () => {
      const file = await Deno.makeTempFile({ dir: "/tmp" });
      try {
        await Deno.writeFile(file, BINARY);
        const r = await cli(["send", client, "--body-file", file, "--json"]);
        assertEquals(r.code, 0, r.stderr);
        const sent = JSON.parse(r.stdout.split("\n")[0]!);
        assertEquals([sent.direction, sent.op, sent.bodyEncoding], ["sent", "Request", "base64"]);
        await until(() => server.seen.some((m) => m.body.byteLength === BINARY.length), "file");
      } finally {
        await Deno.remove(file);
      }
    });

    await t.step("request prints the Response", async () => {
      const r = await cli(["request", client, "--body", "hello", "-H", "trace:1"]);
      assertEquals(r.code, 0, r.stderr);
      assertMatch(
        r.stdout,
        /^Response channel=\d+ id=\d+ status=success more=0 origin=application$/m,
      );
      assertStringIncludes(r.stdout, "  trace: 1\n  body: 5 bytes, text\n    HELLO\n");
    });

    await t.step("no colors when stdout is not a terminal", async () => {
      const r = await cli(["request", client, "--body", "plain", "-H", "a:b"], GRANT, {});
      assertEquals(r.code, 0, r.stderr);
      assertStringIncludes(r.stdout, "Response channel=");
      assert(!r.stdout.includes("\x1b"), r.stdout);
    });

    await t.step("request --json prints one JSON line", async () => {
      const r = await cli(["request", client, "--body", "json please", "--json"]);
      assertEquals(r.code, 0, r.stderr);
      const lines = r.stdout.trimEnd().split("\n");
      assertEquals(lines.length, 1);
      const resp = JSON.parse(lines[0]!);
      assertEquals([resp.op, resp.body, resp.bodyEncoding], ["Response", "JSON PLEASE", "text"]);
    });

    await t.step("a long body is cut short unless --full", async () => {
      const long = "x".repeat(3000);
      const short = await cli(["request", client, "--body", long]);
      assertStringIncludes(short.stdout, "... 1976 more bytes (--full shows all)");
      const full = await cli(["request", client, "--body", long, "--full"]);
      assertStringIncludes(full.stdout, "X".repeat(3000));
      assert(!full.stdout.includes("more bytes"));
    });
    await engine.close();
    await server.done;
  });

  Deno.test(`tofu listen --echo: a peer that never reads gets one line, not one per answer (${tr.name})`, async () => {
    // Found by the hostile-tester helper: 53,345 stderr lines from one flooding peer.
    await using tool = new Running(["listen", listenAddress(tr), "--echo", "--quiet"]);
    const bound = await tool.bound();
    const conn = await rawConnect(bound);
    const one = frame(OpCode.Request, 5n, new Uint8Array(1000));
    const batch = new Uint8Array(one.length * 1000);
    for (let i = 0; i < 1000; i++) batch.set(one, i * one.length);
    try {
      await writeAll(conn, frame(OpCode.HelloRequest, 1n, "", [["~connect_to", bound]]));
      // 20,000 Requests, never reading an answer: most echoes are refused for room.
      for (let k = 0; k < 20; k++) await writeAll(conn, batch);
      await tool.waitFor("stderr", /refused|maxQueuedBytes/);
    } finally {
      conn.close();
    }
    await tool.waitFor("stderr", /more answers on channel \d+ were refused/);
    tool.interrupt();
    const r = await tool.end();
    const lines = r.stderr.split("\n").filter((l) => l.length > 0);
    assert(lines.length < 10, `${lines.length} lines on stderr: ${lines.slice(0, 5).join(" | ")}`);
  });

  Deno.test(`tofu ping and bench against tofu listen --echo (${tr.name})`, async (t) => {
    await using echo = new Running(["listen", listenAddress(tr), "--echo", "--quiet"]);
    const bound = await echo.bound();

    await t.step("ping prints min/p50/p99/max", async () => {
      const r = await cli(["ping", bound, "--count", "5"]);
      assertEquals(r.code, 0, r.stderr);
      assertStringIncludes(r.stdout, `ping ${bound}: 5 round trips`);
      for (const row of ["min", "p50", "p99", "max"]) {
        assertMatch(r.stdout, new RegExp(`^  ${row}\\s+\\d+\\.\\d{3} ms$`, "m"));
      }
    });

    await t.step("bench prints msg/s, MB/s and latency percentiles", async () => {
      const r = await cli(["bench", bound, "--count", "300", "--size", "100", "--window", "8"]);
      assertEquals(r.code, 0, r.stderr);
      assertStringIncludes(r.stdout, `bench ${bound}: 300 requests of 100 bytes, window 8`);
      assertMatch(r.stdout, /^ {2}msg\/s\s+\d+$/m);
      assertMatch(r.stdout, /^ {2}MB\/s\s+\d+\.\d\d \(payload, each way\)$/m);
      for (const p of ["min", "p50", "p90", "p99", "max"]) {
        assertMatch(r.stdout, new RegExp(`^  latency ${p}\\s+\\d+\\.\\d{3} ms$`, "m"));
      }
    });

    await t.step("bench with the largest bodies and the default window keeps pace", async () => {
      // 64 Requests of 65,535 bytes are more than one connection queues (4 MiB): before, the
      // post past it failed the run with allocation_failed (found by the hostile-tester helper).
      const r = await cli(["bench", bound, "--count", "200", "--size", "65535"]);
      assertEquals(r.code, 0, r.stderr);
      assertStringIncludes(r.stdout, `bench ${bound}: 200 requests of 65535 bytes, window 64`);
    });

    await t.step("bench --json prints one summary object", async () => {
      const r = await cli(["bench", bound, "-n", "50", "--size", "0", "--json"]);
      assertEquals(r.code, 0, r.stderr);
      const s = JSON.parse(r.stdout);
      assertEquals([s.command, s.count, s.size], ["bench", 50, 0]);
      assert(s.msgPerSec > 0 && s.latencyMs.p99 >= s.latencyMs.p50);
    });

    await t.step("Ctrl-C stops listen gracefully with exit 0", async () => {
      echo.interrupt();
      const r = await echo.end();
      assertEquals(r.code, 0, r.stderr);
      assertStringIncludes(r.stderr, "closing channels (Ctrl-C again to abort)");
    });
  });

  Deno.test(`tofu failures exit 1 with one Cannot line (${tr.name})`, async (t) => {
    await t.step("nothing listening", async () => {
      const r = await cli(["send", tr.nobody().toString(), "--body", "x"]);
      assertFailureLine(r, tr.name === "tcp" ? /\[connect_failed\]$/ : /\[uds_path_not_found\]$/);
    });

    await t.step("a body tofu refuses fails before anything is dialed", async () => {
      const r = await cli(["send", tr.nobody().toString(), "--body", "a".repeat(70_000)]);
      assertFailureLine(r, /^Cannot set body: 70000 bytes .*\[invalid_body_len\]$/);
    });

    await t.step("a missing permission names the flags to add", async () => {
      const r = await cli(["request", tr.nobody().toString()], []);
      assertFailureLine(r, /run again with --allow-net=\S+.* \(or -A\) \[not_allowed\]$/);
      if (tr.name === "uds") assertMatch(r.stderr, /--allow-read=\S+ --allow-write=\S+/);
    });

    await t.step("listen where it cannot", async () => {
      if (tr.name === "tcp") {
        await using first = new Running(["listen", listenAddress(tr)]);
        const r = await cli(["listen", await first.bound()]); // in use
        assertFailureLine(r, /^Cannot listen on tcp\|.*\[listen_failed\]$/);
      } else {
        const r = await cli(["listen", "uds|/tmp/tofu-no-such-dir/x.sock"]);
        assertFailureLine(r, /^Cannot listen on uds\|.*\[listen_failed\]$/);
      }
    });

    await t.step("no HelloResponse in time", async () => {
      // A raw listener that accepts and never answers.
      const path = tempUdsPath();
      using raw = tr.name === "tcp"
        ? Deno.listen({ hostname: "127.0.0.1", port: 0 })
        : Deno.listen({ transport: "unix", path });
      const where = tr.name === "tcp"
        ? `tcp|127.0.0.1|${(raw.addr as Deno.NetAddr).port}`
        : `uds|${path}`;
      const accepted = raw.accept();
      const r = await cli(["send", where, "--timeout", "300"]);
      (await accepted).close();
      assertFailureLine(r, /^Cannot connect to .*: no HelloResponse within 300 ms \[timeout\]$/);
      if (tr.name === "uds") await Deno.remove(path);
    });

    await t.step("no Response in time", async () => {
      await using engine = new Engine();
      const server = await libraryServer(engine, tr, null);
      const client = tr.connectTo(server.bound).toString();
      const r = await cli(["request", client, "--timeout", "300", "--body", "x"]);
      assertFailureLine(r, /^Cannot request on .*: no Response within 300 ms \[timeout\]$/);
      await engine.close();
      await server.done;
    });

    for (const how of ["abort", "bye"] as const) {
      await t.step(`the peer closes (${how}) before answering`, async () => {
        await using engine = new Engine();
        const group = engine.create();
        group.post(tr.listenAt().format(engine.get("always")!));
        const welcome = (await group.waitReceive(10_000))!;
        const bound = welcome.headers.get("~listen_on")!;
        engine.put(welcome);
        const serving = (async () => {
          for await (const m of group) {
            if (m.bhdr.opCode === OpCode.HelloRequest) {
              m.bhdr.opCode = OpCode.HelloResponse;
              group.post(m);
              continue;
            }
            if (m.bhdr.opCode === OpCode.Request) {
              const close = engine.get("always")!; // close the channel instead of answering
              close.bhdr.channelNumber = m.bhdr.channelNumber;
              close.bhdr.opCode = how === "bye" ? OpCode.ByeRequest : OpCode.ByeSignal;
              close.bhdr.internalA = how === "bye" ? 0 : 1;
              group.post(close);
            }
            engine.put(m);
          }
        })();
        const r = await cli(["request", tr.connectTo(bound).toString(), "--timeout", "20000"]);
        await engine.close();
        await serving;
        assertFailureLine(
          r,
          how === "bye"
            ? /^Cannot request on .*: the peer said bye \(ByeRequest\) \[channel_closed\]$/
            : /^Cannot .*\[(channel_closed|peer_disconnected|recv_failed)\]$/,
        );
      });
    }
  });

  Deno.test(`tofu listen: a second Ctrl-C aborts a close the peer ignores (${tr.name})`, async () => {
    // A long close deadline, so that only the second Ctrl-C can end the run.
    await using tool = new Running(["listen", listenAddress(tr), "--timeout", "120000"]);
    const bound = await tool.bound();
    using conn = await rawConnect(bound);
    const decoder = new FrameDecoder();
    await writeAll(conn, frame(OpCode.HelloRequest, 1n, "", [["~connect_to", bound]]));
    await readUntil(conn, decoder, OpCode.HelloResponse);
    tool.interrupt();
    await readUntil(conn, decoder, OpCode.ByeRequest); // the graceful close began
    tool.interrupt(); // the peer never answers: abort
    const r = await tool.end();
    assertEquals(r.code, 130, r.stderr);
  });

  Deno.test(`tofu ping: Ctrl-C prints the summary so far and exits 130 (${tr.name})`, async () => {
    await using engine = new Engine();
    let answered = 0; // answer three pings, then go quiet
    const server = await libraryServer(engine, tr, (m) => (answered++ < 3 ? m.body.text() : null));
    await using tool = new Running(["ping", tr.connectTo(server.bound).toString(), "-n", "5"]);
    await until(() => answered >= 4, "the fourth ping");
    tool.interrupt();
    const r = await tool.end();
    assertEquals(r.code, 130, r.stderr);
    assertStringIncludes(r.stdout, ": 3 round trips");
    assertMatch(r.stdout, /^ {2}max\s+\d+\.\d{3} ms$/m);
    await engine.close();
    await server.done;
  });

  Deno.test(`tofu request: Ctrl-C while waiting says bye and exits 130 (${tr.name})`, async () => {
    await using engine = new Engine();
    const server = await libraryServer(engine, tr, null); // never answers Requests
    await using tool = new Running(["request", tr.connectTo(server.bound).toString()]);
    await until(() => server.seen.some((m) => m.bhdr.opCode === OpCode.Request), "request");
    tool.interrupt();
    const r = await tool.end();
    assertEquals(r.code, 130, r.stderr);
    assert(server.seen.some((m) => m.bhdr.opCode === OpCode.ByeRequest), "bye before exit");
    await engine.close();
    await server.done;
  });
}

Deno.test("tofu request --timeout bounds each chunk of a streamed answer, not the whole of it", async () => {
  // 12 chunks, 100 ms apart: 1.2 s in all, each within the 500 ms timeout. Before, the
  // timeout was one deadline for the whole answer: it failed after 4 chunks (found by the
  // hostile-tester helper).
  await using server = await serve("tcp|127.0.0.1|0", () =>
    (async function* () {
      for (let i = 0; i < 12; i++) {
        await new Promise((r) => setTimeout(r, 100));
        yield `chunk ${i}`;
      }
    })());
  const r = await cli(["request", server.address, "--body", "go", "--timeout", "500"]);
  assertEquals(r.code, 0, r.stderr);
  for (let i = 0; i < 12; i++) assertStringIncludes(r.stdout, `chunk ${i}`);
});
