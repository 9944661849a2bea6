// Helpers of the tests that attack the engine or the examples from outside: child
// processes read line by line, raw frames, and a storm of clients that leave at once.

import { encodeFrame, Engine, OpCode } from "../mod.ts";
import { rawConnect, readToEnd, writeAll } from "./_fixtures.ts";

const decoder = new TextDecoder();

/** A child process whose stdout is read line by line. */
export class Child implements AsyncDisposable {
  readonly process: Deno.ChildProcess;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buffer = "";
  readonly lines: string[] = [];

  constructor(command: string, args: string[]) {
    this.process = new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).spawn();
    this.#reader = this.process.stdout.getReader();
  }

  /** The next stdout line matching `test`, or a failure after `ms`. */
  async line(test: (line: string) => boolean, ms = 20_000): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const found = this.lines.find(test);
      if (found !== undefined) return found;
      const left = end - Date.now();
      if (left <= 0) {
        throw new Error(`no such line within ${ms} ms; got: ${this.lines.join(" | ")}`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const chunk = await Promise.race([
        this.#reader.read(),
        new Promise<null>((r) => timer = setTimeout(() => r(null), left)),
      ]);
      clearTimeout(timer);
      if (chunk === null) continue;
      if (chunk.done) throw new Error(`the child ended; got: ${this.lines.join(" | ")}`);
      this.#buffer += decoder.decode(chunk.value, { stream: true });
      const parts = this.#buffer.split("\n");
      this.#buffer = parts.pop()!;
      this.lines.push(...parts);
    }
  }

  /** Everything the child wrote on stderr (once it has ended). */
  async stderr(): Promise<string> {
    return decoder.decode(await new Response(this.process.stderr).arrayBuffer());
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.process.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await this.#reader.cancel().catch(() => {});
    if (!this.process.stderr.locked) await this.process.stderr.cancel().catch(() => {});
    await this.process.status;
  }
}

export const denoRun = ["run", "--no-prompt", "--allow-net", "--allow-read", "--allow-write=/tmp"];

/** The bytes of a frame with opcode `op` and `body`. */
export function frame(op: number, body = "", id = 1n): Uint8Array {
  const engine = new Engine({ initialPoolMsgs: 1 });
  const m = engine.get("always")!;
  m.bhdr.opCode = op;
  m.bhdr.messageId = id;
  if (body) m.body.set(body);
  return encodeFrame(m);
}

/**
 * `count` clients each send a HelloRequest and a Request and disconnect at once (50 at a
 * time); then one client sends a HelloRequest and two ByeRequests and reads to the end.
 */
export async function attack(bound: string, count = 300): Promise<void> {
  const hello = frame(OpCode.HelloRequest);
  const request = frame(OpCode.Request, "ping", 2n);
  const bye = frame(OpCode.ByeRequest, "", 3n);
  const both = new Uint8Array([...hello, ...request]);
  for (let i = 0; i < count; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, count - i) }, async () => {
      const conn = await rawConnect(bound).catch(() => null);
      if (conn === null) return; // a full backlog refused it: the next batch tries again
      await writeAll(conn, both).catch(() => {});
      conn.close();
    }));
  }
  const conn = await rawConnect(bound);
  await writeAll(conn, new Uint8Array([...hello, ...bye, ...bye]));
  await readToEnd(conn);
  conn.close();
}
