// wod show: the effective config (public + private overlay), optionally with the source of every value.
import { stringify } from "yaml";
import { parseArgs, repoRoot } from "../common/args.ts";
import { UsageError } from "../common/errors.ts";
import { loadConfig, requireEnvironment } from "../config/load.ts";
import { effectiveValues } from "../config/effective.ts";
import { throwOnConfigErrors } from "../config/report.ts";

export const help = `
Usage: deno task wod show [--effective] [--private DIR] [--env ENV] [--workshop ID] [--json]

Print the merged configuration (public repo + private overlay). With --effective, every value is
printed on its own line with the file:line:col it came from (and "private" when the private repo
supplied it). Exit 1 when the config does not load.

Options:
  --effective     one line per value: path = value  # file:line:col [private]
  --private DIR   a checkout of the private repo (wod-private layout) to overlay
  --env ENV       only this environment
  --workshop ID   only this workshop
  --json          JSON instead of text (with --effective: a list of {path,value,file,line,col,layer})
`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs("show", args, {
    effective: { type: "boolean", default: false },
    private: { type: "string" },
    env: { type: "string" },
    workshop: { type: "string" },
    json: { type: "boolean", default: false },
  });
  const cfg = await loadConfig(repoRoot(), { privateDir: values.private as string | undefined });
  throwOnConfigErrors(cfg.diagnostics);
  const env = values.env as string | undefined;
  const workshop = values.workshop as string | undefined;
  if (env) requireEnvironment(cfg, env);
  if (workshop && !cfg.workshops.has(workshop)) throw new UsageError(`Unknown workshop "${workshop}"`);
  if (values.effective) {
    const list = effectiveValues(cfg, { env, workshop });
    if (values.json) console.log(JSON.stringify(list, null, 2));
    else {
      const width = Math.min(
        90,
        Math.max(...list.map((v) => v.path.length + JSON.stringify(v.value).length + 3)),
      );
      for (const v of list) {
        const left = `${v.path} = ${JSON.stringify(v.value)}`;
        console.log(
          `${left.padEnd(width)}  # ${v.file}:${v.line}:${v.col}${v.layer === "private" ? " [private]" : ""}`,
        );
      }
    }
    return 0;
  }
  const merged = {
    environments: Object.fromEntries(
      [...cfg.environments.values()].filter((e) => !env || e.name === env).map((e) => [e.name, e.value]),
    ),
    workshops: Object.fromEntries(
      [...cfg.workshops.values()].filter((w) => !workshop || w.id === workshop).map((w) => [w.id, w.value]),
    ),
  };
  console.log(values.json ? JSON.stringify(merged, null, 2) : stringify(merged, { lineWidth: 0 }));
  return 0;
}
