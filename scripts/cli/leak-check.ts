// wod leak-check: exit 2 if anything private (id, file, value) appears in the public tree.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs, repoRoot } from "../common/args.ts";
import { UsageError } from "../common/errors.ts";
import { loadConfig } from "../config/load.ts";
import { leakCheck } from "../config/leak.ts";
import { formatDiagnostics, type OutputFormat, throwOnConfigErrors } from "../config/report.ts";

export const help = `
Usage: deno task wod leak-check [--private DIR] [--format text|github|json]

Search the public tree (the repository, without .git, node_modules and the private checkout) for
anything that belongs to the private repo DIR: ids of private workshops, copies of private files,
and values the private environments set (host names, addresses, URLs, senders, ...). Every
occurrence is printed as file:line:col: message. Exit 2 when something leaked, 0 when clean.

Options:
  --private DIR   a checkout of the private repo (wod-private layout); default: $WOD_PRIVATE_DIR,
                  else the private/ folder of a private fork; with none of them there is nothing to
                  check (exit 0)
  --format FMT    text (default), github or json
`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs("leak-check", args, {
    private: { type: "string" },
    format: { type: "string", default: "text" },
  });
  const root = repoRoot();
  const priv = (values.private as string | undefined) ?? Deno.env.get("WOD_PRIVATE_DIR") ??
    (existsSync(join(root, "private")) ? join(root, "private") : undefined);
  if (!priv) {
    console.error(
      "No private overlay to check (no --private DIR, no $WOD_PRIVATE_DIR, no private/ folder): nothing can leak",
    );
    return 0;
  }
  if (!existsSync(priv)) throw new UsageError(`Private directory "${priv}" does not exist`);
  const format = values.format as string;
  if (!["text", "github", "json"].includes(format)) {
    throw new UsageError(`Invalid --format "${format}": expected text, github or json`);
  }
  const cfg = await loadConfig(root, { privateDir: priv });
  throwOnConfigErrors(cfg.diagnostics, `deno task wod validate --private ${priv}`);
  const leaks = await leakCheck(cfg);
  const out = formatDiagnostics(leaks, format as OutputFormat);
  if (out) console.log(out);
  console.error(
    leaks.length
      ? `${leaks.length} leak(s) of private data in the public tree`
      : "No private data in the public tree",
  );
  return leaks.length ? 2 : 0;
}
