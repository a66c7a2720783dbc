// Argument parsing shared by the commands (node:util parseArgs, strict: unknown flags are errors).
import { parseArgs as nodeParseArgs } from "node:util";
import { UsageError } from "./errors.ts";

export type OptionSpec = Record<
  string,
  { type: "string" | "boolean"; short?: string; multiple?: boolean; default?: string | boolean }
>;

export function parseArgs<T extends OptionSpec>(
  command: string,
  args: string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return nodeParseArgs({ args, options, strict: true, allowPositionals });
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new UsageError(
      `Invalid arguments for "wod ${command}": ${msg}. Run \`deno task wod ${command} --help\``,
    );
  }
}

export function requireOption(command: string, value: string | undefined, flag: string): string {
  if (value === undefined || value === "") {
    throw new UsageError(`Missing required option --${flag} for "wod ${command}"`);
  }
  return value;
}

/** The repository root the CLI acts on: the working directory (docs/cli.md), overridable for tests. */
export function repoRoot(): string {
  return Deno.env.get("WOD_ROOT") ?? Deno.cwd();
}
