// The effective (merged public + private) config as a flat list of values, each with its source.
import type { Config, Layer } from "./load.ts";
import type { PathSeg } from "./yaml.ts";

export interface EffectiveValue {
  /** Dotted path, e.g. environments.local.backends[jup1].students */
  path: string;
  value: unknown;
  file: string;
  line: number;
  col: number;
  layer: Layer;
}

function isLeaf(v: unknown): boolean {
  return v === null || typeof v !== "object" ||
    (Array.isArray(v) && v.every((x) => x === null || typeof x !== "object"));
}

function walk(
  v: unknown,
  segs: PathSeg[],
  label: string,
  emit: (segs: PathSeg[], label: string, v: unknown) => void,
): void {
  if (isLeaf(v)) return emit(segs, label, v);
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      const name = x && typeof x === "object" && typeof (x as { name?: unknown }).name === "string"
        ? (x as { name: string }).name
        : String(i);
      walk(x, [...segs, i], `${label}[${name}]`, emit);
    });
    return;
  }
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    walk(x, [...segs, k], `${label}.${k}`, emit);
  }
}

export function effectiveValues(cfg: Config, only?: { env?: string; workshop?: string }): EffectiveValue[] {
  const out: EffectiveValue[] = [];
  const envs = [...cfg.environments.values()].filter((e) => !only?.env || e.name === only.env);
  const wss = [...cfg.workshops.values()].filter((w) => !only?.workshop || w.id === only.workshop);
  if (!only?.workshop || only.env) {
    for (const e of envs.sort((a, b) => a.name.localeCompare(b.name))) {
      walk(e.value, [], `environments.${e.name}`, (segs, path, value) => {
        const s = e.source(segs);
        out.push({ path, value, file: s.file, line: s.line, col: s.col, layer: s.layer });
      });
    }
  }
  if (!only?.env || only.workshop) {
    for (const w of wss.sort((a, b) => a.id.localeCompare(b.id))) {
      walk(w.value, [], `workshops.${w.id}`, (segs, path, value) => {
        const p = w.yaml.pos(segs);
        out.push({ path, value, file: w.file, line: p.line, col: p.col, layer: w.layer });
      });
    }
  }
  return out;
}
