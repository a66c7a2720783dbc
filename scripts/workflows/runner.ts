// A local runner for our workflows: runs each job's `run:` steps in order, as GitHub's runner
// does, with GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH, GITHUB_STEP_SUMMARY and GITHUB_EVENT_PATH set
// up for a sample event, evaluating the `${{ }}` expressions of env:, with:, if:, outputs:,
// concurrency:, run-name and matrix. `actions/checkout` is simulated (the workspace is already a
// checkout); other `uses:` steps (toolchain setup) are skipped. Secrets and `::add-mask::` values
// are masked in logs and summaries; a step that writes a secret-looking output or env value
// without masking it first fails, as the project's rules require.
import { parse as parseYamlText } from "yaml";
import { join } from "node:path";
import { WodError } from "../common/errors.ts";
import { childEnv, DENO_CHILD_INHERIT, exec } from "../common/exec.ts";
import { redactText } from "../common/log.ts";
import {
  evaluateCondition,
  evaluateTemplate,
  type ExprContext,
  interpolate,
  toText,
  type Value,
} from "./expr.ts";
import { SECRET_NAME } from "./rules.ts";

export interface WorkflowEvent {
  name: string;
  payload: Record<string, unknown>;
}

export interface StepInfo {
  index: number;
  id?: string;
  name: string;
  run?: string;
  uses?: string;
}

export interface RunnerOptions {
  /** The workflow file to run (absolute path). */
  workflow: string;
  /** The checkout the steps run in (GITHUB_WORKSPACE). */
  workspace: string;
  event: WorkflowEvent;
  /** Directory for RUNNER_TEMP and the step files (the caller removes it). */
  tempDir: string;
  /** Run only these jobs (others count as skipped). */
  jobs?: string[];
  secrets?: Record<string, string>;
  vars?: Record<string, string>;
  /** Base process environment; default: this process's environment without GITHUB_* and WOD_ROOT. */
  env?: Record<string, string>;
  repository?: string;
  sha?: string;
  ref?: string;
  actor?: string;
  apiUrl?: string;
  /** Return a reason to skip a step (e.g. a command that does not exist yet). */
  skip?: (job: string, step: StepInfo) => string | undefined;
  log?: (line: string) => void;
}

export interface Annotation {
  level: "error" | "warning" | "notice";
  message: string;
  props: Record<string, string>;
}

export interface StepResult extends StepInfo {
  outcome: "success" | "failure" | "skipped";
  conclusion: "success" | "failure" | "skipped";
  skipReason?: string;
  code?: number;
  outputs: Record<string, string>;
  log: string;
  annotations: Annotation[];
  seconds: number;
}

export interface JobResult {
  id: string;
  matrix?: Record<string, Value>;
  result: "success" | "failure" | "skipped";
  environment?: string;
  concurrency?: { group: string; cancelInProgress: boolean };
  steps: StepResult[];
  outputs: Record<string, string>;
  summary: string;
}

export interface RunResult {
  runName: string;
  concurrency?: { group: string; cancelInProgress: boolean };
  jobs: JobResult[];
  /** Secret values (or ::add-mask:: values) found unmasked in a summary or output: must be empty. */
  leaks: string[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Parse `name=value` and `name<<DELIM` blocks (the GITHUB_OUTPUT / GITHUB_ENV file format). */
export function parseCommandFile(text: string, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, "");
    if (line === "") continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    const eq = line.indexOf("=");
    if (heredoc && (eq < 0 || eq > line.indexOf("<<"))) {
      const delim = heredoc[2];
      const body: string[] = [];
      i++;
      while (i < lines.length && lines[i].replace(/\r$/, "") !== delim) body.push(lines[i++]);
      if (i >= lines.length) {
        throw new WodError(`${what}: delimiter "${delim}" of "${heredoc[1]}" never closes`);
      }
      out[heredoc[1]] = body.join("\n");
    } else if (eq > 0) {
      out[line.slice(0, eq)] = line.slice(eq + 1);
    } else {
      throw new WodError(
        `${what}: line ${i + 1} is neither name=value nor name<<DELIMITER: ${JSON.stringify(line)}`,
      );
    }
  }
  return out;
}

