// The GitHub API calls of our workflows, as a small Deno script (no third-party action):
//   comment --pr N --marker NAME --file F   one PR comment per marker, updated in place
//   pull --head BRANCH --base BRANCH --title T --file F   one open pull request per head branch
// Reads GITHUB_TOKEN, GITHUB_REPOSITORY (owner/name) and GITHUB_API_URL from the environment.
import { parseArgs, requireOption } from "../common/args.ts";
import { runMain, UsageError, WodError } from "../common/errors.ts";
import { type GithubClient, githubClient } from "../common/github.ts";

/** GitHub's limit on an issue comment / pull request body is 65536 characters. */
export const MAX_BODY = 65_000;

export function markerOf(name: string): string {
  return `<!-- wod:${name} -->`;
}

export function commentBody(marker: string, text: string): string {
  const head = `${markerOf(marker)}\n`;
  if (head.length + text.length <= MAX_BODY) return head + text;
  const note = "\n\n… (truncated: the full text is in the job summary)";
  return head + text.slice(0, MAX_BODY - head.length - note.length) + note;
}

export interface Repo {
  owner: string;
  repo: string;
}

export function octokitFromEnv(env = Deno.env.toObject()): { octokit: GithubClient; repo: Repo } {
  const token = env.GITHUB_TOKEN;
  if (!token) throw new WodError("GITHUB_TOKEN is not set: pass it to the step through env:");
  const full = env.GITHUB_REPOSITORY ?? "";
  const m = /^([^/\s]+)\/([^/\s]+)$/.exec(full);
  if (!m) throw new WodError(`GITHUB_REPOSITORY "${full}" is not of the form owner/name`);
  const octokit = githubClient({
    baseUrl: env.GITHUB_API_URL ?? "https://api.github.com",
    token,
    userAgent: "wod-workflows",
  });
  return { octokit, repo: { owner: m[1], repo: m[2] } };
}

/** Create or update the one comment of `pr` that carries `marker`. */
export async function upsertComment(
  octokit: GithubClient,
  repo: Repo,
  pr: number,
  marker: string,
  text: string,
): Promise<{ id: number; action: "created" | "updated" }> {
  const body = commentBody(marker, text);
  const tag = markerOf(marker);
  const comments = await octokit.paginate(octokit.rest.issues.listComments, {
    ...repo,
    issue_number: pr,
    per_page: 100,
  });
  const mine = comments.find((c) => (c.body ?? "").startsWith(tag));
  if (mine) {
    await octokit.rest.issues.updateComment({ ...repo, comment_id: mine.id, body });
    return { id: mine.id, action: "updated" };
  }
  const res = await octokit.rest.issues.createComment({ ...repo, issue_number: pr, body });
  return { id: res.data.id, action: "created" };
}

/** Create or update the one open pull request from `head` into `base`. */
export async function upsertPull(
  octokit: GithubClient,
  repo: Repo,
  head: string,
  base: string,
  title: string,
  text: string,
): Promise<{ number: number; action: "created" | "updated" }> {
  const body = text.length > MAX_BODY ? text.slice(0, MAX_BODY) : text;
  const open = await octokit.rest.pulls.list({ ...repo, head: `${repo.owner}:${head}`, state: "open" });
  if (open.data.length > 0) {
    const number = open.data[0].number;
    await octokit.rest.pulls.update({ ...repo, pull_number: number, title, body });
    return { number, action: "updated" };
  }
  const res = await octokit.rest.pulls.create({ ...repo, head, base, title, body });
  return { number: res.data.number, action: "created" };
}

export async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  const { octokit, repo } = octokitFromEnv();
  if (cmd === "comment") {
    const { values } = parseArgs("workflows github comment", rest, {
      pr: { type: "string" },
      marker: { type: "string" },
      file: { type: "string" },
    });
    const pr = Number(requireOption("comment", values.pr, "pr"));
    if (!Number.isInteger(pr) || pr < 1) {
      throw new UsageError(`Invalid --pr "${values.pr}": expected a number`);
    }
    const text = await Deno.readTextFile(requireOption("comment", values.file, "file"));
    const r = await upsertComment(octokit, repo, pr, requireOption("comment", values.marker, "marker"), text);
    console.log(`Comment ${r.id} ${r.action} on pull request #${pr}`);
    return 0;
  }
  if (cmd === "pull") {
    const { values } = parseArgs("workflows github pull", rest, {
      head: { type: "string" },
      base: { type: "string" },
      title: { type: "string" },
      file: { type: "string" },
    });
    const text = await Deno.readTextFile(requireOption("pull", values.file, "file"));
    const r = await upsertPull(
      octokit,
      repo,
      requireOption("pull", values.head, "head"),
      requireOption("pull", values.base, "base"),
      requireOption("pull", values.title, "title"),
      text,
    );
    console.log(`Pull request #${r.number} ${r.action}`);
    return 0;
  }
  throw new UsageError(`Unknown subcommand "${cmd ?? ""}": expected comment or pull`);
}

if (import.meta.main) await runMain(main);
