// Lints beyond the schema: ids, pools, ranges, overlaps, capacity, durations, references, notebooks.
// Every problem is a diagnostic at the file:line:col of the value it is about; all are collected in
// one run (nothing stops at the first error).
import { join } from "node:path";
import type { Config, Diagnostic, EnvironmentEntry, Source, WorkshopEntry } from "./load.ts";
import {
  checkTemplates,
  contentFiles,
  hasTemplateMarkers,
  isTemplateText,
  offsetToPos,
  PLATFORM_VARS,
  type TemplateCheck,
} from "./template.ts";
import { findJsonError } from "./json_pos.ts";

export const DEFAULT_ENTRY = "0-ReadMeFirst.ipynb";
export const DEFAULT_REMINDER_MINUTES = 60;

type Pos = { file: string; line: number; col: number };

function at(s: Pos): Pos {
  return { file: s.file, line: s.line, col: s.col };
}

function where(s: Pos): string {
  return `${s.file}:${s.line}:${s.col}`;
}

function err(p: Pos, message: string): Diagnostic {
  return { ...at(p), message, severity: "error" };
}

function wsPos(w: WorkshopEntry, path: (string | number)[]): Pos {
  return { file: w.file, ...w.yaml.pos(path) };
}

/** A seat range of one workshop on one backend, with where it was written. */
export interface RangeRef {
  env: EnvironmentEntry;
  backend: string;
  backendIndex: number;
  workshop: string;
  first: number;
  last: number;
  at: Source;
}

export function rangesOf(env: EnvironmentEntry): RangeRef[] {
  const out: RangeRef[] = [];
  env.value.backends.forEach((b, bi) => {
    for (const [ws, [first, last]] of Object.entries(b.ranges ?? {})) {
      out.push({
        env,
        backend: b.name,
        backendIndex: bi,
        workshop: ws,
        first,
        last,
        at: env.keySource(["backends", bi, "ranges", ws]),
      });
    }
  });
  return out;
}

function lintEnvironment(cfg: Config, env: EnvironmentEntry, out: Diagnostic[]): void {
  lintBackends(env, out);
  lintOverlaps(lintRanges(cfg, env, out), out);
}

/** Backend names are unique, pools are not reversed, front-end student ids do not collide. */
function lintBackends(env: EnvironmentEntry, out: Diagnostic[]): void {
  const seenBackend = new Map<string, Source>();
  const idSpans: { name: string; lo: number; hi: number; at: Source }[] = [];
  env.value.backends.forEach((b, bi) => {
    const nameAt = env.source(["backends", bi, "name"]);
    const prev = seenBackend.get(b.name);
    if (prev) {
      out.push(
        err(
          nameAt,
          `Duplicate backend name "${b.name}" in environment "${env.name}" (first at ${where(prev)})`,
        ),
      );
    } else seenBackend.set(b.name, nameAt);
    const [pf, pl] = b.students;
    const poolAt = env.source(["backends", bi, "students"]);
    if (pf > pl) {
      out.push(
        err(
          poolAt,
          `Student pool [${pf}, ${pl}] of backend "${b.name}" is reversed: first must not be above last`,
        ),
      );
    } else {
      const base = b.base_stdid ?? 0;
      idSpans.push({ name: b.name, lo: base + pf, hi: base + pl, at: poolAt });
    }
  });
  // Front-end student ids (seat + base_stdid) must not collide between backends.
  idSpans.sort((a, b) => a.lo - b.lo);
  for (let i = 1; i < idSpans.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = idSpans[j], b = idSpans[i];
      if (a.hi >= b.lo) {
        out.push(
          err(
            b.at,
            `Front-end student ids ${b.lo}-${b.hi} of backend "${b.name}" (students + base_stdid) overlap ids ` +
              `${a.lo}-${a.hi} of backend "${a.name}" (${where(a.at)}): give each backend its own base_stdid`,
          ),
        );
      }
    }
  }
}