function parseCommand(
  line: string,
): { cmd: string; props: Record<string, string>; value: string } | undefined {
  const m = /^::([a-z-]+)( [^:]*)?::(.*)$/.exec(line);
  if (!m) return undefined;
  const props: Record<string, string> = {};
  for (const kv of (m[2] ?? "").trim().split(",").filter(Boolean)) {
    const at = kv.indexOf("=");
    if (at > 0) {
      props[kv.slice(0, at).trim()] = decodeURIComponent(
        kv.slice(at + 1).replace(/%(?![0-9A-F]{2})/g, "%25"),
      );
    }
  }
  const value = m[3].replace(/%0A/g, "\n").replace(/%0D/g, "\r").replace(/%25/g, "%");
  return { cmd: m[1], props, value };
}

function cross(matrix: Record<string, Value[]>): Record<string, Value>[] {
  let combos: Record<string, Value>[] = [{}];
  for (const [k, vals] of Object.entries(matrix)) {
    combos = combos.flatMap((c) => vals.map((v) => ({ ...c, [k]: v })));
  }
  return combos;
}

/** The ids of the jobs `job` needs (`needs:` as a string or a list). */
function jobNeeds(job: Obj): string[] {
  return typeof job.needs === "string" ? [job.needs] : Array.isArray(job.needs) ? job.needs.map(String) : [];
}

function topoOrder(jobs: Obj): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (id: string, stack: string[]) => {
    if (seen.has(id)) return;
    if (stack.includes(id)) throw new WodError(`Job dependency cycle: ${[...stack, id].join(" -> ")}`);
    const job = jobs[id];
    if (!isObj(job)) throw new WodError(`Job "${id}" is needed by "${stack.at(-1)}" but does not exist`);
    for (const n of jobNeeds(job)) visit(n, [...stack, id]);
    seen.add(id);
    order.push(id);
  };
  for (const id of Object.keys(jobs)) visit(id, []);
  return order;
}

/** What a step gets from this machine: PATH, HOME, locale and the sandbox's location, no secret of ours. */
function baseEnv(): Record<string, string> {
  return childEnv({ inherit: DENO_CHILD_INHERIT });
}

async function readText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return "";
  }
}

/** Secret values and `::add-mask::` values: masked in logs and summaries, reported when they leak. */
class Masks {
  readonly values = new Set<string>();
  readonly leaks: string[] = [];
  add(v: string): void {
    for (const part of [v, ...v.split("\n")]) if (part.trim().length >= 3) this.values.add(part);
  }
  has(v: string): boolean {
    return this.values.has(v);
  }
  mask(text: string): string {
    return redactText(text, this.values);
  }
  checkLeak(text: string, where: string): void {
    for (const m of this.values) if (text.includes(m)) this.leaks.push(`${where} contains a masked value`);
  }
}

/** What every job of one run shares: the options, the parsed workflow, its contexts and masks. */
interface Run {
  opts: RunnerOptions;
  wf: Obj;
  log: (line: string) => void;
  secrets: Record<string, string>;
  masks: Masks;
  inputs: Record<string, Value>;
  vars: Record<string, Value>;
  github: Record<string, Value>;
  repository: string;
  eventPath: string;
  /** The process environment the steps start from. */
  base: Record<string, string>;
  /** Finished jobs: result and outputs (the `needs` context). */
  needsCtx: Record<string, { result: string; outputs: Record<string, string> }>;
}

/**
 * The `inputs` of a workflow_dispatch event, checked against the workflow's declarations the way
 * GitHub checks them (unknown input: 422; required, choice options, boolean), and written back into
 * the event payload as text.
 */
function dispatchInputs(wf: Obj, payload: Obj, workflow: string): Record<string, Value> {
  const on = isObj(wf.on) ? wf.on : {};
  const inputs: Record<string, Value> = {};
  const defs = isObj(on.workflow_dispatch) && isObj(on.workflow_dispatch.inputs)
    ? on.workflow_dispatch.inputs
    : {};
  const given = isObj(payload.inputs) ? payload.inputs : {};
  const unexpected = Object.keys(given).filter((k) => !(k in defs));
  if (unexpected.length) {
    // What GitHub answers a workflow_dispatch with inputs the workflow does not declare (HTTP 422).
    throw new WodError(
      `Unexpected inputs provided: ${JSON.stringify(unexpected)} (${workflow} declares ${
        JSON.stringify(Object.keys(defs))
      })`,
    );
  }
  for (const [name, def] of Object.entries(defs)) {
    const d = isObj(def) ? def : {};
    const raw = name in given ? given[name] : d.default;
    if (raw === undefined && d.required === true) {
      throw new WodError(`Input "${name}" of ${workflow} is required but the event does not give it`);
    }
    if (d.type === "choice" && raw !== undefined && !(d.options as unknown[] ?? []).includes(raw)) {
      throw new WodError(
        `Input "${name}" is "${raw}", not one of its options ${JSON.stringify(d.options)}`,
      );
    }
    inputs[name] = d.type === "boolean"
      ? raw === true || raw === "true"
      : raw === undefined
      ? ""
      : String(raw);
  }
  payload.inputs = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, toText(v)]));
  return inputs;
}

