// The original front end's database (wod-api-db) keeps its own copy of the workshop settings: a
// `workshops` row per workshop (notebook folder, capacity, range, reset, location = backend name,
// active, duration, ...) and a `locations` row per backend (name, basestdid, proto, port). Our files
// are the source: `apiDbRows` writes what the api-db needs from them, and `compareApiDbWorkshops`
// names every difference between those rows and what the front end serves at GET /workshops.
import { type Config, requireEnvironment } from "../config/load.ts";
import { FrontendClient } from "./frontend.ts";

/** A `locations` row: one per backend of the environment. */
export interface ApiDbLocation {
  name: string;
  basestdid: number;
  proto: "http" | "https";
  port: string;
}

/** The fields of a `workshops` row that our files decide. */
export interface ApiDbWorkshop {
  name: string;
  notebook: string;
  description: string;
  capacity: number;
  priority: number;
  range: [number, number];
  reset: boolean;
  varpass: boolean;
  ldap: boolean;
  monoappliance: boolean;
  multiappliance: boolean;
  beta: boolean;
  active: boolean;
  duration: number;
  category: string[];
  location: string;
  alternateLocation: string[];
}

export interface ApiDbRows {
  env: string;
  locations: ApiDbLocation[];
  workshops: ApiDbWorkshop[];
  /** What the api-db cannot express (e.g. one workshop with different ranges on two backends). */
  warnings: string[];
}

/** The name the front end knows a backend by: its public name, else its host, else its name. */
function locationName(b: { name: string; fqdn?: string; host?: string }): string {
  return b.fqdn ?? b.host ?? b.name;
}

/** The api-db rows of environment `envName`, from our files (workshops with a range there only). */
export function apiDbRows(cfg: Config, envName: string): ApiDbRows {
  const entry = requireEnvironment(cfg, envName);
  const env = entry.value;
  const warnings: string[] = [];
  const locations: ApiDbLocation[] = env.backends.map((b) => {
    const url = b.hub_url ? new URL(b.hub_url) : undefined;
    const proto = url?.protocol === "https:" ? "https" : "http";
    return {
      name: locationName(b),
      basestdid: b.base_stdid ?? 0,
      proto,
      port: url?.port || (proto === "https" ? "443" : "80"),
    };
  });
  const workshops: ApiDbWorkshop[] = [];
  for (const w of [...cfg.workshops.values()].sort((a, b) => a.id.localeCompare(b.id))) {
    const holders = env.backends.filter((b) => b.ranges?.[w.id]);
    if (holders.length === 0) continue;
    const [first, ...others] = holders;
    const range = first.ranges![w.id] as [number, number];
    for (const o of others) {
      const r = o.ranges![w.id];
      if (r[0] !== range[0] || r[1] !== range[1]) {
        warnings.push(
          `Workshop ${w.id} has range [${range[0]}, ${range[1]}] on ${first.name} and [${r[0]}, ${
            r[1]
          }] on ${o.name}: the api-db keeps one range per workshop, so ${o.name} is listed as an alternate location with the first range`,
        );
      }
    }
    const v = w.value;
    workshops.push({
      name: v.title,
      notebook: w.id,
      description: v.description ?? "",
      capacity: v.capacity ?? range[1] - range[0] + 1,
      priority: v.priority ?? 0,
      range,
      reset: v.reset ?? false,
      varpass: v.varpass ?? false,
      ldap: v.ldap ?? false,
      monoappliance: v.monoappliance ?? false,
      multiappliance: v.multiappliance ?? false,
      beta: v.beta ?? false,
      active: v.active ?? true,
      duration: v.duration,
      category: v.category ?? [],
      location: locationName(first),
      alternateLocation: others.map(locationName),
    });
  }
  return { env: envName, locations, workshops, warnings };
}

/** One difference between our rows and the front end's. */
export interface ApiDbDifference {
  notebook: string;
  field: string;
  ours: unknown;
  theirs: unknown;
  message: string;
}

/** Fields compared: the ones that decide seats and timing on both sides. */
const COMPARED: (keyof ApiDbWorkshop)[] = [
  "capacity",
  "range",
  "reset",
  "location",
  "active",
  "duration",
  "varpass",
  "ldap",
];

function same(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => same(x, b[i]));
  }
  // The api-db serves integers and booleans; some deployments store them as strings.
  return String(a) === String(b);
}

/**
 * Every difference between our rows and the workshops the front end lists (`GET /workshops`):
 * a workshop we serve that it lacks, one it offers that we do not serve in this environment, and
 * each compared field that differs.
 */
export function compareApiDbWorkshops(ours: ApiDbRows, theirs: unknown): ApiDbDifference[] {
  if (!Array.isArray(theirs)) {
    return [{
      notebook: "*",
      field: "workshops",
      ours: "a list",
      theirs: typeof theirs,
      message: "The front end's GET /workshops did not return a list",
    }];
  }
  const out: ApiDbDifference[] = [];
  const byNotebook = new Map<string, Record<string, unknown>>();
  for (const row of theirs) {
    if (row && typeof row === "object" && typeof (row as Record<string, unknown>).notebook === "string") {
      byNotebook.set((row as Record<string, string>).notebook, row as Record<string, unknown>);
    }
  }
  for (const w of ours.workshops) {
    const row = byNotebook.get(w.notebook);
    byNotebook.delete(w.notebook);
    if (!row) {
      out.push({
        notebook: w.notebook,
        field: "*",
        ours: "present",
        theirs: "missing",
        message:
          `Workshop ${w.notebook} has seats in environment ${ours.env} but the front end has no workshop row for it: add it (wod frontend export)`,
      });
      continue;
    }
    for (const f of COMPARED) {
      if (row[f] === undefined && f !== "range") continue;
      if (!same(w[f], row[f])) {
        out.push({
          notebook: w.notebook,
          field: f,
          ours: w[f],
          theirs: row[f],
          message: `Workshop ${w.notebook}: ${f} is ${JSON.stringify(w[f])} in our files but ${
            JSON.stringify(row[f])
          } in the front end`,
        });
      }
    }
  }
  for (const [notebook, row] of byNotebook) {
    if (row.active === false || row.active === "false") continue;
    out.push({
      notebook,
      field: "*",
      ours: "missing",
      theirs: "present",
      message:
        `The front end offers workshop ${notebook} (active) but environment ${ours.env} has no range for it: its orders would be refused`,
    });
  }
  return out;
}

