/**
 * Mutation testing of src/ with Stryker (run by `deno task mutate`, never in CI: it is slow).
 *
 * Stryker runs once per source file, mutating only that file and running only the test
 * files that cover it (map.json), each mutant as one `deno test --fail-fast` process
 * (Stryker's command test runner, concurrency 1, under `nice -n 19`). Each run is bounded
 * per mutant (Stryker's timeout) and as a whole (`--minutes`, default 30). At the end it
 * prints the score per file and the total; Stryker's own report for each file (with every
 * surviving mutant) is printed as it goes and kept in tools/mutation/reports/.
 *
 * Usage (from the repo root):
 *   deno task mutate                       every file in map.json
 *   deno task mutate src/codec.ts ...      only these files
 *   deno task mutate --minutes=10 src/x.ts bound each file's run to 10 minutes
 *   deno task mutate src/x.ts:1-400       only the mutants of lines 1 to 400 (a big file in parts)
 *
 * Score = (killed + timed out) / (killed + timed out + survived + no coverage), as Stryker
 * computes it; mutants that do not compile or crash the runner are not counted.
 *
 * @module
 */
// deno-lint-ignore-file no-console

const here = new URL(".", import.meta.url).pathname;
const root = new URL("../../", import.meta.url).pathname;
const stryker = `${here}npm/node_modules/@stryker-mutator/core/bin/stryker.js`;
const reports = `${here}reports/`;

const TEST_FLAGS = [
  "--no-check", // Stryker marks instrumented files @ts-nocheck; the task `check` covers types
  "--no-prompt",
  "--fail-fast",
  "--allow-net",
  "--allow-read",
  "--allow-write=/tmp",
  "--allow-env=TMPDIR,TMP,__STRYKER_ACTIVE_MUTANT__",
  "--allow-run=deno",
].join(" ");

interface Counts {
  killed: number;
  timeout: number;
  survived: number;
  noCoverage: number;
  other: number;
}

interface Outcome {
  file: string;
  counts: Counts | null;
  note: string;
  seconds: number;
}

function usage(message: string): never {
  console.error(`mutate: ${message}`);
  console.error("usage: deno task mutate [--minutes=N] [src/file.ts ...]");
  Deno.exit(2);
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function score(c: Counts): number | null {
  const detected = c.killed + c.timeout;
  const valid = detected + c.survived + c.noCoverage;
  return valid === 0 ? null : (100 * detected) / valid;
}

function countMutants(reportPath: string, file: string): Counts {
  const report = JSON.parse(Deno.readTextFileSync(reportPath)) as {
    files: Record<string, { mutants: Array<{ status: string }> }>;
  };
  const c: Counts = {
    killed: 0,
    timeout: 0,
    survived: 0,
    noCoverage: 0,
    other: 0,
  };
  for (const m of report.files[file]?.mutants ?? []) {
    if (m.status === "Killed") c.killed++;
    else if (m.status === "Timeout") c.timeout++;
    else if (m.status === "Survived") c.survived++;
    else if (m.status === "NoCoverage") c.noCoverage++;
    else c.other++;
  }
  return c;
}

// The Stryker process under way: stopped with us (SIGTERM lets it end its test process
// and remove its sandbox).
let running: Deno.ChildProcess | null = null;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, async () => {
    const child = running;
    if (child !== null) {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await child.status;
    }
    Deno.exit(130);
  });
}

async function runOne(
  file: string,
  tests: string[],
  minutes: number,
): Promise<Outcome> {
  const started = performance.now();
  // `file` may end in `:FIRST-LAST`, a line range (Stryker's own syntax for `mutate`).
  const [path, range] = file.split(":") as [string, string | undefined];
  const name = path.replace(/^src\//, "").replace(/\.ts$/, "") + (range ? `.${range}` : "");
  const reportPath = `${reports}${name}.json`;
  const configPath = `${reports}${name}.stryker.json`;
  try {
    Deno.removeSync(reportPath);
  } catch {
    // No report from an earlier run.
  }
  const config = {
    testRunner: "command",
    commandRunner: { command: `deno test ${TEST_FLAGS} ${tests.join(" ")}` },
    // Rewrites the instrumented header so child processes without env permission work.
    buildCommand:
      `deno run --no-prompt --allow-read=src --allow-write=src ${here}_sandbox_patch.ts`,
    coverageAnalysis: "off",
    mutate: [file],
    concurrency: 1,
    timeoutMS: 10_000,
    timeoutFactor: 2,
    plugins: [],
    reporters: ["clear-text", "progress-append-only", "json"],
    jsonReporter: { fileName: reportPath },
    clearTextReporter: { allowColor: false, logTests: false },
    // The sandbox lives outside the repo, beside no package.json, so Deno resolves as at the root.
    tempDirName: `/tmp/tofu-stryker-${Deno.pid}`,
    cleanTempDir: "always",
    symlinkNodeModules: false,
    ignorePatterns: ["/bench", "/docs", "/.ci", "/tools/mutation", "*.port"],
    disableTypeChecks: "src/**/*.ts",
    thresholds: { high: 90, low: 80, break: null },
    fileLogLevel: "off",
  };
  Deno.writeTextFileSync(configPath, JSON.stringify(config, null, 2) + "\n");
  console.log(`\n=== ${file}: ${tests.join(", ")} (bounded to ${minutes} min)`);
  const child = new Deno.Command("nice", {
    args: ["-n", "19", "node", stryker, "run", configPath],
    cwd: root,
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  running = child;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGTERM");
    setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, 10_000);
  }, minutes * 60_000);
  const status = await child.status;
  running = null;
  clearTimeout(timer);
  const seconds = (performance.now() - started) / 1000;
  if (timedOut) {
    return {
      file,
      counts: null,
      note: `stopped after ${minutes} min`,
      seconds,
    };
  }
  if (!status.success || !exists(reportPath)) {
    return {
      file,
      counts: null,
      note: `stryker failed (exit ${status.code})`,
      seconds,
    };
  }
  return { file, counts: countMutants(reportPath, path), note: "", seconds };
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + " ".repeat(n - s.length);
}

