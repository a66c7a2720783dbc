// Test helpers for config fixtures: a temp copy of a fixture repo, exact edits, and running the real CLI.
import { cpSync } from "node:fs";
import { dirname, join } from "node:path";
import { DENO_CHILD_INHERIT, exec } from "../common/exec.ts";

export const REPO_ROOT = new URL("../../", import.meta.url).pathname;
export const TESTDATA = new URL("./testdata/", import.meta.url).pathname;
export const CORPUS = new URL("../../../shared/corpus/", import.meta.url).pathname;

/** A temp copy of scripts/config/testdata/<name> (default: the small valid repo). */
export async function copyFixture(name = "repo"): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "wod-config-" });
  cpSync(join(TESTDATA, name), dir, { recursive: true });
  return dir;
}

/** Replace exactly one occurrence of `from` in a file (throws when absent, so fixtures stay in sync). */
export async function edit(root: string, file: string, from: string, to: string): Promise<void> {
  const p = join(root, file);
  const text = await Deno.readTextFile(p);
  const i = text.indexOf(from);
  if (i < 0) throw new Error(`Fixture edit: ${JSON.stringify(from)} not found in ${file}`);
  await Deno.writeTextFile(p, text.slice(0, i) + to + text.slice(i + from.length));
}

export async function write(root: string, file: string, text: string): Promise<void> {
  const p = join(root, file);
  await Deno.mkdir(dirname(p), { recursive: true });
  await Deno.writeTextFile(p, text);
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `deno run -A scripts/wod.ts ARGS` (the real CLI) with cwd and WOD_ROOT set to `root`. */
export async function runWod(
  root: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  const cli = [
    "run",
    "-A",
    "--quiet",
    "--config",
    join(REPO_ROOT, "deno.json"),
    join(REPO_ROOT, "scripts/wod.ts"),
  ];
  const out = await exec(Deno.execPath(), [...cli, ...args], {
    cwd: root,
    env: { WOD_ROOT: root, NO_COLOR: "1", ...env },
    inherit: DENO_CHILD_INHERIT,
    allowFailure: true,
  });
  return { code: out.code, stdout: out.stdout, stderr: out.stderr };
}

/** Run a test body with a temp copy of a fixture, removed afterwards even on failure. */
export async function withFixture(fn: (root: string) => Promise<void>, name = "repo"): Promise<void> {
  const root = await copyFixture(name);
  try {
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** Branding variables the corpus notebooks use (the original platform's names). */
export const SANDBOX_BRANDING = {
  BRANDING: "wod",
  BRANDINGWOD: "Workshops-on-Demand",
  BRANDINGLOGO: "http://localhost/logo.png",
  BRANDINGURL: "http://localhost",
  SURVEYURL: "http://localhost/survey",
  SURVEYCHALURL: "http://localhost/survey-challenge",
};

/**
 * The text of environments/local.yaml for a test repository whose one backend is the shared sandbox:
 * the given seat ranges per workshop and, unless `vars` says otherwise, the branding variables.
 */
export function sandboxEnvYaml(
  ranges: Record<string, [number, number]>,
  vars: Record<string, string> | null = SANDBOX_BRANDING,
): string {
  const lines = [
    "name: local",
    "admin_user: wodadmin",
    "backends:",
    "  - name: jup1",
    "    sandbox: true",
    "    host: 127.0.0.1",
    "    fqdn: localhost",
    "    students: [1, 120]",
    "    uid_base: 2000",
  ];
  if (Object.keys(ranges).length) {
    lines.push("    ranges:", ...Object.entries(ranges).map(([id, [a, b]]) => `      ${id}: [${a}, ${b}]`));
  }
  if (vars) lines.push("vars:", ...Object.entries(vars).map(([k, v]) => `  ${k}: ${v}`));
  return lines.join("\n") + "\n";
}
