// The only way wod starts a process: an argument vector (never a shell string), an explicit
// environment (the child sees a small base - PATH, HOME, locale, TMPDIR - plus what the caller
// passes, never the controller's whole environment, which holds its secrets), an optional timeout,
// output streamed line by line, and secrets redacted from errors and streamed lines. Non-zero exits
// throw with the tail of the output, so a failing step explains itself.
import { WodError } from "./errors.ts";
import { redactText } from "./log.ts";

/** The one redactor lives in log.ts; re-exported for the callers that found it here. */
export { redactText };

/** Variables every child gets from this process when set: where programs are, home, locale, temp. */
export const BASE_ENV = ["PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"];
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** What a child `wod` or `deno` process of a test, bench or the demo may inherit (no secrets). */
export const DENO_CHILD_INHERIT = [
  "DENO_DIR",
  "NO_COLOR",
  "WOD_SANDBOX_DIR",
  "WOD_SANDBOX_CACHE",
  "WOD_CHROMIUM",
];

export interface EnvOptions {
  /** Variables set for the child, on top of the base. */
  env?: Record<string, string>;
  /** Names copied from this process's environment when set (`NAME_*` copies a prefix). */
  inherit?: string[];
  /** No base: the child gets exactly `env` and `inherit` (e.g. an empty environment). */
  bare?: boolean;
}

export interface ExecOptions extends EnvOptions {
  cwd?: string;
  stdin?: string | Uint8Array;
  /** Do not throw on a non-zero exit (nor on a timeout: see `timedOut`). */
  allowFailure?: boolean;
  /** Strings that must never appear in an error message or a streamed line (e.g. passwords). */
  redact?: string[];
  /** Kill the child (SIGTERM, SIGKILL 2 s later) after this many milliseconds. */
  timeoutMs?: number;
  /** Each output line as it arrives (redacted); the full output is still returned. */
  onLine?: (line: string, stream: "stdout" | "stderr") => void;
  /** "inherit" shows the child's output on ours (nothing is captured then). Default "piped". */
  output?: "piped" | "inherit" | "null";
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  /** The timeout killed the child. */
  timedOut: boolean;
}

export interface SpawnOptions extends EnvOptions {
  cwd?: string;
  stdin?: "piped" | "inherit" | "null";
  stdout?: "piped" | "inherit" | "null";
  stderr?: "piped" | "inherit" | "null";
}

function tail(text: string, lines = 20): string {
  const all = text.trimEnd().split("\n");
  return all.slice(-lines).join("\n");
}

/** Start time of a process (field 22 of /proc/PID/stat): tells a live PID from a reused one. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** The whole environment of a child: base (unless bare) + inherited names + `env`. */
export function childEnv(opts: EnvOptions = {}): Record<string, string> {
  const out: Record<string, string> = {};
  const copy = (name: string) => {
    if (name.endsWith("*")) {
      const prefix = name.slice(0, -1);
      for (const [k, v] of Object.entries(Deno.env.toObject())) if (k.startsWith(prefix)) out[k] = v;
      return;
    }
    const v = Deno.env.get(name);
    if (v !== undefined) out[name] = v;
  };
  if (!opts.bare) {
    for (const name of BASE_ENV) copy(name);
    out.PATH ??= DEFAULT_PATH;
  }
  for (const name of opts.inherit ?? []) copy(name);
  return { ...out, ...(opts.env ?? {}) };
}

/** `cmd` as an absolute path, looked up in the child's PATH (or ours when the child has none). */
function resolve(cmd: string, path: string | undefined): string {
  if (cmd.includes("/")) return cmd;
  for (const dir of (path ?? Deno.env.get("PATH") ?? DEFAULT_PATH).split(":")) {
    if (!dir) continue;
    try {
      const p = `${dir}/${cmd}`;
      const st = Deno.statSync(p);
      if (st.isFile && (st.mode ?? 0o111) & 0o111) return p;
    } catch { /* not there */ }
  }
  return cmd;
}

/** Start a long-running child (the caller owns it). Same environment rules as `exec`. */
export function spawn(cmd: string, args: string[], opts: SpawnOptions = {}): Deno.ChildProcess {
  const env = childEnv(opts);
  return new Deno.Command(resolve(cmd, env.PATH), {
    args,
    cwd: opts.cwd,
    env,
    clearEnv: true,
    stdin: opts.stdin ?? "null",
    stdout: opts.stdout ?? "piped",
    stderr: opts.stderr ?? "piped",
  }).spawn();
}

async function collect(
  stream: ReadableStream<Uint8Array> | null,
  name: "stdout" | "stderr",
  opts: ExecOptions,
): Promise<string> {
  if (!stream) return "";
  const dec = new TextDecoder();
  let all = "";
  let pending = "";
  for await (const chunk of stream) {
    const text = dec.decode(chunk, { stream: true });
    all += text;
    if (opts.onLine) {
      pending += text;
      let i;
      while ((i = pending.indexOf("\n")) >= 0) {
        opts.onLine(redactText(pending.slice(0, i), opts.redact), name);
        pending = pending.slice(i + 1);
      }
    }
  }
  const rest = dec.decode();
  all += rest;
  pending += rest;
  if (opts.onLine && pending) opts.onLine(redactText(pending, opts.redact), name);
  return all;
}

/** Run `cmd args` to the end and return its output; throws a WodError on failure unless allowed. */
export async function exec(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const output = opts.output ?? "piped";
  const child = spawn(cmd, args, {
    ...opts,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: output,
    stderr: output,
  });
  let timedOut = false;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    killTimer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, 2_000);
  }, opts.timeoutMs);
  try {
    const reading = Promise.all([
      output === "piped" ? collect(child.stdout, "stdout", opts) : "",
      output === "piped" ? collect(child.stderr, "stderr", opts) : "",
    ]);
    if (opts.stdin !== undefined) {
      const w = child.stdin.getWriter();
      try {
        await w.write(typeof opts.stdin === "string" ? new TextEncoder().encode(opts.stdin) : opts.stdin);
        await w.close();
      } catch { /* the child exited without reading all of it: its exit code says why */ }
    }
    const [stdout, stderr] = await reading;
    const status = await child.status;
    const res = { code: status.code, stdout, stderr, timedOut };
    if (opts.allowFailure) return res;
    if (timedOut) {
      throw new WodError(
        `Command "${cmd} ${args[0] ?? ""}" did not finish within ${opts.timeoutMs} ms and was killed:\n${
          redactText(tail(stderr || stdout), opts.redact)
        }`,
      );
    }
    if (res.code !== 0) {
      const shown = redactText(tail(stderr || stdout), opts.redact);
      throw new WodError(`Command "${cmd} ${args[0] ?? ""}" failed with exit code ${res.code}:\n${shown}`);
    }
    return res;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    if (killTimer !== undefined) clearTimeout(killTimer);
  }
}
