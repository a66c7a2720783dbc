// Installing and upgrading backends (`wod install`): ansible/install.yml run against each backend of
// an environment with the environment's own values as extra variables (INSTALL_VARS, one table), one
// step log line per task file (or playbook task) with its duration read from our stdout callback's
// events, the full log kept on the controller, an install record on the host (fingerprint.ts), and
// the staleness check `wod drift` and `wod apply` use.
import { join } from "node:path";
import type { Environment, EnvironmentBackend } from "../config/types.gen.ts";
import { loadConfig } from "../config/load.ts";
import { isSandboxBackend } from "../config/connection.ts";
import { WodError } from "../common/errors.ts";
import { exec, redactText } from "../common/exec.ts";
import { ANSIBLE_DIR, type AnsibleHost, failureReason, type PlaybookRun, runPlaybook } from "./ansible.ts";
import { type Fingerprint, installFingerprint } from "./fingerprint.ts";

/** Where the install record is on every backend (ansible/roles/wod_install). */
export const INSTALL_RECORD_FILE = "/etc/wod/install.json";

/**
 * Environment field -> role variable: every value `wod install` takes from the environment file.
 * `get` returns undefined when the field is absent (the role's default then applies).
 */
export const INSTALL_VARS: {
  field: string;
  variable: string;
  get: (env: Environment, b: EnvironmentBackend) => unknown;
}[] = [
  { field: "admin_user", variable: "wod_backend_admin_user", get: (e) => e.admin_user },
  { field: "admin_ssh_keys", variable: "wod_install_admin_ssh_keys", get: (e) => e.admin_ssh_keys },
  { field: "backends[].students[0]", variable: "wod_backend_students_first", get: (_, b) => b.students[0] },
  { field: "backends[].students[1]", variable: "wod_backend_students_last", get: (_, b) => b.students[1] },
  { field: "backends[].uid_base", variable: "wod_backend_uid_base", get: (_, b) => b.uid_base },
  { field: "backends[].fqdn", variable: "wod_backend_fqdn", get: (_, b) => b.fqdn },
  { field: "backends[].hub_url", variable: "wod_backend_hub_url", get: (_, b) => b.hub_url },
  { field: "kernels", variable: "wod_backend_kernels", get: (e) => e.kernels },
  { field: "backends[].tls_cert", variable: "wod_backend_tls_cert_src", get: (_, b) => b.tls_cert },
  { field: "backends[].tls_key", variable: "wod_backend_tls_key_src", get: (_, b) => b.tls_key },
];

/** The extra variables of one backend's install, from the environment file (INSTALL_VARS). */
export function environmentInstallVars(env: Environment, b: EnvironmentBackend): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const m of INSTALL_VARS) {
    const v = m.get(env, b);
    if (v !== undefined) out[m.variable] = v;
  }
  return out;
}

/** One backend to install: how to reach it and every variable passed (environment + platform). */
export interface InstallTarget {
  /** Backend name (inventory name, log prefix). */
  name: string;
  host: AnsibleHost;
  /** Extra variables: environmentInstallVars() plus platform ones (the sandbox's ports). */
  vars: Record<string, unknown>;
}

export interface StepLine {
  /** Step name: "wod_backend/packages" for a task file, the task name for a playbook's own task. */
  step: string;
  tasks: number;
  changed: string[];
  failed?: string;
  seconds: number;
}

/**
 * Groups the callback's events of one run into steps (consecutive tasks of one task file; each task
 * of a playbook or of a role's main.yml alone), timed from task_start to the next step's start.
 */
