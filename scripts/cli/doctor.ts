// wod doctor: is everything the project runs installed and usable, here and on the backends?
import { parseArgs, repoRoot } from "../common/args.ts";
import { UsageError } from "../common/errors.ts";
import { type CheckResult, controllerChecks, pinnedDeno } from "../doctor/checks.ts";
import { backendChecks } from "../doctor/backend.ts";
import { IMAGE_CACHE, SANDBOX_DIR } from "../backend/sandbox.ts";

export const help = `
Usage: deno task wod doctor [--env ENV] [--format text|json]

Checks that every program, module and capability wod uses is installed and usable, and prints one
line per check (ok, MISSING, WRONG VERSION, FAILED, or WARN for an optional one) with the exact fix
(the Debian package to install, or the setting) under each failure.

On this machine (the controller): root, Deno (at least the version .ci/setup pins), ansible-playbook
(ansible-core >= 2.14) and every Ansible module, lookup and callback the playbooks, roles and runner
name (resolved with the installed Ansible), ansible-lint, yamllint, Ansible's jinja2 and passlib,
ssh, git, debootstrap, unshare and working namespaces, swaks, Net::SSLeay, smtp-source, postfix,
openssl, CA certificates, the Python modules of the backend scripts, free disk for the sandbox
image, and whether the listener ports of the environment can be bound. Optional (warnings):
chromium (only the browser end-to-end test) and npm (only .ci/setup).

  --env ENV       also check each backend of environments/ENV.yaml over SSH (for \`local\`, the
                  sandbox when it runs), and treat a listener port that cannot be bound as an error;
                  an unreachable backend is one warning line. Without --env, the listener ports of
                  \`local\` are checked as warnings.
  --format FMT    text (default) or json ({"ok", "summary", "checks": [...]})

Exit code: 0 when every required check passes (warnings allowed), 1 otherwise.
Remote backends use WOD_SSH_KEY_FILE and WOD_KNOWN_HOSTS_FILE when set.
`;

const LABEL: Record<string, string> = {
  ok: "ok",
  missing: "MISSING",
  "wrong-version": "WRONG VERSION",
  failed: "FAILED",
  skipped: "SKIPPED",
};

export function isFailure(c: CheckResult): boolean {
  return c.required && c.status !== "ok";
}

export function summarize(checks: CheckResult[]) {
  const failed = checks.filter(isFailure).length;
  const warnings = checks.filter((c) => !c.required && c.status !== "ok").length;
  return { checks: checks.length, ok: checks.filter((c) => c.status === "ok").length, failed, warnings };
}

export function formatText(checks: CheckResult[], seconds: number): string {
  const lines: string[] = [];
  let scope = "";
  for (const c of checks) {
    if (c.scope !== scope) {
      scope = c.scope;
      lines.push(
        scope === "controller" ? "Controller (this machine):" : `${scope[0].toUpperCase()}${scope.slice(1)}:`,
      );
    }
    const label = c.status === "ok"
      ? "ok"
      : c.required
      ? LABEL[c.status]
      : `WARN ${LABEL[c.status].toLowerCase()}`;
    const optional = !c.required && c.usedBy ? ` (optional: ${c.usedBy})` : "";
    lines.push(`  ${label.padEnd(14)} ${c.name}: ${c.detail}${optional}`);
    if (c.status !== "ok" && c.fix) lines.push(`  ${"".padEnd(14)}   fix: ${c.fix}`);
  }
  const s = summarize(checks);
  lines.push(
    "",
    `${s.checks} checks: ${s.ok} ok, ${s.failed} failed, ${s.warnings} warning(s) (${seconds.toFixed(1)} s)` +
      (s.failed ? " — fix the lines marked above, then run `deno task wod doctor` again" : ""),
  );
  return lines.join("\n");
}

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs("doctor", args, {
    env: { type: "string" },
    format: { type: "string", default: "text" },
  });
  const format = values.format as string;
  if (format !== "text" && format !== "json") {
    throw new UsageError(`Invalid --format "${format}": expected text or json`);
  }
  const started = performance.now();
  const root = repoRoot();
  const envName = values.env ?? "local";
  const checks = await controllerChecks({
    root,
    path: Deno.env.get("PATH") ?? "",
    uid: Deno.uid() ?? -1,
    env: envName,
    envRequired: values.env !== undefined,
    sandboxDir: SANDBOX_DIR,
    imageCache: IMAGE_CACHE,
    denoWanted: await pinnedDeno(root),
  });
  if (values.env !== undefined) {
    const { loadConfig, requireEnvironment } = await import("../config/load.ts");
    const env = requireEnvironment(await loadConfig(root), values.env);
    const perBackend = await Promise.all(env.value.backends.map((b) => backendChecks(root, values.env!, b)));
    checks.push(...perBackend.flat());
  }
  const seconds = (performance.now() - started) / 1000;
  const s = summarize(checks);
  if (format === "json") {
    console.log(JSON.stringify({ ok: s.failed === 0, summary: { ...s, seconds }, checks }, null, 2));
  } else {
    console.log(formatText(checks, seconds));
  }
  return s.failed === 0 ? 0 : 1;
}
