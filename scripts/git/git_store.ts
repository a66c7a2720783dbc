// Git tree store: recorded state on a branch of any git remote (a bare repository path or an SSH
// URL). Each store works in its own private clone (a temp dir). A transaction commits on the local
// tip and pushes; a rejected push (someone else pushed first) fetches the new tip, resets the clone
// to it and re-runs the transaction's function there ("rebase by re-applying": the orders are
// evaluated again against the state that won the race), with a short random backoff.
import { dirname, join } from "node:path";
import { existsSync } from "node:fs";
import { git as runGit, initBare } from "../common/git.ts";
import { WodError } from "../common/errors.ts";
import type { Changes, TreeStore, TreeView } from "./tree.ts";

export interface GitTreeOptions {
  remote: string;
  branch: string;
  /** Create `remote` as a bare repository when it does not exist (the local default). */
  createBare?: boolean;
  /** Attempts before giving up on a contended push (default 60). */
  maxAttempts?: number;
}

async function git(dir: string, args: string[], allowFailure = false) {
  return await runGit(args, { cwd: dir, allowFailure });
}

const BRANCH = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,100}$/;

export async function openGitTree(opts: GitTreeOptions): Promise<TreeStore> {
  if (!BRANCH.test(opts.branch) || opts.branch.includes("..")) {
    throw new WodError(`Invalid state branch name "${opts.branch}"`);
  }
  if (opts.createBare && !existsSync(opts.remote)) {
    await Deno.mkdir(dirname(opts.remote), { recursive: true });
    await initBare(opts.remote);
  }
  const store = new GitTree(opts);
  await store.init();
  return store;
}

function isRejected(text: string): boolean {
  return /\[rejected\]|\[remote rejected\]|fetch first|non-fast-forward|failed to push|cannot lock ref|stale info/i
    .test(text);
}

class GitTree implements TreeStore {
  readonly kind = "git" as const;
  readonly where: string;
  dir = "";
  private synced = false;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly opts: GitTreeOptions) {
    this.where = `${opts.remote} (branch ${opts.branch})`;
  }

  async init(): Promise<void> {
    this.dir = await Deno.makeTempDir({ prefix: "wod-state-" });
    await git(this.dir, ["init", "-q", "-b", this.opts.branch]);
    await git(this.dir, ["remote", "add", "origin", this.opts.remote]);
    await this.sync();
  }

  /** Fetches the remote branch and moves the clone to it (stays empty when the branch does not exist yet). */
  private async sync(): Promise<void> {
    const r = await git(this.dir, ["fetch", "-q", "--no-tags", "origin", this.opts.branch], true);
    if (r.code !== 0) {
      if (/couldn't find remote ref|could not find remote ref/i.test(r.stderr)) {
        this.synced = true;
        return;
      }
      throw new WodError(
        `Cannot fetch branch "${this.opts.branch}" from ${this.opts.remote}: ${r.stderr.trim()}`,
      );
    }
    await git(this.dir, ["reset", "-q", "--hard", "FETCH_HEAD"]);
    await git(this.dir, ["clean", "-q", "-fdx"]);
    this.synced = true;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private view(): TreeView {
    const dir = this.dir;
    return {
      async read(path) {
        try {
          return await Deno.readTextFile(join(dir, path));
        } catch (err) {
          if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
            return undefined;
          }
          throw err;
        }
      },
      async list(sub) {
        return await entries(join(dir, sub), (e) => e.isFile);
      },
      async dirs(sub) {
        return await entries(join(dir, sub), (e) => e.isDirectory);
      },
    };
  }

  snapshot(): Promise<TreeView> {
    return this.serial(async () => {
      await this.sync();
      return this.view();
    });
  }

  transact(message: string, fn: (view: TreeView) => Promise<Changes | undefined>): Promise<boolean> {
    return this.serial(async () => {
      const max = this.opts.maxAttempts ?? 60;
      let lastErr = "";
      for (let attempt = 1; attempt <= max; attempt++) {
        if (!this.synced) await this.sync();
        const changes = await fn(this.view());
        if (!changes || changes.size === 0) return false;
        const paths: string[] = [];
        for (const [path, content] of changes) {
          const abs = join(this.dir, path);
          if (content === null) {
            await Deno.remove(abs).catch(() => undefined);
          } else {
            await Deno.mkdir(dirname(abs), { recursive: true });
            await Deno.writeTextFile(abs, content);
          }
          paths.push(path);
        }
        for (let i = 0; i < paths.length; i += 500) {
          await git(this.dir, ["add", "-A", "--", ...paths.slice(i, i + 500)]);
        }
        const c = await git(this.dir, ["commit", "-q", "--no-verify", "-m", message], true);
        if (c.code !== 0) {
          if (/nothing to commit|nothing added to commit|no changes added/i.test(c.stdout + c.stderr)) {
            return false;
          }
          throw new WodError(`Cannot commit recorded state in ${this.dir}: ${(c.stderr || c.stdout).trim()}`);
        }
        const push = await git(this.dir, [
          "push",
          "-q",
          "--porcelain",
          "origin",
          `HEAD:refs/heads/${this.opts.branch}`,
        ], true);
        if (push.code === 0) return true;
        const out = push.stdout + push.stderr;
        if (!isRejected(out)) {
          this.synced = false;
          throw new WodError(
            `Cannot push recorded state to ${this.where}: ${out.trim().split("\n").slice(-3).join(" ")}`,
          );
        }
        lastErr = out.trim().split("\n").slice(-1)[0] ?? "";
        this.synced = false;
        // Back off a little, randomised, so contending writers do not collide again in lockstep.
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(400, 20 * attempt)));
      }
      throw new WodError(
        `Recorded state not written to ${this.where}: push rejected ${max} times (${lastErr})`,
      );
    });
  }

  async close(): Promise<void> {
    await this.queue.catch(() => undefined);
    if (this.dir) await Deno.remove(this.dir, { recursive: true }).catch(() => undefined);
  }
}

async function entries(dir: string, pick: (e: Deno.DirEntry) => boolean): Promise<string[]> {
  try {
    const out: string[] = [];
    for await (const e of Deno.readDir(dir)) if (pick(e)) out.push(e.name);
    return out.sort();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return [];
    throw err;
  }
}
