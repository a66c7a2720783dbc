// Loads the effective configuration: public repo + optional private overlay (wod-private layout).
// Every value keeps the file:line:col it came from.
import { join, relative } from "node:path";
import { existsSync } from "node:fs";
import type { Environment, EnvironmentBackend, Workshop } from "./types.gen.ts";
import { type Diagnostic, parseYaml, type PathSeg, type Position, readYaml, type YamlFile } from "./yaml.ts";
import { schemaDiagnostics } from "./schema.ts";
import { WodError } from "../common/errors.ts";

export type { Diagnostic, Position };
export type Layer = "public" | "private";

export interface Source {
  file: string;
  line: number;
  col: number;
  layer: Layer;
}

export interface WorkshopEntry {
  id: string;
  value: Workshop;
  /** Absolute path of the workshop folder. */
  dir: string;
  /** Display path of workshop.yaml. */
  file: string;
  layer: Layer;
  yaml: YamlFile;
  /** The public entry this one overrides, if any. */
  overridden?: WorkshopEntry;
}

export interface EnvironmentEntry {
  name: string;
  /** Effective (merged) value. */
  value: Environment;
  /** Display path of the public file (or the private one when the environment is private only). */
  file: string;
  layers: { layer: Layer; file: string; yaml: YamlFile }[];
  /** Where the effective value at `path` came from. */
  source(path: PathSeg[]): Source;
  /** Where the key of the effective value at `path` was written (the value's source when no key). */
  keySource(path: PathSeg[]): Source;
}

export interface Config {
  root: string;
  privateDir?: string;
  workshops: Map<string, WorkshopEntry>;
  environments: Map<string, EnvironmentEntry>;
  diagnostics: Diagnostic[];
  /** Ids (folder names) of workshops that exist but did not load (their errors are in diagnostics). */
  brokenWorkshops?: Set<string>;
}

export interface LoadOptions {
  privateDir?: string;
}

export const WORKSHOP_FILE = "workshop.yaml";

function display(root: string, abs: string, layer: Layer, privateDir?: string): string {
  if (layer === "private" && privateDir) return `private:${relative(privateDir, abs)}`;
  const rel = relative(root, abs);
  return rel.startsWith("..") ? abs : rel;
}

async function listDirs(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isDirectory && !e.name.startsWith(".")) out.push(e.name);
  return out.sort();
}

async function listYaml(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && (e.name.endsWith(".yaml") || e.name.endsWith(".yml"))) out.push(e.name);
  }
  return out.sort();
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Merge `over` onto `base`: objects merge key by key, backends (arrays of {name}) merge by name,
 * any other value is replaced. `mark` records which layer each merged path came from.
 */
function merge(
  base: unknown,
  over: unknown,
  path: PathSeg[],
  mark: (p: PathSeg[], overPath: PathSeg[]) => void,
  overPath: PathSeg[],
): unknown {
  if (isObject(base) && isObject(over)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(over)) {
      out[k] = k in base ? merge(base[k], v, [...path, k], mark, [...overPath, k]) : v;
      if (!(k in base)) mark([...path, k], [...overPath, k]);
    }
    return out;
  }
  if (
    Array.isArray(base) && Array.isArray(over) &&
    base.every((b) => isObject(b) && typeof b.name === "string") &&
    over.every((b) => isObject(b) && typeof b.name === "string")
  ) {
    const out = [...base] as Record<string, unknown>[];
    over.forEach((o, oi) => {
      const i = out.findIndex((b) => b.name === (o as Record<string, unknown>).name);
      if (i >= 0) out[i] = merge(out[i], o, [...path, i], mark, [...overPath, oi]) as Record<string, unknown>;
      else {
        out.push(o as Record<string, unknown>);
        mark([...path, out.length - 1], [...overPath, oi]);
      }
    });
    return out;
  }
  // An equal value written again (e.g. a backend's `name` that identifies it) keeps its first source.
  if (JSON.stringify(base) !== JSON.stringify(over)) mark(path, overPath);
  return over;
}

async function listEntries(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) if (!e.name.startsWith(".")) out.push(e.name);
  return out.sort();
}

