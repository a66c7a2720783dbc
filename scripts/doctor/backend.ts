// wod doctor --env ENV: the same kind of checks on each backend of the environment, over SSH (one
// connection per backend, one fixed POSIX sh script read from stdin). The sandbox of `local` is
// checked when it runs; an unreachable backend gets one "skipped" line (a warning).
import { exec, type ExecResult } from "../common/exec.ts";
import { backendPythonImports } from "./ansible_uses.ts";
import type { CheckResult, Status } from "./checks.ts";
import { connectionFor } from "../config/connection.ts";
import type { EnvironmentBackend } from "../config/types.gen.ts";

/** Free space the backend needs on / and /home (packages, venv, student homes). */
export const BACKEND_MIN_FREE_GIB = 2;

// Prints one line per check: status|name|detail|fix. Arguments: "systemd" or "sandbox", then the
// Python modules of the backend scripts (identifiers checked by the caller).
export const REMOTE_SCRIPT = `
set -u
# The tools run as root (sudo's secure_path): look in the sbin directories too.
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
say() { printf '%s|%s|%s|%s\n' "$1" "$2" "$3" "$4"; }
manager=$1; shift
if [ -r /etc/os-release ]; then . /etc/os-release; fi
case "\${ID:-}" in
  debian|ubuntu) say ok os "\${PRETTY_NAME:-$ID}" "" ;;
  *) say failed os "\${PRETTY_NAME:-unknown}: the roles support Debian and Ubuntu" "use Debian 12 or Ubuntu 22.04+" ;;
esac
prog() { # name package
  if command -v "$1" >/dev/null 2>&1; then say ok "$1" "$(command -v "$1")" ""; else say missing "$1" "not on PATH" "apt-get install $2"; fi
}
prog python3 python3
prog apt-get apt
prog useradd passwd
prog groupadd passwd
prog usermod passwd
prog tar tar
prog gzip gzip
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then say ok sudo "$(id -un) becomes root with sudo" ""
  else say failed sudo "$(id -un) cannot become root with sudo -n (Ansible runs with become)" "give $(id -un) passwordless sudo (a file in /etc/sudoers.d)"; fi
fi
if [ "$manager" = systemd ]; then prog systemctl systemd; fi
if command -v python3 >/dev/null 2>&1; then
  v=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  if python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)'; then
    say ok "python3 version" "$v" ""
  else
    say wrong-version "python3 version" "$v found, 3.9 or newer needed" "upgrade the OS to Debian 12 or Ubuntu 22.04+"
  fi
  missing=$(python3 -c 'import importlib, sys
for m in sys.argv[1:]:
    try:
        importlib.import_module(m)
    except Exception:
        print(m)' "$@" | tr '\\n' ' ')
  if [ -z "$missing" ]; then say ok "python: backend script modules ($#)" "$*" ""
  else say missing "python: backend script modules ($#)" "cannot import $missing" "apt-get install python3"; fi
  if python3 -c 'import apt' 2>/dev/null; then say ok "python: apt" "python3-apt" ""
  else say missing "python: apt" "the apt module of Ansible needs python3-apt" "apt-get install python3-apt"; fi
fi
for d in / /home; do
  kb=$(df -Pk "$d" 2>/dev/null | awk 'NR==2 {print $4}')
  if [ -z "$kb" ]; then say failed "free disk $d" "df failed" "check the file system"; continue; fi
  gib=$((kb / 1048576))
  if [ "$gib" -ge ${BACKEND_MIN_FREE_GIB} ]; then say ok "free disk $d" "$gib GiB free" ""
  else say failed "free disk $d" "$gib GiB free, ${BACKEND_MIN_FREE_GIB} GiB needed" "free space on $d"; fi
done
`;

const STATUSES = new Set(["ok", "missing", "wrong-version", "failed", "skipped"]);

export function parseRemote(scope: string, text: string): CheckResult[] {
  const out: CheckResult[] = [];
  for (const line of text.split("\n")) {
    const [status, name, detail, fix] = line.split("|");
    if (!STATUSES.has(status) || !name) continue;
    out.push({
      scope,
      name,
      status: status as Status,
      required: true,
      detail: detail ?? "",
      ...(status === "ok" ? {} : { fix: fix || "see the detail" }),
    });
  }
  return out;
}

async function ssh(args: string[], stdin: string): Promise<ExecResult> {
  return await exec("ssh", args, { stdin, inherit: ["SSH_AUTH_SOCK"], allowFailure: true });
}

/** Checks of one backend entry; never throws (an unreachable backend is one skipped line). */
export async function backendChecks(
  root: string,
  envName: string,
  b: EnvironmentBackend,
): Promise<CheckResult[]> {
  const scope = `backend ${b.name} (${envName})`;
  const skipped = (detail: string, fix: string): CheckResult[] => [{
    scope,
    name: "reachable over SSH",
    status: "skipped",
    required: false,
    detail,
    fix,
  }];
  let conn;
  try {
    conn = connectionFor(b, envName);
  } catch (err) {
    return skipped(`not checked: ${(err as Error).message}`, "deno task wod sandbox up, or set host or fqdn");
  }
  const target = `${conn.user}@${conn.host}`;
  const opts = [
    "-p",
    String(conn.port),
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=5",
    "-o",
    "StrictHostKeyChecking=yes",
  ];
  if (conn.keyFile) opts.push("-i", conn.keyFile, "-o", "IdentitiesOnly=yes");
  if (conn.knownHostsFile) opts.push("-o", `UserKnownHostsFile=${conn.knownHostsFile}`);
  const mods = (await backendPythonImports(root)).filter((m) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(m));
  const manager = conn.serviceManager ?? "systemd";
  let res;
  try {
    res = await ssh([...opts, target, "--", "sh", "-s", "--", manager, ...mods], REMOTE_SCRIPT);
  } catch (err) {
    return skipped(
      `not checked: ssh did not run: ${(err as Error).message}`,
      "apt-get install openssh-client",
    );
  }
  const results = parseRemote(scope, res.stdout);
  if (res.code === 255 || results.length === 0) {
    const why = res.stderr.trim().split("\n").filter(Boolean).pop() ?? `ssh exited with ${res.code}`;
    return skipped(
      `not reachable: ${target}: ${why}`,
      "check the host, its SSH port and key (WOD_SSH_KEY_FILE, WOD_KNOWN_HOSTS_FILE)",
    );
  }
  return [{ scope, name: "reachable over SSH", status: "ok", required: true, detail: target }, ...results];
}
