/**
 * The print-server dialog over tofu: a spool server hands print jobs to a RIP worker.
 *
 * - The worker connects with a HelloRequest whose `PDL` header names the page
 *   description language it accepts; the server answers with a HelloResponse.
 * - Each job is a multi-request: the job id is the message id; the first chunk carries
 *   a `JobTicket` header, then PDL chunks follow with `more` set, the last without.
 * - The worker reports progress with Signals `[N:M]` under the job's id and ends each
 *   job with a Response.
 * - When the queue is empty the server says ByeRequest, the worker ByeResponse.
 *
 * Run both roles in one process over real sockets (what `deno task demo` does):
 *
 *   deno run --allow-net=127.0.0.1 examples/print_server.ts --demo
 *
 * Or each role on its own, in two terminals:
 *
 *   deno run --allow-net=127.0.0.1 examples/print_server.ts --serve 7099
 *   deno run --allow-net=127.0.0.1 examples/print_server.ts --work 7099
 *
 * @module
 */

// deno-lint-ignore-file no-console

import {
  Engine,
  type Message,
  OpCode,
  Status,
  statusName,
  TcpClientAddress,
  TcpServerAddress,
} from "../mod.ts";

interface Job {
  id: bigint;
  ticket: string;
  pages: string[];
}

const JOBS: Job[] = [
  { id: 1001n, ticket: "user=ana;copies=1", pages: ["%PDF page 1", "%PDF page 2", "%PDF page 3"] },
  { id: 1002n, ticket: "user=bo;copies=2;duplex", pages: ["%PDF cover", "%PDF body"] },
  { id: 1003n, ticket: "user=cy;copies=1", pages: ["%PDF flyer"] },
];

function say(role: "spool" | "worker", text: string): void {
  console.log(`${role === "spool" ? "[spool ]" : "[worker]"} ${text}`);
}

/** Waits for the next message; reports that say something went wrong end the run. */
async function next(
  group: ReturnType<Engine["create"]>,
  role: "spool" | "worker",
): Promise<Message> {
  const m = await group.waitReceive(10_000);
  if (m === null) throw new Error(`${role}: nothing received for 10 s`);
  if (
    m.isFromEngine() && m.bhdr.status !== Status.success && m.bhdr.status !== Status.channelClosed
  ) {
    throw new Error(`${role}: ${statusName(m.bhdr.status)}: ${m.error?.message ?? ""}`);
  }
  return m;
}

/** The spool server: listens, waits for one worker, sends it every job, says bye. */
export async function spoolServer(
  engine: Engine,
  port: number,
  onListening: (port: number) => void = () => {},
): Promise<void> {
  const group = engine.create();
  group.post(new TcpServerAddress("127.0.0.1", port).format(engine.get("always")!));
  const welcome = await next(group, "spool");
  const bound = welcome.headers.get("~listen_on")!;
  engine.put(welcome);
  say("spool", `listening on ${bound}`);
  onListening(Number(bound.split("|")[2]));

  const hello = await next(group, "spool");
  const channel = hello.bhdr.channelNumber;
  const pdl = hello.headers.get("PDL") ?? "?";
  say("spool", `worker joined on channel ${channel}, accepts PDL=${pdl}`);
  hello.bhdr.opCode = OpCode.HelloResponse; // accept by answering with the same message
  group.post(hello);

  for (const job of JOBS) {
    job.pages.forEach((page, i) => {
      const chunk = engine.get("always")!;
      chunk.bhdr.channelNumber = channel;
      chunk.bhdr.opCode = OpCode.Request;
      chunk.bhdr.messageId = job.id;
      chunk.bhdr.more = i < job.pages.length - 1 ? 1 : 0;
      if (i === 0) chunk.headers.append("JobTicket", job.ticket);
      chunk.body.set(page);
      group.post(chunk);
    });
    say("spool", `job ${job.id} sent: ${job.pages.length} chunk(s), ticket ${job.ticket}`);
  }

  let finished = 0;
  while (finished < JOBS.length) {
    const m = await next(group, "spool");
    if (m.bhdr.opCode === OpCode.Signal) {
      say("spool", `job ${m.bhdr.messageId} progress ${m.body.text()}`);
    } else if (m.bhdr.opCode === OpCode.Response) {
      say("spool", `job ${m.bhdr.messageId} done: ${m.body.text()}`);
      finished++;
    }
    engine.put(m);
  }

  const bye = engine.get("always")!;
  bye.bhdr.channelNumber = channel;
  bye.bhdr.opCode = OpCode.ByeRequest;
  group.post(bye);
  say("spool", "queue empty, ByeRequest sent");
  for (;;) {
    const m = await next(group, "spool");
    const done = m.isFromEngine() && m.bhdr.status === Status.channelClosed &&
      m.bhdr.channelNumber === channel;
    if (m.bhdr.opCode === OpCode.ByeResponse) say("spool", "worker said ByeResponse");
    engine.put(m);
    if (done) break;
  }
  say("spool", `channel ${channel} closed`);
}