/** Each range names a workshop, lies in its backend's pool, is not reversed; returns the ranges by backend. */
function lintRanges(cfg: Config, env: EnvironmentEntry, out: Diagnostic[]): Map<number, RangeRef[]> {
  const reminder = env.value.timing?.reminder_minutes ?? DEFAULT_REMINDER_MINUTES;
  const byBackend = new Map<number, RangeRef[]>();
  const durationChecked = new Set<string>();
  for (const r of rangesOf(env)) {
    const b = env.value.backends[r.backendIndex];
    const [pf, pl] = b.students;
    const w = cfg.workshops.get(r.workshop);
    if (!w && cfg.brokenWorkshops?.has(r.workshop)) {
      // The workshop's own file has errors (reported where they are); do not repeat them here.
    } else if (!w) {
      const near = [...cfg.workshops.keys()].find((k) => k.toLowerCase() === r.workshop.toLowerCase());
      out.push(
        err(
          r.at,
          `Unknown workshop "${r.workshop}" in the ranges of backend "${b.name}": no workshops/${r.workshop}/workshop.yaml` +
            (near ? ` (did you mean "${near}"?)` : ""),
        ),
      );
    } else if (w.value.duration * 60 <= reminder && !durationChecked.has(w.id)) {
      durationChecked.add(w.id);
      const remAt = env.source(["timing", "reminder_minutes"]);
      out.push(
        err(
          wsPos(w, ["duration"]),
          `Duration ${w.value.duration} h of "${w.id}" is not longer than the reminder sent ${reminder} minutes ` +
            `before expiry in environment "${env.name}" (${
              where(remAt)
            }): the reminder would come at the start`,
        ),
      );
    }
    if (r.first > r.last) {
      out.push(
        err(
          r.at,
          `Range [${r.first}, ${r.last}] of "${r.workshop}" on backend "${b.name}" is reversed: first must not be above last`,
        ),
      );
      continue;
    }
    if (r.first < pf || r.last > pl) {
      out.push(
        err(
          r.at,
          `Range [${r.first}, ${r.last}] of "${r.workshop}" is outside the student pool [${pf}, ${pl}] of backend ` +
            `"${b.name}" (${where(env.source(["backends", r.backendIndex, "students"]))})`,
        ),
      );
    }
    const list = byBackend.get(r.backendIndex) ?? [];
    list.push(r);
    byBackend.set(r.backendIndex, list);
  }
  return byBackend;
}

function lintOverlaps(byBackend: Map<number, RangeRef[]>, out: Diagnostic[]): void {
  // Overlaps: sweep each backend's ranges sorted by first seat, keeping the ranges still open.
  for (const list of byBackend.values()) {
    list.sort((a, b) => a.first - b.first || a.last - b.last);
    let active: RangeRef[] = [];
    for (const r of list) {
      active = active.filter((a) => a.last >= r.first);
      for (const a of active) {
        const lo = Math.max(a.first, r.first), hi = Math.min(a.last, r.last);
        out.push(
          err(
            r.at,
            `Range [${r.first}, ${r.last}] of "${r.workshop}" (${
              where(r.at)
            }) overlaps range [${a.first}, ${a.last}] ` +
              `of "${a.workshop}" (${where(a.at)}) on backend "${r.backend}": seats ${
                lo === hi ? lo : `${lo}-${hi}`
              }`,
          ),
        );
      }
      active.push(r);
    }
  }
}

function lintCapacity(cfg: Config, env: EnvironmentEntry, out: Diagnostic[]): void {
  const sizes = new Map<string, { seats: number; parts: string[] }>();
  for (const r of rangesOf(env)) {
    if (r.first > r.last) continue;
    const s = sizes.get(r.workshop) ?? { seats: 0, parts: [] };
    s.seats += r.last - r.first + 1;
    s.parts.push(`${r.backend} [${r.first}, ${r.last}]`);
    sizes.set(r.workshop, s);
  }
  for (const [id, s] of sizes) {
    const w = cfg.workshops.get(id);
    const cap = w?.value.capacity;
    if (!w || cap === undefined || cap <= s.seats) continue;
    out.push(
      err(
        wsPos(w, ["capacity"]),
        `Capacity ${cap} of "${id}" is above the ${s.seats} seat(s) of its ranges in environment "${env.name}" ` +
          `(${s.parts.join(", ")}): lower the capacity or widen the ranges`,
      ),
    );
  }
}

