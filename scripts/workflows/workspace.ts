// A throw-away checkout for the local runner: the repository's files (tracked and untracked, not
// ignored: what a commit of the working tree would hold) copied into a temp dir and committed to a
// fresh git repository, so `git` inside steps works as in a real checkout.
import { dirname, join } from "node:path";
import { git as runGit, gitText as git } from "../common/git.ts";

/** Copy `root`'s working tree into `dest` (created) and commit it; returns the commit sha. */
export async function cloneWorkingTree(root: string, dest: string, message = "base"): Promise<string> {
  const list = await runGit(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: root });
  await Deno.mkdir(dest, { recursive: true });
  for (const rel of list.stdout.split("\0").filter(Boolean)) {
    if (rel.startsWith("state/")) continue; // recorded state is not part of a code checkout here
    const from = join(root, rel);
    let st: Deno.FileInfo;
    try {
      st = await Deno.lstat(from);
    } catch {
      continue; // listed but deleted in the working tree
    }
    if (!st.isFile) continue;
    const to = join(dest, rel);
    await Deno.mkdir(dirname(to), { recursive: true });
    await Deno.copyFile(from, to);
    if (st.mode !== null) await Deno.chmod(to, st.mode & 0o777);
  }
  await git(dest, ["init", "-q", "-b", "main"]);
  await git(dest, ["add", "-A"]);
  await git(dest, ["commit", "-q", "--no-verify", "-m", message]);
  return await git(dest, ["rev-parse", "HEAD"]);
}

/** Commit every change in `dir`; returns the new sha. */
export async function commitAll(dir: string, message: string): Promise<string> {
  await git(dir, ["add", "-A"]);
  await git(dir, ["commit", "-q", "--no-verify", "--allow-empty", "-m", message]);
  return await git(dir, ["rev-parse", "HEAD"]);
}
