// Stryker's build step, run inside its sandbox after the sources are instrumented.
//
// The instrumented header reads the active mutant from `process.env`. Under Deno that read
// needs env permission, and some tests start child processes (tests/_no_net_child.ts,
// tests/_streaming_child.ts) without it: the read would throw and crash the child, and
// the dry run would fail. This rewrites the read so that a process without env permission
// simply runs the code unmutated; the test process itself (which has the permission)
// still selects the mutant.

const VAR = "__STRYKER_ACTIVE_MUTANT__";
const read = `(globalThis.Deno?.permissions?.querySync?.({ name: "env", variable: "${VAR}" })` +
  `.state === "granted" ? globalThis.Deno.env.get("${VAR}") : undefined)`;

let patched = 0;
for (const entry of Deno.readDirSync("src")) {
  if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
  const path = `src/${entry.name}`;
  const text = Deno.readTextFileSync(path);
  if (!text.includes(VAR)) continue;
  const out = text
    .replace(`g.process && g.process.env && g.process.env.${VAR}`, read)
    .replace(`g.process.env.${VAR}`, read);
  if (out.includes(`process.env.${VAR}`)) {
    throw new Error(
      `Cannot patch ${path}: the instrumented header has an unexpected shape`,
    );
  }
  Deno.writeTextFileSync(path, out);
  patched++;
}
if (patched === 0) {
  throw new Error("Cannot patch the sandbox: no instrumented file in src/");
}
