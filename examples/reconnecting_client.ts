/**
 * Recipe "reconnecting client": a client that keeps asking a server for the time and
 * rides out server restarts. `connect(..., { reconnect })` re-dials with exponential
 * backoff and jitter; a request in flight when the connection drops is not sent again
 * (the application decides: here it counts the loss and asks again).
 *
 *   deno run --allow-net=127.0.0.1 examples/reconnecting_client.ts [tcp|127.0.0.1|7099] [count]
 *
 * Start a server that answers with the time, e.g.
 * `deno run --allow-net=127.0.0.1 examples/reconnecting_client.ts --serve`, stop and
 * restart it while the client runs.
 *
 * @module
 */

// deno-lint-ignore-file no-console

import { connect, serve, statusName, TofuError } from "../mod.ts";

/** What a run of {@linkcode askRepeatedly} saw. */
export interface Tally {
  answers: number;
  lost: number;
}

/** Asks `address` `count` times, `pauseMs` apart, through one reconnecting channel. */
export async function askRepeatedly(
  address: string,
  count: number,
  pauseMs: number,
  log: (line: string) => void = () => {},
): Promise<Tally> {
  const tally: Tally = { answers: 0, lost: 0 };
  await using ch = await connect(address, {
    reconnect: { initialDelayMs: 20, maxDelayMs: 1000 },
    timeoutMs: 30_000,
  });
  while (tally.answers < count) {
    try {
      using reply = await ch.request("time?", { timeoutMs: 30_000 });
      tally.answers++;
      log(`answer ${tally.answers}: ${reply.body.text()}`);
    } catch (err) {
      if (!(err instanceof TofuError)) throw err;
      tally.lost++; // dropped with the connection: never sent twice behind our back
      log(`lost a request (${statusName(err.status)}); asking again`);
    }
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  return tally;
}

if (import.meta.main) {
  const address = Deno.args.find((a) => a.includes("|")) ?? "tcp|127.0.0.1|7099";
  if (Deno.args.includes("--serve")) {
    const server = await serve(address, () => new Date().toISOString());
    console.log(`telling the time on ${server.address}`);
  } else {
    const count = Number(Deno.args.find((a) => /^\d+$/.test(a)) ?? 20);
    const tally = await askRepeatedly(address, count, 500, console.log);
    console.log(`${tally.answers} answers, ${tally.lost} lost to restarts`);
  }
}
