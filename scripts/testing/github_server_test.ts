// The OpenAPI-checking GitHub stand-in: the issue comment, workflow dispatch and pull request routes
// other areas use work through Octokit with no contract violation.
import { assertEquals, assertRejects } from "../common/assert.ts";
import { Octokit } from "@octokit/rest";
import { exec } from "../common/exec.ts";
import { githubClient } from "../git/github_store.ts";
import { startGithubServer } from "./github_server.ts";

Deno.test("GitHub test server: issue comments list/create/update and workflow dispatch through Octokit, checked against the OpenAPI description", async () => {
  const server = await startGithubServer({ token: "tok" });
  server.createRepo("wod/repo", { workflows: ["order.yml"] });
  const gh = githubClient({ baseUrl: server.url, token: "tok", writeIntervalMs: 0, log: () => {} });
  try {
    const owner = "wod", repo = "repo";
    const c = await gh.rest.issues.createComment({ owner, repo, issue_number: 7, body: "plan: 2 seats" });
    await gh.rest.issues.createComment({ owner, repo, issue_number: 8, body: "other PR" });
    await gh.rest.issues.updateComment({ owner, repo, comment_id: c.data.id, body: "plan: 3 seats" });
    const list = await gh.rest.issues.listComments({ owner, repo, issue_number: 7, per_page: 100 });
    assertEquals(list.data.map((x) => x.body), ["plan: 3 seats"]);
    await gh.rest.actions.createWorkflowDispatch({
      owner,
      repo,
      workflow_id: "order.yml",
      ref: "main",
      inputs: { a: "1" },
    });
    assertEquals(server.dispatches.length, 1);
    await assertRejects(
      () => gh.rest.actions.createWorkflowDispatch({ owner, repo, workflow_id: "nope.yml", ref: "main" }),
      /Not Found/,
    );
    assertEquals(server.violations, []);
    const bad = await githubClient({ baseUrl: server.url, token: "wrong", writeIntervalMs: 0, log: () => {} })
      .request(
        "GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
        { owner, repo, issue_number: 7 },
      ).catch((e) => e.status);
    assertEquals(bad, 401);
  } finally {
    await server.close();
  }
});

Deno.test("GitHub test server: pull requests list (state/head/base filters), create, update and close through Octokit, branches from a local git repository, checked against the OpenAPI description", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wod-gh-pulls-" });
  const server = await startGithubServer({ token: "tok" });
  // The plain Octokit of scripts/workflows/github.ts (githubClient's throttling spaces writes by 3 s).
  const gh = new Octokit({
    baseUrl: server.url,
    auth: "tok",
    log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
  });
  try {
    // The repository's branches: main, and "feature" one commit ahead of it.
    const git = (...args: string[]) =>
      exec("git", ["-c", "user.name=t", "-c", "user.email=t@localhost", ...args], { cwd: dir });
    await git("init", "-q", "-b", "main");
    await git("commit", "-q", "--allow-empty", "-m", "base");
    await git("checkout", "-q", "-b", "feature");
    await git("commit", "-q", "--allow-empty", "-m", "change");
    const featureSha = (await git("rev-parse", "HEAD")).stdout.trim();
    server.createRepo("wod/repo", { gitDir: dir });
    const owner = "wod", repo = "repo";
    await gh.rest.issues.createComment({ owner, repo, issue_number: 1, body: "numbers are per repo" });
    const pr = await gh.rest.pulls.create({
      owner,
      repo,
      head: "feature",
      base: "main",
      title: "T1",
      body: "B1",
    });
    assertEquals([pr.status, pr.data.number, pr.data.state, pr.data.head.sha], [201, 1, "open", featureSha]);
    // A second pull request for the same head and base is refused, as GitHub does.
    await assertRejects(
      () => gh.rest.pulls.create({ owner, repo, head: "feature", base: "main", title: "again" }),
      /A pull request already exists for wod:feature/,
    );
    // No such branch, or nothing to merge: 422.
    await assertRejects(
      () => gh.rest.pulls.create({ owner, repo, head: "nope", base: "main" }),
      /Validation Failed/,
    );
    await assertRejects(
      () => gh.rest.pulls.create({ owner, repo, head: "main", base: "feature" }),
      /No commits between feature and main/,
    );
    const list = async (q: { state?: "open" | "closed" | "all"; head?: string; base?: string }) =>
      (await gh.rest.pulls.list({ owner, repo, ...q })).data.map((x) => x.number);
    assertEquals(await list({ head: "wod:feature", state: "open" }), [1]);
    assertEquals(await list({ head: "someone-else:feature" }), []);
    assertEquals(await list({ base: "main" }), [1]);
    assertEquals(await list({ base: "other" }), []);
    const up = await gh.rest.pulls.update({ owner, repo, pull_number: 1, title: "T2", body: "B2" });
    assertEquals([up.data.title, up.data.body], ["T2", "B2"]);
    await gh.rest.pulls.update({ owner, repo, pull_number: 1, state: "closed" });
    assertEquals(await list({ head: "wod:feature" }), []);
    assertEquals(await list({ state: "all" }), [1]);
    assertEquals((await gh.rest.pulls.get({ owner, repo, pull_number: 1 })).data.state, "closed");
    assertEquals(server.pulls("wod/repo").map((x) => [x.title, x.body, x.state]), [["T2", "B2", "closed"]]);
    assertEquals(server.violations, []);
    // The checks still apply: an undocumented state value and an unknown body property are violations.
    const bad = await gh.request("GET /repos/wod/repo/pulls", { state: "merged" })
      .catch((e) => e.status);
    assertEquals(bad, 400);
    const bad2 = await gh.request("PATCH /repos/{owner}/{repo}/pulls/{pull_number}", {
      owner,
      repo,
      pull_number: 1,
      head: "feature",
    }).catch((e) => e.status);
    assertEquals(bad2, 422);
    assertEquals(server.violations.map((v) => v.message.replace(/ for .*| must be .*/, "")), [
      'query parameter "state"',
      'unknown request body property "head"',
    ]);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
