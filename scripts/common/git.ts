// The one git helper: every git command wod runs (the state store's clone, the runner's workspace, `wod
// plan`'s base revision, the demo's and the tests' bare remotes) goes through here, with the same
// settings: never a credential prompt, messages in the C locale (callers match on them), a fixed
// committer identity, no hooks and no signing (a developer's global git config cannot change a commit).
import { exec, type ExecOptions, type ExecResult } from "./exec.ts";

/** The environment of every git child, on top of exec's base. */
export const GIT_ENV = { GIT_TERMINAL_PROMPT: "0", LC_ALL: "C" };

/** `-c` settings before every command: who commits, and nothing of the user's config that acts. */
export const GIT_CONFIG = [
  "-c",
  "user.name=wod",
  "-c",
  "user.email=wod@localhost",
  "-c",
  "commit.gpgsign=false",
  "-c",
  "core.hooksPath=/dev/null",
];

/**
 * Variables of this process every git child gets when set: how to reach a remote over SSH (a state
 * remote `ssh://user@host/path`): GIT_SSH_COMMAND names the key and known_hosts, e.g.
 * `ssh -i /etc/wod/state_key -o UserKnownHostsFile=/etc/wod/known_hosts -o StrictHostKeyChecking=yes`.
 * Without it, ssh uses the user's ~/.ssh (key, config, known_hosts).
 */
export const GIT_INHERIT = ["GIT_SSH_COMMAND"];

export type GitOptions = Omit<ExecOptions, "stdin" | "output" | "bare">;

/** `git args` (in `opts.cwd`); throws a WodError with the output's tail on failure unless allowed. */
export async function git(args: string[], opts: GitOptions = {}): Promise<ExecResult> {
  return await exec("git", [...GIT_CONFIG, ...args], {
    ...opts,
    inherit: [...GIT_INHERIT, ...(opts.inherit ?? [])],
    env: { ...GIT_ENV, ...opts.env },
  });
}

/** `git args` in `cwd`, its standard output trimmed. */
export async function gitText(cwd: string, args: string[]): Promise<string> {
  return (await git(args, { cwd })).stdout.trim();
}

/** A new bare repository at `path` (its parent must exist). */
export async function initBare(path: string, branch?: string): Promise<void> {
  await git(["init", "-q", "--bare", ...(branch ? ["-b", branch] : []), path]);
}
