// wod plan: what changes between the config at git REV and the working tree (PR comment, job summary).
import { join } from "node:path";
import { parseArgs, repoRoot, requireOption } from "../common/args.ts";
import { UsageError, WodError } from "../common/errors.ts";
import { exec } from "../common/exec.ts";
import { git } from "../common/git.ts";
import { loadConfig } from "../config/load.ts";
import { buildPlan, formatPlanMarkdown, formatPlanText } from "../config/plan.ts";
import { formatDiagnostics } from "../config/report.ts";
import { readRecordedSeats } from "../state/read.ts";

export const help = `
Usage: deno task wod plan --base REV [--format text|markdown] [--private DIR] [--state DIR]

Compare the config (workshops/ and environments/) at git revision REV with the working tree:
workshops added, removed or changed (fields and content files), ranges added, removed or moved, and
the seats reserved per backend. Seats that are occupied in recorded state (state/<env>/<backend>/
<seat>.json, read from the working tree or --state DIR) and whose holder would change are flagged
as DANGER. Exit 2 when there is danger, 0 otherwise, 1 on error (e.g. the working tree's config
does not load).

Options:
  --base REV      git revision to compare with (branch, tag, commit; e.g. origin/main)
  --format FMT    text (default) or markdown (for a PR comment or a job summary)
  --private DIR   a checkout of the private repo to overlay on both sides
  --state DIR     a checkout holding state/ (default: the working tree)
`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs("plan", args, {
    base: { type: "string" },
    format: { type: "string", default: "text" },
    private: { type: "string" },
    state: { type: "string" },
  });
  const rev = requireOption("plan", values.base as string | undefined, "base");
  const format = values.format as string;
  if (format !== "text" && format !== "markdown") {
    throw new UsageError(`Invalid --format "${format}": expected text or markdown`);
  }
  if (rev.startsWith("-")) throw new UsageError(`Invalid --base "${rev}": expected a git revision`);
  const root = repoRoot();
  const privateDir = values.private as string | undefined;
  const resolved = await git(["-C", root, "rev-parse", "--verify", "--quiet", `${rev}^{commit}`], {
    allowFailure: true,
  });
  if (resolved.code !== 0) {
    throw new WodError(`Unknown git revision "${rev}" in ${root}: expected a branch, tag or commit`);
  }
  const sha = resolved.stdout.trim();
  const tmp = await Deno.makeTempDir({ prefix: "wod-plan-" });
  try {
    const tree = join(tmp, "tree");
    await Deno.mkdir(tree);
    const top = (await git(["-C", root, "ls-tree", "--name-only", sha])).stdout.split("\n");
    const paths = ["workshops", "environments"].filter((p) => top.includes(p));
    if (paths.length) {
      const tar = join(tmp, "base.tar");
      await git(["-C", root, "archive", "--format=tar", "-o", tar, sha, "--", ...paths]);
      await exec("tar", ["-xf", tar, "-C", tree]);
    }
    const [base, head] = [await loadConfig(tree, { privateDir }), await loadConfig(root, { privateDir })];
    const headErrors = head.diagnostics.filter((d) => d.severity === "error");
    if (headErrors.length) {
      throw new WodError(
        `The working tree's config has ${headErrors.length} error(s); run \`deno task wod validate\`:\n` +
          formatDiagnostics(headErrors, "text"),
      );
    }
    const baseErrors = base.diagnostics.filter((d) => d.severity === "error").length;
    if (baseErrors) {
      console.error(
        `warning: the config at ${rev} has ${baseErrors} error(s); the plan may overstate changes`,
      );
    }
    const stateDir = (values.state as string | undefined) ?? root;
    const plan = await buildPlan(
      base,
      head,
      `${rev} (${sha.slice(0, 12)})`,
      (env) => readRecordedSeats(stateDir, env),
    );
    console.log(format === "markdown" ? formatPlanMarkdown(plan) : formatPlanText(plan));
    return plan.dangers.length ? 2 : 0;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}