async function listFiles(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(dir, rel))) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await listFiles(dir, p));
    else out.push(p);
  }
  return out;
}

/** Parse a notebook's JSON; on failure, where and why (line:col of the first invalid character). */
export function notebookJson(
  text: string,
): { value?: unknown; error?: { line: number; col: number; message: string } } {
  try {
    return { value: JSON.parse(text) };
  } catch (e) {
    const found = findJsonError(text);
    if (found) {
      return {
        error: {
          ...offsetToPos(text, found.offset),
          message: `Notebook is not valid JSON: ${found.message}`,
        },
      };
    }
    const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
    return { error: { line: 1, col: 1, message: `Notebook is not valid JSON: ${msg}` } };
  }
}

async function lintWorkshop(
  w: WorkshopEntry,
  knownVars: Set<string>,
  out: Diagnostic[],
  templates: (TemplateCheck & { file: string })[],
): Promise<void> {
  const files = await listFiles(w.dir);
  const fileSet = new Set(files);
  const entry = w.value.entry ?? DEFAULT_ENTRY;
  const shown = w.file.replace(/workshop\.yaml$/, "");
  if (!fileSet.has(entry)) {
    out.push(
      err(
        wsPos(w, w.value.entry ? ["entry"] : []),
        `Entry notebook "${entry}" not found in ${shown}` +
          (w.value.entry ? "" : ` (the default entry; set "entry" to name another notebook)`),
      ),
    );
  }
  for (const [hook, path] of Object.entries(w.value.hooks ?? {})) {
    if (!path) continue;
    if (!fileSet.has(path)) {
      out.push(err(wsPos(w, ["hooks", hook]), `Hook "${hook}" file "${path}" not found in ${shown}`));
    }
  }
  const vars = [...new Set([...knownVars, ...Object.keys(w.value.vars ?? {})])];
  // Every file the backend renders (content text files, the same rule as the seat runner) is checked
  // by the same Jinja2 program that renders it (jinja_sandbox.py, called once in lintConfig).
  const rendered = new Set(await contentFiles(w.dir));
  for (const f of files) {
    const isNotebook = f.endsWith(".ipynb") && !f.startsWith("hooks/");
    if (!isNotebook && !rendered.has(f)) continue;
    const file = shown + f;
    const data = await Deno.readFile(join(w.dir, f));
    if (!isNotebook && !isTemplateText(data)) continue;
    const text = new TextDecoder().decode(data);
    if (rendered.has(f) && hasTemplateMarkers(text)) templates.push({ path: join(w.dir, f), vars, file });
    if (!isNotebook) continue;
    const parsed = notebookJson(text);
    if (parsed.error) {
      out.push({ file, ...parsed.error, severity: "error" });
      continue;
    }
    const nb = parsed.value;
    const o = nb as Record<string, unknown>;
    if (typeof o !== "object" || o === null || !Array.isArray(o.cells) || typeof o.nbformat !== "number") {
      out.push({
        file,
        line: 1,
        col: 1,
        message:
          `Notebook is not a Jupyter notebook: expected an object with "cells" (array) and "nbformat" (number)`,
        severity: "error",
      });
    }
  }
}

/**
 * Flags of the original wod.yml that wod keeps (the front end's workshop rows carry them) but does not
 * implement: `true` is refused with the reason, `false` (the feature is not wanted) is what wod does.
 * Nothing is accepted and then silently ignored.
 */
