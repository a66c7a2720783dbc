// Import original Workshops-on-Demand notebook folders (wod.yml + notebooks) as workshops/<ID>/ and seat
// ranges of an environment. Bad source data is reported with file:line:col and never guessed at: a
// folder with any error is not imported at all (the others are).
//
// Decision (documented in README): a folder that holds only wod.yml (no notebooks) is NOT imported. It
// would make a workshop with nothing to deploy and a missing entry notebook (validate would fail); in
// the original such folders keep their notebooks in a private repo: import that folder instead. It is
// still checked and reported (a warning, plus any data errors).
import { cpSync, existsSync } from "node:fs";
import { join } from "node:path";
import { isMap, isSeq, parseDocument, stringify, type YAMLMap } from "yaml";
import type { Environment, EnvironmentBackend, Workshop } from "./types.gen.ts";
import { type Diagnostic, parseYaml, type PathSeg, type YamlFile } from "./yaml.ts";
import { schemaDiagnostics } from "./schema.ts";
import { notebookJson, rangesOf, unsupportedFlags } from "./lint.ts";
import { type Config, findBackend, requireEnvironment } from "./load.ts";
import { WodError } from "../common/errors.ts";
import { DEFAULT_ENTRY } from "./lint.ts";
import { checkTemplates, PLATFORM_VARS } from "./template.ts";

/** Keys of the original wod.yml (docs/interop.md) and the workshop.yaml key each becomes. */
const KEY_MAP: Record<string, string> = {
  name: "title",
  description: "description",
  active: "active",
  capacity: "capacity",
  priority: "priority",
  range: "",
  reset: "reset",
  ldap: "ldap",
  varpass: "varpass",
  compile: "compile",
  monoappliance: "monoappliance",
  multiappliance: "multiappliance",
  replayId: "replayId",
  replayLink: "replayLink",
  workshopImg: "workshopImg",
  badgeImg: "badgeImg",
  beta: "beta",
  category: "category",
  duration: "duration",
  presenter: "presenter",
  role: "role",
  avatar: "avatar",
};
const ID_RE = /^[A-Za-z][A-Za-z0-9_-]{1,63}$/;

export interface ImportedFolder {
  id: string;
  /** Display path of the source folder. */
  source: string;
  range?: [number, number];
  notebooks: string[];
  /** Whether the folder is imported (no error, has notebooks). */
  ok: boolean;
  reason?: string;
}

export interface ImportResult {
  diagnostics: Diagnostic[];
  folders: ImportedFolder[];
  backend: string;
  written: boolean;
}

export interface ImportOptions {
  root: string;
  /** Folder holding the notebook folders (or one notebook folder). */
  src: string;
  /** How to show `src` in messages (default: as given). */
  srcDisplay?: string;
  env: string;
  backend?: string;
  cfg: Config;
  dryRun?: boolean;
}

interface Parsed {
  folder: ImportedFolder;
  dir: string;
  y: YamlFile;
  file: string;
  errors: number;
  range?: { first: number; last: number; pos: { line: number; col: number } };
}

async function listAll(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(dir, rel))) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await listAll(dir, p));
    else if (e.isFile) out.push(p);
  }
  return out.sort();
}

function wodFile(dir: string): string | undefined {
  for (const n of ["wod.yml", "wod.yaml"]) if (existsSync(join(dir, n))) return n;
  return undefined;
}

/** What every folder of one import is checked against. */
interface ImportContext {
  opts: ImportOptions;
  env: Environment;
  backend: EnvironmentBackend;
  diags: Diagnostic[];
}

type ErrorAt = (path: PathSeg[], message: string, key?: boolean) => void;

export async function importFolders(opts: ImportOptions): Promise<ImportResult> {
  const diags: Diagnostic[] = [];
  const shown = opts.srcDisplay ?? opts.src;
  const envEntry = requireEnvironment(opts.cfg, opts.env);
  const env: Environment = envEntry.value;
  const backend = findBackend(envEntry, chooseBackend(opts, env));
  if (!existsSync(opts.src)) {
    throw new WodError(
      `Import source "${shown}" does not exist: pass the folder holding the wod.yml folders`,
    );
  }
  const ctx: ImportContext = { opts, env, backend, diags };
  const parsed: Parsed[] = [];
  for (const d of await importDirs(opts.src, shown)) parsed.push(await parseFolder(ctx, d));
  checkOverlaps(ctx, parsed, rangesOf(envEntry).filter((r) => r.backend === backend.name));
  for (const p of parsed) {
    if (p.errors) {
      p.folder.ok = false;
      p.folder.reason = `${p.errors} error(s)` + (p.folder.reason ? `, ${p.folder.reason}` : "");
    } else if (!p.folder.reason) {
      p.folder.ok = true;
      p.folder.range = [p.range!.first, p.range!.last];
    }
  }

  const good = parsed.filter((p) => p.folder.ok);
  if (!opts.dryRun && good.length) {
    for (const p of good) await writeWorkshop(opts.root, p);
    await addRanges(
      opts.root,
      envEntry.layers[0].layer === "public" ? envEntry.layers[0].file : "",
      backend.name,
      good,
    );
  }
  return {
    diagnostics: diags,
    folders: parsed.map((p) => p.folder),
    backend: backend.name,
    written: !opts.dryRun,
  };
}

