// wod doctor's checks of the controller (this machine): one table, REQUIREMENTS, of what the
// project runs (programs, Python and Perl modules, files), plus the checks that need code (Deno's
// version, root, namespaces, every Ansible plugin the playbooks name, free disk, listener ports).
//
// To add a check, add one row to REQUIREMENTS, e.g.
//   { name: "psql", required: true, usedBy: "the state store's PostgreSQL tests",
//     probe: { program: "psql" }, fix: apt("postgresql-client") },
//   { name: "python3 venv", required: true, usedBy: "...", probe: { python: "ensurepip" },
//     fix: apt("python3-venv") },
// and, when .ci/setup must install it, its package to .ci/apt-packages.txt (doctor_test.ts checks
// that every package listed there is the fix of some check).
import { dirname, join } from "node:path";
import { exec, type ExecResult } from "../common/exec.ts";
import { ansibleUses, backendPythonImports, type PluginKind } from "./ansible_uses.ts";

export type Status = "ok" | "missing" | "wrong-version" | "failed" | "skipped";

export interface CheckResult {
  /** "controller", or "backend NAME (ENV)". */
  scope: string;
  name: string;
  status: Status;
  /** A failing required check makes doctor exit 1; an optional one is a warning. */
  required: boolean;
  /** What was found (version, path) or what is wrong. */
  detail: string;
  /** The exact fix, for every status but ok. */
  fix?: string;
  /** What in the project needs it. */
  usedBy?: string;
}

export type Probe =
  /** A program on PATH; with `version`, run it and compare the first dotted number after `pattern`. */
  | { program: string; version?: { args: string[]; pattern: RegExp; min: string } }
  /** A module the Python of ansible-playbook (or `python3` on PATH with via: "path") imports. */
  | { python: string; via?: "ansible" | "path" }
  /** A Perl module (`perl -MName -e1`). */
  | { perl: string }
  /** A file that must exist (executable with `executable`). */
  | { file: string; executable?: boolean };

export interface Requirement {
  name: string;
  required: boolean;
  usedBy: string;
  probe: Probe;
  fix: string;
}

export const apt = (pkg: string) => `apt-get install ${pkg}`;

/** Minimum ansible-core: the oldest release the playbooks, the wod_events callback and CI are tested with. */
export const MIN_ANSIBLE_CORE = "2.14";
/** Free space the sandbox needs under its state and image directories (image ~0.3 GB, installed ~1.5 GB). */
export const MIN_FREE_GIB = 3;

const chromium = Deno.env.get("WOD_CHROMIUM") ?? "/usr/bin/chromium";

