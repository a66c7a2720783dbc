// `wod install --env ENV --control HOST`: ansible/control.yml against the control host, which runs
// the environment's order listener (`wod listen`) and reconciler (`wod reconcile`) as systemd services
// (roles wod_listener and wod_control). Same step log and full log as the backend install.
import { type Config, requireEnvironment } from "../config/load.ts";
import { WodError } from "../common/errors.ts";
import { ANSIBLE_DIR, failureReason, runPlaybook } from "./ansible.ts";
import { formatStep, StepTracker } from "./install.ts";
import { join } from "node:path";
import { exec, redactText } from "../common/exec.ts";

const CODE_ROOT = new URL("../../", import.meta.url).pathname;

export interface ControlOptions {
  config: Config;
  env: string;
  /** HOST or HOST:PORT of the control host. */
  host: string;
  /** SSH user (sudo for the rest); default root. */
  user?: string;
  check?: boolean;
  logDir?: string | null;
  log?: (line: string) => void;
  ansibleDir?: string;
  /** More variables (tests: wod_control_service_manager: none). */
  vars?: Record<string, unknown>;
  /** SSH key and known_hosts (default: $WOD_SSH_KEY_FILE / agent, $WOD_KNOWN_HOSTS_FILE / ~/.ssh). */
  keyFile?: string;
  knownHostsFile?: string;
  /** Git URL the host clones; default: an archive of this checkout's HEAD (`git archive`) is unpacked. */
  repoUrl?: string;
  /** Environment lookup for the secrets (default Deno.env.get). */
  getenv?: (name: string) => string | undefined;
}

/** Variables of the secrets the services need, by name: the ones the environment names, and the
 * store's and sealing's own. Only those set on the controller are passed (to root-only files). */
export function controlSecrets(
  config: Config,
  env: string,
  getenv: (name: string) => string | undefined = (k) => Deno.env.get(k),
): Record<string, string> {
  const e = config.environments.get(env)?.value;
  const names = [
    e?.orders?.hmac_secret_env,
    e?.orders?.auth_password_env,
    e?.frontend?.username_env,
    e?.frontend?.password_env,
    e?.portal?.database_url_env,
    "GITHUB_TOKEN",
    "WOD_AGE_IDENTITY",
  ].filter((x): x is string => !!x);
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = getenv(n);
    if (v) out[n] = v;
  }
  return out;
}

/** The variables control.yml gets from the environment file. */
export function controlVars(config: Config, env: string): Record<string, unknown> {
  const e = requireEnvironment(config, env).value;
  const vars: Record<string, unknown> = { wod_control_env: env };
  if (e.orders?.listen) vars.wod_listener_listen = e.orders.listen;
  return vars;
}

export async function installControl(
  opts: ControlOptions,
): Promise<{ ok: boolean; changed: number; error?: string; logFile?: string }> {
  const log = opts.log ?? (() => {});
  const m = opts.host.match(/^(.+?)(?::(\d{1,5}))?$/);
  if (!m || !m[1]) throw new WodError(`Invalid --control "${opts.host}": expected HOST or HOST:PORT`);
  const name = "control";
  let logHandle: Deno.FsFile | undefined;
  let logFile: string | undefined;
  if (opts.logDir) {
    await Deno.mkdir(opts.logDir, { recursive: true, mode: 0o700 });
    logFile = join(opts.logDir, `control-${new Date().toISOString().replace(/[:.]/g, "-")}.log`);
    logHandle = await Deno.open(logFile, { create: true, write: true, truncate: true, mode: 0o600 });
  }
  const enc = new TextEncoder();
  let redactList: string[] = [];
  const write = (l: string) => logHandle?.writeSync(enc.encode(redactText(l, redactList) + "\n"));
  const steps = new StepTracker((s) => {
    const line = formatStep(name, s, !!opts.check);
    write(`# ${line}`);
    log(line);
  });
  const secrets = controlSecrets(opts.config, opts.env, opts.getenv);
  const redact = Object.values(secrets);
  redactList = redact;
  const tmp = await Deno.makeTempDir({ prefix: "wod-control-" });
  try {
    const repo: Record<string, unknown> = {};
    if (opts.repoUrl) repo.wod_control_repo_url = opts.repoUrl;
    else if (!opts.vars?.wod_control_repo_url && !opts.vars?.wod_control_repo_archive) {
      // This checkout's committed HEAD (what the operator reviewed), never uncommitted files.
      const archive = join(tmp, "wod.tar.gz");
      await exec("git", ["-C", CODE_ROOT, "archive", "--format=tar.gz", "-o", archive, "HEAD"]);
      repo.wod_control_repo_archive = archive;
    }
    const run = await runPlaybook({
      playbook: "control.yml",
      ansibleDir: opts.ansibleDir ?? ANSIBLE_DIR,
      hosts: [{
        name,
        host: m[1],
        port: Number(m[2] ?? 22),
        user: opts.user ?? "root",
        keyFile: opts.keyFile ?? Deno.env.get("WOD_SSH_KEY_FILE"),
        knownHostsFile: opts.knownHostsFile ?? Deno.env.get("WOD_KNOWN_HOSTS_FILE"),
      }],
      extraVars: {
        ...controlVars(opts.config, opts.env),
        ...repo,
        wod_control_secrets: secrets,
        wod_listener_extra_env: secrets,
        ...opts.vars,
      },
      redact,
      check: opts.check,
      diff: opts.check,
      onLine: (l) => {
        write(l);
        steps.event(l);
      },
    });
    steps.close();
    const changed = Object.values(run.stats).reduce((n, x) => n + x.changed, 0);
    const error = run.ok ? undefined : failureReason(run);
    const where = logFile ? `; full log: ${logFile}` : "";
    if (error) log(`[${name}] install FAILED: ${error}${where}`);
    else if (changed === 0) log(`[${name}] nothing to do: changed=0 (${run.seconds.toFixed(1)} s)${where}`);
    else log(`[${name}] ${opts.check ? "would change" : "changed"} ${changed} task(s)${where}`);
    return { ok: run.ok, changed, error, logFile };
  } finally {
    logHandle?.close();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}