/** The backend the import adds ranges to: --backend, or the environment's only one. */
function chooseBackend(opts: ImportOptions, env: Environment): string {
  if (opts.backend) return opts.backend;
  if (env.backends.length !== 1) {
    throw new WodError(
      `Environment "${opts.env}" has ${env.backends.length} backends (${
        env.backends.map((b) => b.name).join(", ")
      }): ` +
        `choose one with --backend NAME`,
    );
  }
  return env.backends[0].name;
}

/** One folder (it has a wod.yml), or the folders with a wod.yml in a folder of folders. */
async function importDirs(
  src: string,
  shown: string,
): Promise<{ dir: string; name: string; display: string }[]> {
  // One folder, or a folder of folders.
  const dirs: { dir: string; name: string; display: string }[] = [];
  const own = wodFile(src);
  if (own) {
    const name = src.replace(/\/+$/, "").split("/").pop()!;
    dirs.push({ dir: src, name, display: shown });
  } else {
    const names: string[] = [];
    for await (const e of Deno.readDir(src)) {
      if (e.isDirectory && !e.name.startsWith(".")) names.push(e.name);
    }
    for (const n of names.sort()) {
      if (wodFile(join(src, n))) dirs.push({ dir: join(src, n), name: n, display: join(shown, n) });
    }
  }
  if (dirs.length === 0) {
    throw new WodError(
      `No notebook folder with a wod.yml found in "${shown}": pass one notebook folder, or a folder of them`,
    );
  }

  return dirs;
}

/** One folder's wod.yml and notebooks, checked; its errors are counted in the result. */
async function parseFolder(
  ctx: ImportContext,
  d: { dir: string; name: string; display: string },
): Promise<Parsed> {
  const { diags } = ctx;
  const wf = wodFile(d.dir)!;
  const file = join(d.display, wf);
  const text = await Deno.readTextFile(join(d.dir, wf));
  const y = parseYaml(file, text);
  const folder: ImportedFolder = { id: d.name, source: d.display, notebooks: [], ok: false };
  const p: Parsed = { folder, dir: d.dir, y, file, errors: 0 };
  const error = (path: PathSeg[], message: string, key = false) => {
    const pos = key ? y.keyPos(path) : y.pos(path);
    diags.push({ file, ...pos, message, severity: "error" });
    p.errors++;
  };
  if (y.errors.length) {
    diags.push(...y.errors);
    p.errors += y.errors.length;
    return p;
  }
  if (!ID_RE.test(d.name)) {
    diags.push({
      file: d.display,
      line: 1,
      col: 1,
      message:
        `Folder name "${d.name}" is not a valid workshop id: letters, digits, '-' and '_' (shell-safe)`,
      severity: "error",
    });
    p.errors++;
  }
  const raw = y.value;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    error([], `Expected a mapping of workshop metadata (name, range, capacity, ...)`);
    return p;
  }
  checkMetadata(ctx, p, raw as Record<string, unknown>, d.name, error);
  await checkContent(ctx, p, d, wf);
  return p;
}