export const REQUIREMENTS: Requirement[] = [
  {
    name: "ansible-playbook",
    required: true,
    usedBy: "the Ansible runner (scripts/backend/ansible.ts)",
    probe: {
      program: "ansible-playbook",
      version: { args: ["--version"], pattern: /core\s+/, min: MIN_ANSIBLE_CORE },
    },
    fix: `${
      apt("ansible-core")
    } (ansible-core >= ${MIN_ANSIBLE_CORE}; the full \`ansible\` package is not needed)`,
  },
  {
    name: "ansible-lint",
    required: true,
    usedBy: "the lint test of the roles (scripts/backend/ansible_lint_test.ts)",
    probe: {
      program: "ansible-lint",
      version: { args: ["--nocolor", "--version"], pattern: /ansible-lint\s+/, min: "6.0" },
    },
    fix: apt("ansible-lint"),
  },
  {
    name: "yamllint",
    required: true,
    usedBy: "ansible-lint's YAML rules",
    probe: { program: "yamllint" },
    fix: apt("yamllint"),
  },
  {
    name: "python: jinja2 (Ansible's)",
    required: true,
    usedBy: "Ansible templates",
    probe: { python: "jinja2" },
    fix: apt("python3-jinja2"),
  },
  {
    name: "python: passlib (Ansible's)",
    required: true,
    usedBy: "password hashing filters of the user module",
    probe: { python: "passlib" },
    fix: apt("python3-passlib"),
  },
  {
    name: "python: jinja2 (python3 on PATH)",
    required: true,
    usedBy: "the workshop rendering test (scripts/config/workshops_test.ts)",
    probe: { python: "jinja2", via: "path" },
    fix: `${apt("python3-jinja2")}, or put /usr/bin first in PATH if another python3 shadows it`,
  },
  {
    name: "git",
    required: true,
    usedBy: "state store, sync, import, tests",
    probe: { program: "git", version: { args: ["--version"], pattern: /git version\s+/, min: "2.30" } },
    fix: apt("git"),
  },
  {
    name: "ssh",
    required: true,
    usedBy: "Ansible's connection to the backends, the sandbox",
    probe: { program: "ssh" },
    fix: apt("openssh-client"),
  },
  {
    name: "ssh-keygen",
    required: true,
    usedBy: "the sandbox's keys",
    probe: { program: "ssh-keygen" },
    fix: apt("openssh-client"),
  },
  {
    name: "CA certificates",
    required: true,
    usedBy: "HTTPS to the package registries and backends",
    probe: { file: "/etc/ssl/certs/ca-certificates.crt" },
    fix: apt("ca-certificates"),
  },
  {
    name: "debootstrap",
    required: true,
    usedBy: "the sandbox image (scripts/backend/sandbox.ts)",
    probe: { program: "debootstrap" },
    fix: apt("debootstrap"),
  },
  {
    name: "unshare",
    required: true,
    usedBy: "the sandbox's namespaces",
    probe: { program: "unshare" },
    fix: apt("util-linux"),
  },
  {
    name: "ip",
    required: true,
    usedBy: "the sandbox hosts' network namespaces and veth links",
    probe: { program: "ip" },
    fix: apt("iproute2"),
  },
  {
    name: "setsid",
    required: true,
    usedBy: "the sandbox's init",
    probe: { program: "setsid" },
    fix: apt("util-linux"),
  },
  {
    name: "mount",
    required: true,
    usedBy: "the sandbox's overlay",
    probe: { program: "mount" },
    fix: apt("mount"),
  },
  {
    name: "chroot",
    required: true,
    usedBy: "the sandbox",
    probe: { program: "chroot" },
    fix: apt("coreutils"),
  },
  {
    name: "tar",
    required: true,
    usedBy: "workshop bundles",
    probe: { program: "tar" },
    fix: apt("tar"),
  },
  {
    name: "swaks",
    required: true,
    usedBy: "SMTP tests and benches (scripts/mail, bench/)",
    probe: { program: "swaks" },
    fix: apt("swaks"),
  },
  {
    name: "perl: Net::SSLeay",
    required: true,
    usedBy: "swaks --tls in the STARTTLS tests",
    probe: { perl: "Net::SSLeay" },
    fix: apt("libnet-ssleay-perl"),
  },
  {
    name: "smtp-source",
    required: true,
    usedBy: "the listener bench (bench/listener.ts)",
    probe: { program: "smtp-source" },
    fix: apt("postfix"),
  },
  {
    name: "postfix",
    required: true,
    usedBy: "the private Postfix instance of the listener bench",
    probe: { program: "postfix" },
    fix: `${apt("postfix")} (preseed postfix/main_mailer_type "No configuration", as .ci/setup does)`,
  },
  {
    name: "openssl",
    required: true,
    usedBy: "throw-away certificates of the STARTTLS tests",
    probe: { program: "openssl" },
    fix: apt("openssl"),
  },
  {
    name: "PostgreSQL server (initdb, pg_ctl)",
    required: false,
    usedBy:
      "only the portal's PostgreSQL contract tests and bench (a throwaway cluster); set WOD_PG_BIN for another path",
    probe: { file: `${Deno.env.get("WOD_PG_BIN") ?? "/usr/lib/postgresql/15/bin"}/pg_ctl`, executable: true },
    fix: apt("postgresql"),
  },
  {
    name: "chromium",
    required: false,
    usedBy: "only the browser end-to-end test (scripts/e2e); set WOD_CHROMIUM for another path",
    probe: { file: chromium, executable: true },
    fix: apt("chromium"),
  },
  {
    name: "npm",
    required: false,
    usedBy: "only .ci/setup, to install Deno",
    probe: { program: "npm" },
    fix: apt("nodejs npm"),
  },
];

