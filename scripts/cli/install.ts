// wod install: bring the backends of an environment (or its control host) from bare to ready with
// ansible/install.yml (ansible/control.yml), every value taken from the environment file.
import { parseArgs, repoRoot, requireOption } from "../common/args.ts";
import { loadConfig } from "../config/load.ts";
import {
  failureSummary,
  INSTALL_RECORD_FILE,
  INSTALL_VARS,
  installBackends,
  installLogDir,
} from "../backend/install.ts";
import { installTargets } from "../backend/install_targets.ts";
import { WodError } from "../common/errors.ts";

export const help = `
Usage: deno task wod install --env ENV [--backend NAME]... [--check] [--private DIR]
       deno task wod install --env ENV --control HOST[:PORT] [--control-user USER] [--repo-url URL]
                             [--check] [--private DIR]

Bring every backend of ENV (or only the --backend ones) from a bare Debian 12 / Ubuntu 22.04+ host to
ready with ansible/install.yml, in parallel across backends (output prefixed by backend), idempotent:
a second run reports "nothing to do: changed=0". It connects as the backend's ssh_user and becomes
root with sudo (root login is not needed). Every value comes from the environment file:
${INSTALL_VARS.map((m) => `  ${m.field.padEnd(24)} -> ${m.variable}`).join("\n")}
One line per step (a role's task file, or a playbook task) with its duration; the full log of each
run goes to .wod/install/ENV/BACKEND-TIME.log (mode 0600; results of no_log tasks are censored by
Ansible). Each backend records what was installed in ${INSTALL_RECORD_FILE} (a fingerprint of the
roles, install.yml, the seat script and the values); \`wod drift\` reports a backend whose record
differs from the repository (stale) and \`wod apply\` refuses seat actions on it until it is installed
(or installs it first with install.auto: true in the environment). An upgrade keeps running student
servers and kernels (the hub restarts without stopping them).

  --check          check mode with diffs: change nothing, name the tasks that would change; exit 2
                   when something would change
  --control HOST   install the control host instead (ansible/control.yml): the order listener and
                   the reconciler of ENV as systemd services under a dedicated user (SSH as
                   --control-user, default root, with sudo; host key from ~/.ssh/known_hosts or
                   $WOD_KNOWN_HOSTS_FILE, key from the agent or $WOD_SSH_KEY_FILE). The host gets
                   this checkout's committed HEAD (git archive) in /opt/wod, or clones --repo-url;
                   the secrets the environment names (orders.hmac_secret_env, auth_password_env,
                   frontend.username_env/password_env, portal.database_url_env) and GITHUB_TOKEN,
                   WOD_AGE_IDENTITY, when set here, go to root-only (0600) environment files there.
                   Deno must be at /usr/local/bin/deno on the host. See docs/operators.md.

Exit 0 when done (or nothing to do), 1 when a backend failed, 2 when --check found changes.
`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs("install", args, {
    env: { type: "string" },
    backend: { type: "string", multiple: true },
    check: { type: "boolean" },
    control: { type: "string" },
    "control-user": { type: "string" },
    "repo-url": { type: "string" },
    private: { type: "string" },
  });
  const envName = requireOption("install", values.env, "env");
  const root = repoRoot();
  const cfg = await loadConfig(root, { privateDir: values.private });
  const log = (l: string) => console.log(l);
  if (values.control !== undefined) {
    const { installControl } = await import("../backend/control.ts");
    const r = await installControl({
      config: cfg,
      env: envName,
      host: values.control,
      user: values["control-user"],
      repoUrl: values["repo-url"],
      check: values.check,
      logDir: installLogDir(root, envName),
      log,
    });
    if (!r.ok) throw new WodError(`Installing the control host ${values.control} failed: ${r.error}`);
    return values.check && r.changed > 0 ? 2 : 0;
  }
  const targets = await installTargets(cfg, envName, values.backend);
  log(
    `${values.check ? "Checking" : "Installing"} ${targets.map((t) => t.name).join(", ")} of ${envName}`,
  );
  const results = await installBackends(targets, {
    check: values.check,
    logDir: installLogDir(root, envName),
    log,
  });
  if (results.some((r) => !r.ok)) {
    throw new WodError(`wod install failed on ${envName}: ${failureSummary(results)}`);
  }
  return values.check && results.some((r) => r.changed > 0) ? 2 : 0;
}
