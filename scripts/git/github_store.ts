// GitHub tree store: recorded state on a branch of a GitHub repository, written through the Git Data
// API (tree with inline contents -> commit -> ref update with force=false). The ref update is the
// compare-and-swap: a concurrent writer makes it fail (422 "not a fast forward", or 409), and the
// transaction re-reads the new tip and runs again. The client is the project's one Octokit factory
// (scripts/common/github.ts: retry on transient 5xx, throttling on rate limits).
import { WodError } from "../common/errors.ts";
import { type GithubClient, githubClient } from "../common/github.ts";
import type { Changes, TreeStore, TreeView } from "./tree.ts";

export interface GithubTreeOptions {
  baseUrl: string;
  token?: string;
  /** owner/name */
  repo: string;
  branch: string;
  /** Minimum milliseconds between write requests (GitHub asks for about 1 s; tests use 0). */
  writeIntervalMs?: number;
  /** Rate-limit retries honoured before giving up (default 3). */
  rateLimitRetries?: number;
  /** Multiplier for retry-after seconds, in ms (default 1000; tests shrink it). */
  retryAfterBaseMs?: number;
  maxAttempts?: number;
  log?: (line: string) => void;
}

// The one Octokit factory (retry + throttling) lives in scripts/common/github.ts; re-exported here for
// the callers that imported it from the store.
export { type GithubClient, githubClient };

interface Head {
  commit: string;
  tree: string;
  files: Map<string, string>; // path -> blob sha
}

function status(err: unknown): number | undefined {
  return typeof err === "object" && err !== null && "status" in err
    ? Number((err as { status: unknown }).status)
    : undefined;
}

export function openGithubTree(opts: GithubTreeOptions): Promise<TreeStore> {
  const m = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(opts.repo);
  if (!m) throw new WodError(`Invalid GitHub repository "${opts.repo}": expected owner/name`);
  return Promise.resolve(new GithubTree(opts, m[1], m[2]));
}

class GithubTree implements TreeStore {
  readonly kind = "github" as const;
  readonly where: string;
  private gh: GithubClient;
  private blobs = new Map<string, string>();

  constructor(readonly opts: GithubTreeOptions, readonly owner: string, readonly repo: string) {
    this.where = `${opts.repo} (branch ${opts.branch}, ${opts.baseUrl})`;
    this.gh = githubClient({ ...opts, userAgent: "wod-state" });
  }

  private async head(): Promise<Head | undefined> {
    const { owner, repo } = this;
    let commitSha: string;
    try {
      const ref = await this.gh.rest.git.getRef({ owner, repo, ref: `heads/${this.opts.branch}` });
      commitSha = ref.data.object.sha;
    } catch (err) {
      if (status(err) === 404) return undefined;
      throw new WodError(`Cannot read branch ${this.opts.branch} of ${this.opts.repo}`, { cause: err });
    }
    const commit = await this.gh.rest.git.getCommit({ owner, repo, commit_sha: commitSha });
    const tree = await this.gh.rest.git.getTree({
      owner,
      repo,
      tree_sha: commit.data.tree.sha,
      recursive: "1",
    });
    if (tree.data.truncated) {
      throw new WodError(
        `The state tree of ${this.opts.repo} is too large for one recursive read (truncated)`,
      );
    }
    const files = new Map<string, string>();
    for (const e of tree.data.tree) if (e.type === "blob" && e.path && e.sha) files.set(e.path, e.sha);
    return { commit: commitSha, tree: commit.data.tree.sha, files };
  }

  private view(head: Head | undefined): TreeView {
    const files = head?.files ?? new Map<string, string>();
    const children = (dir: string, wantDirs: boolean) => {
      const prefix = dir.endsWith("/") ? dir : dir + "/";
      const out = new Set<string>();
      for (const p of files.keys()) {
        if (!p.startsWith(prefix)) continue;
        const rest = p.slice(prefix.length);
        const i = rest.indexOf("/");
        if (wantDirs && i > 0) out.add(rest.slice(0, i));
        if (!wantDirs && i < 0) out.add(rest);
      }
      return Promise.resolve([...out].sort());
    };
    return {
      read: async (path) => {
        const sha = files.get(path);
        if (!sha) return undefined;
        let text = this.blobs.get(sha);
        if (text === undefined) {
          const b = await this.gh.rest.git.getBlob({ owner: this.owner, repo: this.repo, file_sha: sha });
          const bytes = Uint8Array.from(atob(b.data.content.replace(/\n/g, "")), (c) => c.charCodeAt(0));
          text = new TextDecoder().decode(bytes);
          this.blobs.set(sha, text);
        }
        return text;
      },
      list: (dir) => children(dir, false),
      dirs: (dir) => children(dir, true),
    };
  }

  async snapshot(): Promise<TreeView> {
    return this.view(await this.head());
  }

  async transact(message: string, fn: (view: TreeView) => Promise<Changes | undefined>): Promise<boolean> {
    const { owner, repo } = this;
    const max = this.opts.maxAttempts ?? 30;
    for (let attempt = 1; attempt <= max; attempt++) {
      const head = await this.head();
      const changes = await fn(this.view(head));
      if (!changes || changes.size === 0) return false;
      const entries: { path: string; mode: "100644"; type: "blob"; content?: string; sha?: string | null }[] =
        [];
      for (const [path, content] of changes) {
        if (content === null) {
          if (head?.files.has(path)) entries.push({ path, mode: "100644", type: "blob", sha: null });
        } else entries.push({ path, mode: "100644", type: "blob", content });
      }
      if (entries.length === 0) return false;
      const tree = await this.gh.rest.git.createTree({
        owner,
        repo,
        tree: entries,
        ...(head ? { base_tree: head.tree } : {}),
      });
      if (head && tree.data.sha === head.tree) return false; // same content
      const commit = await this.gh.rest.git.createCommit({
        owner,
        repo,
        message,
        tree: tree.data.sha,
        parents: head ? [head.commit] : [],
      });
      try {
        if (head) {
          await this.gh.rest.git.updateRef({
            owner,
            repo,
            ref: `heads/${this.opts.branch}`,
            sha: commit.data.sha,
            force: false,
          });
        } else {
          await this.gh.rest.git.createRef({
            owner,
            repo,
            ref: `refs/heads/${this.opts.branch}`,
            sha: commit.data.sha,
          });
        }
        return true;
      } catch (err) {
        const s = status(err);
        if (s !== 409 && s !== 422) {
          throw new WodError(`Cannot update branch ${this.opts.branch} of ${this.opts.repo}`, { cause: err });
        }
        // Lost the race (not a fast forward / conflict): re-read the tip and redo.
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(500, 25 * attempt)));
      }
    }
    throw new WodError(
      `Recorded state not written to ${this.where}: the branch kept moving (${max} attempts)`,
    );
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