/** Where each Ansible plugin the project names comes from (the fix when it does not resolve). */
export interface PluginSource {
  kind: PluginKind;
  name: string;
  fix: string;
}

const CORE_FIX = `${apt("ansible-core")} (>= ${MIN_ANSIBLE_CORE})`;
const core = (kind: PluginKind, ...names: string[]): PluginSource[] =>
  names.map((name) => ({ kind, name, fix: CORE_FIX }));

/**
 * Every module, lookup and callback the playbooks, roles and runner use, and what provides it. All
 * come with ansible-core or this repository: no collection, no full `ansible` package.
 * scripts/doctor/doctor_test.ts fails when ansible/ names one that is not here.
 */
export const ANSIBLE_PLUGINS: PluginSource[] = [
  ...core(
    "module",
    "ansible.builtin.apt",
    "ansible.builtin.assert",
    "ansible.builtin.command",
    "ansible.builtin.copy",
    "ansible.builtin.fail",
    "ansible.builtin.fetch",
    "ansible.builtin.file",
    "ansible.builtin.git",
    "ansible.builtin.group",
    "ansible.builtin.include_tasks",
    "ansible.builtin.include_vars",
    "ansible.builtin.meta",
    "ansible.builtin.pip",
    "ansible.builtin.set_fact",
    "ansible.builtin.slurp",
    "ansible.builtin.stat",
    "ansible.builtin.systemd",
    "ansible.builtin.template",
    "ansible.builtin.unarchive",
    "ansible.builtin.uri",
    "ansible.builtin.user",
  ),
  ...core("lookup", "ansible.builtin.password", "first_found"),
  {
    kind: "callback",
    name: "wod_events",
    fix: "restore ansible/callback_plugins/wod_events.py (git checkout -- ansible/callback_plugins) " +
      "and keep callback_plugins in ansible/ansible.cfg",
  },
];

export interface DoctorContext {
  root: string;
  /** PATH to find programs in (injectable for tests). */
  path: string;
  uid: number;
  /** Environment whose listener ports are checked, and whether a busy port is a failure. */
  env: string;
  envRequired: boolean;
  sandboxDir: string;
  imageCache: string;
  /** Pinned Deno version of .ci/setup. */
  denoWanted?: string;
}

