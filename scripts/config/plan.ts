// `wod plan`: what changes between the config at a git revision and the working tree, per workshop,
// environment, backend and seat; occupied seats (recorded state) that the change would move are danger.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Config, EnvironmentEntry, WorkshopEntry } from "./load.ts";
import type { Seat } from "./types.gen.ts";

export interface WorkshopChange {
  id: string;
  kind: "added" | "removed" | "changed";
  /** Changed workshop.yaml fields: "capacity 10 -> 12". */
  fields: string[];
  /** Changed content files: "1-Intro.ipynb (changed)". */
  files: string[];
}

export interface RangeChange {
  workshop: string;
  before?: [number, number];
  after?: [number, number];
}

export interface BackendPlan {
  name: string;
  kind: "added" | "removed" | "changed" | "same";
  poolBefore?: [number, number];
  poolAfter?: [number, number];
  /** Seats reserved by ranges. */
  capacityBefore: number;
  capacityAfter: number;
  ranges: RangeChange[];
}

export interface Danger {
  env: string;
  backend: string;
  seat: number;
  status: string;
  workshop?: string;
  before: string;
  after: string;
}

export interface EnvPlan {
  name: string;
  kind: "added" | "removed" | "changed" | "same";
  backends: BackendPlan[];
}

export interface Plan {
  base: string;
  workshops: WorkshopChange[];
  environments: EnvPlan[];
  dangers: Danger[];
  /** Occupied seats of workshops whose content changed: they keep the old content until their next CREATE. */
  staleContent: { env: string; backend: string; seat: number; workshop: string }[];
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function show(v: unknown): string {
  return v === undefined ? "(unset)" : JSON.stringify(v);
}

async function hashTree(
  dir: string,
  rel = "",
  out = new Map<string, string>(),
): Promise<Map<string, string>> {
  if (!existsSync(join(dir, rel))) return out;
  for await (const e of Deno.readDir(join(dir, rel))) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) await hashTree(dir, p, out);
    else if (e.isFile && p !== "workshop.yaml") {
      out.set(p, createHash("sha256").update(await Deno.readFile(join(dir, p))).digest("hex"));
    }
  }
  return out;
}

async function diffWorkshop(a: WorkshopEntry, b: WorkshopEntry): Promise<WorkshopChange | undefined> {
  const fields: string[] = [];
  const av = a.value as unknown as Record<string, unknown>,
    bv = b.value as unknown as Record<string, unknown>;
  for (const k of [...new Set([...Object.keys(av), ...Object.keys(bv)])].sort()) {
    if (JSON.stringify(av[k]) !== JSON.stringify(bv[k])) {
      const short = (v: unknown) => {
        const s = show(v);
        return s.length > 40 ? s.slice(0, 37) + "..." : s;
      };
      fields.push(`${k} ${short(av[k])} -> ${short(bv[k])}`);
    }
  }
  const [ha, hb] = [await hashTree(a.dir), await hashTree(b.dir)];
  const files: string[] = [];
  for (const f of [...new Set([...ha.keys(), ...hb.keys()])].sort()) {
    if (!ha.has(f)) files.push(`${f} (added)`);
    else if (!hb.has(f)) files.push(`${f} (removed)`);
    else if (ha.get(f) !== hb.get(f)) files.push(`${f} (changed)`);
  }
  return fields.length || files.length ? { id: a.id, kind: "changed", fields, files } : undefined;
}

/** Who holds `seat` of `backend` in an environment: a workshop id, "unassigned", "outside the pool" or "no such backend". */
export function placement(env: EnvironmentEntry | undefined, backend: string, seat: number): string {
  if (!env) return "no such environment";
  const b = env.value.backends.find((x) => x.name === backend);
  if (!b) return "no such backend";
  if (seat < b.students[0] || seat > b.students[1]) return "outside the student pool";
  for (const [ws, [f, l]] of Object.entries(b.ranges ?? {})) if (seat >= f && seat <= l) return ws;
  return "unassigned";
}

function size(ranges: Record<string, [number, number]> | undefined): number {
  return Object.values(ranges ?? {}).reduce((n, [f, l]) => n + Math.max(0, l - f + 1), 0);
}

