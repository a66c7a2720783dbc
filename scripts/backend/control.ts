// `wod install --env ENV --control HOST`: ansible/control.yml against the control host, which runs
// the environment's order listener (`wod listen`) and reconciler (`wod reconcile`) as systemd services
// (roles wod_listener and wod_control). Same step log and full log as the backend install.
import type { Config } from "../config/load.ts";
import { WodError } from "../common/errors.ts";
import { ANSIBLE_DIR, failureReason, runPlaybook } from "./ansible.ts";
import { formatStep, StepTracker } from "./install.ts";
import { join } from "node:path";
import { redactText } from "../common/exec.ts";

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
}

/** The variables control.yml gets from the environment file. */
export function controlVars(config: Config, env: string): Record<string, unknown> {
  const e = config.environments.get(env)?.value;
  if (!e) {
    throw new WodError(
      `Unknown environment "${env}": expected one of ${[...config.environments.keys()].join(", ")}`,
    );
  }
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
  const write = (l: string) => logHandle?.writeSync(enc.encode(redactText(l) + "\n"));
  const steps = new StepTracker((s) => {
    const line = formatStep(name, s, !!opts.check);
    write(`# ${line}`);
    log(line);
  });
  try {
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
      extraVars: { ...controlVars(opts.config, opts.env), ...opts.vars },
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
  }
}
