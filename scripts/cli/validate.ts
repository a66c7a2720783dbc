// wod validate: load, schema-check and lint all config (public + private overlay).
import { parseArgs, repoRoot } from "../common/args.ts";
import { UsageError } from "../common/errors.ts";
import { loadConfig } from "../config/load.ts";
import { lintConfig } from "../config/lint.ts";
import { formatDiagnostics, type OutputFormat } from "../config/report.ts";

export const help = `
Usage: deno task wod validate [--private DIR] [--format text|github|json]

Load, schema-check and lint every workshop and environment (public repo plus the optional
private overlay). Every error is printed as file:line:col: message. Exit 1 on any error.

Options:
  --private DIR   a checkout of the private repo (wod-private layout) to overlay
  --format FMT    text (default), github (::error annotations) or json
`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs("validate", args, {
    private: { type: "string" },
    format: { type: "string", default: "text" },
  });
  const format = values.format as string;
  if (!["text", "github", "json"].includes(format)) {
    throw new UsageError(`Invalid --format "${format}": expected text, github or json`);
  }
  const cfg = await loadConfig(repoRoot(), { privateDir: values.private as string | undefined });
  const diags = [...cfg.diagnostics, ...await lintConfig(cfg)];
  const out = formatDiagnostics(diags, format as OutputFormat);
  if (out) console.log(out);
  const errors = diags.filter((d) => d.severity === "error").length;
  const warnings = diags.length - errors;
  if (format === "text") {
    console.error(
      (errors
        ? `${errors} error(s); ${cfg.workshops.size} workshop(s) and ${cfg.environments.size} environment(s) loaded${
          cfg.brokenWorkshops?.size ? `, ${cfg.brokenWorkshops.size} workshop(s) not loadable` : ""
        }`
        : `OK: ${cfg.workshops.size} workshop(s), ${cfg.environments.size} environment(s)`) +
        (warnings ? `, ${warnings} warning(s)` : ""),
    );
  }
  return errors ? 1 : 0;
}