/** wod.yml's keys, its range, the workshop schema, capacity, the backend's pool, an existing workshop. */
function checkMetadata(
  ctx: ImportContext,
  p: Parsed,
  src: Record<string, unknown>,
  id: string,
  error: ErrorAt,
): void {
  const { diags, backend, opts } = ctx;
  const { y, file } = p;
  const value: Record<string, unknown> = { id };
  for (const [k, v] of Object.entries(src)) {
    if (!(k in KEY_MAP)) {
      error(
        [k],
        `Unknown key "${k}" in wod.yml: it would be lost on import (known keys: ${
          Object.keys(KEY_MAP).join(", ")
        })`,
        true,
      );
      continue;
    }
    if (KEY_MAP[k]) value[KEY_MAP[k]] = v;
  }
  for (const f of unsupportedFlags(src)) error([f.key], f.message, true);
  if (!("range" in src)) error([], `Missing "range" ([first, last] seats) in wod.yml`);
  else {
    const r = src.range;
    if (
      Array.isArray(r) && r.length === 2 && Number.isInteger(r[0]) && Number.isInteger(r[1]) && r[0] >= 0 &&
      r[1] >= 0
    ) {
      if (r[0] > r[1]) {
        error(["range"], `Range [${r[0]}, ${r[1]}] is reversed: first must not be above last`);
      } else p.range = { first: r[0], last: r[1], pos: y.pos(["range"]) };
    } else {
      const m = Array.isArray(r) && r.length === 1 && typeof r[0] === "string"
        ? /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(r[0])
        : null;
      error(
        ["range"],
        `Invalid range ${JSON.stringify(r)}: expected [first, last], two seat numbers` +
          (m ? `; "${(r as string[])[0]}" is one value (did you mean [${m[1]}, ${m[2]}]?)` : ""),
      );
    }
  }
  // Schema of the resulting workshop, reported at the wod.yml key it came from.
  const back: Record<string, string> = Object.fromEntries(Object.entries(KEY_MAP).map(([a, b]) => [b, a]));
  const sd = schemaDiagnostics("workshop", value, y, file, (path, key) => {
    const [head, ...rest] = path;
    const orig = typeof head === "string" ? (back[head] ?? head) : head;
    const pp = orig === undefined ? [] : [orig, ...rest];
    return { file, ...(key ? y.keyPos(pp) : y.pos(pp)) };
  });
  for (const s of sd) {
    diags.push({ ...s, message: s.message.replace(/"title"/, `"name"`) });
    p.errors++;
  }
  const cap = src.capacity;
  if (p.range && typeof cap === "number" && cap > p.range.last - p.range.first + 1) {
    const size = p.range.last - p.range.first + 1;
    error(
      ["capacity"],
      `Capacity ${cap} is above the ${size} seat(s) of range [${p.range.first}, ${p.range.last}] ` +
        `(${file}:${p.range.pos.line}:${p.range.pos.col})`,
    );
  }
  if (p.range && (p.range.first < backend.students[0] || p.range.last > backend.students[1])) {
    error(
      ["range"],
      `Range [${p.range.first}, ${p.range.last}] is outside the student pool [${backend.students[0]}, ` +
        `${backend.students[1]}] of backend "${backend.name}" in environment "${opts.env}"`,
    );
  }
  if (opts.cfg.workshops.has(id) || existsSync(join(opts.root, "workshops", id))) {
    error([], `Workshop "${id}" already exists in workshops/${id}/: not imported again`);
  }
}

/** Notebooks must be valid JSON with templates that render; the entry notebook must be there. */
async function checkContent(
  ctx: ImportContext,
  p: Parsed,
  d: { dir: string; display: string },
  wf: string,
): Promise<void> {
  const { diags, env } = ctx;
  const { folder } = p;
  // Content: notebooks must be valid JSON; the entry notebook must be there.
  const files = (await listAll(d.dir)).filter((f) => f !== wf);
  folder.notebooks = files.filter((f) => f.endsWith(".ipynb"));
  for (const nb of folder.notebooks) {
    const t = await Deno.readTextFile(join(d.dir, nb));
    const parsed = notebookJson(t);
    if (parsed.error) {
      diags.push({ file: join(d.display, nb), ...parsed.error, severity: "error" });
      p.errors++;
      continue;
    }
    // The same check as `wod validate` (scripts/config/jinja_sandbox.py): the seat runner renders it.
    const vars = [...PLATFORM_VARS, ...Object.keys(env.vars ?? {})];
    for (const tp of await checkTemplates([{ path: join(d.dir, nb), vars }])) {
      diags.push({
        file: join(d.display, nb),
        line: tp.line,
        col: tp.col,
        message: tp.message,
        severity: "error",
      });
      p.errors++;
    }
  }
  if (folder.notebooks.length === 0) {
    diags.push({
      file: d.display,
      line: 1,
      col: 1,
      message:
        `Folder has no notebooks (only ${
          files.length ? files.join(", ") + " and " : ""
        }${wf}): not imported; ` +
        `its content probably lives in a private repo, import the folder that has the notebooks`,
      severity: "warning",
    });
    folder.reason = "no notebooks";
  } else if (!folder.notebooks.includes(DEFAULT_ENTRY)) {
    diags.push({
      file: d.display,
      line: 1,
      col: 1,
      message: `Entry notebook "${DEFAULT_ENTRY}" not found among ${folder.notebooks.join(", ")}`,
      severity: "error",
    });
    p.errors++;
  }
}

