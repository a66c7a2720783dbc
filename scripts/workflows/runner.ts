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

export async function runWorkflow(opts: RunnerOptions): Promise<RunResult> {
  const wf = parseYamlText(await Deno.readTextFile(opts.workflow)) as Obj;
  if (!isObj(wf) || !isObj(wf.jobs)) throw new WodError(`${opts.workflow} has no jobs: mapping`);
  const log = opts.log ?? (() => {});
  const secrets: Record<string, string> = { GITHUB_TOKEN: "ghs_local_runner_token", ...opts.secrets };
  const masks = new Set<string>();
  const addMask = (v: string) => {
    for (const part of [v, ...v.split("\n")]) if (part.trim().length >= 3) masks.add(part);
  };
  for (const v of Object.values(secrets)) if (v) addMask(v);
  const mask = (text: string) => {
    let out = text;
    for (const m of [...masks].sort((a, b) => b.length - a.length)) out = out.split(m).join("***");
    return out;
  };
  const leaks: string[] = [];
  const checkLeak = (text: string, where: string) => {
    for (const m of masks) if (text.includes(m)) leaks.push(`${where} contains a masked value`);
  };

  // Event file and contexts.
  await Deno.mkdir(opts.tempDir, { recursive: true });
  const eventPath = join(opts.tempDir, "event.json");
  const payload = structuredClone(opts.event.payload) as Obj;
  const on = isObj(wf.on) ? wf.on : {};
  const inputs: Record<string, Value> = {};
  if (opts.event.name === "workflow_dispatch") {
    const defs = isObj(on.workflow_dispatch) && isObj(on.workflow_dispatch.inputs)
      ? on.workflow_dispatch.inputs
      : {};
    const given = isObj(payload.inputs) ? payload.inputs : {};
    const unexpected = Object.keys(given).filter((k) => !(k in defs));
    if (unexpected.length) {
      // What GitHub answers a workflow_dispatch with inputs the workflow does not declare (HTTP 422).
      throw new WodError(
        `Unexpected inputs provided: ${JSON.stringify(unexpected)} (${opts.workflow} declares ${
          JSON.stringify(Object.keys(defs))
        })`,
      );
    }
    for (const [name, def] of Object.entries(defs)) {
      const d = isObj(def) ? def : {};
      const raw = name in given ? given[name] : d.default;
      if (raw === undefined && d.required === true) {
        throw new WodError(`Input "${name}" of ${opts.workflow} is required but the event does not give it`);
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
  }
  await Deno.writeTextFile(eventPath, JSON.stringify(payload, null, 2));
  const repository = opts.repository ?? "wod/wod";
  const pr = isObj(payload.pull_request) ? payload.pull_request : undefined;
  const github: Record<string, Value> = {
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
    token: secrets.GITHUB_TOKEN,
    job: "",
  };
  const vars: Record<string, Value> = { ...opts.vars };
  const base = opts.env ?? baseEnv();
  const wfEnvRaw = isObj(wf.env) ? wf.env : {};
  const topCtx = (): ExprContext => ({ contexts: { github, inputs, vars, env: {}, secrets } });
  const runName = typeof wf["run-name"] === "string"
    ? interpolate(wf["run-name"], topCtx())
    : String(wf.name ?? "");
  const concOf = (c: unknown, ctx: ExprContext) => {
    if (c === undefined) return undefined;
    if (typeof c === "string") return { group: toText(evaluateTemplate(c, ctx)), cancelInProgress: false };
    if (!isObj(c)) return undefined;
    const cip = c["cancel-in-progress"];
    return {
      group: toText(evaluateTemplate(String(c.group ?? ""), ctx)),
      cancelInProgress: typeof cip === "string"
        ? toText(evaluateTemplate(cip, ctx)) === "true"
        : cip === true,
    };
  };
  const result: RunResult = { runName, concurrency: concOf(wf.concurrency, topCtx()), jobs: [], leaks };

  const jobs = wf.jobs as Obj;
  const needsCtx: Record<string, { result: string; outputs: Record<string, string> }> = {};
  /** The `needs` expression context: each needed job's result and outputs ("skipped" when it did not run). */
  const needsContext = (needs: string[]): Record<string, Value> =>
    Object.fromEntries(
      needs.map((n) => [n, (needsCtx[n] ?? { result: "skipped", outputs: {} }) as unknown as Value]),
    );
  let jobSeq = 0;
  for (const jobId of topoOrder(jobs)) {
    const job = jobs[jobId] as Obj;
    const needs = jobNeeds(job);
    const needsValue = needsContext(needs);
    const depsOk = needs.every((n) => needsCtx[n]?.result === "success");
    const depsFailed = needs.some((n) => needsCtx[n]?.result === "failure");
    const jobCtx = (matrix: Record<string, Value>, env: Record<string, Value>): ExprContext => ({
      contexts: {
        github: { ...github, job: jobId },
        inputs,
        vars,
        secrets,
        needs: needsValue,
        matrix,
        env,
        runner: { os: "Linux", arch: "X64", temp: "", name: "local" },
      },
      status: depsFailed ? "failure" : "success",
    });
    const selected = !opts.jobs || opts.jobs.includes(jobId);
    const skipJob = (why: string) => {
      log(`[${jobId}] skipped: ${why}`);
      needsCtx[jobId] = { result: "skipped", outputs: {} };
      result.jobs.push({ id: jobId, result: "skipped", steps: [], outputs: {}, summary: "" });
    };
    if (!selected) {
      skipJob("not selected");
      continue;
    }
    const cond = job.if as string | boolean | undefined;
    const usesStatus = typeof cond === "string" && /\b(always|failure|cancelled)\s*\(/.test(cond);
    if ((!depsOk && !usesStatus) || !evaluateCondition(cond, jobCtx({}, {}))) {
      skipJob(depsOk ? `if: ${cond}` : "a needed job did not succeed");
      continue;
    }
    // Matrix.
    let combos: Record<string, Value>[] = [{}];
    const strategy = isObj(job.strategy) ? job.strategy : undefined;
    if (strategy && strategy.matrix !== undefined) {
      const m = typeof strategy.matrix === "string"
        ? evaluateTemplate(strategy.matrix, jobCtx({}, {}))
        : strategy.matrix as Value;
      if (!isObj(m)) throw new WodError(`Job "${jobId}": strategy.matrix is not a mapping`);
      const lists: Record<string, Value[]> = {};
      for (const [k, v] of Object.entries(m)) {
        if (k === "include" || k === "exclude") {
          throw new WodError(`Job "${jobId}": matrix ${k} is not supported by the local runner`);
        }
        const val = typeof v === "string" ? evaluateTemplate(v, jobCtx({}, {})) : v as Value;
        if (!Array.isArray(val)) {
          throw new WodError(`Job "${jobId}": matrix.${k} is not a list (${JSON.stringify(val)})`);
        }
        lists[k] = val;
      }
      combos = cross(lists);
    }
    const instances: JobResult[] = [];
    for (const matrix of combos) {
      const jr = await runJob(jobId, job, matrix, ++jobSeq);
      instances.push(jr);
      result.jobs.push(jr);
    }
    const failed = instances.some((j) => j.result === "failure");
    needsCtx[jobId] = {
      result: instances.length === 0 ? "skipped" : failed ? "failure" : "success",
      outputs: Object.assign({}, ...instances.map((j) => j.outputs)),
    };
  }
  return result;

  async function runJob(
    jobId: string,
    job: Obj,
    matrix: Record<string, Value>,
    seq: number,
  ): Promise<JobResult> {
    const dir = join(opts.tempDir, `job-${seq}-${jobId}`);
    const runnerTemp = join(dir, "temp");
    await Deno.mkdir(runnerTemp, { recursive: true });
    const needs = jobNeeds(job);
    const needsValue = needsContext(needs);
    const stepsCtx: Record<string, Value> = {};
    const envAdded: Record<string, string> = {};
    const pathAdded: string[] = [];
    let status: "success" | "failure" = "success";
    const ctx = (env: Record<string, Value>): ExprContext => ({
      contexts: {
        github: { ...github, job: jobId },
        inputs,
        vars,
        secrets,
        needs: needsValue,
        matrix,
        steps: stepsCtx,
        env,
        job: { status },
        runner: { os: "Linux", arch: "X64", temp: runnerTemp, name: "local" },
        strategy: { "fail-fast": false, "job-index": 0, "job-total": 1 },
      },
      status,
    });
    const evalEnv = (raw: unknown, into: Record<string, Value>) => {
      if (!isObj(raw)) return into;
      for (const [k, v] of Object.entries(raw)) into[k] = toText(evaluateTemplate(String(v), ctx(into)));
      return into;
    };
    const wfEnv = evalEnv(wfEnvRaw, {});
    const jobEnv = evalEnv(job.env, { ...wfEnv });
    const environment = job.environment === undefined ? undefined : toText(evaluateTemplate(
      String(isObj(job.environment) ? job.environment.name : job.environment),
      ctx(jobEnv),
    ));
    const jr: JobResult = {
      id: jobId,
      matrix: Object.keys(matrix).length ? matrix : undefined,
      result: "success",
      environment,
      concurrency: concOf(job.concurrency, ctx(jobEnv)),
      steps: [],
      outputs: {},
      summary: "",
    };
    const label = `${jobId}${
      Object.keys(matrix).length ? ` (${Object.values(matrix).map(toText).join(", ")})` : ""
    }`;
    const steps = Array.isArray(job.steps) ? job.steps as Obj[] : [];
    const defaults = (isObj(job.defaults) && isObj(job.defaults.run) ? job.defaults.run : undefined) ??
      (isObj(wf.defaults) && isObj(wf.defaults.run) ? wf.defaults.run : {});
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i];
      const env = evalEnv(step.env, { ...jobEnv, ...envAdded });
      const info: StepInfo = {
        index: i,
        id: typeof step.id === "string" ? step.id : undefined,
        name: typeof step.name === "string"
          ? interpolate(step.name, ctx(env))
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
      const record = () => {
        if (info.id) {
          stepsCtx[info.id] = { outcome: sr.outcome, conclusion: sr.conclusion, outputs: sr.outputs };
        }
      };
      if (!evaluateCondition(step.if as string | boolean | undefined, ctx(env))) {
        sr.skipReason = `if: ${step.if ?? "success()"} is false`;
        log(`[${label}] skip "${info.name}": ${sr.skipReason}`);
        record();
        continue;
      }
      const reason = opts.skip?.(jobId, info);
      if (reason) {
        sr.skipReason = reason;
        log(`[${label}] skip "${info.name}": ${reason}`);
        record();
        continue;
      }
      if (info.uses) {
        if (/^actions\/checkout@/.test(info.uses)) {
          sr.outcome = sr.conclusion = "success";
          sr.log = `checkout simulated: ${opts.workspace} is the checkout`;
        } else {
          sr.skipReason = `action ${info.uses} is not run by the local runner`;
        }
        log(`[${label}] ${info.name}: ${sr.log || sr.skipReason}`);
        record();
        continue;
      }
      const started = performance.now();
      const files = {
        GITHUB_OUTPUT: join(dir, `output-${i}`),
        GITHUB_ENV: join(dir, `env-${i}`),
        GITHUB_PATH: join(dir, `path-${i}`),
        GITHUB_STEP_SUMMARY: join(dir, `summary-${i}`),
      };
      for (const f of Object.values(files)) await Deno.writeTextFile(f, "");
      const script = join(dir, `step-${i}.sh`);
      await Deno.writeTextFile(script, interpolate(info.run ?? "", ctx(env)));
      const shell = String(step.shell ?? defaults.shell ?? "bash");
      const argv = shell === "bash"
        ? ["bash", "--noprofile", "--norc", "-eo", "pipefail", script]
        : shell === "sh"
        ? ["sh", "-e", script]
        : shell.includes("{0}")
        ? shell.split(/\s+/).map((a) => a.replace("{0}", script))
        : (() => {
          throw new WodError(`Step "${info.name}" of job "${jobId}": shell "${shell}" is not supported`);
        })();
      const procEnv: Record<string, string> = {
        ...base,
        ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, toText(v)])),
        ...envAdded,
        CI: "true",
        GITHUB_ACTIONS: "true",
        GITHUB_WORKFLOW: String(github.workflow),
        GITHUB_RUN_ID: "1",
        GITHUB_RUN_NUMBER: "1",
        GITHUB_RUN_ATTEMPT: "1",
        GITHUB_JOB: jobId,
        GITHUB_ACTION: info.id ?? `__run_${i}`,
        GITHUB_ACTOR: String(github.actor),
        GITHUB_REPOSITORY: repository,
        GITHUB_REPOSITORY_OWNER: String(github.repository_owner),
        GITHUB_EVENT_NAME: opts.event.name,
        GITHUB_EVENT_PATH: eventPath,
        GITHUB_WORKSPACE: opts.workspace,
        GITHUB_SHA: String(github.sha),
        GITHUB_REF: String(github.ref),
        GITHUB_BASE_REF: String(github.base_ref),
        GITHUB_HEAD_REF: String(github.head_ref),
        GITHUB_SERVER_URL: String(github.server_url),
        GITHUB_API_URL: String(github.api_url),
        RUNNER_OS: "Linux",
        RUNNER_TEMP: runnerTemp,
        ...files,
      };
      procEnv.PATH = [...pathAdded.slice().reverse(), procEnv.PATH ?? base.PATH ?? "/usr/bin:/bin"].join(":");
      const wd = typeof step["working-directory"] === "string"
        ? join(opts.workspace, interpolate(step["working-directory"], ctx(env)))
        : typeof defaults["working-directory"] === "string"
        ? join(opts.workspace, String(defaults["working-directory"]))
        : opts.workspace;
      log(`[${label}] run "${info.name}"`);
      const timeoutMin = Number(step["timeout-minutes"] ?? 0);
      const out = await exec(argv[0], argv.slice(1), {
        cwd: wd,
        env: procEnv,
        bare: true,
        allowFailure: true,
        timeoutMs: timeoutMin > 0 ? timeoutMin * 60_000 : undefined,
      });
      const { stdout, stderr } = out;
      const shown: string[] = [];
      for (const line of stdout.split("\n")) {
        const c = parseCommand(line);
        if (c?.cmd === "add-mask") {
          addMask(c.value);
          shown.push("::add-mask::***");
          continue;
        }
        if (c && (c.cmd === "error" || c.cmd === "warning" || c.cmd === "notice")) {
          sr.annotations.push({ level: c.cmd, message: mask(c.value), props: c.props });
        }
        shown.push(line);
      }
      sr.code = out.code;
      sr.log = mask(shown.join("\n").trimEnd() + (stderr.trim() ? `\n${stderr.trimEnd()}` : ""));
      sr.outcome = out.code === 0 ? "success" : "failure";
      // Step files.
      try {
        sr.outputs = parseCommandFile(await readText(files.GITHUB_OUTPUT), `GITHUB_OUTPUT of "${info.name}"`);
        const newEnv = parseCommandFile(await readText(files.GITHUB_ENV), `GITHUB_ENV of "${info.name}"`);
        for (const [k, v] of [...Object.entries(sr.outputs), ...Object.entries(newEnv)]) {
          if (SECRET_NAME.test(k) && !/_(FILE|PATH|DIR|URL)$/i.test(k) && v.trim() !== "" && !masks.has(v)) {
            sr.outcome = "failure";
            sr.annotations.push({
              level: "error",
              message: `Step "${info.name}" wrote "${k}" without ::add-mask:: first (rule: mask-secrets)`,
              props: {},
            });
          }
        }
        Object.assign(envAdded, newEnv);
        for (const p of (await readText(files.GITHUB_PATH)).split("\n")) {
          if (p.trim()) pathAdded.push(p.trim());
        }
      } catch (err) {
        sr.outcome = "failure";
        sr.annotations.push({
          level: "error",
          message: String(err instanceof Error ? err.message : err),
          props: {},
        });
      }
      const summary = await readText(files.GITHUB_STEP_SUMMARY);
      checkLeak(summary, `summary of step "${info.name}"`);
      for (const [k, v] of Object.entries(sr.outputs)) checkLeak(v, `output ${k} of step "${info.name}"`);
      if (summary) jr.summary += mask(summary.endsWith("\n") ? summary : summary + "\n");
      sr.conclusion = sr.outcome === "failure" && step["continue-on-error"] === true ? "success" : sr.outcome;
      if (sr.conclusion === "failure") status = "failure";
      sr.seconds = Math.round((performance.now() - started) / 100) / 10;
      log(`[${label}] ${sr.outcome} "${info.name}" (exit ${out.code}, ${sr.seconds} s)`);
      if (sr.outcome === "failure") log(sr.log.split("\n").slice(-15).map((l) => `    ${l}`).join("\n"));
      record();
    }
    jr.result = status;
    if (isObj(job.outputs)) {
      for (const [k, v] of Object.entries(job.outputs)) {
        jr.outputs[k] = toText(evaluateTemplate(String(v), ctx(jobEnv)));
      }
    }
    return jr;
  }
}
