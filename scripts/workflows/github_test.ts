// The PR comment of validate.yml: posted once and updated in place, against the local GitHub API
// server (scripts/testing/github_server.ts), which checks every request against GitHub's OpenAPI
// description (@octokit/openapi) and records violations.
import { assertEquals, assertStringIncludes } from "../common/assert.ts";
import { startGithubServer } from "../testing/github_server.ts";
import { exec } from "../common/exec.ts";
import { commentBody, MAX_BODY, octokitFromEnv, upsertComment, upsertPull } from "./github.ts";

Deno.test("the plan comment is created once, then updated in place (OpenAPI-checked server)", async () => {
  const gh = await startGithubServer();
  try {
    gh.createRepo("wod/wod");
    const { octokit, repo } = octokitFromEnv({
      GITHUB_TOKEN: "t0ken",
      GITHUB_REPOSITORY: "wod/wod",
      GITHUB_API_URL: gh.url,
    });
    // Someone else's comment on the same PR is left alone.
    await octokit.rest.issues.createComment({ ...repo, issue_number: 5, body: "LGTM" });
    const a = await upsertComment(octokit, repo, 5, "wod-plan", "plan v1");
    const b = await upsertComment(octokit, repo, 5, "wod-plan", "plan v2");
    assertEquals([a.action, b.action], ["created", "updated"]);
    assertEquals(a.id, b.id);
    const bodies = gh.comments("wod/wod").filter((c) => c.issue === 5).map((c) => c.body);
    assertEquals(bodies, ["LGTM", "<!-- wod:wod-plan -->\nplan v2"]);
    assertEquals(gh.violations, []);
  } finally {
    await gh.close();
  }
});

Deno.test("the sync pull request is opened once, then updated; a closed one is not reused (OpenAPI-checked server)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wod-gh-pull-" });
  const gh = await startGithubServer();
  try {
    const git = (...args: string[]) =>
      exec("git", ["-c", "user.name=t", "-c", "user.email=t@localhost", ...args], { cwd: dir });
    await git("init", "-q", "-b", "main");
    await git("commit", "-q", "--allow-empty", "-m", "base");
    await git("checkout", "-q", "-b", "sync/public");
    await git("commit", "-q", "--allow-empty", "-m", "merge");
    gh.createRepo("wod/private", { gitDir: dir });
    const { octokit, repo } = octokitFromEnv({
      GITHUB_TOKEN: "t0ken",
      GITHUB_REPOSITORY: "wod/private",
      GITHUB_API_URL: gh.url,
    });
    const a = await upsertPull(octokit, repo, "sync/public", "main", "Sync", "v1");
    const b = await upsertPull(octokit, repo, "sync/public", "main", "Sync", "v2");
    assertEquals([a, b], [{ number: 1, action: "created" }, { number: 1, action: "updated" }]);
    assertEquals(gh.pulls("wod/private").map((p) => [p.number, p.state, p.body]), [[1, "open", "v2"]]);
    await octokit.rest.pulls.update({ ...repo, pull_number: 1, state: "closed" });
    const c = await upsertPull(octokit, repo, "sync/public", "main", "Sync", "v3");
    assertEquals(c, { number: 2, action: "created" });
    assertEquals(gh.violations, []);
  } finally {
    await gh.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("the workflows' GitHub client retries a transient 502 (the one Octokit factory; OpenAPI-checked server)", async () => {
  const gh = await startGithubServer();
  try {
    gh.createRepo("wod/wod");
    gh.inject({ status: 502, match: /^POST .*\/comments$/, message: "Bad gateway" });
    const { octokit, repo } = octokitFromEnv({
      GITHUB_TOKEN: "t0ken",
      GITHUB_REPOSITORY: "wod/wod",
      GITHUB_API_URL: gh.url,
    });
    const a = await upsertComment(octokit, repo, 7, "wod-plan", "plan");
    assertEquals(a.action, "created");
    const posts = gh.requests.filter((r) => r.method === "POST").map((r) => r.status);
    assertEquals(posts, [502, 201]);
    assertEquals(gh.comments("wod/wod").map((c) => c.body), ["<!-- wod:wod-plan -->\nplan"]);
    assertEquals(gh.violations, []);
  } finally {
    await gh.close();
  }
});

Deno.test("a plan longer than GitHub's comment limit is truncated with a note", () => {
  const body = commentBody("wod-plan", "x".repeat(100_000));
  assertEquals(body.length <= MAX_BODY, true);
  assertStringIncludes(body, "truncated: the full text is in the job summary");
});
