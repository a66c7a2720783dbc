// The tree-store interface: a branch of files read and written in optimistic transactions. The two
// implementations sit beside it (git_store.ts for any git remote, github_store.ts for the GitHub API);
// scripts/state/store.ts builds the seat ledger on top of it. This file imports nothing, so both sides
// depend on it and neither on the other's internals.

/** A consistent view of the state branch during one transaction. Paths are relative to its root. */
export interface TreeView {
  read(path: string): Promise<string | undefined>;
  /** Files directly under `dir` (names only); [] when missing. */
  list(dir: string): Promise<string[]>;
  /** Sub-directories directly under `dir` (names only). */
  dirs(dir: string): Promise<string[]>;
}

/** path -> new content, or null to delete. */
export type Changes = Map<string, string | null>;

export interface TreeStore {
  readonly kind: "git" | "github";
  readonly where: string;
  /**
   * Runs `fn` on the current tip and commits its changes. When the commit loses a race (rejected
   * push, non-fast-forward ref update, 409), `fn` runs again on the new tip. No changes: no commit.
   */
  transact(message: string, fn: (view: TreeView) => Promise<Changes | undefined>): Promise<boolean>;
  /** Read-only view of the latest tip. */
  snapshot(): Promise<TreeView>;
  close(): Promise<void>;
}
