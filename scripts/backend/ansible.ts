// The Ansible runner: inventory generated from typed hosts, extra-vars from a private file (0600,
// deleted after the run), results parsed from our own stdout callback
// (ansible/callback_plugins/wod_events.py: JSON lines, needs nothing beyond ansible-core). Host key checking stays on:
// every host brings the known_hosts file its key is pinned in.
import { join } from "node:path";
import { WodError } from "../common/errors.ts";
import { exec } from "../common/exec.ts";
import { redactText } from "../common/log.ts";

export const ANSIBLE_DIR = new URL("../../ansible/", import.meta.url).pathname;

export interface AnsibleHost {
  /** Inventory name (e.g. the backend name). */
  name: string;
  host: string;
  port: number;
  user: string;
  keyFile?: string;
  knownHostsFile?: string;
  /** Become root with sudo (default: when `user` is not root, as on hosts where root cannot log in). */
  become?: boolean;
  vars?: Record<string, unknown>;
}

export interface TaskResult {
  task: string;
  host: string;
  changed: boolean;
  failed: boolean;
  skipped: boolean;
  unreachable: boolean;
  msg?: string;
  /** The whole result object of that task on that host (censored when the task has no_log). */
  result: Record<string, unknown>;
}

export interface HostStats {
  ok: number;
  changed: number;
  failures: number;
  unreachable: number;
  skipped: number;
  rescued: number;
  ignored: number;
}

export interface PlaybookRun {
  ok: boolean;
  code: number;
  stats: Record<string, HostStats>;
  tasks: TaskResult[];
  seconds: number;
  /** Ansible's stderr, redacted. */
  stderr: string;
}

export interface PlaybookOptions {
  playbook: string;
  hosts: AnsibleHost[];
  extraVars?: Record<string, unknown>;
  /** Values never shown in errors or logs (passwords). */
  redact?: string[];
  log?: (line: string) => void;
  /** Extra environment for ansible-playbook (it gets nothing else of ours but PATH, HOME and locale). */
  env?: Record<string, string>;
  /** Stop ansible-playbook (SIGTERM, then SIGKILL 10 s later) after this many seconds. */
  timeoutSeconds?: number;
  /** Kill ansible-playbook after this many milliseconds (the run then reports no result). */
  timeoutMs?: number;
  /** The ansible/ folder to run from (playbook, ansible.cfg, roles); default: this repository's. */
  ansibleDir?: string;
  /** Run in check mode (--check): report what would change, change nothing. */
  check?: boolean;
  /** Show differences (--diff): results of file tasks carry a before/after diff. */
  diff?: boolean;
  /** Every stdout line (our callback's JSON events) as it arrives. */
  onLine?: (line: string) => void;
}

/**
 * The whole environment of ansible-playbook: the base of exec.ts (PATH, HOME for ~/.ansible, locale,
 * TMPDIR), its own settings, and the SSH agent only when a host has no key file. Never the
 * controller's whole environment: a lookup or a module on the controller would read its secrets.
 */
export function playbookEnv(hosts: AnsibleHost[], tmp: string, extra: Record<string, string> = {}) {
  const agent = Deno.env.get("SSH_AUTH_SOCK");
  return {
    ANSIBLE_CONFIG: join(ANSIBLE_DIR, "ansible.cfg"),
    ANSIBLE_STDOUT_CALLBACK: "wod_events",
    ANSIBLE_CALLBACK_PLUGINS: join(ANSIBLE_DIR, "callback_plugins"),
    ANSIBLE_HOST_KEY_CHECKING: "True",
    ANSIBLE_NOCOLOR: "1",
    ANSIBLE_LOCAL_TEMP: tmp,
    ...(agent && hosts.some((h) => !h.keyFile) ? { SSH_AUTH_SOCK: agent } : {}),
    ...extra,
  };
}

function inventory(hosts: AnsibleHost[]): Record<string, unknown> {
  const h: Record<string, unknown> = {};
  for (const x of hosts) {
    const ssh = ["-o", "StrictHostKeyChecking=yes"];
    // With a key file, only that key (no agent keys tried first); without one, the agent/defaults.
    if (x.keyFile) ssh.push("-o", "IdentitiesOnly=yes");
    if (x.knownHostsFile) ssh.push("-o", `UserKnownHostsFile=${x.knownHostsFile}`);
    h[x.name] = {
      ansible_host: x.host,
      ansible_port: x.port,
      ansible_user: x.user,
      ...(x.keyFile ? { ansible_ssh_private_key_file: x.keyFile } : {}),
      ansible_ssh_common_args: ssh.join(" "),
      ansible_python_interpreter: "/usr/bin/python3",
      // A connection variable: it overrides the plays' `become: false`.
      ...((x.become ?? x.user !== "root") ? { ansible_become: true, ansible_become_method: "sudo" } : {}),
      ...(x.vars ?? {}),
    };
  }
  return { all: { hosts: h } };
}