/** The `github` expression context of the run. */
function githubContext(
  opts: RunnerOptions,
  wf: Obj,
  payload: Obj,
  eventPath: string,
  token: string,
): Record<string, Value> {
  const repository = opts.repository ?? "wod/wod";
  const pr = isObj(payload.pull_request) ? payload.pull_request : undefined;
  return {
    event_name: opts.event.name,
    event: payload as Value,
    event_path: eventPath,
    sha: opts.sha ?? (isObj(pr?.head) ? String(pr.head.sha ?? "") : ""),
    ref: opts.ref ?? (pr ? `refs/pull/${pr.number}/merge` : "refs/heads/main"),
    ref_name: (opts.ref ?? "refs/heads/main").replace(/^refs\/heads\//, ""),
    base_ref: pr && isObj(pr.base) ? String(pr.base.ref ?? "") : "",
    head_ref: pr && isObj(pr.head) ? String(pr.head.ref ?? "") : "",
    repository,
    repository_owner: repository.split("/")[0],
    actor: opts.actor ?? "octocat",
    workflow: String(wf.name ?? opts.workflow),
    run_id: "1",
    run_number: "1",
    run_attempt: "1",
    workspace: opts.workspace,
    server_url: "https://github.com",
    api_url: opts.apiUrl ?? "https://api.github.com",
    token,
    job: "",
  };
}

/** A `concurrency:` value (string or mapping) evaluated in `ctx`. */
function concurrencyOf(
  c: unknown,
  ctx: ExprContext,
): { group: string; cancelInProgress: boolean } | undefined {
  if (c === undefined) return undefined;
  if (typeof c === "string") return { group: toText(evaluateTemplate(c, ctx)), cancelInProgress: false };
  if (!isObj(c)) return undefined;
  const cip = c["cancel-in-progress"];
  return {
    group: toText(evaluateTemplate(String(c.group ?? ""), ctx)),
    cancelInProgress: typeof cip === "string" ? toText(evaluateTemplate(cip, ctx)) === "true" : cip === true,
  };
}

/** The `needs` expression context: each needed job's result and outputs ("skipped" when it did not run). */
function needsContext(run: Run, needs: string[]): Record<string, Value> {
  return Object.fromEntries(
    needs.map((n) => [n, (run.needsCtx[n] ?? { result: "skipped", outputs: {} }) as unknown as Value]),
  );
}

/** The event file, the run's contexts and its masks, from the options and the parsed workflow. */
async function startRun(opts: RunnerOptions, wf: Obj): Promise<Run> {
  const secrets: Record<string, string> = { GITHUB_TOKEN: "ghs_local_runner_token", ...opts.secrets };
  const masks = new Masks();
  for (const v of Object.values(secrets)) if (v) masks.add(v);
  await Deno.mkdir(opts.tempDir, { recursive: true });
  const eventPath = join(opts.tempDir, "event.json");
  const payload = structuredClone(opts.event.payload) as Obj;
  const inputs = opts.event.name === "workflow_dispatch" ? dispatchInputs(wf, payload, opts.workflow) : {};
  await Deno.writeTextFile(eventPath, JSON.stringify(payload, null, 2));
  const github = githubContext(opts, wf, payload, eventPath, secrets.GITHUB_TOKEN);
  return {
    opts,
    wf,
    log: opts.log ?? (() => {}),
    secrets,
    masks,
    inputs,
    vars: { ...opts.vars },
    github,
    repository: String(github.repository),
    eventPath,
    base: opts.env ?? baseEnv(),
    needsCtx: {},
  };
}

/** The matrix combinations of a job (one empty combination without a matrix). */
function matrixCombos(jobId: string, job: Obj, ctx: ExprContext): Record<string, Value>[] {
  const strategy = isObj(job.strategy) ? job.strategy : undefined;
  if (!strategy || strategy.matrix === undefined) return [{}];
  const m = typeof strategy.matrix === "string"
    ? evaluateTemplate(strategy.matrix, ctx)
    : strategy.matrix as Value;
  if (!isObj(m)) throw new WodError(`Job "${jobId}": strategy.matrix is not a mapping`);
  const lists: Record<string, Value[]> = {};
  for (const [k, v] of Object.entries(m)) {
    if (k === "include" || k === "exclude") {
      throw new WodError(`Job "${jobId}": matrix ${k} is not supported by the local runner`);
    }
    const val = typeof v === "string" ? evaluateTemplate(v, ctx) : v as Value;
    if (!Array.isArray(val)) {
      throw new WodError(`Job "${jobId}": matrix.${k} is not a list (${JSON.stringify(val)})`);
    }
    lists[k] = val;
  }
  return cross(lists);
}

export async function runWorkflow(opts: RunnerOptions): Promise<RunResult> {
  const wf = parseYamlText(await Deno.readTextFile(opts.workflow)) as Obj;
  if (!isObj(wf) || !isObj(wf.jobs)) throw new WodError(`${opts.workflow} has no jobs: mapping`);
  const run = await startRun(opts, wf);
  const { github, inputs, vars, secrets, log } = run;
  const topCtx: ExprContext = { contexts: { github, inputs, vars, env: {}, secrets } };
  const runName = typeof wf["run-name"] === "string"
    ? interpolate(wf["run-name"], topCtx)
    : String(wf.name ?? "");
  const result: RunResult = {
    runName,
    concurrency: concurrencyOf(wf.concurrency, topCtx),
    jobs: [],
    leaks: run.masks.leaks,
  };
  const jobs = wf.jobs as Obj;
  let jobSeq = 0;
  for (const jobId of topoOrder(jobs)) {
    const job = jobs[jobId] as Obj;
    const needs = jobNeeds(job);
    const depsOk = needs.every((n) => run.needsCtx[n]?.result === "success");
    const depsFailed = needs.some((n) => run.needsCtx[n]?.result === "failure");
    const jobCtx: ExprContext = {
      contexts: {
        github: { ...github, job: jobId },
        inputs,
        vars,
        secrets,
        needs: needsContext(run, needs),
        matrix: {},
        env: {},
        runner: { os: "Linux", arch: "X64", temp: "", name: "local" },
      },
      status: depsFailed ? "failure" : "success",
    };
    const skipJob = (why: string) => {
      log(`[${jobId}] skipped: ${why}`);
      run.needsCtx[jobId] = { result: "skipped", outputs: {} };
      result.jobs.push({ id: jobId, result: "skipped", steps: [], outputs: {}, summary: "" });
    };
    if (opts.jobs && !opts.jobs.includes(jobId)) {
      skipJob("not selected");
      continue;
    }
    const cond = job.if as string | boolean | undefined;
    const usesStatus = typeof cond === "string" && /\b(always|failure|cancelled)\s*\(/.test(cond);
    if ((!depsOk && !usesStatus) || !evaluateCondition(cond, jobCtx)) {
      skipJob(depsOk ? `if: ${cond}` : "a needed job did not succeed");
      continue;
    }
    const instances: JobResult[] = [];
    for (const matrix of matrixCombos(jobId, job, jobCtx)) {
      const jr = await runJob(run, jobId, job, matrix, ++jobSeq);
      instances.push(jr);
      result.jobs.push(jr);
    }
    const failed = instances.some((j) => j.result === "failure");
    run.needsCtx[jobId] = {
      result: instances.length === 0 ? "skipped" : failed ? "failure" : "success",
      outputs: Object.assign({}, ...instances.map((j) => j.outputs)),
    };
  }
  return result;
}

/** One job instance (one matrix combination) while its steps run. */
interface Job {
  run: Run;
  id: string;
  job: Obj;
  matrix: Record<string, Value>;
  /** The job's own directory (step scripts and command files) and its RUNNER_TEMP. */
  dir: string;
  runnerTemp: string;
  /** The job and matrix, for log lines. */
  label: string;
  needs: Record<string, Value>;
  stepsCtx: Record<string, Value>;
  /** GITHUB_ENV and GITHUB_PATH additions of earlier steps. */
  envAdded: Record<string, string>;
  pathAdded: string[];
  status: "success" | "failure";
  /** `defaults.run` of the job, else of the workflow. */
  defaults: Obj;
}

/** The expression context of a step (or of the job's own keys) with `env`. */
function stepContext(j: Job, env: Record<string, Value>): ExprContext {
  const { github, inputs, vars, secrets } = j.run;
  return {
    contexts: {
      github: { ...github, job: j.id },
      inputs,
      vars,
      secrets,
      needs: j.needs,
      matrix: j.matrix,
      steps: j.stepsCtx,
      env,
      job: { status: j.status },
      runner: { os: "Linux", arch: "X64", temp: j.runnerTemp, name: "local" },
      strategy: { "fail-fast": false, "job-index": 0, "job-total": 1 },
    },
    status: j.status,
  };
}

/** Evaluates an `env:` mapping into `into`, each value seeing the ones before it. */
function evalEnv(j: Job, raw: unknown, into: Record<string, Value>): Record<string, Value> {
  if (!isObj(raw)) return into;
  for (const [k, v] of Object.entries(raw)) {
    into[k] = toText(evaluateTemplate(String(v), stepContext(j, into)));
  }
  return into;
}

async function runJob(
  run: Run,
  jobId: string,
  job: Obj,
  matrix: Record<string, Value>,
  seq: number,
): Promise<JobResult> {
  const { wf, opts } = run;
  const dir = join(opts.tempDir, `job-${seq}-${jobId}`);
  const runnerTemp = join(dir, "temp");
  await Deno.mkdir(runnerTemp, { recursive: true });
  const j: Job = {
    run,
    id: jobId,
    job,
    matrix,
    dir,
    runnerTemp,
    label: `${jobId}${
      Object.keys(matrix).length ? ` (${Object.values(matrix).map(toText).join(", ")})` : ""
    }`,
    needs: needsContext(run, jobNeeds(job)),
    stepsCtx: {},
    envAdded: {},
    pathAdded: [],
    status: "success",
    defaults: (isObj(job.defaults) && isObj(job.defaults.run) ? job.defaults.run : undefined) ??
      (isObj(wf.defaults) && isObj(wf.defaults.run) ? wf.defaults.run : {}),
  };
  const wfEnv = evalEnv(j, isObj(wf.env) ? wf.env : {}, {});
  const jobEnv = evalEnv(j, job.env, { ...wfEnv });
  const environment = job.environment === undefined ? undefined : toText(evaluateTemplate(
    String(isObj(job.environment) ? job.environment.name : job.environment),
    stepContext(j, jobEnv),
  ));
  const jr: JobResult = {
    id: jobId,
    matrix: Object.keys(matrix).length ? matrix : undefined,
    result: "success",
    environment,
    concurrency: concurrencyOf(job.concurrency, stepContext(j, jobEnv)),
    steps: [],
    outputs: {},
    summary: "",
  };
  const steps = Array.isArray(job.steps) ? job.steps as Obj[] : [];
  for (let i = 0; i < steps.length; i++) {
    const sr = await runStep(j, jr, steps[i], i, evalEnv(j, steps[i].env, { ...jobEnv, ...j.envAdded }));
    if (sr.id) j.stepsCtx[sr.id] = { outcome: sr.outcome, conclusion: sr.conclusion, outputs: sr.outputs };
  }
  jr.result = j.status;
  if (isObj(job.outputs)) {
    for (const [k, v] of Object.entries(job.outputs)) {
      jr.outputs[k] = toText(evaluateTemplate(String(v), stepContext(j, jobEnv)));
    }
  }
  return jr;
}

/** Runs (or skips) step `i` of the job; adds its result to `jr` and its summary to the job's. */
async function runStep(
  j: Job,
  jr: JobResult,
  step: Obj,
  i: number,
  env: Record<string, Value>,
): Promise<StepResult> {
  const { opts, log } = j.run;
  const info: StepInfo = {
    index: i,
    id: typeof step.id === "string" ? step.id : undefined,
    name: typeof step.name === "string"
      ? interpolate(step.name, stepContext(j, env))
      : typeof step.uses === "string"
      ? `Run ${step.uses.split("@")[0]}`
      : `Run ${String(step.run ?? "").split("\n")[0]}`,
    run: typeof step.run === "string" ? step.run : undefined,
    uses: typeof step.uses === "string" ? step.uses : undefined,
  };
  const sr: StepResult = {
    ...info,
    outcome: "skipped",
    conclusion: "skipped",
    outputs: {},
    log: "",
    annotations: [],
    seconds: 0,
  };
  jr.steps.push(sr);
  if (!evaluateCondition(step.if as string | boolean | undefined, stepContext(j, env))) {
    sr.skipReason = `if: ${step.if ?? "success()"} is false`;
    log(`[${j.label}] skip "${info.name}": ${sr.skipReason}`);
    return sr;
  }
  const reason = opts.skip?.(j.id, info);
  if (reason) {
    sr.skipReason = reason;
    log(`[${j.label}] skip "${info.name}": ${reason}`);
    return sr;
  }
  if (info.uses) {
    if (/^actions\/checkout@/.test(info.uses)) {
      sr.outcome = sr.conclusion = "success";
      sr.log = `checkout simulated: ${opts.workspace} is the checkout`;
    } else {
      sr.skipReason = `action ${info.uses} is not run by the local runner`;
    }
    log(`[${j.label}] ${info.name}: ${sr.log || sr.skipReason}`);
    return sr;
  }
  const started = performance.now();
  const files = {
    GITHUB_OUTPUT: join(j.dir, `output-${i}`),
    GITHUB_ENV: join(j.dir, `env-${i}`),
    GITHUB_PATH: join(j.dir, `path-${i}`),
    GITHUB_STEP_SUMMARY: join(j.dir, `summary-${i}`),
  };
  for (const f of Object.values(files)) await Deno.writeTextFile(f, "");
  const script = join(j.dir, `step-${i}.sh`);
  await Deno.writeTextFile(script, interpolate(info.run ?? "", stepContext(j, env)));
  const shell = String(step.shell ?? j.defaults.shell ?? "bash");
  const argv = shell === "bash"
    ? ["bash", "--noprofile", "--norc", "-eo", "pipefail", script]
    : shell === "sh"
    ? ["sh", "-e", script]
    : shell.includes("{0}")
    ? shell.split(/\s+/).map((a) => a.replace("{0}", script))
    : (() => {
      throw new WodError(`Step "${info.name}" of job "${j.id}": shell "${shell}" is not supported`);
    })();
  const wd = typeof step["working-directory"] === "string"
    ? join(opts.workspace, interpolate(step["working-directory"], stepContext(j, env)))
    : typeof j.defaults["working-directory"] === "string"
    ? join(opts.workspace, String(j.defaults["working-directory"]))
    : opts.workspace;
  log(`[${j.label}] run "${info.name}"`);
  const out = await spawnStep(
    argv,
    wd,
    stepProcessEnv(j, info, env, files),
    Number(step["timeout-minutes"] ?? 0),
  );
  sr.code = out.code;
  sr.log = readWorkflowCommands(j.run.masks, sr, out.stdout, out.stderr);
  sr.outcome = out.code === 0 ? "success" : "failure";
  await readStepFiles(j, info, sr, files);
  const summary = await readText(files.GITHUB_STEP_SUMMARY);
  j.run.masks.checkLeak(summary, `summary of step "${info.name}"`);
  for (const [k, v] of Object.entries(sr.outputs)) {
    j.run.masks.checkLeak(v, `output ${k} of step "${info.name}"`);
  }
  if (summary) jr.summary += j.run.masks.mask(summary.endsWith("\n") ? summary : summary + "\n");
  sr.conclusion = sr.outcome === "failure" && step["continue-on-error"] === true ? "success" : sr.outcome;
  if (sr.conclusion === "failure") j.status = "failure";
  sr.seconds = Math.round((performance.now() - started) / 100) / 10;
  log(`[${j.label}] ${sr.outcome} "${info.name}" (exit ${out.code}, ${sr.seconds} s)`);
  if (sr.outcome === "failure") log(sr.log.split("\n").slice(-15).map((l) => `    ${l}`).join("\n"));
  return sr;
}

/** The environment a `run:` step's process gets: the base, the step's env:, GITHUB_* and the command files. */
function stepProcessEnv(
  j: Job,
  info: StepInfo,
  env: Record<string, Value>,
  files: Record<string, string>,
): Record<string, string> {
  const { github, opts, base } = j.run;
  const procEnv: Record<string, string> = {
    ...base,
    ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, toText(v)])),
    ...j.envAdded,
    CI: "true",
    GITHUB_ACTIONS: "true",
    GITHUB_WORKFLOW: String(github.workflow),
    GITHUB_RUN_ID: "1",
    GITHUB_RUN_NUMBER: "1",
    GITHUB_RUN_ATTEMPT: "1",
    GITHUB_JOB: j.id,
    GITHUB_ACTION: info.id ?? `__run_${info.index}`,
    GITHUB_ACTOR: String(github.actor),
    GITHUB_REPOSITORY: j.run.repository,
    GITHUB_REPOSITORY_OWNER: String(github.repository_owner),
    GITHUB_EVENT_NAME: opts.event.name,
    GITHUB_EVENT_PATH: j.run.eventPath,
    GITHUB_WORKSPACE: opts.workspace,
    GITHUB_SHA: String(github.sha),
    GITHUB_REF: String(github.ref),
    GITHUB_BASE_REF: String(github.base_ref),
    GITHUB_HEAD_REF: String(github.head_ref),
    GITHUB_SERVER_URL: String(github.server_url),
    GITHUB_API_URL: String(github.api_url),
    RUNNER_OS: "Linux",
    RUNNER_TEMP: j.runnerTemp,
    ...files,
  };
  procEnv.PATH = [...j.pathAdded.slice().reverse(), procEnv.PATH ?? base.PATH ?? "/usr/bin:/bin"].join(":");
  return procEnv;
}

