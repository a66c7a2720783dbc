// Background processes of the demo (maildev, the listener): started detached (own session, output to a
// log file) so they outlive `deno task demo`, recorded by PID and start time, stopped by that PID only.
import { WodError } from "../common/errors.ts";
import { DENO_CHILD_INHERIT, processStart, spawn } from "../common/exec.ts";

export { processStart };

export { freePort } from "../common/net.ts";

export interface ProcRecord {
  name: string;
  pid: number;
  /** Field 22 of /proc/<pid>/stat: tells a reused PID apart. */
  start: string;
  log: string;
}

export function running(p: ProcRecord): boolean {
  return processStart(p.pid) === p.start;
}

/**
 * Starts `argv` in its own session (setsid execs in place, so the PID is the program's), stdin from
 * /dev/null, stdout and stderr appended to `log`. No shell string is built from the arguments: they
 * travel as "$@".
 */
export function spawnDetached(
  name: string,
  argv: string[],
  opts: { log: string; cwd?: string; env?: Record<string, string> },
): ProcRecord {
  const child = spawn("setsid", ["sh", "-c", 'exec "$@" >>"$WOD_DEMO_LOG" 2>&1 </dev/null', "sh", ...argv], {
    cwd: opts.cwd,
    env: { ...opts.env, WOD_DEMO_LOG: opts.log },
    inherit: DENO_CHILD_INHERIT,
    stdout: "null",
    stderr: "null",
  });
  child.unref();
  // The child reaps itself through Deno when it exits while we still run; nothing to await here.
  child.status.catch(() => {});
  let start: string | undefined;
  for (let i = 0; i < 100 && start === undefined; i++) start = processStart(child.pid);
  if (start === undefined) {
    throw new WodError(`Cannot start ${name}: process ${child.pid} exited at once (log ${opts.log})`);
  }
  return { name, pid: child.pid, start, log: opts.log };
}

/** SIGTERM, then SIGKILL after `graceMs`. Only when the PID still is the process we started. */
export async function stopProcess(p: ProcRecord, graceMs = 5_000): Promise<"stopped" | "gone"> {
  if (!running(p)) return "gone";
  try {
    Deno.kill(p.pid, "SIGTERM");
  } catch {
    return "gone";
  }
  const deadline = Date.now() + graceMs;
  while (running(p) && Date.now() < deadline) await sleep(50);
  if (running(p)) {
    try {
      Deno.kill(p.pid, "SIGKILL");
    } catch { /* exited meanwhile */ }
    while (running(p)) await sleep(20);
  }
  return "stopped";
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Last lines of a log file (for error messages). */
export async function logTail(file: string, lines = 15): Promise<string> {
  try {
    return (await Deno.readTextFile(file)).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}