export const UNSUPPORTED_FLAGS: Record<string, string> = {
  ldap:
    "the original created the seat's account in an LDAP directory as well; wod's seats are local accounts of the backend only",
  varpass:
    "the original gave the seat a second, per-workshop password for outside systems (appliances); wod generates only the seat's own password",
  compile:
    "the original compiled a per-seat program when the seat was created; wod has no compile step (a hooks/create script can do it)",
  monoappliance:
    "the original started one appliance host per seat and passed its address to the notebooks (IP-WKSHP-* variables); wod has no appliance hosts",
  multiappliance:
    "the original started several appliance hosts per seat and passed their addresses to the notebooks (IP-WKSHP-* variables); wod has no appliance hosts",
};

/** The unsupported flags set to true in a workshop (or an original wod.yml), with their reasons. */
export function unsupportedFlags(value: Record<string, unknown>): { key: string; message: string }[] {
  return Object.entries(UNSUPPORTED_FLAGS).filter(([k]) => value[k] === true).map(([key, why]) => ({
    key,
    message: `"${key}: true" is not supported: ${why}. Remove it or set it to false`,
  }));
}

export async function lintConfig(cfg: Config): Promise<Diagnostic[]> {
  const out: Diagnostic[] = [];
  for (const w of cfg.workshops.values()) {
    for (const f of unsupportedFlags(w.value as Record<string, unknown>)) {
      out.push(err({ file: w.file, ...w.yaml.keyPos([f.key]) }, f.message));
    }
  }
  // Ids that differ only by case collide in order bodies and on case-insensitive file systems.
  const lower = new Map<string, WorkshopEntry>();
  for (const w of cfg.workshops.values()) {
    if (w.id.startsWith("CHLG-")) {
      out.push(
        err(
          wsPos(w, ["id"]),
          `Workshop id "${w.id}" is reserved: an order for ${w.id} means the challenge mode (MODEWS=CHLG) of ` +
            `"WKSHP-${w.id.slice(5)}"; name the folder WKSHP-${w.id.slice(5)}`,
        ),
      );
    }
    const k = w.id.toLowerCase();
    const prev = lower.get(k);
    if (prev) {
      out.push(
        err(
          wsPos(w, ["id"]),
          `Workshop id "${w.id}" differs only by case from "${prev.id}" (${prev.file}): ids must be unique`,
        ),
      );
    } else lower.set(k, w);
  }
  // A workshop renders with the vars of the environment that deploys it: it may use those that every
  // environment holding a range for it sets (any environment's, when none does yet).
  const allEnvVars = new Set<string>();
  for (const env of cfg.environments.values()) {
    for (const k of Object.keys(env.value.vars ?? {})) allEnvVars.add(k);
  }
  const varsFor = new Map<string, Set<string>>();
  for (const env of cfg.environments.values()) {
    const keys = new Set(Object.keys(env.value.vars ?? {}));
    for (const r of rangesOf(env)) {
      const prev = varsFor.get(r.workshop);
      varsFor.set(r.workshop, prev ? new Set([...prev].filter((k) => keys.has(k))) : keys);
    }
  }
  const knownVarsOf = (id: string) => new Set([...PLATFORM_VARS, ...(varsFor.get(id) ?? allEnvVars)]);
  for (const env of cfg.environments.values()) {
    lintEnvironment(cfg, env, out);
    lintCapacity(cfg, env, out);
  }
  const ws = [...cfg.workshops.values()];
  const CONCURRENCY = 16;
  const templates: (TemplateCheck & { file: string })[] = [];
  for (let i = 0; i < ws.length; i += CONCURRENCY) {
    await Promise.all(
      ws.slice(i, i + CONCURRENCY).map((w) => lintWorkshop(w, knownVarsOf(w.id), out, templates)),
    );
  }
  const shownAs = new Map(templates.map((t) => [t.path, t.file]));
  for (const p of await checkTemplates(templates.map(({ path, vars }) => ({ path, vars })))) {
    out.push({
      file: shownAs.get(p.path) ?? p.path,
      line: p.line,
      col: p.col,
      message: p.message,
      severity: "error",
    });
  }
  return out;
}

/** Load nothing: lint an already loaded config and return every diagnostic (loader's first). */
export async function validateConfig(cfg: Config): Promise<Diagnostic[]> {
  return [...cfg.diagnostics, ...await lintConfig(cfg)];
}