export async function buildPlan(
  base: Config,
  head: Config,
  baseLabel: string,
  seatsOf: (env: string) => Promise<Seat[]>,
): Promise<Plan> {
  const workshops: WorkshopChange[] = [];
  for (const id of [...new Set([...base.workshops.keys(), ...head.workshops.keys()])].sort(cmp)) {
    const a = base.workshops.get(id), b = head.workshops.get(id);
    if (!a) workshops.push({ id, kind: "added", fields: [], files: [] });
    else if (!b) workshops.push({ id, kind: "removed", fields: [], files: [] });
    else {
      const c = await diffWorkshop(a, b);
      if (c) workshops.push(c);
    }
  }
  const contentChanged = new Set(
    workshops.filter((w) => w.kind === "changed" && w.files.length).map((w) => w.id),
  );
  const environments: EnvPlan[] = [];
  const dangers: Danger[] = [];
  const staleContent: Plan["staleContent"] = [];
  for (const name of [...new Set([...base.environments.keys(), ...head.environments.keys()])].sort(cmp)) {
    const ea = base.environments.get(name), eb = head.environments.get(name);
    const backends: BackendPlan[] = [];
    const names = [
      ...new Set([
        ...(ea?.value.backends ?? []).map((b) => b.name),
        ...(eb?.value.backends ?? []).map((b) => b.name),
      ]),
    ];
    for (const bn of names) {
      const ba = ea?.value.backends.find((x) => x.name === bn),
        bb = eb?.value.backends.find((x) => x.name === bn);
      const ranges: RangeChange[] = [];
      for (
        const ws of [...new Set([...Object.keys(ba?.ranges ?? {}), ...Object.keys(bb?.ranges ?? {})])].sort(
          cmp,
        )
      ) {
        const before = ba?.ranges?.[ws], after = bb?.ranges?.[ws];
        if (JSON.stringify(before) !== JSON.stringify(after)) {
          ranges.push({
            workshop: ws,
            before: before as [number, number] | undefined,
            after: after as [number, number] | undefined,
          });
        }
      }
      const poolChanged = JSON.stringify(ba?.students) !== JSON.stringify(bb?.students);
      const other = JSON.stringify({ ...ba, ranges: undefined, students: undefined }) !==
        JSON.stringify({ ...bb, ranges: undefined, students: undefined });
      backends.push({
        name: bn,
        kind: !ba ? "added" : !bb ? "removed" : ranges.length || poolChanged || other ? "changed" : "same",
        poolBefore: ba?.students as [number, number] | undefined,
        poolAfter: bb?.students as [number, number] | undefined,
        capacityBefore: size(ba?.ranges as Record<string, [number, number]> | undefined),
        capacityAfter: size(bb?.ranges as Record<string, [number, number]> | undefined),
        ranges,
      });
    }
    const kind = !ea
      ? "added"
      : !eb
      ? "removed"
      : JSON.stringify(ea.value) === JSON.stringify(eb.value)
      ? "same"
      : "changed";
    environments.push({ name, kind, backends });
    for (const s of await seatsOf(name)) {
      if (s.status === "free") continue;
      const before = placement(ea, s.backend, s.seat), after = placement(eb, s.backend, s.seat);
      if (before !== after) {
        dangers.push({
          env: name,
          backend: s.backend,
          seat: s.seat,
          status: s.status,
          workshop: s.workshop,
          before,
          after,
        });
      } else if (s.workshop && contentChanged.has(s.workshop)) {
        staleContent.push({ env: name, backend: s.backend, seat: s.seat, workshop: s.workshop });
      }
    }
  }
  return { base: baseLabel, workshops, environments, dangers, staleContent };
}

function pair(p?: [number, number]): string {
  return p ? `[${p[0]}, ${p[1]}]` : "(none)";
}

function rangeLine(r: RangeChange): string {
  if (!r.before) return `+ ${r.workshop} ${pair(r.after)} (added)`;
  if (!r.after) return `- ${r.workshop} ${pair(r.before)} (removed)`;
  return `~ ${r.workshop} ${pair(r.before)} -> ${pair(r.after)} (moved)`;
}

function dangerLine(d: Danger): string {
  return `${d.env}/${d.backend} seat ${d.seat} (${d.status}${d.workshop ? `, ${d.workshop}` : ""}): ` +
    `held by ${d.before} at base, by ${d.after} after this change`;
}

