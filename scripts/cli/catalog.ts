// wod catalog: the JSON of docs/cli.md, for front ends.
import { parseArgs, repoRoot } from "../common/args.ts";
import { UsageError } from "../common/errors.ts";
import { loadConfig } from "../config/load.ts";
import { buildCatalog } from "../config/catalog.ts";
import { throwOnConfigErrors } from "../config/report.ts";

export const help = `
Usage: deno task wod catalog [--env ENV] [--private DIR]

Print the workshop catalog as JSON on stdout, for front ends:
{"workshops":[{"id","title","duration","active","seats":[{"backend","first","last"}]}]}
Every workshop is listed (sorted by id) with its seat ranges on the backends of ENV (default: local).
Exit 1 when the config does not load (fix it with \`wod validate\`).

Options:
  --env ENV       environment whose ranges give the seats (default: local)
  --private DIR   a checkout of the private repo to overlay
`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs("catalog", args, {
    env: { type: "string", default: "local" },
    private: { type: "string" },
  });
  const env = values.env as string;
  if (!env) throw new UsageError(`Empty --env for "wod catalog"`);
  const cfg = await loadConfig(repoRoot(), { privateDir: values.private as string | undefined });
  throwOnConfigErrors(cfg.diagnostics);
  console.log(JSON.stringify(buildCatalog(cfg, env)));
  return 0;
}
