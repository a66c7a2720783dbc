// What the project asks of Ansible, read from the code: the modules the playbooks and roles in
// ansible/ name as task keys, the lookup plugins they call (lookup()/query()/q() and with_<name>
// loops), and the callbacks (ansible.cfg and the runner's ANSIBLE_STDOUT_CALLBACK in
// scripts/backend/ansible.ts). Doctor resolves each of them; its test fails when one is missing
// from doctor's table (scripts/doctor/checks.ts).
import { join, relative } from "node:path";
import { parse } from "yaml";

export type PluginKind = "module" | "lookup" | "callback";

export interface PluginUse {
  kind: PluginKind;
  name: string;
  /** Files (relative to the repository) that name it. */
  files: string[];
}

/** Task keywords (not module names), from Ansible's playbook keyword list for tasks and blocks. */
const TASK_KEYWORDS = new Set([
  "action",
  "always",
  "any_errors_fatal",
  "args",
  "async",
  "become",
  "become_exe",
  "become_flags",
  "become_method",
  "become_user",
  "block",
  "changed_when",
  "check_mode",
  "collections",
  "connection",
  "debugger",
  "delay",
  "delegate_facts",
  "delegate_to",
  "diff",
  "environment",
  "failed_when",
  "ignore_errors",
  "ignore_unreachable",
  "listen",
  "local_action",
  "loop",
  "loop_control",
  "module_defaults",
  "name",
  "no_log",
  "notify",
  "poll",
  "port",
  "register",
  "remote_user",
  "rescue",
  "retries",
  "run_once",
  "tags",
  "throttle",
  "timeout",
  "until",
  "vars",
  "when",
]);

const PLAY_TASK_LISTS = ["pre_tasks", "tasks", "post_tasks", "handlers"];

type Uses = Map<string, PluginUse>;

function add(uses: Uses, kind: PluginKind, name: string, file: string): void {
  const key = `${kind}:${name}`;
  const u = uses.get(key) ?? { kind, name, files: [] };
  if (!u.files.includes(file)) u.files.push(file);
  uses.set(key, u);
}

/** lookup('x', ...), query("x"), q('x') in any string of a task. */
const LOOKUP_CALL = /\b(?:lookup|query|q)\(\s*['"]([A-Za-z0-9_.]+)['"]/g;

function scanStrings(v: unknown, file: string, uses: Uses): void {
  if (typeof v === "string") {
    for (const m of v.matchAll(LOOKUP_CALL)) add(uses, "lookup", m[1], file);
  } else if (Array.isArray(v)) {
    for (const x of v) scanStrings(x, file, uses);
  } else if (v && typeof v === "object") {
    for (const x of Object.values(v)) scanStrings(x, file, uses);
  }
}

function scanTasks(list: unknown, file: string, uses: Uses): void {
  if (!Array.isArray(list)) return;
  for (const task of list) {
    if (!task || typeof task !== "object" || Array.isArray(task)) continue;
    const t = task as Record<string, unknown>;
    for (const [key, value] of Object.entries(t)) {
      if (key === "block" || key === "rescue" || key === "always") {
        scanTasks(value, file, uses);
        continue;
      }
      if (key.startsWith("with_")) {
        add(uses, "lookup", key.slice(5), file);
        scanStrings(value, file, uses);
        continue;
      }
      if (key === "action" || key === "local_action") {
        const mod = typeof value === "string"
          ? value.trim().split(/\s+/)[0]
          : (value as Record<string, unknown> | null)?.module;
        if (typeof mod === "string" && mod) add(uses, "module", mod, file);
        scanStrings(value, file, uses);
        continue;
      }
      if (TASK_KEYWORDS.has(key)) {
        scanStrings(value, file, uses);
        continue;
      }
      add(uses, "module", key, file);
      scanStrings(value, file, uses);
    }
  }
}

function scanPlaybook(doc: unknown, file: string, uses: Uses): void {
  if (!Array.isArray(doc)) return;
  for (const play of doc) {
    if (!play || typeof play !== "object") continue;
    const p = play as Record<string, unknown>;
    if (typeof p.import_playbook === "string") continue;
    for (const k of PLAY_TASK_LISTS) scanTasks(p[k], file, uses);
    scanStrings(p.vars, file, uses);
  }
}

async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && /\.ya?ml$/.test(e.name)) out.push(join(dir, e.name));
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return out.sort();
}

/** Every module, lookup and callback plugin the repository's Ansible content and runner use. */
export async function ansibleUses(root: string): Promise<PluginUse[]> {
  const uses: Uses = new Map();
  const ansibleDir = join(root, "ansible");
  const rel = (f: string) => relative(root, f);
  const load = async (f: string) => parse(await Deno.readTextFile(f)) as unknown;

  for (const f of await yamlFiles(ansibleDir)) scanPlaybook(await load(f), rel(f), uses);
  const rolesDir = join(ansibleDir, "roles");
  for await (const role of Deno.readDir(rolesDir)) {
    if (!role.isDirectory) continue;
    for (const sub of ["tasks", "handlers"]) {
      for (const f of await yamlFiles(join(rolesDir, role.name, sub))) {
        scanTasks(await load(f), rel(f), uses);
      }
    }
    for (const sub of ["defaults", "vars"]) {
      for (const f of await yamlFiles(join(rolesDir, role.name, sub))) {
        scanStrings(await load(f), rel(f), uses);
      }
    }
  }

  // Callbacks: ansible.cfg's stdout_callback / callbacks_enabled, the runner's environment.
  const cfgFile = join(ansibleDir, "ansible.cfg");
  const cfg = await Deno.readTextFile(cfgFile);
  for (const m of cfg.matchAll(/^\s*(stdout_callback|callbacks_enabled|callback_whitelist)\s*=\s*(.+)$/gm)) {
    for (const name of m[2].split(",").map((s) => s.trim()).filter(Boolean)) {
      add(uses, "callback", name, rel(cfgFile));
    }
  }
  const runner = join(root, "scripts/backend/ansible.ts");
  const src = await Deno.readTextFile(runner);
  for (const m of src.matchAll(/ANSIBLE_(?:STDOUT_CALLBACK|CALLBACKS_ENABLED)\s*:\s*"([^"]+)"/g)) {
    for (const name of m[1].split(",").map((s) => s.trim()).filter(Boolean)) {
      add(uses, "callback", name, rel(runner));
    }
  }
  return [...uses.values()].sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
}

/** Top-level modules the backend's Python scripts (ansible/roles/* /files/*) import. */
export async function backendPythonImports(root: string): Promise<string[]> {
  const mods = new Set<string>();
  const rolesDir = join(root, "ansible/roles");
  for await (const role of Deno.readDir(rolesDir)) {
    const dir = join(rolesDir, role.name, "files");
    let entries: Deno.DirEntry[] = [];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch {
      continue;
    }
    for (const e of entries) {
      if (!e.isFile) continue;
      const text = await Deno.readTextFile(join(dir, e.name));
      if (!e.name.endsWith(".py") && !/^#!.*python/.test(text)) continue;
      for (
        const m of text.matchAll(
          /^\s*(?:import\s+([A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*)|from\s+([A-Za-z_][\w.]*)\s+import\b)/gm,
        )
      ) {
        const names = m[1] ? m[1].split(",").map((s) => s.trim()) : [m[2]];
        for (const n of names) if (n && !n.startsWith("__future__")) mods.add(n.split(".")[0]);
      }
    }
  }
  return [...mods].sort();
}
