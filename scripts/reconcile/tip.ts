// The state remote's "tip" as the reconciler sees it: a fingerprint of the environment's recorded
// seats and orders that ignores the lease (every lease renewal is a commit, and must not look like new
// orders). For a git remote: fetch the branch into a private bare repository and hash the listing of
// `git ls-tree <branch> -- <prefix>/<env>/` without lease.json (the sub-trees' ids change whenever a
// seat or the ledger does). For the GitHub store: a hash of the recorded seats (one read through the
// API per check, so give it a longer interval).
import { git } from "../common/git.ts";
import { WodError } from "../common/errors.ts";
import type { Environment } from "../config/types.gen.ts";
import { stateLocation, type StateStore } from "../state/store.ts";

async function sha256(text: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The lines of a `git ls-tree` listing that are not the lease. */
export function withoutLease(listing: string): string {
  return listing.split("\n").filter((l) => l.trim() !== "" && !/\tlease\.json$|\/lease\.json$/.test(l)).join(
    "\n",
  );
}

export interface StateTip {
  /** The current fingerprint, or undefined when the remote cannot be read now (logged by the caller). */
  tip(): Promise<string>;
  close(): Promise<void>;
}

/** A tip watcher for the environment's store. */
export async function stateTipWatcher(
  root: string,
  envName: string,
  env: Environment,
  store: StateStore,
): Promise<StateTip> {
  const loc = stateLocation(root, envName, env);
  if (loc.kind === "github") {
    return {
      tip: async () => await sha256(JSON.stringify(await store.readSeats())),
      close: () => Promise.resolve(),
    };
  }
  const dir = await Deno.makeTempDir({ prefix: "wod-tip-" });
  await git(["init", "-q", "--bare", dir]);
  const ref = "refs/wod/tip";
  return {
    async tip() {
      const f = await git(
        ["-C", dir, "fetch", "-q", "--no-tags", "--force", loc.remote, `+${loc.branch}:${ref}`],
        { allowFailure: true, timeoutMs: 30_000 },
      );
      if (f.code !== 0) {
        if (/couldn't find remote ref|could not find remote ref/i.test(f.stderr)) return "empty";
        throw new WodError(`Cannot fetch branch "${loc.branch}" from ${loc.remote}: ${f.stderr.trim()}`);
      }
      const ls = await git(["-C", dir, "ls-tree", ref, "--", `${loc.prefix}/${envName}/`], {
        timeoutMs: 30_000,
      });
      return await sha256(withoutLease(ls.stdout));
    },
    async close() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
