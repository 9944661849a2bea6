// Holds a live Unix socket for tests/resilience_test.ts: listens on Deno.args[0], prints
// `ready`, and answers every connection with one byte `L` until it is killed.

// deno-lint-ignore-file no-console

const listener = Deno.listen({ transport: "unix", path: Deno.args[0]! });
console.log("ready");
for await (const conn of listener) {
  conn.write(new Uint8Array([0x4c])).finally(() => conn.close()).catch(() => {});
}