/** Parse the JSON lines of our stdout callback (ansible/callback_plugins/wod_events.py). */
export function parseOutput(stdout: string): { stats: Record<string, HostStats>; tasks: TaskResult[] } {
  const tasks: TaskResult[] = [];
  let stats: Record<string, HostStats> = {};
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("{")) continue;
    let ev: {
      event?: string;
      task?: string;
      host?: string;
      status?: string;
      result?: Record<string, unknown>;
    };
    try {
      ev = JSON.parse(line);
    } catch {
      continue;
    }
    if (ev.event === "stats") {
      stats = (ev as { stats?: Record<string, HostStats> }).stats ?? {};
    } else if (ev.event === "task" && ev.task !== undefined && ev.host !== undefined) {
      const r = ev.result ?? {};
      tasks.push({
        task: ev.task,
        host: ev.host,
        changed: r.changed === true,
        failed: ev.status === "failed",
        skipped: ev.status === "skipped",
        unreachable: ev.status === "unreachable",
        msg: typeof r.msg === "string" ? r.msg : undefined,
        result: r,
      });
    }
  }
  return { stats, tasks };
}

/** Run one playbook of ansible/ against the given hosts. Never throws for a failed play: see `ok`. */
export async function runPlaybook(opts: PlaybookOptions): Promise<PlaybookRun> {
  const dir = await Deno.makeTempDir({ prefix: "wod-ansible-" });
  await Deno.chmod(dir, 0o700);
  const started = performance.now();
  try {
    const inv = join(dir, "inventory.json");
    await Deno.writeTextFile(inv, JSON.stringify(inventory(opts.hosts)), { mode: 0o600 });
    const base = opts.ansibleDir ?? ANSIBLE_DIR;
    const args = ["-i", inv, join(base, opts.playbook)];
    if (opts.check) args.push("--check");
    if (opts.diff) args.push("--diff");
    if (opts.extraVars) {
      const ev = join(dir, "extra-vars.json");
      await Deno.writeTextFile(ev, JSON.stringify(opts.extraVars), { mode: 0o600 });
      args.push("--extra-vars", `@${ev}`);
    }
    const out = await exec("ansible-playbook", args, {
      cwd: base,
      env: playbookEnv(opts.hosts, join(dir, "tmp"), {
        ...(opts.ansibleDir ? { ANSIBLE_CONFIG: join(base, "ansible.cfg") } : {}),
        ...opts.env,
      }),
      ...(opts.onLine ? { onLine: (l: string, s: string) => s === "stdout" && opts.onLine!(l) } : {}),
      allowFailure: true,
      redact: opts.redact,
      timeoutMs: opts.timeoutMs ?? (opts.timeoutSeconds ? opts.timeoutSeconds * 1000 : undefined),
    });
    const stdout = out.stdout;
    const stderr = redactText(out.stderr, opts.redact);
    const timedOut = out.timedOut;
    const parsed = parseOutput(stdout);
    const seconds = (performance.now() - started) / 1000;
    if (opts.log) {
      for (const [h, s] of Object.entries(parsed.stats)) {
        opts.log(
          `${opts.playbook} ${h}: ok=${s.ok} changed=${s.changed} failed=${s.failures} ` +
            `unreachable=${s.unreachable} (${seconds.toFixed(1)} s)`,
        );
      }
      for (const t of parsed.tasks) {
        if (t.failed || t.unreachable) {
          opts.log(
            `${opts.playbook} ${t.host}: task "${t.task}" failed: ${redactText(t.msg ?? "", opts.redact)}`,
          );
        }
      }
    }
    if (timedOut) {
      throw new WodError(
        `ansible-playbook ${opts.playbook} did not finish within ${
          opts.timeoutSeconds ?? (opts.timeoutMs ?? 0) / 1000
        } s and was stopped; ` +
          "check the hosts it was running on, or raise the timeout",
      );
    }
    if (Object.keys(parsed.stats).length === 0) {
      throw new WodError(
        `ansible-playbook ${opts.playbook} produced no result (exit code ${out.code}):\n${
          redactText(stderr.trim().split("\n").slice(-15).join("\n") || stdout.slice(0, 2000), opts.redact)
        }`,
      );
    }
    return { ok: out.code === 0, code: out.code, stats: parsed.stats, tasks: parsed.tasks, seconds, stderr };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** A one-line reason for a failed run (first failed task), without secrets. */
export function failureReason(run: PlaybookRun, redact: string[] = []): string {
  const t = run.tasks.find((x) => x.failed || x.unreachable);
  if (t) return redactText(`task "${t.task}" on ${t.host}: ${t.msg ?? "failed"}`, redact);
  return redactText(run.stderr.trim().split("\n").slice(-5).join("\n") || `exit code ${run.code}`, redact);
}
