// The version of a backend's install, computed on the controller: a SHA-256 over the code that
// `wod install` runs (ansible/install.yml and every file of the roles it names, the seat script
// roles/wod_backend/files/wod-seat among them) and over the environment values it passes (the extra
// variables, as canonical JSON). The install writes it to the host (/etc/wod/install.json, see
// ansible/roles/wod_install); `wod drift` and `wod apply` compare the two (scripts/backend/install.ts).
import { createHash } from "node:crypto";
import { join, relative } from "node:path";
import { parse } from "yaml";
import { WodError } from "../common/errors.ts";

export interface Fingerprint {
  /** sha256 of code and values together: what the host records and drift compares. */
  fingerprint: string;
  /** sha256 of the playbook and roles alone (a changed seat script or role default changes it). */
  code: string;
  /** sha256 of the canonical JSON of the values passed. */
  values: string;
  /** The files hashed into `code`, relative to the ansible folder, sorted. */
  files: string[];
}

/** JSON with object keys sorted at every level (arrays keep their order). */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${
      Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) =>
        `${JSON.stringify(k)}:${canonicalJson(o[k])}`
      ).join(",")
    }}`;
  }
  return JSON.stringify(v ?? null);
}

/** The roles a playbook names (`roles:` of each play, `role:` entries or plain names). */
export async function playbookRoles(ansibleDir: string, playbook: string): Promise<string[]> {
  const file = join(ansibleDir, playbook);
  let plays: unknown;
  try {
    plays = parse(await Deno.readTextFile(file));
  } catch (err) {
    throw new WodError(`Cannot read the playbook ${file}`, { cause: err });
  }
  const roles = new Set<string>();
  for (const play of Array.isArray(plays) ? plays : []) {
    for (const r of (play as { roles?: unknown[] })?.roles ?? []) {
      const name = typeof r === "string" ? r : (r as { role?: string; name?: string })?.role ??
        (r as { name?: string })?.name;
      if (typeof name === "string") roles.add(name);
    }
  }
  return [...roles].sort();
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      if (e.name === "__pycache__" || e.name.endsWith(".pyc")) continue;
      const p = join(d, e.name);
      if (e.isDirectory) await walk(p);
      else if (e.isFile) out.push(p);
    }
  };
  await walk(dir);
  return out;
}

/** The fingerprint of installing `playbook` (default install.yml) from `ansibleDir` with `values`. */
export async function installFingerprint(
  ansibleDir: string,
  values: Record<string, unknown>,
  playbook = "install.yml",
): Promise<Fingerprint> {
  const files = [join(ansibleDir, playbook)];
  for (const role of await playbookRoles(ansibleDir, playbook)) {
    const dir = join(ansibleDir, "roles", role);
    try {
      files.push(...await listFiles(dir));
    } catch (err) {
      throw new WodError(`Role "${role}" named by ${playbook} has no folder ${dir}`, { cause: err });
    }
  }
  const rel = files.map((f) => relative(ansibleDir, f)).sort();
  const code = createHash("sha256");
  for (const f of rel) {
    const content = await Deno.readFile(join(ansibleDir, f));
    code.update(`${f}\0${createHash("sha256").update(content).digest("hex")}\n`);
  }
  const codeHex = code.digest("hex");
  const valuesHex = createHash("sha256").update(canonicalJson(values)).digest("hex");
  const fingerprint = createHash("sha256").update(`code ${codeHex}\nvalues ${valuesHex}\n`).digest("hex");
  return { fingerprint, code: codeHex, values: valuesHex, files: rel };
}
