// Run a program with an argument vector (never a shell string). Non-zero exits throw with the
// tail of the output, so a failing step explains itself.
import { WodError } from "./errors.ts";

export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string>;
  stdin?: string | Uint8Array;
  /** Do not throw on a non-zero exit. */
  allowFailure?: boolean;
  /** Strings that must never appear in an error message (e.g. passwords). */
  redact?: string[];
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

function tail(text: string, lines = 20): string {
  const all = text.trimEnd().split("\n");
  return all.slice(-lines).join("\n");
}

export function redactText(text: string, secrets: string[] = []): string {
  let out = text;
  for (const s of secrets) if (s) out = out.split(s).join("[REDACTED]");
  return out;
}

export async function exec(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    env: opts.env,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(typeof opts.stdin === "string" ? new TextEncoder().encode(opts.stdin) : opts.stdin);
    await w.close();
  }
  const out = await child.output();
  const res = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  if (res.code !== 0 && !opts.allowFailure) {
    const shown = redactText(tail(res.stderr || res.stdout), opts.redact);
    throw new WodError(`Command "${cmd} ${args[0] ?? ""}" failed with exit code ${res.code}:\n${shown}`);
  }
  return res;
}