export class StepTracker {
  private cur: StepLine & { started: number; ran: number } | undefined;
  readonly steps: StepLine[] = [];
  constructor(
    private readonly emit: (s: StepLine) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  static stepName(path: string, task: string): { name: string; grouped: boolean } {
    const file = path.replace(/:\d+$/, "");
    const m = file.match(/roles\/([^/]+)\/(?:tasks|handlers)\/([^/]+)\.ya?ml$/);
    if (m && m[2] !== "main") return { name: `${m[1]}/${m[2]}`, grouped: true };
    return { name: StepTracker.taskName(task), grouped: false };
  }

  /** A task's name without the "role : " prefix Ansible puts in front of a role's tasks. */
  static taskName(task: string): string {
    return task.replace(/^[A-Za-z0-9_.-]+ : /, "");
  }

  event(line: string): void {
    if (!line.startsWith("{")) return;
    let ev: {
      event?: string;
      task?: string;
      path?: string;
      action?: string;
      status?: string;
      result?: unknown;
    };
    try {
      ev = JSON.parse(line);
    } catch {
      return;
    }
    if (ev.event === "task_start") {
      const action = ev.action ?? "";
      // Includes and meta tasks are structure, not work: they end the step before them.
      const structural = /(^|\.)(include_tasks|import_tasks|include_vars|include_role|meta)$/.test(action);
      const { name, grouped } = StepTracker.stepName(ev.path ?? "", ev.task ?? "");
      if (this.cur && grouped && this.cur.step === name) {
        this.cur.tasks++;
        return;
      }
      this.close();
      if (!structural) {
        this.cur = { step: name, tasks: 1, changed: [], seconds: 0, started: this.now(), ran: 0 };
      }
    } else if (ev.event === "task" && this.cur) {
      const r = (ev.result ?? {}) as { changed?: boolean; msg?: unknown };
      const task = StepTracker.taskName(ev.task ?? "");
      if (ev.status !== "skipped") this.cur.ran++;
      if (r.changed === true && !this.cur.changed.includes(task)) this.cur.changed.push(task);
      if (ev.status === "failed" || ev.status === "unreachable") {
        this.cur.failed = `${task}: ${typeof r.msg === "string" ? r.msg : ev.status}`;
      }
    } else if (ev.event === "stats") this.close();
  }

  close(): void {
    if (!this.cur) return;
    const { started, ran, ...s } = this.cur;
    s.seconds = (this.now() - started) / 1000;
    this.cur = undefined;
    // A step whose tasks were all skipped (a condition not met) did nothing: no line for it.
    if (ran === 0) return;
    this.steps.push(s);
    this.emit(s);
  }
}

export function formatStep(backend: string, s: StepLine, check: boolean): string {
  const what = s.failed
    ? `FAILED (${s.failed})`
    : s.changed.length
    ? `${check ? "would change" : "changed"}: ${s.changed.join("; ")}`
    : "ok";
  return `[${backend}] ${s.step}: ${what} (${s.tasks} task${s.tasks === 1 ? "" : "s"}, ${
    s.seconds.toFixed(1)
  } s)`;
}

export interface InstallResult {
  backend: string;
  ok: boolean;
  changed: number;
  /** Names of the tasks that changed (or would change, with check). */
  changedTasks: string[];
  steps: StepLine[];
  seconds: number;
  fingerprint: Fingerprint;
  /** The full log on the controller (mode 0600). */
  logFile?: string;
  error?: string;
}

export interface InstallOptions {
  target: InstallTarget;
  check?: boolean;
  /** The ansible/ folder (default: this repository's). */
  ansibleDir?: string;
  log?: (line: string) => void;
  /** Folder of the full logs (default: <repo>/.wod/install/<env>); none written when null. */
  logDir?: string | null;
  /** Values never written to the log (passwords). */
  redact?: string[];
}

/** The default folder of the install logs of an environment. */
export function installLogDir(root: string, env: string): string {
  return join(root, ".wod", "install", env);
}

/** Install (or, with check, show what would change on) one backend. Never throws for a failed play. */
export async function installBackend(opts: InstallOptions): Promise<InstallResult> {
  const { target } = opts;
  const ansibleDir = opts.ansibleDir ?? ANSIBLE_DIR;
  const log = opts.log ?? (() => {});
  const fp = await installFingerprint(ansibleDir, target.vars);
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  let logFile: string | undefined;
  let logHandle: Deno.FsFile | undefined;
  if (opts.logDir !== null && opts.logDir !== undefined) {
    await Deno.mkdir(opts.logDir, { recursive: true, mode: 0o700 });
    logFile = join(opts.logDir, `${target.name}-${stamp}${opts.check ? "-check" : ""}.log`);
    logHandle = await Deno.open(logFile, { create: true, write: true, truncate: true, mode: 0o600 });
    await Deno.chmod(logFile, 0o600);
  }
  const enc = new TextEncoder();
  const write = (line: string) => logHandle?.writeSync(enc.encode(redactText(line, opts.redact) + "\n"));
  write(
    `# wod install${
      opts.check ? " --check" : ""
    } ${target.name} (${target.host.user}@${target.host.host}:${target.host.port}) ` +
      `${new Date().toISOString()} fingerprint ${fp.fingerprint}`,
  );
  const steps = new StepTracker((s) => {
    const line = formatStep(target.name, s, !!opts.check);
    write(`# ${line}`);
    log(line);
  });
  let run: PlaybookRun | undefined;
  let error: string | undefined;
  try {
    run = await runPlaybook({
      playbook: "install.yml",
      ansibleDir,
      hosts: [target.host],
      extraVars: {
        ...target.vars,
        wod_install_record: {
          fingerprint: fp.fingerprint,
          code: fp.code,
          values_hash: fp.values,
          values: target.vars,
        },
      },
      check: opts.check,
      diff: opts.check,
      redact: opts.redact,
      onLine: (l) => {
        write(l);
        steps.event(l);
      },
    });
    steps.close();
    if (run.stderr.trim()) write(`# stderr:\n${run.stderr}`);
    if (!run.ok) error = failureReason(run, opts.redact);
  } catch (err) {
    steps.close();
    error = (err as Error).message;
    write(`# error: ${error}`);
  } finally {
    logHandle?.close();
  }
  const changedTasks = run
    ? [...new Set(run.tasks.filter((t) => t.changed && !t.failed).map((t) => StepTracker.taskName(t.task)))]
    : [];
  const changed = run ? Object.values(run.stats).reduce((n, x) => n + x.changed, 0) : 0;
  const seconds = run?.seconds ?? 0;
  const where = logFile ? `; full log: ${logFile}` : "";
  if (error) {
    log(`[${target.name}] install FAILED: ${error}${where}`);
  } else if (changed === 0) {
    log(`[${target.name}] nothing to do: changed=0 (${seconds.toFixed(1)} s)${where}`);
  } else {
    log(
      `[${target.name}] ${opts.check ? "would change" : "changed"} ${changed} task(s) in ${
        seconds.toFixed(1)
      } s${opts.check ? `: ${changedTasks.join("; ")}` : ""}${where}`,
    );
  }
  return {
    backend: target.name,
    ok: !error,
    changed,
    changedTasks,
    steps: steps.steps,
    seconds,
    fingerprint: fp,
    logFile,
    error,
  };
}

/** Install several backends at once (one ansible-playbook per backend, output prefixed by backend). */
export async function installBackends(
  targets: InstallTarget[],
  opts: Omit<InstallOptions, "target">,
): Promise<InstallResult[]> {
  return await Promise.all(targets.map((target) => installBackend({ ...opts, target })));
}

// ---- the install record on the host, and staleness ----

export interface InstallRecord {
  fingerprint: string;
  code?: string;
  values_hash?: string;
  values?: Record<string, unknown>;
  installed_at?: string;
}

export interface InstallStatus {
  backend: string;
  expected: Fingerprint;
  recorded?: InstallRecord;
  stale: boolean;
  /** Roles or the seat script differ (seat actions must not run): not only values. */
  codeStale: boolean;
  detail: string;
}

/**
 * Read the install record over SSH (the ssh_user reads it: the file is world-readable). `sshOptions`:
 * more `-o` options (e.g. the control master shared with the seat run, install_targets.ts).
 */
export async function readInstallRecord(
  host: AnsibleHost,
  sshOptions: string[] = [],
): Promise<InstallRecord | undefined> {
  const args = ["-p", String(host.port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"];
  args.push(...sshOptions);
  args.push("-o", "ConnectTimeout=10");
  if (host.keyFile) args.push("-i", host.keyFile, "-o", "IdentitiesOnly=yes");
  if (host.knownHostsFile) args.push("-o", `UserKnownHostsFile=${host.knownHostsFile}`);
  args.push(`${host.user}@${host.host}`, "--", "cat", INSTALL_RECORD_FILE);
  const r = await exec("ssh", args, { allowFailure: true, timeoutMs: 30_000 });
  if (r.code === 0) {
    try {
      const rec = JSON.parse(r.stdout) as InstallRecord;
      if (typeof rec.fingerprint === "string") return rec;
    } catch { /* below */ }
    throw new WodError(
      `The install record ${INSTALL_RECORD_FILE} on ${host.name} (${host.host}) is not JSON with a fingerprint: ` +
        "run `wod install` for it again",
    );
  }
  if (/No such file/i.test(r.stderr)) return undefined;
  throw new WodError(
    `Cannot read ${INSTALL_RECORD_FILE} on ${host.name} over SSH (${host.user}@${host.host}:${host.port}): ` +
      (r.stderr.trim().split("\n").slice(-2).join(" | ") || `exit code ${r.code}`),
  );
}

/** Which values differ between the recorded install and now (names of the variables). */
function valuesDiffer(rec: Record<string, unknown> | undefined, now: Record<string, unknown>): string[] {
  if (!rec) return [];
  const keys = new Set([...Object.keys(rec), ...Object.keys(now)]);
  return [...keys].filter((k) => JSON.stringify(rec[k]) !== JSON.stringify(now[k])).sort();
}

/** Compare what a backend recorded with what this repository would install now. */
export async function installStatus(
  target: InstallTarget,
  ansibleDir = ANSIBLE_DIR,
  read: (h: AnsibleHost) => Promise<InstallRecord | undefined> = readInstallRecord,
): Promise<InstallStatus> {
  const expected = await installFingerprint(ansibleDir, target.vars);
  const recorded = await read(target.host);
  if (!recorded) {
    return {
      backend: target.name,
      expected,
      stale: true,
      codeStale: true,
      detail: `no install record (${INSTALL_RECORD_FILE}): the backend was never installed by wod install`,
    };
  }
  if (recorded.fingerprint === expected.fingerprint) {
    return { backend: target.name, expected, recorded, stale: false, codeStale: false, detail: "current" };
  }
  const codeStale = recorded.code !== expected.code;
  const vars = valuesDiffer(recorded.values, target.vars);
  const parts: string[] = [];
  if (codeStale) parts.push("the roles, install.yml or the seat script changed");
  if (recorded.values_hash !== expected.values) {
    parts.push(`environment values changed${vars.length ? ` (${vars.join(", ")})` : ""}`);
  }
  return {
    backend: target.name,
    expected,
    recorded,
    stale: true,
    codeStale,
    detail: `installed ${recorded.installed_at ?? "at an unknown time"} with fingerprint ${
      recorded.fingerprint.slice(0, 12)
    }, the repository's is ${expected.fingerprint.slice(0, 12)}: ${
      parts.join("; ") || "fingerprint differs"
    }`,
  };
}

/** The fix an operator runs for a stale backend. */
export function installFix(env: string, backend?: string): string {
  return `deno task wod install --env ${env}${backend ? ` --backend ${backend}` : ""}`;
}

export function failureSummary(results: InstallResult[]): string {
  return results.filter((r) => !r.ok).map((r) => `${r.backend}: ${r.error}`).join("; ");
}

export type { PlaybookRun };

/** This repository (the code's own checkout): its environments/local.yaml describes the sandbox. */
const CODE_ROOT = new URL("../../", import.meta.url).pathname;

/**
 * The sandbox backend of an environment (default: this repository's `local`): its name and the values
 * its environment entry passes (INSTALL_VARS). Used by `wod sandbox up`, which installs with them.
 */
export async function sandboxBackendValues(
  root = CODE_ROOT,
  envName = "local",
): Promise<{ name: string; vars: Record<string, unknown> }> {
  const cfg = await loadConfig(root);
  const env = cfg.environments.get(envName)?.value;
  const b = env?.backends.find(isSandboxBackend);
  if (!env || !b) return { name: "jup1", vars: {} };
  return { name: b.name, vars: environmentInstallVars(env, b) };
}
