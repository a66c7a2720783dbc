// wod import: original wod.yml notebook folders -> workshops/<ID>/ + ranges of an environment.
import { isAbsolute, join } from "node:path";
import { parseArgs, repoRoot, requireOption } from "../common/args.ts";
import { UsageError, WodError } from "../common/errors.ts";
import { loadConfig } from "../config/load.ts";
import { importFolders } from "../config/import.ts";
import { lintConfig } from "../config/lint.ts";
import { formatDiagnostics, type OutputFormat } from "../config/report.ts";

export const help = `
Usage: deno task wod import DIR --env ENV [--backend NAME] [--dry-run] [--format text|github|json]

Turn original Workshops-on-Demand notebook folders (wod.yml + notebooks) under DIR (or DIR itself)
into workshops/<ID>/ and seat ranges of environment ENV (on backend NAME; default: the environment's
only backend). Bad source data (a range written [1981-1985], a capacity above its range size,
overlapping ranges, unknown keys, invalid notebooks) is reported as file:line:col: message, and a
folder with any error is not imported at all. A folder with only wod.yml (no notebooks) is reported
and not imported. Exit 1 when any error was found (the folders without errors are still imported).

Options:
  --env ENV       environment whose backend receives the ranges
  --backend NAME  backend of ENV (required when ENV has several)
  --dry-run       check and report only; write nothing
  --format FMT    text (default), github or json for the diagnostics
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs("import", args, {
    env: { type: "string" },
    backend: { type: "string" },
    "dry-run": { type: "boolean", default: false },
    format: { type: "string", default: "text" },
  }, true);
  if (positionals.length !== 1) {
    throw new UsageError(`"wod import" needs exactly one DIR (got ${positionals.length}): see --help`);
  }
  const env = requireOption("import", values.env as string | undefined, "env");
  const format = values.format as string;
  if (!["text", "github", "json"].includes(format)) {
    throw new UsageError(`Invalid --format "${format}": expected text, github or json`);
  }
  const root = repoRoot();
  const srcArg = positionals[0];
  const src = isAbsolute(srcArg) ? srcArg : join(Deno.cwd(), srcArg);
  const cfg = await loadConfig(root);
  let res;
  try {
    res = await importFolders({
      root,
      src,
      srcDisplay: srcArg.replace(/\/+$/, ""),
      env,
      backend: values.backend as string | undefined,
      cfg,
      dryRun: values["dry-run"] as boolean,
    });
  } catch (err) {
    throw new WodError(`Import of "${srcArg}" into environment "${env}" failed`, { cause: err });
  }
  const out = formatDiagnostics(res.diagnostics, format as OutputFormat);
  if (out) console.log(out);
  const verb = res.written ? "Imported" : "Would import";
  for (const f of res.folders) {
    if (f.ok) {
      console.error(
        `${verb} ${f.id} -> workshops/${f.id}/ (${f.notebooks.length} notebook(s)), range [${f.range![0]}, ${
          f.range![1]
        }] on backend ${res.backend} of environment ${env}`,
      );
    } else console.error(`Skipped ${f.id} (${f.source}): ${f.reason}`);
  }
  const errors = res.diagnostics.filter((d) => d.severity === "error").length;
  const ok = res.folders.filter((f) => f.ok).length;
  console.error(
    `${ok} of ${res.folders.length} folder(s) ${res.written ? "imported" : "importable"}, ${errors} error(s)`,
  );
  if (res.written && ok) {
    // The result must itself be valid config.
    const after = await loadConfig(root);
    const diags = [...after.diagnostics, ...await lintConfig(after)].filter((d) => d.severity === "error");
    if (diags.length) {
      console.log(formatDiagnostics(diags, format as OutputFormat));
      console.error(`The imported config does not validate: ${diags.length} error(s) above`);
      return 1;
    }
  }
  return errors ? 1 : 0;
}
