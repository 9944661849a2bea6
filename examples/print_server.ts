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
 * Worker mode (issue #11): add `--workers N` to `--demo` or `--work`, and the RIP front
 * hands every page to N Workers (`examples/rip_page_worker.ts`) over isolate channels, so
 * the heavy rasterizing spreads over the cores. Backpressure holds end to end: the front
 * awaits the pages of a job before it takes the next frames, so its engine stops reading
 * the spool server's socket while the Workers are busy, and the spool server's queue fills:
 *
 *   deno run --allow-net=127.0.0.1 --allow-read examples/print_server.ts --demo --workers 2
 *
 * @module
 */

// deno-lint-ignore-file no-console

import {
  type Channel,
  connect,
  Engine,
  isolateListening,
  linkWorker,
  type Message,
  OpCode,
  Status,
  statusName,
  TcpClientAddress,
  TcpServerAddress,
  TofuError,
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

/**
 * The spool server: listens, sends every job to a worker, says bye.
 *
 * Workers are not trusted. Every worker that says Hello is accepted and waits its turn;
 * one at a time gets the jobs not yet done. A worker that leaves (or says bye) before all
 * are done is replaced by the next, which gets the rest again. Frames from other
 * channels, answers the engine hands back, and posts the engine refuses (the worker
 * left) are put back and skipped.
 */
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

  /** Posts `m`; false (and `m` back in the pool) if the engine refuses it. */
  const post = (m: Message): boolean => {
    try {
      group.post(m);
      return true;
    } catch (err) {
      if (!(err instanceof TofuError)) throw err;
      engine.put(m);
      return false;
    }
  };
  const control = (channel: number, op: number, abort = false) => {
    const m = engine.get("always")!;
    m.bhdr.channelNumber = channel;
    m.bhdr.opCode = op;
    m.bhdr.internalA = abort ? 1 : 0;
    return post(m);
  };
  const done = new Set<bigint>();
  const waiting: number[] = []; // accepted workers, in arrival order
  const open = new Set<number>(); // accepted workers whose channel is still open
  let active: number | null = null;

  /** Sends every job not yet done to `channel`; false if its channel is gone. */
  const sendJobs = (channel: number): boolean => {
    for (const job of JOBS) {
      if (done.has(job.id)) continue;
      for (let i = 0; i < job.pages.length; i++) {
        const chunk = engine.get("always")!;
        chunk.bhdr.channelNumber = channel;
        chunk.bhdr.opCode = OpCode.Request;
        chunk.bhdr.messageId = job.id;
        chunk.bhdr.more = i < job.pages.length - 1 ? 1 : 0;
        if (i === 0) chunk.headers.append("JobTicket", job.ticket);
        chunk.body.set(job.pages[i]!);
        if (!post(chunk)) return false;
      }
      say("spool", `job ${job.id} sent: ${job.pages.length} chunk(s), ticket ${job.ticket}`);
    }
    return true;
  };
  const nextWorker = () => {
    while (active === null && waiting.length > 0) {
      const channel = waiting.shift()!;
      if (open.has(channel) && sendJobs(channel)) active = channel;
    }
  };

  while (done.size < JOBS.length) {
    const m = (await group.waitReceive())!;
    const channel = m.bhdr.channelNumber;
    const op = m.bhdr.opCode;
    if (m.isFromEngine()) {
      // The channel's end: the engine's own report (a Signal of ours handed back after an
      // abort has the same opcode and status, but isReport() is false).
      if (m.isReport() && m.bhdr.status === Status.channelClosed && open.delete(channel)) {
        if (channel === active) {
          active = null;
          say(
            "spool",
            `worker on channel ${channel} left with ${JOBS.length - done.size} job(s) open`,
          );
          nextWorker();
        }
      }
      engine.put(m); // reports about other channels, answers handed back
      continue;
    }
    if (op === OpCode.HelloRequest) {
      const pdl = m.headers.get("PDL") ?? "?";
      m.bhdr.opCode = OpCode.HelloResponse; // accept by answering with the same message
      if (post(m)) {
        say("spool", `worker joined on channel ${channel}, accepts PDL=${pdl}`);
        open.add(channel);
        waiting.push(channel);
        nextWorker();
      }
      continue;
    }
    if (op === OpCode.ByeRequest) {
      m.bhdr.opCode = OpCode.ByeResponse; // a worker leaving; its channel_closed follows
      post(m);
      continue;
    }
    if (channel === active && op === OpCode.Signal) {
      say("spool", `job ${m.bhdr.messageId} progress ${m.body.text()}`);
    } else if (channel === active && op === OpCode.Response && !done.has(m.bhdr.messageId)) {
      const known = JOBS.some((j) => j.id === m.bhdr.messageId);
      if (known) {
        say("spool", `job ${m.bhdr.messageId} done: ${m.body.text()}`);
        done.add(m.bhdr.messageId);
      }
    }
    engine.put(m);
  }

  // Every job is done: ByeRequest to the worker that did them, abort the ones waiting.
  const finished = active!;
  for (const channel of open) {
    if (channel !== finished) control(channel, OpCode.ByeSignal, true);
  }
  if (control(finished, OpCode.ByeRequest)) say("spool", "queue empty, ByeRequest sent");
  while (open.size > 0) {
    const m = await group.waitReceive(10_000);
    if (m === null) {
      control(finished, OpCode.ByeSignal, true); // no ByeResponse within 10 s: abort
      continue;
    }
    const channel = m.bhdr.channelNumber;
    if (m.isFromEngine() && m.bhdr.opCode === OpCode.Signal) {
      if (m.isReport() && m.bhdr.status === Status.channelClosed) open.delete(channel);
    } else if (!m.isFromEngine() && m.bhdr.opCode === OpCode.ByeResponse && channel === finished) {
      say("spool", "worker said ByeResponse");
    } else if (!m.isFromEngine() && m.bhdr.opCode === OpCode.HelloRequest) {
      control(channel, OpCode.ByeSignal, true); // too late: nothing left to do
    }
    engine.put(m);
  }
  say("spool", `channel ${finished} closed`);
}

/** Renders one page; the default does nothing heavy, Worker mode hands it to a Worker. */
export type Render = (page: string) => string | Promise<string>;

/**
 * The RIP worker: connects, renders every job it gets, answers the bye. Each page goes
 * through `render` (all pages of a job at once, so a Worker pool renders them in parallel).
 */
export async function ripWorker(
  engine: Engine,
  port: number,
  render: Render = (page) => `${page.length} bytes`,
): Promise<number> {
  const group = engine.create();
  const hello = new TcpClientAddress("127.0.0.1", port).format(engine.get("always")!);
  hello.headers.append("PDL", "PDF");
  const { channelNumber } = group.post(hello);
  say("worker", `connecting to tcp|127.0.0.1|${port} as channel ${channelNumber}, PDL=PDF`);

  /** Posts `m`; a refusal (the channel closed meanwhile) puts it back. */
  const post = (m: Message): void => {
    try {
      group.post(m);
    } catch (err) {
      if (!(err instanceof TofuError)) throw err;
      engine.put(m);
    }
  };
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
        // The last chunk: render, report progress per page, then answer. Awaiting the
        // pages holds this loop, and with it the reading of the socket (backpressure).
        const rendered = await Promise.all(pages.map((p) => render(p)));
        for (const r of rendered) say("worker", `job ${id} page: ${r}`);
        for (let n = 1; n <= pages.length; n++) {
          const progress = engine.get("always")!;
          progress.bhdr.channelNumber = channelNumber;
          progress.bhdr.opCode = OpCode.Signal;
          progress.bhdr.messageId = id;
          progress.body.set(`[${n}:${pages.length}]`);
          post(progress);
        }
        say("worker", `job ${id} rendered ${pages.length} page(s)`);
        m.reset();
        m.bhdr.channelNumber = channelNumber;
        m.bhdr.opCode = OpCode.Response;
        m.bhdr.messageId = id;
        m.body.set(`ok, ${pages.length} page(s)`);
        post(m);
        received.delete(id);
        jobs++;
        break;
      }
      case OpCode.ByeRequest:
        say("worker", "spool server said ByeRequest; answering ByeResponse");
        m.bhdr.opCode = OpCode.ByeResponse;
        post(m); // refused if the spool server said bye twice
        break;
      case OpCode.Signal: {
        // The channel's end (read before put resets it); not a progress Signal handed back.
        const closed = m.isReport() && m.bhdr.status === Status.channelClosed;
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

/** N RIP Workers on isolate channels, and a `render` that hands pages to them in turn. */
export async function ripPool(
  n: number,
): Promise<{ render: Render; close(): Promise<void> }> {
  const workers: Worker[] = [];
  const channels: Channel[] = [];
  for (let i = 1; i <= n; i++) {
    const worker = new Worker(new URL("./rip_page_worker.ts", import.meta.url), {
      type: "module",
      name: `rip-${i}`,
    });
    linkWorker(worker);
    workers.push(worker);
    const name = `rip-${Deno.pid}-${i}`;
    worker.postMessage({ serve: `isolate|${name}` });
    await isolateListening(name, { signal: AbortSignal.timeout(30_000) });
    channels.push(await connect(`isolate|${name}`));
  }
  let next = 0;
  return {
    render: async (page) => {
      using reply = await channels[next++ % channels.length]!.request(page);
      return reply.body.text();
    },
    close: async () => {
      await Promise.all(channels.map((ch) => ch.close()));
      for (const w of workers) w.terminate();
    },
  };
}

if (import.meta.main) {
  const w = Deno.args.indexOf("--workers");
  const pool = w >= 0 ? await ripPool(Number(Deno.args[w + 1] ?? 2)) : null;
  const args = w >= 0 ? Deno.args.filter((_, i) => i !== w && i !== w + 1) : Deno.args;
  const [mode = "--demo", portArg] = args;
  const render = pool?.render;
  await using engine = new Engine();
  if (mode === "--serve") await spoolServer(engine, Number(portArg ?? 7099));
  else if (mode === "--work") await ripWorker(engine, Number(portArg ?? 7099), render);
  else {
    // Both roles, each with its own engine, talking over a real loopback socket.
    await using workerEngine = new Engine();
    let started!: (port: number) => void;
    const listening = new Promise<number>((r) => started = r);
    const server = spoolServer(engine, 0, started);
    const jobs = await ripWorker(workerEngine, await listening, render);
    await server;
    console.log(`demo finished: ${jobs} job(s) printed`);
  }
  await pool?.close();
}