/** Runs one step's script with exactly `env`, killed after `timeoutMin` minutes (0: no limit). */
async function spawnStep(
  argv: string[],
  cwd: string,
  env: Record<string, string>,
  timeoutMin: number,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await exec(argv[0], argv.slice(1), {
    cwd,
    env,
    bare: true,
    allowFailure: true,
    timeoutMs: timeoutMin > 0 ? timeoutMin * 60_000 : undefined,
  });
  return { code: out.code, stdout: out.stdout, stderr: out.stderr };
}

/**
 * The step's log as shown: `::add-mask::` values join the masks (and are hidden), `::error::`,
 * `::warning::` and `::notice::` become annotations, every masked value becomes `***`.
 */
function readWorkflowCommands(masks: Masks, sr: StepResult, stdout: string, stderr: string): string {
  const shown: string[] = [];
  for (const line of stdout.split("\n")) {
    const c = parseCommand(line);
    if (c?.cmd === "add-mask") {
      masks.add(c.value);
      shown.push("::add-mask::***");
      continue;
    }
    if (c && (c.cmd === "error" || c.cmd === "warning" || c.cmd === "notice")) {
      sr.annotations.push({ level: c.cmd, message: masks.mask(c.value), props: c.props });
    }
    shown.push(line);
  }
  return masks.mask(shown.join("\n").trimEnd() + (stderr.trim() ? `\n${stderr.trimEnd()}` : ""));
}

