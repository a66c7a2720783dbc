// wod frontend: keep the original front end's workshop settings (wod-api-db) in line with our files.
import { parseArgs, repoRoot } from "../common/args.ts";
import { UsageError, WodError } from "../common/errors.ts";
import { loadConfig } from "../config/load.ts";
import { throwOnConfigErrors } from "../config/report.ts";
import { apiDbRows, apiDbSql, compareApiDbWorkshops } from "../notify/apidb.ts";
import { FrontendClient } from "../notify/frontend.ts";

export const help = `
Usage: deno task wod frontend <export|diff> --env ENV [--format json|sql] [--private DIR]

Our workshop.yaml and environment files are the source of the settings the original front end's
database (wod-api-db) keeps a second copy of: a workshops row per workshop (capacity, range, reset,
location, active, duration, ...) and a locations row per backend (name, basestdid, proto, port).

  export   print those rows for ENV: JSON (default) or SQL statements for the api-db's PostgreSQL
           (update or insert by notebook / location name, in one transaction)
  diff     compare them with what the front end serves at GET {frontend.api_url}/workshops (login
           with the credentials named by frontend.username_env / password_env); one line per
           difference; exit 2 when there is any

Options:
  --env ENV       environment (required)
  --format F      export: json or sql (default json); diff: text or json (default text)
  --private DIR   a checkout of the private repo to overlay
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs("frontend", args, {
    env: { type: "string" },
    format: { type: "string" },
    private: { type: "string" },
  }, true);
  const [verb, ...extra] = positionals;
  if (verb !== "export" && verb !== "diff") {
    throw new UsageError(
      `"wod frontend" needs export or diff (got ${verb === undefined ? "nothing" : `"${verb}"`})`,
    );
  }
  if (extra.length) throw new UsageError(`Unexpected argument "${extra[0]}" for "wod frontend ${verb}"`);
  const envName = values.env as string | undefined;
  if (!envName) throw new UsageError(`"wod frontend ${verb}" needs --env ENV`);
  const cfg = await loadConfig(repoRoot(), { privateDir: values.private as string | undefined });
  throwOnConfigErrors(cfg.diagnostics);
  const rows = apiDbRows(cfg, envName);
  for (const w of rows.warnings) console.error(`warning: ${w}`);

  if (verb === "export") {
    const format = (values.format as string | undefined) ?? "json";
    if (format === "json") {
      console.log(JSON.stringify({ locations: rows.locations, workshops: rows.workshops }, null, 2));
    } else if (format === "sql") console.log(apiDbSql(rows));
    else throw new UsageError(`--format for "wod frontend export" is json or sql (got "${format}")`);
    return 0;
  }

  const format = (values.format as string | undefined) ?? "text";
  if (format !== "text" && format !== "json") {
    throw new UsageError(`--format for "wod frontend diff" is text or json (got "${format}")`);
  }
  const fe = cfg.environments.get(envName)!.value.frontend;
  if (!fe?.api_url) {
    throw new WodError(
      `Environment "${envName}" has no frontend.api_url: nothing to compare (set it in environments/${envName}.yaml)`,
    );
  }
  const theirs = await FrontendClient.fromEnv(fe).getJson("/workshops");
  const diffs = compareApiDbWorkshops(rows, theirs);
  if (format === "json") console.log(JSON.stringify({ differences: diffs }));
  else if (diffs.length === 0) console.log(`The front end's workshops match environment ${envName}`);
  else for (const d of diffs) console.log(d.message);
  return diffs.length ? 2 : 0;
}
