// The backends of an environment as install targets (connection + every variable passed), and the
// staleness checks built on them: `wod drift`'s stale-backend report and the guard `wod apply` calls
// before any seat action (refuse with the fix, or install first with install.auto).
import { type Config, requireEnvironment } from "../config/load.ts";
import type { Environment, EnvironmentBackend } from "../config/types.gen.ts";
import { WodError } from "../common/errors.ts";
import { ANSIBLE_DIR } from "./ansible.ts";
import { join } from "node:path";
import type { AnsibleHost } from "./ansible.ts";
import {
  environmentInstallVars,
  failureSummary,
  installBackends,
  installFix,
  installLogDir,
  type InstallRecord,
  type InstallStatus,
  installStatus,
  type InstallTarget,
  readInstallRecord,
} from "./install.ts";
import { isSandboxBackend } from "../config/connection.ts";
import { connectionFor } from "./seats.ts";
import { sandboxInstallVars } from "./sandbox.ts";

/** The install target of one backend: its SSH connection and the variables its install passes. */
export async function installTarget(
  envName: string,
  env: Environment,
  b: EnvironmentBackend,
): Promise<InstallTarget> {
  const conn = await connectionFor(b, envName);
  const vars = {
    ...environmentInstallVars(env, b),
    ...(conn.serviceManager === "sandbox" ? sandboxInstallVars(b.name) : {}),
  };
  return {
    name: b.name,
    host: {
      name: b.name,
      host: conn.host,
      port: conn.port,
      user: conn.user,
      keyFile: conn.keyFile ?? Deno.env.get("WOD_SSH_KEY_FILE"),
      knownHostsFile: conn.knownHostsFile ?? Deno.env.get("WOD_KNOWN_HOSTS_FILE"),
    },
    vars,
  };
}

/** The targets of an environment (all backends, or the named ones). */
export async function installTargets(
  config: Config,
  envName: string,
  backends?: string[],
): Promise<InstallTarget[]> {
  const env = requireEnvironment(config, envName).value;
  for (const n of backends ?? []) {
    if (!env.backends.some((b) => b.name === n)) {
      throw new WodError(
        `Unknown backend "${n}" in environment "${envName}": expected one of ${
          env.backends.map((b) => b.name).join(", ")
        }`,
      );
    }
  }
  const chosen = env.backends.filter((b) => !backends?.length || backends.includes(b.name));
  return await Promise.all(chosen.map((b) => installTarget(envName, env, b)));
}

/** Install status of each backend (recorded fingerprint against this repository's). */
export async function staleBackends(
  config: Config,
  envName: string,
  opts: {
    backends?: string[];
    ansibleDir?: string;
    read?: (h: InstallTarget["host"]) => Promise<InstallRecord | undefined>;
  } = {},
): Promise<InstallStatus[]> {
  const targets = await installTargets(config, envName, opts.backends);
  return await Promise.all(targets.map((t) => installStatus(t, opts.ansibleDir ?? ANSIBLE_DIR, opts.read)));
}

/** drift's report lines for stale backends (empty when all are current). */
export function formatStale(envName: string, statuses: InstallStatus[]): string[] {
  return statuses.filter((s) => s.stale).map((s) =>
    `${s.backend}: stale-install: ${s.detail} (fix: ${installFix(envName, s.backend)})`
  );
}

/**
 * The SSH options that make a connection share ansible-playbook's control master (ansible.cfg:
 * ControlMaster=auto, ControlPersist and control_path `%(directory)s/wod-%%C` under ~/.ansible/cp), so
 * that the install-record read before a seat run and the run itself pay one SSH handshake, not two.
 * Empty without a HOME (then each connection has its own handshake, as before).
 */
export async function sharedMasterOptions(home = Deno.env.get("HOME")): Promise<string[]> {
  if (!home) return [];
  const dir = join(home, ".ansible", "cp");
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch {
    return [];
  }
  return ["-o", "ControlMaster=auto", "-o", "ControlPersist=60s", "-o", `ControlPath=${dir}/wod-%C`];
}

