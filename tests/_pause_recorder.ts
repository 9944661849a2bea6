// For the descriptor-hoard children (tests/_fd_hoard_child.ts,
// tests/_mutants_rest_hoard_child.ts), imported before anything else runs:
//
// - `recorder.delays` gets the delays asked of setTimeout while `recorder.recording` is set,
//   in order, but for 0 ms and for 10 s or more: the listener's pauses (the engine's other
//   timers ask for 0 ms or 10 s and more);
// - Deno's signal handling is set up at once. Deno sets it up (a pipe) at the first signal
//   listener of the process and panics if no descriptor is free then; something in Deno
//   adds one at an unforeseen time, so it must happen before the hoard.

export const recorder: { recording: boolean; delays: number[] } = {
  recording: false,
  delays: [],
};

const timers = globalThis as unknown as {
  setTimeout(fn: () => void, ms?: number): number;
};
const realSetTimeout = timers.setTimeout;
timers.setTimeout = (fn: () => void, ms?: number) => {
  if (recorder.recording && ms !== undefined && ms > 0 && ms < 10_000) recorder.delays.push(ms);
  return realSetTimeout(fn, ms);
};

/** A timer of the real setTimeout (not recorded). */
export function pause(ms: number): Promise<void> {
  return new Promise((r) => realSetTimeout(r, ms));
}

const noop = () => {};
Deno.addSignalListener("SIGUSR2", noop);
Deno.removeSignalListener("SIGUSR2", noop);