async function loadWorkshops(
  root: string,
  base: string,
  layer: Layer,
  privateDir: string | undefined,
  diags: Diagnostic[],
  broken: Set<string> = new Set(),
  /** Private layer: public workshop ids whose private folder may hold only hooks/ (no workshop.yaml). */
  hookOnlyIds: ReadonlySet<string> = new Set(),
): Promise<WorkshopEntry[]> {
  const out: WorkshopEntry[] = [];
  const dir = join(base, "workshops");
  const names = await listDirs(dir);
  // Read the files concurrently (I/O), then parse and check them in order (CPU).
  const texts = new Map<string, string>();
  const READERS = 32;
  for (let i = 0; i < names.length; i += READERS) {
    await Promise.all(
      names.slice(i, i + READERS).map(async (name) => {
        try {
          texts.set(name, await Deno.readTextFile(join(dir, name, WORKSHOP_FILE)));
        } catch (err) {
          if (!(err instanceof Deno.errors.NotFound)) throw err;
        }
      }),
    );
  }
  for (const name of names) {
    const abs = join(dir, name, WORKSHOP_FILE);
    const file = display(root, abs, layer, privateDir);
    const text = texts.get(name);
    if (text === undefined) {
      const entries = hookOnlyIds.has(name) ? await listEntries(join(dir, name)) : [];
      if (entries.length > 0 && entries.every((e) => e === "hooks")) continue; // private hooks for a public workshop
      diags.push({
        file: display(root, join(dir, name), layer, privateDir),
        line: 1,
        col: 1,
        message: hookOnlyIds.has(name)
          ? `Private folder "${name}" has no ${WORKSHOP_FILE}: for the public workshop of that id it may hold only hooks/ (found ${
            entries.filter((e) => e !== "hooks").join(", ") || "nothing"
          })`
          : `Workshop folder "${name}" has no ${WORKSHOP_FILE}`,
        severity: "error",
      });
      broken.add(name);
      continue;
    }
    broken.add(name);
    const y = parseYaml(file, text);
    diags.push(...y.errors);
    if (y.errors.length) continue;
    const sd = schemaDiagnostics("workshop", y.value, y);
    diags.push(...sd);
    if (sd.length) continue;
    const value = y.value as Workshop;
    if (value.id !== name) {
      const p = y.pos(["id"]);
      diags.push({
        file,
        ...p,
        message: `Workshop id "${value.id}" does not match its folder name "${name}"`,
        severity: "error",
      });
      continue;
    }
    broken.delete(name);
    out.push({ id: value.id, value, dir: join(dir, name), file, layer, yaml: y });
  }
  return out;
}

export async function loadConfig(root: string, opts: LoadOptions = {}): Promise<Config> {
  const diagnostics: Diagnostic[] = [];
  const privateDir = opts.privateDir;
  const brokenWorkshops = new Set<string>();
  const workshops = await loadAllWorkshops(root, privateDir, diagnostics, brokenWorkshops);
  const raw = await readEnvironmentLayers(root, privateDir, diagnostics);
  const environments = mergeEnvironments(raw, diagnostics);
  for (const id of workshops.keys()) brokenWorkshops.delete(id);
  return { root, privateDir, workshops, environments, diagnostics, brokenWorkshops };
}

/** The public workshops, then the private ones (an override replaces its public twin on purpose only). */
async function loadAllWorkshops(
  root: string,
  privateDir: string | undefined,
  diagnostics: Diagnostic[],
  brokenWorkshops: Set<string>,
): Promise<Map<string, WorkshopEntry>> {
  const workshops = new Map<string, WorkshopEntry>();
  for (const w of await loadWorkshops(root, root, "public", privateDir, diagnostics, brokenWorkshops)) {
    if (w.value.overrides) {
      diagnostics.push({
        file: w.file,
        ...w.yaml.pos(["overrides"]),
        message:
          `"overrides" only has a meaning in the private repo; remove it from public workshop "${w.id}"`,
        severity: "warning",
      });
    }
    workshops.set(w.id, w);
  }
  if (privateDir) {
    if (!existsSync(privateDir)) {
      diagnostics.push({
        file: privateDir,
        line: 1,
        col: 1,
        message: `Private directory "${privateDir}" does not exist`,
        severity: "error",
      });
    }
    for (
      const w of await loadWorkshops(
        root,
        privateDir,
        "private",
        privateDir,
        diagnostics,
        brokenWorkshops,
        new Set(workshops.keys()),
      )
    ) {
      const pub = workshops.get(w.id);
      if (pub && !w.value.overrides) {
        const p = w.yaml.pos(["id"]);
        diagnostics.push({
          file: w.file,
          ...p,
          message:
            `Private workshop "${w.id}" has the same id as the public ${pub.file}; set "overrides: true" to replace it on purpose`,
          severity: "error",
        });
        continue;
      }
      if (pub) w.overridden = pub;
      else if (w.value.overrides) {
        diagnostics.push({
          file: w.file,
          ...w.yaml.pos(["overrides"]),
          message:
            `Private workshop "${w.id}" says "overrides: true" but there is no public workshop with that id`,
          severity: "warning",
        });
      }
      workshops.set(w.id, w);
    }
  }

  return workshops;
}