/** The install record of a host, read over the SSH master the seat run then reuses. */
export async function readInstallRecordShared(host: AnsibleHost): Promise<InstallRecord | undefined> {
  return await readInstallRecord(host, await sharedMasterOptions());
}

/**
 * apply's guard, called before any seat action: every backend with work must have been installed from
 * this repository's roles and seat script. A stale one is refused with the fix, or, with
 * `install.auto: true` in the environment (or WOD_INSTALL_AUTO=1; default for sandbox backends),
 * installed first. Only a change of
 * the code (roles, install.yml, seat script) or a missing record blocks: a changed value alone (e.g.
 * a wider student pool) is reported and left to `wod install`. Returns the backends whose installed code
 * is this repository's (checked now, or installed now): their seat script is current, so the seat run
 * need not copy it again. A backend whose record could not be read is not among them.
 */
export async function requireCurrentInstall(opts: {
  root: string;
  config: Config;
  env: string;
  backends: string[];
  log?: (line: string) => void;
  ansibleDir?: string;
  read?: (h: InstallTarget["host"]) => Promise<InstallRecord | undefined>;
}): Promise<string[]> {
  if (!opts.backends.length) return [];
  const log = opts.log ?? (() => {});
  const env = opts.config.environments.get(opts.env)?.value;
  // Every backend at once (one SSH read each): the slowest backend, not their sum, delays the run.
  const checked = await Promise.all(opts.backends.map(async (name) => {
    try {
      const [t] = await installTargets(opts.config, opts.env, [name]);
      return {
        t,
        s: await installStatus(t, opts.ansibleDir ?? ANSIBLE_DIR, opts.read ?? readInstallRecordShared),
      };
    } catch (err) {
      // Unreachable: the seat run fails on its own (and is retried); the other backends go on.
      log(`${name}: install record not checked: ${(err as Error).message}`);
      return undefined;
    }
  }));
  const targets: InstallTarget[] = checked.flatMap((c) => c ? [c.t] : []);
  const statuses: InstallStatus[] = checked.flatMap((c) => c ? [c.s] : []);
  for (const s of statuses.filter((x) => x.stale && !x.codeStale)) {
    log(
      `${s.backend}: install values differ from the environment (${s.detail}); run ${installFix(opts.env)}`,
    );
  }
  const blocking = statuses.filter((s) => s.codeStale);
  const current = statuses.filter((s) => !s.codeStale).map((s) => s.backend);
  if (!blocking.length) return current;
  // The sandbox is this machine's disposable host: installed first unless install.auto says false.
  const sandbox = new Set(env?.backends.filter(isSandboxBackend).map((b) => b.name));
  const auto = env?.install?.auto ?? (Deno.env.get("WOD_INSTALL_AUTO") === "1" ||
    blocking.every((s) => sandbox.has(s.backend)));
  if (!auto) {
    throw new WodError(
      `Refusing seat actions on stale backend(s) of "${opts.env}": ${
        blocking.map((s) => `${s.backend} (${s.detail})`).join("; ")
      }. Install them first: ${installFix(opts.env)} (or set install.auto: true in the environment)`,
    );
  }
  log(`install.auto: installing ${blocking.map((s) => s.backend).join(", ")} before the seat actions`);
  const results = await installBackends(targets.filter((t) => blocking.some((s) => s.backend === t.name)), {
    ansibleDir: opts.ansibleDir,
    logDir: installLogDir(opts.root, opts.env),
    log,
  });
  if (results.some((r) => !r.ok)) {
    throw new WodError(
      `Installing stale backend(s) of "${opts.env}" before apply failed: ${failureSummary(results)}`,
    );
  }
  return [...current, ...blocking.map((s) => s.backend)];
}