/**
 * The step's command files: GITHUB_OUTPUT (its outputs), GITHUB_ENV and GITHUB_PATH (for the next
 * steps). A secret-looking output or env value that was not masked first fails the step (rule
 * mask-secrets), as does a malformed file.
 */
async function readStepFiles(
  j: Job,
  info: StepInfo,
  sr: StepResult,
  files: Record<string, string>,
): Promise<void> {
  try {
    sr.outputs = parseCommandFile(await readText(files.GITHUB_OUTPUT), `GITHUB_OUTPUT of "${info.name}"`);
    const newEnv = parseCommandFile(await readText(files.GITHUB_ENV), `GITHUB_ENV of "${info.name}"`);
    for (const [k, v] of [...Object.entries(sr.outputs), ...Object.entries(newEnv)]) {
      if (
        SECRET_NAME.test(k) && !/_(FILE|PATH|DIR|URL)$/i.test(k) && v.trim() !== "" && !j.run.masks.has(v)
      ) {
        sr.outcome = "failure";
        sr.annotations.push({
          level: "error",
          message: `Step "${info.name}" wrote "${k}" without ::add-mask:: first (rule: mask-secrets)`,
          props: {},
        });
      }
    }
    Object.assign(j.envAdded, newEnv);
    for (const p of (await readText(files.GITHUB_PATH)).split("\n")) {
      if (p.trim()) j.pathAdded.push(p.trim());
    }
  } catch (err) {
    sr.outcome = "failure";
    sr.annotations.push({
      level: "error",
      message: String(err instanceof Error ? err.message : err),
      props: {},
    });
  }
}
