// File system checks shared by the Unix socket tests.

/** Whether anything (a file of any kind, a dangling link) is at `path`. */
export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Has `l` accept a client that connects to the Unix socket `path`; closes both ends. */
export async function connectOnce(
  l: { accept(): Promise<{ close(): void }> },
  path: string,
): Promise<void> {
  const accepted = l.accept();
  const c = await Deno.connect({ transport: "unix", path });
  (await accepted).close();
  c.close();
}
