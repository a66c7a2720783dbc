// The single CLI entry: `deno task wod <command> [args]`.
// Each command lives in scripts/cli/<command>.ts and exports `help` (string) and `run(args)`.
import { printError, UsageError } from "./common/errors.ts";

const COMMAND_NAME = /^[a-z][a-z-]*$/;

export interface CommandModule {
  help: string;
  run(args: string[]): Promise<number>;
}

async function listCommands(): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(new URL("./cli/", import.meta.url))) {
    if (e.isFile && e.name.endsWith(".ts") && !e.name.endsWith("_test.ts") && !e.name.startsWith("_")) {
      names.push(e.name.slice(0, -3));
    }
  }
  return names.sort();
}

export async function loadCommand(name: string): Promise<CommandModule | undefined> {
  if (!COMMAND_NAME.test(name)) return undefined;
  const names = await listCommands();
  if (!names.includes(name)) return undefined;
  return await import(new URL(`./cli/${name}.ts`, import.meta.url).href) as CommandModule;
}

async function usage(): Promise<string> {
  const lines = ["Usage: deno task wod <command> [options]", "", "Commands:"];
  for (const name of await listCommands()) {
    const mod = await loadCommand(name);
    const first = mod?.help.split("\n").find((l) => l.trim() !== "") ?? "";
    lines.push(`  ${name.padEnd(12)} ${first.replace(/^Usage:.*$/, "").trim() || first.trim()}`);
  }
  lines.push("", "Run `deno task wod <command> --help` for the options of one command.");
  return lines.join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(await usage());
    return name === undefined ? 1 : 0;
  }
  const mod = await loadCommand(name);
  if (!mod) {
    printError(new UsageError(`Unknown command "${name}": run \`deno task wod --help\` for the list`));
    return 1;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(mod.help.trim());
    return 0;
  }
  try {
    return await mod.run(rest);
  } catch (err) {
    printError(err);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