/** SQL statements that write the rows into the api-db's PostgreSQL tables (upsert by name/notebook). */
export function apiDbSql(rows: ApiDbRows): string {
  const q = (v: unknown): string => {
    if (typeof v === "number") return String(Math.trunc(v));
    if (typeof v === "boolean") return v ? "true" : "false";
    if (Array.isArray(v)) {
      const typ = v.length > 0 && v.every((x) => typeof x === "number") ? "integer" : "varchar";
      return `ARRAY[${v.map(q).join(", ")}]::${typ}[]`;
    }
    return `'${String(v).replace(/'/g, "''")}'`;
  };
  const lines = [
    `-- wod frontend export --env ${rows.env}: the api-db rows our files decide (run inside one transaction)`,
    "BEGIN;",
  ];
  for (const l of rows.locations) {
    lines.push(
      `UPDATE locations SET basestdid = ${q(l.basestdid)}, proto = ${q(l.proto)}, port = ${
        q(l.port)
      }, "updatedAt" = now() WHERE name = ${q(l.name)};`,
      `INSERT INTO locations (name, basestdid, proto, port, "createdAt", "updatedAt") SELECT ${q(l.name)}, ${
        q(l.basestdid)
      }, ${q(l.proto)}, ${q(l.port)}, now(), now() WHERE NOT EXISTS (SELECT 1 FROM locations WHERE name = ${
        q(l.name)
      });`,
    );
  }
  const cols = Object.keys(rows.workshops[0] ?? {}).filter((c) => c !== "notebook");
  const ident = (c: string) => (/[A-Z]/.test(c) ? `"${c}"` : c);
  for (const w of rows.workshops) {
    const rec = w as unknown as Record<string, unknown>;
    lines.push(
      `UPDATE workshops SET ${
        cols.map((c) => `${ident(c)} = ${q(rec[c])}`).join(", ")
      }, "updatedAt" = now() ` +
        `WHERE notebook = ${q(w.notebook)};`,
      `INSERT INTO workshops (notebook, ${cols.map(ident).join(", ")}, "createdAt", "updatedAt") SELECT ${
        q(w.notebook)
      }, ${cols.map((c) => q(rec[c])).join(", ")}, now(), now() WHERE NOT EXISTS ` +
        `(SELECT 1 FROM workshops WHERE notebook = ${q(w.notebook)});`,
    );
  }
  lines.push("COMMIT;");
  return lines.join("\n") + "\n";
}

/** What `wod drift` reports about the front end's workshops (undefined: no front end configured). */
export interface FrontendDrift {
  url: string;
  differences: ApiDbDifference[];
}

/**
 * `wod drift`'s front-end part: compares GET {frontend.api_url}/workshops with environment `envName`
 * (apiDbRows + compareApiDbWorkshops). Undefined when the environment has no front end. A front end
 * that cannot be reached or logged in to is reported as one difference (drift goes on with the rest).
 */
export async function frontendDrift(
  cfg: Config,
  envName: string,
  getenv: (name: string) => string | undefined = (k) => Deno.env.get(k),
): Promise<FrontendDrift | undefined> {
  const fe = cfg.environments.get(envName)?.value.frontend;
  if (!fe?.api_url) return undefined;
  const rows = apiDbRows(cfg, envName);
  const url = `${fe.api_url.replace(/\/+$/, "")}/workshops`;
  try {
    const theirs = await FrontendClient.fromEnv(fe, getenv).getJson("/workshops");
    return { url, differences: compareApiDbWorkshops(rows, theirs) };
  } catch (err) {
    return {
      url,
      differences: [{
        notebook: "*",
        field: "frontend",
        ours: "reachable",
        theirs: "error",
        message: `Cannot compare the workshops with the front end (GET ${url}): ${(err as Error).message}`,
      }],
    };
  }
}

/** The front-end part of `wod drift`'s report, as text lines or a markdown section. */
export function formatFrontendDrift(envName: string, d: FrontendDrift, format: "text" | "markdown"): string {
  if (format === "text") {
    if (!d.differences.length) return `frontend: the workshops at ${d.url} match environment ${envName}`;
    return d.differences.map((x) => `frontend: ${x.message}`).join("\n");
  }
  const lines = [`### Front-end workshops (${d.url})`, ""];
  if (!d.differences.length) lines.push(`No drift: the front end's workshops match environment ${envName}.`);
  else {
    lines.push("| workshop | field | ours | front end | detail |", "|---|---|---|---|---|");
    const cell = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v)).replace(/\|/g, "\\|");
    for (const x of d.differences) {
      lines.push(`| ${x.notebook} | ${x.field} | ${cell(x.ours)} | ${cell(x.theirs)} | ${cell(x.message)} |`);
    }
  }
  return lines.join("\n") + "\n";
}
