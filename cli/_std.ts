// Typed faces of the two standard-library modules the tool uses. The npm mirror ships
// them as plain JavaScript without declarations, so each import is given the shape of
// its documented signature here, once, and the rest of the tool stays strictly typed.

import { parseArgs as untypedParseArgs } from "@std/cli/parse-args";
import * as untypedColors from "@std/fmt/colors";

/** The options of `parseArgs` the tool uses. */
export interface ParseOptions {
  boolean?: readonly string[];
  string?: readonly string[];
  collect?: readonly string[];
  alias?: Readonly<Record<string, string>>;
  default?: Readonly<Record<string, unknown>>;
  stopEarly?: boolean;
  "--"?: boolean;
  /** Called for an argument that is not a declared flag; `false` drops it. */
  unknown?: (arg: string, key?: string, value?: unknown) => unknown;
}

/** What `parseArgs` returns: positional arguments in `_`, flags by name. */
export interface ParsedArgs {
  _: Array<string | number>;
  [flag: string]: unknown;
}

/** `@std/cli` `parseArgs`. */
export const parseArgs: (args: readonly string[], options?: ParseOptions) => ParsedArgs =
  untypedParseArgs;

/** A color function of `@std/fmt/colors`. */
export type Paint = (text: string) => string;

/** The `@std/fmt/colors` functions the tool uses. */
export const colors: {
  bold: Paint;
  dim: Paint;
  red: Paint;
  green: Paint;
  yellow: Paint;
  cyan: Paint;
  magenta: Paint;
  setColorEnabled: (on: boolean) => void;
  stripAnsiCode: (text: string) => string;
} = untypedColors;