/** The RIP worker: connects, renders every job it gets, answers the bye. */
export async function ripWorker(engine: Engine, port: number): Promise<number> {
  const group = engine.create();
  const hello = new TcpClientAddress("127.0.0.1", port).format(engine.get("always")!);
  hello.headers.append("PDL", "PDF");
  const { channelNumber } = group.post(hello);
  say("worker", `connecting to tcp|127.0.0.1|${port} as channel ${channelNumber}, PDL=PDF`);

  let jobs = 0;
  const received = new Map<bigint, string[]>();
  for (;;) {
    const m = await next(group, "worker");
    const id = m.bhdr.messageId;
    switch (m.bhdr.opCode) {
      case OpCode.HelloResponse:
        say("worker", "accepted by the spool server");
        engine.put(m);
        break;
      case OpCode.Request: {
        const pages = received.get(id) ?? [];
        if (pages.length === 0) say("worker", `job ${id} ticket: ${m.headers.get("JobTicket")}`);
        pages.push(m.body.text());
        received.set(id, pages);
        if (m.hasMore()) {
          engine.put(m);
          break;
        }
        // The last chunk: render, report progress per page, then answer.
        for (let n = 1; n <= pages.length; n++) {
          const progress = engine.get("always")!;
          progress.bhdr.channelNumber = channelNumber;
          progress.bhdr.opCode = OpCode.Signal;
          progress.bhdr.messageId = id;
          progress.body.set(`[${n}:${pages.length}]`);
          group.post(progress);
        }
        say("worker", `job ${id} rendered ${pages.length} page(s)`);
        m.reset();
        m.bhdr.channelNumber = channelNumber;
        m.bhdr.opCode = OpCode.Response;
        m.bhdr.messageId = id;
        m.body.set(`ok, ${pages.length} page(s)`);
        group.post(m);
        received.delete(id);
        jobs++;
        break;
      }
      case OpCode.ByeRequest:
        say("worker", "spool server said ByeRequest; answering ByeResponse");
        m.bhdr.opCode = OpCode.ByeResponse;
        group.post(m);
        break;
      case OpCode.Signal: {
        const closed = m.bhdr.status === Status.channelClosed; // read before put resets it
        engine.put(m);
        if (closed) {
          say("worker", `channel ${channelNumber} closed after ${jobs} job(s)`);
          return jobs;
        }
        break;
      }
      default:
        engine.put(m);
    }
  }
}

if (import.meta.main) {
  const [mode = "--demo", portArg] = Deno.args;
  await using engine = new Engine();
  if (mode === "--serve") await spoolServer(engine, Number(portArg ?? 7099));
  else if (mode === "--work") await ripWorker(engine, Number(portArg ?? 7099));
  else {
    // Both roles, each with its own engine, talking over a real loopback socket.
    await using workerEngine = new Engine();
    let started!: (port: number) => void;
    const listening = new Promise<number>((r) => started = r);
    const server = spoolServer(engine, 0, started);
    const jobs = await ripWorker(workerEngine, await listening);
    await server;
    console.log(`demo finished: ${jobs} job(s) printed`);
  }
}