type EnvironmentLayers = Map<string, { layer: Layer; file: string; yaml: YamlFile }[]>;

/** Each environment's files, public layer first then private, parsed (a file with YAML errors is left out). */
async function readEnvironmentLayers(
  root: string,
  privateDir: string | undefined,
  diagnostics: Diagnostic[],
): Promise<EnvironmentLayers> {
  const layers: [Layer, string][] = [["public", root]];
  if (privateDir) layers.push(["private", privateDir]);
  const raw: EnvironmentLayers = new Map();
  for (const [layer, base] of layers) {
    const dir = join(base, "environments");
    for (const f of await listYaml(dir)) {
      const abs = join(dir, f);
      const file = display(root, abs, layer, privateDir);
      const name = f.replace(/\.ya?ml$/, "");
      const list = raw.get(name) ?? [];
      const twin = list.find((l) => l.layer === layer);
      if (twin) {
        diagnostics.push({
          file,
          line: 1,
          col: 1,
          message: `Environment "${name}" is defined twice in the ${layer} repo: ${twin.file} and ${file}`,
          severity: "error",
        });
        continue;
      }
      const y = await readYaml(abs, file);
      diagnostics.push(...y.errors);
      if (y.errors.length) continue;
      list.push({ layer, file, yaml: y });
      raw.set(name, list);
    }
  }
  return raw;
}

/** Each environment's layers merged, schema-checked, with the source of every value. */
function mergeEnvironments(raw: EnvironmentLayers, diagnostics: Diagnostic[]): Map<string, EnvironmentEntry> {
  const environments = new Map<string, EnvironmentEntry>();
  for (const [name, list] of raw) {
    // Which layer (index into list) and which path inside that file each effective path came from.
    const origin = new Map<string, { idx: number; path: PathSeg[] }>();
    let value: unknown = list[0].yaml.value;
    for (let i = 1; i < list.length; i++) {
      value = merge(
        value,
        list[i].yaml.value,
        [],
        (p, op) => origin.set(JSON.stringify(p), { idx: i, path: op }),
        [],
      );
    }
    const locate = (path: PathSeg[], key: boolean): Source => {
      for (let n = path.length; n >= 0; n--) {
        const o = origin.get(JSON.stringify(path.slice(0, n)));
        if (o) {
          const l = list[o.idx];
          const full = [...o.path, ...path.slice(n)];
          return { file: l.file, ...(key ? l.yaml.keyPos(full) : l.yaml.pos(full)), layer: l.layer };
        }
      }
      const l = list[0];
      return { file: l.file, ...(key ? l.yaml.keyPos(path) : l.yaml.pos(path)), layer: l.layer };
    };
    const source = (path: PathSeg[]): Source => locate(path, false);
    const keySource = (path: PathSeg[]): Source => locate(path, true);
    const sd = schemaDiagnostics("environment", value, undefined, list[0].file, locate);
    diagnostics.push(...sd);
    if (sd.length) continue;
    const env = value as Environment;
    if (env.name !== name) {
      diagnostics.push({
        ...source(["name"]),
        message: `Environment name "${env.name}" does not match its file name "${name}"`,
        severity: "error",
      });
      continue;
    }
    environments.set(name, { name, value: env, file: list[0].file, layers: list, source, keySource });
  }
  return environments;
}

/**
 * The environment `name` of a loaded configuration, or THE error for an unknown one (every command and
 * module reports it with this one message: what was asked, what exists, where environments live).
 */
export function requireEnvironment(config: Config, name: string): EnvironmentEntry {
  const entry = config.environments.get(name);
  if (entry) return entry;
  const known = [...config.environments.keys()].sort();
  const where = join(config.root, "environments") +
    (config.privateDir ? ` or ${join(config.privateDir, "environments")}` : "");
  throw new WodError(
    `Unknown environment ${JSON.stringify(name)}: expected one of ${known.join(", ") || "(none)"} ` +
      `(an environment is a file <name>.yaml in ${where})`,
  );
}

/** The backend of an environment, or a clear error. */
export function findBackend(env: EnvironmentEntry, name: string): EnvironmentBackend {
  const b = env.value.backends.find((x) => x.name === name);
  if (!b) {
    throw new WodError(
      `Unknown backend "${name}" in environment "${env.name}": expected one of ${
        env.value.backends.map((x) => x.name).join(", ")
      } (the backends of ${env.file})`,
    );
  }
  return b;
}