export function which(name: string, path: string): string | undefined {
  if (name.includes("/")) return isExecutable(name) ? name : undefined;
  for (const d of path.split(":")) {
    if (!d) continue;
    const p = join(d, name);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

function isExecutable(p: string): boolean {
  try {
    const st = Deno.statSync(p);
    return st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

type Ran = ExecResult;

/** What a probe sees of our environment: the base (exec.ts) and what changes how Python and Ansible run. */
const PROBE_INHERIT = ["PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "ANSIBLE_*"];

async function run(
  cmd: string,
  args: string[],
  opts: { stdin?: string; cwd?: string; env?: Record<string, string> } = {},
): Promise<Ran> {
  return await exec(cmd, args, { ...opts, inherit: PROBE_INHERIT, allowFailure: true });
}

/** The fields every required check of this machine shares. */
function controllerCheck(name: string, usedBy: string) {
  return { scope: "controller", name, required: true, usedBy };
}

/** -1, 0, 1 for dotted numeric versions ("2.14.18" vs "2.14"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map((x) => parseInt(x, 10) || 0);
  const pb = b.split(".").map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

function firstLine(s: string): string {
  return s.trim().split("\n").find((l) => l.trim() !== "")?.trim() ?? "";
}

/** The interpreter ansible-playbook runs with (its #! line), which is the one that must import jinja2. */
async function ansiblePython(path: string): Promise<string | undefined> {
  const ap = which("ansible-playbook", path);
  if (!ap) return undefined;
  const head = (await Deno.readTextFile(ap)).slice(0, 200);
  const m = head.match(/^#!\s*(\S+)(?:\s+(\S+))?/);
  if (!m) return undefined;
  if (m[1].endsWith("/env") && m[2]) return which(m[2], path);
  return m[1];
}

async function runRequirement(
  r: Requirement,
  ctx: DoctorContext,
  py: Promise<string | undefined>,
): Promise<CheckResult> {
  const base = { scope: "controller", name: r.name, required: r.required, usedBy: r.usedBy };
  const p = r.probe;
  if ("program" in p) {
    const found = which(p.program, ctx.path);
    if (!found) return { ...base, status: "missing", detail: `${p.program} is not on PATH`, fix: r.fix };
    if (!p.version) return { ...base, status: "ok", detail: found };
    let out: Ran;
    try {
      out = await run(found, p.version.args);
    } catch (err) {
      return {
        ...base,
        status: "failed",
        detail: `${found} did not run: ${(err as Error).message}`,
        fix: r.fix,
      };
    }
    const text = out.stdout + "\n" + out.stderr;
    const m = text.match(new RegExp(p.version.pattern.source + String.raw`(\d+(?:\.\d+)+)`));
    if (!m) {
      return {
        ...base,
        status: "failed",
        detail: `${found}: no version in the output of ${p.version.args.join(" ")}: ${
          firstLine(text).slice(0, 120)
        }`,
        fix: r.fix,
      };
    }
    if (compareVersions(m[1], p.version.min) < 0) {
      return {
        ...base,
        status: "wrong-version",
        detail: `${m[1]} found, ${p.version.min} or newer needed`,
        fix: r.fix,
      };
    }
    return { ...base, status: "ok", detail: `${m[1]} (${found})` };
  }
  if ("python" in p) {
    const interp = p.via === "path" ? which("python3", ctx.path) : await py;
    if (!interp) {
      return {
        ...base,
        status: "missing",
        detail: p.via === "path" ? "python3 is not on PATH" : "no Python: ansible-playbook is missing",
        fix: p.via === "path" ? apt("python3") : REQUIREMENTS[0].fix,
      };
    }
    const out = await run(interp, ["-c", `import ${p.python}`]);
    return out.code === 0
      ? { ...base, status: "ok", detail: `${interp} imports ${p.python}` }
      : { ...base, status: "missing", detail: `${interp} cannot import ${p.python}`, fix: r.fix };
  }
  if ("perl" in p) {
    const perl = which("perl", ctx.path);
    if (!perl) return { ...base, status: "missing", detail: "perl is not on PATH", fix: apt("perl-base") };
    const out = await run(perl, [`-M${p.perl}`, "-e1"]);
    return out.code === 0
      ? { ...base, status: "ok", detail: `perl loads ${p.perl}` }
      : { ...base, status: "missing", detail: `perl cannot load ${p.perl}`, fix: r.fix };
  }
  const ok = p.executable ? isExecutable(p.file) : (() => {
    try {
      Deno.statSync(p.file);
      return true;
    } catch {
      return false;
    }
  })();
  return ok
    ? { ...base, status: "ok", detail: p.file }
    : { ...base, status: "missing", detail: `${p.file} does not exist`, fix: r.fix };
}

/** Deno itself: at least the version .ci/setup pins. */
function denoCheck(ctx: DoctorContext): CheckResult {
  const base = { scope: "controller", name: "deno", required: true, usedBy: "the toolkit" };
  const have = Deno.version.deno;
  const want = ctx.denoWanted;
  if (want && compareVersions(have, want) < 0) {
    return {
      ...base,
      status: "wrong-version",
      detail: `${have} found, ${want} or newer needed`,
      fix: "bash .ci/setup (installs the pinned deno from npm)",
    };
  }
  return { ...base, status: "ok", detail: `${have}${want ? ` (>= ${want})` : ""}` };
}

function rootCheck(ctx: DoctorContext): CheckResult {
  const base = controllerCheck("root", "the sandbox, the demo and the tests (mounts, namespaces, chroot)");
  return ctx.uid === 0
    ? { ...base, status: "ok", detail: "running as uid 0" }
    : { ...base, status: "failed", detail: `running as uid ${ctx.uid}`, fix: "run as root (sudo -i)" };
}

async function namespacesCheck(ctx: DoctorContext): Promise<CheckResult> {
  const base = controllerCheck("namespaces", "the sandbox (mount, pid, uts, ipc namespaces)");
  const unshare = which("unshare", ctx.path);
  if (!unshare) {
    return { ...base, status: "skipped", detail: "unshare is missing (see above)", fix: apt("util-linux") };
  }
  const out = await run(unshare, ["--mount", "--pid", "--uts", "--ipc", "--fork", "true"]);
  return out.code === 0 ? { ...base, status: "ok", detail: "unshare --mount --pid --uts --ipc works" } : {
    ...base,
    status: "failed",
    detail: `unshare failed: ${firstLine(out.stderr)}`,
    fix: "run as root on a host or VM that allows namespaces (in a container: --privileged)",
  };
}

const PLUGIN_PROBE = String.raw`
import json, sys
from ansible.plugins import loader as L
if hasattr(L, "init_plugin_loader"):
    L.init_plugin_loader()
loaders = {"module": L.module_loader, "lookup": L.lookup_loader, "callback": L.callback_loader}
out = {}
for kind, name in json.load(sys.stdin):
    try:
        ctx = loaders[kind].find_plugin_with_context(name)
        ok = bool(ctx.resolved)
        if ok and kind == "callback":
            ok = loaders[kind].get(name, class_only=True) is not None
        out[kind + ":" + name] = ok
    except Exception as e:
        out[kind + ":" + name] = False
print(json.dumps(out))
`;

/** Each Ansible plugin of ANSIBLE_PLUGINS and of ansible/ resolves with the installed Ansible. */
async function pluginChecks(ctx: DoctorContext, py: Promise<string | undefined>): Promise<CheckResult[]> {
  const used = await ansibleUses(ctx.root);
  const all = new Map<string, { kind: PluginKind; name: string; fix: string; files: string[] }>();
  for (const p of ANSIBLE_PLUGINS) all.set(`${p.kind}:${p.name}`, { ...p, files: [] });
  for (const u of used) {
    const key = `${u.kind}:${u.name}`;
    const known = all.get(key);
    if (known) known.files = u.files;
    else {
      const coll = u.name.split(".").slice(0, 2).join(".");
      all.set(key, {
        kind: u.kind,
        name: u.name,
        files: u.files,
        fix: u.name.split(".").length >= 3
          ? `ansible-galaxy collection install ${coll} (and add it to ANSIBLE_PLUGINS in scripts/doctor/checks.ts)`
          : "name it with its collection (ansible.builtin.*) and add it to ANSIBLE_PLUGINS in scripts/doctor/checks.ts",
      });
    }
  }
  const interp = await py;
  const entries = [...all.values()];
  const mk = (e: (typeof entries)[number], status: Status, detail: string): CheckResult => ({
    scope: "controller",
    name: `ansible ${e.kind}: ${e.name}`,
    required: true,
    status,
    detail,
    usedBy: e.files.join(", ") || "scripts/doctor/checks.ts",
    ...(status === "ok" ? {} : { fix: e.fix }),
  });
  if (!interp) {
    return [{
      scope: "controller",
      name: `ansible plugins (${entries.length})`,
      required: true,
      status: "skipped",
      detail: "not checked: ansible-playbook is missing",
      fix: REQUIREMENTS[0].fix,
    }];
  }
  const ansibleDir = join(ctx.root, "ansible");
  const out = await run(interp, ["-c", PLUGIN_PROBE], {
    stdin: JSON.stringify(entries.map((e) => [e.kind, e.name])),
    cwd: ansibleDir,
    env: {
      ANSIBLE_CONFIG: join(ansibleDir, "ansible.cfg"),
      ANSIBLE_CALLBACK_PLUGINS: join(ansibleDir, "callback_plugins"),
      ANSIBLE_NOCOLOR: "1",
    },
  });
  let resolved: Record<string, boolean>;
  try {
    resolved = JSON.parse(out.stdout.trim().split("\n").pop() ?? "");
  } catch {
    return [{
      scope: "controller",
      name: `ansible plugins (${entries.length})`,
      required: true,
      status: "failed",
      detail: `${interp} could not load Ansible's plugin loader: ${firstLine(out.stderr).slice(0, 200)}`,
      fix: REQUIREMENTS[0].fix,
    }];
  }
  return entries.map((e) =>
    resolved[`${e.kind}:${e.name}`]
      ? mk(e, "ok", "resolves with the installed Ansible")
      : mk(e, "missing", "does not resolve with the installed Ansible")
  );
}

/** Python modules of the backend scripts (they run on the backends; stdlib only, checked here too). */
async function backendImportsCheck(ctx: DoctorContext): Promise<CheckResult> {
  const mods = await backendPythonImports(ctx.root);
  const base = controllerCheck(
    `python: backend script modules (${mods.length})`,
    "ansible/roles/*/files (run on the backends)",
  );
  const py = which("python3", ctx.path) ?? "/usr/bin/python3";
  const out = await run(py, [
    "-c",
    "import importlib,sys\nfor m in sys.argv[1:]:\n  try: importlib.import_module(m)\n  except Exception: print(m)",
    ...mods,
  ]).catch(() => undefined);
  if (!out) return { ...base, status: "missing", detail: "python3 is not on PATH", fix: apt("python3") };
  const missing = out.stdout.trim().split("\n").filter(Boolean);
  return missing.length === 0 ? { ...base, status: "ok", detail: mods.join(" ") } : {
    ...base,
    status: "missing",
    detail: `${py} cannot import ${missing.join(", ")}`,
    fix: apt("python3 (Debian's full standard library)"),
  };
}

function existingAncestor(p: string): string {
  let cur = p;
  while (true) {
    try {
      Deno.statSync(cur);
      return cur;
    } catch {
      const up = dirname(cur);
      if (up === cur) return "/";
      cur = up;
    }
  }
}

async function diskCheck(ctx: DoctorContext): Promise<CheckResult> {
  const base = controllerCheck("free disk (sandbox)", "the sandbox image and its per-run layer");
  const dirs = [...new Set([existingAncestor(ctx.sandboxDir), existingAncestor(ctx.imageCache)])];
  const df = which("df", ctx.path) ?? "/bin/df";
  const out = await run(df, ["-Pk", ...dirs]).catch(() => undefined);
  if (!out || out.code !== 0) {
    return { ...base, status: "failed", detail: "df failed", fix: apt("coreutils") };
  }
  const rows = out.stdout.trim().split("\n").slice(1).map((l) => l.trim().split(/\s+/));
  const worst = rows.map((r) => ({ mount: r[5], gib: parseInt(r[3], 10) / 1024 / 1024 }))
    .sort((a, b) => a.gib - b.gib)[0];
  const where = `${ctx.sandboxDir}, ${ctx.imageCache}`;
  if (!worst) {
    return { ...base, status: "failed", detail: `no df output for ${where}`, fix: "check the file systems" };
  }
  return worst.gib >= MIN_FREE_GIB
    ? { ...base, status: "ok", detail: `${worst.gib.toFixed(1)} GiB free on ${worst.mount} (${where})` }
    : {
      ...base,
      status: "failed",
      detail: `${worst.gib.toFixed(1)} GiB free on ${worst.mount}, ${MIN_FREE_GIB} GiB needed (${where})`,
      fix: `free space on ${worst.mount}, or point WOD_SANDBOX_DIR / WOD_SANDBOX_CACHE at a larger disk`,
    };
}

/** HOST:PORT the environment's listener binds (orders.listen) and its health port (listen.ts: +1). */
export async function listenerAddresses(
  root: string,
  env: string,
): Promise<{ file: string; addrs: { host: string; port: number; what: string }[] }> {
  const { parse } = await import("yaml");
  const file = join(root, "environments", `${env}.yaml`);
  const doc = parse(await Deno.readTextFile(file)) as { orders?: { listen?: string } } | null;
  const listen = doc?.orders?.listen ?? "127.0.0.1:10025";
  const m = listen.match(/^\[?([^\]]*)\]?:(\d+)$/);
  if (!m) return { file, addrs: [] };
  const port = Number(m[2]);
  const addrs = [{ host: m[1], port, what: "SMTP" }];
  if (port !== 0) addrs.push({ host: "127.0.0.1", port: port + 1, what: "health" });
  return { file, addrs };
}

async function portChecks(ctx: DoctorContext): Promise<CheckResult[]> {
  let file: string;
  let addrs: { host: string; port: number; what: string }[];
  try {
    ({ file, addrs } = await listenerAddresses(ctx.root, ctx.env));
  } catch (err) {
    return [{
      scope: "controller",
      name: `listener ports (${ctx.env})`,
      required: ctx.envRequired,
      status: "failed",
      detail: `cannot read environments/${ctx.env}.yaml: ${(err as Error).message}`,
      fix: `check environments/${ctx.env}.yaml (deno task wod validate)`,
    }];
  }
  return addrs.map(({ host, port, what }) => {
    const base = {
      scope: "controller",
      name: `listener ${what} port ${host}:${port} (${ctx.env})`,
      required: ctx.envRequired,
      usedBy: `wod listen --env ${ctx.env} (orders.listen in ${file.slice(ctx.root.length + 1)})`,
    };
    try {
      const l = Deno.listen({ hostname: host, port, transport: "tcp" });
      l.close();
      return { ...base, status: "ok" as Status, detail: "can bind" };
    } catch (err) {
      const busy = err instanceof Deno.errors.AddrInUse;
      return {
        ...base,
        status: "failed" as Status,
        detail: busy
          ? "in use by another process (a wod listener already running?)"
          : `cannot bind: ${(err as Error).message}`,
        fix: busy
          ? `stop what listens there (ss -ltnp 'sport = :${port}') or change orders.listen`
          : port < 1024
          ? "run as root or choose a port >= 1024 in orders.listen"
          : "use an address of this machine in orders.listen",
      };
    }
  });
}

/** The Deno version .ci/setup pins (DENO_VERSION=x.y.z), if the file is there. */
export async function pinnedDeno(root: string): Promise<string | undefined> {
  try {
    return (await Deno.readTextFile(join(root, ".ci/setup"))).match(/^DENO_VERSION=([\d.]+)/m)?.[1];
  } catch {
    return undefined;
  }
}

/** All controller checks, in table order, run concurrently. */
export async function controllerChecks(ctx: DoctorContext): Promise<CheckResult[]> {
  const py = ansiblePython(ctx.path).catch(() => undefined);
  const parts = await Promise.all([
    Promise.resolve([denoCheck(ctx), rootCheck(ctx)]),
    Promise.all(REQUIREMENTS.map((r) => runRequirement(r, ctx, py))),
    pluginChecks(ctx, py),
    Promise.all([backendImportsCheck(ctx), namespacesCheck(ctx), diskCheck(ctx)]),
    portChecks(ctx),
  ]);
  return parts.flat();
}