/** Overlaps: between the imported folders, and with ranges already in the environment's backend. */
function checkOverlaps(ctx: ImportContext, parsed: Parsed[], existing: ReturnType<typeof rangesOf>): void {
  const { diags, opts, backend } = ctx;
  const withRange = parsed.filter((p) => p.range).sort((a, b) => a.range!.first - b.range!.first);
  for (let i = 0; i < withRange.length; i++) {
    const a = withRange[i];
    for (let j = i + 1; j < withRange.length && withRange[j].range!.first <= a.range!.last; j++) {
      const b = withRange[j];
      const lo = Math.max(a.range!.first, b.range!.first), hi = Math.min(a.range!.last, b.range!.last);
      const seats = lo === hi ? `seat ${lo}` : `seats ${lo}-${hi}`;
      for (const [x, y] of [[a, b], [b, a]]) {
        diags.push({
          file: x.file,
          ...x.range!.pos,
          message: `Range [${x.range!.first}, ${x.range!.last}] of "${x.folder.id}" overlaps range ` +
            `[${y.range!.first}, ${y.range!.last}] of "${y.folder.id}" (${y.file}:${y.range!.pos.line}:${
              y.range!.pos.col
            }): ${seats}`,
          severity: "error",
        });
        x.errors++;
      }
    }
    for (const r of existing) {
      if (r.workshop === a.folder.id || r.last < a.range!.first || r.first > a.range!.last) continue;
      diags.push({
        file: a.file,
        ...a.range!.pos,
        message:
          `Range [${a.range!.first}, ${
            a.range!.last
          }] of "${a.folder.id}" overlaps range [${r.first}, ${r.last}] ` +
          `of "${r.workshop}" already in environment "${opts.env}" (${r.at.file}:${r.at.line}:${r.at.col}) on backend "${backend.name}"`,
        severity: "error",
      });
      a.errors++;
    }
  }
}

async function writeWorkshop(root: string, p: Parsed): Promise<void> {
  const src = p.y.value as Record<string, unknown>;
  const w: Record<string, unknown> = { id: p.folder.id };
  const order = ["name", "description", "duration", "active", "capacity", "reset"];
  const keys = [...order.filter((k) => k in src), ...Object.keys(src).filter((k) => !order.includes(k))];
  for (const k of keys) if (KEY_MAP[k]) w[KEY_MAP[k]] = src[k];
  w.entry = DEFAULT_ENTRY;
  const dest = join(root, "workshops", p.folder.id);
  await Deno.mkdir(dest, { recursive: true });
  const wf = wodFile(p.dir)!;
  for await (const e of Deno.readDir(p.dir)) {
    if (e.name === wf) continue;
    cpSync(join(p.dir, e.name), join(dest, e.name), { recursive: true });
  }
  const header = `# yaml-language-server: $schema=../../schemas/workshop.schema.json\n` +
    `# Imported from ${p.file} by \`wod import\`.\n`;
  await Deno.writeTextFile(join(dest, "workshop.yaml"), header + stringify(w as Workshop, { lineWidth: 0 }));
}

/** Add `ranges` entries to one backend of the environment file, keeping its comments and layout. */
async function addRanges(root: string, envFile: string, backend: string, good: Parsed[]): Promise<void> {
  if (!envFile) {
    throw new WodError(
      `The environment is private only: add its ranges in the private repo's environment file`,
    );
  }
  const abs = join(root, envFile);
  const text = await Deno.readTextFile(abs);
  const doc = parseDocument(text);
  const backends = doc.get("backends");
  if (!isSeq(backends)) throw new WodError(`${envFile}: "backends" is not a list: run \`wod validate\``);
  const b = backends.items.find((x) => isMap(x) && x.get("name") === backend);
  if (!isMap(b)) {
    throw new WodError(
      `${envFile}: backend "${backend}" not found: add it to "backends" or pass another --backend`,
    );
  }
  let ranges = b.get("ranges");
  if (!isMap(ranges)) {
    ranges = doc.createNode({}) as YAMLMap;
    b.set("ranges", ranges);
  }
  for (const p of good) {
    (ranges as YAMLMap).set(p.folder.id, doc.createNode([p.range!.first, p.range!.last], { flow: true }));
  }
  await Deno.writeTextFile(abs, doc.toString({ flowCollectionPadding: false, lineWidth: 0 }));
}