function capacityLine(b: BackendPlan): string {
  const pool = (p?: [number, number]) => (p ? p[1] - p[0] + 1 : 0);
  const cap = b.capacityBefore === b.capacityAfter
    ? `${b.capacityAfter} seat(s) in ranges`
    : `${b.capacityBefore} -> ${b.capacityAfter} seat(s) in ranges`;
  const poolText = JSON.stringify(b.poolBefore) === JSON.stringify(b.poolAfter)
    ? `pool ${pair(b.poolAfter)}`
    : `pool ${pair(b.poolBefore)} -> ${pair(b.poolAfter)}`;
  return `${cap}, ${poolText} (${pool(b.poolAfter)} students)`;
}

export function hasChanges(p: Plan): boolean {
  return p.workshops.length > 0 || p.environments.some((e) => e.kind !== "same") || p.dangers.length > 0;
}

export function formatPlanText(p: Plan): string {
  const out: string[] = [`Plan: ${p.base} -> working tree`];
  if (!hasChanges(p)) {
    out.push("No changes.");
    return out.join("\n");
  }
  if (p.workshops.length) {
    out.push("", "Workshops:");
    for (const w of p.workshops) {
      if (w.kind === "added") out.push(`  + ${w.id} (added)`);
      else if (w.kind === "removed") out.push(`  - ${w.id} (removed)`);
      else {
        out.push(`  ~ ${w.id} (changed)`);
        for (const f of w.fields) out.push(`      ${f}`);
        for (const f of w.files) out.push(`      content: ${f}`);
      }
    }
  }
  for (const e of p.environments) {
    if (e.kind === "same") continue;
    out.push("", `Environment ${e.name} (${e.kind}):`);
    for (const b of e.backends) {
      if (b.kind === "same") continue;
      out.push(`  backend ${b.name} (${b.kind}): ${capacityLine(b)}`);
      for (const r of b.ranges) out.push(`    ${rangeLine(r)}`);
    }
  }
  if (p.staleContent.length) {
    out.push(
      "",
      `Note: ${p.staleContent.length} occupied seat(s) keep their current content until their next CREATE:`,
    );
    for (const s of p.staleContent) out.push(`  ${s.env}/${s.backend} seat ${s.seat} (${s.workshop})`);
  }
  if (p.dangers.length) {
    out.push("", `DANGER: ${p.dangers.length} occupied seat(s) would be affected:`);
    for (const d of p.dangers) out.push(`  ${dangerLine(d)}`);
  }
  return out.join("\n");
}

export function formatPlanMarkdown(p: Plan): string {
  const out: string[] = [`### wod plan: \`${p.base}\` → working tree`, ""];
  if (!hasChanges(p)) {
    out.push("No changes.");
    return out.join("\n");
  }
  if (p.dangers.length) {
    out.push(`> [!CAUTION]`, `> **${p.dangers.length} occupied seat(s) would be affected.**`, "");
    out.push(
      "| environment | backend | seat | status | workshop | at base | after |",
      "|---|---|---|---|---|---|---|",
    );
    for (const d of p.dangers) {
      out.push(
        `| ${d.env} | ${d.backend} | ${d.seat} | ${d.status} | ${
          d.workshop ?? ""
        } | ${d.before} | ${d.after} |`,
      );
    }
    out.push("");
  }
  if (p.workshops.length) {
    out.push("#### Workshops", "", "| workshop | change | details |", "|---|---|---|");
    for (const w of p.workshops) {
      const details = [...w.fields, ...w.files.map((f) => `content: ${f}`)].join("<br>").replace(
        /\|/g,
        "\\|",
      );
      out.push(`| \`${w.id}\` | ${w.kind} | ${details} |`);
    }
    out.push("");
  }
  for (const e of p.environments) {
    if (e.kind === "same") continue;
    out.push(
      `#### Environment \`${e.name}\` (${e.kind})`,
      "",
      "| backend | change | capacity | ranges |",
      "|---|---|---|---|",
    );
    for (const b of e.backends) {
      if (b.kind === "same") continue;
      out.push(`| ${b.name} | ${b.kind} | ${capacityLine(b)} | ${b.ranges.map(rangeLine).join("<br>")} |`);
    }
    out.push("");
  }
  if (p.staleContent.length) {
    out.push(
      `${p.staleContent.length} occupied seat(s) keep their current content until their next CREATE: ` +
        p.staleContent.map((s) => `${s.env}/${s.backend} seat ${s.seat} (${s.workshop})`).join(", "),
    );
  }
  return out.join("\n").trimEnd();
}