function row(
  file: string,
  c: Counts | null,
  note: string,
  seconds: number,
): string {
  if (c === null) return `${pad(file, 26)} ${pad("-", 7)} ${note}`;
  const s = score(c);
  return [
    pad(file, 26),
    pad(s === null ? "n/a" : `${s.toFixed(2)}%`, 7),
    pad(String(c.killed), 6),
    pad(String(c.timeout), 7),
    pad(String(c.survived), 8),
    pad(String(c.noCoverage), 6),
    pad(`${seconds.toFixed(0)} s`, 7),
    note,
  ].join(" ");
}

async function main(): Promise<void> {
  let minutes = 30;
  const files: string[] = [];
  for (const arg of Deno.args) {
    const m = /^--minutes=(\d+(?:\.\d+)?)$/.exec(arg);
    if (m) minutes = Number(m[1]);
    else if (arg.startsWith("-")) usage(`unknown option ${arg}`);
    else if (!/^[^:]+(:\d+-\d+)?$/.test(arg)) usage(`${arg} is not FILE or FILE:FIRST-LAST`);
    else files.push(arg.replace(/^\.\//, ""));
  }
  if (!(minutes > 0)) usage("--minutes must be positive");
  const map = JSON.parse(Deno.readTextFileSync(`${here}map.json`)) as Record<
    string,
    unknown
  >;
  const mapped = Object.keys(map).filter((k) => k.startsWith("src/"));
  for (const f of files) {
    if (!mapped.includes(f.split(":")[0]!)) usage(`${f} is not in tools/mutation/map.json`);
  }
  const todo = files.length > 0 ? files : mapped;
  for (const f of todo) {
    for (const t of map[f.split(":")[0]!] as string[]) {
      if (!exists(`${root}${t}`)) usage(`${t} (mapped to ${f}) does not exist`);
    }
  }
  if (!exists(stryker)) {
    usage(
      "Stryker is not installed: run `npm ci --prefix tools/mutation/npm` (deno task mutate does)",
    );
  }
  const unmapped = [...Deno.readDirSync(`${root}src`)]
    .map((e) => `src/${e.name}`)
    .filter((f) => f.endsWith(".ts") && f !== "src/_host.ts" && !mapped.includes(f));
  Deno.mkdirSync(reports, { recursive: true });

  const outcomes: Outcome[] = [];
  for (const f of todo) {
    outcomes.push(await runOne(f, map[f.split(":")[0]!] as string[], minutes));
  }

  const total: Counts = {
    killed: 0,
    timeout: 0,
    survived: 0,
    noCoverage: 0,
    other: 0,
  };
  console.log(
    `\nMutation score per file (Stryker, ${new Date().toISOString()})`,
  );
  console.log(
    row("file", null, "", 0).replace(
      / -\s+/,
      " score   killed timeout survived nocov  time",
    ),
  );
  for (const o of outcomes) {
    console.log(row(o.file, o.counts, o.note, o.seconds));
    if (o.counts) {
      for (const k of Object.keys(total) as (keyof Counts)[]) {
        total[k] += o.counts[k];
      }
    }
  }
  const secs = outcomes.reduce((a, o) => a + o.seconds, 0);
  console.log(row("total", total, "", secs));
  if (unmapped.length > 0) {
    console.log(`not in map.json (not measured): ${unmapped.join(", ")}`);
  }
  if (outcomes.some((o) => o.counts === null)) Deno.exit(1);
}

await main();
