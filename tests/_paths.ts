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
